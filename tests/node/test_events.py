"""Order book events as wire maps (node/events.py)."""

from __future__ import annotations

from node.events import event_to_wire, events_to_wire
from node.protocol import encode_message
from orderbook.events import Accepted, CancelReason, Expired, Rejected, RejectReason, Trade
from orderbook.types import Instrument, Product, Side

SLOT_1 = Instrument(Product.ELECTRICITY, 1)


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


def test_maps_come_out_with_their_keys_sorted_every_time():
    events = [
        Accepted(SLOT_1, 1, "aa", Side.ASK, 1490, 500),
        Accepted(SLOT_1, 2, "aa", Side.ASK, None, 500),  # a market order: price None
        Rejected(None, RejectReason.UNKNOWN_ORDER),
        Expired(SLOT_1, 3, "bb", 100, CancelReason.EXPIRED),
        Trade(SLOT_1, 1, 4, "aa", "bb", 1490, 100, 400, 0, Side.BID),
    ]
    for _ in range(2):  # the first conversion of a class works its order out, the second reuses it
        for wire in events_to_wire(events):
            assert list(wire) == sorted(wire)
    # canonical as built: encoding gives the bytes of a sorted copy
    wire = event_to_wire(events[0])
    assert encode_message([1, 1, wire]) == encode_message([1, 1, dict(sorted(wire.items()))])
