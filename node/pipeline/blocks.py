"""Block production: apply the log's entries in order, cut blocks, sign them.

The producer reads the sequencing log from its cursor and applies each entry
to the state machine. A block opens with its first applied transaction: its
header time is the node clock's time then (never earlier than the previous
block's), and it is cut ``interval`` seconds after that transaction reached
the node, or as soon as it holds ``max_txs`` transactions. The deadline is a
timer of the injected clock, so a test with a ``FakeClock`` cuts blocks by
moving the clock, and nothing here asks the event loop for the time.

With a ``BoundaryPolicy`` (a shared log: ``node.pipeline.log_time``) the
clock plays no part: marker entries in the log carry the time, the policy
says when a block is due, and the block is cut exactly at the entry that
made it due, so every reader of the same log cuts the same blocks.

Entries this node appended come with their ``Submission`` (signature
checked at intake); any other entry (another writer of a shared log) is
decoded and its signature checked here before it is applied: the log is
untrusted bytes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from ledger.block import Block, BlockHeader, build_block
from ledger.keys import SigningKey
from market import transactions as txn
from market.errors import InvalidTransaction
from market.state import ExchangeState
from node.clock import Clock, Timer
from node.pipeline.intake import Intake
from node.pipeline.sequencer import SequencerLog
from node.pipeline.submission import Submission

log = logging.getLogger("p2pex.blocks")


@dataclass
class OpenBlock:
    """The block being filled: its time, transactions, results and what it changes."""

    time_ns: int
    deadline: float  # the clock's monotonic time at which it is cut
    transactions: list[bytes] = field(default_factory=list)
    results: list[bytes] = field(default_factory=list)
    submissions: list[Submission] = field(default_factory=list)
    closes: list[tuple[str, int]] = field(default_factory=list)  # CloseSlot (product, slot)s
    clears: list[tuple[str, int]] = field(default_factory=list)  # PublishClearing (product, slot)s
    sets_network: bool = False  # holds a SetNetwork: clearings will follow
    end_position: int = -1  # the log position after the block's last entry (set when cut)


@dataclass(frozen=True, slots=True)
class BlockLimits:
    """When a block is cut."""

    interval: float  # seconds after its first transaction reached the node
    max_txs: int  # transactions


class BoundaryPolicy(Protocol):
    """Block boundaries and block times taken from the log itself (not from a clock)."""

    def is_marker(self, entry: bytes) -> bool:
        """The entry is a marker for the policy, never a transaction."""
        ...

    def read_marker(self, entry: bytes, open_time: int | None) -> bool:
        """Take a marker into account; True if the open block (opened at ``open_time``) is due."""
        ...

    def open_time(self, state_time: int) -> int:
        """The header time of a block that opens now."""
        ...


class BlockProducer:
    """Applies the log to the state machine and hands signed blocks to ``emit``."""

    def __init__(
        self,
        *,
        chain_id: str,
        signer: SigningKey,
        state: ExchangeState,
        log: SequencerLog,
        intake: Intake,
        clock: Clock,
        limits: BlockLimits,
        parent: BlockHeader | None,
        emit: Callable[[Block, OpenBlock], None],
        policy: BoundaryPolicy | None = None,
    ) -> None:
        self.chain_id = chain_id
        self.signer = signer
        self.state = state
        self.log = log
        self.intake = intake
        self.clock = clock
        self.limits = limits
        # The header of the last block built: blocks are built while earlier
        # ones are still being stored, so the store's head may lag behind it.
        self.parent = parent
        self.emit = emit
        self.policy = policy  # None: the clock's deadline; else the log's markers
        self.block: OpenBlock | None = None
        self.cursor = 0  # the next log position to apply
        self._timer: Timer | None = None
        self._due = False  # the open block's deadline timer fired
        self._wake = asyncio.Event()
        log.on_append(self._wake.set)

    async def run(self) -> None:
        """Apply entries as the log delivers them; cut blocks when due. Runs until cancelled."""
        wake = self._wake
        max_txs = self.limits.max_txs
        while True:
            room = max_txs - (len(self.block.transactions) if self.block is not None else 0)
            entries = self.log.read(self.cursor, max(room, 1))
            if entries:
                start = self.cursor
                self.cursor += len(entries)
                self.log.release(self.cursor)
                policy = self.policy
                for offset, data in enumerate(entries):
                    if policy is not None and policy.is_marker(data):
                        open_time = self.block.time_ns if self.block is not None else None
                        if policy.read_marker(data, open_time):
                            # here, at this entry: the same place for every reader
                            self.cut(start + offset + 1)
                        continue
                    self._apply(data)
            block = self.block
            if block is not None and (
                len(block.transactions) >= max_txs
                or self._due
                or self.clock.monotonic() >= block.deadline
            ):
                self.cut()
                continue
            if entries:
                await asyncio.sleep(0)  # let clients in between batches
                continue
            wake.clear()
            await wake.wait()

    def _apply(self, data: bytes) -> None:
        """Apply one log entry; answer its submitter."""
        submission = self.intake.take(data)
        try:
            if submission is None:  # another writer's entry: untrusted until checked here
                signed = txn.decode(data)
                self.state.check(signed, verify_signature=True)
                submission = Submission(signed, self.clock.monotonic())
                self.intake.in_flight.setdefault(signed.tx_id, submission)
            else:
                signed = submission.signed
                # the intake's signature check passed: only the state's rules are left
                self.state.check(signed, verify_signature=False)
        except InvalidTransaction as exc:
            if submission is not None:
                self.intake.forget(submission)
                submission.refuse(exc)
            else:
                log.warning("refused a log entry of another writer: %s", exc)
            return
        if self.block is None:
            self._open(submission.arrived)
        block = self.block
        assert block is not None
        outcome = self.state.apply_checked(signed)  # begin_block changes no check
        block.transactions.append(data)
        block.results.extend(outcome.results)
        block.submissions.append(submission)
        payload = signed.transaction.payload
        if outcome.rejected is not None:
            pass  # a rejected CloseSlot or PublishClearing closed or cleared nothing
        elif isinstance(payload, txn.CloseSlot):
            block.closes.append((payload.product, payload.slot))
        elif isinstance(payload, txn.PublishClearing):
            block.clears.append((payload.product, payload.slot))
        elif isinstance(payload, txn.SetNetwork):
            block.sets_network = True
        submission.accept(outcome)

    def _open(self, arrived: float) -> None:
        # The block interval counts from when its first transaction reached
        # the node, not from when its signature check ended: it bounds how
        # long a transaction waits in the node for a block.
        if self.policy is not None:  # time and boundaries come from the log
            now = self.policy.open_time(self.state.time_ns)
            self.block = OpenBlock(now, float("inf"))
            self.block.results.extend(self.state.begin_block(now))
            self._due = False
            return
        now = max(self.clock.time_ns(), self.state.time_ns)
        deadline = arrived + self.limits.interval
        block = self.block = OpenBlock(now, deadline)
        block.results.extend(self.state.begin_block(now))
        self._due = False
        self._timer = self.clock.call_at(deadline, self._deadline_reached)

    def _deadline_reached(self) -> None:
        # A loop timer may fire a little before the clock reads the deadline:
        # the flag, not the clock, says the block is due.
        self._due = True
        self._wake.set()

    def cut(self, end_position: int | None = None) -> None:
        """Sign the open block and hand it on (``emit``).

        ``end_position``: the log position after its last entry (default: the cursor).
        """
        block = self.block
        assert block is not None
        block.end_position = self.cursor if end_position is None else end_position
        self.block = None
        self._due = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        signed_block = build_block(
            self.signer,
            chain_id=self.chain_id,
            parent=self.parent,
            time_ns=block.time_ns,
            transactions=block.transactions,
            results=block.results,
            state_digest=self.state.state_digest(),
        )
        self.parent = signed_block.header
        self.emit(signed_block, block)
