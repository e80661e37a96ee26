"""Signature checks of submitted transactions in worker processes, in batches.

An Ed25519 verification is the largest cost of a submission (about 54 us
with libsodium on the benchmark machine: a quarter of a core at 5,000
transactions/s), so the operator moves it off its event loop.

Why processes and not threads: libsodium releases the GIL while it checks,
but each check must take the GIL back to return, and a busy event loop only
hands the GIL over every ``sys.getswitchinterval()`` (5 ms). Measured here: a
thread verifying next to a busy Python thread managed one check per 5.2 ms
instead of per 53 us. A worker process has its own interpreter: the loop
only packs a batch (msgpack, in C), writes it to a pipe and reads back one
byte per transaction.

Batching: each worker has at most one batch in flight. The checks asked for
while it works wait in the next batch, which goes out as soon as a worker is
free, so under light load a batch holds one transaction (no added wait) and
under heavy load batches grow and the per-batch cost is shared.

Checking out of order is safe: the sequencer decides the order, and a
signature's validity does not depend on it. If a worker dies, its batch and
every later one are checked on the loop instead (logged): slower, never lost.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
from collections.abc import Sequence
from multiprocessing.connection import Connection

import msgpack

from ledger.keys import verify_signature
from ledger.transactions import signing_message
from node import txn
from node.errors import BadSignature

log = logging.getLogger("p2pex.verifier")

MAX_BATCH = 512  # transactions per message to a worker

Item = tuple[bytes, bytes, bytes]  # public key, signature, signed message


def check_items(items: Sequence[Sequence[bytes]]) -> bytes:
    """One byte per (public key, signature, message): 1 if the signature is valid."""
    return bytes(1 if verify_signature(bytes(p), bytes(s), bytes(m)) else 0 for p, s, m in items)


def serve_checks(conn: Connection) -> None:
    """A worker process's loop: read a batch, answer its check bytes, until EOF."""
    while True:
        try:
            data = conn.recv_bytes()
        except (EOFError, OSError):
            return
        conn.send_bytes(check_items(msgpack.unpackb(data)))


def _item(signed: txn.SignedTransaction) -> Item:
    return (signed.transaction.sender, signed.signature, signing_message(signed.body))


def _failure(signed: txn.SignedTransaction) -> BadSignature:
    tx = signed.transaction
    return BadSignature(f"bad signature on transaction {signed.tx_id.hex()} from {tx.sender.hex()}")


class _Worker:
    """One worker process and the batch it is checking."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")  # the node has threads: never fork
        self.conn, child = context.Pipe(duplex=True)
        self.process = context.Process(
            target=serve_checks, args=(child,), name="p2pex-verify", daemon=True
        )
        self.process.start()
        child.close()
        self.batch: list[tuple[txn.SignedTransaction, asyncio.Future[None]]] | None = None


class BatchVerifier:
    """Check signatures in ``workers`` processes (0: on the event loop)."""

    def __init__(self, workers: int = 1) -> None:
        self._workers: list[_Worker] = []
        self._wanted = workers
        self._pending: list[tuple[txn.SignedTransaction, asyncio.Future[None]]] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        """Start the worker processes now (else on the first check: a spawn takes ~0.2 s)."""
        if self._loop is None:
            self._start(asyncio.get_running_loop())

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        for _ in range(self._wanted):
            worker = _Worker()
            loop.add_reader(worker.conn.fileno(), self._on_answer, worker)
            self._workers.append(worker)

    async def verify(self, signed: txn.SignedTransaction) -> None:
        """Return once ``signed``'s signature is checked.

        Raises:
            BadSignature: it does not verify under the sender's key.
        """
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._start(loop)
        if not self._workers:
            txn.verify(signed)
            return
        future: asyncio.Future[None] = loop.create_future()
        self._pending.append((signed, future))
        self._dispatch()
        await future

    def _dispatch(self) -> None:
        """Send the pending checks to the free workers."""
        for worker in list(self._workers):
            if not self._pending:
                return
            if worker.batch is not None:
                continue
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            worker.batch = batch
            data = msgpack.packb([_item(signed) for signed, _ in batch])
            try:
                worker.conn.send_bytes(data)
            except OSError:
                self._lost(worker)

    def _on_answer(self, worker: _Worker) -> None:
        """A worker answered (or died): settle its batch, send it the next one."""
        try:
            answer = worker.conn.recv_bytes()
        except (EOFError, OSError):
            self._lost(worker)
            return
        batch, worker.batch = worker.batch or [], None
        if len(answer) != len(batch):
            log.error("verify worker answered %d checks for %d", len(answer), len(batch))
            self._settle_here(batch)
        else:
            for ok, (signed, future) in zip(answer, batch, strict=True):
                if not future.done():  # else its submitter went away
                    if ok:
                        future.set_result(None)
                    else:
                        future.set_exception(_failure(signed))
        self._dispatch()

    def _lost(self, worker: _Worker) -> None:
        """A worker died: check its batch here; the others (if any) take the rest."""
        log.error("signature worker %s died; checking on the event loop", worker.process.pid)
        assert self._loop is not None
        self._loop.remove_reader(worker.conn.fileno())
        self._workers.remove(worker)
        worker.conn.close()
        self._settle_here(worker.batch or [])
        worker.batch = None
        if not self._workers:
            pending, self._pending = self._pending, []
            self._settle_here(pending)
        else:
            self._dispatch()

    @staticmethod
    def _settle_here(batch: list[tuple[txn.SignedTransaction, asyncio.Future[None]]]) -> None:
        for signed, future in batch:
            if future.done():
                continue
            try:
                txn.verify(signed)
            except BadSignature as exc:
                future.set_exception(exc)
            else:
                future.set_result(None)

    def close(self) -> None:
        """Stop the workers (their batches' submitters get ``CancelledError``)."""
        for worker in self._workers:
            if self._loop is not None and not self._loop.is_closed():
                self._loop.remove_reader(worker.conn.fileno())
            for _, future in worker.batch or []:
                future.cancel()
            worker.conn.close()  # EOF: the worker returns
            worker.process.join(timeout=1)
            if worker.process.is_alive():
                worker.process.kill()
        self._workers.clear()
        for _, future in self._pending:
            future.cancel()
        self._pending.clear()
