"""Every rejection reason of a place command, its precedence, and that it changes nothing."""

from __future__ import annotations

import pytest

from orderbook import (
    AdvanceClock,
    CancelOrder,
    Instrument,
    OpenInstrument,
    PlaceOrder,
    Product,
    Rejected,
    RejectReason,
    Side,
    STPMode,
    TimeInForce,
)
from tests.orderbook.conftest import ASK, BID, E, H

R = RejectReason
GOOD = {
    "instrument": E,
    "order_id": 5,
    "owner": "a",
    "side": BID,
    "quantity": 10,
    "price": 50,
}

CASES = [
    ({"order_id": -1}, R.INVALID_ORDER_ID),
    ({"order_id": 5.0}, R.INVALID_ORDER_ID),
    ({"order_id": True}, R.INVALID_ORDER_ID),
    ({"order_id": None}, R.INVALID_ORDER_ID),
    ({"instrument": Instrument(Product.HEAT, 2)}, R.UNKNOWN_INSTRUMENT),
    ({"instrument": [E]}, R.UNKNOWN_INSTRUMENT),  # unhashable junk
    ({"order_id": 1}, R.DUPLICATE_ORDER_ID),
    ({"owner": ""}, R.INVALID_OWNER),
    ({"owner": b"a"}, R.INVALID_OWNER),
    ({"side": "bid"}, R.INVALID_SIDE),  # the enum member, not its value
    ({"side": None}, R.INVALID_SIDE),
    ({"quantity": 0}, R.INVALID_QUANTITY),
    ({"quantity": -10}, R.INVALID_QUANTITY),
    ({"quantity": 10.0}, R.INVALID_QUANTITY),
    ({"quantity": True}, R.INVALID_QUANTITY),
    ({"quantity": 10_001}, R.QUANTITY_TOO_LARGE),
    ({"price": 0}, R.INVALID_PRICE),
    ({"price": -5}, R.INVALID_PRICE),
    ({"price": 50.0}, R.INVALID_PRICE),
    ({"price": "50"}, R.INVALID_PRICE),
    ({"price": 52}, R.OFF_TICK),
    ({"price": 1005}, R.PRICE_OUT_OF_BOUNDS),
    ({"price": 50, "protection_price": 60}, R.INVALID_PROTECTION),
    ({"price": None, "protection_price": 0}, R.INVALID_PRICE),
    ({"price": None, "protection_price": 51}, R.OFF_TICK),
    ({"price": None, "protection_price": 5000}, R.PRICE_OUT_OF_BOUNDS),
    ({"tif": "GTC"}, R.INVALID_TIF),
    ({"tif": None}, R.INVALID_TIF),
    ({"price": None, "tif": TimeInForce.GTD, "expires_at": 9}, R.INVALID_TIF),
    ({"tif": TimeInForce.GTD}, R.INVALID_EXPIRY),
    ({"tif": TimeInForce.GTD, "expires_at": 9.0}, R.INVALID_EXPIRY),
    ({"tif": TimeInForce.IOC, "expires_at": 9}, R.INVALID_EXPIRY),
    ({"tif": TimeInForce.GTD, "expires_at": 3}, R.EXPIRED_ON_ARRIVAL),
    ({"post_only": 1}, R.INVALID_POST_ONLY),
    ({"post_only": True, "tif": TimeInForce.IOC}, R.INVALID_POST_ONLY),
    ({"post_only": True, "price": None}, R.INVALID_POST_ONLY),
    ({"stp": "decrement"}, R.INVALID_STP),
    ({"stp": 1}, R.INVALID_STP),
    ({"side": ASK, "price": 45, "post_only": True}, R.WOULD_TAKE),
    ({"side": ASK, "quantity": 30, "price": 45, "tif": TimeInForce.FOK}, R.FOK_UNFILLABLE),
    ({"side": ASK, "price": 55, "tif": TimeInForce.IOC}, R.IOC_UNFILLED),
    ({"side": ASK, "price": None, "protection_price": 55}, R.NO_LIQUIDITY),
    ({"owner": "b", "side": ASK, "price": 45}, R.SELF_TRADE),
]


@pytest.fixture
def busy(market):
    """A bid of b (id 1, 20 @ 50) and an ask of c (id 2, 20 @ 70) at clock 3."""
    market.place(E, 1, "b", BID, 20, 50)
    market.place(E, 2, "c", ASK, 20, 70)
    market.place(H, 3, "b", BID, 20, 50, TimeInForce.GTD, 50)
    market.advance_clock(3)
    return market


@pytest.mark.parametrize(("change", "reason"), CASES, ids=[f"{r}-{c}" for c, r in CASES])
def test_each_reason_rejects_and_changes_nothing(busy, change, reason):
    before = busy.snapshot()
    fields = {**GOOD, **change}
    assert busy.execute(PlaceOrder(**fields)) == [Rejected(fields["order_id"], reason)]
    assert busy.place(**fields) == [Rejected(fields["order_id"], reason)]
    assert busy.snapshot() == before


def test_every_reject_reason_is_covered_somewhere():
    covered = {r for _, r in CASES} | {
        # covered in test_stp_amend / test_market_state / below
        R.UNKNOWN_ORDER,
        R.NOT_OWNER,
        R.NO_CHANGE,
        R.INSTRUMENT_CLOSED,
        R.INSTRUMENT_EXISTS,
        R.INVALID_INSTRUMENT,
        R.CLOCK_BACKWARDS,
        R.INVALID_TIME,
        R.UNKNOWN_COMMAND,
        # covered in test_grid_modes
        R.INVALID_MODE,
        R.INVALID_GRID,
        R.UNKNOWN_BUS,
        R.INVALID_PREFERENCES,
        R.BOOK_CROSSED,
        R.UNKNOWN_TRADE,
        R.TRADES_PENDING,
    }
    assert covered == set(RejectReason)


def test_the_first_failing_field_is_reported(busy):
    # Bad id, bad quantity and bad price at once: the id comes first.
    assert busy.place(E, -1, "a", BID, 0, 3) == [Rejected(-1, R.INVALID_ORDER_ID)]
    assert busy.place(E, 9, "a", BID, 0, 3) == [Rejected(9, R.INVALID_QUANTITY)]
    assert busy.place(E, 9, "", Side.BID, 0, 3) == [Rejected(9, R.INVALID_OWNER)]
    unknown = Instrument(Product.HEAT, 7)
    assert busy.place(unknown, 1, "a", BID, 0, 3) == [Rejected(1, R.UNKNOWN_INSTRUMENT)]


def test_cancel_rejections(busy):
    before = busy.snapshot()
    assert busy.cancel(99) == [Rejected(99, R.UNKNOWN_ORDER)]
    assert busy.cancel(1, "c") == [Rejected(1, R.NOT_OWNER)]
    assert busy.cancel(-1) == [Rejected(-1, R.INVALID_ORDER_ID)]
    assert busy.cancel(1.0) == [Rejected(1.0, R.INVALID_ORDER_ID)]
    assert busy.cancel([1]) == [Rejected([1], R.INVALID_ORDER_ID)]
    assert busy.execute(CancelOrder(99)) == [Rejected(99, R.UNKNOWN_ORDER)]
    assert busy.snapshot() == before


def test_unknown_command_and_bad_clock(busy):
    before = busy.snapshot()
    assert busy.execute("cancel everything") == [Rejected(None, R.UNKNOWN_COMMAND)]
    assert busy.execute(AdvanceClock(2)) == [Rejected(None, R.CLOCK_BACKWARDS)]
    assert busy.execute(AdvanceClock("4")) == [Rejected(None, R.INVALID_TIME)]
    assert busy.execute(OpenInstrument(("heat", 1))) == [Rejected(None, R.INVALID_INSTRUMENT)]
    assert busy.execute(OpenInstrument(Instrument("heat", 1))) == [
        Rejected(None, R.INVALID_INSTRUMENT)
    ]
    assert busy.execute(OpenInstrument(Instrument(Product.HEAT, "1"))) == [
        Rejected(None, R.INVALID_INSTRUMENT)
    ]
    assert busy.snapshot() == before


def test_stp_modes_are_accepted(busy):
    for i, mode in enumerate(STPMode):
        assert busy.place(E, 10 + i, "a", BID, 1, 45, stp=mode)[0].order_id == 10 + i
