"""Benchmark of the optimal clearing: build, compile and solve times, and periodic re-solves.

Run from the repository root::

    python -m bench.bench_clearing [--seed 1] [--sizes 20 100 200] [--large] [--reps 3]

Workloads (seeded):

- ``reference``: the shipped 20-peer, 11-bus case of the chapter;
- random communities of N peers (half producers, one of them the main grid at
  the root; a quarter of the producers are CHP units; every consumer has a
  heat demand) on a random radial feeder of ``max(5, N // 4)`` buses, with
  either all producer-consumer pairs allowed ("all": an N x N trade matrix,
  N²/4 pair variables) or 20 partners per consumer ("p20").

For each workload and model it times, with a fresh :class:`clearing.Clearer`
(cold: build the arrays, build the cvxpy problem, compile, solve) and then
re-solves the same structure with new numbers (new b, bounds, α: only cvxpy
Parameters change). Wall times are measured here; the compile and solver
times come from cvxpy and Clarabel.

``--large`` adds 500 and 1,000 peers with all pairs (minutes; a few GiB).
Writes ``bench/results/clearing-<short commit>.txt``.

``--memory`` measures instead how peak memory grows with the market: for
each size N (N/2 producers x N/2 consumers, all pairs) a fresh process
clears it (basic model) and reports its peak RSS above what the imports and
the case took (``resource.getrusage``), and another compiles it under
``tracemalloc``, once as the clearing does and once with the linear cost
``b @ P`` in the objective (the formulation that asked for 30 GiB at 1,000 x
1,000), beside the :func:`clearing.estimate_bytes` estimate. Writes
``bench/results/clearing-memory-<short commit>.txt``.

``--accuracy`` compares, interleaved, Clarabel's default tolerances with the
clearing's tighter ones: how far trades and injections are from a 1e-13
solve, and the re-solve time (``clearing-accuracy-<commit>.txt``).
``--objective`` times, interleaved, a cold basic clearing with the old
objective and with the clearing's (``clearing-objective-<commit>.txt``).
``--figures`` prints what the reference case's clearings do
(``clearing-figures-<commit>.txt``), the figures docs/clearing.md quotes.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc
from dataclasses import replace
from pathlib import Path

import clarabel
import cvxpy
import numpy as np

from bench.machine import describe, load_average, write_results
from clearing import (
    Case,
    Clearer,
    certificate_from_plain,
    certificate_to_plain,
    check_certificate,
    clear,
    congestion_procedure,
    estimate_bytes,
    load_reference_case,
    pool_dispatch,
)
from clearing.model import QpModel, _incidence
from clearing.problem import ProblemData, build_problem
from clearing.spec import make_spec

MODELS = (
    ("basic", {}),
    ("loss", {"alpha": 0.005}),
    ("congestion", {"beta": 0.005}),
    ("loss+congestion", {"alpha": 0.005, "beta": 0.005}),
    ("heat", {}),
    ("basic+limits", {"line_limits": True}),
    ("pool", {}),  # the pool-based baseline of table 12.2 (clearing.pool_dispatch)
)
CHP_UNIT = {"A": (247.0, 0.0), "B": (215.0, 180.0), "C": (81.0, 104.8), "D": (98.8, 0.0)}


def random_case(n: int, partners: int | None, seed: int) -> Case:
    """A seeded random community of ``n`` peers on a random radial feeder."""
    rng = random.Random(seed)
    n_buses = max(5, n // 4)
    buses = [str(i) for i in range(n_buses)]
    lines = []
    for i in range(1, n_buses):
        parent = rng.randrange(max(0, i - 4), i)  # shallow-ish random tree
        lines.append(
            {
                "name": f"L{i}",
                "from": str(parent),
                "to": str(i),
                "r_ohm": rng.uniform(0.2, 3.0),
                "x_ohm": 0.0,
                "capacity_kw": rng.uniform(300.0, 2000.0),
            }
        )
    n_prod = n // 2
    producers = [f"G{i}" for i in range(n_prod)]
    consumers = [f"C{i}" for i in range(n - n_prod)]
    peer_bus = {name: rng.choice(buses) for name in producers + consumers}
    peer_bus["G0"] = "0"
    peers = [
        {"name": "G0", "role": "grid", "a": 0.0002, "b": 0.10, "p_min": 0.0, "p_max": 50.0 * n}
    ]
    for name in producers[1:]:
        item = {
            "name": name,
            "role": "producer",
            "a": rng.uniform(1e-4, 1e-3),
            "b": rng.uniform(0.05, 0.2),
            "p_min": 0.0,
            "p_max": rng.uniform(20.0, 100.0),
        }
        if rng.random() < 0.25:
            s = rng.uniform(0.1, 0.4)
            item["chp"] = {k: [p * s, h * s] for k, (p, h) in CHP_UNIT.items()}
            item["p_max"] = 247.0 * s
            item["heat"] = {
                "a": 4e-4,
                "b": rng.uniform(0.02, 0.05),
                "h_min": 0.0,
                "h_max": 180.0 * s,
            }
        peers.append(item)
    for name in consumers:
        demand = rng.uniform(10.0, 100.0)
        item = {
            "name": name,
            "role": "consumer",
            "a": rng.uniform(1e-4, 1e-3),
            "b": rng.uniform(0.25, 0.45),
            "p_min": -demand,
            "p_max": 0.0,
            "heat": {"a": 1e-3, "b": rng.uniform(0.08, 0.15), "h_min": -demand / 3, "h_max": 0.0},
        }
        if partners is not None:
            item["partners"] = rng.sample(producers, min(partners, len(producers)))
        peers.append(item)
    return Case.from_dict(
        {
            "name": f"random-{n}",
            "network": {
                "voltage_kv": 11.0,
                "root": "0",
                "buses": buses,
                "lines": lines,
                "peer_bus": peer_bus,
            },
            "peers": peers,
        }
    )


def perturbed(case: Case, seed: int) -> Case:
    """Same structure, new numbers: what a periodic re-solve sees at the next gate closure."""
    rng = random.Random(seed)
    peers = tuple(
        replace(p, b=p.b * rng.uniform(0.9, 1.1), p_min=p.p_min * rng.uniform(0.9, 1.0))
        for p in case.peers
    )
    return replace(case, peers=peers)


def run_once(case: Case, model: str, kw: dict, clearer: Clearer, sigma: tuple[str, ...]):
    name = "basic" if model == "basic+limits" else model
    args = dict(kw)
    if name in ("congestion", "loss+congestion"):
        args["penalised"] = sigma
    if name == "heat" and not case.has_heat:
        return None
    t0, c0 = time.perf_counter(), time.process_time()
    if model == "pool":
        result = pool_dispatch(case, clearer=clearer)
    else:
        result = clear(case, name, clearer=clearer, **args)
    return time.perf_counter() - t0, time.process_time() - c0, result


def stats(values: list[float]) -> str:
    ms = [v * 1000.0 for v in values]
    return f"{min(ms):9.1f} {statistics.median(ms):9.1f} {max(ms):9.1f}"


def bench_case(label: str, case: Case, reps: int, resolves: int, seed: int, out: list[str]) -> None:
    clearer0 = Clearer()
    sigma = clear(case, "basic", clearer=clearer0).overloaded or (case.network.lines[0].name,)
    data = build_problem(case, make_spec(case, "basic"))
    pairs = data.e_src.size
    for model, kw in MODELS:
        cold, cold_cpu, compile_s, solve_s, warm = [], [], [], [], []
        result = None
        for r in range(reps):
            clearer = Clearer()
            got = run_once(case, model, kw, clearer, sigma)
            if got is None:
                break
            dt, cpu, result = got
            cold.append(dt)
            cold_cpu.append(cpu)
            compile_s.append(result.compile_time_s)
            solve_s.append(result.solve_time_s)
            if r == 0:
                for k in range(resolves):
                    dt2, _, _ = run_once(perturbed(case, seed + k), model, kw, clearer, sigma)
                    warm.append(dt2)
        if result is None:
            continue
        # a replica's check: decode the plain certificate and verify KKT (no solver);
        # the pool baseline is solved on a reduced case and never published
        check_ms = float("nan")
        if model != "pool":
            plain = certificate_to_plain(result.certificate)
            t0 = time.perf_counter()
            report = check_certificate(case, certificate_from_plain(plain))
            check_ms = (time.perf_counter() - t0) * 1000.0
            assert report.ok, report.failures
        line = (
            f"{label:<16} {model:<16} {pairs:>7} {stats(cold)}  {stats(compile_s)}  "
            f"{stats(solve_s)}  {stats(warm)}  {result.iterations:>4}  {check_ms:8.1f}  "
            f"{statistics.median(cold_cpu) * 1000.0:9.1f}"
        )
        print(line, flush=True)
        out.append(line)


def reference_end_to_end(out: list[str], reps: int) -> None:
    """Load the shipped case file, then build, compile and solve (imports already warm)."""
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        clear(load_reference_case(), "basic", clearer=Clearer())
        times.append(time.perf_counter() - t0)
    line = f"reference case, load JSON + build + compile + solve: min/median/max {stats(times)} ms"
    print(line)
    out.append(line)


def congestion_rounds(out: list[str], reps: int) -> None:
    case = load_reference_case()
    times = []
    outcome = None
    for _ in range(reps):
        t0 = time.perf_counter()
        outcome = congestion_procedure(case, clearer=Clearer())
        times.append(time.perf_counter() - t0)
    assert outcome is not None
    line = (
        f"reference congestion procedure ({len(outcome.rounds)} solves, one compiled model): "
        f"min/median/max {stats(times)} ms"
    )
    print(line)
    out.append(line)


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def legacy_problem(data: ProblemData) -> object:
    """The basic QP with ``b @ P`` and the penalties in the objective (the old formulation)."""
    n, m = data.n, data.e_src.size
    P, p = cvxpy.Variable(n), cvxpy.Variable(m, nonneg=True)
    ra = cvxpy.Parameter(n, nonneg=True, value=np.sqrt(0.5 * data.a))
    b = cvxpy.Parameter(n, value=data.b)
    eps = cvxpy.Parameter(nonneg=True, value=data.eps)
    wp, wc = cvxpy.Parameter(m, value=data.wp), cvxpy.Parameter(m, value=data.wc)
    t = cvxpy.Variable()
    net = _incidence(data.e_src, n) - _incidence(data.e_dst, n)
    objective = cvxpy.sum_squares(cvxpy.multiply(ra, P)) + b @ P + t + eps * cvxpy.sum_squares(p)
    constraints = [
        P - net @ p == 0,
        cvxpy.Parameter(n, value=data.p_max) >= P,
        cvxpy.Parameter(n, value=data.p_min) <= P,
        t == (wp + wc) @ p,
    ]
    return cvxpy.Problem(cvxpy.Minimize(objective), constraints)


def legacy_dense_bytes(n: int, m: int) -> int:
    """What the old formulation's dense DPP matrix needs: (n + 3) x (2m + 4n + 2) floats."""
    return 8 * (n + 3) * (2 * m + 4 * n + 2)


def memory_child(n: int, seed: int, what: str) -> None:
    """In a fresh process: print one JSON line, the peak memory of one clearing of ``n`` peers."""
    case = random_case(n, None, seed + n)
    data = build_problem(case, make_spec(case, "basic"))
    record: dict[str, float] = {"pairs": int(data.e_src.size), "peers": n}
    gc.collect()
    if what == "solve":
        del data
        gc.collect()
        base = _rss_mib()
        c0 = time.process_time()
        result = clear(case, "basic", clearer=Clearer(memory_limit=None))
        record.update(
            base_mib=base,
            peak_mib=_rss_mib(),
            cpu_s=time.process_time() - c0,
            iterations=result.iterations,
        )
    else:
        tracemalloc.start()
        problem = legacy_problem(data) if what == "legacy" else QpModel(data).problem
        problem.get_problem_data(cvxpy.CLARABEL)  # type: ignore[attr-defined]
        record["traced_mib"] = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    print(json.dumps(record), flush=True)


def run_child(n: int, seed: int, what: str) -> dict[str, float]:
    cmd = [sys.executable, "-m", "bench.bench_clearing", "--memory-child", str(n), what]
    cmd += ["--seed", str(seed)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def memory_growth(sizes: list[int], seed: int, reps: int) -> list[str]:
    """Peak memory against market size, each measurement in a fresh process."""
    out = [
        "peak memory of one basic clearing, N/2 producers x N/2 consumers, all pairs; each "
        "figure from a fresh process. solve = peak RSS (getrusage) above the process's RSS "
        "after imports and building the case, min/median/max over reps; per pair = median "
        "solve / pairs; compile = tracemalloc peak of building + compiling the cvxpy "
        "problem; legacy = the same with b @ P in the objective (skipped, with the size of "
        "its dense matrix, where that exceeds 2 GiB); estimate = clearing.estimate_bytes.",
        f"{'N':>6} {'market':>11} {'pairs':>9} {'estimate':>9}  {'solve min':>9} {'median':>9} "
        f"{'max':>9}  {'per pair':>8}  {'compile':>8}  {'legacy':>18}  {'cpu s':>6} iters",
    ]
    print(out[0])
    print(out[1], flush=True)
    for n in sizes:
        runs = [run_child(n, seed, "solve") for _ in range(reps if n <= 800 else 1)]
        used = sorted(r["peak_mib"] - r["base_mib"] for r in runs)
        pairs = int(runs[0]["pairs"])
        compiled = run_child(n, seed, "compile")["traced_mib"]
        dense = legacy_dense_bytes(n, pairs)
        legacy = (
            f"{run_child(n, seed, 'legacy')['traced_mib']:8.0f} MiB"
            if dense <= 2 * 2**30
            else f"(needs {dense / 2**30:.1f} GiB)"
        )
        estimate = estimate_bytes(peers=n, pairs=pairs, lines=max(5, n // 4) - 1) / 2**20
        median = statistics.median(used)
        line = (
            f"{n:>6} {f'{n // 2}x{n - n // 2}':>11} {pairs:>9} {estimate:8.0f}M  "
            f"{used[0]:8.0f}M {median:8.0f}M {used[-1]:8.0f}M  "
            f"{median * 2**20 / pairs:7.0f}B  {compiled:7.0f}M  {legacy:>18}  "
            f"{statistics.median(r['cpu_s'] for r in runs):6.1f} {int(runs[0]['iterations'])}"
        )
        print(line, flush=True)
        out.append(line)
    return out


def reference_figures() -> list[str]:
    """What the reference case's clearings do, in the figures docs/clearing.md quotes."""
    case = load_reference_case()
    net = case.network
    consumers = [i for i, p in enumerate(case.peers) if not p.is_producer]
    most = -sum(case.peers[i].p_min for i in consumers)
    least = -sum(case.peers[i].p_max for i in consumers)
    out = [
        f"reference case: consumers may take {least:.1f} to {most:.1f} kW in total",
        f"{'model':<22} {'served kW':>9} {'losses kW':>9} {'welfare':>9}  overloaded",
    ]
    pool = pool_dispatch(case)
    rows = [("pool (table 12.2)", pool)]
    for a in (0, 5, 10, 20, 30, 35):
        model = "basic" if a == 0 else "loss"
        rows.append((f"{model} alpha={a}e-3", clear(case, model, alpha=a / 1000.0)))
    rows.append(("heat, tariff", clear(case, "heat")))
    rows.append(("heat, alpha=beta=0", clear(case, "heat", alpha=0.0, beta=0.0)))
    rows.append(("basic, hard limits", clear(case, "basic", line_limits=True)))
    for label, r in rows:
        served = -float(np.sum([r.injection[r.names.index(case.names[i])] for i in consumers]))
        out.append(
            f"{label:<22} {served:9.1f} {r.losses_kw:9.3f} {r.welfare:9.2f}  "
            f"{','.join(r.overloaded) or '-'}"
        )
    outcome = congestion_procedure(case, beta=0.005, beta_growth=1.0)
    out.append(
        f"congestion procedure, beta = 5e-3: {len(outcome.rounds)} solves, status "
        f"{outcome.status.value}"
    )
    c9 = case.names.index("C9")
    bus_c9 = net.bus_of("C9")
    for rnd in outcome.rounds:
        r = rnd.result
        row = r.trades[c9]
        buys = {case.names[j]: -row[j] for j in np.flatnonzero(row < -0.05)}
        across = sum(kw for g, kw in buys.items() if "L6" in net.path(net.bus_of(g), bus_c9))
        l6 = net.lines.index(next(ln for ln in net.lines if ln.name == "L6"))
        out.append(
            f"  round {rnd.round} (sigma {','.join(rnd.penalised) or '-'}): C9 takes "
            f"{-r.injection[c9]:.1f} kW, "
            + ", ".join(f"{kw:.1f} from {g}" for g, kw in sorted(buys.items()))
            + f"; {across:.1f} kW of it bought across L6; L6 carries {abs(r.flows[l6]):.1f} kW "
            f"(cap {net.lines[l6].capacity_kw:g}); overloaded: {','.join(rnd.overloaded) or '-'}"
        )
    for line in out:
        print(line)
    return out


CLARABEL_DEFAULTS = {
    "tol_gap_abs": 1e-8,
    "tol_gap_rel": 1e-8,
    "tol_feas": 1e-8,
    "tol_ktratio": 1e-6,
}
FINER = {"tol_gap_abs": 1e-13, "tol_gap_rel": 1e-13, "tol_feas": 1e-13, "tol_ktratio": 1e-10}


def accuracy_ab(seed: int, reps: int) -> list[str]:
    """Trade accuracy and re-solve time, Clarabel's default tolerances vs the clearing's."""
    out = [
        "trade accuracy: max |P_ij - P_ij(1e-13)| in W over all pairs, and the same for P_i; "
        "time = warm re-solve wall ms (compiled model, same numbers), min/median/max over "
        "reps, the two settings alternating; ratio = median accurate / median default",
        f"{'workload':<16} {'model':<6} {'pairs':>6}  {'trade W dflt':>12} {'accurate':>9}  "
        f"{'P_i W dflt':>10} {'accurate':>9}  {'default ms':>28}  {'accurate ms':>28}  "
        f"{'ratio':>5}  iters",
    ]
    print(out[0])
    print(out[1], flush=True)
    work = [("reference", load_reference_case())]
    for n in (100, 300):
        work += [(f"N={n} all", random_case(n, None, seed + n))]
        work += [(f"N={n} p20", random_case(n, 20, seed + n))]
    for label, case in work:
        for model, kw in (("basic", {}), ("loss", {"alpha": 0.005})):
            want = clear(case, model, clearer=Clearer(options=FINER), **kw)
            clearers = {"default": Clearer(options=CLARABEL_DEFAULTS), "accurate": Clearer()}
            times: dict[str, list[float]] = {k: [] for k in clearers}
            got = {}
            for name, clearer in clearers.items():  # compile once, outside the timing
                got[name] = clear(case, model, clearer=clearer, **kw)
            for _ in range(reps):
                for name, clearer in clearers.items():
                    t0 = time.perf_counter()
                    clear(case, model, clearer=clearer, **kw)
                    times[name].append(time.perf_counter() - t0)
            err = {k: 1000 * float(np.abs(r.trades - want.trades).max()) for k, r in got.items()}
            agg = {
                k: 1000 * float(np.abs(r.injection - want.injection).max()) for k, r in got.items()
            }
            ratio = statistics.median(times["accurate"]) / statistics.median(times["default"])
            line = (
                f"{label:<16} {model:<6} {want.e_src.size:>6}  {err['default']:12.3f} "
                f"{err['accurate']:9.3f}  {agg['default']:10.4f} {agg['accurate']:9.4f}  "
                f"{stats(times['default'])}  {stats(times['accurate'])}  {ratio:5.2f}  "
                f"{got['default'].iterations}/{got['accurate'].iterations}"
            )
            print(line, flush=True)
            out.append(line)
    return out


def objective_ab(seed: int, reps: int) -> list[str]:
    """Cold build + compile + solve, old objective (b @ P in it) vs the clearing's, interleaved."""
    out = [
        "objective A/B: cold = build the cvxpy problem + compile + solve (basic model, "
        "Clarabel's default tolerances for both), wall ms and process CPU ms, min/median/max "
        "over reps, the two formulations alternating; ratio = median new / median old",
        f"{'workload':<16} {'pairs':>6}  {'old wall ms':>28}  {'new wall ms':>28}  "
        f"{'ratio':>5}  {'old cpu':>7} {'new cpu':>7} {'ratio':>5}",
    ]
    print(out[0])
    print(out[1], flush=True)
    work = [("reference", load_reference_case())]
    work += [(f"N={n} all", random_case(n, None, seed + n)) for n in (100, 300)]
    for label, case in work:
        data = build_problem(case, make_spec(case, "basic"))
        wall: dict[str, list[float]] = {"old": [], "new": []}
        cpu: dict[str, list[float]] = {"old": [], "new": []}
        values = {}
        for _ in range(reps):
            for name in ("old", "new"):
                t0, c0 = time.perf_counter(), time.process_time()
                if name == "old":
                    problem = legacy_problem(data)
                else:
                    qp = QpModel(data)
                    qp.set_data(data)
                    problem = qp.problem
                problem.solve(solver=cvxpy.CLARABEL, **CLARABEL_DEFAULTS)  # type: ignore[attr-defined]
                wall[name].append(time.perf_counter() - t0)
                cpu[name].append(time.process_time() - c0)
                values[name] = problem.value  # type: ignore[attr-defined]
        assert abs(values["old"] - values["new"]) <= 1e-6 * max(1.0, abs(values["old"]))
        ratio = statistics.median(wall["new"]) / statistics.median(wall["old"])
        cratio = statistics.median(cpu["new"]) / statistics.median(cpu["old"])
        line = (
            f"{label:<16} {data.e_src.size:>6}  {stats(wall['old'])}  {stats(wall['new'])}  "
            f"{ratio:5.2f}  {statistics.median(cpu['old']) * 1000:7.1f} "
            f"{statistics.median(cpu['new']) * 1000:7.1f} {cratio:5.2f}"
        )
        print(line, flush=True)
        out.append(line)
    return out


def machine() -> list[str]:
    return [
        *describe(),
        f"numpy {np.__version__}, cvxpy {cvxpy.__version__}, clarabel {clarabel.__version__}",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sizes", type=int, nargs="*", default=[20, 100, 200])
    parser.add_argument("--large", action="store_true", help="add 500 and 1000 peers, all pairs")
    parser.add_argument("--reps", type=int, default=3, help="cold repetitions per point")
    parser.add_argument("--resolves", type=int, default=3, help="warm re-solves per point")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--memory", action="store_true", help="measure peak memory vs size")
    parser.add_argument("--figures", action="store_true", help="the reference case's figures")
    parser.add_argument(
        "--objective", action="store_true", help="A/B: old objective vs the clearing's, cold"
    )
    parser.add_argument(
        "--accuracy",
        action="store_true",
        help="trade accuracy and time: default vs tight tolerances",
    )
    parser.add_argument("--memory-sizes", type=int, nargs="*", default=[200, 400, 800, 1400, 2000])
    parser.add_argument("--memory-child", nargs=2, metavar=("N", "WHAT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_child:
        memory_child(int(args.memory_child[0]), args.seed, args.memory_child[1])
        return 0
    if args.accuracy:
        lines = [*machine(), "", *accuracy_ab(args.seed, max(args.reps, 5))]
        write_results("clearing-accuracy", [*lines, f"load average at end: {load_average()}"],
                      path=args.out)  # fmt: skip
        return 0
    if args.objective:
        lines = [*machine(), "", *objective_ab(args.seed, max(args.reps, 5))]
        write_results("clearing-objective", [*lines, f"load average at end: {load_average()}"],
                      path=args.out)  # fmt: skip
        return 0
    if args.figures:
        write_results("clearing-figures", [*machine(), "", *reference_figures()], path=args.out)
        return 0
    if args.memory:
        header = machine()
        out = [*header, "", *memory_growth(args.memory_sizes, args.seed, args.reps)]
        out.append(f"load average at end: {load_average()}")
        write_results("clearing-memory", out, path=args.out)
        return 0

    header = machine()
    for row in header:
        print(row)
    # warm-up: imports, first cvxpy canonicalisation, Clarabel load
    clear(load_reference_case(), "basic")
    out = [
        *header,
        "",
        "times in ms: cold = build arrays + build cvxpy problem + compile + solve (wall, fresh "
        "Clearer); compile = cvxpy compilation_time; solve = Clarabel solve_time; warm = re-solve "
        "of the same structure with new numbers (wall). Columns min/median/max; iters = Clarabel "
        "iterations. congestion / loss+congestion use sigma = the lines over capacity in the "
        "basic clearing (one solve each; the full procedure is timed separately). "
        "basic+limits = hard line limits; pool = the pool baseline (main grid only, table "
        "12.2; pairs shows the full case's). check = decode the plain certificate and verify "
        "it (what a replica does; no solver), ms. cold cpu = median CPU time of this "
        "process for the cold solve (less sensitive to the other jobs than wall time).",
        f"{'workload':<16} {'model':<16} {'pairs':>7} {'cold min':>9} {'median':>9} {'max':>9}  "
        f"{'compile':>9} {'median':>9} {'max':>9}  {'solve':>9} {'median':>9} {'max':>9}  "
        f"{'warm':>9} {'median':>9} {'max':>9}  iters     check   cold cpu",
    ]
    print(out[-1])
    bench_case("reference", load_reference_case(), max(args.reps, 5), 5, args.seed, out)
    reference_end_to_end(out, 5)
    congestion_rounds(out, 5)
    for n in args.sizes:
        bench_case(
            f"N={n} all",
            random_case(n, None, args.seed + n),
            args.reps,
            args.resolves,
            args.seed,
            out,
        )
        bench_case(
            f"N={n} p20",
            random_case(n, 20, args.seed + n),
            args.reps,
            args.resolves,
            args.seed,
            out,
        )
    for n in (500, 1000):
        bench_case(f"N={n} p20", random_case(n, 20, args.seed + n), 1, 1, args.seed, out)
    if args.large:
        for n in (500, 1000):
            bench_case(f"N={n} all", random_case(n, None, args.seed + n), 1, 1, args.seed, out)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    out += [f"peak RSS: {peak:.0f} MiB", f"load average at end: {load_average()}"]
    print(out[-2])
    print(out[-1])
    write_results("clearing", out, path=args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
