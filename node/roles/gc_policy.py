"""Garbage-collector settings of a node process: short pauses under load.

CPython 3.11's cyclic collector scans every object of the generation it
collects, and the oldest generation holds the node's whole state (resting
orders, indexes, caches), which grows as the market runs. Under the default
policy its full collections paused the operator's event loop for tens of
milliseconds under ``bench_node``'s load (measured with ``gc.callbacks``;
docs/performance.md), the largest cause of its latency tail.

A node process therefore, every ``interval`` seconds, collects the young
generations (their objects are the ones made since the last round, so this
is cheap) and freezes the survivors (``gc.freeze``): frozen objects are
never scanned again, the old generation stays almost empty, and full
collections scan almost nothing. Most objects die by reference counting,
which freezing does not change. What freezing does cost: a reference cycle
among frozen objects that becomes garbage is only reclaimed by the next
*full* round, which unfreezes everything and collects all of it once every
``full_interval`` seconds (a pause in proportion to the state, rarely).

Only the process that runs a node (``node.roles.runner``) applies this: it is
process-wide, so a library or a test embedding a node keeps its own policy.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time

log = logging.getLogger("p2pex.gc")


def freeze_young() -> None:
    """Collect the young generations and freeze what survives."""
    gc.collect(1)
    gc.freeze()


def collect_all() -> None:
    """Unfreeze everything, collect all generations, and freeze the survivors again."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


async def keep_pauses_short(interval: float, full_interval: float) -> None:
    """Run ``freeze_young`` every ``interval`` s and ``collect_all`` every ``full_interval`` s.

    ``full_interval`` <= 0 never unfreezes (cyclic garbage made after a
    freeze then stays until the process ends).
    """
    collect_all()  # what start-up made (a replayed chain) is frozen at once
    last_full = time.monotonic()
    while True:
        await asyncio.sleep(interval)
        if full_interval > 0 and time.monotonic() - last_full >= full_interval:
            started = time.perf_counter()
            collect_all()
            last_full = time.monotonic()
            log.info("full collection took %.1f ms", (time.perf_counter() - started) * 1000)
        else:
            freeze_young()
