"""The public clearing functions: clear, pool_dispatch and congestion_procedure."""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from clearing.case import Case, Role
from clearing.errors import CongestionUnrelievable, InvalidCase, InvalidOption
from clearing.result import ClearingResult
from clearing.solve import Clearer
from clearing.spec import Model, ModelSpec, Penalty, make_spec, parse_model

DEFAULT_MAX_ROUNDS = 10
DEFAULT_BETA_GROWTH = 2.0


class CongestionStatus(StrEnum):
    """How :func:`congestion_procedure` ended."""

    RESOLVED = "resolved"  # no line over capacity
    UNRELIEVABLE = "unrelievable"  # no clearing keeps the named lines within capacity
    ROUND_LIMIT = "round_limit"  # max_rounds spent, lines still over capacity
    STALLED = "stalled"  # β fixed (growth 1) and σ complete: another round would repeat this one


@dataclass(frozen=True, slots=True)
class CongestionRound:
    """One round of the congestion procedure of 12.6.3.

    Attributes:
        round: 0 for the first solve (no congestion term), then 1, 2, ...
        penalised: σ of this round: the lines whose crossing pays β (θ_ij).
        beta_scale: Factor applied to every β_i in this round.
        overloaded: Lines over capacity in this round's solution.
        losses_kw: Losses of this round's solution.
        result: The clearing of this round.
    """

    round: int
    penalised: tuple[str, ...]
    beta_scale: float
    overloaded: tuple[str, ...]
    losses_kw: float
    result: ClearingResult


@dataclass(frozen=True, slots=True)
class CongestionOutcome:
    """The rounds of :func:`congestion_procedure`, how it ended, and its final clearing.

    Attributes:
        rounds: Every round, round 0 first.
        status: Why it stopped.
        unrelievable: With :attr:`CongestionStatus.UNRELIEVABLE`, the lines no
            clearing can keep within capacity (each alone, or, when no single
            one is, the set that cannot be relieved together); else empty.
    """

    rounds: tuple[CongestionRound, ...]
    status: CongestionStatus
    unrelievable: tuple[str, ...] = ()

    @property
    def resolved(self) -> bool:
        """True when the final clearing has no line over capacity."""
        return self.status is CongestionStatus.RESOLVED

    @property
    def final(self) -> ClearingResult:
        """The last round's clearing."""
        return self.rounds[-1].result


def _relief_impossible(
    case: Case, spec: ModelSpec, lines: tuple[str, ...], clearer: Clearer
) -> tuple[str, ...]:
    """Return the lines of ``lines`` no clearing keeps within capacity (empty: relief possible).

    A penalty only moves the optimum among feasible clearings: if the model
    with hard limits ``|flow| <= cap`` on ``lines`` has no feasible point
    (minimum demand behind a line above its capacity plus local supply,
    say), no β relieves them. Each line is then tried alone, to name the
    culprits; when every line alone is feasible, the set is named together.
    """
    if clearer.feasible_with_limits(case, spec, lines):
        return ()
    alone = tuple(x for x in lines if not clearer.feasible_with_limits(case, spec, (x,)))
    return alone or lines


def congestion_procedure(
    case: Case,
    model: str = "congestion",
    *,
    alpha: Penalty = None,
    beta: Penalty = None,
    max_rounds: int = DEFAULT_MAX_ROUNDS,
    beta_growth: float = DEFAULT_BETA_GROWTH,
    clearer: Clearer | None = None,
) -> CongestionOutcome:
    """Run the congestion management procedure of section 12.6.3.

    Round 0 solves ``model`` with σ = ∅ (so without the congestion term).
    Each next round adds the lines found over capacity to σ (σ only grows,
    so the procedure cannot cycle), sets θ_ij from σ (the pair's path crosses
    a line of σ) and solves again with β. When a round finds no new
    overloaded line but some remain, β would be multiplied by
    ``beta_growth`` (1 keeps β fixed, as in the chapter); first the model
    with hard limits on those lines is checked for a feasible point: without
    one no β can relieve them, and the procedure stops with status
    ``unrelievable`` naming them, instead of inflating the penalties. With
    ``beta_growth = 1`` it then stops ``stalled`` (the next round would
    repeat this one). It stops ``resolved`` when no line is over capacity,
    else after ``max_rounds`` rounds with β (``round_limit``). All rounds share one
    compiled model: only Parameters change.

    Args:
        case: The market.
        model: ``congestion``, ``loss+congestion`` or ``heat``.
        alpha, beta: As in :func:`clear`.
        max_rounds: Bound on the rounds with β.
        beta_growth: Factor on β when σ stops growing.
        clearer: Re-use compiled models.

    Raises:
        InvalidOption: Another model, ``max_rounds < 1``, ``beta_growth < 1``
            or β zero for every peer (nothing to escalate).
        ClearingError: From the solves.
    """
    m = parse_model(model)
    if m not in (Model.CONGESTION, Model.LOSS_CONGESTION, Model.HEAT):
        msg = f"the congestion procedure needs a model with β, got {m.value!r}"
        raise InvalidOption(msg)
    if max_rounds < 1 or not beta_growth >= 1.0:
        msg = f"need max_rounds >= 1 and beta_growth >= 1, got {max_rounds}, {beta_growth}"
        raise InvalidOption(msg)
    beta_values = make_spec(case, Model.CONGESTION, beta=beta).beta
    if not any(beta_values):
        msg = "the congestion procedure needs β > 0 for some peer, got β = 0 for every peer"
        raise InvalidOption(msg)
    clearer = Clearer() if clearer is None else clearer
    base = make_spec(case, m, alpha=alpha, beta=0.0)
    result = clearer.solve(case, base, m.value)
    rounds = [CongestionRound(0, (), 0.0, result.overloaded, result.losses_kw, result)]
    sigma: tuple[str, ...] = ()
    scale = 1.0
    line_order = [ln.name for ln in case.network.lines]
    relievable: list[set[str]] = []  # line sets known to admit a clearing within capacity
    for k in range(1, max_rounds + 1):
        over = result.overloaded
        if not over:
            break
        seen = set(sigma) | set(over)
        grown = tuple(x for x in line_order if x in seen)
        if grown == sigma:
            if not any(set(over) <= known for known in relievable):
                stuck = _relief_impossible(case, base, over, clearer)
                if stuck:
                    return CongestionOutcome(
                        tuple(rounds), CongestionStatus.UNRELIEVABLE, unrelievable=stuck
                    )
                relievable.append(set(over))
            if beta_growth == 1.0:
                return CongestionOutcome(tuple(rounds), CongestionStatus.STALLED)
            scale *= beta_growth
        sigma = grown
        beta_k = {name: b * scale for name, b in zip(case.names, beta_values, strict=True)}
        spec = make_spec(case, m, alpha=alpha, beta=beta_k, penalised=sigma)
        result = clearer.solve(case, spec, m.value)
        rounds.append(CongestionRound(k, sigma, scale, result.overloaded, result.losses_kw, result))
    status = CongestionStatus.ROUND_LIMIT if rounds[-1].overloaded else CongestionStatus.RESOLVED
    return CongestionOutcome(rounds=tuple(rounds), status=status)


def clear(
    case: Case,
    model: str = "basic",
    *,
    alpha: Penalty = None,
    beta: Penalty = None,
    penalised: tuple[str, ...] | None = None,
    line_limits: bool = False,
    clearer: Clearer | None = None,
) -> ClearingResult:
    """Clear ``case`` with one of the chapter's models.

    Args:
        case: The market.
        model: ``basic`` (12.6-12.10), ``loss`` (12.14), ``congestion``
            (12.18), ``loss+congestion``, or ``heat`` (12.27-12.38 with the
            loss and congestion terms; ``alpha=0, beta=0`` for the plain model).
        alpha: Loss penalty α, currency/(kWh·Ω): ``None`` = the case tariff
            (or the peer's own), a number for all peers, or ``{peer: α}``.
        beta: Congestion penalty β, currency/kWh, same forms.
        penalised: σ, the lines whose crossing pays β (θ). ``None`` with a
            model that has β > 0 runs :func:`congestion_procedure` and
            returns its final clearing (possibly still over capacity after
            its last round: see :attr:`ClearingResult.overloaded`); ``()``
            means no line is penalised.
        line_limits: Add the hard line limits ``|flow| <= capacity`` (their
            duals are in ``result.line_price``).
        clearer: A :class:`Clearer` to re-use compiled models (periodic re-solve).

    Raises:
        InvalidOption: Bad model name or penalty.
        InvalidCase: Data that cannot be cleared.
        Infeasible: No feasible clearing.
        CongestionUnrelievable: The congestion procedure found lines no
            clearing keeps within capacity (named in the error).
        ProblemTooLarge: The clearing would need more memory than the
            clearer's limit (raised before building anything).
        SolverFailed: Any other solver status than optimal.
    """
    m = parse_model(model)
    clearer = Clearer() if clearer is None else clearer
    spec = make_spec(
        case, m, alpha=alpha, beta=beta, penalised=penalised or (), line_limits=line_limits
    )
    if penalised is None and any(spec.beta) and not line_limits:
        outcome = congestion_procedure(case, m.value, alpha=alpha, beta=beta, clearer=clearer)
        if outcome.status is CongestionStatus.UNRELIEVABLE:
            lines = ", ".join(outcome.unrelievable)
            msg = (
                f"congestion on {lines} cannot be relieved: no clearing within the peers' "
                "bounds keeps them within capacity (the model with hard line limits is "
                "infeasible), so no congestion penalty can"
            )
            raise CongestionUnrelievable(msg, lines=outcome.unrelievable, outcome=outcome)
        return outcome.final
    return clearer.solve(case, spec, m.value)


def pool_dispatch(case: Case, *, clearer: Clearer | None = None) -> ClearingResult:
    """The pool-based baseline of table 12.2: the main grid as the only producer.

    Every other producer is removed and every consumer may buy from the grid
    (economic dispatch of the basic model, 12.6-12.10, without heat).

    Raises:
        InvalidCase: If the case has no main-grid peer.
    """
    grid = case.grid_peer()
    if grid is None:
        msg = f"case {case.name!r} has no main-grid peer (role 'grid') for the pool baseline"
        raise InvalidCase(msg)
    others = [p.name for p in case.peers if p.is_producer and p.role is not Role.GRID]
    pool = case.without(others)
    pool = replace(
        pool, peers=tuple(replace(p, partners=None, pair_penalties=()) for p in pool.peers)
    )
    clearer = Clearer() if clearer is None else clearer
    spec = make_spec(pool, Model.BASIC)
    return clearer.solve(pool, spec, "pool")
