"""Unit tests: self-trade prevention modes and the amend rules."""

from __future__ import annotations

import pytest

from orderbook import (
    Accepted,
    Amended,
    Cancelled,
    CancelReason,
    Market,
    MarketConfig,
    Rejected,
    RejectReason,
    STPMode,
    TimeInForce,
    Trade,
)
from tests.orderbook.conftest import ASK, BID, E

ST = CancelReason.SELF_TRADE


@pytest.fixture
def book(market):
    """Asks: 1 (x, 10 @50), 2 (a, 10 @50), 3 (y, 10 @55)."""
    market.place(E, 1, "x", ASK, 10, 50)
    market.place(E, 2, "a", ASK, 10, 50)
    market.place(E, 3, "y", ASK, 10, 55)
    return market


def test_cancel_newest_stops_the_taker(book):
    events = book.place(E, 9, "a", BID, 30, 55, stp=STPMode.CANCEL_NEWEST)
    assert events == [
        Accepted(E, 9, "a", BID, 55, 30),
        Trade(E, 1, 9, "x", "a", 50, 10, 0, 20, BID),
        Cancelled(E, 9, "a", 20, 0, ST),
    ]
    assert [o.order_id for o in book.orders(E)] == [2, 3]


def test_cancel_newest_before_any_change_is_a_rejection(book):
    book.cancel(1)
    before = book.state_digest()
    assert book.place(E, 9, "a", BID, 30, 55, stp=STPMode.CANCEL_NEWEST) == [
        Rejected(9, RejectReason.SELF_TRADE)
    ]
    assert book.state_digest() == before


def test_market_default_stp_applies_when_the_order_has_none(book):
    assert book.place(E, 9, "a", BID, 30, 55)[-1] == Cancelled(E, 9, "a", 20, 0, ST)


def test_cancel_oldest_removes_the_resting_order_and_goes_on(book):
    events = book.place(E, 9, "a", BID, 30, 55, stp=STPMode.CANCEL_OLDEST)
    assert events == [
        Accepted(E, 9, "a", BID, 55, 30),
        Trade(E, 1, 9, "x", "a", 50, 10, 0, 20, BID),
        Cancelled(E, 2, "a", 10, 0, ST),
        Trade(E, 3, 9, "y", "a", 55, 10, 0, 10, BID),
    ]
    assert book.order(9).quantity == 10  # the rest rests
    assert book.best_ask(E) is None


def test_cancel_both(book):
    events = book.place(E, 9, "a", BID, 30, 55, stp=STPMode.CANCEL_BOTH)
    assert events[-2:] == [Cancelled(E, 2, "a", 10, 0, ST), Cancelled(E, 9, "a", 20, 0, ST)]
    assert [o.order_id for o in book.orders(E)] == [3]


@pytest.mark.parametrize(
    ("taker_qty", "maker_left", "taker_left"),
    [(5, 5, 0), (10, 0, 0), (25, 0, 15)],
)
def test_decrement_reduces_both_without_a_trade(book, taker_qty, maker_left, taker_left):
    book.cancel(1)
    events = book.place(E, 9, "a", BID, taker_qty, 50, stp=STPMode.DECREMENT)
    cut = taker_qty - taker_left
    assert events == [
        Accepted(E, 9, "a", BID, 50, taker_qty),
        Cancelled(E, 2, "a", cut, maker_left, ST),
        Cancelled(E, 9, "a", cut, taker_left, ST),
    ]
    assert (book.order(2).quantity if maker_left else book.order(2)) == (maker_left or None)
    assert (book.order(9).quantity if taker_left else book.order(9)) == (taker_left or None)


def test_decrement_goes_on_matching_others(book):
    events = book.place(E, 9, "a", BID, 25, 55, stp=STPMode.DECREMENT)
    assert [type(e).__name__ for e in events] == [
        "Accepted",
        "Trade",
        "Cancelled",
        "Cancelled",
        "Trade",
    ]
    assert events[-1] == Trade(E, 3, 9, "y", "a", 55, 5, 5, 0, BID)


@pytest.mark.parametrize(
    ("mode", "fillable"),
    [
        (STPMode.CANCEL_NEWEST, False),
        (STPMode.CANCEL_BOTH, False),
        (STPMode.DECREMENT, False),
        (STPMode.CANCEL_OLDEST, True),
    ],
)
def test_fok_counts_only_what_would_really_trade(book, mode, fillable):
    before = book.state_digest()
    events = book.place(E, 9, "a", BID, 20, 55, TimeInForce.FOK, stp=mode)
    if fillable:  # own order 2 is cancelled, 1 and 3 fill the 20
        assert [e.maker_order_id for e in events if type(e) is Trade] == [1, 3]
        assert Cancelled(E, 2, "a", 10, 0, ST) in events
    else:
        assert events == [Rejected(9, RejectReason.FOK_UNFILLABLE)]
        assert book.state_digest() == before


def test_stp_default_comes_from_the_config():
    market = Market(MarketConfig(default_stp=STPMode.CANCEL_OLDEST))
    market.open_instrument(E)
    market.place(E, 1, "a", ASK, 10, 50)
    assert market.place(E, 2, "a", BID, 10, 50)[1] == Cancelled(E, 1, "a", 10, 0, ST)


# ------------------------------------------------------------------------ amend


def test_quantity_reduction_keeps_priority(market):
    market.place(E, 1, "a", ASK, 10, 50)
    market.place(E, 2, "b", ASK, 10, 50)
    assert market.amend(1, "a", quantity=4) == [Amended(E, 1, "a", 50, 4, 50, 10, True)]
    events = market.place(E, 3, "c", BID, 6, 50)
    assert [e.maker_order_id for e in events if type(e) is Trade] == [1, 2]


def test_quantity_increase_loses_priority(market):
    market.place(E, 1, "a", ASK, 10, 50)
    market.place(E, 2, "b", ASK, 10, 50)
    assert market.amend(1, "a", quantity=12) == [Amended(E, 1, "a", 50, 12, 50, 10, False)]
    assert [o.order_id for o in market.orders(E)] == [2, 1]


def test_price_change_loses_priority(market):
    market.place(E, 1, "a", ASK, 10, 55)
    market.place(E, 2, "b", ASK, 10, 50)
    assert market.amend(1, None, price=50) == [Amended(E, 1, "a", 50, 10, 55, 10, False)]
    assert [o.order_id for o in market.orders(E)] == [2, 1]
    market.amend(1, price=55)
    market.amend(1, price=50, quantity=5)
    assert [(o.order_id, o.price, o.quantity) for o in market.orders(E)] == [
        (2, 50, 10),
        (1, 50, 5),
    ]


def test_amend_that_crosses_trades_as_taker(market):
    market.place(E, 1, "a", ASK, 10, 60)
    market.place(E, 2, "b", BID, 15, 50)
    events = market.amend(2, "b", price=60)
    assert events == [
        Amended(E, 2, "b", 60, 15, 50, 15, False),
        Trade(E, 1, 2, "a", "b", 60, 10, 0, 5, BID),
    ]
    assert market.order(2).quantity == 5
    assert market.best_bid(E) == 60


def test_amend_that_crosses_and_fills_leaves_the_book(market):
    market.place(E, 1, "a", ASK, 10, 60)
    market.place(E, 2, "b", BID, 10, 50, TimeInForce.GTD, 9)
    market.amend(2, price=60)
    assert market.order(2) is None
    assert market.advance_clock(9) == []


def test_amend_into_own_order_follows_its_stp_mode(market):
    market.place(E, 1, "a", ASK, 10, 60)
    market.place(E, 2, "a", BID, 15, 50, stp=STPMode.CANCEL_NEWEST)
    events = market.amend(2, price=60)
    assert events[-1] == Cancelled(E, 2, "a", 15, 0, ST)
    assert market.order(2) is None
    assert market.order(1).quantity == 10


def test_post_only_amend_that_would_cross_is_rejected(market):
    market.place(E, 1, "a", ASK, 10, 60)
    market.place(E, 2, "b", BID, 10, 50, post_only=True)
    before = market.state_digest()
    assert market.amend(2, price=60) == [Rejected(2, RejectReason.WOULD_TAKE)]
    assert market.state_digest() == before
    assert market.amend(2, price=55)[0].priority_kept is False


def test_gtd_amend_keeps_its_expiry(market):
    market.place(E, 1, "a", BID, 10, 50, TimeInForce.GTD, 7)
    market.amend(1, price=45)
    assert market.order(1).expires_at == 7
    assert [e.order_id for e in market.advance_clock(7)] == [1]


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"order_id": -1}, RejectReason.INVALID_ORDER_ID),
        ({"order_id": "1"}, RejectReason.INVALID_ORDER_ID),
        ({"order_id": 99}, RejectReason.UNKNOWN_ORDER),
        ({"owner": "z"}, RejectReason.NOT_OWNER),
        ({"price": 0}, RejectReason.INVALID_PRICE),
        ({"price": 52}, RejectReason.OFF_TICK),
        ({"price": 2000}, RejectReason.PRICE_OUT_OF_BOUNDS),
        ({"quantity": 0}, RejectReason.INVALID_QUANTITY),
        ({"quantity": 1.5}, RejectReason.INVALID_QUANTITY),
        ({"quantity": 10_001}, RejectReason.QUANTITY_TOO_LARGE),
        ({}, RejectReason.NO_CHANGE),
        ({"price": 50, "quantity": 10}, RejectReason.NO_CHANGE),
    ],
)
def test_amend_rejections_leave_the_market_unchanged(market, kwargs, reason):
    market.place(E, 1, "a", BID, 10, 50)
    before = market.state_digest()
    args = {"order_id": 1, "owner": "a", "price": None, "quantity": None, **kwargs}
    assert market.amend(**args) == [Rejected(args["order_id"], reason)]
    assert market.state_digest() == before


def test_decrement_that_uses_up_the_taker_stops_matching(market):
    market.place(E, 1, "a", ASK, 10, 50)
    market.place(E, 2, "z", ASK, 10, 50)
    events = market.place(E, 9, "a", BID, 10, 50, stp=STPMode.DECREMENT)
    assert events == [
        Accepted(E, 9, "a", BID, 50, 10),
        Cancelled(E, 1, "a", 10, 0, ST),
        Cancelled(E, 9, "a", 10, 0, ST),
    ]
    assert market.order(2).quantity == 10
