"""The ledger audit of a stored chain on several cores.

``ledger.audit_chain`` checks one block after another on one core; the
signature checks dominate and every block can be checked on its own, so
this splits the heights into segments, audits each in a worker process
(``ledger.audit_segment``, read-only on the same SQLite file) and merges them
(``ledger.merge_segments``), which checks the nonce rule across segments and
reports the first failure exactly as the serial audit would. It lives in
``node`` because ``ledger`` starts no processes.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Collection
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from ledger.audit import (
    AuditReport,
    SegmentAudit,
    audit_chain,
    audit_segment,
    merge_segments,
    split_heights,
)
from ledger.sqlite_store import SqliteBlockStore

# Below this many blocks per worker, starting processes costs more than it saves.
MIN_BLOCKS_PER_WORKER = 16


def default_workers(blocks: int) -> int:
    """Every core, but not more workers than the chain has segments of MIN_BLOCKS_PER_WORKER."""
    return max(1, min(os.cpu_count() or 1, blocks // MIN_BLOCKS_PER_WORKER))


def _audit_file_segment(
    path: str, start: int, stop: int, chain_id: str, proposers: tuple[bytes, ...]
) -> SegmentAudit:
    with SqliteBlockStore(path, readonly=True) as store:
        return audit_segment(store, start, stop, chain_id=chain_id, authorised_proposers=proposers)


def audit_file(
    path: Path,
    *,
    chain_id: str,
    authorised_proposers: Collection[bytes],
    workers: int,
) -> AuditReport:
    """Audit the whole chain in the SQLite store at ``path`` with ``workers`` processes.

    ``workers <= 1`` runs ``audit_chain`` here. The report is the one the
    serial audit gives: same counts, head and first failure.
    """
    proposers = tuple(authorised_proposers)
    with SqliteBlockStore(path, readonly=True) as store:
        height = store.height
        if workers <= 1 or height < 2:
            return audit_chain(store, chain_id=chain_id, authorised_proposers=proposers)
    # Two segments per worker: a segment that ends early (a failure) frees its worker.
    ranges = split_heights(height, workers * 2)
    context = multiprocessing.get_context("spawn")  # callers may have threads: never fork
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        segments = list(
            pool.map(
                _audit_file_segment,
                [str(path)] * len(ranges),
                [start for start, _ in ranges],
                [stop for _, stop in ranges],
                [chain_id] * len(ranges),
                [proposers] * len(ranges),
            )
        )
    return merge_segments(segments)
