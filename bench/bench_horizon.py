"""Benchmark of the multi-period clearing: 100 households with batteries and EVs over a day.

Run from the repository root::

    python -m bench.bench_horizon [--seed 1] [--peers 100] [--slots 24 48 96] [--reps 3]
                                  [--partners 10] [--model loss] [--time-block 8]
                                  [--no-compare]

Workload (seeded, one day split into T slots, so T = 96 is quarter-hours):
``--peers`` households, each a prosumer with PV, an inflexible load, a
battery and an EV (evening arrival, charged by midnight), ten per bus on a
radial feeder of ``peers // 10`` buses, plus the main grid at the root
selling at a time-of-use import tariff and buying at an export tariff. Each
household may trade with the grid and with its ``--partners`` nearest
households (``0`` = all pairs); the model's α is a per-slot DSO signal.

For each repeat the slot counts are run interleaved (24, 48, 96, 24, ...),
so a busy spell hits every size alike, and at each size the solver runs
with the ordering hint (``--time-block``, see
``clearing.horizon.ordering_hint``) and without it, one after the other
(``--no-compare`` runs the hint alone). Timed: building the sparse QP
(``build_horizon_problem``), Clarabel's solve (wall, and the solver's own
time), and the replica's certificate check. Growth in T is the ratio of
medians per doubling of T (2.0 = linear); both runs must reach the same
objective to 1e-6 relative.

Writes ``bench/results/horizon-<short commit>.txt``.
"""

from __future__ import annotations

import argparse
import itertools
import math
import statistics
import time

import numpy as np

from bench.machine import describe, load_average, write_results
from clearing import network_from_dict
from clearing.assets import Battery, ElectricVehicle, InflexibleLoad, Photovoltaic
from clearing.horizon import DEFAULT_TIME_BLOCK, assemble_horizon_result, solve_horizon_problem
from clearing.horizon_case import HorizonCase, HorizonPeer, PeerKind, SlotCurve, SlotSignals
from clearing.horizon_certificate import check_horizon_certificate
from clearing.horizon_problem import build_horizon_problem, make_horizon_spec


def community(peers: int, slots: int, partners: int, seed: int) -> HorizonCase:
    """``peers`` households with PV, load, battery and EV, and the grid, over one day."""
    rng = np.random.default_rng(seed)  # same households for every T
    hours = np.arange(slots) * 24.0 / slots
    h = 24.0 / slots
    n_bus = max(2, peers // 10)
    lines = [
        {
            "name": f"L{b}",
            "from": str(max(0, b - 1 - (b % 3 == 0)) if b > 1 else 0),
            "to": str(b),
            "r_ohm": 0.02 + 0.01 * (b % 4),
            "x_ohm": 0.01,
        }
        for b in range(1, n_bus + 1)
    ]
    names = [f"H{k}" for k in range(peers)]
    peer_bus = {"grid": "0"} | {name: str(1 + k % n_bus) for k, name in enumerate(names)}
    net = network_from_dict(
        {
            "voltage_kv": 0.4,
            "root": "0",
            "buses": [str(b) for b in range(n_bus + 1)],
            "lines": lines,
            "peer_bus": peer_bus,
        }
    )
    sun = np.clip(np.sin((hours - 6.0) / 12.0 * math.pi), 0.0, None)
    evening = (hours >= 17) & (hours < 22)
    out = [HorizonPeer("grid", PeerKind.GRID, (SlotCurve(0, 2_500, 0, -2_000_000, 2_000_000),))]
    order = np.argsort([int(peer_bus[x]) for x in names], kind="stable")
    rank = {names[j]: r for r, j in enumerate(order)}
    for name in names:
        pv_kw, base_kw = rng.uniform(2.0, 6.0), rng.uniform(0.3, 0.8)
        cap = int(rng.integers(5_000, 15_001))
        arrive = int(rng.uniform(16.0, 20.0) / h)
        reach = 3_700 * 0.95 * (slots - arrive) * h
        need = int(min(rng.uniform(5_000, 15_000), 0.8 * reach))
        mates = None
        if partners:
            r = rank[name]
            near = [
                names[order[j]]
                for j in range(max(0, r - partners // 2), min(peers, r + partners // 2 + 1))
                if j != r
            ]
            mates = ("grid", *near)
        assets = (
            Photovoltaic("pv", tuple(int(v) for v in np.rint(pv_kw * sun * h * 1000))),
            InflexibleLoad(
                "load", tuple(int(v) for v in np.rint(base_kw * (1 + evening) * h * 1000))
            ),
            Battery("bat", cap, cap // 10, cap, cap // 2, cap // 2, cap // 2),
            ElectricVehicle("ev", arrive, slots, need, 3_700, 60_000, arrival_wh=15_000),
        )
        out.append(
            HorizonPeer(name, PeerKind.PROSUMER, (SlotCurve(0, 0, 0, 0, 0),), mates, assets=assets)
        )
    if partners:  # consent is mutual: the grid lists everyone, each household its neighbours
        mates_of = {p.name: set(p.partners or ()) for p in out}
        fixed = [out[0]]
        for p in out[1:]:
            keep = tuple(x for x in p.partners or () if x == "grid" or p.name in mates_of[x])
            fixed.append(HorizonPeer(p.name, p.kind, p.curves, keep, p.heat, p.assets))
        out = fixed
    tariff = np.where(evening, 3_500, np.where((hours >= 7) & (hours < 17), 2_800, 2_000))
    signals = tuple(
        SlotSignals(alpha_milli=5, import_tariff=int(t), export_tariff=600) for t in tariff
    )
    return HorizonCase(
        f"{peers} households", net, tuple(out), slots, 86_400 // slots, signals, regularisation=1e-6
    )


def run_once(case: HorizonCase, model: str, time_block: int | None) -> dict[str, float]:
    """Build, solve and check one horizon; return times (s) and sizes."""
    spec = make_horizon_spec(case, model)
    t0 = time.perf_counter()
    problem = build_horizon_problem(case, spec)
    t1 = time.perf_counter()
    solved = solve_horizon_problem(problem, time_block=time_block)
    t2 = time.perf_counter()
    result = assemble_horizon_result(case, problem, spec, solved)
    t3 = time.perf_counter()
    report = check_horizon_certificate(case, result.certificate)
    t4 = time.perf_counter()
    if not report.ok:
        msg = f"certificate rejected: {report.failures[:3]}"
        raise SystemExit(msg)
    nx, neq, nin = problem.size
    return {
        "build": t1 - t0,
        "solve": t2 - t1,
        "solver": solved.info.solve_time_s,
        "assemble": t3 - t2,
        "check": t4 - t3,
        "vars": nx,
        "rows": neq + nin,
        "nnz": problem.a_eq.nnz + problem.a_in.nnz,
        "pairs": problem.e_src.size,
        "iters": solved.info.iterations,
        "nnzl": solved.info.factor_nonzeros,
        "objective": solved.info.objective,
    }


def stats(values: list[float]) -> str:
    return f"{min(values):8.3f} {statistics.median(values):8.3f} {max(values):8.3f}"


TABLE_HEAD = (
    "T     pairs  variables     rows       nnz  factor nnz  iters | build s (min med max)"
    "     | solve s (min med max)      | Clarabel s | check s (median)"
)


def summarise(
    runs: dict[int, list[dict[str, float]]], slots: list[int], lines: list[str]
) -> dict[int, dict[str, float]]:
    """Append one variant's table and growth per doubling; return its medians."""
    med: dict[int, dict[str, float]] = {}
    for t in slots:
        rs = runs[t]
        first = rs[0]
        med[t] = {k: statistics.median(r[k] for r in rs) for k in ("build", "solve", "check")}
        med[t]["total"] = statistics.median(r["build"] + r["solve"] for r in rs)
        lines.append(
            f"{t:<4} {first['pairs']:6.0f} {first['vars']:10.0f} {first['rows']:8.0f} "
            f"{first['nnz']:9.0f} {first['nnzl']:11.0f} {first['iters']:6.0f} | "
            f"{stats([r['build'] for r in rs])} | "
            f"{stats([r['solve'] for r in rs])} | {statistics.median(r['solver'] for r in rs):8.3f}"
            f"   | {med[t]['check']:.3f}"
        )
    lines.append("growth per doubling of T (ratio of medians; 2.0 = linear):")
    for a, b in itertools.pairwise(slots):
        k = math.log2(b / a)
        per = {
            x: (med[b][x] / med[a][x]) ** (1 / k) if med[a][x] > 0 else math.nan
            for x in ("build", "solve", "total")
        }
        size = (runs[b][0]["nnz"] / runs[a][0]["nnz"]) ** (1 / k)
        fill = (runs[b][0]["nnzl"] / runs[a][0]["nnzl"]) ** (1 / k)
        lines.append(
            f"  T {a} -> {b}: build x{per['build']:.2f}, solve x{per['solve']:.2f}, "
            f"build + solve x{per['total']:.2f}, nonzeros x{size:.2f}, factor x{fill:.2f}"
        )
    return med


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--peers", type=int, default=100)
    parser.add_argument("--slots", type=int, nargs="+", default=[24, 48, 96])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--partners", type=int, default=10)
    parser.add_argument("--model", default="loss")
    parser.add_argument("--time-block", type=int, default=DEFAULT_TIME_BLOCK)
    parser.add_argument("--no-compare", action="store_true")
    args = parser.parse_args(argv)
    lines = describe(["clearing", "bench/bench_horizon.py"])
    variants: dict[str, int | None] = {f"hint every {args.time_block} slots": args.time_block}
    if not args.no_compare:
        variants["no hint"] = None
    lines.append(
        f"workload: {args.peers} households (PV, load, battery, EV) + grid, one day in T slots, "
        f"partners {args.partners or 'all'}, model {args.model}, seed {args.seed}, "
        f"{args.reps} repeats interleaved over T and over: {', '.join(variants)}"
    )
    cases = {t: community(args.peers, t, args.partners, args.seed) for t in args.slots}
    run_once(cases[args.slots[0]], args.model, args.time_block)  # warm up imports and caches
    runs: dict[str, dict[int, list[dict[str, float]]]] = {
        v: {t: [] for t in args.slots} for v in variants
    }
    for rep in range(args.reps):
        for t in args.slots:
            for name, block in variants.items():
                r = run_once(cases[t], args.model, block)
                runs[name][t].append(r)
                print(
                    f"rep {rep} T={t} {name}: build {r['build']:.3f} s, solve {r['solve']:.3f} s, "
                    f"check {r['check']:.3f} s, {r['iters']:.0f} iterations",
                    flush=True,
                )
    med: dict[str, dict[int, dict[str, float]]] = {}
    for name in variants:
        lines += ["", f"{name}:", TABLE_HEAD]
        med[name] = summarise(runs[name], args.slots, lines)
    if len(variants) == 2:
        a, b = variants
        lines += ["", f"{b} / {a}, median solve time (same run):"]
        for t in args.slots:
            oa, ob = runs[a][t][0]["objective"], runs[b][t][0]["objective"]
            rel = abs(oa - ob) / max(abs(ob), 1e-12)
            if rel > 1e-6:
                msg = f"T={t}: objectives differ by {rel:.2e} relative"
                raise SystemExit(msg)
            lines.append(
                f"  T {t}: x{med[b][t]['solve'] / med[a][t]['solve']:.2f} "
                f"(objectives {oa:.9g} and {ob:.9g}, relative difference {rel:.1e})"
            )
    lines.append(f"load average at end: {load_average()}")
    print("\n".join(lines))
    suffix = "" if (args.peers, args.partners) == (100, 10) else f"-n{args.peers}-p{args.partners}"
    if args.model != "loss":
        suffix += f"-{args.model.replace('+', '-')}"
    if args.slots != [24, 48, 96]:
        suffix += "-T" + "-".join(str(t) for t in args.slots)
    if args.no_compare:
        suffix += "-hint-only"
    write_results("horizon", lines, suffix)


if __name__ == "__main__":
    main()
