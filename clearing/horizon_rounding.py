"""Rounding a horizon clearing to the ledger's integers, one settlement per slot.

The rule is the single-slot one of :mod:`clearing.rounding`, applied to each
slot on its own: every bilateral trade's energy is rounded once to the
nearest Wh (``round(P_ij x slot_hours x 1000)``, ties to even), its price
once to the nearest tick per kWh, money is ``price x energy`` tick·Wh, and
penalties are rounded per trade side the same way. So in every slot every
trade balances, ``Σ energy = 0``, ``Σ payment = 0`` and the operator's
revenue is ``Σ penalties``, exactly (:meth:`Settlement.check` runs on each).
As for one slot, the congestion charge of hard line limits is not part of
the rounded penalties.
"""

from __future__ import annotations

import numpy as np

from clearing.horizon import HorizonResult
from clearing.horizon_case import HorizonCase
from clearing.horizon_problem import FloatArray, IntArray
from clearing.rounding import PeerSettlement, Settlement, TradeSettlement


def _trades(
    product: str,
    names: tuple[str, ...],
    src: IntArray,
    dst: IntArray,
    kw: FloatArray,
    tau: FloatArray,
    ws: FloatArray,
    wd: FloatArray,
    hours: float,
    tick: float,
) -> list[TradeSettlement]:
    energy = np.rint(kw * hours * 1000.0).astype(np.int64)
    price = np.rint(tau / tick).astype(np.int64)
    pen_s = np.rint(ws / tick).astype(np.int64) * energy
    pen_d = np.rint(wd / tick).astype(np.int64) * energy
    keep = np.flatnonzero(energy > 0)
    return [
        TradeSettlement(
            product,
            names[int(src[k])],
            names[int(dst[k])],
            int(energy[k]),
            int(price[k]),
            int(price[k]) * int(energy[k]),
            int(pen_s[k]),
            int(pen_d[k]),
        )
        for k in keep
    ]


def round_horizon_settlement(case: HorizonCase, result: HorizonResult) -> tuple[Settlement, ...]:
    """Round each slot of ``result`` to Wh, ticks per kWh and tick·Wh (see the module docstring).

    Returns:
        One :class:`~clearing.rounding.Settlement` per slot, each checked.

    Raises:
        ClearingError: If a rounded slot does not balance (a broken invariant).
    """
    names, hours, tick = result.names, result.slot_hours, case.tick
    out = []
    for t in range(result.slots):
        trades = _trades(
            "electricity",
            names,
            result.e_src,
            result.e_dst,
            result.trades[t],
            result.trade_price[t],
            result.wp[t],
            result.wc[t],
            hours,
            tick,
        )
        products = ["electricity"]
        if result.heat_trades is not None and result.heat_trade_price is not None:
            zero = np.zeros(result.h_src.size)
            trades += _trades(
                "heat",
                names,
                result.h_src,
                result.h_dst,
                result.heat_trades[t],
                result.heat_trade_price[t],
                zero,
                zero,
                hours,
                tick,
            )
            products.append("heat")
        totals: dict[tuple[str, str], list[int]] = {}
        for tr in trades:
            for peer, sign, pen in (
                (tr.seller, 1, tr.seller_penalty),
                (tr.buyer, -1, tr.buyer_penalty),
            ):
                row = totals.setdefault((tr.product, peer), [0, 0, 0])
                row[0] += sign * tr.energy_wh
                row[1] -= sign * tr.amount
                row[2] += pen
        peers = tuple(
            PeerSettlement(product, name, *totals.get((product, name), [0, 0, 0]))
            for product in products
            for name in names
        )
        settlement = Settlement(
            tick=tick,
            trades=tuple(trades),
            peers=peers,
            operator_revenue=sum(tr.seller_penalty + tr.buyer_penalty for tr in trades),
        )
        settlement.check()
        out.append(settlement)
    return tuple(out)
