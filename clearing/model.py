"""The cvxpy side of the clearing: build the QP once, set Parameters, solve.

This is the only module that touches cvxpy (which is untyped); everything it
returns is numpy arrays in the sign convention of
:mod:`clearing.problem` (prices π, τ; non-negative multipliers).

Formulation choices, measured in ``bench/bench_clearing.py``:

- explicit aggregate variables ``P_i`` linked to the trades by a sparse
  equality (12.1), never a square of a sum over trades, so the quadratic
  term stays diagonal;
- one variable per pair (the seller's side; the buyer's is its negative),
  with the prices of 12.10 recovered from the reduced costs (``_split_trade``);
- every number is a cvxpy ``Parameter`` (costs, bounds, penalties, ε,
  capacities, CHP edges), so a periodic re-solve with new numbers skips
  recompilation;
- every linear cost term (``b @ P``, the per-pair terms ``(kp + kc) @ p``
  (grid penalties plus pair penalties), ``bh @ H``) enters through one
  auxiliary scalar ``t == ... `` and the objective is ``t`` plus sums of
  squares. cvxpy's DPP extraction of the objective builds a *dense*
  matrix of (objective variable entries) x (every parameter entry of the
  problem): with ``b @ P`` in the objective that is peers x pairs, which is
  quadratic in the market size (``bench_clearing --memory``). With only
  ``t`` and the squares' placeholders left in the objective it has a
  handful of rows, so memory grows linearly in peers plus pairs; as
  constraint rows the same terms stay sparse.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import cvxpy as _cvxpy
import numpy as np
import scipy.sparse as sp

from clearing.errors import Infeasible, SolverFailed
from clearing.problem import FloatArray, IntArray, ProblemData, structure_key
from clearing.solution import Solution, SolveInfo

cp: Any = _cvxpy  # cvxpy is untyped: keep it Any inside this module only

# Clarabel's default tolerances (1e-8) leave the split of a consumer's purchase
# among producers loose: the tie-breaking term ε/2 Σ P_ij² is tiny, so an
# objective within 1e-8 of the optimum allows trades far more than the 1 Wh
# settlement unit away from it, while the aggregates P_i are tight. At 1e-12
# the trades are resolved to about the settlement unit, for a few more
# interior-point iterations (docs/clearing.md has the measurements). Where
# Clarabel cannot reach them it reports "almost solved" and the Clearer falls
# back to Clarabel's defaults.
ACCURATE = {"tol_gap_abs": 1e-12, "tol_gap_rel": 1e-12, "tol_feas": 1e-12, "tol_ktratio": 1e-10}

# cvxpy status -> what it means for a clearing; anything else is a solver failure.
_INFEASIBLE = {cp.INFEASIBLE, cp.INFEASIBLE_INACCURATE, "infeasible_or_unbounded"}
_WHY = {
    cp.OPTIMAL_INACCURATE: "the solver stopped before reaching its accuracy targets",
    cp.UNBOUNDED: "the objective is unbounded below (a bound is missing)",
    cp.UNBOUNDED_INACCURATE: "the objective looks unbounded below (a bound is missing)",
    cp.USER_LIMIT: "an iteration or time limit was hit",
    cp.SOLVER_ERROR: "the solver failed numerically",
}


def _incidence(rows: IntArray, n: int) -> Any:
    m = rows.size
    return sp.csr_matrix((np.ones(m), (rows, np.arange(m))), shape=(n, m))


def _vec(x: Any, size: int) -> FloatArray:
    if size == 0:
        return np.zeros(0, dtype=np.float64)
    return np.asarray(x.value if hasattr(x, "value") else x, dtype=np.float64).reshape(size)


def _dual(con: Any, size: int) -> FloatArray:
    if con is None or size == 0:
        return np.zeros(size, dtype=np.float64)
    return np.asarray(con.dual_value, dtype=np.float64).reshape(size)


def _split_trade(
    p: FloatArray,
    pi: FloatArray,
    src: IntArray,
    dst: IntArray,
    wp: FloatArray,
    wc: FloatArray,
    eps: float,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Recover q, τ, sp, sq of the full formulation from the reduced one.

    With q = -p substituted, the solver's reduced cost of ``p >= 0`` is
    ``r = wp + wc + 2 ε p + π_s - π_d`` (>= 0, and 0 where p > 0). The full
    KKT (see :mod:`clearing.problem`) needs ``sp + sq = r``: we split it
    evenly, so ``τ = π_s + wp + ε p - r/2``, the midpoint of the interval
    ``[π_d - wc - ε p, π_s + wp + ε p]`` of valid trade prices. For a trade
    that happens the interval is a point and τ is unique.
    """
    r = wp + wc + 2.0 * eps * p + pi[src] - pi[dst]
    half = 0.5 * r
    tau = pi[src] + wp + eps * p - half
    return (
        np.asarray(-p, dtype=np.float64),
        np.asarray(tau, dtype=np.float64),
        np.asarray(half, dtype=np.float64),
        np.asarray(half, dtype=np.float64),
    )


class QpModel:
    """A compiled clearing QP for one structure (pairs, CHP units, limited lines).

    Build with :meth:`__init__` (or :func:`model_for`), then call
    :meth:`solve` with any :class:`ProblemData` of the same structure.
    """

    def __init__(self, data: ProblemData) -> None:
        self.key = structure_key(data)
        n, m = data.n, data.e_src.size
        self._n, self._m = n, m
        self._par: dict[str, Any] = {}
        par = self._param

        # The solver sees only the seller's side p_k = P_sd; the buyer's side is
        # q_k = -p_k (12.10 substituted). Half the trade variables and no
        # trade rows, so the solver's work halves. τ, sp, sq of the full
        # formulation are recovered in _extract (see there).
        P = cp.Variable(n, name="P")
        p = cp.Variable(m, nonneg=True, name="p")
        t = cp.Variable(name="t")
        y = cp.Variable(n, name="y")  # sqrt(a/2) P, see below
        self._vars: dict[str, Any] = {"P": P, "p": p}
        # ½ a P² as a sum of squares of sqrt(a/2) P: with the Parameter inside
        # the square, cvxpy's DPP compile stays sparse (as multiply(a, square(P))
        # the compile grew with the square of the peers). The scaled P is a
        # variable y = diag(ra) P: cvxpy compiles multiply(ra, P) through a
        # dense peers x peers array, and evaluates diag(ra) densely when it
        # sits in the objective; as a constraint row it is neither.
        ra, b = par("ra", n, nonneg=True), par("b", n)
        eps = par("eps", None, nonneg=True)
        wp, wc = par("wp", m), par("wc", m)
        # no linear term on a vector in the objective: see the module docstring
        objective = (
            cp.sum_squares(y) + t + eps * cp.sum_squares(p)  # = ε/2 Σ (p² + q²) with q = -p
        )
        linear = b @ P + (wp + wc) @ p
        net = _incidence(data.e_src, n) - _incidence(data.e_dst, n)
        con: dict[str, Any] = {
            "link": P - net @ p == 0,
            "scale": y == cp.diag(ra) @ P,
            "up": par("p_max", n) >= P,
            "lo": par("p_min", n) <= P,
        }
        if data.limited.size:
            # Flow variables with one balance per line (the flow into a bus is
            # what its peers withdraw plus what flows on below): sparse, where
            # the path form F @ P couples every peer behind a line, a dense
            # block the solver must factor. Multipliers of the bounds on f are those of
            # |F P| <= cap, so the certificate keeps the path form.
            nl = data.flow.shape[0]
            f = cp.Variable(nl, name="f")
            at = data.peer_line >= 0
            withdraw = sp.csr_matrix(
                (-np.ones(int(at.sum())), (data.peer_line[at], np.flatnonzero(at))), shape=(nl, n)
            )
            below = data.line_parent >= 0
            onward = sp.csr_matrix(
                (np.ones(int(below.sum())), (data.line_parent[below], np.flatnonzero(below))),
                shape=(nl, nl),
            )
            con["flow"] = f - onward @ f - withdraw @ P == 0
            cap = par("cap", data.limited.size, nonneg=True)
            con["fu"] = f[data.limited] <= cap
            con["fl"] = -f[data.limited] <= cap
        if data.heat:
            mh = data.h_src.size
            H = cp.Variable(n, name="H")
            hp = cp.Variable(mh, nonneg=True, name="hp")
            self._vars.update(H=H, hp=hp)
            yh = cp.Variable(n, name="yh")
            objective = objective + cp.sum_squares(yh)
            linear = linear + par("bh", n) @ H
            objective = objective + eps * cp.sum_squares(hp)
            net_h = _incidence(data.h_src, n) - _incidence(data.h_dst, n)
            con["linkh"] = H - net_h @ hp == 0
            con["scaleh"] = yh == cp.diag(par("rah", n, nonneg=True)) @ H
            con["uph"] = par("h_max", n) >= H
            con["loh"] = par("h_min", n) <= H
            rows = data.chp_peer
            if rows.size:
                k = rows.size
                con["chp"] = cp.multiply(par("gp", k), P[rows]) + cp.multiply(
                    par("gh", k), H[rows]
                ) <= par("g", k)
        con["linear"] = t == linear
        self._con = con
        self.problem = cp.Problem(cp.Minimize(objective), list(con.values()))

    def _param(self, name: str, size: int | None, **kw: Any) -> Any:
        shape = () if size is None else (size,)
        x = cp.Parameter(shape, name=name, **kw)
        self._par[name] = x
        return x

    def set_data(self, data: ProblemData) -> None:
        """Load the numbers of ``data`` into the Parameters (same structure required)."""
        if structure_key(data) != self.key:
            msg = "ProblemData has a different structure than this compiled model"
            raise ValueError(msg)
        values: dict[str, Any] = {
            "ra": np.sqrt(0.5 * data.a),
            "b": data.b,
            "eps": data.eps,
            "wp": data.kp,
            "wc": data.kc,
            "p_max": data.p_max,
            "p_min": data.p_min,
            "cap": data.cap,
            "rah": np.sqrt(0.5 * data.ah),
            "bh": data.bh,
            "h_max": data.h_max,
            "h_min": data.h_min,
            "gp": data.chp_gp,
            "gh": data.chp_gh,
            "g": data.chp_g,
        }
        for name, x in self._par.items():
            x.value = values[name]

    def solve(
        self, data: ProblemData, options: Mapping[str, object] | None = None
    ) -> tuple[Solution, SolveInfo]:
        """Solve for ``data`` and return the solution in the convention of :mod:`clearing.problem`.

        Raises:
            Infeasible: If the problem has no feasible point.
            SolverFailed: For any other status than ``optimal``.
        """
        self.set_data(data)
        prob = self.problem
        try:
            with warnings.catch_warnings():
                # an inaccurate status is reported as SolverFailed below, not as a warning
                warnings.simplefilter("ignore", UserWarning)
                prob.solve(solver=cp.CLARABEL, **dict(options or {}))
        except cp.error.SolverError as exc:
            msg = f"solver status solver_error: {exc}"
            raise SolverFailed(msg, status=cp.SOLVER_ERROR) from exc
        status = str(prob.status)
        if status in _INFEASIBLE:
            msg = (
                f"solver status {status}: the data admit no feasible clearing "
                "(check bounds, trading sets, CHP regions and line limits)"
            )
            raise Infeasible(msg, status=status)
        if status != cp.OPTIMAL:
            msg = f"solver status {status}: {_WHY.get(status, 'unknown status')}"
            raise SolverFailed(msg, status=status)
        stats = prob.solver_stats
        info = SolveInfo(
            status=status,
            solver=str(stats.solver_name),
            compile_time_s=float(prob.compilation_time or 0.0),
            solve_time_s=float(stats.solve_time or 0.0),
            iterations=int(stats.num_iters or 0),
            objective=float(prob.value),
        )
        return self._extract(data), info

    def _extract(self, data: ProblemData) -> Solution:
        n, m = self._n, self._m
        v, c = self._vars, self._con
        P, p = _vec(v["P"], n), _vec(v["p"], m)
        # cvxpy's Lagrangian adds +y (lhs - rhs) for lhs == rhs: prices are -y.
        pi = -_dual(c["link"], n)
        q, tau, sp_, sq_ = _split_trade(p, pi, data.e_src, data.e_dst, data.kp, data.kc, data.eps)
        nl, mh, k = data.limited.size, data.h_src.size, data.chp_peer.size
        empty = np.zeros(0, dtype=np.float64)
        H = hp = hq = pih = tauh = uph = loh = sph = sqh = kappa = empty
        if data.heat:
            H, hp = _vec(v["H"], n), _vec(v["hp"], mh)
            pih = -_dual(c["linkh"], n)
            zero = np.zeros(mh, dtype=np.float64)
            hq, tauh, sph, sqh = _split_trade(hp, pih, data.h_src, data.h_dst, zero, zero, data.eps)
            uph, loh = _dual(c["uph"], n), _dual(c["loh"], n)
            kappa = _dual(c.get("chp"), k)
        return Solution(
            P=P,
            p=p,
            q=q,
            H=H,
            hp=hp,
            hq=hq,
            pi=pi,
            tau=tau,
            up=_dual(c["up"], n),
            lo=_dual(c["lo"], n),
            sp=np.asarray(sp_, dtype=np.float64),
            sq=np.asarray(sq_, dtype=np.float64),
            fu=_dual(c.get("fu"), nl),
            fl=_dual(c.get("fl"), nl),
            pih=pih,
            tauh=tauh,
            uph=uph,
            loh=loh,
            sph=np.asarray(sph, dtype=np.float64),
            sqh=np.asarray(sqh, dtype=np.float64),
            kappa=kappa,
        )
