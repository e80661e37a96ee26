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

from collections import deque
from dataclasses import dataclass
from typing import Any

from ledger.block import decode_block
from ledger.errors import LedgerError
from ledger.payloads import TxKind
from ledger.results import peek_result_kind
from ledger.transactions import decode_transaction
from ledger.types import RecordKind

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


class ChainView:
    """The gateway's running summary of a chain, fed block by block."""

    __slots__ = ("blocks", "clearings", "height", "network_height", "network_json", "slots")

    def __init__(self, keep: int = DEFAULT_KEEP) -> None:
        self.height = 0  # blocks ingested: the next one expected is at this height
        self.blocks: deque[dict[str, Any]] = deque(maxlen=keep)
        self.network_json: str | None = None
        self.network_height = -1
        self.clearings: dict[tuple[str, int], PublishedClearing] = {}
        self.slots: set[tuple[str, int]] = set()

    def ingest(self, data: bytes) -> dict[str, Any] | None:
        """Take the next block's bytes; return its summary (None if it is not the next one).

        A block at another height than ``self.height`` is ignored (a repeat,
        or a gap the caller fills by reading from the node).

        Raises:
            LedgerError: the bytes are not a block (the node sent garbage).
        """
        block = decode_block(data)
        header = block.header
        if header.height != self.height:
            return None
        txs: list[dict[str, Any]] = []
        for index, tx_bytes in enumerate(block.transactions):
            txs.append(self._transaction(header.height, index, tx_bytes))
        results = [
            {"index": i, "kind": kind_name(peek_result_kind(r) or 0, RecordKind)}
            for i, r in enumerate(block.results)
        ]
        summary = {
            "height": header.height,
            "hash": header.hash.hex(),
            "prev_hash": header.prev_hash.hex(),
            "time_ns": header.time_ns,
            "tx_root": header.tx_root.hex(),
            "result_root": header.result_root.hex(),
            "transactions": txs,
            "results": results,
        }
        self.blocks.append(summary)
        self.height = header.height + 1
        return summary

    def _transaction(self, height: int, index: int, data: bytes) -> dict[str, Any]:
        """One transaction's summary; remember networks, clearings and slots it carries."""
        try:
            signed = decode_transaction(data)
        except LedgerError as exc:  # stored by a node that accepted it: report, do not fail
            return {"index": index, "kind": "undecodable", "tx_id": "", "error": str(exc)}
        payload: Any = signed.transaction.payload
        kind = signed.transaction.kind
        row: dict[str, Any] = {
            "index": index,
            "kind": kind_name(kind, TxKind),
            "tx_id": signed.tx_id.hex(),
        }
        product, slot = getattr(payload, "product", None), getattr(payload, "slot", None)
        if isinstance(product, str) and isinstance(slot, int):
            row["product"], row["slot"] = product, slot
            self.slots.add((product, slot))
        if kind == TxKind.SET_NETWORK:
            self.network_json = payload.network_json
            self.network_height = height
        elif kind == TxKind.PUBLISH_CLEARING:
            self.clearings[(payload.product, payload.slot)] = PublishedClearing(
                height, payload.product, payload.slot, payload.settlements, payload.certificate
            )
        return row

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
