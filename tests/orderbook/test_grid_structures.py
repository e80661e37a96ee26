"""Tests of the structures that keep modes 3 and 4 fast, against recomputation from scratch.

- ``orderbook.gridpaths``: every lane is the reference path split by
  direction; one shared ``FeederPaths`` per feeder.
- ``GridState.up_limit`` / ``down_limit`` (mode 4): after any mix of trades,
  held trades, approvals and refusals, the kept limits equal a recomputation
  and ``room(x, d)`` equals the headroom recomputed from every trade.
- Mode 3's search (``GridState.scan``, ``crosses_net``, ``take_net``): the
  scan order is sorted by charge; with stale heap entries (cancels, fills,
  amends) ``crosses_net`` never misses a resting order that nets within the
  limit, and the first match is the scan-everything best (net price, seq).
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from orderbook import (
    Grid,
    GridMode,
    GridTrade,
    Instrument,
    Market,
    MarketConfig,
    Product,
    Side,
    TimeInForce,
)
from orderbook.gridmatch import crosses_net
from orderbook.gridpaths import FeederPaths, feeder_paths
from orderbook.gridstate import GridState
from tests.orderbook.grid_reference import path as ref_path

N = 6
E = Instrument(Product.ELECTRICITY, 0)
CONFIG = MarketConfig(price_step=1, min_price=1, max_price=100, max_quantity=1000)


@st.composite
def trees(draw, n=N):
    """A random rooted tree on ``n`` buses as a parent tuple (bus 0 is not always the root)."""
    order = draw(st.permutations(range(n)))
    parent = [-1] * n
    for i in range(1, n):
        parent[order[i]] = order[draw(st.integers(0, i - 1))]
    return tuple(parent)


def grid_on(parent, capacity=None, charges=None, buses=()):
    n = len(parent)
    capacity = capacity if capacity is not None else (0,) * n
    charges = charges if charges is not None else tuple((0,) * n for _ in range(n))
    return Grid(
        n,
        tuple(sorted(buses)),
        charges,
        charges,
        parent=parent,
        capacity=tuple(0 if p < 0 else c for p, c in zip(parent, capacity, strict=True)),
    )


# ------------------------------------------------------------------ gridpaths


@given(trees())
def test_lanes_are_the_reference_paths_split_by_direction(parent):
    paths = FeederPaths(parent)
    grid = grid_on(parent)
    for s in range(N):
        for b in range(N):
            want = ref_path(grid, s, b)
            assert list(paths.path(s, b)) == want
            lane = paths.lane((s, b))
            assert lane.ups == tuple(x for x, d in want if d > 0)
            assert lane.downs == tuple(x for x, d in want if d < 0)
            assert paths.lane((s, b)) is lane  # cached
            assert len(paths.row(True, b)) == len(paths.row(False, s)) == N


def test_feeder_paths_is_shared_per_feeder():
    a = feeder_paths((-1, 0, 1))
    assert feeder_paths(tuple(range(-1, 2))) is a  # an equal tuple: the same cache
    assert feeder_paths((-1, 0, 0)) is not a
    state = GridState(GridMode.LINE_VALIDATION, grid_on((-1, 0, 1), (0, 5, 5)))
    assert state.feeder is a
    row = state.lane_row(True, 2)  # a buyer at bus 2: lanes by seller bus
    assert len(row) == 3 and a.row(True, 2) is row and a.row(False, 2) is not row
    # Entries are filled on use (other books on this feeder may have filled them).
    assert all(lane is None or lane == a.lane((s, 2)) for s, lane in enumerate(row))


# ------------------------------------------------------ mode 4: line limits

ops = st.lists(
    st.one_of(
        st.tuples(
            st.just("trade"), st.integers(0, N - 1), st.integers(0, N - 1), st.integers(1, 50)
        ),
        st.tuples(
            st.just("hold"), st.integers(0, N - 1), st.integers(0, N - 1), st.integers(1, 50)
        ),
        st.tuples(st.just("decide"), st.integers(0, 10), st.booleans(), st.just(0)),
    ),
    max_size=30,
)


def ref_room(grid, base, trades, pending, x, d):
    """Headroom of line x in direction d from every trade: pending ones only where they load it."""
    worst = base[x]
    for s, b, q in trades:
        worst += sum(dd * q for line, dd in ref_path(grid, s, b) if line == x)
    for s, b, q in pending.values():
        worst += sum(dd * q for line, dd in ref_path(grid, s, b) if line == x and dd == d)
    return grid.capacity[x] - d * worst


@given(trees(), st.lists(st.integers(0, 200), min_size=N, max_size=N), ops)
def test_line_limits_follow_trades_holds_and_decisions(parent, capacity, steps):
    grid = grid_on(parent, tuple(capacity))
    state = GridState(GridMode.LINE_VALIDATION, grid)
    base = [0] * N
    trades: list[tuple[int, int, int]] = []
    for kind, a, b, q in steps:
        if kind == "trade":
            state.move(a, b, q)
            trades.append((a, b, q))
        elif kind == "hold":
            state.move(a, b, q)
            state.hold(a, b, q)
        elif state.pending:
            no = sorted(state.pending)[a % len(state.pending)]
            if b:
                trades.append(state.pending[no])
                state.approve(no)
            else:
                state.release(no)
        fresh = GridState(GridMode.LINE_VALIDATION, grid, 0, state.flow, 0, dict(state.pending))
        assert (state.up_limit, state.down_limit) == (fresh.up_limit, fresh.down_limit)
        for x in range(N):
            if parent[x] < 0:
                continue
            for d in (1, -1):
                want = ref_room(grid, base, trades, state.pending, x, d)
                assert state.room(x, d) == want


# ------------------------------------------------------- mode 3: the search


@given(
    trees(), st.lists(st.lists(st.integers(0, 9), min_size=N, max_size=N), min_size=N, max_size=N)
)
def test_scan_is_every_bus_by_charge(parent, rows):
    charges = tuple(tuple(r) for r in rows)
    state = GridState(GridMode.PRICE_SIGNALS, grid_on(parent, charges=charges))
    for b in range(N):
        for k in (0, 1):
            scan = state.scan(k, b)
            assert list(scan) == sorted(scan)
            assert sorted(s for _, s in scan) == list(range(N))
            for charge, s in scan:
                seller, buyer = (s, b) if k else (b, s)
                assert charge == 2 * charges[seller][buyer]  # both sides' charges


# Few buses, owners and prices, so that equal net prices at different buses
# (time priority across buses) and limits exactly at a net price are common.
M = 3
OWNERS = [f"o{i}" for i in range(4)]
actions = st.lists(
    st.one_of(
        st.tuples(st.just("ask"), st.sampled_from(OWNERS), st.integers(20, 23), st.integers(1, 9)),
        st.tuples(st.just("cancel"), st.integers(0, 99), st.just(0), st.just(0)),
        st.tuples(st.just("amend"), st.integers(0, 99), st.integers(20, 23), st.just(0)),
    ),
    max_size=30,
)


@settings(max_examples=300)
@given(
    trees(M),
    st.lists(st.lists(st.integers(0, 1), min_size=M, max_size=M), min_size=M, max_size=M),
    st.lists(st.integers(0, M - 1), min_size=len(OWNERS), max_size=len(OWNERS)),
    actions,
    st.integers(0, M - 1),
    st.integers(19, 26),
)
def test_net_search_finds_the_best_resting_order(parent, rows, owner_bus, steps, taker_bus, limit):
    charges = tuple(tuple(r) for r in rows)
    buses = [*zip(OWNERS, owner_bus, strict=True), ("taker", taker_bus)]
    market = Market(CONFIG)
    market.open_instrument(E)
    market.set_mode(E, GridMode.PRICE_SIGNALS, grid_on(parent, charges=charges, buses=buses))
    next_id = 0
    for kind, a, price, qty in steps:  # asks only, with cancels and amends: stale heap entries
        live = [o.order_id for o in market.orders(E)]
        if kind == "ask":
            market.place(E, next_id, a, Side.ASK, qty * 10, price)
            next_id += 1
        elif kind == "cancel" and live:
            market.cancel(live[a % len(live)])
        elif kind == "amend" and live:
            market.amend(live[a % len(live)], None, price)
    book = market.book(E)
    state = book.grid
    assert state is not None
    bus = dict(buses)
    total = state.total
    # Scan everything: (net price for the buyer, seq) of every resting ask.
    seq = {o.order_id: _seq(book, o) for o in market.orders(E)}
    ranked = sorted(
        (o.price + total[bus[o.owner]][taker_bus], seq[o.order_id]) for o in market.orders(E)
    )
    reachable = [r for r in ranked if r[0] <= limit]
    says = crosses_net(state, book.asks, 1, taker_bus, limit)
    assert says or not reachable  # never misses a crossing order
    events = market.place(E, 10_000, "taker", Side.BID, 1, limit, tif=TimeInForce.IOC)
    trades = [e for e in events if type(e) is GridTrade]
    if not reachable:
        assert not trades
    else:
        t = trades[0]
        assert (t.price + t.buyer_charge, seq[t.maker_order_id]) == reachable[0]
    market._check()


def _seq(book, view):
    """The seq of the resting order behind an order view."""
    level = book.asks.levels[view.price]
    order = level.head
    while order.order_id != view.order_id:
        order = order.next
    return order.seq
