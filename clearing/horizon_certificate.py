"""Optimality certificates of a multi-period clearing, checked without a solver.

A :class:`HorizonCertificate` holds the spec, the primal vector ``x`` and the
dual vectors ``y`` (equalities) and ``z`` (inequalities) of the horizon QP of
:mod:`clearing.horizon_problem`. :func:`check_horizon_certificate` rebuilds
that QP from the case (pure numpy and scipy.sparse, no solver) and checks the
KKT conditions of the whole horizon, in the style of
:mod:`clearing.certificate`:

- primal feasibility: every equality ``|A_eq x - b_eq|`` (balances, links,
  state of charge, room temperature, gas store, flows) and every inequality
  ``A_in x <= b_in`` (bounds, signs, comfort band, EV energy at departure,
  CHP region, ramps, line limits);
- dual feasibility: ``z >= 0``;
- stationarity: ``diag(h) x + q + A_eqᵀ y + A_inᵀ z = 0`` for every variable;
- complementary slackness: ``z (b_in - A_in x) = 0``.

Tolerance (``tol``, default 1e-6) is relative, as for a single slot:
``S_P = max(1, max |b|, max |x|)`` (kW, kWh, °C) and ``S_π = max(1e-3,
max |q|, max |h x|, max (|A|ᵀ |y, z|))`` (currency per kWh or per unit of the
row). Primal residuals pass below ``tol S_P``, stationarity and dual signs
below ``tol S_π``, complementarity below ``tol S_P S_π``.

The plain form (:func:`horizon_certificate_to_plain`) is lists of ints and
strings only (fixed point value x 10^9, half-even), for the ledger.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from clearing.certificate import CertificateReport
from clearing.errors import CertificateError, ClearingError
from clearing.horizon_case import HorizonCase
from clearing.horizon_problem import (
    FloatArray,
    Group,
    HorizonProblem,
    HorizonSpec,
    build_horizon_problem,
)
from clearing.plain import PLAIN_VERSION, SCALE, SCALE_EXP, PlainValue, read_strs
from clearing.spec import parse_model

DEFAULT_TOLERANCE = 1e-6


@dataclass(frozen=True, slots=True, eq=False)
class HorizonCertificate:
    """What a replica needs, with the horizon case, to verify a clearing it did not compute.

    Attributes:
        names: Peer names (case order).
        slots: T.
        spec: Model, line limits, σ per slot, β scale.
        x: Primal values (the QP's variable order).
        y: Multipliers of the equalities.
        z: Multipliers of the inequalities (>= 0).
    """

    names: tuple[str, ...]
    slots: int
    spec: HorizonSpec
    x: FloatArray
    y: FloatArray
    z: FloatArray


def _group_max(values: FloatArray, groups: tuple[Group, ...]) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, start, stop in groups:
        v = float(np.max(values[start:stop])) if stop > start else 0.0
        out[name] = max(out.get(name, 0.0), v)
    return out


def _block_of(problem: HorizonProblem) -> tuple[FloatArray, list[str]]:
    """Map each variable to a kind name (``X``, ``p``, ``battery.soc``...) for the report."""
    kinds: list[str] = []
    owner = np.zeros(problem.q.size, dtype=np.int64)
    lookup: dict[str, int] = {}
    for name, idx in problem.blocks.items():
        kind = name.split("/", 1)[1].split(".", 1)[1] if "/" in name else name
        kind = f"asset.{kind}" if "/" in name else kind
        if kind not in lookup:
            lookup[kind] = len(kinds)
            kinds.append(kind)
        owner[idx.ravel()] = lookup[kind]
    return owner.astype(np.float64), kinds


def horizon_kkt_residuals(
    problem: HorizonProblem, x: FloatArray, y: FloatArray, z: FloatArray
) -> tuple[dict[str, float], float, float]:
    """Return the raw worst residual of each check and the scales ``(S_P, S_π)``.

    Raises:
        CertificateError: If the vectors do not fit the problem.
    """
    nx, neq, nin = problem.size
    for what, vec, want in (("x", x, nx), ("y", y, neq), ("z", z, nin)):
        if vec.shape != (want,):
            msg = f"certificate {what} has shape {vec.shape}, the horizon needs ({want},)"
            raise CertificateError(msg)
    res: dict[str, float] = {}
    r_eq = np.abs(problem.a_eq @ x - problem.b_eq)
    slack = problem.b_in - problem.a_in @ x
    for name, v in _group_max(r_eq, problem.eq_groups).items():
        res[f"primal.{name}"] = v
    for name, v in _group_max(np.maximum(-slack, 0.0), problem.in_groups).items():
        res[f"primal.{name}"] = v
    for name, v in _group_max(np.maximum(-z, 0.0), problem.in_groups).items():
        res[f"dual.{name}"] = v
    comp = np.abs(z * slack)
    res["complementarity"] = float(comp.max()) if comp.size else 0.0
    hx = problem.hdiag * x
    grad = hx + problem.q + problem.a_eq.T @ y + problem.a_in.T @ z
    owner, kinds = _block_of(problem)
    for j, kind in enumerate(kinds):
        sel = owner == j
        res[f"stationarity.{kind}"] = float(np.max(np.abs(grad[sel]))) if sel.any() else 0.0
    terms = abs(problem.a_eq).T @ np.abs(y) + abs(problem.a_in).T @ np.abs(z)

    def top(v: FloatArray) -> float:
        return float(np.max(np.abs(v))) if v.size else 0.0

    scale_p = max(1.0, top(problem.b_eq), top(problem.b_in), top(x))
    scale_pi = max(1e-3, top(problem.q), top(hx), top(np.asarray(terms)))
    return res, scale_p, scale_pi


def check_horizon_solution(
    problem: HorizonProblem,
    x: FloatArray,
    y: FloatArray,
    z: FloatArray,
    *,
    tol: float = DEFAULT_TOLERANCE,
) -> CertificateReport:
    """Check the KKT conditions of ``(x, y, z)`` for the horizon QP (no solver)."""
    raw, scale_p, scale_pi = horizon_kkt_residuals(problem, x, y, z)
    allowed = {
        "primal": tol * scale_p,
        "dual": tol * scale_pi,
        "stationarity": tol * scale_pi,
        "complementarity": tol * scale_p * scale_pi,
    }
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


def check_horizon_certificate(
    case: HorizonCase, certificate: HorizonCertificate, *, tol: float = DEFAULT_TOLERANCE
) -> CertificateReport:
    """Verify a recorded horizon clearing against ``case`` without calling a solver.

    Returns:
        The report; ``report.ok`` says whether the clearing is optimal over
        the whole horizon.

    Raises:
        CertificateError: If the certificate does not fit the case (names,
            slots, options or vector sizes).
    """
    if certificate.names != case.names or certificate.slots != case.slots:
        msg = "certificate peers or slot count differ from the case's"
        raise CertificateError(msg)
    try:
        problem = build_horizon_problem(case, certificate.spec)
    except ClearingError as exc:
        msg = f"certificate options do not fit the case: {exc}"
        raise CertificateError(msg) from exc
    return check_horizon_solution(problem, certificate.x, certificate.y, certificate.z, tol=tol)


# ------------------------------------------------------------------ plain form
def _fix_all(values: FloatArray) -> list[PlainValue]:
    if not np.all(np.isfinite(values)):
        msg = "cannot encode a non-finite value"
        raise CertificateError(msg)
    return [int(v) for v in np.rint(values * SCALE).astype(np.int64)]


def horizon_certificate_to_plain(cert: HorizonCertificate) -> list[PlainValue]:
    """Return the certificate as nested lists of ints and strings (fixed point x 10^9).

    Layout: ``[version, scale_exp, model, [names], slots, line_limits,
    beta_scale, [[σ_0 lines], ...], [x], [y], [z]]``.
    """
    spec = cert.spec
    return [
        PLAIN_VERSION,
        SCALE_EXP,
        spec.model.value,
        list(cert.names),
        cert.slots,
        int(spec.line_limits),
        round(spec.beta_scale * SCALE),
        [list(s) for s in spec.penalised],
        _fix_all(cert.x),
        _fix_all(cert.y),
        _fix_all(cert.z),
    ]


def _ints(value: PlainValue, what: str) -> FloatArray:
    if not isinstance(value, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        msg = f"certificate {what} must be a list of ints"
        raise CertificateError(msg)
    return np.asarray(np.asarray(value, dtype=np.float64) / SCALE, dtype=np.float64)


def horizon_certificate_from_plain(plain: Sequence[PlainValue]) -> HorizonCertificate:
    """Rebuild a :class:`HorizonCertificate` from :func:`horizon_certificate_to_plain` output.

    Raises:
        CertificateError: If the structure, version or types are wrong.
    """
    if not isinstance(plain, Sequence) or len(plain) != 11:
        msg = "horizon certificate must be a list of 11 items"
        raise CertificateError(msg)
    version, scale_exp, model, names, slots, limits, scale, penalised, x, y, z = plain
    if version != PLAIN_VERSION or scale_exp != SCALE_EXP:
        msg = f"unsupported certificate version/scale {version!r}/{scale_exp!r}"
        raise CertificateError(msg)
    ok = isinstance(model, str) and all(
        isinstance(v, int) and not isinstance(v, bool) for v in (slots, limits, scale)
    )
    if not ok or limits not in (0, 1) or not isinstance(penalised, list):
        msg = "certificate model must be a string; slots, line_limits, beta_scale ints"
        raise CertificateError(msg)
    try:
        m = parse_model(str(model))
    except ClearingError as exc:
        raise CertificateError(str(exc)) from exc
    spec = HorizonSpec(
        model=m,
        line_limits=limits == 1,
        penalised=tuple(read_strs(s, "penalised lines") for s in penalised),
        beta_scale=int(scale) / SCALE,  # type: ignore[arg-type]
    )
    return HorizonCertificate(
        names=read_strs(names, "names"),
        slots=int(slots),  # type: ignore[arg-type]
        spec=spec,
        x=_ints(x, "x"),
        y=_ints(y, "y"),
        z=_ints(z, "z"),
    )
