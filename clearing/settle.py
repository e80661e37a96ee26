"""Settle a case from a certificate: the recorded solution, rounded to the ledger's units.

The operator and every replica derive a clearing's ledger settlements from
the certificate as it is on the ledger (fixed point, decoded), never from
the solver's floats: the same numbers are rounded on both sides, so the
published settlements can be checked exactly. These functions are that one
path, so a caller never rebuilds a result from clearing's private modules.
"""

from __future__ import annotations

from clearing.case import Case
from clearing.certificate import Certificate
from clearing.errors import CertificateError, ClearingError
from clearing.problem import build_problem
from clearing.result import ClearingResult, assemble_result
from clearing.rounding import Settlement, round_settlement
from clearing.solution import SolveInfo

CERTIFIED = SolveInfo("certified", "certificate", 0.0, 0.0, 0, 0.0)


def result_from_certificate(case: Case, certificate: Certificate) -> ClearingResult:
    """Rebuild the :class:`ClearingResult` a certificate records for ``case`` (no solver).

    The result's ``status`` is ``"certified"`` and its solver times are zero.
    This does not check optimality: call :func:`clearing.check_certificate`
    first when the certificate comes from someone else.

    Raises:
        CertificateError: If the certificate's peers or options do not fit the case.
    """
    if certificate.names != case.names:
        mine, theirs = list(certificate.names), list(case.names)
        msg = f"certificate peers {mine} differ from the case's {theirs}"
        raise CertificateError(msg)
    try:
        data = build_problem(case, certificate.spec)
    except ClearingError as exc:
        msg = f"certificate options do not fit the case: {exc}"
        raise CertificateError(msg) from exc
    sol = certificate.solution
    sizes = {"P": (sol.P.size, data.n), "p": (sol.p.size, data.e_src.size)}
    sizes["hp"] = (sol.hp.size, data.h_src.size)
    for name, (got, want) in sizes.items():
        if got != want:
            msg = f"certificate field {name} has {got} values, the case needs {want}"
            raise CertificateError(msg)
    return assemble_result(case, certificate.model, data, sol, CERTIFIED, certificate.spec)


def settle_certificate(case: Case, certificate: Certificate) -> Settlement:
    """Return the rounded, balance-checked settlement of a certified clearing.

    What a ledger records for a clearing: :func:`result_from_certificate`
    rounded by :func:`clearing.round_settlement` (integer Wh, ticks per kWh,
    tick·Wh; every balance exact and checked).

    Raises:
        CertificateError: If the certificate does not fit the case.
        ClearingError: If the rounded settlement does not balance.
    """
    settlement = round_settlement(case, result_from_certificate(case, certificate))
    settlement.check()
    return settlement
