"""Certificates of the aggregated clearing, checked without a solver.

An :class:`AggregateCertificate` holds the model options and the primal and
dual values of the aggregated QP (:mod:`clearing.aggregate_problem`): peers
plus blocks, never pairs. :func:`check_aggregate_certificate` rebuilds the
aggregated QP from the case and checks its KKT conditions with numpy, at the
tolerances of :func:`clearing.certificate.check_certificate`. The bilateral
trades are not part of it: they are a function of the certified ``P`` and
``x`` (:func:`clearing.aggregate_recover.recover_trades`), so a replica
recomputes them rather than checking them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from clearing.aggregate_problem import AggregateProblem, build_aggregate
from clearing.aggregate_solve import AggregateSolution, check_aggregate_solution
from clearing.case import Case
from clearing.certificate import DEFAULT_TOLERANCE, Certificate, CertificateReport, spec_problems
from clearing.errors import CertificateError, ClearingError
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
