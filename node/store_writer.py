"""A block store whose appends (and their fsync) run on a dedicated writer thread.

The operator must not stop accepting transactions while a block is made
durable: with SQLite ``synchronous=FULL`` every append waits for an fsync of
the WAL, which took several milliseconds per block on the event loop.
``ThreadedBlockStore`` keeps two connections to the same SQLite file:

- a writer ``SqliteBlockStore`` opened *in* a one-thread executor (a SQLite
  connection may only be used by the thread that opened it), which performs
  every ``append``;
- a reader ``SqliteBlockStore`` opened in the caller's thread (the event
  loop), which answers every read. In WAL mode a reader sees exactly the
  blocks whose append has committed.

``height`` and ``head()`` are this object's own counters, advanced only after
the writer's ``append`` returned (the block is durable), so readers never
see a height whose block is not stored yet. Appends run one at a time in
submission order (one worker thread).
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from ledger.errors import LedgerError
from ledger.sqlite_store import SqliteBlockStore
from node.errors import NodeError

if TYPE_CHECKING:
    from collections.abc import Callable

    from ledger.block import Block, BlockHeader
    from ledger.results import ResultRecord, SettlementRecord, TradeRecord
    from ledger.store import Located
    from ledger.transactions import SignedTransaction


class ThreadedBlockStore:
    """A ``BlockStore`` over one SQLite file whose appends run on a writer thread.

    Args:
        path: the SQLite file (created if missing).

    Raises:
        NodeError: the store cannot be opened.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._reader = SqliteBlockStore(path)
        except LedgerError as exc:
            msg = f"cannot open the block store in {path.parent}: {exc}"
            raise NodeError(msg) from exc
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="p2pex-store")
        try:
            self._writer, self._writer_thread = self._executor.submit(self._open_writer).result()
        except LedgerError as exc:
            self._executor.shutdown()
            self._reader.close()
            msg = f"cannot open the block store in {path.parent} for writing: {exc}"
            raise NodeError(msg) from exc
        self._height = self._writer.height
        self._head = self._writer.head()
        self._closed = False

    def _open_writer(self) -> tuple[SqliteBlockStore, int]:
        return SqliteBlockStore(self.path), threading.get_ident()

    @property
    def height(self) -> int:
        """The number of blocks durably stored (= the height the next block must have)."""
        return self._height

    def head(self) -> BlockHeader | None:
        """Return the header of the last durably stored block, or None when empty."""
        return self._head

    def append(self, block: Block) -> None:
        """Store ``block`` durably (see ``SqliteBlockStore.append``).

        Runs on the writer thread: called from any other thread it hands the
        work over and blocks until it is done, so the event loop should use
        ``submit_append`` instead.
        """
        if threading.get_ident() == self._writer_thread:
            self._writer.append(block)
        else:
            self._executor.submit(self._writer.append, block).result()
        self._height = block.header.height + 1
        self._head = block.header

    def submit(self, append: Callable[[Block], None], block: Block) -> Future[None]:
        """Run ``append(block)`` on the writer thread (after every earlier submission).

        ``append`` is normally this store's own ``append`` (callers pass the
        bound method they hold, so a wrapper around the store still decides).
        """
        return self._executor.submit(append, block)

    # -- reads (the reader connection, in the caller's thread) -------------------------------

    def block_at(self, height: int) -> Block:
        """Return the block at ``height``."""
        return self._reader.block_at(height)

    def block_bytes(self, height: int) -> bytes:
        """Return the exact stored bytes of the block at ``height``."""
        return self._reader.block_bytes(height)

    def block_by_hash(self, block_hash: bytes) -> Block | None:
        """Return the block with that hash, or None."""
        return self._reader.block_by_hash(block_hash)

    def transaction(self, tx_id: bytes) -> Located[SignedTransaction] | None:
        """Return the transaction with that id and where it is, or None."""
        return self._reader.transaction(tx_id)

    def results_by_account(self, account: bytes) -> list[Located[ResultRecord]]:
        """Return every result naming ``account``, in chain order."""
        return self._reader.results_by_account(account)

    def trades_by_account(self, account: bytes) -> list[Located[TradeRecord]]:
        """Return the trades where ``account`` is maker or taker, in chain order."""
        return self._reader.trades_by_account(account)

    def settlements_by_account(self, account: bytes) -> list[Located[SettlementRecord]]:
        """Return the settlements of ``account``, in chain order."""
        return self._reader.settlements_by_account(account)

    def close(self) -> None:
        """Finish pending appends, then close both connections and the writer thread."""
        if self._closed:
            return
        self._closed = True
        self._executor.submit(self._writer.close).result()
        self._executor.shutdown()
        self._reader.close()
