"""The public clearing functions: clear, pool_dispatch and congestion_procedure."""

from __future__ import annotations

from dataclasses import dataclass, replace

from clearing.case import Case, Role
from clearing.errors import InvalidCase, InvalidOption
from clearing.result import ClearingResult
from clearing.solve import Clearer
from clearing.spec import Model, Penalty, make_spec, parse_model

DEFAULT_MAX_ROUNDS = 10
DEFAULT_BETA_GROWTH = 2.0


@dataclass(frozen=True, slots=True)
class CongestionRound:
    """One round of the congestion procedure of 12.6.3.

    Attributes:
        round: 0 for the first solve (no congestion term), then 1, 2, ...
        sigma: σ used in this round's θ (lines penalised).
        beta_scale: Factor applied to every β_i in this round.
        congested: Lines over capacity in this round's solution.
        losses_kw: Losses of this round's solution.
        result: The clearing of this round.
    """

    round: int
    sigma: tuple[str, ...]
    beta_scale: float
    congested: tuple[str, ...]
    losses_kw: float
    result: ClearingResult


@dataclass(frozen=True, slots=True)
class CongestionOutcome:
    """The rounds of :func:`congestion_procedure` and its final clearing."""

    rounds: tuple[CongestionRound, ...]
    resolved: bool

    @property
    def final(self) -> ClearingResult:
        """The last round's clearing."""
        return self.rounds[-1].result


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
    a line of σ) and solves again with β. When a round finds no new congested
    line but congestion remains, β is multiplied by ``beta_growth`` (1 keeps
    β fixed, as in the chapter). It stops when no line is over capacity
    (``resolved``) or after ``max_rounds`` rounds with β. All rounds share one
    compiled model: only Parameters change.

    Args:
        case: The market.
        model: ``congestion``, ``loss+congestion`` or ``heat``.
        alpha, beta: As in :func:`clear`.
        max_rounds: Bound on the rounds with β.
        beta_growth: Factor on β when σ stops growing.
        clearer: Re-use compiled models.

    Raises:
        InvalidOption: Another model, ``max_rounds < 1`` or ``beta_growth < 1``.
        ClearingError: From the solves.
    """
    m = parse_model(model)
    if m not in (Model.CONGESTION, Model.LOSS_CONGESTION, Model.HEAT):
        msg = f"the congestion procedure needs a model with β, got {m.value!r}"
        raise InvalidOption(msg)
    if max_rounds < 1 or not beta_growth >= 1.0:
        msg = f"need max_rounds >= 1 and beta_growth >= 1, got {max_rounds}, {beta_growth}"
        raise InvalidOption(msg)
    clearer = Clearer() if clearer is None else clearer
    beta_values = make_spec(case, Model.CONGESTION, beta=beta).beta
    result = clearer.solve(case, make_spec(case, m, alpha=alpha, beta=0.0), m.value)
    rounds = [CongestionRound(0, (), 0.0, result.congested, result.losses_kw, result)]
    sigma: tuple[str, ...] = ()
    scale = 1.0
    line_order = [ln.name for ln in case.network.lines]
    for k in range(1, max_rounds + 1):
        if not result.congested:
            break
        seen = set(sigma) | set(result.congested)
        grown = tuple(x for x in line_order if x in seen)
        if grown == sigma:
            scale *= beta_growth
        sigma = grown
        beta_k = {name: b * scale for name, b in zip(case.names, beta_values, strict=True)}
        spec = make_spec(case, m, alpha=alpha, beta=beta_k, congested=sigma)
        result = clearer.solve(case, spec, m.value)
        rounds.append(CongestionRound(k, sigma, scale, result.congested, result.losses_kw, result))
    return CongestionOutcome(rounds=tuple(rounds), resolved=not rounds[-1].congested)


def clear(
    case: Case,
    model: str = "basic",
    *,
    alpha: Penalty = None,
    beta: Penalty = None,
    congested: tuple[str, ...] | None = None,
    line_limits: bool = False,
    clearer: Clearer | None = None,
) -> ClearingResult:
    """Clear ``case`` with one of the chapter's models.

    Args:
        case: The market.
        model: ``basic`` (12.6-12.10), ``loss`` (12.14), ``congestion``
            (12.18), ``loss+congestion``, or ``heat`` (12.27-12.38; takes the
            loss/congestion terms when ``alpha``/``beta`` are given).
        alpha: Loss penalty α, currency/(kWh·Ω): ``None`` = the case tariff
            (or the peer's own), a number for all peers, or ``{peer: α}``.
        beta: Congestion penalty β, currency/kWh, same forms.
        congested: σ, the congested lines that set θ. ``None`` with a
            congestion model runs :func:`congestion_procedure` and returns its
            final clearing; ``()`` means no line is penalised.
        line_limits: Add the hard line limits ``|flow| <= capacity`` (their
            duals are in ``result.line_price``).
        clearer: A :class:`Clearer` to re-use compiled models (periodic re-solve).

    Raises:
        InvalidOption: Bad model name or penalty.
        InvalidCase: Data that cannot be cleared.
        Infeasible: No feasible clearing.
        SolverFailed: Any other solver status than optimal.
    """
    m = parse_model(model)
    clearer = Clearer() if clearer is None else clearer
    wants_beta = m in (Model.CONGESTION, Model.LOSS_CONGESTION) or (
        m is Model.HEAT and beta is not None
    )
    if congested is None and wants_beta and not line_limits:
        outcome = congestion_procedure(case, m.value, alpha=alpha, beta=beta, clearer=clearer)
        return outcome.final
    spec = make_spec(
        case, m, alpha=alpha, beta=beta, congested=congested or (), line_limits=line_limits
    )
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
    pool = replace(pool, peers=tuple(replace(p, partners=None) for p in pool.peers))
    clearer = Clearer() if clearer is None else clearer
    spec = make_spec(pool, Model.BASIC)
    return clearer.solve(pool, spec, "pool")
