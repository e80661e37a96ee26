"""Benchmark of the day simulation on a SimBench community (``p2pex simulate``).

Run from the repository root::

    python -m bench.bench_simulate [--code 1-LV-rural1--0-sw] [--slots 24] [--seed 7] [--reps 3]

Workload (seeded): the SimBench community of ``--code`` with the asset rule's
batteries, EVs and heat pumps, 24 hourly slots of 21 June 2016, one HEMS
agent per building, an operator node on 127.0.0.1 (``node.localnet.LocalNet``).
Each repeat runs the day twice, interleaved: with the heat pumps and with
them removed (``without``), so their cost is a ratio from the same run.
Timed per repeat and variant, in order:

- ``node day``: start the operator, register buildings and meters, and for
  every slot the agents' LPs, their orders, gate closure, meter readings and
  settlement, then stop the operator (what ``p2pex simulate`` spends on the
  chain);
- ``agents``: the same agents' LPs alone for the whole day (the no-P2P
  design's schedules: one rolling LP per building and slot);
- ``pool``: the multi-period reference clearing of the day (``clear_horizon``);
- ``total``: the three together (the simulation's wall time without loading
  the SimBench data, which is reported once: it reads the package's CSVs).

Writes ``bench/results/simulate-<short commit>.txt``.
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from bench.machine import describe, load_average, write_results
from node.simulate.day import Day, load_day
from node.simulate.designs import pool_outcome
from node.simulate.hems import schedule_day
from node.simulate.runner import NodeDay


def stats(xs: list[float]) -> str:
    """min / median / max in seconds."""
    return f"{min(xs):7.2f} {statistics.median(xs):7.2f} {max(xs):7.2f}"


def run_day(day: Day, seed: int) -> dict[str, float]:
    """One repeat: the node day, the agents alone, the pool; seconds."""
    root = Path(tempfile.mkdtemp(prefix="p2pex-bench-simulate-"))
    try:
        t = time.perf_counter()
        run = NodeDay(day, root, seed=seed, say=lambda _line: None).run()
        node_s = time.perf_counter() - t
    finally:
        shutil.rmtree(root, ignore_errors=True)
    assert run.ok, "money was not conserved"
    t = time.perf_counter()
    for b in day.buildings:
        schedule_day(b, day.import_price, day.export_price)
    agents_s = time.perf_counter() - t
    t = time.perf_counter()
    pool_outcome(day)
    pool_s = time.perf_counter() - t
    return {
        "node day": node_s,
        "agents": agents_s,
        "pool": pool_s,
        "total": node_s + agents_s + pool_s,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--code", default="1-LV-rural1--0-sw")
    parser.add_argument("--slots", type=int, default=24)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args(argv)
    lines = describe(["node/simulate", "bench/bench_simulate.py"])
    t0 = time.perf_counter()
    day = load_day(args.code, args.slots, args.seed)
    load_s = time.perf_counter() - t0
    n_bat = sum(b.battery is not None for b in day.buildings)
    n_ev = sum(b.ev is not None for b in day.buildings)
    n_hp = sum(b.heat_pump is not None for b in day.buildings)
    lines.append(
        f"workload: SimBench {args.code}, {len(day.buildings)} buildings ({n_bat} batteries, "
        f"{n_ev} EVs, {n_hp} heat pumps), {day.slots} hourly slots, seed {args.seed}, "
        f"{args.reps} repeats, with and without the heat pumps interleaved; "
        f"loading the SimBench data: {load_s:.1f} s (once)"
    )
    bare = dataclasses.replace(
        day, buildings=tuple(dataclasses.replace(b, heat_pump=None) for b in day.buildings)
    )
    variants = {"with": day, "without": bare}
    runs: dict[str, dict[str, list[float]]] = {v: {} for v in variants}
    for rep in range(args.reps):
        for name, d in variants.items():
            r = run_day(d, args.seed)
            for key, value in r.items():
                runs[name].setdefault(key, []).append(value)
            print(
                f"rep {rep} {name} heat pumps: node day {r['node day']:.2f} s, "
                f"agents {r['agents']:.2f} s, pool {r['pool']:.2f} s",
                flush=True,
            )
    for name in variants:
        lines.append("")
        lines.append(f"{name} heat pumps")
        lines.append("phase        min     med     max  (s)")
        for key, xs in runs[name].items():
            lines.append(f"{key:<10} {stats(xs)}")
    lines.append("")
    lines.append("with / without heat pumps (ratio of medians):")
    for key in runs["with"]:
        a = statistics.median(runs["with"][key])
        b = statistics.median(runs["without"][key])
        lines.append(f"  {key:<10} x{a / b:.2f}")
    lines.append(f"load average at end: {load_average()}")
    print("\n".join(lines))
    write_results("simulate", lines, "" if args.code == "1-LV-rural1--0-sw" else f"-{args.code}")


if __name__ == "__main__":
    main()
