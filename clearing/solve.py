"""Solve one clearing, reusing compiled models across periodic re-solves.

:class:`Clearer` keeps the compiled cvxpy model of each problem structure
(which pairs may trade, CHP units, limited lines), so a re-solve with new
numbers (curves, bounds, α, β, σ) only updates Parameters. Before building
anything it estimates the clearing's memory (:mod:`clearing.memory`) and
refuses one above its limit.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Mapping

import numpy as np

from clearing.case import Case
from clearing.errors import Infeasible, InvalidOption, ProblemTooLarge, SolverFailed
from clearing.memory import DEFAULT_MEMORY_LIMIT, GIB, check_size
from clearing.model import ACCURATE, QpModel
from clearing.problem import ProblemData, build_problem, structure_key
from clearing.result import ClearingResult, assemble_result
from clearing.solution import Solution, SolveInfo
from clearing.spec import ModelSpec


class Clearer:
    """Solves clearings, keeping up to ``capacity`` compiled models for re-use.

    Not thread-safe; one per worker process.

    Args:
        capacity: How many compiled models (structures) to keep.
        options: Clarabel settings passed through cvxpy, e.g.
            ``{"direct_solve_method": "faer"}``, over tightened tolerances
            (``clearing.model.ACCURATE``, so that the split of trades is
            resolved to about the settlement unit); a solve that cannot
            reach those is repeated with Clarabel's defaults
            (``result.accurate`` is then False).
        memory_limit: Refuse (``ProblemTooLarge``) a clearing whose estimated
            peak memory exceeds this many bytes; ``None`` = no limit.
    """

    def __init__(
        self,
        capacity: int = 8,
        *,
        options: Mapping[str, object] | None = None,
        memory_limit: int | None = DEFAULT_MEMORY_LIMIT,
    ) -> None:
        if capacity < 1:
            msg = f"capacity must be >= 1, got {capacity}"
            raise InvalidOption(msg)
        if memory_limit is not None and memory_limit <= 0:
            msg = f"memory_limit must be > 0 bytes or None, got {memory_limit}"
            raise InvalidOption(msg)
        self._capacity = capacity
        self._memory_limit = memory_limit
        self._options = {**ACCURATE, **dict(options or {})}
        self._fallback = dict(options or {})
        self._models: OrderedDict[tuple[object, ...], QpModel] = OrderedDict()

    @property
    def memory_limit(self) -> int | None:
        """The ceiling on a clearing's estimated peak memory, bytes (``None``: none)."""
        return self._memory_limit

    def __len__(self) -> int:
        """Number of compiled models kept."""
        return len(self._models)

    def solve(self, case: Case, spec: ModelSpec, model: str) -> ClearingResult:
        """Solve ``case`` under ``spec`` and return the result labelled ``model``.

        Raises:
            InvalidCase: If the case cannot be cleared (e.g. no allowed pair).
            ProblemTooLarge: If the memory estimate exceeds the limit (nothing built).
            Infeasible: If no clearing satisfies the constraints.
            SolverFailed: For any other non-optimal solver status.
        """
        estimate = check_size(case, spec, self._memory_limit)
        data = build_problem(case, spec)
        sol, info = self._solve_data(case, data, estimate)
        return assemble_result(case, model, data, sol, info, spec)

    def feasible_with_limits(self, case: Case, spec: ModelSpec, lines: tuple[str, ...]) -> bool:
        """Whether ``spec`` admits a clearing with hard limits ``|flow| <= cap`` on ``lines``.

        Lines without a finite capacity are never limited.

        Raises:
            UnknownBus, InvalidNetwork: If a line name is unknown.
            ProblemTooLarge, SolverFailed: As :meth:`solve` (other than infeasibility).
        """
        estimate = check_size(case, spec, self._memory_limit)
        data = build_problem(case, dataclasses.replace(spec, line_limits=True))
        caps = case.network.capacities()
        idx = np.unique(case.network.line_indices(lines)).astype(np.int64)
        idx = idx[np.isfinite(caps[idx])]
        data = dataclasses.replace(data, limited=idx, cap=caps[idx])
        try:
            self._solve_data(case, data, estimate)
        except Infeasible:
            return False
        return True

    def _solve_data(
        self, case: Case, data: ProblemData, estimate: int
    ) -> tuple[Solution, SolveInfo]:
        key = structure_key(data)
        try:
            qp = self._models.get(key)
            if qp is None:
                qp = QpModel(data)
                self._models[key] = qp
                while len(self._models) > self._capacity:
                    self._models.popitem(last=False)
            else:
                self._models.move_to_end(key)
            try:
                return qp.solve(data, self._options)
            except SolverFailed as exc:
                if exc.status != "optimal_inaccurate" or self._options == self._fallback:
                    raise
                sol, info = qp.solve(data, self._fallback)
                return sol, dataclasses.replace(info, accurate=False)
        except MemoryError as exc:
            # the estimate was under the limit but the machine had less to give
            self._models.pop(key, None)
            msg = (
                f"clearing {case.name!r} ran out of memory ({data.n} peers, "
                f"{data.e_src.size + data.h_src.size} pair variables, estimated "
                f"{estimate / GIB:.1f} GiB): lower the Clearer's memory_limit to refuse such "
                "cases up front"
            )
            raise ProblemTooLarge(
                msg, peers=data.n, pairs=int(data.e_src.size + data.h_src.size),
                estimate_bytes=estimate, limit_bytes=self._memory_limit or 0,
            ) from exc  # fmt: skip
