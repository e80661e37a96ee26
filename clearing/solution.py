"""Primal and dual values of one clearing, and the solver's report (plain numpy, no cvxpy)."""

from __future__ import annotations

from dataclasses import dataclass

from clearing.problem import FloatArray


@dataclass(frozen=True, slots=True, eq=False)
class Solution:
    """Primal and dual values of one solve (see :mod:`clearing.problem` for names).

    Heat arrays are empty when the model has no heat; ``fu``/``fl`` are empty
    without hard line limits.
    """

    P: FloatArray
    p: FloatArray
    q: FloatArray
    H: FloatArray
    hp: FloatArray
    hq: FloatArray
    pi: FloatArray
    tau: FloatArray
    up: FloatArray
    lo: FloatArray
    sp: FloatArray
    sq: FloatArray
    fu: FloatArray
    fl: FloatArray
    pih: FloatArray
    tauh: FloatArray
    uph: FloatArray
    loh: FloatArray
    sph: FloatArray
    sqh: FloatArray
    kappa: FloatArray


@dataclass(frozen=True, slots=True)
class SolveInfo:
    """Solver status and times reported by cvxpy and Clarabel.

    ``accurate`` is False when the tightened tolerances could not be reached
    and the solve was repeated at Clarabel's defaults (the split of trades is
    then loose; aggregates and prices are still tight).
    """

    status: str
    solver: str
    compile_time_s: float
    solve_time_s: float
    iterations: int
    objective: float
    accurate: bool = True
