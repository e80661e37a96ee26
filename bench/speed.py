"""How fast the machine is right now: a probe before and after a run, a sampler during it.

The host behind this workplace's 2 cores changes between sessions (an AMD
EPYC until 2026-11-28, an Intel Xeon at 2.1 GHz on 2026-12-05), and on the
Xeon its speed swung within seconds: probes 1-2 s apart gave an Ed25519
verify of 56 to 123 us and the Python work unit 2.8 to 6.5 ms, with nothing
else running in the machine (another tenant sharing the physical cores,
presumably). A CPU's name does not say how fast it was; these figures do,
so results of different days, and runs of one day, can be compared: a
latency measured while verifies took 110 us is not one measured at 60.

    python -m bench.speed            # one probe
    python -m bench.speed --sample   # a sample every 0.2 s until stdin closes
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections.abc import Callable

SAMPLE_EVERY_S = 0.2
SAMPLE_VERIFIES = 4  # timed after as many untimed: ~0.5-1 ms of work per sample, <0.5% of a core


def _python_work() -> int:
    """A fixed piece of interpreter work: calls, dict and list operations, integer arithmetic."""
    table: dict[int, int] = {}
    out = []
    for i in range(20_000):
        table[i & 1023] = table.get(i & 1023, 0) + i * 3
        out.append(i % 7)
    return sum(out) + len(table)


def _verifier(count: int) -> Callable[[], None]:
    """``count`` Ed25519 verifications as the node does them (``ledger.keys``)."""
    from ledger.keys import SigningKey, verify_signature

    key = SigningKey.from_seed(bytes(32))
    message = bytes(200)
    signature = key.sign(message)
    public = key.public_key_bytes()

    def work() -> None:
        for _ in range(count):
            verify_signature(public, signature, message)

    return work


def _best_seconds(work: Callable[[], object], repeat: int = 7) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best


def speed_probe() -> str:
    """The Python work unit (ms) and one Ed25519 verify (us), best of 7 (~0.1 s in all)."""
    python_ms = _best_seconds(_python_work) * 1e3
    verify_us = _best_seconds(_verifier(50)) / 50 * 1e6
    return f"python work unit {python_ms:.2f} ms; Ed25519 verify {verify_us:.1f} us (best of 7)"


class SpeedSampler:
    """A child process that times a few verifies every 0.2 s while a benchmark runs.

    A process of its own, so that the benchmark's event loop is not held up
    by it; ``stop`` returns the samples (us per verify).
    """

    def __init__(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "bench.speed", "--sample"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def stop(self) -> list[float]:
        """End the sampler; the us per verify of each sample taken."""
        out, _ = self._process.communicate(timeout=10)
        return [float(line) for line in out.split()]


def summary(samples: list[float]) -> str:
    """Min / median / max us per verify, and the share of samples above 1.5x the fastest."""
    if not samples:
        return "no samples"
    fast = min(samples)
    slow = sum(1 for x in samples if x > 1.5 * fast) / len(samples)
    return (
        f"Ed25519 verify during the run: min {fast:.0f} / median {statistics.median(samples):.0f}"
        f" / max {max(samples):.0f} us over {len(samples)} samples"
        f" ({slow:.0%} of them slower than 1.5x the fastest)"
    )


def _sample_until_stdin_closes() -> None:
    import selectors

    work = _verifier(SAMPLE_VERIFIES)
    with selectors.DefaultSelector() as selector:
        selector.register(sys.stdin, selectors.EVENT_READ)
        while not selector.select(SAMPLE_EVERY_S):  # stdin readable: EOF, stop
            work()  # warm: the first verify after a sleep pays for cold caches
            # CPU time, not wall time: time spent waiting for a core (the benchmark
            # keeps them busy) is not the machine being slow.
            start = time.thread_time()
            work()
            print(f"{(time.thread_time() - start) / SAMPLE_VERIFIES * 1e6:.1f}", flush=True)


if __name__ == "__main__":
    if sys.argv[1:] == ["--sample"]:
        _sample_until_stdin_closes()
    else:
        print(speed_probe())
