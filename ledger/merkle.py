"""Merkle trees of RFC 6962 / RFC 9162 section 2.1.

The tree hash of n leaves d[0..n) is

* MTH({}) = SHA-256() (the empty string),
* MTH({d0}) = SHA-256(0x00 || d0)  (``hash_leaf``),
* MTH(D[n]) = SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n]))  (``hash_children``),
  with k the largest power of two smaller than n.

Everything here is iterative: the tree is built level by level, pairing
neighbours and carrying a lone last node up unchanged, which gives exactly
the RFC's split at the largest power of two. Node (level, j) covers leaves
[j * 2**level, min((j + 1) * 2**level, n)). The tests compare this against a
recursive transcription of the RFC for every size from 0 to 300.

Proof verification follows RFC 9162 sections 2.1.3.2 and 2.1.4.2 and checks
the proof length first, so a proof with one node too many or too few is
refused with ``ProofLengthError`` rather than a root mismatch.

>>> merkle_root([]).hex()[:16]
'e3b0c44298fc1c14'
>>> merkle_root([b""]).hex()[:16]
'6e340b9cffb37a98'
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from ledger.errors import ProofIndexError, ProofLengthError, RootMismatch

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
EMPTY_ROOT = hashlib.sha256(b"").digest()

_sha256 = hashlib.sha256


def hash_leaf(data: bytes) -> bytes:
    """Return SHA-256(0x00 || data), the hash of one leaf."""
    return _sha256(LEAF_PREFIX + data).digest()


def hash_children(left: bytes, right: bytes) -> bytes:
    """Return SHA-256(0x01 || left || right), the hash of an inner node."""
    return _sha256(NODE_PREFIX + left + right).digest()


def _next_level(level: Sequence[bytes]) -> list[bytes]:
    # Local binding: this loop is the audit's per-leaf cost.
    sha = _sha256
    prefix = NODE_PREFIX
    upper = [sha(prefix + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)]
    if len(level) % 2:
        upper.append(level[-1])  # a lone last node moves up unchanged
    return upper


def root_from_leaf_hashes(leaf_hashes: Sequence[bytes]) -> bytes:
    """Return the tree hash of leaves given by their leaf hashes."""
    if not leaf_hashes:
        return EMPTY_ROOT
    level = list(leaf_hashes)
    while len(level) > 1:
        level = _next_level(level)
    return level[0]


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """Return the RFC 6962 tree hash of the leaf data ``leaves``."""
    sha = _sha256
    return root_from_leaf_hashes([sha(LEAF_PREFIX + leaf).digest() for leaf in leaves])


def tree_levels(leaf_hashes: Sequence[bytes]) -> list[list[bytes]]:
    """Return every level of the tree, leaf hashes first and the root last.

    Empty for an empty tree.
    """
    if not leaf_hashes:
        return []
    levels = [list(leaf_hashes)]
    while len(levels[-1]) > 1:
        levels.append(_next_level(levels[-1]))
    return levels


def _path(levels: Sequence[Sequence[bytes]], level: int, index: int) -> list[bytes]:
    """Siblings of node (level, index) up to the root, bottom first."""
    proof = []
    for nodes in levels[level:-1]:
        sibling = index ^ 1
        if sibling < len(nodes):
            proof.append(nodes[sibling])
        index >>= 1
    return proof


def inclusion_proof(leaf_hashes: Sequence[bytes], index: int) -> list[bytes]:
    """Return the audit path of leaf ``index`` (RFC 6962 PATH), bottom first.

    Requires 0 <= index < len(leaf_hashes).

    Raises:
        ProofIndexError: index out of range.
    """
    size = len(leaf_hashes)
    if not 0 <= index < size:
        msg = f"leaf index {index} outside a tree of {size} leaves"
        raise ProofIndexError(msg, expected=size, found=index)
    return _path(tree_levels(leaf_hashes), 0, index)


def inclusion_proof_length(index: int, size: int) -> int:
    """Return the number of nodes in the inclusion proof of leaf ``index`` (< size).

    The path has one node per level where the leaf's ancestor has a sibling:
    all levels below the point where index and size - 1 diverge, plus the
    levels above it where index's ancestor is a right child.

    >>> inclusion_proof_length(0, 1), inclusion_proof_length(2, 3), inclusion_proof_length(4, 7)
    (0, 1, 3)
    """
    inner = (index ^ (size - 1)).bit_length()
    return inner + (index >> inner).bit_count()


def root_from_inclusion_proof(
    index: int, size: int, leaf_hash: bytes, proof: Sequence[bytes]
) -> bytes:
    """Return the root that ``proof`` gives for leaf hash ``leaf_hash`` at ``index``.

    Raises:
        ProofIndexError: not 0 <= index < size.
        ProofLengthError: the proof has the wrong number of nodes.
    """
    if not 0 <= index < size:
        msg = f"leaf index {index} outside a tree of {size} leaves"
        raise ProofIndexError(msg, expected=size, found=index)
    want = inclusion_proof_length(index, size)
    if len(proof) != want:
        msg = f"wrong proof size {len(proof)}, want {want}"
        raise ProofLengthError(msg, expected=want, found=len(proof))
    # RFC 9162 section 2.1.3.2.
    fn, sn, node = index, size - 1, leaf_hash
    for sibling in proof:
        if fn & 1 or fn == sn:
            node = hash_children(sibling, node)
            while not fn & 1 and fn:
                fn >>= 1
                sn >>= 1
        else:
            node = hash_children(node, sibling)
        fn >>= 1
        sn >>= 1
    return node


def verify_inclusion(
    index: int, size: int, leaf_hash: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that leaf hash ``leaf_hash`` is at ``index`` in the tree of ``size`` with ``root``.

    Raises:
        ProofIndexError, ProofLengthError: see ``root_from_inclusion_proof``.
        RootMismatch: the proof leads to another root (``expected`` is
            ``root``, ``found`` the calculated one).
    """
    calculated = root_from_inclusion_proof(index, size, leaf_hash, proof)
    if calculated != root:
        msg = f"inclusion proof gives root {calculated.hex()}, expected {root.hex()}"
        raise RootMismatch(msg, expected=root, found=calculated)


def _consistency_start(size1: int) -> tuple[int, int]:
    """Level and index of the largest perfect subtree that ends at leaf size1 - 1."""
    level = (size1 & -size1).bit_length() - 1  # trailing zeros of size1
    return level, (size1 - 1) >> level


def consistency_proof_length(size1: int, size2: int) -> int:
    """Return the number of nodes in a consistency proof from size1 to size2.

    Requires 0 <= size1 <= size2. Empty when size1 equals size2 (and for
    size1 = 0, where no proof exists: see ``verify_consistency``).

    >>> [consistency_proof_length(m, n) for m, n in [(3, 7), (4, 7), (6, 8)]]
    [4, 1, 3]
    """
    if size1 in (0, size2):
        return 0
    level, index = _consistency_start(size1)
    length = inclusion_proof_length(index, ((size2 - 1) >> level) + 1)
    return length + (1 if index else 0)


def _check_consistency_sizes(size1: int, size2: int) -> None:
    """Raise ProofIndexError unless 0 < size1 <= size2 or size1 = size2 = 0."""
    if not 0 <= size1 <= size2:
        msg = f"old tree size {size1} outside [0, {size2}]"
        raise ProofIndexError(msg, expected=size2, found=size1)
    if size1 == 0 and size2 > 0:
        msg = f"no consistency proof from the empty tree (to size {size2}): it proves nothing"
        raise ProofIndexError(msg, expected=(1, size2), found=size1)


def consistency_proof(leaf_hashes: Sequence[bytes], size1: int) -> list[bytes]:
    """Return the RFC 6962 consistency proof from the first ``size1`` leaves to all of them.

    Requires 0 < size1 <= len(leaf_hashes), or size1 = len(leaf_hashes) = 0
    (an empty proof).

    Raises:
        ProofIndexError: size1 out of range, or 0 with leaves (no such proof
            exists, see ``verify_consistency``).
    """
    size2 = len(leaf_hashes)
    _check_consistency_sizes(size1, size2)
    if size1 == size2:
        return []
    levels = tree_levels(leaf_hashes)
    level, index = _consistency_start(size1)
    path = _path(levels, level, index)
    # When size1 is a power of two the old root is that subtree itself and
    # the verifier already has it; otherwise the proof starts with it.
    return [levels[level][index], *path] if index else path


def verify_consistency(
    size1: int, size2: int, root1: bytes, root2: bytes, proof: Sequence[bytes]
) -> None:
    """Check that the tree of size2 with ``root2`` extends the tree of size1 with ``root1``.

    Requires 0 < size1 <= size2, or size1 = size2 = 0 (then the roots must
    be equal and the proof empty). A proof from size 0 to a larger tree is
    refused, as RFC 9162 (section 2.1.4) and transparency-dev's
    ``VerifyConsistency`` refuse it: it would accept any ``root1`` and any
    ``root2``, so it proves nothing, and a caller that took it as proof of
    an append-only log would be fooled.

    Raises:
        ProofIndexError: not 0 <= size1 <= size2, or size1 = 0 < size2.
        ProofLengthError: the proof has the wrong number of nodes.
        RootMismatch: the proof does not lead to ``root1`` and ``root2``.
    """
    _check_consistency_sizes(size1, size2)
    want = consistency_proof_length(size1, size2)
    if len(proof) != want:
        msg = f"wrong proof size {len(proof)}, want {want}"
        raise ProofLengthError(msg, expected=want, found=len(proof))
    if size1 == size2:
        if root1 != root2:
            msg = f"equal sizes but roots differ: {root1.hex()} != {root2.hex()}"
            raise RootMismatch(msg, expected=root1, found=root2)
        return
    # RFC 9162 section 2.1.4.2.
    nodes = list(proof)
    if size1 & (size1 - 1) == 0:
        nodes.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = nodes[0]
    for node in nodes[1:]:
        if fn & 1 or fn == sn:
            fr = hash_children(node, fr)
            sr = hash_children(node, sr)
            while not fn & 1 and fn:
                fn >>= 1
                sn >>= 1
        else:
            sr = hash_children(sr, node)
        fn >>= 1
        sn >>= 1
    if fr != root1:
        msg = f"consistency proof gives old root {fr.hex()}, expected {root1.hex()}"
        raise RootMismatch(msg, expected=root1, found=fr)
    if sr != root2:
        msg = f"consistency proof gives new root {sr.hex()}, expected {root2.hex()}"
        raise RootMismatch(msg, expected=root2, found=sr)
