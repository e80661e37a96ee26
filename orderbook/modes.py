"""The market's commands for books run in a grid mode: set the mode, match, decide trades.

``GridMarket`` holds what ``orderbook.market.Market`` adds for modes 1, 3
and 4 (``orderbook.grid``): ``set_mode``, the matching of a validated order
or a priority-losing amend in a grid book (through ``orderbook.gridmatch``),
and the DSO's decisions on pending mode-4 trades. ``Market`` inherits it
and routes to it; plain (mode 2) books never come here.
"""

from __future__ import annotations

import heapq
from typing import TYPE_CHECKING

from orderbook.book import _Order
from orderbook.events import (
    Accepted,
    Amended,
    Cancelled,
    CancelReason,
    LineBlocked,
    ModeSet,
    Rejected,
    RejectReason,
    TradeDecided,
)
from orderbook.grid import Grid, GridMode, Preferences
from orderbook.gridmatch import (
    candidates,
    crosses_net,
    fok_fillable_grid,
    lazy,
    take_grid,
    take_lines,
    take_net,
)
from orderbook.gridstate import GridState
from orderbook.state import MarketState
from orderbook.types import Instrument, Side, STPMode, TimeInForce

if TYPE_CHECKING:
    from collections.abc import Iterable

    from orderbook.book import Book, _Side
    from orderbook.events import Event

_new = tuple.__new__
_BID = Side.BID
_GTC = TimeInForce.GTC
_GTD = TimeInForce.GTD
_FOK = TimeInForce.FOK
_UNFILLED = CancelReason.UNFILLED
_SELF_TRADE = CancelReason.SELF_TRADE
# Limit key of a market order without protection (as in orderbook.market).
_NO_LIMIT = 2**61
_R = RejectReason


class GridMarket(MarketState):
    """Modes 1, 3 and 4 of the market's books (the plain commands are in ``Market``)."""

    __slots__ = ()

    def _place_grid(
        self,
        book: Book,
        state: GridState,
        own: _Side,
        opp: _Side,
        order_id: int,
        owner: str,
        side: Side,
        bus: int,
        quantity: int,
        price: int | None,
        tif: TimeInForce,
        expires_at: int | None,
        post_only: bool,
        stp: STPMode,
        protection_price: int | None,
        preferences: Preferences | None,
    ) -> list[Event]:
        """Run a validated order in a book in mode 1, 3 or 4 (``orderbook.gridmatch``)."""
        limit = price if price is not None else protection_price
        limit_key = _NO_LIMIT if limit is None else limit if side is _BID else -limit
        taker_bid = side is _BID
        cands: Iterable[_Order]
        if state.mode is GridMode.PREFERENCES or tif is _FOK:
            ranked = candidates(state, opp, taker_bid, owner, bus, preferences, limit_key)
            if post_only and ranked:
                return [Rejected(order_id, _R.WOULD_TAKE)]
            if tif is _FOK and not fok_fillable_grid(
                state, ranked, owner, side, bus, quantity, stp
            ):
                return [Rejected(order_id, _R.FOK_UNFILLABLE)]
            cands = ranked
        else:
            # A lower bound on the best net key first: most orders rest untouched.
            if state.mode is GridMode.PRICE_SIGNALS:
                crosses = crosses_net(state, opp, 1 if taker_bid else 0, bus, limit_key)
            else:
                crosses = opp.best <= limit_key
            if not crosses:
                cands = ()
            else:
                cands = lazy(self._index, state, opp, taker_bid, bus, limit_key)
                if post_only and next(
                    lazy(self._index, state, opp, taker_bid, bus, limit_key), None
                ):
                    return [Rejected(order_id, _R.WOULD_TAKE)]
        instrument = book.instrument
        events: list[Event] = [_new(Accepted, (instrument, order_id, owner, side, price, quantity))]
        remaining, stopped = quantity, False
        if cands:
            index = self._index
            if state.mode is GridMode.PRICE_SIGNALS and tif is not _FOK:
                remaining, stopped = take_net(
                    index, state, opp, order_id, owner, side, bus, quantity, limit_key, stp, events
                )
            elif state.mode is GridMode.LINE_VALIDATION and tif is not _FOK:
                remaining, stopped = take_lines(
                    index, state, opp, order_id, owner, side, bus, quantity, limit_key, stp, events
                )
            else:
                remaining, stopped = take_grid(
                    index, state, opp, cands, order_id, owner, side, bus, quantity, stp, events
                )
            if stopped:
                if not any(type(e) is not LineBlocked for e in events[1:]):
                    return [Rejected(order_id, _R.SELF_TRADE)]
                events.append(Cancelled(instrument, order_id, owner, remaining, 0, _SELF_TRADE))
                return events
            if not remaining:
                return events
        if price is not None and (tif is _GTC or tif is _GTD):
            order = _Order(order_id, owner, own, price, remaining, expires_at, stp, post_only)
            order.bus = bus
            order.prefs = preferences
            seq = order.seq = state.seq
            state.seq = seq + 1
            if expires_at is None:
                # _rest and GridState.track inlined for the common case.
                self._index[order_id] = order
                own.append(order)
                heaps = state.heaps
                if heaps:
                    state.pushes += 1
                    if state.pushes > 2 * state.live_hint + 4096:
                        state.index_orders(book)
                    else:
                        key = own.sign * price
                        k = 1 if own is book.asks else 0
                        heapq.heappush(heaps[k][bus], (key, seq, order_id))
                        tops = state.tops[k]
                        if key < tops[bus]:
                            tops[bus] = key
            else:
                self._rest(order)
                state.track(order, book)
            return events
        if not any(type(e) is not LineBlocked for e in events[1:]):
            return [Rejected(order_id, _R.NO_LIQUIDITY if price is None else _R.IOC_UNFILLED)]
        events.append(Cancelled(instrument, order_id, owner, remaining, 0, _UNFILLED))
        return events

    def _amend_grid(
        self, book: Book, state: GridState, order: _Order, new_price: int, new_quantity: int
    ) -> list[Event]:
        """The priority-losing amend of an order in a grid book: re-match, then re-queue."""
        side = order.side
        bids = side is book.bids
        opp = book.asks if bids else book.bids
        limit_key = new_price if bids else -new_price
        cands: Iterable[_Order]
        if state.mode is GridMode.PREFERENCES:
            cands = candidates(state, opp, bids, order.owner, order.bus, order.prefs, limit_key)
            crosses = bool(cands)
        else:
            cands = ()  # take_net / take_lines find them as they match
            crosses = opp.best <= limit_key  # a quick bound: exact below if post-only
            if order.post_only and crosses:
                found = lazy(self._index, state, opp, bids, order.bus, limit_key)
                crosses = next(found, None) is not None
        order_id = order.order_id
        if order.post_only and crosses:
            return [Rejected(order_id, _R.WOULD_TAKE)]
        instrument = book.instrument
        events: list[Event] = [
            Amended(
                instrument,
                order_id,
                order.owner,
                new_price,
                new_quantity,
                order.price,
                order.quantity,
                False,
            )
        ]
        side.unlink(order)
        order.price = new_price
        order.quantity = new_quantity
        order.encoded = None  # its snapshot text changed
        if crosses:
            args = (order_id, order.owner, side.side, order.bus, new_quantity)
            if state.mode is GridMode.PRICE_SIGNALS:
                remaining, stopped = take_net(
                    self._index, state, opp, *args, limit_key, order.stp, events
                )
            elif state.mode is GridMode.LINE_VALIDATION:
                remaining, stopped = take_lines(
                    self._index, state, opp, *args, limit_key, order.stp, events
                )
            else:
                remaining, stopped = take_grid(
                    self._index, state, opp, cands, *args, order.stp, events
                )
            if stopped or not remaining:
                del self._index[order_id]
                if stopped:
                    events.append(
                        Cancelled(instrument, order_id, order.owner, remaining, 0, _SELF_TRADE)
                    )
                return events
            order.quantity = remaining
        order.seq = state.seq
        state.seq += 1
        side.append(order)
        order.level.encoded = None  # type: ignore[union-attr]  # re-queued (orderbook.digest)
        state.track(order, book)
        return events

    def set_mode(
        self, instrument: Instrument, mode: GridMode, grid: Grid | None = None
    ) -> list[Event]:
        """Set the operation mode of an open book and the grid data it needs.

        Allowed before the first order and while the book trades. Resting
        orders stay, renumbered for time priority in price-then-queue order
        (best price first); each gets its owner's bus, and keeps any
        preferences it had (binding in mode 1 only). Mode 2 drops the grid
        data and the orders' grid fields, and the book is a plain book again.
        Mode 4 starts its flows at ``grid.base_flow``; a book already in mode
        4 on the same feeder (same ``parent``) keeps the flows of its trades
        (``flow - old base + new base``), and new capacities below them are
        refused.

        Returns:
            ``[ModeSet(instrument, mode)]``, or ``[Rejected(None, reason)]``
            with the market unchanged: unknown_instrument, instrument_closed,
            invalid_mode (not a ``GridMode``), trades_pending (trades
            await the DSO's decision), book_crossed (mode 2 on a
            book that rests crossed: its orders must be cancelled or amended
            first), invalid_grid (not a ``Grid``,
            lacking what the mode needs, a grid for mode 2, or capacities
            below carried flows), unknown_bus (a resting order's owner has no
            bus).

        Runtime complexity: O(n + B^2) for n resting orders and B buses.
        """
        try:
            book = self._books.get(instrument)
        except TypeError:
            book = None
        if book is None:
            return [Rejected(None, _R.UNKNOWN_INSTRUMENT)]
        if book.closed:
            return [Rejected(None, _R.INSTRUMENT_CLOSED)]
        if type(mode) is not GridMode:
            return [Rejected(None, _R.INVALID_MODE)]
        if book.grid is not None and book.grid.pending:
            return [Rejected(None, _R.TRADES_PENDING)]
        orders = book.iter_orders()  # bids then asks, best first, queue order
        if mode is GridMode.BIDS_OFFERS:
            if grid is not None:
                return [Rejected(None, _R.INVALID_GRID)]
            bid, ask = book.best_bid(), book.best_ask()
            if bid is not None and ask is not None and bid >= ask:
                return [Rejected(None, _R.BOOK_CROSSED)]
            for order in orders:
                if getattr(order, "seq", None) is not None:
                    del order.seq, order.bus, order.prefs
            new_state = None
        else:
            if type(grid) is not Grid or grid.missing(mode) is not None:
                return [Rejected(None, _R.INVALID_GRID)]
            old = book.grid
            new_state = GridState(mode, grid, trade_no=0 if old is None else old.trade_no)
            if (
                mode is GridMode.LINE_VALIDATION
                and old is not None
                and old.mode is GridMode.LINE_VALIDATION
                and old.parent == grid.parent
            ):
                base = new_state.flow
                old_base = old.grid.base_flow or [0] * grid.n_buses
                flow = [f - b0 + b1 for f, b0, b1 in zip(old.flow, old_base, base, strict=True)]
                if any(
                    abs(f) > c
                    for f, c, p in zip(flow, grid.capacity, grid.parent, strict=True)
                    if p >= 0
                ):
                    return [Rejected(None, _R.INVALID_GRID)]
                new_state.flow = flow
            owner_bus = new_state.owner_bus
            if any(order.owner not in owner_bus for order in orders):
                return [Rejected(None, _R.UNKNOWN_BUS)]
            for seq, order in enumerate(orders):
                order.seq = seq
                order.bus = owner_bus[order.owner]
                order.prefs = getattr(order, "prefs", None)
            new_state.seq = len(orders)
            new_state.index_orders(book)
        for order in orders:
            order.encoded = None  # its snapshot text changed
            order.level.encoded = None  # type: ignore[union-attr]
        book.grid = new_state
        if new_state is None:
            self._fast[instrument] = book
        else:
            self._fast.pop(instrument, None)
        return [ModeSet(book.instrument, int(mode))]

    def decide_trade(self, instrument: Instrument, trade_no: int, approve: bool) -> list[Event]:
        """The DSO's decision on a pending trade of a mode-4 book with approval.

        Approval makes the trade final; refusal takes its flow off the lines
        (the state machine does not settle it). Deadline rule: a trade still
        pending when the instrument closes is refused (``close_instrument``).

        Returns:
            ``[TradeDecided(instrument, trade_no, approve, "approved" |
            "refused")]``, or ``[Rejected(None, reason)]`` with the market
            unchanged: unknown_instrument, unknown_trade (not pending: never
            made, already decided, or the instrument closed).
        """
        try:
            book = self._books.get(instrument)
        except TypeError:
            book = None
        if book is None:
            return [Rejected(None, _R.UNKNOWN_INSTRUMENT)]
        state = book.grid
        if (
            state is None
            or type(trade_no) is not int
            or type(approve) is not bool
            or trade_no not in state.pending
        ):
            return [Rejected(None, _R.UNKNOWN_TRADE)]
        if approve:
            state.approve(trade_no)
        else:
            state.release(trade_no)
        reason = "approved" if approve else "refused"
        return [TradeDecided(book.instrument, trade_no, approve, reason)]
