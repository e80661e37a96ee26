"""The first stage of the write path: checked transactions into the sequencing log.

``Intake.submit`` takes a decoded transaction whose signature has been
checked, refuses one that is already on its way (the same transaction twice
in flight is a replay: ``DuplicateTransaction``), appends it to the log and remembers
its ``Submission`` by the entry's bytes, so the block producer finds it when
the log delivers the entry and does not decode or verify it a second time.
"""

from __future__ import annotations

import asyncio

from market import transactions as txn
from market.errors import DuplicateTransaction
from market.state import Outcome
from node.errors import SequencerUnavailable
from node.pipeline.sequencer import SequencerLog
from node.pipeline.submission import Submission


class Intake:
    """Appends checked transactions to the log; tracks them until they are applied."""

    __slots__ = ("in_flight", "log", "pending")

    def __init__(self, log: SequencerLog) -> None:
        self.log = log
        # entry bytes -> its submission, from the append until the producer applies it
        self.pending: dict[bytes, Submission] = {}
        # tx id -> submission, from the append until its block is stored (or it is refused)
        self.in_flight: dict[bytes, Submission] = {}

    def submit(self, signed: txn.SignedTransaction, arrived: float) -> asyncio.Future[Outcome]:
        """Append a signature-checked transaction to the log, at once.

        Returns the future of its outcome (resolved when the producer applied
        it, or failed with the ``InvalidTransaction`` it was refused for, or
        with ``SequencerUnavailable`` if the log could not take it).

        Raises:
            DuplicateTransaction: the same transaction is already on its way.
        """
        tx_id = signed.tx_id
        if tx_id in self.in_flight:
            raise DuplicateTransaction(tx_id, signed.transaction.nonce)
        submission = Submission(signed, arrived)
        data = signed.data
        self.pending[data] = submission
        self.in_flight[tx_id] = submission
        appended = self.log.append(data)
        if not appended.done() or appended.exception() is not None:
            appended.add_done_callback(lambda f: self._appended(f, data))
        return submission.accepted

    def _appended(self, appended: asyncio.Future[int], data: bytes) -> None:
        if appended.cancelled() or appended.exception() is not None:
            submission = self.pending.pop(data, None)
            if submission is not None:
                self.in_flight.pop(submission.tx_id, None)
                error = appended.exception() if not appended.cancelled() else None
                unavailable = SequencerUnavailable(f"the sequencing log refused it: {error}")
                submission.accepted.set_exception(unavailable)
                submission.committed.cancel()

    def take(self, data: bytes) -> Submission | None:
        """The submission of a log entry this node appended, or None (another writer's)."""
        return self.pending.pop(data, None)

    def forget(self, submission: Submission) -> None:
        """The submission is answered for good (refused, or its block is stored)."""
        self.in_flight.pop(submission.tx_id, None)
