"""Helpers for the order-book tests: a small market with two open books."""

from __future__ import annotations

import pytest

from orderbook import Instrument, Market, MarketConfig, Product, Side, STPMode

E = Instrument(Product.ELECTRICITY, 1)
H = Instrument(Product.HEAT, 1)
BID, ASK = Side.BID, Side.ASK
CONFIG = MarketConfig(
    price_step=5,
    min_price=5,
    max_price=1000,
    max_quantity=10_000,
    default_stp=STPMode.CANCEL_NEWEST,
)


class Checked(Market):
    """A market that runs the O(n) invariant check after every command."""

    __slots__ = ()

    def execute(self, command):  # type: ignore[no-untyped-def]
        events = super().execute(command)
        self._check()
        return events

    def place(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        events = super().place(*args, **kwargs)
        self._check()
        return events

    def cancel(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        events = super().cancel(*args, **kwargs)
        self._check()
        return events

    def amend(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        events = super().amend(*args, **kwargs)
        self._check()
        return events

    def advance_clock(self, now):  # type: ignore[no-untyped-def]
        events = super().advance_clock(now)
        self._check()
        return events


@pytest.fixture
def market() -> Checked:
    m = Checked(CONFIG)
    m.open_instrument(E)
    m.open_instrument(H)
    return m
