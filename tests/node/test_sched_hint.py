"""The event loop's request for a short scheduling slice (Linux), and its no-op elsewhere."""

from __future__ import annotations

import platform
import threading
from pathlib import Path

import pytest

from node.config import load_config
from node.roles import sched_hint


def _in_a_thread(fn):
    """Run ``fn`` in a new thread (the request applies to the calling thread only)."""
    out: list[object] = []
    thread = threading.Thread(target=lambda: out.append(fn()))
    thread.start()
    thread.join()
    return out[0]


def _thread_slice_ns() -> int | None:
    for line in Path("/proc/thread-self/sched").read_text().splitlines():
        if line.startswith("se.slice"):
            return int(line.split(":")[1])
    return None  # a kernel without per-task slices


@pytest.mark.skipif(
    platform.system() != "Linux" or platform.machine() not in sched_hint._SYSCALLS,
    reason="sched_setattr is called on Linux x86_64, arm64 and riscv64 only",
)
def test_the_calling_thread_gets_the_slice_it_asked_for():
    def ask():
        granted = sched_hint.request_slice(300)
        return granted, _thread_slice_ns()

    granted, slice_ns = _in_a_thread(ask)
    assert granted is True
    if slice_ns is not None:
        assert slice_ns == 300_000
    # out-of-range requests are clamped to what the kernel accepts
    granted, slice_ns = _in_a_thread(lambda: (sched_hint.request_slice(1), _thread_slice_ns()))
    assert granted is True
    if slice_ns is not None:
        assert slice_ns == sched_hint.MIN_SLICE_US * 1000


def test_elsewhere_it_does_nothing(monkeypatch):
    monkeypatch.setattr(sched_hint.platform, "system", lambda: "Darwin")
    assert sched_hint.request_slice(100) is False
    monkeypatch.setattr(sched_hint.platform, "system", lambda: "Linux")
    monkeypatch.setattr(sched_hint.platform, "machine", lambda: "sparc64")
    assert sched_hint.request_slice(100) is False


def test_the_default_and_off():
    assert load_config(None, {"operator_key": "k"}).loop_slice_us == 100
    assert load_config(None, {"operator_key": "k", "loop_slice_us": 0}).loop_slice_us == 0
