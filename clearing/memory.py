"""How much memory a clearing needs, estimated before anything of its size is built.

A clearing's peak memory is that of cvxpy's compilation and Clarabel's KKT
system, both linear in the number of pair variables, plus per-peer arrays
and the ``lines x peers`` flow matrix. The reported result stores its
trades per pair (:class:`clearing.result.ClearingResult`: its dense
``peers x peers`` matrices are built only when asked for), so with sparse
partner sets nothing grows with ``peers²``. :func:`estimate_bytes`
adds these up with per-item costs calibrated by ``python -m
bench.bench_clearing --memory`` (which prints the estimate beside the
measured peak at several sizes); :class:`clearing.Clearer` refuses a case
whose estimate exceeds its limit with :class:`~clearing.errors.ProblemTooLarge`
instead of failing inside numpy.
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


def estimate_bytes(*, peers: int, pairs: int, heat_pairs: int = 0, lines: int = 0) -> int:
    """Return the estimated peak memory of one clearing, in bytes (an upper estimate).

    Linear in peers plus pairs (and lines x peers for the flow matrix): no
    term grows with ``peers²``, which only an all-pairs market's pair count
    does.

    >>> estimate_bytes(peers=0, pairs=0) == BASE_BYTES
    True
    """
    return (
        BASE_BYTES
        + PAIR_BYTES * (pairs + heat_pairs)
        + PEER_BYTES * peers
        + DENSE_BYTES * lines * peers
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
