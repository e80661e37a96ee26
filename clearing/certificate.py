"""Optimality certificates: KKT checks without a solver, and a fixed-point plain form.

A :class:`Certificate` holds the model options and the primal and dual values
of a clearing. :func:`check_certificate` rebuilds the QP arrays from the case
(:func:`clearing.problem.build_problem`) and checks, with numpy only:

- primal feasibility: balances 12.1/12.10 (and heat), bounds, signs, hard
  line limits, CHP regions;
- dual feasibility: every inequality multiplier ``>= 0``;
- stationarity: the gradient of the Lagrangian (see :mod:`clearing.problem`)
  is zero for every variable, with the case's pair penalties (product
  differentiation) in the trades' gradients: they are data of the case, not
  options of the certificate, so a replica checks them from its own case;
- complementary slackness: multiplier x slack = 0 for every inequality.

Tolerance (``tol``, default 1e-6) is relative to the case's scales:
``S_P = max(1 kW, max |bounds|, max |P|, max |H|)`` and ``S_π = max(1e-3,
max |b|, max |price|, max a S_P)``. A residual passes when it is at most
``tol S_P`` (primal, kW), ``tol S_π`` (stationarity and dual sign, currency
per kWh) or ``tol S_P S_π`` (complementarity). Clarabel's own tolerances are
1e-8, and the plain form quantises values to 1e-9 (absolute), so a correct
clearing passes with a margin of about 100 both before and after the round
trip, while a solution moved by a fraction 1e-4 of its scale fails.

The plain form (:func:`certificate_to_plain`) is a list of ints, strings and
lists of ints (values x 10^9, rounded half-even), so the ledger can encode,
hash and sign it without floats.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np

from clearing.case import Case
from clearing.errors import CertificateError, ClearingError
from clearing.plain import (
    PLAIN_VERSION,
    SCALE,
    SCALE_EXP,
    PlainValue,
    fix,
    fix_all,
    read_flag,
    read_ints,
    read_strs,
)
from clearing.problem import FloatArray, ProblemData, build_problem
from clearing.solution import Solution
from clearing.spec import ModelSpec, make_spec

DEFAULT_TOLERANCE = 1e-6


@dataclass(frozen=True, slots=True, eq=False)
class Certificate:
    """What a replica needs, with the case, to verify a clearing it did not compute."""

    model: str
    names: tuple[str, ...]
    spec: ModelSpec
    solution: Solution


@dataclass(frozen=True, slots=True)
class CertificateReport:
    """Outcome of :func:`check_certificate`.

    Attributes:
        ok: True when every residual is within tolerance.
        tolerance: The relative tolerance used.
        residuals: Each check's worst residual divided by its allowance
            (``<= 1`` passes), by name.
        failures: Human-readable descriptions of the failed checks.
    """

    ok: bool
    tolerance: float
    residuals: dict[str, float]
    failures: tuple[str, ...]


def _max(x: FloatArray) -> float:
    return float(np.max(np.abs(x))) if x.size else 0.0


def _neg(x: FloatArray) -> float:
    """Worst violation of x >= 0."""
    return float(max(0.0, -float(np.min(x)))) if x.size else 0.0


def _scatter(n: int, idx: np.ndarray, values: FloatArray) -> FloatArray:
    out = np.zeros(n, dtype=np.float64)
    np.add.at(out, idx, values)
    return out


def _check_sizes(data: ProblemData, sol: Solution) -> None:
    n, m, mh = data.n, data.e_src.size, data.h_src.size
    nh = n if data.heat else 0
    want = {
        "P": n, "p": m, "q": m, "pi": n, "tau": m, "up": n, "lo": n, "sp": m, "sq": m,
        "fu": data.limited.size, "fl": data.limited.size, "H": nh, "hp": mh, "hq": mh,
        "pih": nh, "tauh": mh, "uph": nh, "loh": nh, "sph": mh, "sqh": mh,
        "kappa": data.chp_peer.size,
    }  # fmt: skip
    for name, size in want.items():
        got = getattr(sol, name).size
        if got != size:
            msg = f"certificate field {name} has {got} values, the case needs {size}"
            raise CertificateError(msg)


def kkt_residuals(data: ProblemData, sol: Solution) -> tuple[dict[str, float], float, float]:
    """Return the raw worst residual of each KKT check and the scales ``(S_P, S_π)``."""
    _check_sizes(data, sol)
    n, s, d = data.n, data.e_src, data.e_dst
    P, p, q = sol.P, sol.p, sol.q
    res: dict[str, float] = {}
    # primal feasibility (kW)
    res["primal.link"] = _max(P - _scatter(n, s, p) - _scatter(n, d, q))
    res["primal.trade"] = _max(p + q)
    res["primal.bounds"] = max(_neg(data.p_max - P), _neg(P - data.p_min))
    res["primal.sign"] = max(_neg(p), _neg(-q))
    flows = data.flow[data.limited] @ P if data.limited.size else np.zeros(0)
    res["primal.lines"] = max(_neg(data.cap - flows), _neg(data.cap + flows))
    # dual feasibility (price units)
    res["dual.sign"] = max(_neg(m) for m in (sol.up, sol.lo, sol.sp, sol.sq, sol.fu, sol.fl))
    # stationarity (price units)
    grad_p = data.a * P + data.b - sol.pi + sol.up - sol.lo
    if data.limited.size:
        grad_p = grad_p + data.flow[data.limited].T @ (sol.fu - sol.fl)
    # kp, kc: the grid terms plus the pair penalties, both from the case
    res["stationarity.p_trade"] = _max(data.kp + data.eps * p + sol.pi[s] - sol.tau - sol.sp)
    res["stationarity.q_trade"] = _max(-data.kc + data.eps * q + sol.pi[d] - sol.tau + sol.sq)
    # complementarity (kW x price)
    comp = [
        sol.up * (data.p_max - P), sol.lo * (P - data.p_min), sol.sp * p, sol.sq * (-q),
        sol.fu * (data.cap - flows), sol.fl * (data.cap + flows),
    ]  # fmt: skip
    scale_p = max(1.0, _max(data.p_min), _max(data.p_max), _max(P))
    prices = [sol.pi, sol.tau]
    if data.heat:
        H, hp, hq, hs, hd = sol.H, sol.hp, sol.hq, data.h_src, data.h_dst
        res["primal.link_heat"] = _max(H - _scatter(n, hs, hp) - _scatter(n, hd, hq))
        res["primal.trade_heat"] = _max(hp + hq)
        res["primal.bounds_heat"] = max(_neg(data.h_max - H), _neg(H - data.h_min))
        res["primal.sign_heat"] = max(_neg(hp), _neg(-hq))
        cu = data.chp_peer
        chp_slack = data.chp_g - data.chp_gp * P[cu] - data.chp_gh * H[cu]
        res["primal.chp"] = _neg(chp_slack)
        res["dual.sign_heat"] = max(_neg(m) for m in (sol.uph, sol.loh, sol.sph, sol.sqh))
        res["dual.sign_chp"] = _neg(sol.kappa)
        grad_p = grad_p + _scatter(n, cu, sol.kappa * data.chp_gp)
        grad_h = data.ah * H + data.bh - sol.pih + sol.uph - sol.loh
        grad_h = grad_h + _scatter(n, cu, sol.kappa * data.chp_gh)
        res["stationarity.H"] = _max(grad_h)
        res["stationarity.hp_trade"] = _max(data.eps * hp + sol.pih[hs] - sol.tauh - sol.sph)
        res["stationarity.hq_trade"] = _max(data.eps * hq + sol.pih[hd] - sol.tauh + sol.sqh)
        comp += [
            sol.uph * (data.h_max - H), sol.loh * (H - data.h_min), sol.sph * hp,
            sol.sqh * (-hq), sol.kappa * chp_slack,
        ]  # fmt: skip
        scale_p = max(scale_p, _max(data.h_min), _max(data.h_max), _max(H))
        prices += [sol.pih, sol.tauh, data.bh]
    res["stationarity.P"] = _max(grad_p)
    res["complementarity"] = max(_max(x) for x in comp)
    scale_pi = max(1e-3, _max(data.b), *(_max(x) for x in prices), _max(data.a) * scale_p)
    return res, scale_p, scale_pi


def check_solution(
    data: ProblemData, sol: Solution, *, tol: float = DEFAULT_TOLERANCE
) -> CertificateReport:
    """Check the KKT conditions of ``sol`` for the QP ``data`` (no solver)."""
    raw, scale_p, scale_pi = kkt_residuals(data, sol)
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


def spec_problems(case: Case, certificate: Certificate, model: str) -> list[str]:
    """Return how the certificate's options differ from ``model`` under the case's tariff.

    A certificate proves optimality for its own options (α, β, σ, ε); a
    replica also wants them to be the ones the market agreed on. α and ε
    must equal the case's; β must be the tariff times one common factor
    ``>= 1`` (the congestion procedure may grow β); σ may be any set of lines.
    """
    spec = certificate.spec
    problems = []
    if certificate.model != model:
        problems.append(f"model {certificate.model!r}, want {model!r}")
    try:
        want = make_spec(case, model, penalised=spec.penalised, line_limits=spec.line_limits)
    except ClearingError as exc:
        return [*problems, f"options: {exc}"]
    want_alpha = want.alpha
    if spec.heat != want.heat:
        problems.append(f"heat {spec.heat}, want {want.heat}")
    if not np.allclose(spec.alpha, want_alpha, rtol=1e-9, atol=1e-12):
        problems.append("alpha differs from the tariff")
    if spec.regularisation != case.regularisation:
        problems.append(f"regularisation {spec.regularisation}, want {case.regularisation}")
    tariff = np.asarray(make_spec(case, "congestion").beta)
    beta = np.asarray(spec.beta)
    if beta.any():
        ratio = beta[tariff > 0] / tariff[tariff > 0]
        same = ratio.size and np.allclose(ratio, ratio[0], rtol=1e-9) and ratio[0] >= 1 - 1e-12
        if not same or (beta[tariff == 0] != 0).any():
            problems.append("beta is not the tariff times one factor >= 1")
    return problems


def check_certificate(
    case: Case,
    certificate: Certificate,
    *,
    tol: float = DEFAULT_TOLERANCE,
    model: str | None = None,
) -> CertificateReport:
    """Verify a recorded clearing against ``case`` without calling a solver.

    Args:
        case: The case the clearing was computed for.
        certificate: The recorded model options, primal and dual values.
        tol: Relative tolerance (see the module docstring).
        model: When given, also require the certificate's options to be this
            model under the case's tariff (:func:`spec_problems`).

    Returns:
        The report; ``report.ok`` says whether the clearing is optimal.

    Raises:
        CertificateError: If the certificate does not fit the case (peer
            names, model options or array sizes).
    """
    if certificate.names != case.names:
        msg = "certificate peers differ from the case's peers"
        raise CertificateError(msg)
    n = len(case.names)
    if len(certificate.spec.alpha) != n or len(certificate.spec.beta) != n:
        msg = f"certificate alpha/beta must have one value per peer ({n})"
        raise CertificateError(msg)
    try:
        data = build_problem(case, certificate.spec)
    except ClearingError as exc:
        msg = f"certificate options do not fit the case: {exc}"
        raise CertificateError(msg) from exc
    report = check_solution(data, certificate.solution, tol=tol)
    if model is None:
        return report
    extra = tuple(f"options: {p}" for p in spec_problems(case, certificate, model))
    return CertificateReport(
        ok=report.ok and not extra,
        tolerance=tol,
        residuals=report.residuals,
        failures=report.failures + extra,
    )


# ------------------------------------------------------------------ plain form
_SOLUTION_FIELDS = tuple(f.name for f in fields(Solution))


def certificate_to_plain(cert: Certificate) -> list[PlainValue]:
    """Return the certificate as nested lists of ints and strings (fixed point x 10^9).

    Layout: ``[version, scale_exp, model, [names], heat, line_limits,
    regularisation, [alpha], [beta], [penalised lines σ], [field...]]`` with one
    int list per :class:`~clearing.model.Solution` field, in field order
    (P, p, q, H, hp, hq, pi, tau, up, lo, sp, sq, fu, fl, pih, tauh, uph, loh,
    sph, sqh, kappa).
    """
    spec = cert.spec
    arrays: list[PlainValue] = [fix_all(getattr(cert.solution, f)) for f in _SOLUTION_FIELDS]
    return [
        PLAIN_VERSION,
        SCALE_EXP,
        cert.model,
        list(cert.names),
        int(spec.heat),
        int(spec.line_limits),
        fix(spec.regularisation),
        fix_all(spec.alpha),
        fix_all(spec.beta),
        list(spec.penalised),
        arrays,
    ]


def certificate_from_plain(plain: Sequence[PlainValue]) -> Certificate:
    """Rebuild a :class:`Certificate` from :func:`certificate_to_plain` output.

    Raises:
        CertificateError: If the structure, version or types are wrong.
    """
    if not isinstance(plain, Sequence) or len(plain) != 11:
        msg = "certificate must be a list of 11 items"
        raise CertificateError(msg)
    version, scale_exp, model, names, heat, limits, eps, alpha, beta, penalised, arrays = plain
    if version != PLAIN_VERSION or scale_exp != SCALE_EXP:
        msg = f"unsupported certificate version/scale {version!r}/{scale_exp!r}"
        raise CertificateError(msg)
    if not isinstance(model, str) or not isinstance(eps, int) or isinstance(eps, bool):
        msg = "certificate model must be a string and regularisation an int"
        raise CertificateError(msg)
    if not isinstance(arrays, list) or len(arrays) != len(_SOLUTION_FIELDS):
        msg = f"certificate must hold {len(_SOLUTION_FIELDS)} value lists"
        raise CertificateError(msg)
    values = {
        name: np.asarray(read_ints(arr, name), dtype=np.float64) / SCALE
        for name, arr in zip(_SOLUTION_FIELDS, arrays, strict=True)
    }
    spec = ModelSpec(
        heat=read_flag(heat, "heat"),
        alpha=tuple(v / SCALE for v in read_ints(alpha, "alpha")),
        beta=tuple(v / SCALE for v in read_ints(beta, "beta")),
        penalised=read_strs(penalised, "penalised lines"),
        line_limits=read_flag(limits, "line_limits"),
        regularisation=eps / SCALE,
    )
    return Certificate(
        model=model,
        names=read_strs(names, "names"),
        spec=spec,
        solution=Solution(**values),
    )
