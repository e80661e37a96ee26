"""Check an inclusion proof the node sent, with ``ledger``, before the page shows it.

The node's ``prove`` reply carries the proof, the block header and the
leaf. Three checks make it mean something:

1. the header is the one of the block the gateway follows at that height
   (its hash equals the block hash the gateway read from the chain), so a
   proof cannot bring its own header;
2. for a transaction, the leaf hashes to the transaction id asked for;
3. the audit path leads from the leaf's hash to the header's root
   (``tx_root`` or ``result_root``): ``ledger.audit.verify_inclusion_proof``.
"""

from __future__ import annotations

import hashlib
from typing import Any

from ledger.audit import decode_inclusion_proof, verify_inclusion_proof
from ledger.block import decode_header
from ledger.errors import LedgerError
from ledger.merkle import hash_leaf

TREES = ("transactions", "results")  # index = InclusionProof.tree


def check_proof(
    reply: dict[str, Any], *, block_hash: bytes, tx_id: bytes | None = None
) -> dict[str, Any]:
    """Check a ``prove`` reply; return what was checked and whether it held.

    Args:
        reply: the node's ``prove`` result (``proof``, ``header``, ``leaf`` bytes).
        block_hash: the hash of the block at the proof's height, as the gateway
            read it from the chain.
        tx_id: the transaction id asked for (None for a result).

    Returns:
        ``verified`` (bool), ``reason`` (why not, or ""), and the proof's
        parts (bytes in hex), for anyone to redo the hashing: ``tree``,
        ``height``, ``index``, ``size``, ``leaf``, ``leaf_hash``, ``path``,
        ``root``, ``header_hash``, ``block_hash``.
    """
    out: dict[str, Any] = {"verified": False, "reason": ""}
    try:
        proof = decode_inclusion_proof(bytes(reply["proof"]))
        header = decode_header(bytes(reply["header"]))
        leaf = bytes(reply["leaf"])
    except (KeyError, TypeError, LedgerError) as exc:
        out["reason"] = f"the node's reply does not decode: {exc}"
        return out
    root = header.tx_root if proof.tree == 0 else header.result_root
    out.update(
        tree=TREES[proof.tree] if 0 <= proof.tree < len(TREES) else str(proof.tree),
        height=proof.height,
        index=proof.index,
        size=proof.size,
        leaf=leaf.hex(),
        leaf_hash=hash_leaf(leaf).hex(),
        path=[node.hex() for node in proof.path],
        root=root.hex(),
        header_hash=header.hash.hex(),
        block_hash=block_hash.hex(),
    )
    if header.hash != block_hash:
        out["reason"] = "the proof's header is not the chain's block at that height"
        return out
    if tx_id is not None and hashlib.sha256(leaf).digest() != tx_id:
        out["reason"] = "the proven leaf is not the transaction asked for"
        return out
    try:
        verify_inclusion_proof(header, proof, leaf)
    except LedgerError as exc:
        out["reason"] = f"the path does not lead to the header's root: {exc}"
        return out
    out["verified"] = True
    return out
