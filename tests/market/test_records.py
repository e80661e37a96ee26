"""The node's fast result-record builders give exactly the ledger dataclasses' bytes."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ledger.results import EventRecord, TradeRecord, decode_result
from market import transactions as txn
from orderbook.events import Trade
from orderbook.types import Instrument, Product, Side

ids = st.integers(min_value=0, max_value=2**62)
amounts = st.integers(min_value=1, max_value=2**60)
accounts = st.binary(min_size=32, max_size=32)


@given(
    tx_id=st.binary(min_size=32, max_size=32),
    product=st.sampled_from(list(Product)),
    slot=st.integers(min_value=0, max_value=2**40),
    price=amounts,
    quantity=amounts,
    maker=accounts,
    taker=accounts,
    maker_order=ids,
    taker_order=ids,
    side=st.sampled_from(list(Side)),
)
def test_trade_record_is_the_dataclass_bytes(
    tx_id, product, slot, price, quantity, maker, taker, maker_order, taker_order, side
):
    trade = Trade(
        Instrument(product, slot),
        maker_order,
        taker_order,
        maker.hex(),
        taker.hex(),
        price,
        quantity,
        0,
        0,
        side,
    )
    want = TradeRecord(
        tx_id, product.value, slot, price, quantity, maker, taker, maker_order, taker_order
    )
    data = txn.trade_record(tx_id, trade)
    assert data == want.to_bytes()
    assert decode_result(data) == want


@given(tx_id=st.binary(min_size=32, max_size=32), account=accounts, order_id=ids)
def test_accepted_record_is_the_dataclass_bytes(tx_id, account, order_id):
    want = EventRecord(tx_id, "accepted", account, (order_id,))
    data = txn.accepted_record(tx_id, account, order_id)
    assert data == want.to_bytes()
    assert decode_result(data) == want
