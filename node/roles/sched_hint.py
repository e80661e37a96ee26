"""Ask Linux for a short scheduling slice for the node's event-loop thread.

The operator's event loop shares the machine's cores with processes it wakes
itself, many times per order: its signature worker, its store writer and its
clients. Under ``bench_node``'s load on 2 cores, nearly every slow
event-loop callback used a small fraction of its time on the CPU: the loop
had lost its core to a process woken by one of its own writes, and waited
for that process's slice to end (docs/performance.md).

Linux's EEVDF scheduler (6.6+; per-task slices since 6.12) lets a normal
(``SCHED_OTHER``) thread request a shorter slice with ``sched_setattr``.
Such a thread gets earlier virtual deadlines: it is picked sooner when it
wakes, and a thread it wakes is less likely to preempt it. It needs no
privilege, and it does not change the thread's share of the CPU (its
weight, from its nice value, stays). The effect on the node's latency tail
is small next to the machine's noise (interleaved pairs in
``bench/results/node-slice-ab.txt``).

Python has no wrapper for ``sched_setattr``, so this calls it by number
through ``ctypes``. Elsewhere (another OS, an unknown architecture, an old
kernel, a real-time policy set by the user) it does nothing and says so.
"""

from __future__ import annotations

import ctypes
import logging
import os
import platform
import struct

log = logging.getLogger("p2pex.sched")

# sched_setattr's number per architecture (x86_64; arm64 and riscv64 use the generic table).
_SYSCALLS = {"x86_64": 314, "aarch64": 274, "arm64": 274, "riscv64": 274}
# struct sched_attr, first version (48 bytes): size, policy, flags, nice, priority,
# runtime (the slice, for SCHED_OTHER), deadline, period.
_SCHED_ATTR = struct.Struct("IIQiIQQQ")
MIN_SLICE_US = 100  # the kernel clamps requests to 0.1-100 ms
MAX_SLICE_US = 100_000


def request_slice(slice_us: int) -> bool:
    """Ask for a ``slice_us`` microsecond slice for the calling thread; True if granted.

    Keeps the thread's policy and nice value. Does nothing (False) off Linux,
    on an architecture not in the table, for a thread under a real-time
    policy, or when the kernel refuses.
    """
    number = _SYSCALLS.get(platform.machine())
    if platform.system() != "Linux" or number is None:
        log.info("no scheduling slice request on %s %s", platform.system(), platform.machine())
        return False
    if os.sched_getscheduler(0) != os.SCHED_OTHER:
        log.info("the event loop runs under a real-time policy: its slice is left alone")
        return False
    slice_us = min(max(slice_us, MIN_SLICE_US), MAX_SLICE_US)
    nice = os.getpriority(os.PRIO_PROCESS, 0)
    attr = ctypes.create_string_buffer(
        _SCHED_ATTR.pack(_SCHED_ATTR.size, os.SCHED_OTHER, 0, nice, 0, slice_us * 1000, 0, 0),
        _SCHED_ATTR.size,
    )
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.syscall(number, 0, attr, 0) != 0:
        log.info("the kernel refused a %d us slice: %s", slice_us, os.strerror(ctypes.get_errno()))
        return False
    log.info("event loop thread: scheduling slice %d us requested", slice_us)
    return True
