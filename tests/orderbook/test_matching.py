"""Unit tests: limit orders, priority, partial fills, every time in force, market orders."""

from __future__ import annotations

from orderbook import (
    Accepted,
    Cancelled,
    CancelReason,
    DepthLevel,
    Expired,
    Rejected,
    RejectReason,
    TimeInForce,
    Trade,
)
from tests.orderbook.conftest import ASK, BID, E, H

GTC, IOC, FOK, GTD = TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK, TimeInForce.GTD


def trades(events):
    return [(e.maker_order_id, e.price, e.quantity) for e in events if type(e) is Trade]


def test_resting_order_is_accepted_and_shows_in_depth(market):
    assert market.place(E, 1, "a", BID, 100, 50) == [Accepted(E, 1, "a", BID, 50, 100)]
    assert market.place(E, 2, "b", ASK, 70, 60) == [Accepted(E, 2, "b", ASK, 60, 70)]
    assert market.best_bid(E) == 50
    assert market.best_ask(E) == 60
    depth = market.depth(E)
    assert depth.bids == (DepthLevel(50, 100, 1),)
    assert depth.asks == (DepthLevel(60, 70, 1),)
    assert market.best_bid(H) is None  # books are separate


def test_trade_is_at_the_resting_price_with_remaining_quantities(market):
    market.place(E, 1, "a", ASK, 100, 50)
    events = market.place(E, 2, "b", BID, 40, 60)
    assert events == [
        Accepted(E, 2, "b", BID, 60, 40),
        Trade(E, 1, 2, "a", "b", 50, 40, 60, 0, BID),
    ]
    assert market.depth(E).asks == (DepthLevel(50, 60, 1),)
    assert market.best_bid(E) is None


def test_price_then_time_priority(market):
    market.place(E, 1, "a", ASK, 10, 55)
    market.place(E, 2, "b", ASK, 10, 50)  # better price, later
    market.place(E, 3, "c", ASK, 10, 50)  # same price, later still
    events = market.place(E, 4, "d", BID, 25, 55)
    assert trades(events) == [(2, 50, 10), (3, 50, 10), (1, 55, 5)]
    assert market.order(1).quantity == 5


def test_taker_remainder_rests_at_its_limit(market):
    market.place(E, 1, "a", ASK, 10, 50)
    market.place(E, 2, "a", ASK, 10, 60)
    events = market.place(E, 3, "b", BID, 30, 55)
    assert trades(events) == [(1, 50, 10)]
    assert events[-1].taker_remaining == 20
    assert market.best_bid(E) == 55
    assert market.order(3).quantity == 20
    assert market.best_ask(E) == 60


def test_maker_partially_filled_keeps_its_place(market):
    market.place(E, 1, "a", BID, 30, 50)
    market.place(E, 2, "b", BID, 30, 50)
    market.place(E, 3, "c", ASK, 10, 50)
    assert [o.order_id for o in market.orders(E)] == [1, 2]
    assert trades(market.place(E, 4, "c", ASK, 25, 50)) == [(1, 50, 20), (2, 50, 5)]


def test_ioc_partial_fill_cancels_the_rest(market):
    market.place(E, 1, "a", ASK, 10, 50)
    events = market.place(E, 2, "b", BID, 25, 50, IOC)
    assert trades(events) == [(1, 50, 10)]
    assert events[-1] == Cancelled(E, 2, "b", 15, 0, CancelReason.UNFILLED)
    assert market.order(2) is None
    assert len(market) == 0


def test_ioc_that_cannot_trade_is_rejected_without_change(market):
    market.place(E, 1, "a", ASK, 10, 60)
    before = market.state_digest()
    assert market.place(E, 2, "b", BID, 25, 55, IOC) == [Rejected(2, RejectReason.IOC_UNFILLED)]
    assert market.state_digest() == before


def test_fok_fills_completely_or_not_at_all(market):
    market.place(E, 1, "a", ASK, 10, 50)
    market.place(E, 2, "a", ASK, 10, 55)
    before = market.state_digest()
    assert market.place(E, 3, "b", BID, 21, 55, FOK) == [Rejected(3, RejectReason.FOK_UNFILLABLE)]
    assert market.place(E, 3, "b", BID, 20, 50, FOK) == [Rejected(3, RejectReason.FOK_UNFILLABLE)]
    assert market.state_digest() == before
    events = market.place(E, 3, "b", BID, 20, 55, FOK)  # exactly enough
    assert trades(events) == [(1, 50, 10), (2, 55, 10)]
    assert len(market) == 0


def test_gtd_expires_when_the_clock_reaches_it(market):
    market.place(E, 1, "a", BID, 10, 50, GTD, 10)
    market.place(E, 2, "a", BID, 10, 50, GTD, 5)
    market.place(E, 3, "a", BID, 10, 50, GTD, 5)
    market.place(E, 4, "a", BID, 10, 45)  # GTC: never expires
    assert market.advance_clock(4) == []
    assert market.advance_clock(5) == [
        Expired(E, 2, "a", 10, CancelReason.EXPIRED),
        Expired(E, 3, "a", 10, CancelReason.EXPIRED),
    ]
    assert market.advance_clock(100) == [Expired(E, 1, "a", 10, CancelReason.EXPIRED)]
    assert [o.order_id for o in market.orders(E)] == [4]
    assert market.clock == 100


def test_gtd_expiry_after_partial_fill_and_cancel(market):
    market.place(E, 1, "a", BID, 10, 50, GTD, 10)
    market.place(E, 2, "a", BID, 10, 50, GTD, 10)
    market.place(E, 3, "b", ASK, 4, 50)
    market.cancel(2)
    assert market.advance_clock(10) == [Expired(E, 1, "a", 6, CancelReason.EXPIRED)]


def test_gtd_expiry_ties_break_by_order_id(market):
    market.place(E, 9, "a", BID, 10, 50, GTD, 3)
    market.place(H, 4, "a", BID, 10, 50, GTD, 3)
    assert [e.order_id for e in market.advance_clock(3)] == [4, 9]


def test_gtd_order_id_reused_after_cancel_is_tracked_separately(market):
    market.place(E, 1, "a", BID, 10, 50, GTD, 3)
    market.cancel(1)
    market.place(E, 1, "a", BID, 10, 50, GTD, 8)
    assert market.advance_clock(3) == []
    assert market.advance_clock(8) == [Expired(E, 1, "a", 10, CancelReason.EXPIRED)]


def test_gtd_arrival_checks(market):
    market.advance_clock(10)
    assert market.place(E, 1, "a", BID, 10, 50, GTD, 10) == [
        Rejected(1, RejectReason.EXPIRED_ON_ARRIVAL)
    ]
    assert market.place(E, 1, "a", BID, 10, 50, GTD, None) == [
        Rejected(1, RejectReason.INVALID_EXPIRY)
    ]
    assert market.place(E, 1, "a", BID, 10, 50, GTC, 20) == [
        Rejected(1, RejectReason.INVALID_EXPIRY)
    ]
    assert market.place(E, 1, "a", BID, 10, 50, GTD, 11) == [Accepted(E, 1, "a", BID, 50, 10)]


def test_clock_cannot_go_back(market):
    market.advance_clock(5)
    assert market.advance_clock(4) == [Rejected(None, RejectReason.CLOCK_BACKWARDS)]
    assert market.advance_clock(5.5) == [Rejected(None, RejectReason.INVALID_TIME)]
    assert market.advance_clock(5) == []
    assert market.clock == 5


def test_post_only_rests_or_is_rejected(market):
    market.place(E, 1, "a", ASK, 10, 60)
    assert market.place(E, 2, "b", BID, 10, 55, post_only=True) == [
        Accepted(E, 2, "b", BID, 55, 10)
    ]
    before = market.state_digest()
    assert market.place(E, 3, "b", BID, 10, 60, post_only=True) == [
        Rejected(3, RejectReason.WOULD_TAKE)
    ]
    assert market.state_digest() == before
    for tif in (IOC, FOK):
        assert market.place(E, 3, "b", BID, 10, 50, tif, post_only=True) == [
            Rejected(3, RejectReason.INVALID_POST_ONLY)
        ]
    assert market.place(E, 3, "b", BID, 10, None, post_only=True) == [
        Rejected(3, RejectReason.INVALID_POST_ONLY)
    ]
    assert market.place(E, 3, "b", ASK, 10, 70, GTD, 5, post_only=True)[0].order_id == 3


def test_market_order_walks_the_book_and_never_rests(market):
    market.place(E, 1, "a", ASK, 10, 50)
    market.place(E, 2, "a", ASK, 10, 900)
    events = market.place(E, 3, "b", BID, 30, None)
    assert events[0] == Accepted(E, 3, "b", BID, None, 30)
    assert trades(events) == [(1, 50, 10), (2, 900, 10)]
    assert events[-1] == Cancelled(E, 3, "b", 10, 0, CancelReason.UNFILLED)
    assert len(market) == 0


def test_market_order_protection_price_limits_the_walk(market):
    market.place(E, 1, "a", BID, 10, 50)
    market.place(E, 2, "a", BID, 10, 40)
    events = market.place(E, 3, "b", ASK, 30, None, protection_price=45)
    assert trades(events) == [(1, 50, 10)]
    assert events[-1].quantity == 20
    assert market.best_bid(E) == 40
    assert market.place(E, 4, "b", ASK, 5, None, protection_price=45) == [
        Rejected(4, RejectReason.NO_LIQUIDITY)
    ]


def test_market_order_without_liquidity_is_rejected(market):
    assert market.place(E, 1, "a", BID, 10, None) == [Rejected(1, RejectReason.NO_LIQUIDITY)]
    assert market.place(E, 1, "a", BID, 10, None, IOC) == [Rejected(1, RejectReason.NO_LIQUIDITY)]


def test_market_order_time_in_force(market):
    market.place(E, 1, "a", ASK, 10, 50)
    assert market.place(E, 2, "b", BID, 11, None, FOK) == [Rejected(2, RejectReason.FOK_UNFILLABLE)]
    assert market.place(E, 2, "b", BID, 10, None, GTD, 5) == [Rejected(2, RejectReason.INVALID_TIF)]
    assert trades(market.place(E, 2, "b", BID, 10, None, FOK)) == [(1, 50, 10)]


def test_order_ids_are_unique_across_books(market):
    market.place(E, 1, "a", BID, 10, 50)
    assert market.place(H, 1, "a", BID, 10, 50) == [Rejected(1, RejectReason.DUPLICATE_ORDER_ID)]
    market.cancel(1)
    assert market.place(H, 1, "a", BID, 10, 50)[0] == Accepted(H, 1, "a", BID, 50, 10)


def test_filled_order_id_can_be_reused(market):
    market.place(E, 1, "a", BID, 10, 50)
    market.place(E, 2, "b", ASK, 10, 50)
    assert market.place(E, 1, "a", BID, 10, 50) == [Accepted(E, 1, "a", BID, 50, 10)]


def test_deep_queue_cancels_from_the_middle_keep_fifo(market):
    for i in range(1, 601):
        market.place(E, i, f"o{i % 7}", ASK, 10, 50)
    for i in range(2, 600, 2):
        assert market.cancel(i)[0].order_id == i
    assert market.depth(E).asks == (DepthLevel(50, 10 * 301, 301),)
    events = market.place(E, 5000, "taker", BID, 35, 50)
    assert trades(events) == [(1, 50, 10), (3, 50, 10), (5, 50, 10), (7, 50, 5)]
