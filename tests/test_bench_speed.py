"""The benchmark's machine-speed probe and sampler (bench/speed.py)."""

from __future__ import annotations

import re
import time

from bench import speed


def test_summary_reports_spread_and_slow_share() -> None:
    text = speed.summary([60.0, 62.0, 100.0, 120.0])
    assert "min 60 / median 81 / max 120 us over 4 samples" in text
    assert "(50% of them slower than 1.5x the fastest)" in text


def test_summary_without_samples() -> None:
    assert speed.summary([]) == "no samples"


def test_probe_gives_positive_figures() -> None:
    match = re.fullmatch(
        r"python work unit ([\d.]+) ms; Ed25519 verify ([\d.]+) us \(best of 7\)",
        speed.speed_probe(),
    )
    assert match is not None
    assert float(match[1]) > 0
    assert float(match[2]) > 0


def test_sampler_samples_until_stopped() -> None:
    sampler = speed.SpeedSampler()
    time.sleep(1.5)  # includes the child's start-up
    samples = sampler.stop()
    assert samples, "no sample in 1.5 s"
    assert all(0 < us < 10_000 for us in samples)
