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
from clearing.problem import build_problem, structure_key
from clearing.result import ClearingResult, assemble_result
from clearing.spec import ModelSpec


class Clearer:
    """Solves clearings, keeping up to ``capacity`` compiled models for re-use.

    Not thread-safe; one per worker process.

    Args:
        capacity: How many compiled models (structures) to keep.
        options: Clarabel settings passed through cvxpy, e.g.
            ``{"direct_solve_method": "faer"}``; the default is Clarabel's.
    """

    def __init__(self, capacity: int = 8, *, options: Mapping[str, object] | None = None) -> None:
        if capacity < 1:
            msg = f"capacity must be >= 1, got {capacity}"
            raise InvalidOption(msg)
        self._capacity = capacity
        # Clarabel settings passed through cvxpy, e.g. {"direct_solve_method": "faer"}
        self._options = dict(options or {})
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
        sol, info = qp.solve(data, self._options)
        return assemble_result(case, model, data, sol, info, spec)
