"""Certificates of the aggregated clearing, checked without a solver.

An :class:`AggregateCertificate` holds the model options and the primal and
dual values of the aggregated QP (:mod:`clearing.aggregate_problem`): peers
plus blocks, never pairs. :func:`check_aggregate_certificate` rebuilds the
aggregated QP from the case and checks its KKT conditions with numpy, at the
tolerances of :func:`clearing.certificate.check_certificate`. The bilateral
trades are not part of it: they are a function of the certified ``P`` and
``x`` (:func:`clearing.aggregate_recover.recover_trades`), so a replica
recomputes them rather than checking them.

:func:`aggregate_certificate_to_plain` gives the ledger form (ints and
strings, values x 10^9, as :func:`clearing.certificate.certificate_to_plain`),
linear in peers plus blocks where the per-pair form is linear in pairs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np

from clearing.aggregate_problem import AggregateProblem, build_aggregate
from clearing.aggregate_solve import AggregateSolution, check_aggregate_solution
from clearing.case import Case
from clearing.certificate import (
    DEFAULT_TOLERANCE,
    Certificate,
    CertificateReport,
    spec_problems,
)
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
from clearing.solution import Solution
from clearing.spec import ModelSpec


@dataclass(frozen=True, slots=True, eq=False)
class AggregateCertificate:
    """What a replica needs, with the case, to verify an aggregated clearing."""

    model: str
    names: tuple[str, ...]
    spec: ModelSpec
    solution: AggregateSolution


def _check_sizes(prob: AggregateProblem, sol: AggregateSolution) -> None:
    n, e, h = prob.n, prob.elec, prob.hgroups
    nh = n if prob.heat else 0
    kh = h.blocks if prob.heat else 0
    want = {
        "P": n, "x": e.blocks, "H": nh, "y": kh, "pi": e.groups,
        "pih": h.groups if prob.heat else 0, "up": n, "lo": n, "rho": e.blocks,
        "fu": prob.limited.size, "fl": prob.limited.size, "uph": nh, "loh": nh, "rhoh": kh,
        "kappa": prob.chp_peer.size,
    }  # fmt: skip
    for name, size in want.items():
        got = getattr(sol, name).size
        if got != size:
            msg = f"aggregate certificate field {name} has {got} values, the case needs {size}"
            raise CertificateError(msg)


def _empty_solution() -> Solution:
    empty = np.zeros(0, dtype=np.float64)
    return Solution(*([empty] * 21))


def check_aggregate_certificate(
    case: Case,
    certificate: AggregateCertificate,
    *,
    tol: float = DEFAULT_TOLERANCE,
    model: str | None = None,
) -> CertificateReport:
    """Verify a recorded aggregated clearing against ``case`` without calling a solver.

    Args:
        case: The case the clearing was computed for (all pairs allowed).
        certificate: The recorded options, primal and dual values.
        tol: Relative tolerance, as in :func:`clearing.certificate.check_certificate`.
        model: When given, also require the options to be this model under
            the case's tariff (:func:`clearing.certificate.spec_problems`).

    Raises:
        CertificateError: If the certificate does not fit the case (peer
            names, options, array sizes, or a case with partner sets).
    """
    if certificate.names != case.names:
        msg = "certificate peers differ from the case's peers"
        raise CertificateError(msg)
    n = len(case.names)
    if len(certificate.spec.alpha) != n or len(certificate.spec.beta) != n:
        msg = f"certificate alpha/beta must have one value per peer ({n})"
        raise CertificateError(msg)
    try:
        prob = build_aggregate(case, certificate.spec)
    except ClearingError as exc:
        msg = f"certificate options do not fit the case: {exc}"
        raise CertificateError(msg) from exc
    _check_sizes(prob, certificate.solution)
    report = check_aggregate_solution(prob, certificate.solution, tol=tol)
    if model is None:
        return report
    plain = Certificate(certificate.model, certificate.names, certificate.spec, _empty_solution())
    extra = tuple(f"options: {p}" for p in spec_problems(case, plain, model))
    return CertificateReport(
        ok=report.ok and not extra,
        tolerance=tol,
        residuals=report.residuals,
        failures=report.failures + extra,
    )


# ------------------------------------------------------------------ plain form
AGGREGATE_TAG = "aggregate"
_FIELDS = tuple(f.name for f in fields(AggregateSolution))


def aggregate_certificate_to_plain(cert: AggregateCertificate) -> list[PlainValue]:
    """Return the certificate as nested lists of ints and strings (fixed point x 10^9).

    Layout: ``[version, scale_exp, "aggregate", model, [names], heat,
    line_limits, regularisation, [alpha], [beta], [penalised lines],
    [field...]]`` with one int list per :class:`AggregateSolution` field in
    field order (P, x, H, y, pi, pih, up, lo, rho, fu, fl, uph, loh, rhoh,
    kappa). The tag tells it apart from the per-pair plain form, so a ledger
    can carry either. Its size is linear in peers plus blocks.
    """
    spec = cert.spec
    arrays: list[PlainValue] = [fix_all(getattr(cert.solution, f)) for f in _FIELDS]
    return [
        PLAIN_VERSION,
        SCALE_EXP,
        AGGREGATE_TAG,
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


def aggregate_certificate_from_plain(plain: Sequence[PlainValue]) -> AggregateCertificate:
    """Rebuild an :class:`AggregateCertificate` from :func:`aggregate_certificate_to_plain`.

    Raises:
        CertificateError: If the structure, tag, version or types are wrong.
    """
    if not isinstance(plain, Sequence) or len(plain) != 12:
        msg = "aggregate certificate must be a list of 12 items"
        raise CertificateError(msg)
    version, scale_exp, tag, model, names, heat, limits, eps, alpha, beta, sigma, arrays = plain
    if version != PLAIN_VERSION or scale_exp != SCALE_EXP or tag != AGGREGATE_TAG:
        msg = f"unsupported certificate version/scale/tag {version!r}/{scale_exp!r}/{tag!r}"
        raise CertificateError(msg)
    if not isinstance(model, str) or not isinstance(eps, int) or isinstance(eps, bool):
        msg = "certificate model must be a string and regularisation an int"
        raise CertificateError(msg)
    if not isinstance(arrays, list) or len(arrays) != len(_FIELDS):
        msg = f"aggregate certificate must hold {len(_FIELDS)} value lists"
        raise CertificateError(msg)
    values = {
        name: np.asarray(read_ints(arr, name), dtype=np.float64) / SCALE
        for name, arr in zip(_FIELDS, arrays, strict=True)
    }
    spec = ModelSpec(
        heat=read_flag(heat, "heat"),
        alpha=tuple(v / SCALE for v in read_ints(alpha, "alpha")),
        beta=tuple(v / SCALE for v in read_ints(beta, "beta")),
        penalised=read_strs(sigma, "penalised lines"),
        line_limits=read_flag(limits, "line_limits"),
        regularisation=eps / SCALE,
    )
    return AggregateCertificate(
        model=model,
        names=read_strs(names, "names"),
        spec=spec,
        solution=AggregateSolution(**values),
    )
