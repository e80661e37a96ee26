"""Multi-period reference clearing over T slots, coupled by the assets (12.6.5).

:func:`clear_horizon` solves the chapter's per-slot models (basic 12.6-12.10,
loss 12.14, congestion 12.18, heat + CHP 12.27-12.38, hard line limits) for
every slot of a :class:`~clearing.horizon_case.HorizonCase` in one QP,
coupled by the assets' dynamics (state of charge, EV energy, room
temperature, gas store) and ramp limits, with per-slot α, β, σ and grid
tariffs. The QP is built by :mod:`clearing.horizon_problem` and solved by
Clarabel directly (sparse matrices in, no modelling layer: building is
linear in T and in the pairs), with an ordering hint in the Hessian's
sparsity pattern (:mod:`clearing.horizon_ordering`) that keeps the
factorisation's work close to linear in T. Per-slot prices come from the duals of each
slot's balances; the certificate (:mod:`clearing.horizon_certificate`)
covers the whole horizon.

With T = 1 and no assets the QP is the single-slot one of
:mod:`clearing.problem` (same variables, objective and multipliers), so it
gives the same objective, dispatch and prices as :func:`clearing.clear`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import clarabel as _clarabel
import numpy as np
import scipy.sparse as sp

from clearing.errors import Infeasible, InvalidOption, SolverFailed
from clearing.horizon_case import HorizonCase
from clearing.horizon_certificate import HorizonCertificate
from clearing.horizon_ordering import ordering_hint
from clearing.horizon_problem import (
    FloatArray,
    HorizonProblem,
    HorizonSpec,
    IntArray,
    build_horizon_problem,
    make_horizon_spec,
)
from clearing.result import CONGESTION_TOLERANCE
from clearing.spec import Model, parse_model

clarabel: Any = _clarabel  # untyped extension module: Any inside this module only

DEFAULT_DIRECT_SOLVER = "qdldl"
# Slots between two declared time separators of the ordering hint (see
# clearing.horizon_ordering); None or 0 turns the hint off.
DEFAULT_TIME_BLOCK = 8
_INFEASIBLE = {"PrimalInfeasible", "AlmostPrimalInfeasible"}
_WHY = {
    "DualInfeasible": "the objective is unbounded below (a bound is missing)",
    "AlmostDualInfeasible": "the objective looks unbounded below (a bound is missing)",
    "AlmostSolved": "the solver stopped before reaching its accuracy targets",
    "MaxIterations": "the iteration limit was hit",
    "MaxTime": "the time limit was hit",
    "NumericalError": "the solver failed numerically",
    "InsufficientProgress": "the solver made insufficient progress",
}


@dataclass(frozen=True, slots=True)
class HorizonSolveInfo:
    """Solver status, size and times (reported by Clarabel; clearing reads no clock).

    ``factor_nonzeros`` is the nonzero count of the KKT system's LDLᵀ factor
    (Clarabel's ``nnzL``): the fill the ordering left, a machine-independent
    measure of the work per iteration.
    """

    status: str
    iterations: int
    solve_time_s: float
    objective: float
    variables: int
    equalities: int
    inequalities: int
    factor_nonzeros: int = 0


@dataclass(frozen=True, slots=True)
class Solved:
    """Primal ``x`` and duals ``y`` (equalities), ``z`` (inequalities) of one solve."""

    x: FloatArray
    y: FloatArray
    z: FloatArray
    info: HorizonSolveInfo


def solve_horizon_problem(
    problem: HorizonProblem,
    options: Mapping[str, object] | None = None,
    *,
    time_block: int | None = DEFAULT_TIME_BLOCK,
) -> Solved:
    """Solve the horizon QP with Clarabel.

    Args:
        problem: From :func:`~clearing.horizon_problem.build_horizon_problem`.
        options: Clarabel settings by name (e.g. ``{"max_iter": 200}`` or
            ``{"direct_solve_method": "faer"}``; the default is QDLDL).
        time_block: Slots between the time separators of the ordering hint
            (:func:`ordering_hint`); ``None`` or ``0`` solves without it.

    Raises:
        Infeasible: If the data admit no feasible clearing.
        SolverFailed: For any other status than ``Solved``.
        InvalidOption: For an unknown setting or a negative ``time_block``.
    """
    nx, neq, nin = problem.size
    if time_block is not None and (not isinstance(time_block, int) or time_block < 0):
        msg = f"time_block must be None or an int >= 0, got {time_block!r}"
        raise InvalidOption(msg)
    hr, hc = ordering_hint(problem, time_block)
    diag = np.arange(nx)
    hess = sp.csc_matrix(
        (np.r_[problem.hdiag, np.zeros(hr.size)], (np.r_[diag, hr], np.r_[diag, hc])),
        shape=(nx, nx),
    )
    a = sp.vstack([problem.a_eq, problem.a_in], format="csc")
    b = np.concatenate([problem.b_eq, problem.b_in])
    cones = []
    if neq:
        cones.append(clarabel.ZeroConeT(neq))
    if nin:
        cones.append(clarabel.NonnegativeConeT(nin))
    settings = clarabel.DefaultSettings()
    settings.verbose = False
    # QDLDL rather than Clarabel's default (faer on all threads): on this
    # problem's banded KKT system it factors much faster on few cores
    # (bench/bench_horizon.py, docs/assets-and-horizon.md).
    settings.direct_solve_method = DEFAULT_DIRECT_SOLVER
    for key, value in (options or {}).items():
        if not hasattr(settings, key):
            msg = f"unknown Clarabel setting {key!r}"
            raise InvalidOption(msg)
        setattr(settings, key, value)
    solver = clarabel.DefaultSolver(hess, problem.q, a, b, cones, settings)
    sol = solver.solve()
    status = str(sol.status).rsplit(".", 1)[-1]
    if status in _INFEASIBLE:
        msg = (
            f"solver status {status}: the data admit no feasible clearing (check bounds, "
            "comfort bands, EV energy, ramps, CHP regions and line limits)"
        )
        raise Infeasible(msg, status=status)
    if status != "Solved":
        msg = f"solver status {status}: {_WHY.get(status, 'unknown status')}"
        raise SolverFailed(msg, status=status)
    dual = np.asarray(sol.z, dtype=np.float64)
    info = HorizonSolveInfo(
        status=status,
        iterations=int(sol.iterations),
        solve_time_s=float(sol.solve_time),
        objective=float(sol.obj_val),
        variables=nx,
        equalities=neq,
        inequalities=nin,
        factor_nonzeros=int(solver.get_info().linsolver.nnzL),
    )
    return Solved(np.asarray(sol.x, dtype=np.float64), dual[:neq], dual[neq:], info)


@dataclass(frozen=True, slots=True, eq=False)
class HorizonResult:
    """Everything a horizon clearing reports; per-slot arrays have the slot first.

    Units: kW (kW_th) averaged over the slot, kWh for stored energy, °C,
    prices in currency/kWh, money in currency per slot.

    Attributes:
        model: The model name.
        names, line_names: Peers and lines.
        slots, slot_hours: T and the slot length.
        e_src, e_dst: Directed trading pairs (seller, buyer).
        trades: ``(T, m)`` seller-side trades ``P_{s d} >= 0``; the buyer's side is minus it.
        trade_price: ``(T, m)`` τ, the dual of ``P_ij + P_ji = 0``.
        injection: ``(T, n)`` net market injection ``P_it`` (Σ of trades).
        own: ``(T, n)`` the curve's part ``X_it``.
        peer_price: ``(T, n)`` π_it, the dual of the slot's balance 12.1.
        h_src, h_dst, heat_trades, heat, heat_peer_price, heat_trade_price:
            The same for heat (empty / ``None`` without heat).
        flows: ``(T, lines)`` kW, positive downstream.
        losses_kw: ``(T,)``.
        overloaded: Lines over capacity, per slot.
        line_price: ``(T, lines)`` duals of hard limits (zeros without them).
        payment, penalty: ``(T, n)`` money per slot (paid > 0), as :class:`ClearingResult`.
        assets: ``(peer, asset) -> {variable: (T,) array}`` (EV values ``nan``
            outside its stay; its ``soc`` is the energy at the end of each slot).
        objective: Σ over slots of the per-hour objective (without the
            curves' constants), as the single-slot ``objective``; times
            ``slot_hours`` it is currency.
        info: Solver status, size, time.
        wp, wc: ``(T, m)`` seller- and buyer-side penalty per kW of each trade.
        spec, x, y, z: The certificate's content.
    """

    model: str
    names: tuple[str, ...]
    line_names: tuple[str, ...]
    slots: int
    slot_hours: float
    e_src: IntArray
    e_dst: IntArray
    trades: FloatArray
    trade_price: FloatArray
    injection: FloatArray
    own: FloatArray
    peer_price: FloatArray
    h_src: IntArray
    h_dst: IntArray
    heat_trades: FloatArray | None
    heat: FloatArray | None
    heat_peer_price: FloatArray | None
    heat_trade_price: FloatArray | None
    flows: FloatArray
    losses_kw: FloatArray
    overloaded: tuple[tuple[str, ...], ...]
    line_price: FloatArray
    payment: FloatArray
    penalty: FloatArray
    assets: dict[tuple[str, str], dict[str, FloatArray]]
    objective: float
    info: HorizonSolveInfo
    wp: FloatArray
    wc: FloatArray
    spec: HorizonSpec
    x: FloatArray
    y: FloatArray
    z: FloatArray

    @property
    def certificate(self) -> HorizonCertificate:
        """The optimality certificate of the whole horizon."""
        return HorizonCertificate(self.names, self.slots, self.spec, self.x, self.y, self.z)

    def trade_matrix(self, t: int) -> FloatArray:
        """Return slot ``t``'s ``n x n`` matrix P_ij (kW; ``P + P.T == 0``)."""
        n = len(self.names)
        out = np.zeros((n, n))
        np.add.at(out, (self.e_src, self.e_dst), self.trades[t])
        np.add.at(out, (self.e_dst, self.e_src), -self.trades[t])
        return out


def _rows(problem: HorizonProblem, name: str, kind: str = "eq") -> IntArray:
    groups = problem.eq_groups if kind == "eq" else problem.in_groups
    parts = [np.arange(a, b) for g, a, b in groups if g == name]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def _scatter(n: int, idx: IntArray, values: FloatArray) -> FloatArray:
    """Per-slot scatter-add: ``values`` is (T, m), ``idx`` (m,) -> (T, n)."""
    out = np.zeros((values.shape[0], n))
    np.add.at(out.T, idx, values.T)
    return out


def _split(
    p: FloatArray,
    pi: FloatArray,
    src: IntArray,
    dst: IntArray,
    wp: FloatArray,
    wc: FloatArray,
    eps: float,
) -> FloatArray:
    """τ of each trade: the midpoint of the valid interval (see clearing.model._split_trade)."""
    r = wp + wc + 2.0 * eps * p + pi[:, src] - pi[:, dst]
    return np.asarray(pi[:, src] + wp + eps * p - 0.5 * r)


def assemble_horizon_result(
    case: HorizonCase, problem: HorizonProblem, spec: HorizonSpec, solved: Solved
) -> HorizonResult:
    """Derive the reported quantities of a solved horizon."""
    x, y, z = solved.x, solved.y, solved.z
    T, n, hours = problem.slots, len(problem.names), problem.slot_hours
    blk = problem.blocks
    s, d = problem.e_src, problem.e_dst
    p = x[blk["p"]]
    P = x[blk["P"]]
    pi = -y[_rows(problem, "link")].reshape(T, n)
    # τ sees the pair penalties (kp = wp + dp, kc = wc + dc, as the single-slot
    # clearing); the penalties paid are the grid's wp and wc alone
    tau = _split(p, pi, s, d, problem.wp + problem.dp, problem.wc + problem.dc, problem.eps)
    payment = -(_scatter(n, s, tau * p) - _scatter(n, d, tau * p)) * hours
    penalty = (_scatter(n, s, problem.wp * p) + _scatter(n, d, problem.wc * p)) * hours
    net = case.network
    flows = P @ problem.flow.T
    caps = net.capacities()
    over = np.abs(flows) > caps * (1.0 + CONGESTION_TOLERANCE) + CONGESTION_TOLERANCE
    r = np.array([ln.r_ohm for ln in net.lines])
    losses = (flows / net.voltage_kv) ** 2 @ r / 1000.0
    line_price = np.zeros((T, len(net.lines)))
    if problem.limited.size:
        mu = z[_rows(problem, "line.up", "in")] - z[_rows(problem, "line.lo", "in")]
        line_price[:, problem.limited] = mu.reshape(T, problem.limited.size)
        charge = line_price[:, problem.limited] @ problem.flow[problem.limited]
        penalty = penalty + charge * P * hours
    heat_trades = heat = heat_pp = heat_tp = None
    if problem.heat:
        hs, hd = problem.h_src, problem.h_dst
        heat_trades = x[blk["hp"]]
        heat = _scatter(n, hs, heat_trades) - _scatter(n, hd, heat_trades)
        heat_pp = -y[_rows(problem, "heat_link")].reshape(T, n)
        # as τ: the heat pair penalties on each side (kp = hdp, kc = hdc; heat
        # trades have no grid term, so nobody pays them)
        hdp = np.broadcast_to(problem.hdp, heat_trades.shape)
        hdc = np.broadcast_to(problem.hdc, heat_trades.shape)
        heat_tp = _split(heat_trades, heat_pp, hs, hd, hdp, hdc, problem.eps)
        payment = (
            payment
            - (_scatter(n, hs, heat_tp * heat_trades) - _scatter(n, hd, heat_tp * heat_trades))
            * hours
        )
    assets: dict[tuple[str, str], dict[str, FloatArray]] = {}
    for key, ix in problem.assets.items():
        stay = ix.get("slots")
        out: dict[str, FloatArray] = {}
        for var, idx in ix.items():
            if var == "slots":
                continue
            if stay is None:
                out[var] = x[idx]
            else:
                full = np.full(T, np.nan if var == "soc" else 0.0)
                full[stay] = x[idx]
                out[var] = full
        assets[key] = out
    return HorizonResult(
        model=spec.model.value,
        names=problem.names,
        line_names=tuple(ln.name for ln in net.lines),
        slots=T,
        slot_hours=hours,
        e_src=s,
        e_dst=d,
        trades=p,
        trade_price=tau,
        injection=P,
        own=x[blk["X"]],
        peer_price=pi,
        h_src=problem.h_src,
        h_dst=problem.h_dst,
        heat_trades=heat_trades,
        heat=heat,
        heat_peer_price=heat_pp,
        heat_trade_price=heat_tp,
        flows=flows,
        losses_kw=np.asarray(losses),
        overloaded=tuple(tuple(net.lines[k].name for k in np.flatnonzero(row)) for row in over),
        line_price=line_price,
        payment=payment,
        penalty=penalty,
        assets=assets,
        objective=solved.info.objective,
        info=solved.info,
        wp=problem.wp,
        wc=problem.wc,
        spec=spec,
        x=x,
        y=y,
        z=z,
    )


def clear_horizon(
    case: HorizonCase,
    model: str | Model = Model.BASIC,
    *,
    line_limits: bool = False,
    penalised: tuple[tuple[str, ...], ...] | None = None,
    beta_scale: float = 1.0,
    options: Mapping[str, object] | None = None,
    time_block: int | None = DEFAULT_TIME_BLOCK,
) -> HorizonResult:
    """Clear all slots of ``case`` at once with one of the chapter's models.

    Args:
        case: The horizon.
        model: ``basic``, ``loss``, ``congestion``, ``loss+congestion`` or
            ``heat`` (which uses the slots' α and β when they are non-zero).
        line_limits: Hard limits ``|flow| <= capacity`` in every slot.
        penalised: σ_t per slot; ``None`` takes each slot's signals (see
            :func:`horizon_congestion_procedure` to find σ).
        beta_scale: Factor on every β.
        options: Clarabel settings.
        time_block: The solver's ordering hint (see :func:`solve_horizon_problem`).

    Raises:
        InvalidOption: Bad model or options.
        InvalidCase: Data that cannot be cleared.
        Infeasible: No clearing satisfies every slot's constraints.
        SolverFailed: Any other solver status.
    """
    spec = make_horizon_spec(
        case, model, line_limits=line_limits, penalised=penalised, beta_scale=beta_scale
    )
    problem = build_horizon_problem(case, spec)
    solved = solve_horizon_problem(problem, options, time_block=time_block)
    return assemble_horizon_result(case, problem, spec, solved)


@dataclass(frozen=True, slots=True)
class HorizonCongestion:
    """Rounds of :func:`horizon_congestion_procedure` and whether congestion was removed."""

    rounds: tuple[HorizonResult, ...]
    resolved: bool

    @property
    def final(self) -> HorizonResult:
        """The last round's clearing."""
        return self.rounds[-1]


def horizon_congestion_procedure(
    case: HorizonCase,
    model: str | Model = Model.CONGESTION,
    *,
    max_rounds: int = 10,
    beta_growth: float = 2.0,
    options: Mapping[str, object] | None = None,
) -> HorizonCongestion:
    """Run 12.6.3's procedure over the horizon: σ_t grows per slot until no line is over.

    Round 0 clears with σ_t = ∅; each next round adds each slot's overloaded
    lines to its σ_t and clears again with β; when no σ_t grows but
    congestion remains, β is multiplied by ``beta_growth``. With T = 1 this
    is :func:`clearing.congestion_procedure`.

    Raises:
        InvalidOption: A model without β, ``max_rounds < 1`` or ``beta_growth < 1``.
    """
    m = parse_model(model)
    if m not in (Model.CONGESTION, Model.LOSS_CONGESTION, Model.HEAT):
        msg = f"the congestion procedure needs a model with β, got {m.value!r}"
        raise InvalidOption(msg)
    if max_rounds < 1 or not beta_growth >= 1.0:
        msg = f"need max_rounds >= 1 and beta_growth >= 1, got {max_rounds}, {beta_growth}"
        raise InvalidOption(msg)
    T = case.slots
    sigma: tuple[tuple[str, ...], ...] = ((),) * T
    scale = 1.0
    result = clear_horizon(case, m, penalised=sigma, options=options)
    rounds = [result]
    order = [ln.name for ln in case.network.lines]
    for _ in range(max_rounds):
        if not any(result.overloaded):
            break
        grown = tuple(
            tuple(x for x in order if x in set(sigma[t]) | set(result.overloaded[t]))
            for t in range(T)
        )
        if grown == sigma:
            scale *= beta_growth
        sigma = grown
        result = clear_horizon(case, m, penalised=sigma, beta_scale=scale, options=options)
        rounds.append(result)
    return HorizonCongestion(rounds=tuple(rounds), resolved=not any(rounds[-1].overloaded))
