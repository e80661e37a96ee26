"""Clearing at community scale: the aggregated form, and the choice of form.

In an all-pairs market the per-pair QP has one variable per (producer,
consumer): a million at 1,000 x 1,000 peers. On a radial feeder the
aggregated QP of :mod:`clearing.aggregate_problem` has one per peer and one
per block (seller group x buyer group, groups by bus and tariff), and the
same optimal dispatch and prices; the bilateral trades are recovered by the
pro-rata rule of :mod:`clearing.aggregate_recover`. See
docs/community-clearing.md.

- :func:`clear_aggregated` clears in the aggregated form (or raises
  :class:`~clearing.aggregate_problem.NotAggregable`), returning the
  per-pair :class:`~clearing.result.ClearingResult` plus the aggregated
  certificate;
- :func:`clear_auto` picks the aggregated form when it is exact (no partner
  set restricts a pair) and the per-pair form otherwise, and says which;
- :class:`AggregateClearer` is a :class:`~clearing.solve.Clearer` that
  solves in the aggregated form, so :func:`clearing.market.clear` and
  :func:`clearing.market.congestion_procedure` run on it unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from clearing.aggregate_certificate import AggregateCertificate
from clearing.aggregate_problem import build_aggregate, check_all_pairs, restricting_peers
from clearing.aggregate_recover import expand_solution, pair_objective
from clearing.aggregate_solve import solve_aggregate
from clearing.case import Case
from clearing.errors import ClearingError
from clearing.market import clear
from clearing.problem import build_problem
from clearing.result import ClearingResult, assemble_result
from clearing.solve import Clearer
from clearing.spec import ModelSpec, Penalty


class ClearingForm(StrEnum):
    """Which QP a clearing solved."""

    AGGREGATED = "aggregated"  # peers + blocks, trades recovered pro rata
    PER_PAIR = "per-pair"  # one variable per allowed pair (clearing.model)


@dataclass(frozen=True, slots=True, eq=False)
class AggregateClearing:
    """An aggregated clearing: the per-pair result and what certifies it.

    Attributes:
        result: The clearing in the per-pair shape (trades, prices,
            payments, certificate of the per-pair QP); ``result.objective``
            is the aggregated optimum.
        certificate: The aggregated QP's certificate
            (:func:`~clearing.aggregate_certificate.check_aggregate_certificate`).
        groups: Peer groups (electricity).
        blocks: Group pairs, the aggregated form's trade variables.
        pairs: Producer-consumer pairs of the per-pair form.
        pair_objective: The per-pair objective at the recovered trades; the
            per-pair optimum lies in ``[result.objective, pair_objective]``.
    """

    result: ClearingResult
    certificate: AggregateCertificate
    groups: int
    blocks: int
    pairs: int
    pair_objective: float

    @property
    def gap_bound(self) -> float:
        """Upper bound on |aggregated optimum - per-pair optimum| (objective units)."""
        return max(0.0, self.pair_objective - self.result.objective)


def solve_aggregated(
    case: Case, spec: ModelSpec, model: str, *, options: Mapping[str, object] | None = None
) -> AggregateClearing:
    """Solve ``case`` under ``spec`` in the aggregated form.

    Raises:
        NotAggregable: If partner sets restrict pairs.
        Infeasible: If no clearing satisfies the constraints.
        SolverFailed: For any other solver status than solved.
    """
    prob = build_aggregate(case, spec)
    agg, info = solve_aggregate(prob, options)
    data = build_problem(case, spec)
    sol = expand_solution(prob, agg, data)
    result = assemble_result(case, model, data, sol, info, spec)
    return AggregateClearing(
        result=result,
        certificate=AggregateCertificate(model=model, names=case.names, spec=spec, solution=agg),
        groups=prob.elec.groups,
        blocks=prob.elec.blocks,
        pairs=int(data.e_src.size),
        pair_objective=pair_objective(data, sol),
    )


class AggregateClearer(Clearer):
    """A :class:`Clearer` that solves in the aggregated form.

    Pass it as ``clearer`` to :func:`clearing.market.clear` or
    :func:`clearing.market.congestion_procedure`. The aggregated QP is
    rebuilt for every solve (it is small and has nothing to compile);
    :attr:`last` keeps the latest :class:`AggregateClearing`. Not
    thread-safe; one per worker process.

    Args:
        options: Clarabel settings by name, e.g. ``{"direct_solve_method": "faer"}``.
    """

    def __init__(self, *, options: Mapping[str, object] | None = None) -> None:
        super().__init__(1, options=options)
        self._settings = dict(options or {})
        self.last: AggregateClearing | None = None

    def solve(self, case: Case, spec: ModelSpec, model: str) -> ClearingResult:
        """Solve ``case`` under ``spec`` in the aggregated form.

        Raises:
            NotAggregable: If partner sets restrict pairs.
            Infeasible: If no clearing satisfies the constraints.
            SolverFailed: For any other non-optimal solver status.
        """
        out = solve_aggregated(case, spec, model, options=self._settings)
        self.last = out
        return out.result


def clear_aggregated(
    case: Case,
    model: str = "basic",
    *,
    alpha: Penalty = None,
    beta: Penalty = None,
    penalised: tuple[str, ...] | None = None,
    line_limits: bool = False,
    options: Mapping[str, object] | None = None,
) -> AggregateClearing:
    """Clear an all-pairs ``case`` in the aggregated form.

    Arguments as in :func:`clearing.market.clear` (``penalised=None`` with a
    congestion model runs the congestion procedure of 12.6.3, every round
    aggregated).

    Raises:
        NotAggregable: If partner sets restrict pairs (use :func:`clear_auto`).
        InvalidOption, InvalidCase, Infeasible, SolverFailed: As :func:`clearing.market.clear`.
    """
    check_all_pairs(case)
    clearer = AggregateClearer(options=options)
    clear(
        case,
        model,
        alpha=alpha,
        beta=beta,
        penalised=penalised,
        line_limits=line_limits,
        clearer=clearer,
    )
    if clearer.last is None:  # clear() solves at least once or raises
        msg = "the aggregated clearing returned no solution"
        raise ClearingError(msg)
    return clearer.last


@dataclass(frozen=True, slots=True, eq=False)
class CommunityClearing:
    """The outcome of :func:`clear_auto`.

    Attributes:
        form: The QP that was solved.
        reason: Why that form.
        result: The clearing, in the per-pair shape either way.
        aggregate: The aggregated clearing (certificate, sizes, objective
            bound) when ``form`` is aggregated, else ``None``.
    """

    form: ClearingForm
    reason: str
    result: ClearingResult
    aggregate: AggregateClearing | None


def clear_auto(
    case: Case,
    model: str = "basic",
    *,
    alpha: Penalty = None,
    beta: Penalty = None,
    penalised: tuple[str, ...] | None = None,
    line_limits: bool = False,
    clearer: Clearer | None = None,
    options: Mapping[str, object] | None = None,
) -> CommunityClearing:
    """Clear ``case`` in the aggregated form when it is exact, else per pair.

    The aggregated form is exact when every producer may trade with every
    consumer (no partner set leaves out a peer of the other role) and no
    pair penalty tells partners apart. Otherwise
    the case goes to :func:`clearing.market.clear` with ``clearer`` (the
    per-pair cvxpy model). Other arguments as in :func:`clearing.market.clear`;
    ``options`` are Clarabel settings for the aggregated form.

    Raises:
        InvalidOption, InvalidCase, Infeasible, SolverFailed: As :func:`clearing.market.clear`.
    """
    restricting = restricting_peers(case)
    if restricting:
        result = clear(
            case,
            model,
            alpha=alpha,
            beta=beta,
            penalised=penalised,
            line_limits=line_limits,
            clearer=clearer,
        )
        reason = (
            f"{len(restricting)} peer(s) restrict or penalise their partners: "
            "aggregation is inexact"
        )
        return CommunityClearing(ClearingForm.PER_PAIR, reason, result, None)
    agg = clear_aggregated(
        case,
        model,
        alpha=alpha,
        beta=beta,
        penalised=penalised,
        line_limits=line_limits,
        options=options,
    )
    reason = (
        f"all {agg.pairs} producer-consumer pairs allowed: {agg.groups} groups, {agg.blocks} blocks"
    )
    return CommunityClearing(ClearingForm.AGGREGATED, reason, agg.result, agg)
