"""A node's block store: appends (and their fsync) in a child process.

The operator must not stop accepting transactions while a block is made
durable, nor a replica stop serving reads (with the appends on its event
loop, a replica's reads waited several times longer while its operator was
busy: ``bench_replica``, interleaved pairs in ``bench/results/``):
with SQLite ``synchronous=FULL`` every append waits for an fsync of the WAL
(about a millisecond), after as much Python and SQLite work for a block of ~110
transactions (decoding its results to index them, inserting the index rows).
The child answers as soon as the block itself is committed and writes its
index rows after that (``SqliteBlockStore.append(index_later=True)``, then
``index_trail``): the index rows are most of the work, and the block's
transactions are reported committed after the answer. Reads see the block
at once either way. ``ProcessBlockStore`` keeps two connections to the same
SQLite file:

- a writer ``SqliteBlockStore`` in a child process (``serve_appends``), which
  performs every ``append``;
- a reader ``SqliteBlockStore`` in the caller's thread (the event loop), which
  answers every read. In WAL mode a reader sees exactly the blocks whose
  append has committed.

Why a process and not a thread: the append's Python work holds the GIL, and
the event loop, coming back from any system call, then waits for it, up to
the interpreter's switch interval. Under ``bench_node``'s load, with the
appends on a thread, ten times as many event-loop callbacks ran long as
with the appends skipped (docs/performance.md).
The child has its own interpreter and the loop talks to it over a socket
pair as an asyncio protocol: writing a block never blocks the loop, and the
answer arrives as a frame like any client's.

Blocks are appended one at a time, in the order ``append_soon`` was called;
its future resolves once the block is durable, and only then do ``height``
and ``head()`` advance, so readers never see a height whose block is not
stored yet. If the child dies, every append in flight and every later one
fails with ``StoreError``: a block that was not answered is never reported
stored.

The child (``node.pipeline.worker_link``) finishes the appends it was sent and exits
when the operator closes its end of the socket, or dies.
"""

from __future__ import annotations

import asyncio
import pickle
import socket
import sys
from collections import deque
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING

from ledger.block import decode_block, decode_header
from ledger.errors import LedgerError, StoreError
from ledger.sqlite_store import SqliteBlockStore
from ledger.store import AccountReads
from node.errors import NodeError
from node.pipeline.worker_link import child_socket, link, recv_frame, send_frame, spawn, stop
from node.wire.transport import FrameProtocol

if TYPE_CHECKING:
    from ledger.block import Block, BlockHeader
    from ledger.results import ResultRecord
    from ledger.store import Located, Position
    from ledger.transactions import SignedTransaction
    from ledger.types import RecordKind

MAX_ANSWER = 1 << 20  # bytes: an answer is a pickled None or error


def _send(sock: socket.socket, message: object) -> None:
    send_frame(sock, pickle.dumps(message))


def serve_appends(conn: Connection, path: str) -> None:
    """The child: open the store, then append each block received, until EOF.

    Frames (4-byte length + body) both ways. To the parent, pickled:
    ``("opened", height, head header bytes or None)`` once (or ``("error",
    LedgerError)`` if the store cannot be opened), then per block ``None``
    (stored) or ``("error", LedgerError)``.
    """
    sock = child_socket(conn)
    try:
        store = SqliteBlockStore(path)
    except LedgerError as exc:
        _send(sock, ("error", exc))
        return
    head = store.head()
    _send(sock, ("opened", store.height, None if head is None else head.to_bytes()))
    try:
        while True:
            try:
                data = recv_frame(sock)
            except (EOFError, OSError):
                return  # the operator closed its end, or died
            try:
                # The operator's own blocks: the index rows follow the answer.
                store.append(decode_block(data), index_later=True)
            except LedgerError as exc:
                _send(sock, ("error", exc))
                continue
            _send(sock, None)
            try:
                store.index_trail()
            except LedgerError as exc:  # reads still see the block; the next append retries
                print(f"p2pex-store: indexing failed: {exc}", file=sys.stderr, flush=True)
    finally:
        store.close()
        sock.close()


class _AnswerLink(FrameProtocol):
    """The operator's end of the socket: sends blocks, takes answers in order."""

    def __init__(self, store: ProcessBlockStore) -> None:
        super().__init__(MAX_ANSWER)
        self.store = store

    def frame_received(self, body: bytes) -> None:
        self.store._answered(pickle.loads(body))  # trusted: our own child process

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self.store._lost(exc)


class ProcessBlockStore(AccountReads):
    """A ``BlockStore`` over one SQLite file whose appends run in a child process.

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
        self.process, self._sock = spawn(serve_appends, (str(path),), "p2pex-store")
        try:
            answer = pickle.loads(recv_frame(self._sock))  # trusted: our own child process
        except (EOFError, OSError) as exc:
            self._stop()
            msg = f"the block store writer for {path} did not start: {exc}"
            raise NodeError(msg) from exc
        if not (isinstance(answer, tuple) and answer and answer[0] == "opened"):
            self._stop()
            msg = f"cannot open the block store in {path.parent} for writing: {answer[1]}"
            raise NodeError(msg)
        _, height, head = answer
        self._height: int = height
        self._head = None if head is None else decode_header(head)
        self._link: _AnswerLink | None = None
        self._waiting: deque[tuple[asyncio.Future[None], Block]] = deque()
        self._failed: StoreError | None = None
        self._closed = False

    @property
    def height(self) -> int:
        """The number of blocks durably stored (= the height the next block must have)."""
        return self._height

    def head(self) -> BlockHeader | None:
        """Return the header of the last durably stored block, or None when empty."""
        return self._head

    async def start(self) -> None:
        """Take the child's socket into the running event loop (before ``append_soon``)."""
        if self._link is None:
            self._link = await link(self._sock, lambda: _AnswerLink(self))

    def append_soon(self, block: Block) -> asyncio.Future[None]:
        """Send ``block`` to be appended; the future resolves once it is durable.

        It fails with the append's ``LedgerError`` (``NotExtendingHead``...),
        or ``StoreError`` if the writer process is gone.
        """
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._failed is not None or self._link is None or self._closed:
            future.set_exception(self._failed or StoreError("the block store is not started"))
            return future
        self._waiting.append((future, block))
        self._link.send(block.to_bytes())
        return future

    def append(self, block: Block) -> None:
        """Not available: a node appends with ``append_soon``, on its event loop."""
        msg = "append blocks to a node's process store with append_soon"
        raise StoreError(msg)

    def _answered(self, answer: object) -> None:
        if not self._waiting:
            self._lost(RuntimeError(f"the store writer answered {answer!r} to nothing"))
            return
        future, block = self._waiting.popleft()
        if answer is None:
            self._height = block.header.height + 1
            self._head = block.header
            if not future.done():
                future.set_result(None)
            return
        if isinstance(answer, tuple) and answer and answer[0] == "error":
            error = answer[1]
        else:
            error = StoreError(f"the store writer answered {answer!r}")
        if not future.done():
            future.set_exception(error)

    def _lost(self, exc: BaseException | None) -> None:
        if self._failed is None:
            reason = "closed" if self._closed else f"gone ({exc or 'it exited'})"
            self._failed = StoreError(f"the block store writer for {self.path} is {reason}")
        while self._waiting:
            future, _ = self._waiting.popleft()
            if not future.done():
                future.set_exception(self._failed)

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

    def results_by_account(
        self,
        account: bytes,
        kind: RecordKind | None = None,
        limit: int | None = None,
        before: Position | None = None,
    ) -> list[Located[ResultRecord]]:
        """Return the results naming ``account`` (see ``BlockStore.results_by_account``)."""
        return self._reader.results_by_account(account, kind, limit, before)

    def close(self) -> None:
        """Stop the writer once it finished the append it is doing; close both connections.

        Blocks sent and not answered may or may not be stored; none of them
        was reported stored.
        """
        if self._closed:
            return
        self._closed = True
        self._stop()
        if self._link is not None:
            self._link.close(abort=True)
        self._reader.close()

    def _stop(self) -> None:
        stop(self.process, self._sock)
        if self._link is None:
            self._sock.close()
