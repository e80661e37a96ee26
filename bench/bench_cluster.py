"""Throughput and submit-to-committed latency: JetStream validators against the embedded operator.

One run starts both set-ups on 127.0.0.1 (an operator with the embedded
log; 3 NATS servers with 3 validators) and alternates rounds of the same
load between them: ``--clients`` threads, each a closed loop that signs an
order, submits it, and waits until it is committed (on the cluster: final,
attested by a quorum). Per round it reports the throughput and the p50 /
p99 of two spans of each order: submit -> accepted (checked, appended to
the log and applied) and accepted -> committed (the block cut, stored and,
on the cluster, attested by a quorum). It also says where the time goes:
CPU per order of every process (the embedded operator, each validator,
each NATS server, their worker processes, the clients), and how many log
entries and stream messages an order cost on the cluster.

    python -m bench.bench_cluster [--rounds 3] [--clients 8] [--orders 20]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import resource
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from bench import proc_cpu
from bench.machine import describe, write_results
from ledger.keys import SigningKey
from market import transactions as txn
from node.client.clients import Client
from node.cluster.localcluster import LocalCluster
from node.localnet import LocalNet

INTERVAL = ("--block-interval-ms", "20")
Submit = Callable[[txn.Payload], tuple[float, float]]


def _order(n: int) -> txn.PlaceOrder:
    side, price = ("bid", 90) if n % 2 else ("ask", 130)  # never cross: one rests per order
    return txn.PlaceOrder("electricity", 1, side, price, 1_000, "GTC", 0, False, "", n + 1)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run_round(
    submits: list[Submit], orders: int, first: int = 0
) -> tuple[float, list[float], list[float]]:
    """Run one closed loop per client; return (orders/s, accepted latencies, committed ones).

    ``first``: the first order number (client order ids stay unique across rounds).
    """
    clients = len(submits)
    accepted: list[float] = []
    committed: list[float] = []
    lock = threading.Lock()
    barrier = threading.Barrier(clients + 1)

    def loop(submit: Callable[[txn.Payload], tuple[float, float]]) -> None:
        barrier.wait()
        for n in range(first, first + orders):
            a, c = submit(_order(n))
            with lock:
                accepted.append(a)
                committed.append(c)

    threads = [threading.Thread(target=loop, args=(s,)) for s in submits]
    for thread in threads:
        thread.start()
    barrier.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    return clients * orders / elapsed, accepted, committed


def embedded_submitter(address: str, rng: random.Random) -> Callable[[int], Submit]:
    """Clients of the embedded operator."""

    def factory(i: int) -> Callable[[txn.Payload], tuple[float, float]]:
        client = Client.connect(address, key=SigningKey.from_seed(rng.randbytes(32)))
        client.register(f"e{rng.randrange(1 << 30)}", bus="B1", role="prosumer")

        def submit(payload: txn.Payload) -> tuple[float, float]:
            t0 = time.perf_counter()
            sub = client.submit(payload)
            t1 = time.perf_counter()
            client.wait_committed(sub.tx_id)
            return t1 - t0, time.perf_counter() - t0

        return submit

    return factory


def cluster_submitter(addresses: list[str], rng: random.Random) -> Callable[[int], Submit]:
    """Clients of the cluster, spread over its validators."""

    def factory(i: int) -> Callable[[txn.Payload], tuple[float, float]]:
        # spread the clients over the validators, as a community would
        rotated = addresses[i % len(addresses) :] + addresses[: i % len(addresses)]
        key = SigningKey.from_seed(rng.randbytes(32))
        plain = Client.connect(rotated[0], key=key)
        plain.register(f"c{rng.randrange(1 << 30)}", bus="B1", role="prosumer")

        def submit(payload: txn.Payload) -> tuple[float, float]:
            t0 = time.perf_counter()
            sub = plain.submit(payload)
            t1 = time.perf_counter()
            plain.wait_committed(sub.tx_id)
            return t1 - t0, time.perf_counter() - t0

        return submit

    return factory


def _pids(net: LocalNet | None, cluster: LocalCluster | None) -> dict[str, int]:
    """The processes whose CPU a round of one set-up is charged: its nodes (with workers)."""
    pids: dict[str, int] = {}
    if net is not None and net.operator is not None and net.operator.process is not None:
        pids["embedded operator"] = net.operator.process.pid
    if cluster is not None:
        for validator in cluster.validators:
            if validator.process is not None:
                pids[validator.name] = validator.process.pid
        if cluster.nats is not None:
            for server in cluster.nats.servers:
                if server.process is not None:
                    pids[f"nats {server.name}"] = server.process.pid
    return pids


def _start_in(tree: Path, cluster: LocalCluster) -> None:
    """Start ``cluster`` with its validators running the code of ``tree`` (``-m`` imports
    from the working directory)."""
    here = Path.cwd()
    os.chdir(tree)
    try:
        cluster.start()
    finally:
        os.chdir(here)


def _own_cpu() -> float:
    """CPU seconds of this process (the clients' threads, also the finished ones)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _log_counts(address: str) -> tuple[int, int, int]:
    """(stream messages read, log entries read, blocks) of one validator so far."""
    with Client.connect(address, timeout=10) as client:
        status = client.status()
    return int(status["log_messages"]), int(status["log_entries"]), int(status["height"])


def _round_trip(address: str) -> tuple[int, int, int, int, int, int]:
    """(p50, p99) us of a validator's recent log round trips, then of its arrival -> applied."""
    with Client.connect(address, timeout=10) as client:
        status = client.status()
    trip, accept, lag = status["log_round_trip_us"], status["accept_us"], status["loop_lag_us"]
    return int(trip[0]), int(trip[1]), int(accept[0]), int(accept[1]), int(lag[0]), int(lag[1])


def _cpu(pids: dict[str, int]) -> dict[str, tuple[float, float]]:
    """(main thread + other threads, worker processes) CPU seconds of each process so far."""
    out = {}
    for name, pid in pids.items():
        snap = proc_cpu.snapshot(pid)
        children = snap.pop("children", 0.0)
        out[name] = (sum(snap.values()), children)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--orders", type=int, default=20, help="per client and round")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--baseline-tree",
        type=Path,
        help="also run a cluster whose validators run the code in this directory (e.g. "
        "`git archive COMMIT | tar -x -C DIR`), interleaved with the others",
    )
    args = parser.parse_args()
    header = describe(["node", "bench"])  # the load average at the start, among others
    rng = random.Random(args.seed)
    names = ["embedded", "cluster"] + (["baseline"] if args.baseline_tree else [])
    results: dict[str, list[tuple[float, list[float], list[float]]]] = {n: [] for n in names}
    cpu: dict[str, dict[str, float]] = {n: {} for n in names}
    cpu_orders = dict.fromkeys(names, 0)
    log_counts = {"messages": 0, "entries": 0, "blocks": 0}
    with (
        tempfile.TemporaryDirectory(prefix="bench-cluster-") as root,
        contextlib.ExitStack() as stack,
    ):
        net = stack.enter_context(
            LocalNet(Path(root) / "embedded", replicas=0, operator_args=INTERVAL)
        )
        cluster = stack.enter_context(LocalCluster(Path(root) / "cluster", validator_args=INTERVAL))
        assert net.operator is not None
        setups = {
            "embedded": embedded_submitter(net.operator.address, rng),
            "cluster": cluster_submitter(cluster.addresses, rng),
        }
        pids = {"embedded": _pids(net, None), "cluster": _pids(None, cluster)}
        if args.baseline_tree is not None:
            baseline = LocalCluster(Path(root) / "baseline", validator_args=INTERVAL)
            stack.callback(baseline.stop)
            _start_in(args.baseline_tree.resolve(), baseline)
            setups["baseline"] = cluster_submitter(baseline.addresses, rng)
            pids["baseline"] = _pids(None, baseline)
        # clients connect and register once; a short warm-up round each (not counted)
        submits = {
            name: [factory(i) for i in range(args.clients)] for name, factory in setups.items()
        }
        for name in names:
            run_round(submits[name], 3)
        for r in range(args.rounds):
            for name in names if r % 2 == 0 else names[::-1]:
                before = _cpu(pids[name])
                own_before = _own_cpu()
                log_before = _log_counts(cluster.addresses[0])
                outcome = run_round(submits[name], args.orders, 3 + r * args.orders)
                if name == "cluster":
                    log_after = _log_counts(cluster.addresses[0])
                    for i, key in enumerate(("messages", "entries", "blocks")):
                        log_counts[key] += log_after[i] - log_before[i]
                after = _cpu(pids[name])
                own = _own_cpu() - own_before
                for proc, (main_s, kids_s) in after.items():
                    was = before.get(proc, (0.0, 0.0))
                    cpu[name][proc] = cpu[name].get(proc, 0.0) + main_s - was[0]
                    workers = proc + " workers"
                    cpu[name][workers] = cpu[name].get(workers, 0.0) + kids_s - was[1]
                clients = "clients (bench process)"
                cpu[name][clients] = cpu[name].get(clients, 0.0) + own
                cpu_orders[name] += args.clients * args.orders
                results[name].append(outcome)
                print(f"round {r + 1} {name:>8}: {outcome[0]:7.1f} orders/s", flush=True)
        round_trips = [_round_trip(address) for address in cluster.addresses]
    lines = [
        f"bench_cluster: {args.clients} closed-loop clients x {args.orders} orders x "
        f"{args.rounds} rounds, block interval 20 ms, seed {args.seed}"
        + (f"; baseline: validators of {args.baseline_tree.name}" if args.baseline_tree else ""),
    ]
    for name, rounds in results.items():
        rates = [r[0] for r in rounds]
        accepted = [x for r in rounds for x in r[1]]
        committed = [x for r in rounds for x in r[2]]
        lines.append(
            f"{name:>8}: orders/s min {min(rates):.1f} median {statistics.median(rates):.1f} "
            f"max {max(rates):.1f}; submit->accepted p50 {_percentile(accepted, 0.5) * 1e3:.1f} ms "
            f"p99 {_percentile(accepted, 0.99) * 1e3:.1f} ms; submit->committed p50 "
            f"{_percentile(committed, 0.5) * 1e3:.1f} ms "
            f"p99 {_percentile(committed, 0.99) * 1e3:.1f} ms"
        )
    for name in names[1:]:
        ratio = [c[0] / e[0] for c, e in zip(results[name], results["embedded"], strict=True)]
        lines.append(
            f"throughput {name}/embedded per round: "
            + ", ".join(f"{x:.2f}" for x in ratio)
            + f" (median {statistics.median(ratio):.2f})"
        )
    for name in names:
        spent = {k: v for k, v in cpu[name].items() if v >= 0.005}
        total = sum(spent.values())
        lines.append(
            f"CPU during the {name} rounds: {total / cpu_orders[name] * 1e3:.2f} ms per order "
            "in all, by process (ms per order): "
            + ", ".join(
                f"{k} {v / cpu_orders[name] * 1e3:.2f}"
                for k, v in sorted(spent.items(), key=lambda kv: -kv[1])
            )
        )
    orders = cpu_orders["cluster"]
    lines.append(
        f"cluster log (validator1's reading): {log_counts['entries'] / orders:.2f} entries and "
        f"{log_counts['messages'] / orders:.2f} stream messages per order "
        f"({log_counts['entries'] / max(1, log_counts['messages']):.2f} entries per message), "
        f"{orders / max(1, log_counts['blocks']):.1f} orders per block"
    )
    lines.append(
        "cluster log round trip (a batch published -> read back), p50 / p99 by validator: "
        + ", ".join(f"{us[0] / 1e3:.1f} / {us[1] / 1e3:.1f} ms" for us in round_trips)
    )
    lines.append(
        "cluster submission read by the validator -> applied (in the validator), p50 / p99: "
        + ", ".join(f"{us[2] / 1e3:.1f} / {us[3] / 1e3:.1f} ms" for us in round_trips)
    )
    lines.append(
        "cluster validators' loop lag (a 50 ms timer fires late by), p50 / p99: "
        + ", ".join(f"{us[4] / 1e3:.1f} / {us[5] / 1e3:.1f} ms" for us in round_trips)
    )
    for line in lines:
        print(line)
    suffix = (f"-clients{args.clients}" if args.clients != 8 else "") + (
        "-ab" if args.baseline_tree else ""
    )
    write_results("cluster", [*header, *lines], suffix)


if __name__ == "__main__":
    main()
