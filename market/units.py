"""The one mapping between the ledger's integers and the clearing's floats.

The ledger, the order book and every balance are integers: energy in Wh,
prices in ticks per kWh, money in tick x Wh. The clearing (the chapter's
model) works in floats: power in kW over a slot of ``slot_hours`` hours,
prices in currency per kWh, curve coefficients in currency. Every
conversion between the two goes through this module, so the state
machine's gate clearing, the demo's agents and scripts that start from a
clearing case agree to the last digit.

A peer's curve on the ledger (``DeclareCurve``) is ``a`` milli-ticks per
kWh², ``b`` ticks per kWh, ``c`` tick·Wh and bounds ``q_min``, ``q_max`` in
Wh; in the clearing it is ``a``, ``b``, ``c`` in currency (per kW², per kW,
flat) and ``p_min``, ``p_max`` in kW.
"""

from __future__ import annotations

from dataclasses import dataclass

TICK = 0.0001  # currency per tick in the cases the chain clears (the order book needs none)


@dataclass(frozen=True, slots=True)
class Units:
    """The scale between the ledger and a clearing case.

    Requires: ``tick > 0`` and ``slot_hours > 0``.

    >>> Units().wh(2.5), Units().kw(2_500), Units(slot_hours=0.25).wh(2.0)
    (2500, 2.5, 500)
    """

    tick: float = TICK  # currency per price tick
    slot_hours: float = 1.0  # length of a delivery slot

    def __post_init__(self) -> None:
        if not (self.tick > 0 and self.slot_hours > 0):
            msg = f"tick and slot_hours must be positive, got {self.tick}, {self.slot_hours}"
            raise ValueError(msg)

    def wh(self, kw: float) -> int:
        """Power held over one slot (kW) -> energy in whole Wh (rounded to nearest)."""
        return round(kw * self.slot_hours * 1000)

    def kw(self, wh: int) -> float:
        """Energy over one slot (Wh) -> power in kW."""
        return wh / (self.slot_hours * 1000)

    def ticks(self, price: float) -> int:
        """A price in currency per kWh -> whole ticks per kWh (rounded to nearest)."""
        return round(price / self.tick)

    def price(self, ticks: int) -> float:
        """Ticks per kWh -> currency per kWh."""
        return ticks * self.tick

    def curve_to_clearing(self, a: int, b: int, c: int, q_min: int, q_max: int) -> dict[str, float]:
        """A ledger curve -> the clearing case's ``a, b, c, p_min, p_max``."""
        return {
            "a": a / 1000 * self.tick,
            "b": b * self.tick,
            "c": c * self.tick / 1000,
            "p_min": self.kw(q_min),
            "p_max": self.kw(q_max),
        }

    def curve_to_ledger(
        self, a: float, b: float, c: float, p_min: float, p_max: float
    ) -> tuple[int, int, int, int, int]:
        """A clearing curve -> the ledger's ``(a, b, c, q_min, q_max)``, each rounded to nearest."""
        return (
            round(a / self.tick * 1000),
            round(b / self.tick),
            round(c / self.tick * 1000),
            self.wh(p_min),
            self.wh(p_max),
        )
