"""CPU time of a process's threads and of its child processes, from Linux's /proc.

Benchmarks of the node use it to say where the machine's cores go during a
run: take ``snapshot(pid)`` before and after, subtract with ``spent``. On a
system without /proc the snapshots are empty and so is the difference.
"""

from __future__ import annotations

import os
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat_cpu(stat_file: Path) -> tuple[str, float] | None:
    """(thread name, user + system seconds) from a /proc .../stat file."""
    try:
        text = stat_file.read_text()
    except OSError:
        return None
    name = text[text.index("(") + 1 : text.rindex(")")]
    fields = text[text.rindex(")") + 2 :].split()
    # fields[11] and [12] are utime and stime (fields 14 and 15 of proc(5))
    return name, (int(fields[11]) + int(fields[12])) / _TICKS


def _children(pid: int) -> list[int]:
    found = []
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            found.extend(int(c) for c in children.read_text().split())
        except OSError:
            continue
    return found


def snapshot(pid: int) -> dict[str, float]:
    """CPU seconds so far by thread of ``pid`` ("main" for its first thread) and "children".

    "children" sums every descendant process (their threads included).
    """
    times: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").glob("*"):
        got = _stat_cpu(task / "stat")
        if got is None:
            continue
        name = "main" if task.name == str(pid) else got[0]
        times[name] = times.get(name, 0.0) + got[1]
    pending = _children(pid)
    while pending:
        child = pending.pop()
        for task in Path(f"/proc/{child}/task").glob("*"):
            got = _stat_cpu(task / "stat")
            if got is not None:
                times["children"] = times.get("children", 0.0) + got[1]
        pending.extend(_children(child))
    return times


def spent(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """CPU seconds spent between two snapshots, by name (names that used none left out)."""
    out = {}
    for name, seconds in after.items():
        used = seconds - before.get(name, 0.0)
        if used > 0:
            out[name] = used
    return out
