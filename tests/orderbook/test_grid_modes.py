"""Unit tests of the operation modes on small hand-made feeders (orderbook.grid, gridmatch)."""

from __future__ import annotations

import pytest

from orderbook import (
    DecideTrade,
    Grid,
    GridError,
    GridMode,
    GridTrade,
    InstrumentClosed,
    LineBlocked,
    Market,
    ModeSet,
    PlaceOrder,
    Preferences,
    Rejected,
    RejectReason,
    SetMode,
    SnapshotError,
    Trade,
    TradeDecided,
    TradePending,
)
from orderbook.digest import snapshot_digest
from tests.orderbook.conftest import ASK, BID, CONFIG, Checked, E, H

R = RejectReason
# A line feeder 0 - 1 - 2 (0 is the root); a, b, c at buses 0, 1, 2.
BUSES = (("a", 0), ("b", 1), ("c", 2), ("d", 2))
CHARGE = ((0, 5, 10), (5, 0, 5), (10, 5, 0))  # alpha * R_ij, each side
FEEDER = Grid(
    3,
    BUSES,
    CHARGE,
    CHARGE,
    parent=(-1, 0, 1),
    capacity=(0, 100, 30),
    distance=((0, 1, 2), (1, 0, 1), (2, 1, 0)),
    technologies=(("a", "grid"), ("b", "pv"), ("c", "battery")),
)


@pytest.fixture
def market() -> Checked:
    m = Checked(CONFIG)
    m.open_instrument(E)
    m.open_instrument(H)
    return m


def grid_trades(events):
    return [e for e in events if type(e) is GridTrade]


def same_digest(m: Market) -> None:
    assert m.state_digest() == snapshot_digest(m.snapshot())
    assert Market.restore(m.snapshot()).state_digest() == m.state_digest()


def test_mode3_buyer_meets_the_seller_cheapest_through_the_grid(market):
    assert market.set_mode(E, GridMode.PRICE_SIGNALS, FEEDER) == [ModeSet(E, 3)]
    market.place(E, 1, "a", ASK, 50, 100)  # cheapest on the screen, 2 lines away
    market.place(E, 2, "d", ASK, 50, 105)  # at the buyer's bus: no charge
    events = market.place(E, 3, "c", BID, 60, 200)
    t1, t2 = grid_trades(events)
    # d: 105 all in; a: 100 + 10 + 10 = 120 all in.
    assert (t1.maker_order_id, t1.price, t1.seller_charge, t1.buyer_charge) == (2, 105, 0, 0)
    assert (t2.maker_order_id, t2.price, t2.seller_charge, t2.buyer_charge) == (1, 110, 10, 10)
    assert t2.quantity == 10
    # The maker gets its limit net of its charge; the buyer pays 120 <= 200 all in.
    assert t2.price - t2.seller_charge == 100
    same_digest(market)


def test_mode3_limits_hold_net_of_each_sides_charge(market):
    market.set_mode(E, GridMode.PRICE_SIGNALS, FEEDER)
    market.place(E, 1, "a", ASK, 50, 100)
    # 115 < 100 + 10 + 10: no match, and both rest crossed in gross prices.
    events = market.place(E, 2, "c", BID, 50, 115)
    assert not grid_trades(events)
    assert market.best_bid(E) == 115 and market.best_ask(E) == 100
    # A seller at c's bus takes the bid: 115 net for it, no charge.
    (t,) = grid_trades(market.place(E, 3, "d", ASK, 20, 110))
    assert (t.price, t.seller_charge, t.buyer_charge, t.maker_order_id) == (115, 0, 0, 2)
    # Mode 2 is refused while the book rests crossed.
    assert market.set_mode(E, GridMode.BIDS_OFFERS) == [Rejected(None, R.BOOK_CROSSED)]


def test_mode3_equal_net_prices_go_by_time(market):
    market.set_mode(E, GridMode.PRICE_SIGNALS, FEEDER)
    market.place(E, 1, "b", ASK, 10, 110)  # 110 + 5 + 5 = 120 for c
    market.place(E, 2, "d", ASK, 10, 120)  # 120 at c's bus
    market.place(E, 3, "a", ASK, 10, 100)  # 100 + 10 + 10 = 120, latest
    events = market.place(E, 4, "c", BID, 30, 120)
    assert [t.maker_order_id for t in grid_trades(events)] == [1, 2, 3]


def test_mode4_cuts_to_headroom_then_blocks(market):
    market.set_mode(E, GridMode.LINE_VALIDATION, FEEDER)
    market.place(E, 1, "a", ASK, 50, 100)
    market.place(E, 2, "b", ASK, 50, 105)
    events = market.place(E, 3, "c", BID, 60, 200)
    (t1,) = grid_trades(events)
    assert (t1.maker_order_id, t1.quantity, t1.line) == (1, 30, 2)  # line 2 holds 30
    assert t1.price == 100 and t1.seller_charge == t1.buyer_charge == 0
    assert events[2] == LineBlocked(E, 2, 3, 2)  # b -> c also crosses line 2
    assert market.order(3).quantity == 30  # the rest rests, crossed
    assert market.book(E).grid.flow == [0, -30, -30]
    # A trade the other way relieves the lines.
    market.cancel(3)
    market.place(E, 4, "d", ASK, 10, 90)
    events = market.place(E, 5, "a", BID, 10, 90)
    assert grid_trades(events)[0].line is None
    assert market.book(E).grid.flow == [0, -20, -20]
    same_digest(market)


def test_mode4_same_bus_has_no_line(market):
    market.set_mode(E, GridMode.LINE_VALIDATION, FEEDER)
    market.place(E, 1, "c", ASK, 500, 100)
    (t,) = grid_trades(market.place(E, 2, "d", BID, 500, 100))
    assert t.quantity == 500 and t.line is None


def test_mode4_reset_keeps_flows_and_refuses_lower_capacity(market):
    market.set_mode(E, GridMode.LINE_VALIDATION, FEEDER)
    market.place(E, 1, "a", ASK, 20, 100)
    market.place(E, 2, "c", BID, 20, 100)
    smaller = Grid(3, BUSES, parent=(-1, 0, 1), capacity=(0, 100, 10))
    assert market.set_mode(E, GridMode.LINE_VALIDATION, smaller) == [Rejected(None, R.INVALID_GRID)]
    larger = Grid(3, BUSES, parent=(-1, 0, 1), capacity=(0, 100, 40), base_flow=(0, 5, 5))
    assert market.set_mode(E, GridMode.LINE_VALIDATION, larger) == [ModeSet(E, 4)]
    assert market.book(E).grid.flow == [0, -15, -15]


def test_mode1_preferences_are_never_violated(market):
    market.set_mode(E, GridMode.PREFERENCES, FEEDER)
    market.place(E, 1, "a", ASK, 10, 90)  # grid, cheapest
    market.place(E, 2, "c", ASK, 10, 95)  # battery
    market.place(E, 3, "b", ASK, 10, 100)  # pv
    green = Preferences(technologies=frozenset({"pv"}))
    events = market.place_grid(E, 4, "d", BID, 30, 100, preferences=green)
    assert [t.maker_owner for t in grid_trades(events)] == ["b"]
    # The seller's own exclusion binds too; the preferred partner goes first.
    market.place_grid(E, 5, "a", ASK, 10, 80, preferences=Preferences(excluded=frozenset({"b"})))
    prefer = Preferences(preferred=frozenset({"c"}))
    events = market.place_grid(E, 6, "b", BID, 30, 100, preferences=prefer)
    assert [t.maker_order_id for t in grid_trades(events)] == [2, 1]
    near = Preferences(max_distance=0)
    assert not grid_trades(market.place_grid(E, 7, "c", BID, 10, 100, preferences=near))


def test_mode_commands_and_rejections(market):
    assert market.execute(SetMode(E, GridMode.PRICE_SIGNALS, FEEDER)) == [ModeSet(E, 3)]
    assert market.set_mode(E, 3, FEEDER) == [Rejected(None, R.INVALID_MODE)]  # type: ignore[arg-type]
    assert market.set_mode(E, GridMode.BIDS_OFFERS, FEEDER) == [Rejected(None, R.INVALID_GRID)]
    bare = Grid(3, BUSES)
    assert market.set_mode(E, GridMode.PRICE_SIGNALS, bare) == [Rejected(None, R.INVALID_GRID)]
    assert market.set_mode(E, GridMode.LINE_VALIDATION, bare) == [Rejected(None, R.INVALID_GRID)]
    assert market.place(E, 1, "zed", BID, 10, 100) == [Rejected(1, R.UNKNOWN_BUS)]
    prefs = Preferences(excluded=frozenset({"a"}))
    assert market.execute(PlaceOrder(E, 1, "a", BID, 10, 100, preferences=prefs)) == [
        Rejected(1, R.INVALID_PREFERENCES)
    ]
    assert market.place_grid(H, 1, "a", BID, 10, 100, preferences=prefs) == [
        Rejected(1, R.INVALID_PREFERENCES)
    ]
    market.set_mode(E, GridMode.BIDS_OFFERS)
    market.place(E, 2, "zed", BID, 10, 100)
    before = market.state_digest()
    assert market.set_mode(E, GridMode.PREFERENCES, FEEDER) == [Rejected(None, R.UNKNOWN_BUS)]
    assert market.state_digest() == before
    market.close_instrument(H)
    assert market.set_mode(H, GridMode.PREFERENCES, FEEDER) == [Rejected(None, R.INSTRUMENT_CLOSED)]


def test_back_to_mode2_is_todays_book_and_bytes(market):
    plain = Checked(CONFIG)
    plain.open_instrument(E)
    plain.open_instrument(H)
    for m in (market, plain):
        m.place(E, 1, "a", ASK, 10, 100)
        m.place(E, 2, "c", BID, 10, 90)
    market.set_mode(E, GridMode.LINE_VALIDATION, FEEDER)
    assert market.snapshot() != plain.snapshot()
    market.set_mode(E, GridMode.BIDS_OFFERS)
    assert market.snapshot() == plain.snapshot()
    assert market.state_digest() == plain.state_digest()
    # and it trades as a plain book again
    assert type(market.place(E, 3, "b", BID, 5, 100)[1]) is Trade


def test_grid_and_preferences_validation():
    with pytest.raises(GridError, match="one root"):
        Grid(2, (), parent=(-1, -1), capacity=(0, 0))
    with pytest.raises(GridError, match="never reaches the root"):
        Grid(3, (), parent=(-1, 2, 1), capacity=(0, 0, 0))
    with pytest.raises(GridError, match="sorted and unique"):
        Grid(2, (("b", 0), ("a", 1)))
    with pytest.raises(GridError, match=r"in \[0, 1\]"):
        Grid(2, (("a", 2),))
    with pytest.raises(GridError, match="given together"):
        Grid(2, (), seller_charge=((0, 0), (0, 0)))
    with pytest.raises(GridError, match=r"base_flow\[1\]"):
        Grid(2, (), parent=(-1, 0), capacity=(0, 5), base_flow=(0, 6))
    with pytest.raises(GridError, match="seller_charge"):
        Grid(2, (), seller_charge=((0, -1), (0, 0)), buyer_charge=((0, 0), (0, 0)))
    with pytest.raises(GridError, match="frozenset"):
        Preferences(excluded={"a"})  # type: ignore[arg-type]
    assert Grid.from_value(FEEDER.value()) == FEEDER
    p = Preferences(frozenset({"pv"}), frozenset({"b"}), frozenset(), 3)
    assert Preferences.from_value(p.value()) == p


def test_restore_rejects_inconsistent_grid_snapshots(market):
    market.set_mode(E, GridMode.PRICE_SIGNALS, FEEDER)
    market.place(E, 1, "a", ASK, 10, 100)
    data = market.snapshot()
    with pytest.raises(SnapshotError):
        Market.restore(data.replace(b'"grid":[["electricity",1,3,', b'"grid":[["electricity",1,2,'))
    with pytest.raises(SnapshotError):
        market.restore_book(market.book_snapshot(E))


def test_mode4_approval_pending_decided_and_refused_at_the_close(market):
    feeder = Grid(3, BUSES, parent=(-1, 0, 1), capacity=(0, 100, 30), approval=True)
    market.set_mode(E, GridMode.LINE_VALIDATION, feeder)
    market.place(E, 1, "a", ASK, 50, 100)
    events = market.place(E, 2, "c", BID, 20, 100)
    assert events[2] == TradePending(E, 0, 1, 2, 20)
    events = market.place(E, 3, "c", BID, 20, 100)
    assert events[1].quantity == 10 and events[2] == TradePending(E, 1, 1, 3, 10)
    assert market.book(E).grid.flow == [0, -30, -30]  # pending trades hold their flow
    assert market.set_mode(E, GridMode.BIDS_OFFERS) == [Rejected(None, R.TRADES_PENDING)]
    same_digest(market)
    assert market.execute(DecideTrade(E, 0, False)) == [TradeDecided(E, 0, False, "refused")]
    assert market.book(E).grid.flow == [0, -10, -10]
    assert market.decide_trade(E, 0, True) == [Rejected(None, R.UNKNOWN_TRADE)]
    assert market.decide_trade(E, 1, True) == [TradeDecided(E, 1, True, "approved")]
    market.place(E, 4, "d", BID, 5, 100)
    events = market.close_instrument(E)
    assert events[-2:] == [TradeDecided(E, 2, False, "deadline"), InstrumentClosed(E)]
    assert market.book(E).grid.flow == [0, -10, -10]
    assert market.decide_trade(E, 2, True) == [Rejected(None, R.UNKNOWN_TRADE)]
    assert market.decide_trade(H, 0, True) == [Rejected(None, R.UNKNOWN_TRADE)]
    same_digest(market)
