"""Gate closure: the operator closes every open slot whose delivery has started.

With ``slot_length_ms`` > 0, slot ``s`` is delivered from ``s *
slot_length_ms`` Unix ms on; from then on no order may trade in it, so the
operator closes it with a ``CloseSlot`` it signs itself. The rounds run on
the injected clock's timers.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from market import gate_plan
from market import transactions as txn
from market.errors import InvalidTransaction
from market.state import ExchangeState, Outcome
from node.clock import Clock, sleep

log = logging.getLogger("p2pex.gate")
BOTH = (gate_plan.ELECTRICITY, gate_plan.HEAT)


def due_slots(state: ExchangeState, now_ns: int, slot_length_ns: int) -> list[tuple[str, int]]:
    """The (product, slot)s with a book or curves, not closed, whose delivery has started.

    A slot with heat data (``market.gate_plan.has_heat``) is cleared for both
    products at once, so both its gates close, even one with no book or curve.
    """
    keys = state.opened | set(state.curves)
    keys |= {(p, s) for _, s in keys if gate_plan.has_heat(state, s) for p in BOTH}
    keys |= {(p, s) for s, units in state.chp.items() if units for p in BOTH}
    return sorted(
        key for key in keys if key not in state.closed and key[1] * slot_length_ns <= now_ns
    )


class GateCloser:
    """Closes due slots, one round every quarter slot (at most every 0.2 s)."""

    def __init__(
        self,
        state: Callable[[], ExchangeState],
        clock: Clock,
        slot_length_ms: int,
        submit: Callable[[txn.Payload], Awaitable[Outcome]],
    ) -> None:
        self.state = state
        self.clock = clock
        self.slot_length_ms = slot_length_ms
        self.submit = submit

    async def run(self) -> None:
        """Close due slots round after round. Runs until cancelled."""
        length_ns = self.slot_length_ms * 1_000_000
        while True:
            await sleep(self.clock, min(0.2, self.slot_length_ms / 4000))
            for product, slot in due_slots(self.state(), self.clock.time_ns(), length_ns):
                try:
                    await self.submit(txn.CloseSlot(product, slot))
                except InvalidTransaction as exc:
                    log.warning("closing %s slot %d failed: %s", product, slot, exc)
