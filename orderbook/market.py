"""The market: many books keyed by instrument, one order-id space, one clock.

Two ways in, with the same semantics:

- ``Market.execute(command)`` takes a command dataclass (``orderbook.commands``);
- the fast path ``place`` / ``cancel`` / ``amend`` / ``open_instrument`` /
  ``close_instrument`` / ``advance_clock`` takes plain arguments and skips
  building a command object.

Every call returns a list of events (``orderbook.events``) and never raises
for a bad command: it gives ``[Rejected(order_id, reason)]`` and leaves the
market exactly as it was. Validation checks fields in the order of
``_place_reason`` and reports the first failure.

Semantics in brief (the details are in the docstrings of the methods):

- limit orders trade at the resting order's price, best price then oldest
  first; an unfilled GTC / GTD remainder rests at the back of its level;
- market orders (``price=None``) take liquidity up to the optional
  ``protection_price`` and never rest: GTC and IOC both mean IOC, FOK means
  all or nothing, GTD is rejected;
- an IOC or market order that would change nothing is ``Rejected``
  (``ioc_unfilled`` / ``no_liquidity``); after a partial fill its remainder
  gets ``Cancelled(reason=UNFILLED)``;
- the GTD clock is data: ``advance_clock(now)`` expires orders with
  ``expires_at <= now``, in (expires_at, order_id) order.
"""

from __future__ import annotations

import heapq
from heapq import heappush
from typing import TYPE_CHECKING

from orderbook.book import Book, _Order, _Side, iter_queue
from orderbook.commands import (
    AdvanceClock,
    AmendOrder,
    CancelOrder,
    CloseInstrument,
    DecideTrade,
    OpenInstrument,
    PlaceOrder,
    SetMode,
)
from orderbook.events import (
    Accepted,
    Amended,
    Cancelled,
    CancelReason,
    Expired,
    InstrumentClosed,
    InstrumentOpened,
    LineBlocked,
    Rejected,
    RejectReason,
    TradeDecided,
)
from orderbook.grid import GridMode, Preferences
from orderbook.gridmatch import crosses_net, take_lines, take_net
from orderbook.matching import fok_fillable, take
from orderbook.modes import GridMarket
from orderbook.state import valid_instrument
from orderbook.types import Instrument, Side, STPMode, TimeInForce

if TYPE_CHECKING:
    from orderbook.commands import Command
    from orderbook.events import Event

_new = tuple.__new__
_new_object = object.__new__
_BID = Side.BID
_ASK = Side.ASK
_GTC = TimeInForce.GTC
_GTD = TimeInForce.GTD
_IOC = TimeInForce.IOC
_FOK = TimeInForce.FOK
_REQUESTED = CancelReason.REQUESTED
_UNFILLED = CancelReason.UNFILLED
_SELF_TRADE = CancelReason.SELF_TRADE
_PREFERENCES = GridMode.PREFERENCES
_PRICE_SIGNALS = GridMode.PRICE_SIGNALS
# Limit key of a market order without protection: beyond every real level key
# (|key| <= 2**60) and below the EMPTY sentinel of an empty side (2**62).
_NO_LIMIT = 2**61
_R = RejectReason


class Market(GridMarket):
    """A continuous double-auction market of many books.

    Args:
        config: tick grid, price and quantity bounds, default STP mode.
        now: initial market clock (any integer unit; GTD expiries use it).
    """

    __slots__ = ()

    # ------------------------------------------------------------------ commands

    def execute(self, command: Command) -> list[Event]:
        """Apply one command and return its events (never raises for a bad command)."""
        if isinstance(command, PlaceOrder):
            c = command
            return self.place_grid(
                c.instrument,
                c.order_id,
                c.owner,
                c.side,
                c.quantity,
                c.price,
                c.tif,
                c.expires_at,
                c.post_only,
                c.stp,
                c.protection_price,
                c.preferences,
            )
        if isinstance(command, SetMode):
            return self.set_mode(command.instrument, command.mode, command.grid)
        if isinstance(command, DecideTrade):
            return self.decide_trade(command.instrument, command.trade_no, command.approve)
        if isinstance(command, CancelOrder):
            return self.cancel(command.order_id, command.owner)
        if isinstance(command, AmendOrder):
            return self.amend(command.order_id, command.owner, command.price, command.quantity)
        if isinstance(command, AdvanceClock):
            return self.advance_clock(command.now)
        if isinstance(command, OpenInstrument):
            return self.open_instrument(command.instrument)
        if isinstance(command, CloseInstrument):
            return self.close_instrument(command.instrument)
        return [Rejected(None, _R.UNKNOWN_COMMAND)]  # type: ignore[unreachable]

    def place(
        self,
        instrument: Instrument,
        order_id: int,
        owner: str,
        side: Side,
        quantity: int,
        price: int | None = None,
        tif: TimeInForce = _GTC,
        expires_at: int | None = None,
        post_only: bool = False,
        stp: STPMode | None = None,
        protection_price: int | None = None,
    ) -> list[Event]:
        """Submit an order (the fields of ``PlaceOrder``) and return its events.

        Args:
            instrument: the book (must be open).
            order_id: non-negative int, not resting anywhere in the market.
            owner: the submitter's account id, non-empty.
            side: ``Side.BID`` or ``Side.ASK`` (the enum members, not strings).
            quantity: Wh, 1..max_quantity.
            price: limit in ticks per kWh on the grid and within bounds; None
                makes a market order.
            tif: GTC / GTD rest their remainder; IOC cancels it; FOK trades
                everything or is rejected untouched.
            expires_at: GTD only: market clock value at which it expires
                (must be later than the current clock).
            post_only: rest only (GTC / GTD limit orders); rejected if it would trade.
            stp: self-trade prevention mode; None uses the market default.
            protection_price: market orders only: worst price to trade at.

        Returns:
            ``[Rejected(order_id, reason)]`` with the market unchanged, or
            ``Accepted`` then the ``Trade``s and self-trade ``Cancelled``
            events in matching order, then ``Cancelled(reason=UNFILLED)`` or
            ``Cancelled(reason=SELF_TRADE)`` for a remainder that may not rest.
            A remainder that rests gets no event of its own: the last
            ``Trade.taker_remaining`` (or ``Accepted.quantity``) is its size.

        Runtime complexity: O(1) to rest at an existing level, O(log L) to
        open a level (L levels on the side), plus O(t + k log L) to trade with
        t resting orders emptying k levels.
        """
        # Fast path: a valid GTC or IOC limit order with no expiry, post-only
        # or protection price: the bulk of any stream. It repeats the common
        # case of _place_reason and _place_valid (which handle everything) with
        # attribute lookups and calls trimmed; the property tests run both
        # paths against the same reference model.
        index = self._index
        if (
            type(price) is int
            and type(quantity) is int
            and type(order_id) is int
            and type(owner) is str
            and (tif is _GTC or tif is _IOC)
            and expires_at is None is protection_price
            and post_only is False
            and owner
            and 0 < quantity <= self._max_quantity
            and self._min_price <= price <= self._max_price
            and not price % self._step
            and order_id >= 0
            and order_id not in index
            and (stp is None or isinstance(stp, STPMode))
        ):
            try:
                book = self._fast.get(instrument)  # open books in mode 2 only
            except TypeError:  # unhashable junk: _place_reason reports it
                book = None
            if book is not None:
                instrument = book.instrument  # the canonical object, even if given an equal tuple
                if side is _BID:
                    own = book.bids
                    opp = book.asks
                    limit_key = price  # worst ask key it may take
                    key = -price  # its own level's key
                elif side is _ASK:
                    own = book.asks
                    opp = book.bids
                    limit_key = -price
                    key = price
                else:
                    return [_new(Rejected, (order_id, _R.INVALID_SIDE))]
                if stp is None:
                    stp = self._default_stp
                if opp.best > limit_key:  # does not cross
                    if tif is _IOC:
                        return [_new(Rejected, (order_id, _R.IOC_UNFILLED))]
                    level = own.levels.get(key)
                    if level is None:
                        order = _Order(order_id, owner, own, price, quantity, None, stp, False)
                        own.append(order)
                    else:
                        # _Order.__init__ and _Side.append inlined: this is the most
                        # frequent operation, and a Python call costs ~60 ns here.
                        order = _new_object(_Order)
                        order.order_id = order_id
                        order.owner = owner
                        order.side = own
                        order.price = price
                        order.quantity = quantity
                        order.expires_at = None
                        order.stp = stp
                        order.post_only = False
                        tail = level.tail
                        order.level = level
                        order.prev = tail
                        order.next = None
                        tail.next = order  # type: ignore[union-attr]  # a level is never empty
                        level.tail = order
                        level.volume += quantity
                        level.count += 1
                    index[order_id] = order
                    return [_new(Accepted, (instrument, order_id, owner, side, price, quantity))]
                events: list[Event] = [
                    _new(Accepted, (instrument, order_id, owner, side, price, quantity))
                ]
                remaining, stopped = take(
                    index, opp, order_id, owner, side, quantity, limit_key, stp, events
                )
                if remaining:
                    if stopped:
                        return _stopped(events, instrument, order_id, owner, remaining)
                    if tif is _GTC:
                        order = _Order(order_id, owner, own, price, remaining, None, stp, False)
                        index[order_id] = order
                        own.append(order)
                    else:
                        events.append(
                            _new(
                                Cancelled,
                                (instrument, order_id, owner, remaining, 0, _UNFILLED),
                            )
                        )
                return events
            # The same common case in a book run in a grid mode.
            try:
                book = self._books.get(instrument)
            except TypeError:
                book = None
            if book is not None and book.grid is not None and not book.closed:
                state = book.grid
                bus = state.owner_bus.get(owner)
                if side is _BID:
                    own, opp = book.bids, book.asks
                elif side is _ASK:
                    own, opp = book.asks, book.bids
                else:
                    return [_new(Rejected, (order_id, _R.INVALID_SIDE))]
                if bus is None:
                    return [_new(Rejected, (order_id, _R.UNKNOWN_BUS))]
                mode = state.mode
                if mode is not _PREFERENCES:
                    # Does any net price cross? Mode 4: the best key; mode 3: the
                    # buses' heap tops within reach, by charge (crosses_net). Most
                    # orders rest without a walk.
                    taker_bid = side is _BID
                    limit_key = price if taker_bid else -price
                    if stp is None:
                        stp = self._default_stp
                    if mode is _PRICE_SIGNALS:
                        crosses = opp.best <= limit_key and crosses_net(
                            state, opp, 1 if taker_bid else 0, bus, limit_key
                        )
                    else:
                        crosses = opp.best <= limit_key
                    instrument = book.instrument
                    accepted = (instrument, order_id, owner, side, price, quantity)
                    remaining = quantity
                    if crosses:
                        events = [_new(Accepted, accepted)]
                        match = take_net if mode is _PRICE_SIGNALS else take_lines
                        remaining, stopped = match(
                            index,
                            state,
                            opp,
                            order_id,
                            owner,
                            side,
                            bus,
                            quantity,
                            limit_key,
                            stp,
                            events,
                        )
                        if stopped:
                            if not any(type(e) is not LineBlocked for e in events[1:]):
                                return [_new(Rejected, (order_id, _R.SELF_TRADE))]
                            events.append(
                                _new(
                                    Cancelled,
                                    (instrument, order_id, owner, remaining, 0, _SELF_TRADE),
                                )
                            )
                            return events
                        if not remaining:
                            return events
                    if tif is _IOC:
                        if not crosses or not any(type(e) is not LineBlocked for e in events[1:]):
                            return [_new(Rejected, (order_id, _R.IOC_UNFILLED))]
                        events.append(
                            _new(Cancelled, (instrument, order_id, owner, remaining, 0, _UNFILLED))
                        )
                        return events
                    # Rest: _Order.__init__, _Side.append and the heap push inlined.
                    order = _new_object(_Order)
                    order.order_id = order_id
                    order.owner = owner
                    order.side = own
                    order.price = price
                    order.quantity = remaining
                    order.expires_at = None
                    order.stp = stp
                    order.post_only = False
                    order.bus = bus
                    order.prefs = None
                    seq = order.seq = state.seq
                    state.seq = seq + 1
                    index[order_id] = order
                    key = -price if taker_bid else price  # its own level's key
                    level = own.levels.get(key)
                    if level is None:
                        order.level = order.prev = order.next = None
                        own.append(order)
                    else:
                        tail = level.tail
                        order.level = level
                        order.prev = tail
                        order.next = None
                        tail.next = order  # type: ignore[union-attr]  # a level is never empty
                        level.tail = order
                        level.volume += remaining
                        level.count += 1
                    if mode is _PRICE_SIGNALS:
                        pushes = state.pushes = state.pushes + 1
                        if pushes > 2 * state.live_hint + 4096:  # mostly stale: rebuild
                            state.index_orders(book)
                        else:
                            k = 0 if taker_bid else 1
                            heappush(state.heaps[k][bus], (key, seq, order_id))
                            tops = state.tops[k]
                            if key < tops[bus]:
                                tops[bus] = key
                    if crosses:
                        return events
                    return [_new(Accepted, accepted)]
                return self._place_grid(
                    book,
                    state,
                    own,
                    opp,
                    order_id,
                    owner,
                    side,
                    bus,
                    quantity,
                    price,
                    tif,
                    None,
                    False,
                    self._default_stp if stp is None else stp,
                    None,
                    None,
                )
        return self._place_slow(
            instrument,
            order_id,
            owner,
            side,
            quantity,
            price,
            tif,
            expires_at,
            post_only,
            stp,
            protection_price,
            None,
        )

    def place_grid(
        self,
        instrument: Instrument,
        order_id: int,
        owner: str,
        side: Side,
        quantity: int,
        price: int | None = None,
        tif: TimeInForce = _GTC,
        expires_at: int | None = None,
        post_only: bool = False,
        stp: STPMode | None = None,
        protection_price: int | None = None,
        preferences: Preferences | None = None,
    ) -> list[Event]:
        """``place`` with mode-1 ``preferences`` (the fields of ``PlaceOrder``).

        Any book takes orders through ``place``; only a book in mode 1 takes
        preferences (elsewhere: ``Rejected(invalid_preferences)``). In a grid
        mode the owner needs a bus in the book's grid data (else
        ``Rejected(unknown_bus)``); matching follows ``orderbook.gridmatch``
        and trades are ``GridTrade`` events.
        """
        if preferences is None:
            return self.place(
                instrument,
                order_id,
                owner,
                side,
                quantity,
                price,
                tif,
                expires_at,
                post_only,
                stp,
                protection_price,
            )
        return self._place_slow(
            instrument,
            order_id,
            owner,
            side,
            quantity,
            price,
            tif,
            expires_at,
            post_only,
            stp,
            protection_price,
            preferences,
        )

    def _place_slow(
        self,
        instrument: Instrument,
        order_id: int,
        owner: str,
        side: Side,
        quantity: int,
        price: int | None,
        tif: TimeInForce,
        expires_at: int | None,
        post_only: bool,
        stp: STPMode | None,
        protection_price: int | None,
        preferences: Preferences | None,
    ) -> list[Event]:
        """Validate any order, then run it in its book's mode."""
        reason = self._place_reason(
            instrument,
            order_id,
            owner,
            side,
            quantity,
            price,
            tif,
            expires_at,
            post_only,
            stp,
            protection_price,
        )
        if reason is not None:
            return [_new(Rejected, (order_id, reason))]
        book = self._books[instrument]
        state = book.grid
        stp = self._default_stp if stp is None else stp
        if preferences is not None and (
            type(preferences) is not Preferences
            or state is None
            or state.mode is not GridMode.PREFERENCES
        ):
            return [Rejected(order_id, _R.INVALID_PREFERENCES)]
        own, opp = (book.bids, book.asks) if side is _BID else (book.asks, book.bids)
        if state is not None:
            bus = state.owner_bus.get(owner)
            if bus is None:
                return [Rejected(order_id, _R.UNKNOWN_BUS)]
            return self._place_grid(
                book,
                state,
                own,
                opp,
                order_id,
                owner,
                side,
                bus,
                quantity,
                price,
                tif,
                expires_at,
                post_only,
                stp,
                protection_price,
                preferences,
            )
        return self._place_valid(
            book,
            own,
            opp,
            order_id,
            owner,
            side,
            quantity,
            price,
            tif,
            expires_at,
            post_only,
            stp,
            protection_price,
        )

    def _place_valid(
        self,
        book: Book,
        own: _Side,
        opp: _Side,
        order_id: int,
        owner: str,
        side: Side,
        quantity: int,
        price: int | None,
        tif: TimeInForce,
        expires_at: int | None,
        post_only: bool,
        stp: STPMode,
        protection_price: int | None,
    ) -> list[Event]:
        """Run a validated order: post-only and FOK checks, matching, then rest or cancel."""
        limit = price if price is not None else protection_price
        limit_key = _NO_LIMIT if limit is None else limit if side is _BID else -limit
        crosses = opp.best <= limit_key
        if post_only and crosses:
            return [Rejected(order_id, _R.WOULD_TAKE)]
        if tif is _FOK and not fok_fillable(opp, owner, quantity, limit_key, stp):
            return [Rejected(order_id, _R.FOK_UNFILLABLE)]
        instrument = book.instrument
        events: list[Event] = [_new(Accepted, (instrument, order_id, owner, side, price, quantity))]
        remaining = quantity
        stopped = False
        if crosses:
            remaining, stopped = take(
                self._index, opp, order_id, owner, side, quantity, limit_key, stp, events
            )
        if stopped:
            return _stopped(events, instrument, order_id, owner, remaining)
        if not remaining:
            return events
        if price is not None and (tif is _GTC or tif is _GTD):
            self._rest(_Order(order_id, owner, own, price, remaining, expires_at, stp, post_only))
            return events
        # IOC, FOK (cannot happen: checked above) and market orders never rest.
        if len(events) == 1:
            return [Rejected(order_id, _R.NO_LIQUIDITY if price is None else _R.IOC_UNFILLED)]
        events.append(Cancelled(instrument, order_id, owner, remaining, 0, CancelReason.UNFILLED))
        return events

    def cancel(self, order_id: int, owner: str | None = None) -> list[Event]:
        """Cancel a resting order; ``owner`` None skips the ownership check.

        Runtime complexity: O(1), or O(log L) when its level empties.
        """
        index = self._index
        if type(order_id) is not int or order_id < 0:
            return [_new(Rejected, (order_id, _R.INVALID_ORDER_ID))]
        order = index.pop(order_id, None)
        if order is None:
            return [_new(Rejected, (order_id, _R.UNKNOWN_ORDER))]
        if owner is not None and owner != order.owner:
            index[order_id] = order  # put back: the id index's order is not state
            return [_new(Rejected, (order_id, _R.NOT_OWNER))]
        side = order.side
        quantity = order.quantity
        # _Side.unlink inlined.
        level = order.level
        prev = order.prev
        nxt = order.next
        if prev is None:
            level.head = nxt  # type: ignore[union-attr]  # a resting order has a level
        else:
            prev.next = nxt
        if nxt is None:
            level.tail = prev  # type: ignore[union-attr]
        else:
            nxt.prev = prev
        level.volume -= quantity  # type: ignore[union-attr]
        level.count -= 1  # type: ignore[union-attr]
        order.level = None
        if prev is None and nxt is None:
            side.drop_level(level)  # type: ignore[arg-type]
        return [_new(Cancelled, (side.instrument, order_id, order.owner, quantity, 0, _REQUESTED))]

    def amend(
        self,
        order_id: int,
        owner: str | None = None,
        price: int | None = None,
        quantity: int | None = None,
    ) -> list[Event]:
        """Change a resting order's price and/or open quantity (None: unchanged).

        A pure quantity reduction keeps the queue position. A price change or
        a quantity increase moves the order to the back of its (new) level; if
        the new price crosses, the order first trades as a taker with its own
        STP mode, and what is left rests (a post-only order that would cross
        is rejected instead, unchanged). Rejections, in this order:
        invalid_order_id, unknown_order, not_owner, invalid_price / off_tick /
        price_out_of_bounds, invalid_quantity / quantity_too_large, no_change.
        """
        if type(order_id) is not int or order_id < 0:
            return [Rejected(order_id, _R.INVALID_ORDER_ID)]
        order = self._index.get(order_id)
        if order is None:
            return [Rejected(order_id, _R.UNKNOWN_ORDER)]
        if owner is not None and owner != order.owner:
            return [Rejected(order_id, _R.NOT_OWNER)]
        if price is not None:
            reason = self._price_reason(price)
            if reason is not None:
                return [Rejected(order_id, reason)]
        if quantity is not None:
            if type(quantity) is not int or quantity <= 0:
                return [Rejected(order_id, _R.INVALID_QUANTITY)]
            if quantity > self._max_quantity:
                return [Rejected(order_id, _R.QUANTITY_TOO_LARGE)]
        old_price, old_quantity = order.price, order.quantity
        new_price = old_price if price is None else price
        new_quantity = old_quantity if quantity is None else quantity
        if new_price == old_price and new_quantity == old_quantity:
            return [Rejected(order_id, _R.NO_CHANGE)]
        side = order.side
        instrument = side.instrument
        if new_price == old_price and new_quantity < old_quantity:
            order.quantity = new_quantity
            order.encoded = None  # its snapshot text changed
            level = order.level
            assert level is not None
            level.volume -= old_quantity - new_quantity
            return [
                _new(
                    Amended,
                    (
                        instrument,
                        order_id,
                        order.owner,
                        new_price,
                        new_quantity,
                        old_price,
                        old_quantity,
                        True,
                    ),
                )
            ]
        book = self._books[instrument]
        if book.grid is not None:
            return self._amend_grid(book, book.grid, order, new_price, new_quantity)
        opp = book.asks if side is book.bids else book.bids
        limit_key = new_price if side is book.bids else -new_price
        crosses = opp.best <= limit_key
        if order.post_only and crosses:
            return [Rejected(order_id, _R.WOULD_TAKE)]
        side.unlink(order)
        events: list[Event] = [
            Amended(
                instrument,
                order_id,
                order.owner,
                new_price,
                new_quantity,
                old_price,
                old_quantity,
                False,
            )
        ]
        order.price = new_price
        order.quantity = new_quantity
        order.encoded = None  # its snapshot text changed
        if crosses:
            remaining, stopped = take(
                self._index,
                opp,
                order_id,
                order.owner,
                side.side,
                new_quantity,
                limit_key,
                order.stp,
                events,
            )
            if stopped or not remaining:
                del self._index[order_id]
                if stopped:
                    events.append(
                        Cancelled(
                            instrument, order_id, order.owner, remaining, 0, CancelReason.SELF_TRADE
                        )
                    )
                return events
            order.quantity = remaining
        side.append(order)
        # Re-queued, not new: the level's cached text cannot see it (orderbook.digest).
        order.level.encoded = None  # type: ignore[union-attr]  # just queued
        return events

    def open_instrument(self, instrument: Instrument) -> list[Event]:
        """Open a book for ``instrument`` (a Product and an int slot)."""
        if not valid_instrument(instrument):
            return [Rejected(None, _R.INVALID_INSTRUMENT)]
        book = self._books.get(instrument)
        if book is not None:
            return [Rejected(None, _R.INSTRUMENT_CLOSED if book.closed else _R.INSTRUMENT_EXISTS)]
        self._open_book(instrument)
        return [InstrumentOpened(instrument)]

    def discard_instrument(self, instrument: Instrument) -> bool:
        """Remove an open book that holds no order: undo an open that nothing used.

        A caller that opens a book for the order that first names it (the
        market state machine does, per delivery slot) undoes the open when
        that order is rejected, so a refused command leaves no trace.

        Returns:
            True if the book was removed; False, changing nothing, if the
            instrument is unknown, closed, or has resting orders.
        """
        book = self._books.get(instrument)
        if (
            book is None
            or book.closed
            or book.best_bid() is not None
            or book.best_ask() is not None
        ):
            return False
        del self._books[instrument]
        self._digest.instruments = self.instruments()  # its cache assumes books only come
        return True

    def close_instrument(self, instrument: Instrument) -> list[Event]:
        """Gate closure: expire every resting order of the book, then refuse new ones.

        Orders expire bids first then asks, best price first, in queue order.
        A closed instrument stays closed (re-opening is rejected).
        """
        try:
            book = self._books.get(instrument)
        except TypeError:
            book = None
        if book is None:
            return [Rejected(None, _R.UNKNOWN_INSTRUMENT)]
        if book.closed:
            return [Rejected(None, _R.INSTRUMENT_CLOSED)]
        events: list[Event] = []
        index = self._index
        closed = CancelReason.INSTRUMENT_CLOSED
        for side in (book.bids, book.asks):
            for level in side.iter_levels():
                for order in iter_queue(level):
                    del index[order.order_id]
                    order.level = None
                    events.append(
                        Expired(instrument, order.order_id, order.owner, order.quantity, closed)
                    )
            side.clear()
        state = book.grid
        if state is not None:
            for trade_no in sorted(state.pending):  # the deadline: refused at the close
                state.release(trade_no)
                events.append(TradeDecided(instrument, trade_no, False, "deadline"))
        book.closed = True
        self._fast.pop(instrument, None)
        events.append(InstrumentClosed(instrument))
        return events

    def advance_clock(self, now: int) -> list[Event]:
        """Set the market clock to ``now``; expire GTD orders with ``expires_at <= now``.

        Expired events come in (expires_at, order_id) order. An earlier ``now``
        is rejected (``clock_backwards``). Runtime complexity: O(k log n) for
        k due entries.
        """
        if type(now) is not int:
            return [Rejected(None, _R.INVALID_TIME)]
        if now < self._clock:
            return [Rejected(None, _R.CLOCK_BACKWARDS)]
        self._clock = now
        expiries = self._expiries
        index = self._index
        events: list[Event] = []
        reason = CancelReason.EXPIRED
        while expiries and expiries[0][0] <= now:
            _, order_id, _, order = heapq.heappop(expiries)
            if index.get(order_id) is not order:
                continue  # cancelled, filled or closed since: stale entry
            del index[order_id]
            side = order.side
            events.append(Expired(side.instrument, order_id, order.owner, order.quantity, reason))
            side.unlink(order)
        return events


def _stopped(
    events: list[Event], instrument: Instrument, order_id: int, owner: str, remaining: int
) -> list[Event]:
    """Events of an incoming order that self-trade prevention cancelled."""
    if len(events) == 1:  # only Accepted: nothing changed, so it is a rejection
        return [Rejected(order_id, _R.SELF_TRADE)]
    events.append(Cancelled(instrument, order_id, owner, remaining, 0, CancelReason.SELF_TRADE))
    return events
