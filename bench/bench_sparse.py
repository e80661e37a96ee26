"""Benchmark: memory and time of per-pair clearings with sparse partner sets, and rounding.

Run from the repository root::

    python -m bench.bench_sparse [--sizes 1000 3000 10000] [--partners 10] [--against REV]
    python -m bench.bench_sparse --local --skip-rounding --reps 1

Two measurements:

- ``sparse``: for each size N, a seeded community on the IEEE 33-bus feeder
  (:func:`clearing.ieee33.community_case`: N/2 consumers, N/2 - 1 producers
  and the main grid at the root) in which every consumer lists ``partners``
  partners (the grid and ``partners - 1`` producers drawn at random), so the
  per-pair form has about ``N/2 x partners`` pairs, far below ``N²``. A
  fresh process clears it (basic model, per-pair form) and reports its peak
  RSS above what the imports and the case took (``resource.getrusage``),
  the wall time of ``clear``, the bytes the result's arrays hold, and
  :func:`clearing.estimate_bytes`. With ``--against REV`` the same child
  also runs with the ``clearing`` package of git revision ``REV`` (extracted
  by ``git archive`` into a temporary directory), alternating with this
  tree's, so before and after are measured in the same run. ``--local``
  gives every consumer a window of consecutive producers instead of random
  ones (a partner graph the solver factors without much fill), written to
  ``sparse-<commit>-local.txt``.
- ``rounding``: :func:`clearing.round_settlement` on a large all-pairs result
  (``--round-size`` consumers x producers, cleared in the aggregated form),
  timed interleaved against REV's ``round_settlement`` (loaded from the
  extracted tree) and checked to give the same settlement.

Writes ``bench/results/sparse-<short commit>.txt``.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from bench.machine import describe, load_average, write_results
from clearing import Case, Clearer, clear, estimate_bytes
from clearing.ieee33 import community_case

ROOT = Path(__file__).resolve().parent.parent


def sparse_case(n: int, partners: int, seed: int, local: bool = False) -> Case:
    """``n`` peers on the 33-bus feeder, every consumer restricted to ``partners`` partners.

    The grid and ``partners - 1`` producers: drawn at random, or with
    ``local`` a window of consecutive producers (consumer k of C takes
    those from ``k x producers / C`` on), a partner graph of small bandwidth.
    """
    consumers = n // 2
    producers = n - consumers - 1
    case = community_case(consumers, producers, seed=seed, grid=True)
    rng = np.random.default_rng(seed + 1)
    names = [p.name for p in case.peers if p.name.startswith("G")]
    want = min(partners - 1, len(names))
    peers = []
    for k, p in enumerate(case.peers):
        if not p.is_producer:
            if local:
                start = k * len(names) // consumers
                drawn = np.array([(start + j) % len(names) for j in range(want)])
            else:
                drawn = rng.choice(len(names), size=want, replace=False)
            p = replace(p, partners=("grid", *(names[int(i)] for i in sorted(drawn))))
        peers.append(p)
    return replace(case, peers=tuple(peers))


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _result_bytes(result: object) -> int:
    """Bytes held by the result's own numpy arrays (fields, not properties or the solution)."""
    total = 0
    for field in dataclasses.fields(result):  # type: ignore[arg-type]
        value = getattr(result, field.name)
        if isinstance(value, np.ndarray):
            total += value.nbytes
    return total


def child(n: int, partners: int, seed: int, local: bool) -> None:
    """In a fresh process: print one JSON line, one clearing's peak memory and time."""
    case = sparse_case(n, partners, seed, local)
    base = _rss_mib()
    t0 = time.perf_counter()
    result = clear(case, "basic", clearer=Clearer(memory_limit=None))
    wall = time.perf_counter() - t0
    record = {
        "pairs": int(result.e_src.size),
        "base_mib": base,
        "peak_mib": _rss_mib(),
        "wall_s": wall,
        "result_mib": _result_bytes(result) / 2**20,
        "estimate_mib": estimate_bytes(
            peers=n, pairs=int(result.e_src.size), lines=len(case.network.lines)
        )
        / 2**20,
    }
    print(json.dumps(record), flush=True)


def run_child(n: int, partners: int, seed: int, tree: Path | None, local: bool) -> dict[str, float]:
    env = dict(os.environ)
    paths = [str(tree)] if tree is not None else []
    env["PYTHONPATH"] = os.pathsep.join([*paths, str(ROOT)])
    cmd = [sys.executable, "-m", "bench.bench_sparse", "--child", str(n), str(partners)]
    cmd += ["--seed", str(seed)] + (["--local"] if local else [])
    # ``-m`` puts the working directory first on sys.path: run REV's in its tree
    cwd = ROOT if tree is None else tree
    done = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env, cwd=cwd)
    out: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


def extract(rev: str, into: Path) -> Path:
    """Extract the ``clearing`` package of git revision ``rev`` into ``into``."""
    archive = subprocess.run(
        ["git", "archive", rev, "clearing"], capture_output=True, check=True, cwd=ROOT
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def sparse_growth(
    sizes: list[int], partners: int, seed: int, reps: int, old: Path | None, local: bool
) -> list[str]:
    """Peak memory and time of sparse per-pair clearings, this tree (and REV's) interleaved."""
    out = [
        f"one basic clearing, per-pair form, IEEE 33-bus feeder, every consumer with {partners} "
        f"partners ({'a window of consecutive' if local else 'random'} producers and the "
        "grid); each figure from a fresh process. peak = peak RSS above the RSS after "
        "imports and building the case (getrusage), min/median over reps; time = wall time of "
        "clear(); result = bytes of the result's own arrays; estimate = "
        "clearing.estimate_bytes of the tree run. 'before' runs the clearing package of the "
        "given revision, interleaved with 'after' (this tree).",
        f"{'N':>6} {'pairs':>8} {'N^2':>11} {'tree':<7} {'peak min':>9} {'median':>9} "
        f"{'per peer+pair':>13} {'time min':>9} {'median':>9} {'result':>9} {'estimate':>9}",
    ]
    print(out[0])
    print(out[1], flush=True)
    trees: list[tuple[str, Path | None]] = [("after", None)]
    if old is not None:
        trees.insert(0, ("before", old))
    for n in sizes:
        runs: dict[str, list[dict[str, float]]] = {label: [] for label, _ in trees}
        for _ in range(reps):
            for label, tree in trees:
                runs[label].append(run_child(n, partners, seed, tree, local))
        for label, _ in trees:
            rows = runs[label]
            used = sorted(r["peak_mib"] - r["base_mib"] for r in rows)
            wall = sorted(r["wall_s"] for r in rows)
            pairs = int(rows[0]["pairs"])
            line = (
                f"{n:>6} {pairs:>8} {n * n:>11} {label:<7} {used[0]:8.0f}M "
                f"{statistics.median(used):8.0f}M "
                f"{statistics.median(used) * 2**20 / (n + pairs):12.0f}B "
                f"{wall[0]:8.2f}s {statistics.median(wall):8.2f}s "
                f"{rows[0]['result_mib']:8.1f}M {rows[0]['estimate_mib']:8.0f}M"
            )
            print(line, flush=True)
            out.append(line)
    return out


def _load_rounding(tree: Path) -> Callable[..., Any]:
    """REV's ``round_settlement``, loaded beside this tree's under another module name."""
    spec = importlib.util.spec_from_file_location(
        "rounding_before", tree / "clearing" / "rounding.py"
    )
    if spec is None or spec.loader is None:
        msg = f"no clearing/rounding.py in {tree}"
        raise FileNotFoundError(msg)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    fn: Callable[..., Any] = module.round_settlement
    return fn


def _plain(settlement: Any) -> tuple[Any, ...]:
    return (
        [dataclasses.astuple(t) for t in settlement.trades],
        [dataclasses.astuple(p) for p in settlement.peers],
        settlement.operator_revenue,
    )


def rounding_ab(size: int, seed: int, reps: int, old: Path | None) -> list[str]:
    """round_settlement on an all-pairs result, interleaved with REV's."""
    from clearing import clear_aggregated, round_settlement

    case = community_case(size, size, seed=seed, grid=True)
    result = clear_aggregated(case, "basic").result
    contenders: list[tuple[str, Callable[..., Any]]] = [("after", round_settlement)]
    if old is not None:
        contenders.insert(0, ("before", _load_rounding(old)))
    times: dict[str, list[float]] = {label: [] for label, _ in contenders}
    outputs: dict[str, Any] = {}
    for _ in range(reps):
        for label, fn in contenders:
            t0 = time.perf_counter()
            settlement = fn(case, result)
            times[label].append(time.perf_counter() - t0)
            outputs[label] = settlement
    out = [
        f"round_settlement on {case.name}: {result.e_src.size} pairs, "
        f"{len(outputs['after'].trades)} rounded trades; wall s, interleaved, {reps} reps",
        f"{'tree':<7} {'min':>8} {'median':>8} {'max':>8}",
    ]
    for label, _ in contenders:
        t = sorted(times[label])
        out.append(f"{label:<7} {t[0]:8.3f} {statistics.median(t):8.3f} {t[-1]:8.3f}")
    if old is not None:
        same = _plain(outputs["before"]) == _plain(outputs["after"])
        ratio = statistics.median(times["before"]) / statistics.median(times["after"])
        out.append(f"same settlement: {same}; speed-up (median before / after): {ratio:.1f}x")
    for line in out:
        print(line, flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sizes", type=int, nargs="*", default=[1000, 3000, 10000])
    parser.add_argument("--partners", type=int, default=10)
    parser.add_argument("--reps", type=int, default=2, help="fresh processes per point and tree")
    parser.add_argument("--round-size", type=int, default=1000, help="consumers = producers")
    parser.add_argument("--round-reps", type=int, default=3)
    parser.add_argument("--against", metavar="REV", default=None, help="git revision: before")
    parser.add_argument("--skip-rounding", action="store_true")
    parser.add_argument("--local", action="store_true", help="partners: consecutive producers")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--child", nargs=2, type=int, metavar=("N", "PARTNERS"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.child:
        child(args.child[0], args.child[1], args.seed, args.local)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        old = extract(args.against, Path(tmp)) if args.against else None
        out = [*describe(["clearing"]), ""]
        if old is not None:
            out.append(f"before = clearing package of revision {args.against}")
        out += sparse_growth(args.sizes, args.partners, args.seed, args.reps, old, args.local)
        if not args.skip_rounding:
            out += ["", *rounding_ab(args.round_size, args.seed, args.round_reps, old)]
    out.append(f"load average at end: {load_average()}")
    write_results("sparse", out, suffix="-local" if args.local else "", path=args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
