"""Unit tests: instruments and gate closure, queries, snapshots and digests, invariants."""

from __future__ import annotations

import json

import pytest

from orderbook import (
    Accepted,
    AdvanceClock,
    AmendOrder,
    CancelOrder,
    CancelReason,
    CloseInstrument,
    ConfigError,
    Depth,
    DepthLevel,
    Expired,
    Instrument,
    InstrumentClosed,
    InstrumentOpened,
    InvariantError,
    Market,
    MarketConfig,
    OpenInstrument,
    OrderView,
    PlaceOrder,
    Product,
    Rejected,
    RejectReason,
    SnapshotError,
    STPMode,
    TimeInForce,
    UnknownInstrument,
)
from tests.orderbook.conftest import ASK, BID, CONFIG, E, H

R = RejectReason


def test_open_and_close_lifecycle(market):
    slot2 = Instrument(Product.ELECTRICITY, 2)
    assert market.execute(OpenInstrument(slot2)) == [InstrumentOpened(slot2)]
    assert market.execute(OpenInstrument(slot2)) == [Rejected(None, R.INSTRUMENT_EXISTS)]
    market.place(slot2, 1, "a", BID, 10, 50)
    market.place(slot2, 2, "b", BID, 10, 55)
    market.place(slot2, 3, "c", ASK, 10, 60)
    market.place(slot2, 4, "d", BID, 10, 55, TimeInForce.GTD, 9)
    closed = CancelReason.INSTRUMENT_CLOSED
    assert market.execute(CloseInstrument(slot2)) == [
        Expired(slot2, 2, "b", 10, closed),
        Expired(slot2, 4, "d", 10, closed),
        Expired(slot2, 1, "a", 10, closed),
        Expired(slot2, 3, "c", 10, closed),
        InstrumentClosed(slot2),
    ]
    assert len(market) == 0
    assert not market.is_open(slot2)
    assert market.is_open(E)
    assert market.place(slot2, 5, "a", BID, 10, 50) == [Rejected(5, R.INSTRUMENT_CLOSED)]
    assert market.close_instrument(slot2) == [Rejected(None, R.INSTRUMENT_CLOSED)]
    assert market.open_instrument(slot2) == [Rejected(None, R.INSTRUMENT_CLOSED)]
    assert market.cancel(1) == [Rejected(1, R.UNKNOWN_ORDER)]
    assert market.advance_clock(9) == []  # the GTD order left with the book
    assert market.close_instrument(Instrument(Product.HEAT, 9)) == [
        Rejected(None, R.UNKNOWN_INSTRUMENT)
    ]
    assert market.instruments() == (E, slot2, H)


def test_queries(market):
    market.place(E, 1, "a", BID, 10, 50)
    market.place(E, 2, "b", BID, 20, 50)
    market.place(E, 3, "c", BID, 5, 45)
    market.place(E, 4, "d", ASK, 7, 60, TimeInForce.GTD, 99, post_only=True)
    market.place(E, 5, "e", ASK, 8, 65, stp=STPMode.DECREMENT)
    assert market.depth(E) == Depth(
        (DepthLevel(50, 30, 2), DepthLevel(45, 5, 1)),
        (DepthLevel(60, 7, 1), DepthLevel(65, 8, 1)),
    )
    assert market.depth(E, 1) == Depth((DepthLevel(50, 30, 2),), (DepthLevel(60, 7, 1),))
    assert market.depth(E, 0) == Depth((), ())
    assert [o.order_id for o in market.orders(E)] == [1, 2, 3, 4, 5]
    assert market.order(4) == OrderView(E, 4, "d", ASK, 60, 7, 99, True, STPMode.CANCEL_NEWEST)
    assert market.order(5).stp is STPMode.DECREMENT
    assert market.order(6) is None
    assert market.book(E).best_bid() == 50
    with pytest.raises(UnknownInstrument):
        market.best_bid(Instrument(Product.HEAT, 5))
    with pytest.raises(UnknownInstrument):
        market.depth(Instrument(Product.HEAT, 5))


def test_execute_runs_every_command(market):
    assert market.execute(PlaceOrder(E, 1, "a", BID, 10, 50))[0] == Accepted(E, 1, "a", BID, 50, 10)
    assert market.execute(AmendOrder(1, "a", quantity=5))[0].priority_kept
    assert market.execute(PlaceOrder(E, 2, "a", BID, 10, 50, TimeInForce.GTD, 3))
    assert [type(e) for e in market.execute(AdvanceClock(3))] == [Expired]
    assert market.execute(CancelOrder(1, "a"))[0].reason is CancelReason.REQUESTED
    assert market.execute(CloseInstrument(E)) == [InstrumentClosed(E)]


def test_events_compare_by_type_as_well_as_value():
    assert InstrumentOpened(E) != InstrumentClosed(E)
    assert InstrumentOpened(E) == InstrumentOpened(E)
    assert hash(InstrumentOpened(E)) == hash(InstrumentOpened(E))
    assert Rejected(1, R.NOT_OWNER) != (1, R.NOT_OWNER)
    assert len({InstrumentOpened(E), InstrumentClosed(E)}) == 2


@pytest.mark.parametrize(
    "kwargs",
    [
        {"price_step": 0},
        {"min_price": -1},
        {"max_price": 1.5},
        {"max_quantity": 2**61},
        {"min_price": 10, "max_price": 5},
        {"default_stp": "decrement"},
    ],
)
def test_bad_config_raises(kwargs):
    with pytest.raises(ConfigError):
        MarketConfig(**kwargs)


# -------------------------------------------------------------- snapshots


def populated() -> Market:
    m = Market(CONFIG, now=2)
    m.open_instrument(E)
    m.open_instrument(H)
    m.place(E, 1, "a", BID, 10, 50)
    m.place(E, 2, "b", BID, 20, 50, TimeInForce.GTD, 9, post_only=True)
    m.place(E, 3, "c", ASK, 5, 60, stp=STPMode.CANCEL_BOTH)
    m.place(H, 4, "a", ASK, 5, 70)
    m.close_instrument(H)
    return m


def test_snapshot_round_trip():
    m = populated()
    data = m.snapshot()
    restored = Market.restore(data)
    restored._check()
    assert restored.snapshot() == data
    assert restored.state_digest() == m.state_digest()
    assert len(m.state_digest()) == 32
    assert restored.orders(E) == m.orders(E)
    assert not restored.is_open(H)
    assert restored.clock == 2
    assert restored.config == m.config
    # Both go on identically, including GTD expiry.
    for market in (m, restored):
        assert market.place(E, 5, "d", ASK, 25, 50)[1].maker_order_id == 1
        assert market.advance_clock(9) == [Expired(E, 2, "b", 5, CancelReason.EXPIRED)]
    assert restored.state_digest() == m.state_digest()


def test_snapshot_is_canonical_json():
    data = populated().snapshot()
    value = json.loads(data)
    assert value["format"] == "p2pex-orderbook/1"
    assert value["books"][0] == [
        "electricity",
        1,
        False,
        [
            [1, "a", 50, 10, None, "cancel_newest", False],
            [2, "b", 50, 20, 9, "cancel_newest", True],
        ],
        [[3, "c", 60, 5, None, "cancel_both", False]],
    ]
    assert json.dumps(value, sort_keys=True, separators=(",", ":")).encode() == data


def test_digest_tracks_queue_order_and_clock():
    a = Market(CONFIG)
    b = Market(CONFIG)
    for m in (a, b):
        m.open_instrument(E)
    a.place(E, 1, "a", BID, 10, 50)
    a.place(E, 2, "a", BID, 10, 50)
    b.place(E, 2, "a", BID, 10, 50)
    b.place(E, 1, "a", BID, 10, 50)
    assert a.state_digest() != b.state_digest()
    b.cancel(2)
    b.place(E, 2, "a", BID, 10, 50)
    assert a.state_digest() == b.state_digest()
    a.advance_clock(1)
    assert a.state_digest() != b.state_digest()


def mutate(data: bytes, edit) -> bytes:
    value = json.loads(data)
    edit(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def _set(path, item):
    def edit(value):
        target = value
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = item

    return edit


def _worse_bid_first(value):
    bids = value["books"][0][3]
    bids[1][2] = 45  # order 2 now at 45: listing it before order 1 at 50 is out of priority
    bids.reverse()


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("not json", lambda d: b"{" + d),
        ("not bytes", lambda d: d.decode()),
        ("spaces", lambda d: d.replace(b",", b", ", 1)),
        ("format", lambda d: mutate(d, _set(["format"], "v0"))),
        ("extra key", lambda d: mutate(d, _set(["x"], 1))),
        ("float clock", lambda d: mutate(d, _set(["clock"], 2.0))),
        ("bad config", lambda d: mutate(d, _set(["config", 0], 0))),
        ("bad stp", lambda d: mutate(d, _set(["books", 0, 3, 0, 5], "nope"))),
        ("bad product", lambda d: mutate(d, _set(["books", 0, 0], "gas"))),
        ("off tick", lambda d: mutate(d, _set(["books", 0, 3, 0, 2], 51))),
        ("zero qty", lambda d: mutate(d, _set(["books", 0, 3, 0, 3], 0))),
        ("duplicate id", lambda d: mutate(d, _set(["books", 0, 3, 1, 0], 1))),
        ("crossed", lambda d: mutate(d, _set(["books", 0, 4, 0, 2], 50))),
        ("expired", lambda d: mutate(d, _set(["books", 0, 3, 1, 4], 2))),
        ("price order", lambda d: mutate(d, _worse_bid_first)),
        ("bid on ask side", lambda d: mutate(d, _set(["books", 0, 4, 0, 2], 40))),
        ("closed with orders", lambda d: mutate(d, _set(["books", 0, 2], True))),
        ("short order", lambda d: mutate(d, _set(["books", 0, 3, 0], [1, "a"]))),
        ("unsorted books", lambda d: mutate(d, lambda v: v["books"].reverse())),
        ("bool id", lambda d: mutate(d, _set(["books", 0, 3, 0, 0], True))),
    ],
)
def test_restore_rejects_bad_snapshots(name, make):
    with pytest.raises(SnapshotError):
        Market.restore(make(populated().snapshot()))


def test_book_snapshot():
    m = populated()
    assert json.loads(m.book_snapshot(E))[0:3] == ["electricity", 1, False]
    assert m.book_snapshot(E) != m.book_snapshot(H)


# -------------------------------------------------------------- invariants


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda m: setattr(m.book(E).bids.levels[-50], "volume", 999),
        lambda m: setattr(m.book(E).bids.levels[-50], "count", 5),
        lambda m: setattr(m.book(E).bids, "best", -45),
        lambda m: m._index.pop(1),
        lambda m: setattr(m._index[2], "quantity", 0),
        lambda m: setattr(m._index[3], "price", 65),
        lambda m: setattr(m.book(E).asks.levels[60], "price", 40),
        lambda m: m.book(E).bids.heap.clear(),
        lambda m: setattr(m.book(E), "closed", True),
        lambda m: m._expiries.clear(),
        lambda m: setattr(m, "_clock", 100),
    ],
)
def test_check_detects_corruption(corrupt):
    m = populated()
    m._check()
    corrupt(m)
    with pytest.raises(InvariantError):
        m._check()


def test_restore_book_into_another_market():
    source = populated()
    target = Market(CONFIG, now=2)
    target.open_instrument(E)
    target.place(E, 7, "z", ASK, 5, 90, TimeInForce.GTD, 4)
    target.restore_book(source.book_snapshot(E))
    target._check()
    assert target.orders(E) == source.orders(E)
    assert target.order(7) is None
    assert target.advance_clock(4) == []  # the replaced order's expiry went with it
    assert [e.order_id for e in target.advance_clock(9)] == [2]
    target.restore_book(source.book_snapshot(H))  # a new, closed book
    assert not target.is_open(H)
    target._check()


def test_restore_book_errors_leave_the_market_unchanged():
    source = populated()
    target = Market(CONFIG, now=2)
    target.open_instrument(H)
    target.open_instrument(Instrument(Product.HEAT, 2))
    target.place(Instrument(Product.HEAT, 2), 1, "z", ASK, 5, 90)  # id 1 also rests in source E
    before = target.snapshot()
    with pytest.raises(SnapshotError, match="other books"):
        target.restore_book(source.book_snapshot(E))
    late = Market(CONFIG, now=20)
    with pytest.raises(SnapshotError):  # the GTD order would be past its expiry
        late.restore_book(source.book_snapshot(E))
    with pytest.raises(SnapshotError):
        target.restore_book(b"[]")
    with pytest.raises(SnapshotError):
        target.restore_book(source.book_snapshot(E).replace(b",", b", ", 1))
    assert target.snapshot() == before
    target._check()


def test_an_equal_plain_tuple_names_the_same_book(market):
    events = market.place(("electricity", 1), 1, "a", BID, 10, 50)
    assert type(events[0].instrument) is Instrument
    assert market.order(1).instrument == E
