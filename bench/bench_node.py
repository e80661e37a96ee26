"""End-to-end benchmark of a p2pex operator: signed orders from concurrent clients.

    python -m bench.bench_node [--clients 8] [--orders 2000] [--window 32]
                               [--block-interval-ms 20] [--seed 1] [--no-save]

Starts an operator as a subprocess on 127.0.0.1 (real SQLite store with
synchronous=FULL), registers ``--clients`` peers, then each client signs and
submits ``--orders`` limit orders with up to ``--window`` requests in flight.
A separate connection subscribed to ``blocks`` records when each transaction's
block is pushed, i.e. after it was durably stored.

Reported: sustained throughput (orders accepted per second, from the first
submit to the last acceptance), and latency percentiles from submit to
``accepted`` and from submit to ``committed`` (block stored and pushed). The
clients run in this process (one asyncio loop), the operator in another: on
a 2-core machine they share the cores, so client-side signing (Ed25519, about
a quarter of a core at 5,000 orders/s) is part of the measured cost.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hashlib
import random
import sys
import tempfile
import time
from pathlib import Path

from bench.machine import describe, git_commit
from ledger import generate_signing_key
from ledger.block import decode_block
from node.client import AsyncClient
from node.localnet import LocalNet

PRODUCT = "electricity"
SLOT = 1
MID = 1500  # ticks per kWh


def percentiles(values_ns: list[int]) -> str:
    """p50 / p99 / p99.9 / max in milliseconds."""
    if not values_ns:
        return "n/a"
    s = sorted(values_ns)

    def pick(q: float) -> float:
        return s[min(len(s) - 1, int(q * len(s)))] / 1e6

    return (
        f"p50 {pick(0.50):7.2f} ms  p99 {pick(0.99):7.2f} ms  "
        f"p99.9 {pick(0.999):7.2f} ms  max {s[-1] / 1e6:7.2f} ms"
    )


async def run_clients(address: str, args: argparse.Namespace) -> dict[str, object]:
    """Register the clients, stream the orders, return the measurements."""
    rng = random.Random(args.seed)
    clients = [
        await AsyncClient.connect(address, key=generate_signing_key()) for _ in range(args.clients)
    ]
    for i, client in enumerate(clients):
        sub = await client.register(f"bench{i}", bus="B1", role="prosumer")
    await clients[-1].wait_committed(sub.tx_id)

    watcher = await AsyncClient.connect(address)
    await watcher.subscribe("blocks")
    committed_at: dict[bytes, int] = {}
    submitted_at: dict[bytes, int] = {}

    async def watch() -> None:
        while True:
            event = await watcher.next_event()
            now = time.perf_counter_ns()
            block = decode_block(event.data["block"])
            for tx in block.transactions:
                committed_at[hashlib.sha256(tx).digest()] = now

    watch_task = asyncio.create_task(watch())
    accept_ns: list[int] = []
    done_at: list[int] = []

    async def stream(client: AsyncClient, orders: list[tuple[str, int, int]]) -> None:
        window = asyncio.Semaphore(args.window)

        async def one(side: str, price: int, qty: int) -> None:
            async with window:
                t0 = time.perf_counter_ns()
                sub = await client.place_order(PRODUCT, SLOT, side, price, qty)
                t1 = time.perf_counter_ns()
                accept_ns.append(t1 - t0)
                submitted_at[sub.tx_id] = t0
                done_at.append(t1)

        await asyncio.gather(*(one(*o) for o in orders))

    plans = [
        [
            (rng.choice(("bid", "ask")), MID + rng.randint(-20, 20), rng.randint(1, 50) * 100)
            for _ in range(args.orders)
        ]
        for _ in clients
    ]
    gc_was = gc.isenabled()
    start = time.perf_counter_ns()
    await asyncio.gather(*(stream(c, p) for c, p in zip(clients, plans, strict=True)))
    end = max(done_at)
    # let the last block land
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not all(t in committed_at for t in submitted_at):
        await asyncio.sleep(0.01)
    watch_task.cancel()
    commit_ns = [committed_at[t] - t0 for t, t0 in submitted_at.items() if t in committed_at]
    for c in [*clients, watcher]:
        await c.close()
    total = len(accept_ns)
    return {
        "orders": total,
        "seconds": (end - start) / 1e9,
        "throughput": total / ((end - start) / 1e9),
        "accepted": percentiles(accept_ns),
        "committed": percentiles(commit_ns),
        "committed_seen": len(commit_ns),
        "gc": gc_was,
    }


def machine() -> str:
    """Commit, machine and load, on one line for the results file."""
    return "; ".join(describe(("node", "bench/bench_node.py")))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_node", description=__doc__)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--orders", type=int, default=2000, help="orders per client")
    parser.add_argument("--window", type=int, default=32, help="requests in flight per client")
    parser.add_argument("--block-interval-ms", type=int, default=20)
    parser.add_argument("--block-max-txs", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3, help="runs (a fresh operator each)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-save", action="store_true", help="do not write bench/results/")
    args = parser.parse_args(argv)

    lines = [
        "# bench_node: signed orders end to end through one operator",
        f"# {machine()}",
        f"# clients {args.clients} x {args.orders} orders, window {args.window}, "
        f"block interval {args.block_interval_ms} ms / {args.block_max_txs} txs, seed {args.seed}",
    ]
    print("\n".join(lines), flush=True)
    throughputs = []
    for run in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="p2pex-bench-") as tmp:
            net = LocalNet(
                Path(tmp),
                replicas=0,
                operator_args=(
                    "--block-interval-ms",
                    str(args.block_interval_ms),
                    "--block-max-txs",
                    str(args.block_max_txs),
                ),
            )
            with net:
                assert net.operator is not None
                result = asyncio.run(run_clients(net.operator.address, args))
        throughputs.append(float(result["throughput"]))  # type: ignore[arg-type]
        line = (
            f"run {run + 1}: {result['orders']} orders in {result['seconds']:.2f} s = "
            f"{result['throughput']:,.0f} orders/s (GC {'on' if result['gc'] else 'off'})\n"
            f"  submit -> accepted : {result['accepted']}\n"
            f"  submit -> committed: {result['committed']} ({result['committed_seen']} seen)"
        )
        print(line, flush=True)
        lines.append(line)
    s = sorted(throughputs)
    summary = (
        f"throughput orders/s: min {s[0]:,.0f}  median {s[len(s) // 2]:,.0f}  max {s[-1]:,.0f}"
    )
    print(summary)
    lines.append(summary)
    if not args.no_save:
        out = Path(__file__).parent / "results"
        out.mkdir(exist_ok=True)
        commit = git_commit().split()[0]
        path = out / f"node-{commit}.txt"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
