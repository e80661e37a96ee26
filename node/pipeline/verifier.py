"""Signature checks of submitted transactions in worker processes, in batches.

An Ed25519 verification is the largest cost of a submission (a large share
of a core at the node's target rate: docs/performance.md), so the operator
moves it off its event loop.

Why processes and not threads: libsodium releases the GIL while it checks,
but each check must take the GIL back to return, and a busy event loop only
hands the GIL over every ``sys.getswitchinterval()``: a thread verifying next
to a busy Python thread managed about one check per switch interval instead
of one per verify time. A worker process has its own interpreter: the loop
only packs a batch (msgpack, in C), writes it to the worker's socket
(``node.pipeline.worker_link``: it never blocks the loop) and reads back one byte per
transaction.

Batching: the checks asked for in one loop iteration go out together (one
write), and each worker has at most two batches in flight, so it starts on
the next batch the moment it answers one, instead of idling until the busy
event loop has read its answer and sent more (with one batch in flight the
wait for a check grew to milliseconds under load). The checks
asked for while both are out wait in the next batch, which goes out as soon
as one comes back: under light load a batch holds one transaction (no added
wait), under heavy load batches grow (up to ``MAX_BATCH``) and the
per-batch cost is shared.

Checking out of order is safe: the sequencer decides the order, and a
signature's validity does not depend on it. If a worker dies, its batch and
every later one are checked on the loop instead (logged): slower, never lost.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import Any

import msgpack

from ledger.keys import verify_signature
from ledger.transactions import signing_message
from market import transactions as txn
from node.errors import BadSignature
from node.pipeline.worker_link import child_socket, link, recv_frame, send_frame, spawn, stop
from node.wire.transport import FrameProtocol

log = logging.getLogger("p2pex.verifier")

MAX_BATCH = 512  # transactions per message to a worker
IN_FLIGHT = 2  # batches per worker
MAX_ANSWER = 1 << 16  # bytes: one per transaction of a batch

Item = tuple[bytes, bytes, bytes]  # public key, signature, signed message
# A transaction waiting for its check, the future its submitter holds, and its value.
Check = tuple[txn.SignedTransaction, asyncio.Future[Any], object]


def check_items(items: Sequence[Sequence[bytes]]) -> bytes:
    """One byte per (public key, signature, message): 1 if the signature is valid."""
    return bytes(1 if verify_signature(bytes(p), bytes(s), bytes(m)) else 0 for p, s, m in items)


def serve_checks(conn: Connection) -> None:
    """A worker process's loop: read a batch, answer its check bytes, until EOF."""
    with child_socket(conn) as sock:
        while True:
            try:
                data = recv_frame(sock)
            except (EOFError, OSError):
                return
            send_frame(sock, check_items(msgpack.unpackb(data)))


def _item(signed: txn.SignedTransaction) -> Item:
    return (signed.transaction.sender, signed.signature, signing_message(signed.body))


def _failure(signed: txn.SignedTransaction) -> BadSignature:
    tx = signed.transaction
    return BadSignature(f"bad signature on transaction {signed.tx_id.hex()} from {tx.sender.hex()}")


class _Worker:
    """One worker process and the batches it is checking."""

    def __init__(self) -> None:
        self.process, self.sock = spawn(serve_checks, (), "p2pex-verify")
        self.link: _WorkerLink | None = None  # once its socket is in the event loop
        # Batches sent and not answered yet, oldest first (the worker answers in order).
        self.batches: deque[list[Check]] = deque()


class _WorkerLink(FrameProtocol):
    """The loop's end of a worker's socket: answers go to the verifier."""

    def __init__(self, verifier: BatchVerifier, worker: _Worker) -> None:
        super().__init__(MAX_ANSWER)
        self.verifier = verifier
        self.worker = worker

    def frame_received(self, body: bytes) -> None:
        self.verifier._on_answer(self.worker, body)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self.verifier._lost(self.worker)


class BatchVerifier:
    """Check signatures in ``workers`` processes (0: on the event loop)."""

    def __init__(self, workers: int = 1) -> None:
        self._workers: list[_Worker] = []
        self._wanted = workers
        self._pending: list[Check] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._flush_soon = False  # a _flush is scheduled
        self._attaching: set[asyncio.Task[None]] = set()
        self._closing = False

    def start(self) -> None:
        """Start the worker processes now (else on the first check: a spawn takes ~0.2 s)."""
        if self._loop is None:
            self._start(asyncio.get_running_loop())

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        for _ in range(self._wanted):
            worker = _Worker()
            self._workers.append(worker)
            task = loop.create_task(self._attach(worker))
            self._attaching.add(task)
            task.add_done_callback(self._attaching.discard)

    async def _attach(self, worker: _Worker) -> None:
        """Take a worker's socket into the loop; checks asked for meanwhile wait for it."""
        try:
            worker.link = await link(worker.sock, lambda: _WorkerLink(self, worker))
        except OSError:
            self._lost(worker)
            return
        self._dispatch()

    async def verify(self, signed: txn.SignedTransaction) -> None:
        """Return once ``signed``'s signature is checked.

        Raises:
            BadSignature: it does not verify under the sender's key.
        """
        await self.check(signed)

    def check(self, signed: txn.SignedTransaction, value: object = None) -> asyncio.Future[Any]:
        """Start checking ``signed``'s signature; the future resolves if it is valid.

        It resolves to ``value`` (default: ``signed``), or fails with
        ``BadSignature``. Without workers the check runs here and the future
        is already done.
        """
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._start(loop)
        future: asyncio.Future[Any] = loop.create_future()
        check = (signed, future, signed if value is None else value)
        if not self._workers:
            self._settle_here([check])
            return future
        self._pending.append(check)
        if not self._flush_soon:
            # One write per loop iteration for every check asked for in it:
            # a write per submission cost ~13% of the loop at 5,000/s.
            self._flush_soon = True
            loop.call_soon(self._flush)
        return future

    def _flush(self) -> None:
        self._flush_soon = False
        self._dispatch()

    def _dispatch(self) -> None:
        """Send the pending checks to the workers with room, least loaded first."""
        for worker in sorted(self._workers, key=lambda w: len(w.batches)):
            if worker.link is None:
                continue  # not in the loop yet: _attach dispatches when it is
            while self._pending and len(worker.batches) < IN_FLIGHT:
                batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
                worker.batches.append(batch)
                worker.link.send_now(msgpack.packb([_item(signed) for signed, _, _ in batch]))

    def _on_answer(self, worker: _Worker, answer: bytes) -> None:
        """A worker answered: settle its batch, send it the next one."""
        batch = worker.batches.popleft() if worker.batches else []
        if len(answer) != len(batch):
            log.error("verify worker answered %d checks for %d", len(answer), len(batch))
            self._settle_here(batch)
        else:
            for ok, (signed, future, result) in zip(answer, batch, strict=True):
                if not future.done():  # else its submitter went away
                    if ok:
                        future.set_result(result)
                    else:
                        future.set_exception(_failure(signed))
        self._dispatch()

    def _lost(self, worker: _Worker) -> None:
        """A worker died: check its batch here; the others (if any) take the rest."""
        if self._closing or worker not in self._workers:
            return
        log.error("signature worker %s died; checking on the event loop", worker.process.pid)
        self._workers.remove(worker)
        if worker.link is not None:
            worker.link.close(abort=True)
        else:
            worker.sock.close()
        while worker.batches:
            self._settle_here(worker.batches.popleft())
        if not self._workers:
            pending, self._pending = self._pending, []
            self._settle_here(pending)
        else:
            self._dispatch()

    @staticmethod
    def _settle_here(batch: list[Check]) -> None:
        for signed, future, result in batch:
            if future.done():
                continue
            try:
                txn.verify(signed)
            except BadSignature as exc:
                future.set_exception(exc)
            else:
                future.set_result(result)

    def close(self) -> None:
        """Stop the workers (their batches' submitters get ``CancelledError``)."""
        self._closing = True
        for task in self._attaching:
            task.cancel()
        for worker in self._workers:
            for batch in worker.batches:
                for _, future, _ in batch:
                    future.cancel()
            stop(worker.process, worker.sock, timeout=1)  # EOF: the worker returns
            if worker.link is not None:
                worker.link.close(abort=True)
            else:
                worker.sock.close()
        self._workers.clear()
        for _, future, _ in self._pending:
            future.cancel()
        self._pending.clear()
