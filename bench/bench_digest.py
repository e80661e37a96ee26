"""Benchmark of ``Market.state_digest()``: the per-block cost on one busy book.

Run from the repository root::

    python -m bench.bench_digest [--seed S] [--orders N] [--levels L] [--new K]
                                 [--quiet-books B] [--repeat R] [--write]

The market holds one busy book of ``--orders`` resting orders (seeded random
owners, quantities and prices) on ``--levels`` price levels, half bids and
half asks, plus ``--quiet-books`` other books of 40 orders on 10 levels each
that nothing touches (a market with many delivery slots). Each repetition
starts from the same state (``Market.restore`` of one snapshot, untimed) and
times single ``state_digest()`` calls in four situations:

- ``cold``: the first digest after the restore (no cached text at all);
- ``unchanged``: a second digest, nothing changed since the first;
- ``new``: after ``--new`` orders placed since the last digest (untimed), on
  random levels of both sides, about one in ten priced through the best
  opposite price so that it trades (partial fills of resting makers included);
- ``reference``: ``snapshot_digest(market.snapshot())`` on the state of
  ``new``: the uncached encoding and hashing, what a digest costs without
  the caches.

Every timed digest is checked (untimed) against the reference. Times are
perf_counter_ns around one call, reported as min / median / max over
``--repeat`` repetitions, after one warm-up repetition. ``--write`` stores
the report in ``bench/results/digest-<commit>.txt`` with the machine
description.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable
from functools import partial

from bench.machine import describe, load_average, write_results
from orderbook import Instrument, Market, MarketConfig, Product, Side
from orderbook.digest import snapshot_digest

INSTRUMENT = Instrument(Product.ELECTRICITY, 1)
CONFIG = MarketConfig(price_step=1, min_price=1, max_price=1_000_000, max_quantity=10**9)
MID = 10_000  # ticks per kWh: asks from MID up, bids from MID - 1 down
BID, ASK = Side.BID, Side.ASK
SITUATIONS = ("cold", "unchanged", "new", "reference")

# One order to place: (order id, owner, side, quantity, price).
_Order = tuple[int, str, Side, int, int]


def random_order(rng: random.Random, order_id: int, per_side: int, cross: bool) -> _Order:
    """A seeded GTC order on one of ``per_side`` levels, or one that crosses."""
    owner = f"acct{rng.randrange(500):03d}"
    quantity = rng.randint(1, 5_000)
    side = BID if rng.random() < 0.5 else ASK
    depth = -rng.randint(1, 3) if cross else rng.randrange(per_side)
    price = MID - 1 - depth if side is BID else MID + depth
    return (order_id, owner, side, quantity, price)


def build(seed: int, orders: int, levels: int, quiet_books: int = 0) -> Market:
    """A market with one book of ``orders`` resting orders on ``levels`` levels,
    and ``quiet_books`` books of 40 orders on 10 levels."""
    rng = random.Random(seed)
    market = Market(CONFIG)
    market.open_instrument(INSTRUMENT)
    order_id = 0
    while len(market) < orders:
        order_id += 1
        _, owner, side, quantity, price = random_order(rng, order_id, levels // 2, cross=False)
        market.place(INSTRUMENT, order_id, owner, side, quantity, price)
    for n in range(quiet_books):
        instrument = Instrument(Product.HEAT if n % 2 else Product.ELECTRICITY, 2 + n // 2)
        market.open_instrument(instrument)
        for _ in range(40):
            order_id += 1
            _, owner, side, quantity, price = random_order(rng, order_id, 5, cross=False)
            market.place(instrument, order_id, owner, side, quantity, price)
    return market


def timed(call: Callable[[], bytes]) -> tuple[int, bytes]:
    start = time.perf_counter_ns()
    digest = call()
    return time.perf_counter_ns() - start, digest


def reference(market: Market) -> bytes:
    return snapshot_digest(market.snapshot())


def run(args: argparse.Namespace) -> tuple[dict[str, list[int]], int, int]:
    """Time every situation ``--repeat`` times; return samples (ns), trades, resting."""
    snapshot = build(args.seed, args.orders, args.levels, args.quiet_books).snapshot()
    rng = random.Random(args.seed + 1)
    samples: dict[str, list[int]] = {s: [] for s in SITUATIONS}
    trades = resting = 0
    first_id = 10**9
    for rep in range(args.repeat + 1):  # repetition 0 warms up
        market = Market.restore(snapshot)
        news = [
            random_order(rng, first_id + i, args.levels // 2, cross=rng.random() < 0.1)
            for i in range(args.new)
        ]
        cold, digest = timed(market.state_digest)
        assert digest == reference(market)
        unchanged, digest = timed(market.state_digest)
        assert digest == reference(market)
        for order_id, owner, side, quantity, price in news:
            events = market.place(INSTRUMENT, order_id, owner, side, quantity, price)
            trades += sum(type(e).__name__ == "Trade" for e in events) if rep else 0
        new, digest = timed(market.state_digest)
        ref, want = timed(partial(reference, market))
        assert digest == want
        if rep:
            for name, ns in zip(SITUATIONS, (cold, unchanged, new, ref), strict=True):
                samples[name].append(ns)
            resting = len(market)
    return samples, trades, resting


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--orders", type=int, default=5_000, help="resting orders in the book")
    parser.add_argument("--levels", type=int, default=80, help="price levels, both sides")
    parser.add_argument("--new", type=int, default=100, help="orders placed before 'new'")
    parser.add_argument("--quiet-books", type=int, default=0, help="other books, 40 orders each")
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--write", action="store_true", help="write bench/results/digest-*.txt")
    args = parser.parse_args(argv)

    out = ["p2pex state digest benchmark", *describe(("orderbook", "bench/bench_digest.py"))]
    out.append(
        f"command: python -m bench.bench_digest --seed {args.seed} --orders {args.orders} "
        f"--levels {args.levels} --new {args.new} --quiet-books {args.quiet_books} "
        f"--repeat {args.repeat}"
    )
    print("\n".join(out), flush=True)
    samples, trades, resting = run(args)
    out.append(
        f"busy book: {args.orders} resting orders on {args.levels} levels, plus "
        f"{args.quiet_books} quiet books of 40; 'new' adds {args.new} orders to the busy book "
        f"({trades / args.repeat:.1f} trades each time, {resting} resting in all after)"
    )
    out.append(f"state_digest() per call, us ({args.repeat} repetitions):")
    out.append(f"   {'situation':<10} {'min':>10} {'median':>10} {'max':>10}")
    for name in SITUATIONS:
        ns = sorted(samples[name])
        out.append(
            f"   {name:<10} {ns[0] / 1000:>10.1f} {ns[len(ns) // 2] / 1000:>10.1f} "
            f"{ns[-1] / 1000:>10.1f}"
        )
    out.append(f"load average at end: {load_average()}")
    print("\n".join(out[-(len(SITUATIONS) + 4) :]))
    if args.write:
        suffix = f"-books{args.quiet_books + 1}" if args.quiet_books else ""
        suffix += f"-orders{args.orders}" if args.orders != 5_000 else ""
        write_results("digest", out, suffix)


if __name__ == "__main__":
    main()
