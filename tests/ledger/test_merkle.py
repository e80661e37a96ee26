"""RFC 6962 Merkle trees: known answers, the recursive reference, and bad proofs."""

from __future__ import annotations

import random

import pytest

from ledger import (
    ProofIndexError,
    ProofLengthError,
    RootMismatch,
    consistency_proof,
    hash_children,
    hash_leaf,
    inclusion_proof,
    merkle_root,
    root_from_inclusion_proof,
    verify_consistency,
    verify_inclusion,
)
from ledger.merkle import (
    EMPTY_ROOT,
    consistency_proof_length,
    inclusion_proof_length,
    tree_levels,
)
from tests.ledger import merkle_reference as ref

SEED = 20260604

# The eight leaves of the Certificate Transparency reference tests
# (certificate-transparency merkle_tree_test.cc, also transparency-dev/merkle).
CT_LEAVES = [
    bytes.fromhex(x)
    for x in [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
]
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


def test_empty_and_single_leaf_by_hand():
    # printf '' | sha256sum ; printf '\x00' | sha256sum
    assert (
        merkle_root([]).hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )
    assert merkle_root([b""]).hex() == CT_ROOTS[0]
    assert hash_leaf(b"") == bytes.fromhex(CT_ROOTS[0])


def test_two_leaves_by_hand():
    left, right = hash_leaf(b"a"), hash_leaf(b"b")
    assert merkle_root([b"a", b"b"]) == hash_children(left, right)
    # three leaves: split at 2, the third leaf is not duplicated
    assert merkle_root([b"a", b"b", b"c"]) == hash_children(
        hash_children(left, right), hash_leaf(b"c")
    )


@pytest.mark.parametrize("size", range(1, 9))
def test_ct_reference_roots(size):
    assert merkle_root(CT_LEAVES[:size]).hex() == CT_ROOTS[size - 1]


def test_rfc6962_example_proofs():
    # RFC 6962 section 2.1.3, with its names: leaves a..f are d0..d5 and j is d6;
    # g = (a, b), h = (c, d), i = (e, f), k = (g, h), l = (i, j).
    hashes = [hash_leaf(x) for x in CT_LEAVES[:7]]
    a, b, c, d, e, f, j = hashes
    g, h, i = hash_children(a, b), hash_children(c, d), hash_children(e, f)
    k, l_ = hash_children(g, h), hash_children(i, j)
    assert merkle_root(CT_LEAVES[:7]) == hash_children(k, l_)
    # "The audit path for d0 is [b, h, l]", d3: [c, g, l], d4: [f, j, k], d6: [i, k]
    assert inclusion_proof(hashes, 0) == [b, h, l_]
    assert inclusion_proof(hashes, 3) == [c, g, l_]
    assert inclusion_proof(hashes, 4) == [f, j, k]
    assert inclusion_proof(hashes, 6) == [i, k]
    # section 2.1.4: PROOF(3, D[7]) = [c, d, g, l], PROOF(4, D[7]) = [l],
    # PROOF(6, D[7]) = [i, j, k]
    assert consistency_proof(hashes, 3) == [c, d, g, l_]
    assert consistency_proof(hashes, 4) == [l_]
    assert consistency_proof(hashes, 6) == [i, j, k]


def test_against_recursive_reference_for_every_size_0_to_300():
    rng = random.Random(SEED)
    print(f"merkle reference seed {SEED}")
    for size in range(301):
        leaves = [rng.randbytes(rng.randrange(0, 8)) for _ in range(size)]
        hashes = [hash_leaf(x) for x in leaves]
        root = ref.mth(leaves)
        assert merkle_root(leaves) == root, size
        if size == 0:
            continue
        assert tree_levels(hashes)[-1] == [root]
        # every index for small trees, a sample (with both ends) for large ones
        indices = range(size) if size <= 40 else {0, size - 1, *rng.sample(range(size), 6)}
        for index in indices:
            proof = inclusion_proof(hashes, index)
            assert proof == ref.path(index, leaves), (size, index)
            assert len(proof) == inclusion_proof_length(index, size)
            assert root_from_inclusion_proof(index, size, hashes[index], proof) == root
        olds = (
            range(size + 1) if size <= 40 else {0, 1, size - 1, size, *rng.sample(range(size), 6)}
        )
        for old in olds:
            if old == 0:
                continue  # no proof from the empty tree: test_no_consistency_from_size_0
            proof = consistency_proof(hashes, old)
            assert proof == ref.proof(old, leaves), (old, size)
            assert len(proof) == consistency_proof_length(old, size)
            verify_consistency(old, size, ref.mth(leaves[:old]), root, proof)


def _tree(size: int) -> tuple[list[bytes], bytes]:
    hashes = [hash_leaf(b"leaf %d" % i) for i in range(size)]
    return hashes, merkle_root([b"leaf %d" % i for i in range(size)])


@pytest.mark.parametrize("size", [1, 2, 3, 5, 8, 13, 64, 100])
def test_inclusion_mutations(size):
    hashes, root = _tree(size)
    index = size // 2
    proof = inclusion_proof(hashes, index)
    verify_inclusion(index, size, hashes[index], proof, root)
    with pytest.raises(RootMismatch):
        verify_inclusion(index, size, hash_leaf(b"other"), proof, root)
    if proof:
        flipped = [bytes([proof[0][0] ^ 1]) + proof[0][1:], *proof[1:]]
        with pytest.raises(RootMismatch):
            verify_inclusion(index, size, hashes[index], flipped, root)
        with pytest.raises(ProofLengthError) as info:
            verify_inclusion(index, size, hashes[index], proof[:-1], root)
        assert (info.value.expected, info.value.found) == (len(proof), len(proof) - 1)
    with pytest.raises(ProofLengthError):
        verify_inclusion(index, size, hashes[index], [*proof, root], root)
    with pytest.raises(ProofIndexError):
        verify_inclusion(size, size, hashes[index], proof, root)
    with pytest.raises(ProofIndexError):
        verify_inclusion(-1, size, hashes[index], proof, root)
    with pytest.raises(ProofIndexError):
        inclusion_proof(hashes, size)
    if size > 1:
        other = (index + 1) % size
        with pytest.raises((RootMismatch, ProofLengthError)):
            verify_inclusion(other, size, hashes[index], proof, root)


@pytest.mark.parametrize(("old", "size"), [(1, 2), (3, 7), (4, 7), (6, 8), (5, 100), (64, 65)])
def test_consistency_mutations(old, size):
    hashes, root = _tree(size)
    old_root = merkle_root([b"leaf %d" % i for i in range(old)])
    proof = consistency_proof(hashes, old)
    verify_consistency(old, size, old_root, root, proof)
    with pytest.raises(RootMismatch):
        verify_consistency(old, size, hash_leaf(b"x"), root, proof)
    with pytest.raises(RootMismatch):
        verify_consistency(old, size, old_root, hash_leaf(b"x"), proof)
    flipped = [bytes([proof[0][0] ^ 0x80]) + proof[0][1:], *proof[1:]]
    with pytest.raises(RootMismatch):
        verify_consistency(old, size, old_root, root, flipped)
    with pytest.raises(ProofLengthError):
        verify_consistency(old, size, old_root, root, proof[:-1])
    with pytest.raises(ProofLengthError):
        verify_consistency(old, size, old_root, root, [*proof, root])
    with pytest.raises(ProofIndexError):
        verify_consistency(size + 1, size, old_root, root, proof)
    with pytest.raises(ProofIndexError):
        consistency_proof(hashes, size + 1)


@pytest.mark.parametrize("size", [1, 2, 5, 64])
def test_no_consistency_from_size_0(size):
    # RFC 9162 2.1.4 and transparency-dev refuse it: any root1, any root2 passed.
    hashes, root = _tree(size)
    with pytest.raises(ProofIndexError) as info:
        verify_consistency(0, size, b"", root, [])
    assert info.value.found == 0
    with pytest.raises(ProofIndexError):
        verify_consistency(0, size, hash_leaf(b"any"), hash_leaf(b"thing"), [])
    with pytest.raises(ProofIndexError):
        consistency_proof(hashes, 0)


def test_trivial_consistency():
    _hashes, root = _tree(5)
    verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    assert consistency_proof([], 0) == []
    with pytest.raises(RootMismatch):
        verify_consistency(0, 0, EMPTY_ROOT, root, [])
    verify_consistency(5, 5, root, root, [])
    with pytest.raises(RootMismatch):
        verify_consistency(5, 5, root, hash_leaf(b"x"), [])
    with pytest.raises(ProofLengthError):
        verify_consistency(5, 5, root, root, [root])
