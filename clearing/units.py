"""The float side of the ledger's integer units: what a tick, a Wh and a milli-unit are here.

The ledger keeps energy in Wh, prices in integer ticks per kWh and money in
tick·Wh; the clearing works in kW, currency per kWh and currency. This module
is clearing's half of that boundary, written once: a declared supply or
demand curve in ledger integers becomes a peer's floats, and back.

Ledger units of a curve (``DeclareCurve``): ``a`` in milli-ticks per kWh²,
``b`` in ticks per kWh, ``c`` in tick·Wh, bounds ``q_min``/``q_max`` in Wh
over the slot. A tariff's α and β are in milli-units (α in 10^-3
currency/(kWh·Ω), β in 10^-3 currency/kWh, as the chapter's table 12.2).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

TICK = 0.0001  # currency per price tick, per kWh: the ledger's tick
WH_PER_KWH = 1000


class CurveLike(Protocol):
    """Anything with a peer's curve: ``a``, ``b``, ``c``, ``p_min``, ``p_max`` (e.g. a Peer)."""

    @property
    def a(self) -> float: ...  # currency per kW²h
    @property
    def b(self) -> float: ...  # currency per kWh
    @property
    def c(self) -> float: ...  # currency per hour
    @property
    def p_min(self) -> float: ...  # kW
    @property
    def p_max(self) -> float: ...  # kW


@dataclass(frozen=True, slots=True)
class CurveFloats:
    """A curve in the clearing's float units (the fields of a case's peer).

    Attributes:
        a: Currency per kW²h.
        b: Currency per kWh.
        c: Currency per hour.
        p_min, p_max: kW, averaged over the slot.
    """

    a: float
    b: float
    c: float
    p_min: float
    p_max: float

    def as_dict(self) -> dict[str, float]:
        """The peer fields of :meth:`clearing.Case.from_dict` (``a, b, c, p_min, p_max``)."""
        return {"a": self.a, "b": self.b, "c": self.c, "p_min": self.p_min, "p_max": self.p_max}


def curve_to_floats(
    a_milli: int,
    b: int,
    c: int,
    q_min_wh: int,
    q_max_wh: int,
    *,
    tick: float = TICK,
    slot_hours: float = 1.0,
) -> CurveFloats:
    """Map a curve in ledger integers onto the clearing's units.

    >>> curve_to_floats(100_000, 4000, 0, -20_000, -5_000)
    CurveFloats(a=0.01, b=0.4, c=0.0, p_min=-20.0, p_max=-5.0)
    """
    # divide (never multiply by a reciprocal): the same floats as the mapping
    # chains were written with
    wh_per_kw = WH_PER_KWH * slot_hours
    return CurveFloats(
        a=a_milli / 1000 * tick,
        b=b * tick,
        c=c * tick / WH_PER_KWH,
        p_min=q_min_wh / wh_per_kw,
        p_max=q_max_wh / wh_per_kw,
    )


def curve_to_ints(
    curve: CurveLike, *, tick: float = TICK, slot_hours: float = 1.0
) -> tuple[int, int, int, int, int]:
    """The inverse of :func:`curve_to_floats`, rounded to the nearest unit (ties to even).

    Returns ``(a_milli, b, c, q_min_wh, q_max_wh)``.

    >>> curve_to_ints(CurveFloats(0.01, 0.4, 0.0, -20.0, -5.0))
    (100000, 4000, 0, -20000, -5000)
    """
    wh = WH_PER_KWH * slot_hours
    return (
        round(curve.a / tick * 1000),
        round(curve.b / tick),
        round(curve.c / tick * WH_PER_KWH),
        round(curve.p_min * wh),
        round(curve.p_max * wh),
    )


def tariff_to_floats(alpha_milli: int, beta_milli: int) -> tuple[float, float]:
    """Map a tariff in milli-units onto (α, β) in currency/(kWh·Ω) and currency/kWh.

    >>> tariff_to_floats(5, 5)
    (0.005, 0.005)
    """
    return alpha_milli / 1000, beta_milli / 1000
