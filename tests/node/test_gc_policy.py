"""The node process's GC policy: frozen survivors, reclaimed by the full round."""

from __future__ import annotations

import asyncio
import gc
import weakref

import pytest

from node.config import NodeConfig
from node.errors import ConfigError
from node.roles import gc_policy


class Cell:
    other: Cell | None = None


def test_frozen_cycles_survive_collections_until_the_full_round():
    a, b = Cell(), Cell()
    a.other, b.other = b, a
    ref = weakref.ref(a)
    try:
        gc_policy.freeze_young()
        assert gc.get_freeze_count() > 0
        del a, b
        gc.collect()
        assert ref() is not None  # frozen: collections do not look at it
        gc_policy.collect_all()
        assert ref() is None
    finally:
        gc.unfreeze()


def scanned(obj: object) -> bool:
    """Whether the collector's generations hold ``obj`` (frozen objects are not in them)."""
    return any(o is obj for o in gc.get_objects())


def test_the_loop_freezes_what_was_made_since_its_last_round():
    async def main():
        task = asyncio.create_task(gc_policy.keep_pauses_short(0.02, 0))
        await asyncio.sleep(0.01)
        young = Cell()
        assert scanned(young)
        await asyncio.sleep(0.06)  # at least one round since
        task.cancel()
        return young

    try:
        young = asyncio.run(main())
        assert not scanned(young)
    finally:
        gc.unfreeze()
    assert scanned(young)


@pytest.mark.parametrize("key", ["gc_freeze_interval_s", "gc_full_interval_s"])
def test_negative_gc_intervals_are_refused(key):
    with pytest.raises(ConfigError, match="gc intervals"):
        NodeConfig(operator_key="k.pem", **{key: -1.0}).validate()
