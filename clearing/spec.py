"""Model names and options: what, besides the case, fixes a clearing QP."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from clearing.case import Case
from clearing.errors import InvalidOption

Penalty = float | Mapping[str, float] | None


class Model(StrEnum):
    """The chapter's models (section 12.6)."""

    BASIC = "basic"  # 12.6-12.10
    LOSS = "loss"  # 12.14
    CONGESTION = "congestion"  # 12.18
    LOSS_CONGESTION = "loss+congestion"  # 12.14 and 12.18 together
    HEAT = "heat"  # 12.27-12.38 (takes the loss and congestion terms too)


def parse_model(model: str | Model) -> Model:
    """Return the :class:`Model` named ``model``.

    Raises:
        InvalidOption: For an unknown name.
    """
    try:
        return Model(model)
    except ValueError:
        msg = f"unknown model {model!r}; choose one of {[m.value for m in Model]}"
        raise InvalidOption(msg) from None


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """Everything besides the case that fixes the QP.

    Attributes:
        heat: Heat and CHP variables and constraints (12.27-12.38).
        alpha: α_i per peer (case order), currency/(kWh·Ω); zeros = no loss term.
        beta: β_i per peer, currency/kWh; zeros = no congestion term.
        penalised: σ, the lines whose crossing pays β: θ_ij = 1 when the path
            of (i, j) crosses one of them (12.15). Which lines the procedure
            of 12.6.3 penalises; not which lines a clearing overloads
            (:attr:`ClearingResult.overloaded`).
        line_limits: Add ``|F P| <= cap`` as hard constraints.
        regularisation: ε of ``ε/2 Σ P_ij²``.
    """

    heat: bool
    alpha: tuple[float, ...]
    beta: tuple[float, ...]
    penalised: tuple[str, ...]
    line_limits: bool
    regularisation: float


def per_peer(case: Case, value: float | Mapping[str, float] | None, kind: str) -> tuple[float, ...]:
    """Resolve α or β to one value per peer.

    ``None`` takes each peer's own value, else the case tariff; a number
    applies to every peer; a mapping sets named peers (others: as ``None``).

    Raises:
        InvalidOption: For a negative or non-finite value.
        UnknownPeer: For a mapping naming an unknown peer.
    """
    default = case.alpha if kind == "alpha" else case.beta
    own = [p.alpha if kind == "alpha" else p.beta for p in case.peers]
    out = [default if v is None else v for v in own]
    if isinstance(value, Mapping):
        for name, v in value.items():
            out[case.index(name)] = v
    elif value is not None:
        out = [value] * len(out)
    for v in out:
        if isinstance(v, bool) or not isinstance(v, int | float) or not np.isfinite(v) or v < 0:
            msg = f"{kind} must be finite and >= 0, got {v!r}"
            raise InvalidOption(msg)
    return tuple(float(v) for v in out)


def make_spec(
    case: Case,
    model: str | Model,
    *,
    alpha: Penalty = None,
    beta: Penalty = None,
    penalised: tuple[str, ...] = (),
    line_limits: bool = False,
) -> ModelSpec:
    """Return the :class:`ModelSpec` of ``model`` on ``case``.

    ``basic`` ignores α and β; ``loss`` uses α only; ``congestion`` β only;
    ``loss+congestion`` and ``heat`` both, the case tariff's unless given
    (heat with ``alpha=0, beta=0`` is the plain 12.27-12.38 model). α/β:
    ``None`` = the case tariff (or each peer's own), a number for every
    peer, or ``{peer: value}``. ``penalised`` is σ (only models with β use it).

    Raises:
        InvalidOption: Unknown model, negative penalty, or heat model on a case without heat.
    """
    m = parse_model(model)
    zeros = tuple(0.0 for _ in case.peers)
    use_alpha = m in (Model.LOSS, Model.LOSS_CONGESTION, Model.HEAT)
    use_beta = m in (Model.CONGESTION, Model.LOSS_CONGESTION, Model.HEAT)
    if m is Model.HEAT and not case.has_heat:
        msg = f"model 'heat' needs heat data, and case {case.name!r} has none"
        raise InvalidOption(msg)
    return ModelSpec(
        heat=m is Model.HEAT,
        alpha=per_peer(case, alpha, "alpha") if use_alpha else zeros,
        beta=per_peer(case, beta, "beta") if use_beta else zeros,
        penalised=tuple(penalised) if use_beta else (),
        line_limits=bool(line_limits),
        regularisation=case.regularisation,
    )
