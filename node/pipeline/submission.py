"""One transaction on its way through the operator's pipeline.

A ``Submission`` is made when a client's transaction has passed its
signature check; it travels with the transaction through the stages
(``Intake`` appends it to the log, ``BlockProducer`` applies it and puts it
in a block, ``CommitTracker`` reports the block stored) and carries the two
answers its client waits for: ``accepted`` (applied: the outcome, or the
``InvalidTransaction`` it was refused for) and ``committed`` (the height of
the stored block).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from market import transactions as txn
from market.state import Outcome


def _future() -> asyncio.Future[object]:
    return asyncio.get_running_loop().create_future()


@dataclass(eq=False, slots=True)
class Submission:
    """A signature-checked transaction and the futures of its two answers."""

    signed: txn.SignedTransaction
    arrived: float  # the node clock's monotonic time when the node read it
    accepted: asyncio.Future[Outcome] = field(default_factory=_future)  # type: ignore[arg-type]
    committed: asyncio.Future[int] = field(default_factory=_future)  # type: ignore[arg-type]

    @property
    def tx_id(self) -> bytes:
        """The transaction's id."""
        return self.signed.tx_id

    def accept(self, outcome: Outcome) -> None:
        """Answer ``accepted`` with the outcome."""
        if not self.accepted.done():
            self.accepted.set_result(outcome)

    def refuse(self, error: BaseException) -> None:
        """Answer ``accepted`` with the error the transaction was refused for."""
        if not self.accepted.done():
            self.accepted.set_exception(error)
            # A refused transaction never commits: nobody may wait for that.
            self.committed.cancel()

    def commit(self, height: int) -> None:
        """Answer ``committed`` with the height of the stored block."""
        if not self.committed.done():
            self.committed.set_result(height)
