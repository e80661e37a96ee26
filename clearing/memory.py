"""How much memory a clearing needs, estimated before anything of its size is built.

A clearing's peak memory is that of cvxpy's compilation and Clarabel's KKT
system, both linear in the number of pair variables, plus per-peer arrays,
the ``lines x peers`` flow matrix, and the fill-in of the KKT
factorisation. The reported result stores its trades per pair
(:class:`clearing.result.ClearingResult` builds its dense ``peers x
peers`` matrices only when asked for), so the result adds nothing that
grows with ``peers²``. The fill-in can: eliminating the trades couples
the peers they connect, and when partner sets form a well-mixed graph
(random partners, or all pairs) the factor holds up to a dense lower
triangle over the peers (over P and H with heat). :func:`estimate_bytes`
adds these up with per-item costs calibrated by ``python -m
bench.bench_clearing --memory`` (all pairs) and ``python -m
bench.bench_sparse`` (sparse random partner sets), which print the
estimate beside the measured peak at several sizes; :class:`clearing.Clearer`
refuses a case whose estimate exceeds its limit with
:class:`~clearing.errors.ProblemTooLarge` instead of failing inside numpy
or the solver.
"""

from __future__ import annotations

from clearing.case import Case
from clearing.errors import ProblemTooLarge
from clearing.problem import count_pairs
from clearing.spec import ModelSpec

GIB = 1 << 30
DEFAULT_MEMORY_LIMIT = 8 * GIB  # bytes; a Clearer's default ceiling on the estimate
BASE_BYTES = 64 << 20  # fixed cost of one compile and solve on top of the imports
PAIR_BYTES = 2048  # per pair variable: arrays, cvxpy's tensors, Clarabel's KKT, result
PEER_BYTES = 16 << 10  # per peer: the same for P, H, bounds and balance rows
DENSE_BYTES = 8  # per float64 entry of the dense lines x peers flow matrix
FILL_BYTES = 4  # per peers² (8-byte entries, lower triangle): the factor's worst fill


def estimate_bytes(*, peers: int, pairs: int, heat_pairs: int = 0, lines: int = 0) -> int:
    """Return the estimated peak memory of one clearing, in bytes (an upper estimate).

    Linear in pairs, plus the flow matrix (lines x peers) and the bound
    on the factorisation's fill (``peers²``, four times that with heat);
    no term counts dense result matrices.

    >>> estimate_bytes(peers=0, pairs=0) == BASE_BYTES
    True
    """
    return (
        BASE_BYTES
        + PAIR_BYTES * (pairs + heat_pairs)
        + PEER_BYTES * peers
        + DENSE_BYTES * lines * peers
        + FILL_BYTES * (4 if heat_pairs else 1) * peers * peers
    )


def check_size(case: Case, spec: ModelSpec, limit_bytes: int | None) -> int:
    """Return the estimate for ``case`` under ``spec``; raise if it exceeds ``limit_bytes``.

    Runs in time and memory linear in peers plus trading sets.

    Raises:
        ProblemTooLarge: If ``limit_bytes`` is not ``None`` and the estimate exceeds it.
    """
    pairs, heat_pairs = count_pairs(case, spec)
    peers = len(case.peers)
    estimate = estimate_bytes(
        peers=peers, pairs=pairs, heat_pairs=heat_pairs, lines=len(case.network.lines)
    )
    if limit_bytes is not None and estimate > limit_bytes:
        msg = (
            f"clearing {case.name!r} is too large: {peers} peers and {pairs + heat_pairs} pair "
            f"variables need about {estimate / GIB:.1f} GiB, the limit is "
            f"{limit_bytes / GIB:.1f} GiB (restrict the trading sets, or raise the Clearer's "
            "memory_limit)"
        )
        raise ProblemTooLarge(
            msg, peers=peers, pairs=pairs + heat_pairs, estimate_bytes=estimate,
            limit_bytes=limit_bytes,
        )  # fmt: skip
    return estimate
