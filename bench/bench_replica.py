"""How a replica serves reads while its operator is loaded, and how far it falls behind.

    python -m bench.bench_replica [--rate 3000] [--clients 8] [--orders 3000] [--seed 1]
                                  [--repeat 3] [--no-save]

Starts an operator and one replica (subprocesses, as ``p2pex demo`` does),
has ``--clients`` clients submit signed orders to the operator at ``--rate``
orders/s (open loop, the raw load generator of ``bench_node``), and meanwhile
sends ``status`` requests to the replica from a separate process (so that
the clients' own work does not delay them), one every 5 ms from when the
orders start until they end. Reports those round trips (a replica answers
reads on the event loop that also verifies and stores the blocks it pulls),
the replica's lag behind the operator when the orders end, and how long it
then takes to catch up.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.bench_node import run_clients
from bench.machine import describe, write_results
from node.client.clients import AsyncClient
from node.localnet import LocalNet

PROBE_EVERY_S = 0.005


async def probe(address: str, delay: float, duration: float) -> None:
    """Print the ``status`` round trips (ms, one per line) to ``address`` for ``duration`` s."""
    await asyncio.sleep(delay)
    client = await AsyncClient.connect(address)
    end = time.perf_counter() + duration
    while time.perf_counter() < end:
        start = time.perf_counter()
        await client.call("status")
        print(f"{(time.perf_counter() - start) * 1e3:.3f}", flush=True)
        await asyncio.sleep(PROBE_EVERY_S)
    await client.close()


async def heights(addresses: list[str]) -> list[int]:
    """The stored height of each node."""
    out = []
    for address in addresses:
        client = await AsyncClient.connect(address)
        out.append(int((await client.call("status"))["height"]))
        await client.close()
    return out


def one_run(args: argparse.Namespace) -> str:
    """One operator + replica, one load; the result line."""
    with tempfile.TemporaryDirectory(prefix="p2pex-bench-") as tmp:
        net = LocalNet(Path(tmp), replicas=1)
        with net:
            assert net.operator is not None and net.operator.process is not None
            replica = net.replicas[0].address
            # The probe waits while the clients sign their orders, then runs as long as they send.
            sign_s = args.clients * args.orders * 120e-6 + 1.0
            send_s = args.clients * args.orders / args.rate
            command = [sys.executable, "-m", "bench.bench_replica", "--probe", replica]
            prober = subprocess.Popen(
                [*command, str(sign_s), str(send_s)],
                stdout=subprocess.PIPE,
                text=True,
                env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
            )
            load = argparse.Namespace(
                seed=args.seed,
                clients=args.clients,
                orders=args.orders,
                rate=args.rate,
                window=32,
                client="raw",
            )
            result = asyncio.run(run_clients(net.operator.address, load, net.operator.process.pid))
            operator_height, replica_height = asyncio.run(heights([net.operator.address, replica]))
            start = time.perf_counter()
            while asyncio.run(heights([replica]))[0] < operator_height:
                time.sleep(0.05)
            caught_up = time.perf_counter() - start
            out, _ = prober.communicate(timeout=60)
    trips = sorted(float(line) for line in out.split())
    if not trips:
        return "no status round trip was measured"
    p99 = trips[min(len(trips) - 1, int(0.99 * len(trips)))]
    return (
        f"replica status while loaded: n={len(trips)} p50 {statistics.median(trips):.1f} ms "
        f"p99 {p99:.1f} ms max {trips[-1]:.1f} ms; replica {operator_height - replica_height} "
        f"blocks behind at the end, level {caught_up:.2f} s later; "
        f"operator: {result['throughput']:,.0f} orders/s, accepted {result['accepted']}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_replica", description=__doc__)
    parser.add_argument("--rate", type=float, default=3000, help="orders/s offered to the operator")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--orders", type=int, default=3000, help="orders per client")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3, help="runs (fresh nodes each)")
    parser.add_argument("--no-save", action="store_true", help="do not write bench/results/")
    parser.add_argument(
        "--probe", nargs=3, metavar=("ADDRESS", "DELAY", "SECONDS"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.probe:
        address, delay, seconds = args.probe
        asyncio.run(probe(address, float(delay), float(seconds)))
        return 0
    lines = [
        "# bench_replica: reads on a replica while its operator is loaded",
        *(f"# {line}" for line in describe(("node", "ledger", "bench/bench_replica.py"))),
        f"# {args.clients} clients x {args.orders} orders at {args.rate:,.0f} orders/s "
        f"(raw load generator), seed {args.seed}",
    ]
    print("\n".join(lines), flush=True)
    for run in range(args.repeat):
        line = f"run {run + 1}: {one_run(args)}"
        print(line, flush=True)
        lines.append(line)
    if not args.no_save:
        write_results("replica", lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
