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

    Trades that round to 0 Wh are dropped.
    """
    names = result.names
    wh_per_kw = case.slot_hours * 1000.0
    trades: list[TradeSettlement] = []
    totals: dict[tuple[str, str], list[int]] = {}

    def add(product: str, s: int, d: int, kw: float, tau: float, ws: float, wd: float) -> None:
        energy = round(kw * wh_per_kw)
        if energy <= 0:
            return
        price = round(tau / case.tick)
        amount = price * energy
        pen_s, pen_d = round(ws / case.tick) * energy, round(wd / case.tick) * energy
        trades.append(
            TradeSettlement(product, names[s], names[d], energy, price, amount, pen_s, pen_d)
        )
        for peer, sign, pen in ((names[s], 1, pen_s), (names[d], -1, pen_d)):
            row = totals.setdefault((product, peer), [0, 0, 0])
            row[0] += sign * energy
            row[1] -= sign * amount
            row[2] += pen

    sol = result.solution
    for k in range(result.e_src.size):
        s, d = int(result.e_src[k]), int(result.e_dst[k])
        add("electricity", s, d, float(sol.p[k]), float(sol.tau[k]), result.wp[k], result.wc[k])
    for k in range(result.h_src.size):
        s, d = int(result.h_src[k]), int(result.h_dst[k])
        add("heat", s, d, float(sol.hp[k]), float(sol.tauh[k]), 0.0, 0.0)
    products = ["electricity"] + (["heat"] if result.h_src.size else [])
    peers = tuple(
        PeerSettlement(product, name, *totals.get((product, name), [0, 0, 0]))
        for product in products
        for name in names
    )
    settlement = Settlement(
        tick=case.tick,
        trades=tuple(trades),
        peers=peers,
        operator_revenue=int(np.sum([t.seller_penalty + t.buyer_penalty for t in trades])),
    )
    settlement.check()
    return settlement
