"""Order book events as wire maps (node/events.py)."""

from __future__ import annotations

from enum import Enum

from node.wire.events import event_to_wire, events_to_wire
from node.wire.protocol import CanonicalMap, encode_message
from orderbook.events import (
    EVENT_TYPES,
    Accepted,
    Amended,
    Cancelled,
    CancelReason,
    Expired,
    GridTrade,
    InstrumentClosed,
    InstrumentOpened,
    LineBlocked,
    ModeSet,
    Rejected,
    RejectReason,
    Trade,
    TradeDecided,
    TradePending,
)
from orderbook.types import Instrument, Product, Side

SLOT_1 = Instrument(Product.ELECTRICITY, 1)
HEAT_7 = Instrument(Product.HEAT, 7)

ONE_OF_EACH = [
    Accepted(SLOT_1, 1, "aa", Side.ASK, 1490, 500),
    Accepted(HEAT_7, 2, "aa", Side.BID, None, 500),  # a market order: price None
    Rejected(None, RejectReason.UNKNOWN_ORDER),
    Rejected(5, RejectReason.UNKNOWN_ORDER),
    Trade(SLOT_1, 1, 4, "aa", "bb", 1490, 100, 400, 0, Side.BID),
    Cancelled(SLOT_1, 3, "bb", 100, 0, CancelReason.REQUESTED),
    Expired(SLOT_1, 3, "bb", 100, CancelReason.EXPIRED),
    Amended(SLOT_1, 3, "bb", 1500, 90, 1490, 100, False),
    InstrumentOpened(HEAT_7),
    InstrumentClosed(SLOT_1),
    # the grid modes' events (a line of None: no line cut the trade)
    GridTrade(SLOT_1, 1, 4, "aa", "bb", 1490, 100, 400, 0, Side.BID, 30, 20, None),
    GridTrade(SLOT_1, 1, 5, "aa", "cc", 1490, 50, 350, 0, Side.BID, 0, 0, 3),
    LineBlocked(SLOT_1, 1, 6, 3),
    ModeSet(SLOT_1, 3),
    TradePending(SLOT_1, 0, 1, 4, 100),
    TradeDecided(SLOT_1, 0, False, "deadline"),
]


def naive_to_wire(event) -> dict[str, object]:
    """The reference: each field by its value's type, then the keys sorted."""
    snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in type(event).__name__)
    out: dict[str, object] = {"type": snake.lstrip("_")}
    for field, value in zip(event._fields, event, strict=True):
        if isinstance(value, Instrument):
            out["product"] = value.product.value
            out["slot"] = value.slot
        elif isinstance(value, Enum):
            out[field] = value.value
        else:
            out[field] = value
    return dict(sorted(out.items()))


def test_every_event_class_is_covered():
    assert {type(event) for event in ONE_OF_EACH} == set(EVENT_TYPES)


def test_a_trade_becomes_a_map_with_its_instrument_and_enums_spelled_out():
    trade = Trade(SLOT_1, 7, 9, "aa", "bb", 1500, 300, 0, 200, Side.BID)
    assert event_to_wire(trade) == {
        "maker_order_id": 7,
        "maker_owner": "aa",
        "maker_remaining": 0,
        "price": 1500,
        "product": "electricity",
        "quantity": 300,
        "slot": 1,
        "taker_order_id": 9,
        "taker_owner": "bb",
        "taker_remaining": 200,
        "taker_side": "bid",
        "type": "trade",
    }


def test_each_event_matches_the_reference_with_its_keys_sorted_and_plain_values():
    for wire, event in zip(events_to_wire(ONE_OF_EACH), ONE_OF_EACH, strict=True):
        assert type(wire) is CanonicalMap
        assert wire == naive_to_wire(event)
        assert list(wire) == sorted(wire)
        assert all(type(v) in (int, str, bool, type(None)) for v in wire.values()), wire


def test_encoding_an_event_map_gives_the_bytes_of_a_checked_copy():
    for event in ONE_OF_EACH:
        wire = event_to_wire(event)
        assert encode_message([3, 1, "trades", {"event": wire}]) == encode_message(
            [3, 1, "trades", {"event": dict(wire)}]
        )
