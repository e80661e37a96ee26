"""pytest-benchmark micro-benchmarks of the matching core's single operations.

Run from the repository root (never collected by a plain ``pytest``)::

    pytest bench/micro_orderbook.py --benchmark-enable

Each benchmark starts from a book of ~1,000 resting orders on 50 levels per
side and times one operation that leaves the book in the same shape:

- add-rest: a GTC bid that joins an existing level;
- add-trade: a GTC bid that trades 1 Wh with a large resting ask (the maker
  stays, so every call is alike), via the fast API and via ``execute``;
- cancel: a resting order in the middle of a 20,000-order queue;
- amend: a quantity reduction (keeps priority) and a reprice (loses it).
"""

from __future__ import annotations

from itertools import count

import pytest

from orderbook import Instrument, Market, MarketConfig, PlaceOrder, Product, Side

E = Instrument(Product.ELECTRICITY, 1)
BID, ASK = Side.BID, Side.ASK


@pytest.fixture
def market() -> Market:
    m = Market(MarketConfig(max_quantity=10**12))
    m.open_instrument(E)
    ids = count(10**9)
    for i in range(500):
        m.place(E, next(ids), f"o{i % 50}", BID, 1000, 10_000 - i % 50)
        m.place(E, next(ids), f"o{i % 50}", ASK, 1000, 10_001 + i % 50)
    return m


def test_add_rest(benchmark, market):
    ids = count()
    place = market.place

    def add() -> None:
        place(E, next(ids), "alice", BID, 1000, 9_990)

    benchmark(add)


def test_add_trade(benchmark, market):
    market.place(E, 1, "whale", ASK, 10**11, 10_001)  # behind the level's 10 orders
    market.place(E, 2, "whale", ASK, 10**11, 10_000)  # a new best level: every taker hits it
    ids = count(100)
    place = market.place

    def take() -> None:
        place(E, next(ids), "alice", BID, 1, 10_000)

    benchmark(take)
    assert market.order(2) is not None


def test_add_trade_execute(benchmark, market):
    market.place(E, 2, "whale", ASK, 10**11, 10_000)
    ids = count(100)
    execute = market.execute

    def take() -> None:
        execute(PlaceOrder(E, next(ids), "alice", BID, 1, 10_000))

    benchmark(take)


def test_cancel_in_deep_queue(benchmark, market):
    n = 20_000
    for i in range(n):
        market.place(E, i, "bob", BID, 10, 9_990)
    # Cancel from the middle outwards: never the head or the tail of the queue.
    order = iter([*range(n // 2, n - 1), *range(n // 2 - 1, 0, -1)])
    cancel = market.cancel

    def cancel_one() -> None:
        cancel(next(order))

    benchmark.pedantic(cancel_one, rounds=n - 3, iterations=1, warmup_rounds=0)


def test_amend_reduce_keeps_priority(benchmark, market):
    market.place(E, 1, "alice", BID, 10**11, 9_990)
    quantities = count(10**11 - 1, -1)
    amend = market.amend

    def reduce() -> None:
        amend(1, "alice", None, next(quantities))

    benchmark(reduce)


def test_amend_reprice(benchmark, market):
    market.place(E, 1, "alice", BID, 1000, 9_990)
    prices = iter(range(10**9))
    amend = market.amend

    def reprice() -> None:
        amend(1, "alice", 9_980 + next(prices) % 2 * 5, None)

    benchmark(reprice)
