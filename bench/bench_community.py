"""Benchmark of clearing at community scale: aggregated form vs a plain per-pair QP.

Run from the repository root::

    python -m bench.bench_community [--seed 1] [--sizes 100 300 1000] [--reps 3]
                                    [--large 1000 --large-reps 1]
                                    [--models basic loss+congestion]

Workload (seeded): :func:`clearing.community.community_case`, N consumers x
N producers on the IEEE 33-bus feeder, every pair allowed (N² pairs).

Two forms, each run in its own child process so that its peak memory
(``ru_maxrss``) is its own, interleaved repetition by repetition:

- ``aggregated``: :func:`clearing.aggregate.clear_aggregated` end to end
  (build the aggregated QP, solve it with Clarabel, recover the N² trades
  pro rata and assemble the per-pair :class:`~clearing.ClearingResult`);
- ``plain``: one variable per pair, ``[P, p]`` with ``P = N p`` and the
  same objective, handed to Clarabel directly as scipy sparse matrices
  (the project's cvxpy per-pair model cannot compile this size).

Both use Clarabel's default settings. The time is the wall time from the
case to the solution (the case itself is built before the clock starts).
The objectives are compared (relative difference), and the memory of an
idle child that only imports and builds the case is reported as the floor.
Writes ``bench/results/community-<short commit>.txt``.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from typing import Any

import clarabel
import numpy as np
import scipy.sparse as sp

from bench.machine import describe, load_average, write_results

CONGESTED = ("L6",)  # the line feeding bus 6, where the 26-33 branch leaves the trunk


def _kwargs(model: str) -> dict[str, Any]:
    return {"penalised": CONGESTED} if "congestion" in model else {}


def plain_per_pair(case: Any, model: str) -> tuple[float, np.ndarray, int, str]:
    """Solve the all-pairs QP with one variable per pair; return (objective, P, iters, status)."""
    from clearing.problem import build_problem
    from clearing.spec import make_spec

    data = build_problem(case, make_spec(case, model, **_kwargs(model)))
    n, m = data.n, data.e_src.size
    Q = sp.diags(np.concatenate([data.a, np.full(m, 2.0 * data.eps)]), format="csc")
    q = np.concatenate([data.b, data.wp + data.wc])
    cols = np.arange(m)
    net = sp.csc_matrix(
        (
            np.concatenate([np.ones(m), -np.ones(m)]),
            (np.concatenate([data.e_src, data.e_dst]), np.concatenate([cols, cols])),
        ),
        shape=(n, m),
    )
    eye_n = sp.identity(n, format="csc")
    A = sp.vstack(
        [
            sp.hstack([eye_n, -net]),  # P - N p = 0 (12.1 with 12.10 substituted)
            sp.hstack([eye_n, sp.csc_matrix((n, m))]),  # P <= p_max
            sp.hstack([-eye_n, sp.csc_matrix((n, m))]),  # -P <= -p_min
            sp.hstack([sp.csc_matrix((m, n)), -sp.identity(m, format="csc")]),  # p >= 0
        ],
        format="csc",
    )
    b = np.concatenate([np.zeros(n), data.p_max, -data.p_min, np.zeros(m)])
    settings = clarabel.DefaultSettings()
    settings.verbose = False
    cones = [clarabel.ZeroConeT(n), clarabel.NonnegativeConeT(2 * n + m)]
    out = clarabel.DefaultSolver(Q, q, A, b, cones, settings).solve()
    x = np.asarray(out.x)
    return float(out.obj_val), x[:n], int(out.iterations), str(out.status)


def child(form: str, n: int, seed: int, model: str) -> None:
    """Run one form once and print a JSON line (time, objective, dispatch digest, peak RSS)."""
    from clearing.aggregate import clear_aggregated
    from clearing.ieee33 import community_case

    case = community_case(n, n, seed=seed)
    row: dict[str, Any] = {"form": form, "n": n}
    t0 = time.perf_counter()
    if form == "aggregated":
        agg = clear_aggregated(case, model, **_kwargs(model))
        row["time_s"] = time.perf_counter() - t0
        row["objective"] = agg.result.objective
        row["P"] = agg.result.injection.tolist()
        row["iterations"] = agg.result.iterations
        row["status"] = agg.result.status
        row["blocks"] = agg.blocks
        row["gap_bound"] = agg.gap_bound
    elif form == "plain":
        obj, P, iters, status = plain_per_pair(case, model)
        row["time_s"] = time.perf_counter() - t0
        row.update(objective=obj, P=P.tolist(), iterations=iters, status=status)
    else:  # idle: the floor of imports + case
        row["time_s"] = 0.0
    row["maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps(row))


def run_child(form: str, n: int, seed: int, model: str, timeout: float) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "bench.bench_community", "--child", form, "--sizes", str(n)]
    cmd += ["--seed", str(seed), "--models", model]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"form": form, "n": n, "error": f"timeout after {timeout:.0f} s"}
    if out.returncode != 0:
        tail = (out.stderr.strip().splitlines() or ["?"])[-1]
        return {"form": form, "n": n, "error": f"exit {out.returncode}: {tail}"}
    row: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return row


def stats(values: list[float]) -> str:
    return f"{min(values):8.3f} {statistics.median(values):8.3f} {max(values):8.3f}"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 300, 1000])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--large", type=int, default=1000, help="sizes from here use --large-reps")
    ap.add_argument(
        "--large-reps", type=int, default=1, help="plain runs from --large (it takes minutes)"
    )
    ap.add_argument("--models", nargs="+", default=["basic", "loss+congestion"])
    ap.add_argument("--timeout", type=float, default=900.0, help="per plain run, seconds")
    ap.add_argument("--child", choices=["aggregated", "plain", "idle"], help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args.child, args.sizes[0], args.seed, args.models[0])
        return

    out = describe(["clearing", "bench/bench_community.py"])
    out += [
        "workload: community_case(N, N, seed) on the IEEE 33-bus feeder, all N² pairs;",
        f"seed {args.seed}, {args.reps} interleaved repetitions (plain: {args.large_reps} from "
        f"N = {args.large}), each run in a fresh process;",
        "times: wall s from the built case to the solution (min / median / max);",
        "memory: peak RSS of the process (MB), idle = imports + case only.",
        "",
    ]
    print("\n".join(out))
    header = (
        f"{'model':16} {'N':>5} {'pairs':>9} {'form':10} {'min':>8} {'median':>8} {'max':>8}"
        f" {'peak MB':>8} {'iters':>5}  notes"
    )
    for model in args.models:
        out += [header]
        print(header)
        for n in args.sizes:
            idle = run_child("idle", n, args.seed, model, args.timeout)
            rows: dict[str, list[dict[str, Any]]] = {"aggregated": [], "plain": []}
            plain_reps = args.large_reps if n >= args.large else args.reps
            for rep in range(max(args.reps, plain_reps)):  # interleaved
                rows["aggregated"].append(run_child("aggregated", n, args.seed, model, 60.0))
                if rep < plain_reps:
                    rows["plain"].append(run_child("plain", n, args.seed, model, args.timeout))
            agg_ok = [r for r in rows["aggregated"] if "error" not in r]
            plain_ok = [r for r in rows["plain"] if "error" not in r]
            lines = []
            for form in ("aggregated", "plain"):
                ok = agg_ok if form == "aggregated" else plain_ok
                if not ok:
                    err = rows[form][0].get("error", "?")
                    lines.append(f"{model:16} {n:5d} {n * n:9d} {form:10} failed: {err}")
                    continue
                times = [r["time_s"] for r in ok]
                mem = max(r["maxrss_mb"] for r in ok)
                note = ""
                if form == "aggregated":
                    note = f"{ok[0]['blocks']} blocks; gap bound {ok[0]['gap_bound']:.2e}"
                else:
                    note = f"status {ok[0]['status']}"
                lines.append(
                    f"{model:16} {n:5d} {n * n:9d} {form:10} {stats(times)} {mem:8.0f} "
                    f"{ok[0]['iterations']:5d}  {note}"
                )
            lines.append(f"{'':16} {'':5} {'':9} {'idle':10} {'':26} {idle['maxrss_mb']:8.0f}")
            if agg_ok and plain_ok:
                a, p = agg_ok[0], plain_ok[0]
                rel = abs(a["objective"] - p["objective"]) / max(1.0, abs(p["objective"]))
                dp = float(np.max(np.abs(np.asarray(a["P"]) - np.asarray(p["P"]))))
                ratio = statistics.median(r["time_s"] for r in plain_ok) / statistics.median(
                    r["time_s"] for r in agg_ok
                )
                lines.append(
                    f"{'':16} {'':5} {'':9} speed-up (median plain / median aggregated) "
                    f"x{ratio:.1f}; objective rel diff {rel:.2e}; max |dP| {dp:.2e} kW"
                )
            for line in lines:
                print(line)
            out += lines
        out += [""]
    out += [f"load average at end: {load_average()}"]
    write_results("community", out)


if __name__ == "__main__":
    main()
