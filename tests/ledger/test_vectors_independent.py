"""The golden vectors re-derived without the ledger's code.

``test_vectors.py`` checks that ``ledger`` reproduces the stored values; this
module checks that those values are what the written rules say (see
tests/vectors/make_ledger_vectors.py), computing them again from nothing but
msgpack, hashlib, ``cryptography``'s Ed25519 and the recursive RFC 6962
reference. A value that ``ledger`` and its generator got wrong together would
pass the first module and fail here.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import msgpack
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.ledger import merkle_reference as ref

VECTORS = json.loads(
    (Path(__file__).parent.parent / "vectors" / "ledger_vectors.json").read_text(encoding="utf-8")
)
KEYS = VECTORS["keys"]["keys"]
TX_TAG = b"p2pex/tx/v1\x00"
ACCOUNT_TAG = b"p2pex/account/v1\x00"
HEADER_TAG = b"p2pex/block-header/v1\x00"
BLOCK_SIG_TAG = b"p2pex/block-sig/v1\x00"


def private_key(index: int) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(bytes.fromhex(KEYS[index]["seed"]))


def unpack(data: bytes) -> list:
    return msgpack.unpackb(data, raw=False, strict_map_key=True)


@pytest.mark.parametrize("index", range(len(KEYS)))
def test_account_id_is_the_tagged_hash_of_the_public_key(index):
    entry = KEYS[index]
    public = private_key(index).public_key().public_bytes_raw()
    assert public.hex() == entry["public_key"]
    assert hashlib.sha256(ACCOUNT_TAG + public).hexdigest() == entry["account_id"]


@pytest.mark.parametrize("case", VECTORS["transactions"], ids=lambda c: c["desc"])
def test_transaction_bytes_signature_and_id(case):
    body = bytes.fromhex(case["body"])
    version, kind, chain_id, sender, nonce, payload = unpack(body)
    assert (version, kind, chain_id, nonce) == (1, case["kind"], case["chain_id"], case["nonce"])
    assert isinstance(payload, list)
    assert sender.hex() == KEYS[0]["public_key"]
    # Ed25519 is deterministic: signing again gives the stored signature
    signature = private_key(0).sign(TX_TAG + body)
    assert signature.hex() == case["signature"]
    tx = msgpack.packb([1, 1, body, signature], use_bin_type=True)
    assert tx.hex() == case["tx"]
    assert hashlib.sha256(tx).hexdigest() == case["tx_id"]


def test_ct_roots_match_the_reference():
    leaves = [bytes.fromhex(x) for x in VECTORS["merkle"]["ct_leaves"]]
    for entry in VECTORS["merkle"]["ct_roots"]:
        assert ref.mth(leaves[: entry["size"]]).hex() == entry["root"]


@pytest.mark.parametrize("tree", VECTORS["merkle"]["trees"], ids=lambda t: f"size {t['size']}")
def test_trees_and_proofs_match_the_reference(tree):
    leaves = [b"leaf %d" % i for i in range(tree["size"])]
    assert ref.mth(leaves).hex() == tree["root"]
    for case in tree["inclusion"]:
        assert [p.hex() for p in ref.path(case["index"], leaves)] == case["proof"]
    for case in tree["consistency"]:
        old = case["old_size"]
        assert ref.mth(leaves[:old]).hex() == case["old_root"]
        assert [p.hex() for p in ref.proof(old, leaves)] == case["proof"]


@pytest.mark.parametrize("case", VECTORS["blocks"], ids=lambda c: f"height {c['height']}")
def test_block_hash_roots_and_signature(case):
    block = bytes.fromhex(case["block"])
    version, kind, header, signature, txs, results = unpack(block)
    assert (version, kind) == (1, 3)
    assert header.hex() == case["header"]
    fields = unpack(header)
    assert fields[:2] == [1, 2]
    assert fields[2] == VECTORS["chain_id"]
    assert fields[3] == case["height"]
    tx_root, result_root, state_digest, proposer = fields[6], fields[7], fields[8], fields[9]
    assert tx_root == ref.mth(txs)
    assert tx_root.hex() == case["tx_root"]
    assert result_root == ref.mth(results)
    assert result_root.hex() == case["result_root"]
    assert state_digest == hashlib.sha256(b"state %d" % case["height"]).digest()
    assert proposer.hex() == KEYS[0]["public_key"]
    block_hash = hashlib.sha256(HEADER_TAG + header).digest()
    assert block_hash.hex() == case["hash"]
    assert private_key(0).sign(BLOCK_SIG_TAG + block_hash) == signature
    assert signature.hex() == case["signature"]
    # the block's transactions are the vectors' transactions, in order
    all_txs = [bytes.fromhex(t["tx"]) for t in VECTORS["transactions"]]
    assert all(tx in all_txs for tx in txs)
    # the chain links: block h names the hash of block h - 1 (zeros for the genesis)
    prev = fields[4]
    if case["height"] == 0:
        assert prev == bytes(32)
    else:
        assert prev.hex() == VECTORS["blocks"][case["height"] - 1]["hash"]
    assert msgpack.packb([1, 3, header, signature, txs, results], use_bin_type=True) == block
