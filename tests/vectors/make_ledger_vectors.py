"""Write tests/vectors/ledger_vectors.json: golden vectors of the ledger.

Run from the repository root: ``python -m tests.vectors.make_ledger_vectors``.
``tests/ledger/test_vectors.py`` checks that the code reproduces every value
and that every mutated case gives its ``want_err``; re-run this script only
when a format changes on purpose (and say so in the commit).

How the expected values are derived (also written into the JSON):

* Keys: Ed25519 is deterministic (RFC 8032), so a fixed seed fixes the
  public key and every signature. The first key is RFC 8032 section 7.1
  TEST 1, whose public key and signature of the empty message are copied
  from the RFC and checked here before anything is written.
* Merkle roots of the CT reference leaves ("", 00, 10, 2021, 3031,
  40414243, 5051525354555657, 606162636465666768696a6b6c6d6e6f) for sizes 1
  to 8 are the published values of the Certificate Transparency reference
  tests; sizes 1 and 2 can be redone by hand::

      printf '\\x00' | sha256sum        # size 1: 6e340b9c...
      l0=$(printf '\\x00' | sha256sum | cut -c1-64)
      l1=$(printf '\\x00\\x00' | sha256sum | cut -c1-64)
      printf "01$l0$l1" | xxd -r -p | sha256sum   # size 2: fac54203...

  The other trees and the proofs are produced by this code and checked
  against the recursive RFC 6962 reference (tests/ledger/merkle_reference.py)
  when the file is generated.
* Transactions and blocks follow the rules below, which
  ``tests/ledger/test_vectors_independent.py`` re-derives for every vector
  with nothing but msgpack, hashlib, ``cryptography``'s Ed25519 and the
  recursive Merkle reference (no ``ledger`` code):

  - ``body`` = msgpack ``[1, kind, chain_id, sender public key, nonce,
    [payload fields]]``; ``signature`` = Ed25519(seed, ``b"p2pex/tx/v1\\x00"
    || body``); ``tx`` = msgpack ``[1, 1, body, signature]``; ``tx_id`` =
    SHA-256(tx);
  - account id = SHA-256(``b"p2pex/account/v1\\x00" || public key``);
  - ``header`` = msgpack ``[1, 2, chain_id, height, prev_hash, time_ns,
    tx_root, result_root, state_digest, proposer]``; ``tx_root`` /
    ``result_root`` = RFC 6962 roots over the exact transaction / result
    record bytes; block ``hash`` = SHA-256(``b"p2pex/block-header/v1\\x00"
    || header``); block ``signature`` = Ed25519(proposer,
    ``b"p2pex/block-sig/v1\\x00" || hash``); ``block`` = msgpack ``[1, 3,
    header, signature, [tx...], [result...]]``.

  The mutated cases each change one thing (named in ``desc``); ``want_err``
  is the error the first failing rule of ``ledger`` must raise.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import msgpack

from ledger import (
    CancelOrder,
    PlaceOrder,
    PublishClearing,
    RegisterPeer,
    SigningKey,
    TradeRecord,
    Transaction,
    build_block,
    consistency_proof,
    hash_leaf,
    inclusion_proof,
    merkle_root,
    sign_transaction,
)
from ledger.codec import decode, encode
from ledger.transactions import TX_DOMAIN_TAG
from tests.ledger import merkle_reference as ref

OUT = Path(__file__).with_name("ledger_vectors.json")
CHAIN_ID = "p2pex-vectors"
RFC8032_SEED = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
RFC8032_PUBLIC = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
RFC8032_EMPTY_SIG = (
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
    "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
)
CT_LEAVES = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
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


TX_DERIVATION = (
    "body = msgpack [1, kind, chain_id, sender, nonce, [payload]]; "
    "signature = Ed25519(key 0, b'p2pex/tx/v1\\x00' || body); "
    "tx = msgpack [1, 1, body, signature]; tx_id = SHA-256(tx)"
)
BLOCK_DERIVATION = (
    "header = msgpack [1, 2, chain_id, height, prev_hash, time_ns, tx_root, result_root, "
    "state_digest, proposer]; tx_root, result_root = RFC 6962 roots over the exact item bytes; "
    "hash = SHA-256(b'p2pex/block-header/v1\\x00' || header); "
    "signature = Ed25519(key 0, b'p2pex/block-sig/v1\\x00' || hash); "
    "block = msgpack [1, 3, header, signature, [tx...], [result...]]; "
    "state_digest = SHA-256(b'state <height>') (a stand-in)"
)


def flip(hexdata: str, byte: int, bit: int = 0) -> str:
    """Flip one bit of a hex string (byte may be negative)."""
    data = bytearray.fromhex(hexdata)
    data[byte] ^= 1 << bit
    return data.hex()


def keys() -> tuple[SigningKey, SigningKey, dict[str, object]]:
    signer = SigningKey.from_seed(bytes.fromhex(RFC8032_SEED))
    assert signer.public_key_bytes().hex() == RFC8032_PUBLIC
    assert signer.sign(b"").hex() == RFC8032_EMPTY_SIG
    other = SigningKey.from_seed(hashlib.sha256(b"p2pex-vector-key-2").digest())
    entry = {
        "derivation": "RFC 8032 7.1 TEST 1 seed; second seed = SHA-256('p2pex-vector-key-2')",
        "keys": [
            {
                "seed": RFC8032_SEED,
                "public_key": RFC8032_PUBLIC,
                "account_id": signer.account_id.hex(),
                "sign_empty": RFC8032_EMPTY_SIG,
            },
            {
                "seed": hashlib.sha256(b"p2pex-vector-key-2").hexdigest(),
                "public_key": other.public_key_bytes().hex(),
                "account_id": other.account_id.hex(),
            },
        ],
    }
    return signer, other, entry


def transactions(signer: SigningKey, other: SigningKey) -> list[dict[str, object]]:
    public = signer.public_key_bytes()
    payloads = [
        RegisterPeer("building-1", "bus-3", "prosumer"),
        PlaceOrder("electricity", 12, "bid", 1250, 5000, "GTC", 0, False, "", 1),
        CancelOrder(1),
        PublishClearing("heat", 12, ((signer.account_id, -1500, 187500),), b"cert"),
    ]
    cases = []
    for nonce, payload in enumerate(payloads, start=1):
        signed = sign_transaction(
            signer, Transaction(payload.KIND, CHAIN_ID, public, nonce, payload)
        )
        tx = signed.to_bytes().hex()
        body = decode(signed.body)
        assert isinstance(body, list)
        wrong_key_body = encode([*body[:3], other.public_key_bytes(), *body[4:]])
        wrong_key = encode([1, 1, wrong_key_body, signed.signature]).hex()
        non_canonical = "94" + "cc01" + encode([1, signed.body, signed.signature]).hex()[2:]
        cases.append(
            {
                "desc": f"{type(payload).__name__} nonce {nonce}",
                "derivation": TX_DERIVATION,
                "chain_id": CHAIN_ID,
                "kind": int(payload.KIND),
                "nonce": nonce,
                "body": signed.body.hex(),
                "signature": signed.signature.hex(),
                "tx": tx,
                "tx_id": signed.tx_id.hex(),
                "mutations": [
                    {
                        "desc": "flipped bit in signature",
                        "tx": flip(tx, -1),
                        "want_err": "BadTransactionSignature",
                    },
                    {
                        "desc": "flipped bit in nonce",
                        "tx": flip(tx, tx_nonce_offset(signed.to_bytes(), signed.body)),
                        "want_err": "BadTransactionSignature",
                    },
                    {"desc": "trailing byte", "tx": tx + "00", "want_err": "TrailingBytes"},
                    {"desc": "truncated by one byte", "tx": tx[:-2], "want_err": "MalformedData"},
                    {
                        "desc": "sender replaced by another key",
                        "tx": wrong_key,
                        "want_err": "BadTransactionSignature",
                    },
                    {
                        "desc": "version 1 as uint8 (cc01)",
                        "tx": non_canonical,
                        "want_err": "NonCanonicalEncoding",
                    },
                    {
                        "desc": "verified for another chain",
                        "tx": tx,
                        "chain_id": "other",
                        "want_err": "TransactionChainMismatch",
                    },
                    *boolean_flag(signer, body, payload),
                ],
            }
        )
    return cases


def boolean_flag(signer: SigningKey, body: list[object], payload: object) -> list[dict[str, str]]:
    """A PlaceOrder's post_only written as a msgpack boolean and correctly re-signed.

    Valid msgpack whose re-encoding is itself, so only the field rule (a
    flag is the int 0 or 1 on the wire) refuses it: one order must have
    one encoding and one transaction id.
    """
    if not isinstance(payload, PlaceOrder):
        return []
    fields = body[5]
    assert isinstance(fields, list) and fields[7] in (0, 1)
    flagged = [*body[:5], [*fields[:7], bool(fields[7]), *fields[8:]]]
    flag_body = msgpack.packb(flagged, use_bin_type=True)
    signature = signer.sign(TX_DOMAIN_TAG + flag_body)
    tx = msgpack.packb([1, 1, flag_body, signature], use_bin_type=True)
    desc = f"post_only as msgpack {str(bool(fields[7])).lower()}, re-signed"
    return [{"desc": desc, "tx": tx.hex(), "want_err": "BadRecord"}]


def tx_nonce_offset(data: bytes, body: bytes) -> int:
    """Offset in the transaction bytes of the nonce (a positive fixint after the sender)."""
    fields = decode(body)
    assert isinstance(fields, list)
    prefix = encode(fields[:4])[1:]  # the body's first four fields, without the array header
    return data.index(body) + 1 + len(prefix)


def merkle() -> dict[str, object]:
    ct = [bytes.fromhex(x) for x in CT_LEAVES]
    roots = []
    for size in range(1, 9):
        root = merkle_root(ct[:size])
        assert root.hex() == CT_ROOTS[size - 1] == ref.mth(ct[:size]).hex()
        roots.append({"size": size, "root": root.hex()})
    trees = []
    for size in (0, 1, 2, 3, 5, 7, 8, 13, 16, 17):
        leaves = [b"leaf %d" % i for i in range(size)]
        hashes = [hash_leaf(x) for x in leaves]
        root = merkle_root(leaves)
        assert root == ref.mth(leaves)
        inclusions = []
        for index in sorted({0, size // 2, size - 1} if size else set()):
            proof = inclusion_proof(hashes, index)
            assert proof == ref.path(index, leaves)
            good = [p.hex() for p in proof]
            case = {"index": index, "proof": good, "want_err": None}
            mutations = [
                {
                    "desc": "index = size",
                    "index": size,
                    "proof": good,
                    "want_err": "ProofIndexError",
                },
                {
                    "desc": "extra node",
                    "index": index,
                    "proof": [*good, root.hex()],
                    "want_err": "ProofLengthError",
                },
            ]
            if good:
                mutations += [
                    {
                        "desc": "flipped bit in first node",
                        "index": index,
                        "proof": [flip(good[0], 0), *good[1:]],
                        "want_err": "RootMismatch",
                    },
                    {
                        "desc": "truncated proof",
                        "index": index,
                        "proof": good[:-1],
                        "want_err": "ProofLengthError",
                    },
                ]
            if size > 1:
                wrong = (index + 1) % size
                want = (
                    "RootMismatch"
                    if len(ref.path(wrong, leaves)) == len(good)
                    else "ProofLengthError"
                )
                mutations.append(
                    {"desc": "wrong index", "index": wrong, "proof": good, "want_err": want}
                )
            inclusions.append({**case, "mutations": mutations})
        consistencies = []
        for old in sorted({1, size // 2, size - 1} if size > 1 else set()):
            proof = consistency_proof(hashes, old)
            assert proof == ref.proof(old, leaves)
            good = [p.hex() for p in proof]
            old_root = merkle_root(leaves[:old]).hex()
            mutations = [
                {
                    "desc": "wrong old root",
                    "old_root": flip(old_root, 0),
                    "proof": good,
                    "want_err": "RootMismatch",
                },
                {
                    "desc": "truncated proof",
                    "old_root": old_root,
                    "proof": good[:-1],
                    "want_err": "ProofLengthError",
                },
                {
                    "desc": "flipped bit in last node",
                    "old_root": old_root,
                    "proof": [*good[:-1], flip(good[-1], 31)],
                    "want_err": "RootMismatch",
                },
            ]
            consistencies.append(
                {"old_size": old, "old_root": old_root, "proof": good, "mutations": mutations}
            )
        trees.append(
            {
                "size": size,
                "leaves": "b'leaf %d' for i in range(size)",
                "root": root.hex(),
                "inclusion": inclusions,
                "consistency": consistencies,
            }
        )
    return {
        "derivation": (
            "ct_roots: Certificate Transparency reference test values (sizes 1 and 2 by hand "
            "with printf | sha256sum, see make_ledger_vectors.py); trees: this code, checked "
            "against the recursive RFC 6962 reference when generated"
        ),
        "ct_leaves": CT_LEAVES,
        "ct_roots": roots,
        "trees": trees,
    }


def blocks(
    signer: SigningKey, other: SigningKey, txs: list[dict[str, object]]
) -> list[dict[str, object]]:
    tx_bytes = [bytes.fromhex(str(case["tx"])) for case in txs]
    trade = TradeRecord(
        hashlib.sha256(tx_bytes[1]).digest(),
        "electricity",
        12,
        1250,
        500,
        other.account_id,
        signer.account_id,
        7,
        1,
    )
    genesis = build_block(
        signer,
        chain_id=CHAIN_ID,
        parent=None,
        time_ns=1_700_000_000_000_000_000,
        transactions=tx_bytes[:2],
        results=[trade],
        state_digest=hashlib.sha256(b"state 0").digest(),
    )
    second = build_block(
        signer,
        chain_id=CHAIN_ID,
        parent=genesis.header,
        time_ns=1_700_000_001_000_000_000,
        transactions=tx_bytes[2:],
        results=[],
        state_digest=hashlib.sha256(b"state 1").digest(),
    )
    foreign = build_block(
        other,
        chain_id=CHAIN_ID,
        parent=genesis.header,
        time_ns=1_700_000_001_000_000_000,
        transactions=tx_bytes[2:],
        results=[],
        state_digest=hashlib.sha256(b"state 1").digest(),
    )
    out = []
    for block in (genesis, second):
        data = block.to_bytes().hex()
        header = block.header.to_bytes().hex()
        sig_offset = block.to_bytes().index(block.signature)
        mutations = [
            {
                "desc": "flipped bit in signature",
                "block": flip(data, sig_offset),
                "want_err": "BadBlockSignature",
            },
            {
                # the body's last byte-string item: the last result record, or
                # the last transaction when the block has no results
                "desc": "flipped bit in last result"
                if block.results
                else "flipped bit in last transaction",
                "block": flip(data, -2),
                "want_err": "BadTransactionRoot" if not block.results else "BadResultRoot",
            },
            {"desc": "trailing byte", "block": data + "00", "want_err": "TrailingBytes"},
            {"desc": "truncated", "block": data[:-2], "want_err": "MalformedData"},
        ]
        if block.height == 1:
            mutations.append(
                {
                    "desc": "signed by an unauthorised key",
                    "block": foreign.to_bytes().hex(),
                    "want_err": "UnauthorisedProposer",
                }
            )
        out.append(
            {
                "height": block.height,
                "derivation": BLOCK_DERIVATION,
                "header": header,
                "hash": block.hash.hex(),
                "tx_root": block.header.tx_root.hex(),
                "result_root": block.header.result_root.hex(),
                "signature": block.signature.hex(),
                "block": data,
                "mutations": mutations,
            }
        )
    return out


def main() -> None:
    signer, other, key_entry = keys()
    txs = transactions(signer, other)
    vectors = {
        "about": __doc__,
        "chain_id": CHAIN_ID,
        "keys": key_entry,
        "transactions": txs,
        "merkle": merkle(),
        "blocks": blocks(signer, other, txs),
    }
    OUT.write_text(json.dumps(vectors, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
