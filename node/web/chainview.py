"""What the gateway remembers of the chain it follows: recent blocks, network, clearings.

The node serves blocks as bytes; the page wants a few lines per block and
the latest network and clearing of each slot, which no single read gives.
``ChainView`` is fed every block once, in height order, and keeps:

- a summary of the newest ``keep`` blocks (transaction kinds and ids,
  result kinds), enough for the page's block list and its proof buttons;
- the newest published network JSON (``SetNetwork``);
- the newest ``PublishClearing`` of each (product, slot), with its height;
- the slots any transaction named (the page's slot selector).

Plain data in, plain data out: no I/O, so it is tested without a node.
"""

from __future__ import annotations

import hashlib
from collections import deque
from dataclasses import dataclass
from typing import Any

from ledger.block import decode_block
from ledger.errors import LedgerError
from ledger.payloads import TxKind
from ledger.results import peek_result_kind
from ledger.transactions import PAYLOAD_TYPES, decode_transaction, parse_transaction
from ledger.types import RecordKind


def _product_slot_positions() -> dict[TxKind, tuple[int, int]]:
    """Where ``product`` and ``slot`` sit in each payload kind's values, for kinds with both."""
    out: dict[TxKind, tuple[int, int]] = {}
    for kind, cls in PAYLOAD_TYPES.items():
        names = [spec.name for spec in cls.SPECS]
        if "product" in names and "slot" in names:
            out[TxKind(kind)] = (names.index("product"), names.index("slot"))
    return out


_PRODUCT_SLOT = _product_slot_positions()
DEFAULT_KEEP = 50  # block summaries kept for the page (older ones are read from the node)


@dataclass(frozen=True, slots=True)
class PublishedClearing:
    """A slot's published clearing as it is on the chain."""

    height: int
    product: str
    slot: int
    settlements: tuple[tuple[bytes, int, int], ...]  # (account, energy Wh, payment tick·Wh)
    certificate: bytes  # clearing's plain form, canonically encoded


def kind_name(kind: int, names: type[TxKind] | type[RecordKind]) -> str:
    """``TxKind.PLACE_ORDER`` -> ``"place_order"``; unknown numbers as ``"kind_N"``."""
    try:
        return names(kind).name.lower()
    except ValueError:
        return f"kind_{kind}"


@dataclass(frozen=True, slots=True)
class BlockDigest:
    """What ``ChainView`` takes from one block: read off the event loop, applied on it."""

    height: int
    summary: dict[str, Any]  # the page's lines of the block (JSON-ready)
    network_json: str | None  # the block's last SetNetwork, if any
    clearings: tuple[PublishedClearing, ...]
    # SetNetwork JSON and CloseSlot (product, slot) in block order: which network
    # was in force when each gate closed
    terms: tuple[str | tuple[str, int], ...]
    slots: frozenset[tuple[str, int]]  # (product, slot)s its transactions name


def read_block(data: bytes) -> BlockDigest:
    """Decode a block's bytes into what the gateway keeps of it (pure: runs in a thread).

    Only ``SetNetwork`` and ``PublishClearing`` payloads are built into
    objects; the other transactions are parsed (checked, no objects), which
    costs about half.

    Raises:
        LedgerError: the bytes are not a block (the node sent garbage).
    """
    block = decode_block(data)
    header = block.header
    network_json: str | None = None
    clearings: list[PublishedClearing] = []
    slots: set[tuple[str, int]] = set()
    terms: list[str | tuple[str, int]] = []
    txs: list[dict[str, Any]] = []
    for index, tx_bytes in enumerate(block.transactions):
        try:
            kind, _, _, _, _, _, values = parse_transaction(tx_bytes)
        except LedgerError as exc:  # stored by a node that accepted it: report, do not fail
            txs.append({"index": index, "kind": "undecodable", "tx_id": "", "error": str(exc)})
            continue
        row: dict[str, Any] = {
            "index": index,
            "kind": kind_name(kind, TxKind),
            "tx_id": hashlib.sha256(tx_bytes).hexdigest(),
        }
        where = _PRODUCT_SLOT.get(kind)
        if where is not None:
            product, slot = values[where[0]], values[where[1]]
            if isinstance(product, str) and isinstance(slot, int):
                row["product"], row["slot"] = product, slot
                slots.add((product, slot))
        txs.append(row)
        if kind == TxKind.SET_NETWORK:
            network_json = str(values[0])
            terms.append(network_json)
        elif kind == TxKind.CLOSE_SLOT and "slot" in row:
            terms.append((row["product"], row["slot"]))
        elif kind == TxKind.PUBLISH_CLEARING:
            payload: Any = decode_transaction(tx_bytes).transaction.payload
            clearings.append(
                PublishedClearing(
                    header.height,
                    payload.product,
                    payload.slot,
                    payload.settlements,
                    payload.certificate,
                )
            )
    summary = {
        "height": header.height,
        "hash": header.hash.hex(),
        "prev_hash": header.prev_hash.hex(),
        "time_ns": header.time_ns,
        "tx_root": header.tx_root.hex(),
        "result_root": header.result_root.hex(),
        "transactions": txs,
        "results": [
            {"index": i, "kind": kind_name(peek_result_kind(r) or 0, RecordKind)}
            for i, r in enumerate(block.results)
        ],
    }
    return BlockDigest(
        height=header.height,
        summary=summary,
        network_json=network_json,
        clearings=tuple(clearings),
        terms=tuple(terms),
        slots=frozenset(slots),
    )


class ChainView:
    """The gateway's running summary of a chain, fed block by block, in height order."""

    __slots__ = (
        "blocks",
        "clearings",
        "gate_networks",
        "height",
        "network_height",
        "network_json",
        "slots",
    )

    def __init__(self, keep: int = DEFAULT_KEEP) -> None:
        self.height = 0  # blocks ingested: the next one expected is at this height
        self.blocks: deque[dict[str, Any]] = deque(maxlen=keep)
        self.network_json: str | None = None
        self.network_height = -1
        self.clearings: dict[tuple[str, int], PublishedClearing] = {}
        self.slots: set[tuple[str, int]] = set()
        # the network in force at each slot's gate closure: what its clearing was solved on
        self.gate_networks: dict[tuple[str, int], str] = {}

    def apply(self, digest: BlockDigest) -> bool:
        """Take the next block's digest; False (and nothing changes) if it is not the next one.

        A block at another height than ``self.height`` is ignored (a repeat,
        or a gap the caller fills by reading from the node).
        """
        if digest.height != self.height:
            return False
        for term in digest.terms:
            if isinstance(term, str):
                self.network_json = term
            elif self.network_json is not None:
                self.gate_networks.setdefault(term, self.network_json)
        if digest.network_json is not None:
            self.network_json = digest.network_json
            self.network_height = digest.height
        for clearing in digest.clearings:
            self.clearings[(clearing.product, clearing.slot)] = clearing
        self.slots.update(digest.slots)
        self.blocks.append(digest.summary)
        self.height = digest.height + 1
        return True

    def ingest(self, data: bytes) -> dict[str, Any] | None:
        """``apply(read_block(data))``; the block's summary, or None if it was not the next one.

        Raises:
            LedgerError: the bytes are not a block.
        """
        digest = read_block(data)
        return digest.summary if self.apply(digest) else None

    def network_of(self, product: str, slot: int) -> str | None:
        """The network JSON a slot was cleared on: in force at its gate closure, else the newest."""
        return self.gate_networks.get((product, slot), self.network_json)

    def recent(self, limit: int) -> list[dict[str, Any]]:
        """The newest ``limit`` block summaries, newest first."""
        out = list(self.blocks)[-limit:]
        out.reverse()
        return out

    def block(self, height: int) -> dict[str, Any] | None:
        """The kept summary of the block at ``height``, if it is still kept."""
        for summary in self.blocks:
            if summary["height"] == height:
                return summary
        return None
