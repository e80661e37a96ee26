"""Commands: the inputs of ``Market.execute``.

Each command is a frozen dataclass of plain data. The field types are what
the market expects; a command whose fields break them (a float quantity, a
negative id, an unknown enum value) is not an error but gives
``Rejected(reason)`` and leaves the market unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

from orderbook.grid import Grid, GridMode, Preferences
from orderbook.types import Instrument, Side, STPMode, TimeInForce


@dataclass(frozen=True, slots=True)
class OpenInstrument:
    """Open a book for ``instrument`` (a product and delivery slot)."""

    instrument: Instrument


@dataclass(frozen=True, slots=True)
class PlaceOrder:
    """Submit an order.

    Attributes:
        instrument: the book.
        order_id: non-negative int, unique among the market's resting orders.
        owner: account id of the submitter (non-empty).
        side: BID buys, ASK sells.
        quantity: Wh, > 0.
        price: limit in ticks per kWh; None makes a market order (IOC or FOK;
            GTC is read as IOC; never rests).
        tif: time in force.
        expires_at: market clock value at which a GTD order expires; only GTD.
        post_only: rejected (``would_take``) instead of trading on arrival.
        stp: self-trade prevention mode; None uses the market default.
        protection_price: for a market order, the worst price it may trade at.
        preferences: mode 1 only: what the order accepts of its counterparty.
    """

    instrument: Instrument
    order_id: int
    owner: str
    side: Side
    quantity: int
    price: int | None
    tif: TimeInForce = TimeInForce.GTC
    expires_at: int | None = None
    post_only: bool = False
    stp: STPMode | None = None
    protection_price: int | None = None
    preferences: Preferences | None = None


@dataclass(frozen=True, slots=True)
class SetMode:
    """Set the operation mode of an open book and the grid data it needs (``orderbook.grid``).

    ``grid`` is None for mode 2; modes 1, 3 and 4 need a ``Grid`` giving a bus
    to every owner with an order resting in the book.
    """

    instrument: Instrument
    mode: GridMode
    grid: Grid | None = None


@dataclass(frozen=True, slots=True)
class CancelOrder:
    """Cancel a resting order; ``owner`` None skips the ownership check (operator)."""

    order_id: int
    owner: str | None = None


@dataclass(frozen=True, slots=True)
class AmendOrder:
    """Change a resting order's price and/or remaining quantity (None: unchanged).

    A pure quantity reduction keeps the order's queue position; a price change
    or quantity increase sends it to the back of the queue at its (new) price,
    where it first trades as a taker if it has become marketable.
    """

    order_id: int
    owner: str | None = None
    price: int | None = None
    quantity: int | None = None


@dataclass(frozen=True, slots=True)
class CloseInstrument:
    """Gate closure: expire every resting order of ``instrument`` and refuse new ones."""

    instrument: Instrument


@dataclass(frozen=True, slots=True)
class AdvanceClock:
    """Set the market clock to ``now`` and expire every GTD order with expires_at <= now."""

    now: int


@dataclass(frozen=True, slots=True)
class DecideTrade:
    """The DSO approves (``approve`` True) or refuses a pending mode-4 trade of ``instrument``."""

    instrument: Instrument
    trade_no: int
    approve: bool


Command = (
    OpenInstrument
    | PlaceOrder
    | CancelOrder
    | AmendOrder
    | CloseInstrument
    | AdvanceClock
    | SetMode
    | DecideTrade
)
