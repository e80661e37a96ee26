"""The operator node: sequence, apply, cut blocks, store them, then report them committed.

Write path of one transaction:

1. ``submit``: decoded when read and its signature checked by a worker
   process (``node.pipeline.verifier``; refused at once if bad), then, in the order
   its client sent it, appended to the ``Sequencer``.
2. The sequencing loop takes entries in order and applies each to the state
   machine: a refused one gets its error reply (``bad_nonce``, ...), an
   applied one joins the open block and its client gets ``accepted`` with
   the order's events.
3. The block is cut ``block_interval_ms`` after its first transaction
   arrived or at ``block_max_txs``, signed, and handed to the store's writer
   process (``node.pipeline.store_writer``), which appends it to the SQLite store
   (synchronous FULL: durable when the append is answered) while the loop
   goes on accepting and cutting the next blocks. Blocks are appended one at
   a time, in order; only after a block's append was answered are its
   transactions reported committed (``wait_committed``) and the block pushed
   to replicas.

Gate closure: when ``slot_length_ms`` > 0 the operator closes every open slot
whose delivery starts (``slot * slot_length_ms`` Unix ms) with a ``CloseSlot``
it signs itself. Whoever closes a slot, once the closing block is stored the
clearing runs in a worker process (``market.gate_clearing``) and its rounded
settlements and certificate are published with a ``PublishClearing``.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ledger.keys import SigningKey
from market import transactions as txn
from market.state import Outcome
from node.clock import Clock
from node.config import NodeConfig
from node.errors import BadNonce, InvalidTransaction, RequestFailed
from node.pipeline import chain
from node.pipeline.sequencer import EmbeddedSequencer, Sequencer
from node.pipeline.store_writer import ProcessBlockStore
from node.pipeline.verifier import BatchVerifier
from node.roles.service import NodeService, arg_bytes, arg_int
from node.wire.events import outcome_events
from node.wire.protocol import E_NOT_FOUND, E_TIMEOUT
from node.wire.server import Args, Handler, Pipeline, Result, Session

if TYPE_CHECKING:
    from ledger.block import Block

log = logging.getLogger("p2pex.operator")


@dataclass
class OpenBlock:
    """The block being filled: its time, transactions and results."""

    time_ns: int
    deadline: float  # loop time at which it is cut
    transactions: list[bytes] = field(default_factory=list)
    results: list[bytes] = field(default_factory=list)
    tx_ids: list[bytes] = field(default_factory=list)
    closes: list[tuple[str, int]] = field(default_factory=list)  # CloseSlot (product, slot)s
    clears: list[tuple[str, int]] = field(default_factory=list)  # PublishClearing (product, slot)s
    sets_network: bool = False  # holds a SetNetwork: clearings will follow


class Operator(NodeService):
    """The sequencing, block-producing node."""

    role = "operator"

    def __init__(
        self,
        config: NodeConfig,
        key: SigningKey,
        clock: Clock,
        sequencer: Sequencer | None = None,
    ) -> None:
        self.writer = ProcessBlockStore(chain.store_file(Path(config.data_dir)))
        super().__init__(config, key.public_key_bytes(), clock, store=self.writer)
        self.key = key
        # The header of the last block built: blocks are built while earlier
        # ones are still being stored, so the store's head may lag behind it.
        self.last_header = self.store.head()
        # Blocks handed to the writer process, in order, with their append's future.
        self.storing: asyncio.Queue[tuple[asyncio.Future[None], Block, OpenBlock]] = asyncio.Queue()
        # Transactions decoded and signature-checked before sequencing, by their
        # bytes (so the sequencing loop does not decode them a second time),
        # with the loop time they arrived at.
        self.verified: dict[bytes, tuple[txn.SignedTransaction, float]] = {}
        # not `or`: an empty EmbeddedSequencer is falsy (it has __len__)
        self.sequencer: Sequencer = sequencer if sequencer is not None else EmbeddedSequencer()
        self.block: OpenBlock | None = None
        self.accept_waiters: dict[bytes, asyncio.Future[Outcome]] = {}
        self.commit_waiters: dict[bytes, asyncio.Future[int]] = {}
        self.clearing_pool: ProcessPoolExecutor | None = None
        self.clearing_tasks: dict[tuple[str, int], asyncio.Task[None]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._own_lock = asyncio.Lock()
        self.verifier = BatchVerifier(config.verify_workers)
        # What the stored chain holds: the state runs ahead of the store by the
        # blocks being built and written, and readers must not see a slot
        # cleared before the block that clears it is durable.
        self._stored_closed = set(self.state.closed)
        self._stored_cleared = set(self.state.clearings)

    def handlers(self) -> dict[str, Handler]:
        """Reads plus ``wait_committed`` (``submit`` is a pipeline: ``pipelines``)."""
        handlers = super().handlers()
        handlers["wait_committed"] = self.h_wait_committed
        return handlers

    async def start(self, host: str, port: int) -> int:
        """Start the sequencing and gate-closure loops, then listen."""
        await self.writer.start()
        self._tasks.append(self.watch(asyncio.create_task(self._sequence_loop())))
        self._tasks.append(self.watch(asyncio.create_task(self._commit_loop())))
        if self.config.slot_length_ms > 0:
            self._tasks.append(self.watch(asyncio.create_task(self._gate_loop())))
        self._resume_clearings()
        if self.config.verify_workers > 0:
            self.verifier.start()
        return await super().start(host, port)

    async def close(self) -> None:
        """Stop the loops (an open block is dropped: never reported committed)."""
        for task in [*self._tasks, *self.clearing_tasks.values()]:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.clearing_pool is not None:
            self.clearing_pool.shutdown(wait=False, cancel_futures=True)
        await self.sequencer.close()
        self.verifier.close()
        await super().close()

    # -- write path ------------------------------------------------------------------------------

    async def submit_bytes(self, data: bytes) -> Outcome:
        """Check, sequence and wait until one transaction is applied (``accepted``).

        Raises:
            InvalidTransaction: the transaction was refused.
        """
        signed = txn.decode(data)
        txn.verify(signed)
        return await self.sequence(signed, asyncio.get_running_loop().time())

    def sequence(self, signed: txn.SignedTransaction, arrived: float) -> asyncio.Future[Outcome]:
        """Give a signature-checked transaction its place in the sequence, at once.

        Returns the future of its outcome, resolved when the sequencing loop
        applied it (or failed with the ``InvalidTransaction`` it was refused for).
        ``arrived``: the loop time the node received it (a block is cut at the
        latest ``block_interval_ms`` after its first transaction arrived).

        Raises:
            BadNonce: the same transaction is already waiting or in a block being stored.
        """
        tx_id = signed.tx_id
        if tx_id in self.accept_waiters or tx_id in self.commit_waiters:
            last = self.state.nonces.get(signed.transaction.sender, 0)
            raise BadNonce(last + 1, signed.transaction.nonce)
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self.accept_waiters[tx_id] = future
        self.verified[signed.data] = (signed, arrived)
        self.sequencer.append(signed.data)
        return future

    def pipelines(self) -> dict[str, Pipeline]:
        """``submit``: decoded and signature-checked (off the loop) when read, sequenced in turn."""
        return {"submit": Pipeline(self._prepare_submit, self._run_submit, _accepted)}

    def _prepare_submit(
        self, session: Session, args: Args
    ) -> asyncio.Future[tuple[txn.SignedTransaction, float]]:
        signed = txn.decode(arg_bytes(args, "tx"))
        return self.verifier.check(signed, (signed, session.last_read))  # read just now

    def _run_submit(
        self, session: Session, checked: tuple[txn.SignedTransaction, float]
    ) -> asyncio.Future[Outcome]:
        return self.sequence(*checked)

    async def h_wait_committed(self, session: Session, args: Args) -> Result:
        """``wait_committed``: reply with the height once the transaction's block is stored."""
        tx_id = arg_bytes(args, "tx_id", 32)
        timeout = arg_int(args, "timeout_ms", 30_000) / 1000
        future = self.commit_waiters.get(tx_id)
        if future is not None:
            try:
                height = await asyncio.wait_for(asyncio.shield(future), timeout)
            except TimeoutError as exc:
                raise RequestFailed(E_TIMEOUT, "not committed in time") from exc
            return {"tx_id": tx_id, "height": height}
        found = self.store.transaction(tx_id)
        if found is None:
            raise RequestFailed(E_NOT_FOUND, f"transaction {tx_id.hex()} is not known")
        return {"tx_id": tx_id, "height": found.height}

    async def _sequence_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            timeout = None
            room = self.config.block_max_txs
            if self.block is not None:
                timeout = max(0.0, self.block.deadline - loop.time())
                room -= len(self.block.transactions)
            batch = await self.sequencer.next_batch(max(room, 1), timeout)
            for _seq, data in batch:
                self._apply(data)
            block = self.block
            if block is None:
                continue
            full = len(block.transactions) >= self.config.block_max_txs
            if full or loop.time() >= block.deadline:
                self._cut()

    def _apply(self, data: bytes) -> None:
        """Apply one sequenced transaction; resolve its submitter's future."""
        future = None
        try:
            verified = self.verified.pop(data, None)
            if verified is None:  # sequenced by another writer of the log
                signed, arrived = txn.decode(data), asyncio.get_running_loop().time()
            else:
                signed, arrived = verified
            future = self.accept_waiters.pop(signed.tx_id, None)
            # the submit pipeline or submit_bytes checked the signature before
            # sequencing (a sequencer fed by other writers must verify here instead)
            self.state.check(signed, verify_signature=False)
            if self.block is None:
                # The block interval counts from when its first transaction
                # reached the node, not from when its signature check ended:
                # it bounds how long a transaction waits in the node for a block.
                now = max(self.clock.time_ns(), self.state.time_ns)
                self.block = OpenBlock(now, arrived + self.config.block_interval_ms / 1000)
                self.block.results.extend(self.state.begin_block(now))
            outcome = self.state.apply_checked(signed)  # begin_block changes no check
        except InvalidTransaction as exc:
            if future is not None and not future.done():
                future.set_exception(exc)
            return
        block = self.block
        block.transactions.append(data)
        block.results.extend(outcome.results)
        block.tx_ids.append(signed.tx_id)
        payload = signed.transaction.payload
        if outcome.rejected is not None:
            pass  # a rejected CloseSlot or PublishClearing closed or cleared nothing
        elif isinstance(payload, txn.CloseSlot):
            block.closes.append((payload.product, payload.slot))
        elif isinstance(payload, txn.PublishClearing):
            block.clears.append((payload.product, payload.slot))
        elif isinstance(payload, txn.SetNetwork):
            block.sets_network = True
        self.commit_waiters[signed.tx_id] = asyncio.get_running_loop().create_future()
        if future is not None and not future.done():
            future.set_result(outcome)

    def _cut(self) -> None:
        """Sign the open block and hand it to the writer process (see ``_commit_loop``)."""
        block = self.block
        assert block is not None
        self.block = None
        signed_block = chain.build(
            self.key,
            chain_id=self.config.chain_id,
            parent=self.last_header,
            time_ns=block.time_ns,
            transactions=block.transactions,
            results=block.results,
            state_digest=self.state.state_digest(),
        )
        self.last_header = signed_block.header
        stored = self.writer.append_soon(signed_block)
        self.storing.put_nowait((stored, signed_block, block))

    async def _commit_loop(self) -> None:
        """Report blocks committed in order, each once its append returned (durable).

        A failed append raises here: the loop dies and the node exits (see
        ``watch``); the blocks after it fail to append too (they do not extend
        the head), so nothing after a lost block is ever reported committed.
        """
        while True:
            stored, signed_block, block = await self.storing.get()
            await stored
            height = signed_block.header.height
            self._stored_closed.update(block.closes)
            self._stored_cleared.update(block.clears)
            for tx_id in block.tx_ids:
                waiter = self.commit_waiters.pop(tx_id, None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(height)
            await self.on_block_stored(signed_block, signed_block.to_bytes())
            self._schedule_clearings(block)

    def stored_closed(self) -> set[tuple[str, int]]:
        """The (product, slot)s closed by stored blocks (not by the block being built)."""
        return self._stored_closed

    def stored_cleared(self) -> set[tuple[str, int]]:
        """The (product, slot)s whose clearing is in a stored block."""
        return self._stored_cleared

    # -- operator transactions, gate closure, clearing -------------------------------------------

    async def submit_own(self, payload: txn.Payload) -> Outcome:
        """Sign ``payload`` with the operator key and sequence it."""
        async with self._own_lock:
            nonce = self.state.next_nonce(self.key.public_key_bytes())
            signed = txn.make(self.key, self.config.chain_id, nonce, payload)
            return await self.submit_bytes(signed.to_bytes())

    async def _gate_loop(self) -> None:
        """Close every open slot whose delivery has started."""
        length_ns = self.config.slot_length_ms * 1_000_000
        while True:
            await asyncio.sleep(min(0.2, self.config.slot_length_ms / 4000))
            now = self.clock.time_ns()
            due = sorted(
                key
                for key in self.state.opened | set(self.state.curves)
                if key not in self.state.closed and key[1] * length_ns <= now
            )
            for product, slot in due:
                try:
                    await self.submit_own(txn.CloseSlot(product, slot))
                except InvalidTransaction as exc:
                    log.warning("closing %s slot %d failed: %s", product, slot, exc)

    def _pool(self) -> ProcessPoolExecutor:
        """The clearing worker pool, started on first use."""
        if self.clearing_pool is None:
            from market import gate_clearing as clearing_job

            # spawn, not fork: the node has threads (asyncio's executor) and a live loop
            self.clearing_pool = ProcessPoolExecutor(
                max_workers=1, mp_context=multiprocessing.get_context("spawn")
            )
            # Importing the solver takes seconds: do it now, in the worker, so the
            # first gate closure does not wait for it.
            self.clearing_pool.submit(clearing_job.warm_up)
        return self.clearing_pool

    def _schedule_clearings(self, block: OpenBlock) -> None:
        """Start the clearing of every slot a stored block closed.

        A published network means clearings will follow: start the worker.
        """
        if block.sets_network:
            self._pool()
        for product, slot in block.closes:
            self._start_clearing(product, slot)

    def _resume_clearings(self) -> None:
        """After a restart: clear the closed slots that have curves and no published result."""
        if self.state.network_json:
            self._pool()
        for key in sorted(self.state.closed):
            self._start_clearing(*key)

    def _start_clearing(self, product: str, slot: int) -> None:
        key = (product, slot)
        if key in self.clearing_tasks or key in self.state.clearings:
            return
        terms = self.state.gate_terms.get(key)
        if not self.state.curves.get(key) or terms is None or not terms[1]:
            return
        self.clearing_tasks[key] = asyncio.create_task(self._clear(product, slot))

    async def _clear(self, product: str, slot: int) -> None:
        """Run one slot's clearing in the worker pool and publish it."""
        from market import gate_clearing as clearing_job  # late: cvxpy only when clearing runs

        job = clearing_job.job_from_state(self.state, product, slot, self.config.clearing_model)
        pool = self._pool()
        loop = asyncio.get_running_loop()
        try:
            settlements, certificate = await loop.run_in_executor(pool, clearing_job.run_job, job)
            await self.submit_own(txn.PublishClearing(product, slot, settlements, certificate))
            log.info("published the clearing of %s slot %d", product, slot)
        except Exception:
            log.exception("clearing of %s slot %d failed", product, slot)


def _accepted(outcome: Outcome) -> Result:
    """The reply to an accepted ``submit``."""
    return {  # keys in sorted order: canonical as built (node.wire.protocol._canonical)
        "events": outcome_events(outcome),
        "order_id": outcome.order_id,
        "status": "accepted",
        "tx_id": outcome.tx_id,
    }
