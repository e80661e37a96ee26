"""What every benchmark result records: commit, machine, Python, load.

One description for all of ``bench/``, so results files stay comparable.
"""

from __future__ import annotations

import os
import platform
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from bench.speed import speed_probe

# Above this 1-minute load average another job was competing for the 2 cores.
BUSY_LOAD = 1.0
RESULTS = Path(__file__).parent / "results"


def git_commit(dirty_paths: Sequence[str] = ()) -> str:
    """Short hash of HEAD, with a note if ``dirty_paths`` have uncommitted changes."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = ""
        if dirty_paths:
            dirty = subprocess.run(
                ["git", "status", "--porcelain", "--", *dirty_paths],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{commit} (+ uncommitted changes)" if dirty else commit


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, or ``unknown``."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def load_average() -> str:
    """The 1/5/15-minute load averages, and whether the machine was busy."""
    one, five, fifteen = os.getloadavg()
    busy = "; the machine was shared, figures are noisy" if one > BUSY_LOAD else ""
    return f"{one:.2f} {five:.2f} {fifteen:.2f} (1/5/15 min{busy})"


def describe(dirty_paths: Sequence[str] = ()) -> list[str]:
    """The header lines of a results file."""
    return [
        f"commit: {git_commit(dirty_paths)}",
        f"date (UTC): {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime())}",
        f"machine: {platform.platform()}; CPU: {cpu_model()}; cores: {os.cpu_count()}",
        f"speed probe: {speed_probe()}",
        f"python: {platform.python_version()} ({platform.python_implementation()})",
        f"load average at start: {load_average()}",
    ]


def write_results(
    kind: str, lines: Sequence[str], suffix: str = "", path: Path | None = None
) -> Path:
    """Write ``lines`` to ``bench/results/<kind>-<commit><suffix>.txt`` (or to ``path``).

    Relative to this file, not to the working directory; prints where it wrote.
    """
    if path is None:
        path = RESULTS / f"{kind}-{git_commit().split()[0]}{suffix}.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {path}")
    return path
