"""Grid-aware trading in the state machine: the chapter's four modes per slot (12.2.2)."""

from __future__ import annotations

import pytest

from ledger.errors import LedgerError
from ledger.results import EventRecord, GridTradeRecord, StatementRecord, TradeRecord, decode_result
from market import replay
from market import transactions as txn
from market.accounts import DSO, GRID
from market.state import ExchangeState
from tests.market.test_accounts import CHAIN, OPERATOR, Community, Sender, key

BUSES = "b0,b1,b2"  # b0 is the root; b1 and b2 hang off it
PARENT = (-1, 0, 0)


def community(roles_buses: list[tuple[str, str]]) -> Community:
    return Community([r for r, _ in roles_buses], [b for _, b in roles_buses])


def mode(slot, number, *, charges=(), capacity=(), distance=(), approval=False):
    both = tuple(charges)  # the seller's and the buyer's matrices alike
    return txn.SetSlotMode(
        "electricity",
        slot,
        number,
        BUSES,
        PARENT if capacity else (),
        tuple(capacity),
        (0, 0, 0) if capacity else (),
        both,
        both,
        tuple(distance),
        approval,
    )


def order(side, price, qty, coid, slot=1, tif="GTC"):
    return txn.PlaceOrder("electricity", slot, side, price, qty, tif, 0, False, "", coid)


def results(out):
    return [decode_result(r) for r in out.results]


def test_mode_3_charges_each_side_and_the_dso_is_paid_at_settlement():
    c = community([("producer", "b1"), ("consumer", "b2")])
    seller, buyer = c.peers
    # 30 ticks/kWh each side for a trade between b1 and b2, nothing within a bus
    charges = [0, 0, 0, 0, 0, 30, 0, 30, 0]
    assert c.op(mode(1, 3, charges=charges)).rejected is None
    c.send(seller.tx(order("ask", 100, 1_000, 1)))
    out = c.send(buyer.tx(order("bid", 200, 1_000, 1)))
    (trade,) = [r for r in results(out) if isinstance(r, GridTradeRecord)]
    assert (trade.seller_charge, trade.buyer_charge) == (30, 30)
    # the maker (seller) gets its limit net of its own charge: price = 100 + 30
    assert trade.price == 130
    c.op(txn.SetSlotTerms("electricity", 1, 500, 10, "cda"))
    c.op(txn.CloseSlot("electricity", 1))
    c.send(c.meters[0].tx(txn.MeterReading("electricity", 1, 1_000)))
    c.send(c.meters[1].tx(txn.MeterReading("electricity", 1, -1_000)))
    got = {s.account: s for s in results(c.op(txn.SettleSlot("electricity", 1)))}
    assert got[seller.account].payment == (130 - 30) * 1_000
    assert got[buyer.account].payment == -(130 + 30) * 1_000
    assert got[DSO].payment == 60 * 1_000
    assert sum(s.payment for s in got.values() if isinstance(s, StatementRecord)) == 0


def test_mode_4_cuts_a_trade_to_the_line_headroom():
    c = community([("producer", "b1"), ("consumer", "b2")])
    seller, buyer = c.peers
    assert c.op(mode(2, 4, capacity=(0, 600, 10_000))).rejected is None
    c.send(seller.tx(order("ask", 100, 1_000, 1, slot=2)))
    out = c.send(buyer.tx(order("bid", 100, 1_000, 1, slot=2)))
    (trade,) = [r for r in results(out) if isinstance(r, GridTradeRecord)]
    assert trade.quantity == 600 and trade.line == 1  # the line from b1 up to the root
    # nothing more fits through that line
    more = c.send(seller.tx(order("ask", 90, 500, 2, slot=2)))
    assert not [r for r in results(more) if isinstance(r, GridTradeRecord | TradeRecord)]


def test_mode_4_with_approval_a_refused_trade_is_not_settled():
    c = community([("producer", "b1"), ("consumer", "b2")])
    seller, buyer = c.peers
    c.op(mode(3, 4, capacity=(0, 10_000, 10_000), approval=True))
    c.send(seller.tx(order("ask", 100, 1_000, 1, slot=3)))
    out = c.send(buyer.tx(order("bid", 100, 1_000, 1, slot=3)))
    held = [r for r in results(out) if isinstance(r, EventRecord) and r.event == "trade_pending"]
    assert [r.values for r in held] == [(0,)]
    refused = c.op(txn.DecideTrade("electricity", 3, 0, False))
    assert [r.event for r in results(refused) if isinstance(r, EventRecord)] == ["trade_refused"]
    c.op(txn.SetSlotTerms("electricity", 3, 500, 10, "cda"))
    c.op(txn.CloseSlot("electricity", 3))
    got = {s.account: s for s in results(c.op(txn.SettleSlot("electricity", 3)))}
    # no contract: nothing metered, nothing owed
    assert seller.account not in got and buyer.account not in got


def test_mode_1_never_trades_with_an_excluded_partner_or_a_wrong_technology():
    c = community([("producer", "b1"), ("producer", "b1"), ("consumer", "b2")])
    coal, sun, buyer = c.peers
    c.send(sun.tx(txn.DeclareTechnology("pv")))
    c.send(coal.tx(txn.DeclareTechnology("chp")))
    assert c.op(mode(4, 1)).rejected is None
    c.send(coal.tx(order("ask", 50, 1_000, 1, slot=4)))  # cheaper, but not green
    c.send(sun.tx(order("ask", 80, 1_000, 1, slot=4)))
    green = txn.PlacePreferredOrder(
        "electricity", 4, "bid", 100, 1_000, "GTC", 0, False, "", 1, "pv", b"", b"", -1
    )
    out = c.send(buyer.tx(green))
    trades = [r for r in results(out) if isinstance(r, GridTradeRecord)]
    assert [t.maker_account for t in trades] == [sun.account]
    bad = txn.PlacePreferredOrder(
        "electricity", 4, "bid", 100, 1_000, "GTC", 0, False, "", 2, "", b"x", b"", -1
    )
    assert c.send(buyer.tx(bad)).rejected == "invalid_preferences"


def test_the_grid_stands_in_the_book_at_both_tariffs():
    c = community([("producer", "b1"), ("consumer", "b2")])
    seller, buyer = c.peers
    c.op(txn.SetSlotTerms("electricity", 5, 300, 50, "cda", True))
    # a bid above the import price buys from the grid; an ask below the export price sells to it
    bought = results(c.send(buyer.tx(order("bid", 400, 700, 1, slot=5))))
    sold = results(c.send(seller.tx(order("ask", 40, 200, 1, slot=5))))
    (t1,) = [r for r in bought if isinstance(r, TradeRecord)]
    (t2,) = [r for r in sold if isinstance(r, TradeRecord)]
    assert (t1.maker_account, t1.price, t1.quantity) == (GRID, 300, 700)
    assert (t2.maker_account, t2.price, t2.quantity) == (GRID, 50, 200)


def test_a_peer_registering_after_the_mode_trades_and_replay_gives_the_same_state():
    c = community([("producer", "b1")])
    (seller,) = c.peers
    c.op(mode(6, 3, charges=[0, 0, 0, 0, 0, 7, 0, 7, 0]))
    late = Sender(key(9))
    c.send(late.tx(txn.RegisterPeer("late", "b2", "consumer")))
    c.send(seller.tx(order("ask", 100, 500, 1, slot=6)))
    out = c.send(late.tx(order("bid", 200, 500, 1, slot=6)))
    assert [r.quantity for r in results(out) if isinstance(r, GridTradeRecord)] == [500]
    c.cut()
    again = ExchangeState(CHAIN, OPERATOR.public_key_bytes())
    parent = None
    for block in c.blocks:
        replay.verify_and_replay(again, block, parent)
        parent = block.header
    assert again.state_digest() == c.state.state_digest()


def test_a_grid_that_does_not_fit_its_buses_is_refused():
    c = community([("producer", "b1")])
    assert c.op(mode(7, 3, charges=[0, 1])).rejected == "invalid_grid"
    with pytest.raises(LedgerError):  # the payload itself refuses a mode out of range
        txn.SetSlotMode("electricity", 7, 5, BUSES, (), (), (), (), (), (), False)
