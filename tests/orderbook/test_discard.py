"""``Market.discard_instrument`` undoes an open that nothing used, and nothing else."""

from __future__ import annotations

from orderbook.commands import OpenInstrument
from orderbook.market import Market
from orderbook.types import Instrument, Product, Side

SLOT = Instrument(Product.ELECTRICITY, 7)


def test_an_empty_book_is_discarded_and_the_digest_forgets_it():
    market, fresh = Market(), Market()
    market.execute(OpenInstrument(SLOT))
    assert market.discard_instrument(SLOT) is True
    assert market.instruments() == ()
    assert market.state_digest() == fresh.state_digest()
    # it can be opened again, and the digest sees the new book
    market.execute(OpenInstrument(SLOT))
    fresh.execute(OpenInstrument(SLOT))
    assert market.state_digest() == fresh.state_digest()
    market._check()


def test_a_book_with_orders_a_closed_or_an_unknown_one_is_kept():
    market = Market()
    assert market.discard_instrument(SLOT) is False
    market.execute(OpenInstrument(SLOT))
    market.place(SLOT, 1, "a", Side.BID, 100, 10)
    before = market.state_digest()
    assert market.discard_instrument(SLOT) is False
    assert market.state_digest() == before
    market.close_instrument(SLOT)
    assert market.discard_instrument(SLOT) is False
    assert market.instruments() == (SLOT,)
