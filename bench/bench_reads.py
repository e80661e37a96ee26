"""How long reads of trades take on a loaded chain, and how long they hold other clients up.

    python -m bench.bench_reads [--clients 8] [--orders 5000] [--seed 1] [--repeat 5] [--no-save]

Builds a chain as ``bench.bench_node`` does (an operator subprocess; its
clients submit ``--clients`` x ``--orders`` signed orders, closed loop, seeded),
then times each kind of ``trades`` read ``--repeat`` times. During each read a
second connection sends ``status`` requests back to back; the longest of them
is how long the read held the node's event loop, that is every other client
(a node answers reads on the loop that also sequences and matches).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from bench.bench_node import run_clients
from bench.machine import describe, write_results
from node.client.clients import AsyncClient
from node.localnet import LocalNet
from node.roles.service import MAX_READ_LIMIT
from node.wire.rpc import Result


async def held_up(read: asyncio.Task[list[Result]], other: AsyncClient) -> float:
    """The longest ``status`` round trip while ``read`` runs, in seconds."""
    longest = 0.0
    while not read.done():
        start = time.perf_counter()
        await other.call("status")
        longest = max(longest, time.perf_counter() - start)
    return longest


async def measure(address: str, repeat: int) -> list[str]:
    """Time each read ``repeat`` times; one line per read."""
    reader = await AsyncClient.connect(address)
    other = await AsyncClient.connect(address)
    peers = (await reader.call("peers"))["peers"]
    account = next(peer["account"] for peer in peers if peer["name"] == "bench0")
    status = await reader.call("status")

    async def whole_chain() -> list[Result]:
        """Every trade, in pages of the most a reply holds, as a client reads them."""
        trades: list[Result] = []
        while True:
            start = trades[-1]["height"] + 1 if trades else 0
            page = await reader.trades(start=start, limit=MAX_READ_LIMIT)
            if not page:
                return trades
            trades.extend(page)

    reads: list[tuple[str, Callable[[], Awaitable[list[Result]]]]] = [
        ("trades, newest 1,000 (no arguments)", reader.trades),
        ("trades of one account, newest 1,000", lambda: reader.trades(account)),
        (f"trades, whole chain (pages of {MAX_READ_LIMIT:,} from height 0)", whole_chain),
    ]
    lines = [f"chain: {status['height']} blocks"]
    for name, read_trades in reads:
        took, held, count = [], [], 0
        for _ in range(repeat):
            start = time.perf_counter()
            read = asyncio.create_task(read_trades())
            held.append(await held_up(read, other))
            count = len(await read)
            took.append(time.perf_counter() - start)
        lines.append(
            f"{name}: {count} trades; read {_spread(took)}; "
            f"longest status meanwhile {_spread(held)}"
        )
    await reader.close()
    await other.close()
    return lines


def _spread(seconds: list[float]) -> str:
    ms = sorted(s * 1e3 for s in seconds)
    return f"min {ms[0]:.1f} / median {statistics.median(ms):.1f} / max {ms[-1]:.1f} ms"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_reads", description=__doc__)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--orders", type=int, default=5000, help="orders per client")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=5, help="times each read is timed")
    parser.add_argument("--no-save", action="store_true", help="do not write bench/results/")
    args = parser.parse_args(argv)
    lines = [
        "# bench_reads: trades reads on a loaded chain, and how long they hold other clients",
        *(f"# {line}" for line in describe(("node", "ledger", "bench/bench_reads.py"))),
        f"# chain: {args.clients} clients x {args.orders} orders (closed loop), seed {args.seed}",
    ]
    print("\n".join(lines), flush=True)
    with tempfile.TemporaryDirectory(prefix="p2pex-bench-") as tmp:
        net = LocalNet(Path(tmp), replicas=0)
        with net:
            assert net.operator is not None and net.operator.process is not None
            build = argparse.Namespace(
                seed=args.seed,
                clients=args.clients,
                orders=args.orders,
                rate=0,
                window=32,
                client="library",
            )
            print("building the chain ...", flush=True)
            asyncio.run(run_clients(net.operator.address, build, net.operator.process.pid))
            for line in asyncio.run(measure(net.operator.address, args.repeat)):
                print(line, flush=True)
                lines.append(line)
    if not args.no_save:
        write_results("reads", lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
