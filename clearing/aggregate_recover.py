"""Recover per-pair trades and multipliers from an aggregated solution.

**Rule (pro-rata within a block).** A block's total ``x_GH`` is split over
its pairs in proportion to both ends' shares of their group's injection::

    p_sd = x_GH · (|P_s| / Σ_{i∈G} |P_i|) · (|P_d| / Σ_{j∈H} |P_j|)

(a share is 0 when its group injects nothing). Summed over d, a seller gets
``|P_s| / |P_G| · Σ_H x_GH = P_s`` by its group's balance, and likewise each
buyer: the per-pair balances 12.1 and 12.10 hold, every ``p_sd >= 0`` (12.8,
12.9), and the split is fixed by the certified ``P`` and ``x``. Heat is split
the same way.

**Multipliers.** Every peer of a group gets its group's price ``π_G`` (its
stationarity ``a P + b - π + up - lo = 0`` is then the aggregated one); a
trade's price and sign multipliers follow from its reduced cost
``r = wp + wc + 2 ε p + π_s - π_d`` as in the per-pair model: ``sp = sq =
r/2``, ``τ = π_s + wp + ε p - r/2``. ``r`` is 0 up to ``2 ε (p - x/(|G||H|))``
on a trading block: the tie-break term differs (see
:mod:`clearing.aggregate_problem`), nothing else does.

**Objective.** The per-pair objective at these trades,
``F_pair = F_agg + ε Σ_k (p_k - x_GH/(|G||H|))²`` (the heat term likewise),
bounds the per-pair optimum from above, and the aggregated optimum
``F_agg`` bounds it from below.
"""

from __future__ import annotations

import numpy as np

from clearing.aggregate_problem import AggregateProblem, Grouping
from clearing.aggregate_solve import AggregateSolution
from clearing.problem import FloatArray, IntArray, ProblemData
from clearing.solution import Solution


def _shares(grouping: Grouping, inject: FloatArray, seller: bool) -> FloatArray:
    amount = np.maximum(inject if seller else -inject, 0.0)
    members = grouping.group >= 0
    total = np.bincount(grouping.group[members], weights=amount[members], minlength=grouping.groups)
    out = np.zeros(inject.size, dtype=np.float64)
    idx = np.flatnonzero(members)
    tot = total[grouping.group[idx]]
    out[idx] = np.divide(amount[idx], tot, out=np.zeros(idx.size), where=tot > 0)
    return out


def recover_trades(
    grouping: Grouping, inject: FloatArray, x: FloatArray, src: IntArray, dst: IntArray
) -> FloatArray:
    """Split block totals ``x`` over the pairs ``(src, dst)`` by the pro-rata rule.

    Runtime and memory: O(peers + pairs).
    """
    sell = _shares(grouping, inject, seller=True)
    buy = _shares(grouping, inject, seller=False)
    block = grouping.block_of(src, dst)
    return np.asarray(np.maximum(x, 0.0)[block] * sell[src] * buy[dst], dtype=np.float64)


def _split(
    p: FloatArray,
    pi: FloatArray,
    src: IntArray,
    dst: IntArray,
    wp: FloatArray,
    wc: FloatArray,
    eps: float,
) -> tuple[FloatArray, FloatArray]:
    """Return (τ, half the reduced cost) of each trade, as the per-pair model does."""
    half = 0.5 * (wp + wc + 2.0 * eps * p + pi[src] - pi[dst])
    return np.asarray(pi[src] + wp + eps * p - half), np.asarray(half)


def _peer_price(grouping: Grouping, group_price: FloatArray, fallback: FloatArray) -> FloatArray:
    members = grouping.group >= 0
    out = fallback.copy()
    out[members] = group_price[grouping.group[members]]
    return out


def expand_solution(prob: AggregateProblem, sol: AggregateSolution, data: ProblemData) -> Solution:
    """Return the per-pair :class:`Solution` for ``data`` (the per-pair arrays of the same case).

    ``data`` must come from :func:`clearing.problem.build_problem` with the
    same spec: its pairs are then exactly the pairs of the blocks.
    """
    n = prob.n
    e, h = prob.elec, prob.hgroups
    p = recover_trades(e, sol.P, sol.x, data.e_src, data.e_dst)
    pi = _peer_price(e, sol.pi, np.zeros(n))
    tau, half = _split(p, pi, data.e_src, data.e_dst, data.wp, data.wc, data.eps)
    empty = np.zeros(0, dtype=np.float64)
    hp = pih = tauh = halfh = empty
    if prob.heat:
        hp = recover_trades(h, sol.H, sol.y, data.h_src, data.h_dst)
        # a peer outside every heat group has H fixed by its bounds; its price is
        # whatever makes its stationarity hold
        own = prob.ah * sol.H + prob.bh + sol.uph - sol.loh
        own = own + np.bincount(prob.chp_peer, weights=sol.kappa * prob.chp_gh, minlength=n)
        pih = _peer_price(h, sol.pih, own)
        zero = np.zeros(hp.size)
        tauh, halfh = _split(hp, pih, data.h_src, data.h_dst, zero, zero, data.eps)
    return Solution(
        P=sol.P,
        p=p,
        q=-p,
        H=sol.H,
        hp=hp,
        hq=-hp,
        pi=pi,
        tau=tau,
        up=sol.up,
        lo=sol.lo,
        sp=half,
        sq=half.copy(),
        fu=sol.fu,
        fl=sol.fl,
        pih=pih,
        tauh=tauh,
        uph=sol.uph,
        loh=sol.loh,
        sph=halfh,
        sqh=halfh.copy(),
        kappa=sol.kappa,
    )


def pair_objective(data: ProblemData, sol: Solution) -> float:
    """Return the per-pair objective (without the constants c) at ``sol``."""
    value = float(np.sum(0.5 * data.a * sol.P**2 + data.b * sol.P))
    value += float(np.dot(data.wp + data.wc, sol.p)) + data.eps * float(np.dot(sol.p, sol.p))
    if data.heat:
        value += float(np.sum(0.5 * data.ah * sol.H**2 + data.bh * sol.H))
        value += data.eps * float(np.dot(sol.hp, sol.hp))
    return value
