"""Golden vectors (tests/vectors/ledger_vectors.json): values reproduced, mutations refused.

See tests/vectors/make_ledger_vectors.py for how each value was derived.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import ledger
from ledger import (
    SigningKey,
    account_id,
    decode_block,
    decode_transaction,
    hash_leaf,
    merkle_root,
    validate_block,
    verify_consistency,
    verify_inclusion,
    verify_transaction,
)

VECTORS = json.loads(
    (Path(__file__).parent.parent / "vectors" / "ledger_vectors.json").read_text(encoding="utf-8")
)
CHAIN_ID = VECTORS["chain_id"]
KEYS = VECTORS["keys"]["keys"]
PROPOSER = bytes.fromhex(KEYS[0]["public_key"])


def error_class(name: str) -> type[Exception]:
    cls = getattr(ledger, name)
    assert issubclass(cls, ledger.LedgerError)
    return cls


@pytest.mark.parametrize("entry", KEYS, ids=lambda e: e["public_key"][:8])
def test_keys(entry):
    key = SigningKey.from_seed(bytes.fromhex(entry["seed"]))
    assert key.public_key_bytes().hex() == entry["public_key"]
    assert account_id(key.public_key_bytes()).hex() == entry["account_id"]
    if "sign_empty" in entry:
        assert key.sign(b"").hex() == entry["sign_empty"]


def _check_tx(hex_tx: str, chain_id: str) -> None:
    verify_transaction(decode_transaction(bytes.fromhex(hex_tx)), chain_id=chain_id)


@pytest.mark.parametrize("case", VECTORS["transactions"], ids=lambda c: c["desc"])
def test_transactions(case):
    signer = SigningKey.from_seed(bytes.fromhex(KEYS[0]["seed"]))
    signed = decode_transaction(bytes.fromhex(case["tx"]))
    assert signed.body.hex() == case["body"]
    assert signed.signature.hex() == case["signature"]
    assert signed.tx_id.hex() == case["tx_id"]
    assert (signed.transaction.kind, signed.transaction.nonce) == (case["kind"], case["nonce"])
    # deterministic signatures: re-signing gives the same bytes
    assert ledger.sign_transaction(signer, signed.transaction).to_bytes().hex() == case["tx"]
    _check_tx(case["tx"], case["chain_id"])
    for mutation in case["mutations"]:
        with pytest.raises(error_class(mutation["want_err"])):
            _check_tx(mutation["tx"], mutation.get("chain_id", case["chain_id"]))


def test_ct_roots():
    leaves = [bytes.fromhex(x) for x in VECTORS["merkle"]["ct_leaves"]]
    for entry in VECTORS["merkle"]["ct_roots"]:
        assert merkle_root(leaves[: entry["size"]]).hex() == entry["root"]


@pytest.mark.parametrize("tree", VECTORS["merkle"]["trees"], ids=lambda t: f"size-{t['size']}")
def test_merkle_trees(tree):
    size = tree["size"]
    leaves = [b"leaf %d" % i for i in range(size)]
    root = bytes.fromhex(tree["root"])
    assert merkle_root(leaves) == root
    for case in tree["inclusion"]:
        index = case["index"]
        leaf_hash = hash_leaf(leaves[index])
        verify_inclusion(index, size, leaf_hash, [bytes.fromhex(p) for p in case["proof"]], root)
        for mutation in case["mutations"]:
            proof = [bytes.fromhex(p) for p in mutation["proof"]]
            with pytest.raises(error_class(mutation["want_err"])):
                verify_inclusion(mutation["index"], size, leaf_hash, proof, root)
    for case in tree["consistency"]:
        old = case["old_size"]
        old_root = bytes.fromhex(case["old_root"])
        assert merkle_root(leaves[:old]) == old_root
        verify_consistency(old, size, old_root, root, [bytes.fromhex(p) for p in case["proof"]])
        for mutation in case["mutations"]:
            proof = [bytes.fromhex(p) for p in mutation["proof"]]
            with pytest.raises(error_class(mutation["want_err"])):
                verify_consistency(old, size, bytes.fromhex(mutation["old_root"]), root, proof)


def test_blocks():
    parent = None
    nonces: dict[bytes, int] = {}
    for case in VECTORS["blocks"]:
        block = decode_block(bytes.fromhex(case["block"]))
        assert block.to_bytes().hex() == case["block"]
        assert block.header.to_bytes().hex() == case["header"]
        assert block.hash.hex() == case["hash"]
        assert block.signature.hex() == case["signature"]
        assert (block.header.tx_root.hex(), block.header.result_root.hex()) == (
            case["tx_root"],
            case["result_root"],
        )
        args = {"chain_id": CHAIN_ID, "authorised_proposers": {PROPOSER}, "nonces": nonces}
        for mutation in case["mutations"]:
            with pytest.raises(error_class(mutation["want_err"])):
                validate_block(decode_block(bytes.fromhex(mutation["block"])), parent, **args)
        nonces.update(validate_block(block, parent, **args).last_nonces)
        parent = block.header
