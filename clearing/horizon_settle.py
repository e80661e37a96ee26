"""Settle a horizon from its certificate: the recorded solution, rounded to the ledger's units.

The multi-period counterpart of :mod:`clearing.settle`. Whoever publishes a
horizon clearing on a ledger and whoever checks it derive the settlements
from the certificate as it is on the ledger (fixed point, decoded), never
from the solver's floats, so both sides round the same numbers and the
published settlements can be compared exactly. No solver is called: the
horizon QP is rebuilt from the case (:func:`build_horizon_problem`) and the
result is read off the certificate's primal and dual vectors.
"""

from __future__ import annotations

from clearing.errors import CertificateError, ClearingError
from clearing.horizon import HorizonResult, HorizonSolveInfo, Solved, assemble_horizon_result
from clearing.horizon_case import HorizonCase
from clearing.horizon_certificate import HorizonCertificate
from clearing.horizon_problem import build_horizon_problem
from clearing.horizon_rounding import round_horizon_settlement
from clearing.rounding import Settlement


def result_from_horizon_certificate(
    case: HorizonCase, certificate: HorizonCertificate
) -> HorizonResult:
    """Rebuild the :class:`HorizonResult` a certificate records for ``case`` (no solver).

    The result's status is ``"certified"`` and its solver figures are zero.
    This does not check optimality: call
    :func:`clearing.check_horizon_certificate` first when the certificate
    comes from someone else.

    Raises:
        CertificateError: If the certificate's peers, slot count, options or
            vector sizes do not fit the case.
    """
    if certificate.names != case.names or certificate.slots != case.slots:
        msg = (
            f"certificate peers {list(certificate.names)} over {certificate.slots} slots "
            f"differ from the case's {list(case.names)} over {case.slots}"
        )
        raise CertificateError(msg)
    try:
        problem = build_horizon_problem(case, certificate.spec)
    except ClearingError as exc:
        msg = f"certificate options do not fit the case: {exc}"
        raise CertificateError(msg) from exc
    nx, neq, nin = problem.size
    for what, vec, want in (
        ("x", certificate.x, nx),
        ("y", certificate.y, neq),
        ("z", certificate.z, nin),
    ):
        if vec.shape != (want,):
            msg = f"certificate {what} has shape {vec.shape}, the horizon needs ({want},)"
            raise CertificateError(msg)
    info = HorizonSolveInfo("certified", 0, 0.0, 0.0, nx, neq, nin)
    solved = Solved(certificate.x, certificate.y, certificate.z, info)
    return assemble_horizon_result(case, problem, certificate.spec, solved)


def settle_horizon_certificate(
    case: HorizonCase, certificate: HorizonCertificate
) -> tuple[Settlement, ...]:
    """Return the rounded, balance-checked settlement of each slot of a certified horizon.

    :func:`result_from_horizon_certificate` rounded by
    :func:`clearing.round_horizon_settlement` (integer Wh, ticks per kWh,
    tick·Wh; every slot's balances exact and checked).

    Raises:
        CertificateError: If the certificate does not fit the case.
        ClearingError: If a rounded slot does not balance.
    """
    return round_horizon_settlement(case, result_from_horizon_certificate(case, certificate))
