"""Gate clearing on a validator set: one validator solves each slot, the others stand by.

Every validator sees the same closed slots (they are in the log). Solving
is the expensive part, so for each (product, slot) the validators are
ranked by ``SHA-256(tag || product || slot || validator key)``: the first
solves at once, the next only if the slot is still not cleared
``backup_delay`` seconds later (its first-ranked validator is down), and
so on. Whoever publishes, the ``PublishClearing`` goes through the log
like any transaction and its block is attested like any block; a second
copy (two validators published) is refused deterministically by the
state machine (``already_cleared``).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable, Sequence

from market import transactions as txn
from market.state import ExchangeState, Outcome
from node.clock import Clock, sleep
from node.pipeline.clearings import ClearingRunner

log = logging.getLogger("p2pex.cluster.clearing")

RANK_TAG = b"p2pex/clearing-rank/v1\x00"
BACKUP_DELAY = 10.0  # seconds a validator of rank r waits r times before solving


def clearing_rank(product: str, slot: int, me: bytes, validators: Sequence[bytes]) -> int:
    """This validator's place (0 = first) in the order that solves (product, slot)."""

    def score(key: bytes) -> bytes:
        return hashlib.sha256(
            RANK_TAG + product.encode() + b"\x00" + slot.to_bytes(8, "big") + key
        ).digest()

    return sorted(validators, key=score).index(me)


class ClusterClearingRunner(ClearingRunner):
    """A ``ClearingRunner`` that solves a slot only when it is this validator's turn."""

    def __init__(
        self,
        state: Callable[[], ExchangeState],
        model: str,
        submit: Callable[[txn.Payload], Awaitable[Outcome]],
        *,
        clock: Clock,
        me: bytes,
        validators: Sequence[bytes],
        backup_delay: float = BACKUP_DELAY,
    ) -> None:
        super().__init__(state, model, submit)
        self.clock = clock
        self.me = me
        self.validators = list(validators)
        self.backup_delay = backup_delay

    async def _clear(self, product: str, slot: int) -> None:
        rank = clearing_rank(product, slot, self.me, self.validators)
        if rank > 0:
            await sleep(self.clock, rank * self.backup_delay)
            if (product, slot) in self.state().clearings:
                return  # a validator before this one published it
            log.warning(
                "%s slot %d is still not cleared: solving it (rank %d)", product, slot, rank
            )
        await super()._clear(product, slot)
