"""Solve the aggregated QP with Clarabel, and check its KKT conditions without a solver.

The aggregated QP is small (peers plus blocks) and built fresh for every
solve: it goes to Clarabel directly as sparse matrices, without cvxpy, so
there is nothing to compile. Clarabel solves ``min ½ zᵀQz + qᵀz`` subject to
``A z + s = b``, ``s`` in a product of the zero cone (equalities) and the
non-negative cone (``<=`` rows), and returns ``y`` with ``Qz + q + Aᵀy = 0``.
With the balances written ``Σ_{i∈G} P_i - Σ_H x_GH = 0``, a peer's
stationarity reads ``a P + b + y_G + up - lo = 0``, so the group's price is
``π_G = -y_G`` and the ``<=`` multipliers are the (non-negative) ``y``
themselves: the sign convention of :mod:`clearing.problem`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import clarabel as _clarabel
import numpy as np
import scipy.sparse as sp

from clearing.aggregate_problem import AggregateProblem, Grouping
from clearing.certificate import CertificateReport
from clearing.errors import Infeasible, SolverFailed
from clearing.problem import FloatArray
from clearing.solution import SolveInfo

cb: Any = _clarabel  # untyped: keep it Any inside this module only

_INFEASIBLE = {"PrimalInfeasible", "AlmostPrimalInfeasible"}
_WHY = {
    "AlmostSolved": (
        "optimal_inaccurate",
        "the solver stopped before reaching its accuracy targets",
    ),
    "DualInfeasible": ("unbounded", "the objective is unbounded below (a bound is missing)"),
    "AlmostDualInfeasible": ("unbounded_inaccurate", "the objective looks unbounded below"),
    "MaxIterations": ("user_limit", "an iteration limit was hit"),
    "MaxTime": ("user_limit", "a time limit was hit"),
}


@dataclass(frozen=True, slots=True, eq=False)
class AggregateSolution:
    """Primal and dual values of the aggregated QP (names as in :mod:`clearing.aggregate_problem`).

    ``x``/``rho`` and ``y``/``rhoh`` are per block; ``pi``/``pih`` per group;
    heat arrays are empty without heat, ``fu``/``fl`` without line limits.
    """

    P: FloatArray
    x: FloatArray
    H: FloatArray
    y: FloatArray
    pi: FloatArray
    pih: FloatArray
    up: FloatArray
    lo: FloatArray
    rho: FloatArray
    fu: FloatArray
    fl: FloatArray
    uph: FloatArray
    loh: FloatArray
    rhoh: FloatArray
    kappa: FloatArray


def _balance(grouping: Grouping, n: int, col0: int, xcol0: int, width: int) -> Any:
    """Rows ``Σ_{i∈g} v_i - Σ_{blocks from g} x + Σ_{blocks to g} x`` of one product."""
    members = np.flatnonzero(grouping.group >= 0)
    k = grouping.blocks
    blocks = np.arange(k)
    rows = np.concatenate([grouping.group[members], grouping.block_src(), grouping.block_dst()])
    cols = np.concatenate([col0 + members, xcol0 + blocks, xcol0 + blocks])
    vals = np.concatenate([np.ones(members.size), -np.ones(k), np.ones(k)])
    return sp.csc_matrix((vals, (rows, cols)), shape=(grouping.groups, width))


def _select(rows: np.ndarray, cols: np.ndarray, sign: float, width: int) -> Any:
    return sp.csc_matrix(
        (np.full(rows.size, sign), (np.arange(rows.size), cols)), shape=(rows.size, width)
    )


class _Layout:
    """Positions of the variable blocks in z = [P, x, H, y] and of the constraint rows."""

    def __init__(self, prob: AggregateProblem) -> None:
        n, kx = prob.n, prob.elec.blocks
        kh = prob.hgroups.blocks if prob.heat else 0
        nh = n if prob.heat else 0
        self.P, self.x = slice(0, n), slice(n, n + kx)
        self.H, self.y = slice(n + kx, n + kx + nh), slice(n + kx + nh, n + kx + nh + kh)
        self.width = n + kx + nh + kh
        self.nh, self.kh = nh, kh


def _matrices(prob: AggregateProblem, lay: _Layout) -> tuple[Any, FloatArray, Any, FloatArray, Any]:
    n, w = prob.n, lay.width
    e, h = prob.elec, prob.hgroups
    diag = [prob.a, 2.0 * prob.eps / e.pairs()]
    lin = [prob.b, prob.wp + prob.wc]
    if prob.heat:
        diag += [prob.ah, 2.0 * prob.eps / h.pairs()]
        lin += [prob.bh, np.zeros(lay.kh)]
    Q = sp.diags(np.concatenate(diag), format="csc")
    q = np.concatenate(lin)
    ids = np.arange(n)
    eq_rows = [_balance(e, n, lay.P.start, lay.x.start, w)]
    eq_b = [np.zeros(e.groups)]
    ineq = [
        _select(ids, lay.P.start + ids, 1.0, w),
        _select(ids, lay.P.start + ids, -1.0, w),
        _select(np.arange(e.blocks), lay.x.start + np.arange(e.blocks), -1.0, w),
    ]
    ineq_b = [prob.p_max, -prob.p_min, np.zeros(e.blocks)]
    if prob.limited.size:
        F = sp.hstack([sp.csc_matrix(prob.flow), sp.csc_matrix((prob.limited.size, w - n))])
        ineq += [F, -F]
        ineq_b += [prob.cap, prob.cap]
    if prob.heat:
        eq_rows.append(_balance(h, n, lay.H.start, lay.y.start, w))
        eq_b.append(np.zeros(h.groups))
        ineq += [
            _select(ids, lay.H.start + ids, 1.0, w),
            _select(ids, lay.H.start + ids, -1.0, w),
            _select(np.arange(lay.kh), lay.y.start + np.arange(lay.kh), -1.0, w),
        ]
        ineq_b += [prob.h_max, -prob.h_min, np.zeros(lay.kh)]
        k = prob.chp_peer.size
        if k:
            rows = np.concatenate([np.arange(k), np.arange(k)])
            cols = np.concatenate([lay.P.start + prob.chp_peer, lay.H.start + prob.chp_peer])
            vals = np.concatenate([prob.chp_gp, prob.chp_gh])
            ineq.append(sp.csc_matrix((vals, (rows, cols)), shape=(k, w)))
            ineq_b.append(prob.chp_g)
    A = sp.vstack(eq_rows + ineq, format="csc")
    b = np.concatenate(eq_b + ineq_b)
    n_eq = sum(m.shape[0] for m in eq_rows)
    cones = [cb.ZeroConeT(n_eq), cb.NonnegativeConeT(A.shape[0] - n_eq)]
    return Q, q, A, b, cones


def solve_aggregate(
    prob: AggregateProblem, options: Mapping[str, object] | None = None
) -> tuple[AggregateSolution, SolveInfo]:
    """Solve the aggregated QP with Clarabel.

    Args:
        prob: The aggregated problem.
        options: Clarabel settings by name (e.g. ``{"direct_solve_method": "faer"}``).

    Raises:
        Infeasible: If the problem has no feasible point.
        SolverFailed: For any other status than solved.
    """
    lay = _Layout(prob)
    Q, q, A, b, cones = _matrices(prob, lay)
    settings = cb.DefaultSettings()
    settings.verbose = False
    for key, value in dict(options or {}).items():
        setattr(settings, key, value)
    try:
        solver = cb.DefaultSolver(sp.triu(Q, format="csc"), q, A, b, cones, settings)
        out = solver.solve()
    except Exception as exc:  # clarabel raises plain exceptions on bad input
        msg = f"solver status solver_error: {exc}"
        raise SolverFailed(msg, status="solver_error") from exc
    status = str(out.status)
    if status in _INFEASIBLE:
        msg = (
            f"solver status {status}: the data admit no feasible clearing "
            "(check bounds, CHP regions and line limits)"
        )
        raise Infeasible(msg, status="infeasible")
    if status != "Solved":
        code, why = _WHY.get(status, ("solver_error", "the solver failed numerically"))
        msg = f"solver status {code}: {why} (Clarabel: {status})"
        raise SolverFailed(msg, status=code)
    z = np.asarray(out.x, dtype=np.float64)
    dual = np.asarray(out.z, dtype=np.float64)
    sol = _extract(prob, lay, z, dual)
    info = SolveInfo(
        status="optimal",
        solver="CLARABEL",
        compile_time_s=0.0,
        solve_time_s=float(out.solve_time),
        iterations=int(out.iterations),
        objective=float(out.obj_val),
    )
    return sol, info


def _extract(
    prob: AggregateProblem, lay: _Layout, z: FloatArray, dual: FloatArray
) -> AggregateSolution:
    n, e, h = prob.n, prob.elec, prob.hgroups
    at = 0

    def take(size: int) -> FloatArray:
        nonlocal at
        out = dual[at : at + size]
        at += size
        return np.asarray(out, dtype=np.float64)

    pi = -take(e.groups)
    pih = -take(h.groups) if prob.heat else np.zeros(0)
    up, lo, rho = take(n), take(n), take(e.blocks)
    nl = prob.limited.size
    fu, fl = take(nl), take(nl)
    empty = np.zeros(0)
    uph = loh = rhoh = kappa = empty
    if prob.heat:
        uph, loh, rhoh = take(n), take(n), take(lay.kh)
        kappa = take(prob.chp_peer.size)
    return AggregateSolution(
        P=z[lay.P].copy(),
        x=z[lay.x].copy(),
        H=z[lay.H].copy(),
        y=z[lay.y].copy(),
        pi=pi,
        pih=pih,
        up=up,
        lo=lo,
        rho=rho,
        fu=fu,
        fl=fl,
        uph=uph,
        loh=loh,
        rhoh=rhoh,
        kappa=kappa,
    )


# ------------------------------------------------------------------ KKT check
def _max(x: FloatArray) -> float:
    return float(np.max(np.abs(x))) if x.size else 0.0


def _neg(x: FloatArray) -> float:
    return float(max(0.0, -float(np.min(x)))) if x.size else 0.0


def _group_sum(grouping: Grouping, values: FloatArray) -> FloatArray:
    members = grouping.group >= 0
    out = np.bincount(grouping.group[members], weights=values[members], minlength=grouping.groups)
    return np.asarray(out, dtype=np.float64)


def _block_net(grouping: Grouping, x: FloatArray) -> FloatArray:
    """What the blocks deliver to each group: - Σ sold + Σ bought."""
    into = np.bincount(grouping.block_dst(), weights=x, minlength=grouping.groups)
    out = np.bincount(grouping.block_src(), weights=x, minlength=grouping.groups)
    return np.asarray(into - out, dtype=np.float64)


def _price_of_peer(grouping: Grouping, group_price: FloatArray, n: int) -> FloatArray:
    out = np.zeros(n, dtype=np.float64)
    members = grouping.group >= 0
    out[members] = group_price[grouping.group[members]]
    return out


def aggregate_residuals(
    prob: AggregateProblem, sol: AggregateSolution
) -> tuple[dict[str, float], float, float]:
    """Return the worst raw residual of each KKT check and the scales ``(S_P, S_π)``.

    The same checks, scales and tolerances as
    :func:`clearing.certificate.kkt_residuals`, on the aggregated QP.
    """
    n, e, h = prob.n, prob.elec, prob.hgroups
    P, x = sol.P, sol.x
    res: dict[str, float] = {}
    res["primal.balance"] = _max(_group_sum(e, P) + _block_net(e, x))
    res["primal.bounds"] = max(_neg(prob.p_max - P), _neg(P - prob.p_min))
    res["primal.sign"] = _neg(x)
    flows = prob.flow @ P if prob.limited.size else np.zeros(0)
    res["primal.lines"] = max(_neg(prob.cap - flows), _neg(prob.cap + flows))
    res["dual.sign"] = max(_neg(m) for m in (sol.up, sol.lo, sol.rho, sol.fu, sol.fl))
    pi_peer = _price_of_peer(e, sol.pi, n)
    grad_p = prob.a * P + prob.b - pi_peer + sol.up - sol.lo
    if prob.limited.size:
        grad_p = grad_p + prob.flow.T @ (sol.fu - sol.fl)
    src, dst = e.block_src(), e.block_dst()
    grad_x = (
        prob.wp + prob.wc + 2.0 * prob.eps * x / e.pairs() + sol.pi[src] - sol.pi[dst] - sol.rho
    )
    comp = [
        sol.up * (prob.p_max - P), sol.lo * (P - prob.p_min), sol.rho * x,
        sol.fu * (prob.cap - flows), sol.fl * (prob.cap + flows),
    ]  # fmt: skip
    scale_p = max(1.0, _max(prob.p_min), _max(prob.p_max), _max(P))
    prices = [sol.pi]
    if prob.heat:
        H, y = sol.H, sol.y
        res["primal.balance_heat"] = _max(_group_sum(h, H) + _block_net(h, y))
        res["primal.bounds_heat"] = max(_neg(prob.h_max - H), _neg(H - prob.h_min))
        res["primal.sign_heat"] = _neg(y)
        cu = prob.chp_peer
        chp_slack = prob.chp_g - prob.chp_gp * P[cu] - prob.chp_gh * H[cu]
        res["primal.chp"] = _neg(chp_slack)
        res["dual.sign_heat"] = max(_neg(m) for m in (sol.uph, sol.loh, sol.rhoh, sol.kappa))
        grad_p = grad_p + np.bincount(cu, weights=sol.kappa * prob.chp_gp, minlength=n)
        # a peer outside every heat group has no balance row: its H is fixed by its bounds
        pih_peer = _price_of_peer(h, sol.pih, n)
        grad_h = prob.ah * H + prob.bh - pih_peer + sol.uph - sol.loh
        grad_h = grad_h + np.bincount(cu, weights=sol.kappa * prob.chp_gh, minlength=n)
        grad_h = np.where(h.group >= 0, grad_h, 0.0)
        res["stationarity.H"] = _max(grad_h)
        hs, hd = h.block_src(), h.block_dst()
        grad_y = 2.0 * prob.eps * y / h.pairs() + sol.pih[hs] - sol.pih[hd] - sol.rhoh
        res["stationarity.y"] = _max(grad_y)
        comp += [
            sol.uph * (prob.h_max - H), sol.loh * (H - prob.h_min), sol.rhoh * y,
            sol.kappa * chp_slack,
        ]  # fmt: skip
        scale_p = max(scale_p, _max(prob.h_min), _max(prob.h_max), _max(H))
        prices += [sol.pih, prob.bh]
    res["stationarity.P"] = _max(grad_p)
    res["stationarity.x"] = _max(grad_x)
    res["complementarity"] = max(_max(c) for c in comp)
    scale_pi = max(1e-3, _max(prob.b), *(_max(p) for p in prices), _max(prob.a) * scale_p)
    return res, scale_p, scale_pi


def check_aggregate_solution(
    prob: AggregateProblem, sol: AggregateSolution, *, tol: float = 1e-6
) -> CertificateReport:
    """Check the KKT conditions of ``sol`` for the aggregated QP (no solver).

    Tolerances as in :func:`clearing.certificate.check_solution`.
    """
    raw, scale_p, scale_pi = aggregate_residuals(prob, sol)
    allowed = {"primal": tol * scale_p, "dual": tol * scale_pi, "stationarity": tol * scale_pi}
    allowed["complementarity"] = tol * scale_p * scale_pi
    residuals: dict[str, float] = {}
    failures: list[str] = []
    for name, value in raw.items():
        limit = allowed[name.split(".")[0]]
        ratio = value / limit if math.isfinite(value) else math.inf
        residuals[name] = ratio
        if not ratio <= 1.0:
            failures.append(f"{name}: residual {value:.3g} > allowed {limit:.3g}")
    return CertificateReport(
        ok=not failures, tolerance=tol, residuals=residuals, failures=tuple(failures)
    )
