"""Events: what every market command returns.

A command returns a list of events in the order things happened. Either the
list is exactly ``[Rejected(...)]`` and the market did not change at all, or
it describes every change: an accepted order starts with ``Accepted``,
followed by its ``Trade``s (and the ``Cancelled`` events of self-trade
prevention), and ends with a ``Cancelled`` for any unfilled remainder that
may not rest (IOC, market orders).

Events are immutable named tuples (creating one costs about a tenth of a
frozen dataclass, and the matching loop creates one per trade). Unlike plain
tuples, two events are equal only if they are of the same class.
"""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple

from orderbook.types import Instrument, Side


class RejectReason(StrEnum):
    """Stable codes for why a command had no effect."""

    INVALID_ORDER_ID = "invalid_order_id"  # order id not a non-negative int
    INVALID_OWNER = "invalid_owner"  # owner not a non-empty str
    INVALID_SIDE = "invalid_side"
    INVALID_QUANTITY = "invalid_quantity"  # not an int > 0
    QUANTITY_TOO_LARGE = "quantity_too_large"  # above MarketConfig.max_quantity
    INVALID_PRICE = "invalid_price"  # not an int > 0
    OFF_TICK = "off_tick"  # not a multiple of MarketConfig.price_step
    PRICE_OUT_OF_BOUNDS = "price_out_of_bounds"  # outside [min_price, max_price]
    INVALID_TIF = "invalid_tif"  # not a TimeInForce, or GTD for a market order
    INVALID_STP = "invalid_stp"
    INVALID_POST_ONLY = "invalid_post_only"  # post-only that is IOC, FOK or a market order
    INVALID_PROTECTION = "invalid_protection"  # protection price on a limit order
    INVALID_EXPIRY = "invalid_expiry"  # GTD without an int expires_at, or expiry on non-GTD
    EXPIRED_ON_ARRIVAL = "expired_on_arrival"  # GTD with expires_at <= market clock
    DUPLICATE_ORDER_ID = "duplicate_order_id"  # an order with this id is resting
    INVALID_INSTRUMENT = "invalid_instrument"  # not an Instrument of a Product and int slot
    UNKNOWN_INSTRUMENT = "unknown_instrument"
    INSTRUMENT_EXISTS = "instrument_exists"  # OpenInstrument of an open instrument
    INSTRUMENT_CLOSED = "instrument_closed"  # order for, or re-open of, a closed instrument
    UNKNOWN_ORDER = "unknown_order"  # cancel / amend of an id that is not resting
    NOT_OWNER = "not_owner"
    NO_CHANGE = "no_change"  # amend that changes nothing
    WOULD_TAKE = "would_take"  # post-only order (or amend) that would trade
    FOK_UNFILLABLE = "fok_unfillable"
    IOC_UNFILLED = "ioc_unfilled"  # limit IOC that found nothing to trade with
    NO_LIQUIDITY = "no_liquidity"  # market order that found nothing within its protection
    SELF_TRADE = "self_trade"  # STP cancelled the incoming order before anything happened
    INVALID_TIME = "invalid_time"  # AdvanceClock to a non-int
    CLOCK_BACKWARDS = "clock_backwards"  # AdvanceClock to an earlier time
    UNKNOWN_COMMAND = "unknown_command"
    INVALID_MODE = "invalid_mode"  # SetMode with something other than a GridMode
    INVALID_GRID = "invalid_grid"  # not a Grid, or lacking what the mode needs
    UNKNOWN_BUS = "unknown_bus"  # the owner has no bus in the book's grid data
    INVALID_PREFERENCES = "invalid_preferences"  # not Preferences, or outside mode 1
    BOOK_CROSSED = "book_crossed"  # mode 2 set on a grid book that rests crossed
    UNKNOWN_TRADE = "unknown_trade"  # DecideTrade of a trade that is not pending
    TRADES_PENDING = "trades_pending"  # SetMode while trades await the DSO's decision


class CancelReason(StrEnum):
    """Why (part of) an order left the book: carried by ``Cancelled`` and ``Expired``."""

    REQUESTED = "requested"  # CancelOrder
    UNFILLED = "unfilled"  # remainder of an IOC or market order
    SELF_TRADE = "self_trade"  # self-trade prevention
    EXPIRED = "expired"  # GTD expiry by AdvanceClock
    INSTRUMENT_CLOSED = "instrument_closed"  # gate closure


class Accepted(NamedTuple):
    """An order passed validation and entered the market (``price`` None: market order)."""

    instrument: Instrument
    order_id: int
    owner: str
    side: Side
    price: int | None  # ticks per kWh
    quantity: int  # Wh


class Rejected(NamedTuple):
    """A command had no effect; ``order_id`` is None for commands without one."""

    order_id: int | None
    reason: RejectReason


class Trade(NamedTuple):
    """A match at the resting (maker) order's price."""

    instrument: Instrument
    maker_order_id: int
    taker_order_id: int
    maker_owner: str
    taker_owner: str
    price: int  # ticks per kWh
    quantity: int  # Wh
    maker_remaining: int  # Wh left on the maker after this trade
    taker_remaining: int  # Wh left on the taker after this trade
    taker_side: Side


class GridTrade(NamedTuple):
    """A match in a book run in mode 1, 3 or 4 (``orderbook.grid``): a ``Trade`` plus grid data.

    Money (tick x Wh): the buyer pays ``(price + buyer_charge) * quantity``,
    the seller receives ``(price - seller_charge) * quantity`` and the DSO
    the difference, ``(seller_charge + buyer_charge) * quantity``. The price
    is the maker's limit net of the maker's own charge (docs/orderbook.md).
    """

    instrument: Instrument
    maker_order_id: int
    taker_order_id: int
    maker_owner: str
    taker_owner: str
    price: int  # ticks per kWh
    quantity: int  # Wh
    maker_remaining: int  # Wh left on the maker after this trade
    taker_remaining: int  # Wh left on the taker after this trade
    taker_side: Side
    seller_charge: int  # ticks per kWh the seller pays the DSO (mode 3; else 0)
    buyer_charge: int  # ticks per kWh the buyer pays the DSO (mode 3; else 0)
    line: int | None  # mode 4: the line (child bus) that cut this match to its headroom


class LineBlocked(NamedTuple):
    """Mode 4: a match was skipped because ``line`` (child bus) had no headroom left that way."""

    instrument: Instrument
    maker_order_id: int
    taker_order_id: int
    line: int


class TradePending(NamedTuple):
    """Mode 4 with approval: the ``GridTrade`` just before waits for the DSO as ``trade_no``."""

    instrument: Instrument
    trade_no: int  # the book's number for this trade, from 0
    maker_order_id: int
    taker_order_id: int
    quantity: int  # Wh


class TradeDecided(NamedTuple):
    """The DSO approved or refused a pending trade; a refused trade is not settled.

    ``reason`` is ``approved``, ``refused`` (``DecideTrade``) or ``deadline``
    (the instrument closed with the trade still pending). A refusal releases
    the trade's flow on the lines; the orders' quantities are not restored.
    """

    instrument: Instrument
    trade_no: int
    approved: bool
    reason: str


class ModeSet(NamedTuple):
    """A book's operation mode (``orderbook.grid.GridMode``) and grid data were set."""

    instrument: Instrument
    mode: int


class Cancelled(NamedTuple):
    """``quantity`` Wh of an order were cancelled; ``remaining`` Wh stay live (0: gone)."""

    instrument: Instrument
    order_id: int
    owner: str
    quantity: int  # Wh cancelled
    remaining: int  # Wh still live after the cancel
    reason: CancelReason


class Expired(NamedTuple):
    """A resting order left the book by GTD expiry or gate closure."""

    instrument: Instrument
    order_id: int
    owner: str
    quantity: int  # Wh that were resting
    reason: CancelReason


class Amended(NamedTuple):
    """A resting order's price and/or quantity changed.

    ``priority_kept`` is True for a pure quantity reduction; otherwise the
    order went to the back of the queue (and may trade next, as a taker).
    """

    instrument: Instrument
    order_id: int
    owner: str
    price: int
    quantity: int
    old_price: int
    old_quantity: int
    priority_kept: bool


class InstrumentOpened(NamedTuple):
    """A book was opened for orders."""

    instrument: Instrument


class InstrumentClosed(NamedTuple):
    """Gate closure: the book refuses orders from now on (its orders expired first)."""

    instrument: Instrument


Event = (
    Accepted
    | Rejected
    | Trade
    | Cancelled
    | Expired
    | Amended
    | InstrumentOpened
    | InstrumentClosed
    | GridTrade
    | LineBlocked
    | ModeSet
    | TradePending
    | TradeDecided
)

EVENT_TYPES = (
    Accepted,
    Rejected,
    Trade,
    Cancelled,
    Expired,
    Amended,
    InstrumentOpened,
    InstrumentClosed,
    GridTrade,
    LineBlocked,
    ModeSet,
    TradePending,
    TradeDecided,
)


def _typed_eq(self: object, other: object) -> bool:
    return (
        type(self) is type(other)
        and isinstance(self, tuple)
        and isinstance(other, tuple)
        and tuple.__eq__(self, other)
    )


def _typed_ne(self: object, other: object) -> bool:
    return not _typed_eq(self, other)


def _tuple_hash(self: object) -> int:
    assert isinstance(self, tuple)
    return tuple.__hash__(self)


# Plain tuples compare by value only, so Accepted(...) could equal an unrelated
# event with the same fields; the tests compare event streams, so make equality
# typed. Set after class creation because NamedTuple bodies reject dunder fields.
for _cls in EVENT_TYPES:
    _cls.__eq__ = _typed_eq  # type: ignore[method-assign]
    _cls.__ne__ = _typed_ne  # type: ignore[method-assign]
    _cls.__hash__ = _tuple_hash  # type: ignore[method-assign]
