"""End-to-end benchmark of a p2pex operator: signed orders from concurrent clients.

    python -m bench.bench_node [--clients 8] [--orders 5000] [--rate 5000]
                               [--window 32] [--block-interval-ms 20] [--seed 1]
                               [--repeat 3] [--no-save]

Starts an operator as a subprocess on 127.0.0.1 (real SQLite store with
synchronous=FULL), registers ``--clients`` peers, and has each one sign
``--orders`` limit orders (seeded) before the clock starts. Then either

- open loop (``--rate R``, the default at 5,000/s): the orders are due at a
  fixed total rate R spread over the clients, and each is sent when due
  whatever happened to the earlier ones; latency counts from the due time,
  so a node (or a client loop) that falls behind shows as latency, not as a
  slower sender (no coordinated omission). This is the "sustained rate at a
  latency" measurement: the rate is sustained if every order is accepted,
  throughput matches R, and the latency does not grow over the run (the
  p99 of each quarter is printed);
- closed loop (``--rate 0``): each client keeps ``--window`` submits in
  flight, which measures the most the node can take; latency is then
  queueing, about in-flight / throughput (Little's law).

A separate connection subscribed to ``blocks`` records when each
transaction's block is pushed, i.e. after it was durably stored.

Reported: throughput (orders accepted per second, from the start to the last
acceptance), latency percentiles from submit to ``accepted`` and from submit
to ``committed`` (block stored and pushed). The clients run in this process
(one asyncio loop), the operator in another, sharing the machine's cores.
Orders are signed in advance because signing is the clients' work, done on
their own machines in real use; here it would take CPU from the node. For
the same reason ``--client raw`` replaces the library client by a load
generator whose request frames are encoded in advance too and whose replies
are read only as far as their id (``bench/raw_client.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import gc
import hashlib
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import proc_cpu, speed
from bench.machine import describe, write_results
from bench.raw_client import RawSubmitter
from ledger.block import decode_block
from ledger.keys import SigningKey
from market import transactions as txn
from node.client.clients import AsyncClient
from node.errors import NodeError
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


def plan_orders(rng: random.Random, count: int) -> list[tuple[str, int, int]]:
    """(side, price, quantity) of ``count`` limit orders around ``MID``: about half trade."""
    return [
        (rng.choice(("bid", "ask")), MID + rng.randint(-20, 20), rng.randint(1, 50) * 100)
        for _ in range(count)
    ]


def presign(client: AsyncClient, first_nonce: int, plan: list[tuple[str, int, int]]) -> list[bytes]:
    """The plan's orders as signed transaction bytes, nonces from ``first_nonce``."""
    assert client.key is not None and client.chain_id is not None
    return [
        txn.make(
            client.key,
            client.chain_id,
            first_nonce + k,
            txn.PlaceOrder(PRODUCT, SLOT, side, price, qty, "GTC", 0, False, "", first_nonce + k),
        ).to_bytes()
        for k, (side, price, qty) in enumerate(plan)
    ]


# An order ready to go: its transaction id, and what submits it (returns the reply's future).
Order = tuple[bytes, Callable[[], asyncio.Future[Any]]]


def orders_for(client: AsyncClient, raw: RawSubmitter | None, txs: list[bytes]) -> list[Order]:
    """Each signed transaction with how it is submitted: by the library client, or ``raw``."""
    ids = [hashlib.sha256(data).digest() for data in txs]
    if raw is None:
        request = client.rpc.request
        return [
            (tx_id, functools.partial(request, "submit", {"tx": data}))
            for tx_id, data in zip(ids, txs, strict=True)
        ]
    frames = raw.prepare(txs)  # encoded before the clock starts, as they were signed
    return [
        (tx_id, functools.partial(raw.send, prepared))
        for tx_id, prepared in zip(ids, frames, strict=True)
    ]


class Recorder:
    """Latencies of one run: submit -> accepted, submit -> committed (block pushed)."""

    def __init__(self) -> None:
        self.due_at: dict[bytes, int] = {}  # tx id -> when it was due (open loop) or sent
        self.sent_at: dict[bytes, int] = {}  # tx id -> when the client actually sent it
        self.accepted_at: dict[bytes, int] = {}
        self.committed_at: dict[bytes, int] = {}
        self.blocks_at: list[tuple[int, bytes]] = []  # (when pushed, block bytes)
        self.errors: list[str] = []

    async def watch(self, watcher: AsyncClient) -> None:
        """Record when each block is pushed (after it was stored); decoded in ``report``.

        Decoding a block and hashing its transactions here took the client
        loop ~1 ms per block, during which the replies that arrived waited
        to be timestamped.
        """
        while True:
            event = await watcher.next_event()
            self.blocks_at.append((time.perf_counter_ns(), event.data["block"]))

    def index_blocks(self) -> None:
        """Map the transactions of the blocks seen so far to when their block was pushed."""
        for now, block in self.blocks_at:
            for tx in decode_block(block).transactions:
                self.committed_at[hashlib.sha256(tx).digest()] = now
        self.blocks_at.clear()

    def send(self, order: Order, due_ns: int) -> asyncio.Future[Any]:
        """Submit one signed transaction now; its acceptance is recorded from ``due_ns``.

        No task per order: the client's loop is on this machine's cores too,
        and its own overhead shows up as latency.
        """
        tx_id, submit = order
        self.due_at[tx_id] = due_ns
        self.sent_at[tx_id] = time.perf_counter_ns()
        future = submit()
        future.add_done_callback(functools.partial(self._answered, tx_id))
        return future

    def _answered(self, tx_id: bytes, future: asyncio.Future[Any]) -> None:
        error = None if future.cancelled() else future.exception()
        if error is not None or future.cancelled():
            self.errors.append(str(error))
        else:
            self.accepted_at[tx_id] = time.perf_counter_ns()

    async def submit(self, order: Order, due_ns: int) -> None:
        """Submit one signed transaction and wait for its answer (an error is recorded)."""
        with contextlib.suppress(NodeError, RuntimeError, ConnectionError):
            await self.send(order, due_ns)

    def report(self, start_ns: int) -> dict[str, object]:
        """Throughput and latency percentiles (accept latency per quarter of the run too).

        Latencies count from when each order was due (the conservative figure:
        a client loop that sends late adds to them); the "from sent" lines
        count from when the client actually wrote it.
        """
        self.index_blocks()
        accepted = sorted((t, t - self.due_at[tx]) for tx, t in self.accepted_at.items())
        end_ns = accepted[-1][0] if accepted else start_ns + 1
        commit_ns = [
            self.committed_at[tx] - t0 for tx, t0 in self.due_at.items() if tx in self.committed_at
        ]
        from_sent = {
            "accepted": [t - self.sent_at[tx] for tx, t in self.accepted_at.items()],
            "committed": [t - self.sent_at[tx] for tx, t in self.committed_at.items()],
        }
        send_lag = [self.sent_at[tx] - due for tx, due in self.due_at.items()]
        n = len(accepted)
        quarters = [[lat for _, lat in accepted[q * n // 4 : (q + 1) * n // 4]] for q in range(4)]
        return {
            "orders": n,
            "errors": len(self.errors),
            "first_error": self.errors[0] if self.errors else "",
            "seconds": (end_ns - start_ns) / 1e9,
            "throughput": n / ((end_ns - start_ns) / 1e9),
            "accepted": percentiles([lat for _, lat in accepted]),
            "accepted_p99_by_quarter": [p99(q) for q in quarters],
            "committed": percentiles(commit_ns),
            "send_lag": percentiles(send_lag),
            "accepted_from_sent": percentiles(from_sent["accepted"]),
            "committed_from_sent": percentiles(from_sent["committed"]),
            "committed_seen": len(commit_ns),
        }


def p99(values_ns: list[int]) -> float:
    """99th percentile in milliseconds."""
    s = sorted(values_ns)
    return s[min(len(s) - 1, int(0.99 * len(s)))] / 1e6 if s else float("nan")


async def closed_loop(recorder: Recorder, streams: list[list[Order]], window: int) -> int:
    """Each client keeps ``window`` submits in flight until its orders are done."""

    async def stream(orders: list[Order]) -> None:
        slots = asyncio.Semaphore(window)

        async def one(order: Order) -> None:
            async with slots:
                await recorder.submit(order, time.perf_counter_ns())

        await asyncio.gather(*(one(order) for order in orders))

    start = time.perf_counter_ns()
    await asyncio.gather(*(stream(orders) for orders in streams))
    return start


async def open_loop(recorder: Recorder, streams: list[list[Order]], rate: float) -> int:
    """Submit at a fixed total ``rate`` whatever the replies do (no coordinated omission).

    Client ``c``'s order ``k`` is due at ``start + (k * clients + c) / rate``;
    latency counts from the due time, so a late sender shows up as latency.
    """
    n = len(streams)
    start = time.perf_counter_ns() + 50_000_000
    pending: set[asyncio.Future[Any]] = set()  # answered ones are dropped (less for the GC)

    async def stream(c: int, orders: list[Order]) -> None:
        for k, order in enumerate(orders):
            due = start + int((k * n + c) * 1e9 / rate)
            delay = (due - time.perf_counter_ns()) / 1e9
            if delay > 0.0005:
                await asyncio.sleep(delay)
            answer = recorder.send(order, due)
            pending.add(answer)
            answer.add_done_callback(pending.discard)

    await asyncio.gather(*(stream(c, orders) for c, orders in enumerate(streams)))
    await asyncio.gather(*pending, return_exceptions=True)
    return start


def cpu_per_order(
    node_pid: int, node_before: dict[str, float], own_before: dict[str, float], orders: int
) -> str:
    """CPU microseconds per order since the snapshots, by where they were spent."""
    if not orders:
        return "n/a"
    node = proc_cpu.spent(node_before, proc_cpu.snapshot(node_pid))
    own = proc_cpu.spent(own_before, proc_cpu.snapshot(os.getpid()))
    own.pop("children", None)  # the operator itself is a child of this process
    parts = {
        "operator loop": node.pop("main", 0.0),
        "operator's worker processes (signatures, store)": node.pop("children", 0.0),
        "operator's other threads": sum(node.values()),
        "clients": sum(own.values()),
    }
    total = sum(parts.values())
    text = ", ".join(f"{name} {sec * 1e6 / orders:.0f}" for name, sec in parts.items())
    return f"{text}; total {total * 1e6 / orders:.0f} us"


async def run_clients(address: str, args: argparse.Namespace, node_pid: int) -> dict[str, object]:
    """Register the clients, pre-sign their orders, stream them, return the measurements."""
    rng = random.Random(args.seed)
    clients = [
        await AsyncClient.connect(address, key=SigningKey.from_seed(rng.randbytes(32)))
        for _ in range(args.clients)
    ]
    registered = [
        await client.register(f"bench{i}", bus="B1", role="prosumer")
        for i, client in enumerate(clients)
    ]
    await clients[-1].wait_committed(registered[-1].tx_id)
    # Signed before the clock starts: signing is the clients' cost (on their own
    # machines in real use), and here it would take CPU from the node.
    signed = [
        presign(c, r.nonce + 1, plan_orders(rng, args.orders))
        for c, r in zip(clients, registered, strict=True)
    ]
    raw = [await RawSubmitter.connect(address) for _ in clients] if args.client == "raw" else []
    streams = [
        orders_for(client, raw[i] if raw else None, txs)
        for i, (client, txs) in enumerate(zip(clients, signed, strict=True))
    ]
    watcher = await AsyncClient.connect(address)
    await watcher.subscribe("blocks")
    recorder = Recorder()
    watch_task = asyncio.create_task(recorder.watch(watcher))
    gc_was = gc.isenabled()
    # The pre-signed orders and the connections live through the run: freeze them
    # so the collector does not scan them again (the node's runner does the same).
    gc.collect()
    gc.freeze()
    node_before, own_before = proc_cpu.snapshot(node_pid), proc_cpu.snapshot(os.getpid())
    if args.rate > 0:
        start = await open_loop(recorder, streams, args.rate)
    else:
        start = await closed_loop(recorder, streams, args.window)
    cpu = cpu_per_order(node_pid, node_before, own_before, len(recorder.accepted_at))
    deadline = time.monotonic() + 10  # let the last block land
    while time.monotonic() < deadline and len(recorder.committed_at) < len(recorder.accepted_at):
        recorder.index_blocks()
        await asyncio.sleep(0.01)
    watch_task.cancel()
    for c in [*clients, watcher]:
        await c.close()
    for submitter in raw:
        submitter.close()
    return {**recorder.report(start), "gc": gc_was, "cpu": cpu}


def machine() -> str:
    """Commit, machine and load, on one line for the results file."""
    return "; ".join(describe(("node", "bench/bench_node.py")))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_node", description=__doc__)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--orders", type=int, default=5000, help="orders per client")
    parser.add_argument(
        "--rate",
        type=float,
        default=5000,
        help="open loop: total orders/s offered, whatever the replies do "
        "(0: closed loop, each client keeps --window submits in flight)",
    )
    parser.add_argument(
        "--window", type=int, default=32, help="closed loop: requests in flight per client"
    )
    parser.add_argument(
        "--client",
        choices=("library", "raw"),
        default="library",
        help="library: the Python client (node.client.AsyncClient); raw: pre-encoded submit "
        "frames, replies read as far as their id (bench/raw_client.py), which leaves the node "
        "more of the shared cores",
    )
    parser.add_argument("--block-interval-ms", type=int, default=20)
    parser.add_argument("--block-max-txs", type=int, default=1000)
    parser.add_argument(
        "--verify-workers",
        type=int,
        default=1,
        help="operator's signature-checking processes (0: on its event loop)",
    )
    parser.add_argument(
        "--loop-slice-us",
        type=int,
        default=None,
        help="the operator's loop_slice_us (default: the node's default; 0: off)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs (a fresh operator each)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-save", action="store_true", help="do not write bench/results/")
    args = parser.parse_args(argv)

    lines = [
        "# bench_node: signed orders end to end through one operator",
        f"# {machine()}",
        f"# clients {args.clients} x {args.orders} orders, "
        + (f"open loop at {args.rate:,.0f} orders/s, " if args.rate > 0 else "")
        + (f"closed loop, window {args.window}, " if args.rate <= 0 else "")
        + "pre-signed, "
        + f"{args.client} client, "
        + f"block interval {args.block_interval_ms} ms / {args.block_max_txs} txs, "
        + f"{args.verify_workers} verify worker(s), "
        + (f"loop slice {args.loop_slice_us} us, " if args.loop_slice_us is not None else "")
        + f"seed {args.seed}",
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
                    "--verify-workers",
                    str(args.verify_workers),
                    *(
                        ("--loop-slice-us", str(args.loop_slice_us))
                        if args.loop_slice_us is not None
                        else ()
                    ),
                ),
            )
            with net:
                assert net.operator is not None
                assert net.operator.process is not None
                pid = net.operator.process.pid
                sampler = speed.SpeedSampler()
                try:
                    result = asyncio.run(run_clients(net.operator.address, args, pid))
                finally:
                    machine_speed = speed.summary(sampler.stop())
        throughputs.append(float(result["throughput"]))  # type: ignore[arg-type]
        line = (
            f"run {run + 1}: {result['orders']} orders in {result['seconds']:.2f} s = "
            f"{result['throughput']:,.0f} orders/s (GC {'on' if result['gc'] else 'off'})\n"
            f"  submit -> accepted : {result['accepted']}\n"
            f"  accepted p99 by quarter of the run (ms): "
            f"{' / '.join(f'{q:.2f}' for q in result['accepted_p99_by_quarter'])}\n"
            f"  submit -> committed: {result['committed']} ({result['committed_seen']} seen)\n"
            f"  client send lag    : {result['send_lag']} (due -> sent; part of the above)\n"
            f"  from sent: accepted: {result['accepted_from_sent']}\n"
            f"  from sent: committed: {result['committed_from_sent']}\n"
            f"  CPU per order (us): {result['cpu']}\n"
            f"  machine speed: {machine_speed}"
        )
        if result["errors"]:
            line += f"\n  errors: {result['errors']} (first: {result['first_error']})"
        print(line, flush=True)
        lines.append(line)
    s = sorted(throughputs)
    summary = (
        f"throughput orders/s: min {s[0]:,.0f}  median {s[len(s) // 2]:,.0f}  max {s[-1]:,.0f}"
    )
    print(summary)
    lines.append(summary)
    if not args.no_save:
        write_results("node", lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
