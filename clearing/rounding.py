"""Rounding a clearing to integer Wh and price ticks with exact balances.

Rule (documented in docs/clearing.md):

1. Each bilateral trade's energy is rounded once, to the nearest Wh (ties
   to even): ``e = round(P_ij x slot_hours x 1000)``. The seller gets
   ``+e`` and the buyer ``-e``, so every trade balances exactly (12.10) and
   so does the whole market (Σ_i energy_i = 0).
2. Each trade's price is rounded once to the nearest tick per kWh (ties to
   even): ``t = round(τ_ij / tick)``. The money of a trade is ``t x e``
   tick·Wh (exact integer arithmetic, no division); the buyer pays it and the
   seller receives it, so payments sum to zero exactly.
3. Penalties are rounded per trade side the same way (``round(w / tick) x
   e``) and paid to the grid operator, whose revenue is their exact sum.
4. A peer's energy, payment and penalty are the exact sums over its trades.
   Its energy may differ from ``round(P_i x hours x 1000)`` by at most half a
   Wh per trade it takes part in; the balances above never do.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from clearing.case import Case
from clearing.errors import ClearingError
from clearing.problem import FloatArray
from clearing.result import ClearingResult


@dataclass(frozen=True, slots=True)
class TradeSettlement:
    """One rounded bilateral trade (electricity or heat).

    Attributes:
        product: ``"electricity"`` or ``"heat"``.
        seller, buyer: Peer names.
        energy_wh: Energy delivered from seller to buyer, Wh (>= 0).
        price: Ticks per kWh.
        amount: price x energy_wh, tick·Wh, paid by the buyer to the seller.
        seller_penalty, buyer_penalty: Penalties in tick·Wh paid to the operator.
    """

    product: str
    seller: str
    buyer: str
    energy_wh: int
    price: int
    amount: int
    seller_penalty: int
    buyer_penalty: int


@dataclass(frozen=True, slots=True)
class PeerSettlement:
    """One peer's rounded totals for a product.

    Attributes:
        product: ``"electricity"`` or ``"heat"``.
        peer: Peer name.
        energy_wh: Net injection in Wh (+ sells, - buys).
        payment: Net money paid for trades, tick·Wh (+ pays, - receives).
        penalty: Penalties paid, tick·Wh.
    """

    product: str
    peer: str
    energy_wh: int
    payment: int
    penalty: int


@dataclass(frozen=True, slots=True)
class Settlement:
    """The rounded outcome of a clearing (all ints); see the module docstring."""

    tick: float
    trades: tuple[TradeSettlement, ...]
    peers: tuple[PeerSettlement, ...]
    operator_revenue: int  # Σ penalties, tick·Wh

    def check(self) -> None:
        """Raise :class:`ClearingError` unless every balance holds exactly."""
        for product in {p.product for p in self.peers}:
            rows = [p for p in self.peers if p.product == product]
            if sum(p.energy_wh for p in rows) != 0 or sum(p.payment for p in rows) != 0:
                msg = f"rounded {product} settlement does not balance"
                raise ClearingError(msg)
        penalties = sum(p.penalty for p in self.peers)
        if penalties != self.operator_revenue:
            msg = "rounded penalties do not add up to the operator revenue"
            raise ClearingError(msg)


def round_settlement(case: Case, result: ClearingResult) -> Settlement:
    """Round ``result`` to integer Wh, ticks per kWh and tick·Wh (see the module docstring).

    Trades that round to 0 Wh are dropped. The rule is applied to whole
    arrays of pairs at once: numpy's ``rint`` rounds half to even like
    Python's ``round``, and the integer products and sums run in int64 only
    when a bound computed beforehand shows they cannot overflow, in Python
    integers otherwise, so every figure is exact either way.

    Raises:
        ClearingError: If a traded pair's price or penalty is not finite, or
            the rounded settlement does not balance.
    """
    sol = result.solution
    parts = [
        _round_pairs(
            case, "electricity", result.e_src, result.e_dst, sol.p, sol.tau, result.wp, result.wc
        )
    ]
    if result.h_src.size:
        zero = np.zeros(result.h_src.size)
        parts.append(
            _round_pairs(case, "heat", result.h_src, result.h_dst, sol.hp, sol.tauh, zero, zero)
        )
    names = result.names
    trades = [
        TradeSettlement(part.product, names[s], names[d], e, t, a, ps, pd)
        for part in parts
        for s, d, e, t, a, ps, pd in zip(
            part.src.tolist(),
            part.dst.tolist(),
            part.energy.tolist(),
            part.price.tolist(),
            part.amount.tolist(),
            part.pen_s.tolist(),
            part.pen_d.tolist(),
            strict=True,
        )
    ]
    peers = tuple(
        PeerSettlement(part.product, name, e, pay, pen)
        for part in parts
        for name, e, pay, pen in zip(names, *part.totals(len(names)), strict=True)
    )
    settlement = Settlement(
        tick=case.tick,
        trades=tuple(trades),
        peers=peers,
        operator_revenue=sum(part.revenue() for part in parts),
    )
    settlement.check()
    return settlement


# Largest magnitude the int64 path accepts for any product or sum (2^62: a
# margin below 2^63 for the float estimate of the bound).
_INT64_SAFE = float(2**62)


@dataclass(frozen=True, slots=True)
class _RoundedPairs:
    """One product's kept trades as integer arrays (int64, or object of Python ints)."""

    product: str
    src: np.ndarray
    dst: np.ndarray
    energy: np.ndarray  # Wh
    price: np.ndarray  # ticks per kWh
    amount: np.ndarray  # tick·Wh
    pen_s: np.ndarray  # tick·Wh
    pen_d: np.ndarray  # tick·Wh

    def totals(self, n: int) -> tuple[list[int], list[int], list[int]]:
        """Each peer's exact energy, payment and penalty sums (Python ints, peer order)."""
        dtype = self.energy.dtype
        energy, payment, penalty = (np.zeros(n, dtype=dtype) for _ in range(3))
        np.add.at(energy, self.src, self.energy)
        np.add.at(energy, self.dst, -self.energy)
        np.add.at(payment, self.src, -self.amount)
        np.add.at(payment, self.dst, self.amount)
        np.add.at(penalty, self.src, self.pen_s)
        np.add.at(penalty, self.dst, self.pen_d)
        return (
            [int(x) for x in energy.tolist()],
            [int(x) for x in payment.tolist()],
            [int(x) for x in penalty.tolist()],
        )

    def revenue(self) -> int:
        """Σ penalties of both sides, tick·Wh (exact)."""
        return int(sum(self.pen_s.tolist())) + int(sum(self.pen_d.tolist()))


def _round_pairs(
    case: Case,
    product: str,
    src: np.ndarray,
    dst: np.ndarray,
    kw: FloatArray,
    tau: FloatArray,
    ws: FloatArray,
    wd: FloatArray,
) -> _RoundedPairs:
    """Apply rules 1-3 of the module docstring to every pair of one product."""
    wh_per_kw = case.slot_hours * 1000.0
    with np.errstate(invalid="ignore", over="ignore"):
        energy_f = np.rint(np.asarray(kw, dtype=np.float64) * wh_per_kw)
    if not np.all(np.isfinite(energy_f)):
        msg = f"cannot round {product} trades: a pair's energy is not finite"
        raise ClearingError(msg)
    keep = np.flatnonzero(energy_f > 0)
    energy_f = energy_f[keep]
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        price_f = np.rint(np.asarray(tau, dtype=np.float64)[keep] / case.tick)
        pen_s_f = np.rint(np.asarray(ws, dtype=np.float64)[keep] / case.tick)
        pen_d_f = np.rint(np.asarray(wd, dtype=np.float64)[keep] / case.tick)
    for what, values in (("price", price_f), ("penalty", pen_s_f), ("penalty", pen_d_f)):
        if not np.all(np.isfinite(values)):
            msg = f"cannot round {product} trades: a traded pair's {what} is not finite"
            raise ClearingError(msg)
    if _fits_int64(energy_f, price_f, pen_s_f, pen_d_f):
        energy = energy_f.astype(np.int64)
        price = price_f.astype(np.int64)
        pen_s = pen_s_f.astype(np.int64) * energy
        pen_d = pen_d_f.astype(np.int64) * energy
    else:  # exact Python integers (int() of an integral float is exact)
        energy = _python_ints(energy_f)
        price = _python_ints(price_f)
        pen_s = _python_ints(pen_s_f) * energy
        pen_d = _python_ints(pen_d_f) * energy
    return _RoundedPairs(product, src[keep], dst[keep], energy, price, price * energy, pen_s, pen_d)


def _fits_int64(energy: FloatArray, *rates: FloatArray) -> bool:
    """True when every product rate x energy and every peer's sum of them stays below 2^62.

    The bound is the sum over all trades of ``|energy| x max |rate|``: no
    product, and no peer's or the market's sum of products or of energies,
    can exceed it.
    """
    if energy.size == 0:
        return True
    rate = np.max(np.abs(np.stack(rates)), axis=0)
    bound = float(np.sum(energy * np.maximum(rate, 1.0)))
    return bound < _INT64_SAFE


def _python_ints(values: FloatArray) -> np.ndarray:
    out = np.empty(values.size, dtype=object)
    out[:] = [int(x) for x in values.tolist()]
    return out
