"""Where the steady stream's time goes: a breakdown to go with ``bench_orderbook``.

Run from the repository root::

    python -m bench.orderbook_costs [--seed 1] [--ops 200000] [--repeat 7]

Prints, for the seeded steady stream of ``bench_orderbook``:

1. each operation class's share of the matching time (sum of per-call
   perf_counter_ns, timer included) and its mean;
2. the driver's own cost: the same ``for func, args in calls: func(*args)``
   loop calling methods with the market's signatures that do nothing (this
   part of "throughput over the whole stream" no order book can remove);
3. what a typed event costs over a plain tuple (``Accepted`` built the way
   the hot path builds it, ``tuple.__new__(Accepted, (...))``, versus the
   same fields in a bare tuple), since every command returns at least one;
4. the resulting throughput of the matching core alone (stream time minus
   driver time).

Seeded and deterministic apart from the timings; min / median / max over
``--repeat`` passes. Nothing is written to bench/results (the figures go into
docs/orderbook.md with the commit they were measured at).
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
import timeit
from collections.abc import Callable

from bench.bench_orderbook import CLASSES, latencies, prepared, steady_stream
from orderbook import Accepted, Instrument, Product, Side


class _NoMarket:
    """The market's fast-path signatures, doing nothing: the driver's own cost."""

    __slots__ = ()

    def place(
        self,
        instrument: object,
        order_id: object,
        owner: object,
        side: object,
        quantity: object,
        price: object = None,
        tif: object = None,
        expires_at: object = None,
        post_only: object = False,
        stp: object = None,
        protection_price: object = None,
    ) -> list[object]:
        return []

    def cancel(self, order_id: object, owner: object = None) -> list[object]:
        return []

    def amend(
        self, order_id: object, owner: object = None, price: object = None, quantity: object = None
    ) -> list[object]:
        return []


def _pass_ns(calls: list[tuple[Callable[..., object], tuple[object, ...]]]) -> int:
    gc.collect()
    start = time.thread_time_ns()
    for func, args in calls:
        func(*args)
    return time.thread_time_ns() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--ops", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args(argv)

    b = steady_stream(args.seed, args.ops)
    n = len(b.ops)

    by_class = latencies(b, gc_on=True)
    total = sum(sum(v) for v in by_class.values())
    print(f"steady stream, seed {args.seed}: {n} operations")
    print("1. share of the matching time by operation (perf_counter_ns per call, timer included)")
    for cls in CLASSES:
        values = by_class[cls]
        if values:
            print(
                f"   {cls:<10} n={len(values):>7,}  mean {statistics.fmean(values):7.0f} ns"
                f"  share {sum(values) / total:6.1%}"
            )

    stream, driver = [], []
    for _ in range(args.repeat):
        market = prepared(b)
        stream.append(_pass_ns([(getattr(market, m), a) for _, m, a in b.ops]) / n)
        nothing = _NoMarket()
        driver.append(_pass_ns([(getattr(nothing, m), a) for _, m, a in b.ops]) / n)
    s_med, d_med = statistics.median(stream), statistics.median(driver)
    print(
        f"2. whole stream: {s_med:.0f} ns/op (min {min(stream):.0f}, max {max(stream):.0f}) "
        f"= {1e9 / s_med:,.0f} ops/s; the driver loop and calls alone: {d_med:.0f} ns/op "
        f"({d_med / s_med:.0%} of the stream)"
    )

    instrument = Instrument(Product.ELECTRICITY, 1)
    env = {"new": tuple.__new__, "Accepted": Accepted, "i": instrument, "s": Side.BID}
    number = 1_000_000
    typed = min(
        timeit.repeat(
            "[new(Accepted, (i, 5, 'a', s, 100, 200))]", globals=env, number=number, repeat=5
        )
    )
    plain = min(timeit.repeat("[(i, 5, 'a', s, 100, 200)]", globals=env, number=number, repeat=5))
    print(
        f"3. one event in its list: typed {typed / number * 1e9:.0f} ns, plain tuple "
        f"{plain / number * 1e9:.0f} ns: a typed event costs {(typed - plain) / number * 1e9:.0f} "
        "ns more"
    )
    core = s_med - d_med
    print(f"4. the matching core alone: {core:.0f} ns/op = {1e9 / core:,.0f} ops/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
