"""Solve one clearing, reusing compiled models across periodic re-solves.

:class:`Clearer` keeps the compiled cvxpy model of each problem structure
(which pairs may trade, CHP units, limited lines), so a re-solve with new
numbers (curves, bounds, α, β, σ) only updates Parameters.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping

from clearing.case import Case
from clearing.errors import InvalidOption
from clearing.model import QpModel
from clearing.problem import Model, ModelSpec, build_problem, parse_model, per_peer, structure_key
from clearing.result import ClearingResult, assemble_result

Penalty = float | Mapping[str, float] | None


def make_spec(
    case: Case,
    model: str | Model,
    *,
    alpha: Penalty = None,
    beta: Penalty = None,
    congested: tuple[str, ...] = (),
    line_limits: bool = False,
) -> ModelSpec:
    """Return the :class:`ModelSpec` of ``model`` on ``case``.

    ``basic`` ignores α and β; ``loss`` uses α only; ``congestion`` β only;
    ``loss+congestion`` and ``heat`` both (heat with α = β = 0 is the plain
    12.27-12.38 model). α/β: ``None`` = the case tariff (or each peer's own),
    a number for every peer, or ``{peer: value}``.

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
    if m is Model.HEAT:
        # heat takes the loss/congestion terms only when asked for explicitly
        use_alpha, use_beta = alpha is not None, beta is not None
    return ModelSpec(
        heat=m is Model.HEAT,
        alpha=per_peer(case, alpha, "alpha") if use_alpha else zeros,
        beta=per_peer(case, beta, "beta") if use_beta else zeros,
        congested=tuple(congested) if use_beta else (),
        line_limits=bool(line_limits),
        regularisation=case.regularisation,
    )


class Clearer:
    """Solves clearings, keeping up to ``capacity`` compiled models for re-use.

    Not thread-safe; one per worker process.
    """

    def __init__(self, capacity: int = 8) -> None:
        if capacity < 1:
            msg = f"capacity must be >= 1, got {capacity}"
            raise InvalidOption(msg)
        self._capacity = capacity
        self._models: OrderedDict[tuple[object, ...], QpModel] = OrderedDict()

    def __len__(self) -> int:
        """Number of compiled models kept."""
        return len(self._models)

    def solve(self, case: Case, spec: ModelSpec, model: str) -> ClearingResult:
        """Solve ``case`` under ``spec`` and return the result labelled ``model``.

        Raises:
            InvalidCase: If the case cannot be cleared (e.g. no allowed pair).
            Infeasible: If no clearing satisfies the constraints.
            SolverFailed: For any other non-optimal solver status.
        """
        data = build_problem(case, spec)
        key = structure_key(data)
        qp = self._models.get(key)
        if qp is None:
            qp = QpModel(data)
            self._models[key] = qp
            while len(self._models) > self._capacity:
                self._models.popitem(last=False)
        else:
            self._models.move_to_end(key)
        sol, info = qp.solve(data)
        return assemble_result(case, model, data, sol, info, spec)
