"""The operator node: a composition of the write path's stages around the shared reads.

Write path of one transaction (one ``Submission`` travels through it):

1. ``submit``: decoded when read and its signature checked by a worker
   process (``BatchVerifier``; refused at once if bad), then, in the order
   its client sent it, appended to the sequencing log (``Intake``).
2. The ``BlockProducer`` reads the log in order and applies each entry to
   the state machine: a refused one gets its error reply (``bad_nonce``,
   ...), an applied one joins the open block and its client gets
   ``accepted`` with the order's events. Blocks are cut by count or by a
   deadline on the injected clock, and signed.
3. The ``CommitTracker`` has the store's writer process append each block
   (durable when answered) and, in order, reports the block's transactions
   committed (``wait_committed``) and pushes the block to replicas.

Gate closure (``GateCloser``) and the clearing of closed slots
(``ClearingRunner``) submit the operator's own transactions through the
same path. Every part is handed its neighbours; the operator only wires
them: the log, the clock, the signer and the signature checker can be
replaced (a shared log, a ``FakeClock``, a test double).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from ledger.block import Block
from ledger.keys import SigningKey
from market import transactions as txn
from market.state import Outcome
from node.clock import Clock
from node.config import NodeConfig
from node.errors import RequestFailed
from node.pipeline import chain
from node.pipeline.blocks import BlockLimits, BlockProducer, OpenBlock
from node.pipeline.clearings import ClearingRunner
from node.pipeline.commits import CommitTracker
from node.pipeline.gate import GateCloser
from node.pipeline.intake import Intake
from node.pipeline.sequencer import EmbeddedLog, SequencerLog
from node.pipeline.store_writer import ProcessBlockStore
from node.pipeline.verifier import BatchVerifier
from node.roles.service import NodeService, arg_bytes, arg_int
from node.wire.events import outcome_events
from node.wire.protocol import E_NOT_FOUND, E_TIMEOUT
from node.wire.server import Args, Handler, Pipeline, Result, Session

log = logging.getLogger("p2pex.operator")


class Operator(NodeService):
    """The sequencing, block-producing node."""

    role = "operator"

    def __init__(
        self,
        config: NodeConfig,
        key: SigningKey,
        clock: Clock,
        sequencer: SequencerLog | None = None,
        *,
        verifier: BatchVerifier | None = None,
    ) -> None:
        self.writer = ProcessBlockStore(chain.store_file(Path(config.data_dir)))
        super().__init__(config, key.public_key_bytes(), clock, store=self.writer)
        self.key = key
        # not `or`: an empty EmbeddedLog is falsy (it has __len__)
        self.log: SequencerLog = sequencer if sequencer is not None else EmbeddedLog()
        self.verifier = verifier if verifier is not None else BatchVerifier(config.verify_workers)
        self.intake = Intake(self.log)
        self.commits = CommitTracker(self.writer, self.intake, self._block_stored)
        self.producer = BlockProducer(
            chain_id=config.chain_id,
            signer=key,
            state=self.state,
            log=self.log,
            intake=self.intake,
            clock=clock,
            limits=BlockLimits(config.block_interval_ms / 1000, config.block_max_txs),
            parent=self.store.head(),
            emit=self.commits.store,
        )
        self.clearings = ClearingRunner(lambda: self.state, config.clearing_model, self.submit_own)
        self.gate = GateCloser(lambda: self.state, clock, config.slot_length_ms, self.submit_own)
        self._tasks: list[asyncio.Task[None]] = []
        self._own_lock = asyncio.Lock()
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
        """Start the pipeline's loops, then listen."""
        await self.writer.start()
        self._tasks.append(self.watch(asyncio.create_task(self.producer.run())))
        self._tasks.append(self.watch(asyncio.create_task(self.commits.run())))
        if self.config.slot_length_ms > 0:
            self._tasks.append(self.watch(asyncio.create_task(self.gate.run())))
        self.clearings.resume()
        if self.config.verify_workers > 0:
            self.verifier.start()
        return await super().start(host, port)

    async def close(self) -> None:
        """Stop the loops (an open block is dropped: never reported committed)."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.clearings.close()
        await self.log.close()
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
        return await self.intake.submit(signed, self.clock.monotonic())

    def pipelines(self) -> dict[str, Pipeline]:
        """``submit``: decoded and signature-checked (off the loop) when read, sequenced in turn."""
        return {"submit": Pipeline(self._prepare_submit, self._run_submit, _accepted)}

    def _prepare_submit(
        self, session: Session, args: Args
    ) -> asyncio.Future[tuple[txn.SignedTransaction, float]]:
        signed = txn.decode(arg_bytes(args, "tx"))
        return self.verifier.check(signed, (signed, self.clock.monotonic()))  # read just now

    def _run_submit(
        self, session: Session, checked: tuple[txn.SignedTransaction, float]
    ) -> asyncio.Future[Outcome]:
        return self.intake.submit(*checked)

    async def h_wait_committed(self, session: Session, args: Args) -> Result:
        """``wait_committed``: reply with the height once the transaction's block is stored."""
        tx_id = arg_bytes(args, "tx_id", 32)
        timeout = arg_int(args, "timeout_ms", 30_000) / 1000
        submission = self.intake.in_flight.get(tx_id)
        if submission is not None:
            future = submission.committed
            try:
                height = await asyncio.wait_for(asyncio.shield(future), timeout)
            except TimeoutError as exc:
                raise RequestFailed(E_TIMEOUT, "not committed in time") from exc
            except asyncio.CancelledError:
                if not future.cancelled():
                    raise  # this request was cancelled
                msg = f"transaction {tx_id.hex()} was refused"
                raise RequestFailed(E_NOT_FOUND, msg) from None
            return {"tx_id": tx_id, "height": height}
        found = self.store.transaction(tx_id)
        if found is None:
            raise RequestFailed(E_NOT_FOUND, f"transaction {tx_id.hex()} is not known")
        return {"tx_id": tx_id, "height": found.height}

    async def _block_stored(self, block: Block, built: OpenBlock) -> None:
        """A block is durable: tell readers, waiters, replicas; start its slots' clearings."""
        self._stored_closed.update(built.closes)
        self._stored_cleared.update(built.clears)
        await self.on_block_stored(block, block.to_bytes())
        self.clearings.after_block(built.closes, built.sets_network)

    def stored_closed(self) -> set[tuple[str, int]]:
        """The (product, slot)s closed by stored blocks (not by the block being built)."""
        return self._stored_closed

    def stored_cleared(self) -> set[tuple[str, int]]:
        """The (product, slot)s whose clearing is in a stored block."""
        return self._stored_cleared

    # -- the operator's own transactions -----------------------------------------------------------

    async def submit_own(self, payload: txn.Payload) -> Outcome:
        """Sign ``payload`` with the operator key and sequence it."""
        async with self._own_lock:
            nonce = self.state.next_nonce(self.key.public_key_bytes())
            signed = txn.make(self.key, self.config.chain_id, nonce, payload)
            return await self.submit_bytes(signed.to_bytes())


def _accepted(outcome: Outcome) -> Result:
    """The reply to an accepted ``submit``."""
    return {  # keys in sorted order: canonical as built (node.wire.protocol._canonical)
        "events": outcome_events(outcome),
        "order_id": outcome.order_id,
        "status": "accepted",
        "tx_id": outcome.tx_id,
    }
