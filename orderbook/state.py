"""Market state: books, the order-id index, the clock and GTD expiries, plus queries.

``MarketState`` holds everything a market knows and everything that only
reads it or rebuilds it: L1/L2/L3 queries, canonical snapshots and their
digest, restore, and the O(n) invariant check. ``orderbook.market.Market``
adds the commands that change it.
"""

from __future__ import annotations

import heapq
from typing import Self

from orderbook.book import EMPTY, Book, Depth, OrderView, _Order, _Side, view
from orderbook.digest import DigestCache, check_encoded
from orderbook.errors import GridError, InvariantError, SnapshotError, UnknownInstrument
from orderbook.events import RejectReason
from orderbook.grid import Grid, GridMode, Preferences
from orderbook.gridstate import GridState
from orderbook.snapshot import (
    BookRows,
    GridOrderRow,
    OrderRow,
    Row,
    decode_book,
    decode_market,
    encode_book,
    encode_market,
)
from orderbook.types import Instrument, MarketConfig, Product, Side, STPMode, TimeInForce

_R = RejectReason
_BID = Side.BID
_ASK = Side.ASK
_GTD = TimeInForce.GTD
_IOC = TimeInForce.IOC
_FOK = TimeInForce.FOK

# Expiry heap entries: (expires_at, order_id, sequence, order). The sequence
# number is unique, so entries never compare orders.
_Expiry = tuple[int, int, int, _Order]


class MarketState:
    """The state of a market and everything that only reads it: validation, queries,
    snapshots, the invariant check (the commands that change it are in ``Market``).

    Args:
        config: tick grid, price and quantity bounds, default STP mode.
        now: initial market clock (any integer unit; GTD expiries use it).
    """

    __slots__ = (
        "_books",
        "_clock",
        "_config",
        "_default_stp",
        "_digest",
        "_expiries",
        "_fast",
        "_index",
        "_max_price",
        "_max_quantity",
        "_min_price",
        "_seq",
        "_step",
    )

    def __init__(self, config: MarketConfig | None = None, *, now: int = 0) -> None:
        config = MarketConfig() if config is None else config
        if type(now) is not int:
            msg = f"now must be an int, got {now!r}"
            raise TypeError(msg)
        self._config = config
        self._step = config.price_step
        self._min_price = config.min_price
        self._max_price = config.max_price
        self._max_quantity = config.max_quantity
        self._default_stp = config.default_stp
        self._books: dict[Instrument, Book] = {}
        # The open books in mode 2: the only ones place()'s fast path serves,
        # so a plain book pays nothing for grid modes or closed books.
        self._fast: dict[Instrument, Book] = {}
        self._index: dict[int, _Order] = {}  # order id -> resting order, all books
        self._clock = now
        self._expiries: list[_Expiry] = []  # heap of GTD orders (lazy deletion)
        self._seq = 0  # tie-break of expiry entries; not part of the state
        self._digest = DigestCache()  # caches of the last digest; not part of the state

    def _place_reason(
        self,
        instrument: object,
        order_id: object,
        owner: object,
        side: object,
        quantity: object,
        price: object,
        tif: object,
        expires_at: object,
        post_only: object,
        stp: object,
        protection_price: object,
    ) -> RejectReason | None:
        """The first reason, in this order, why a place command is malformed (None: valid)."""
        if type(order_id) is not int or order_id < 0:
            return _R.INVALID_ORDER_ID
        try:
            book = self._books.get(instrument)  # type: ignore[call-overload]
        except TypeError:
            book = None
        if book is None:
            return _R.UNKNOWN_INSTRUMENT
        if book.closed:
            return _R.INSTRUMENT_CLOSED
        if order_id in self._index:
            return _R.DUPLICATE_ORDER_ID
        if type(owner) is not str or not owner:
            return _R.INVALID_OWNER
        if side is not _BID and side is not _ASK:
            return _R.INVALID_SIDE
        if type(quantity) is not int or quantity <= 0:
            return _R.INVALID_QUANTITY
        if quantity > self._max_quantity:
            return _R.QUANTITY_TOO_LARGE
        if price is not None:
            if protection_price is not None:
                return _R.INVALID_PROTECTION
            reason = self._price_reason(price)
        else:
            reason = None if protection_price is None else self._price_reason(protection_price)
        if reason is not None:
            return reason
        if not isinstance(tif, TimeInForce) or (price is None and tif is _GTD):
            return _R.INVALID_TIF
        if tif is _GTD:
            if type(expires_at) is not int:
                return _R.INVALID_EXPIRY
            if expires_at <= self._clock:
                return _R.EXPIRED_ON_ARRIVAL
        elif expires_at is not None:
            return _R.INVALID_EXPIRY
        if type(post_only) is not bool:
            return _R.INVALID_POST_ONLY
        if post_only and (price is None or tif is _IOC or tif is _FOK):
            return _R.INVALID_POST_ONLY
        if stp is not None and not isinstance(stp, STPMode):
            return _R.INVALID_STP
        return None

    def _price_reason(self, price: object) -> RejectReason | None:
        """Why ``price`` is not a valid price on the grid (None: valid)."""
        if type(price) is not int or price <= 0:
            return _R.INVALID_PRICE
        if price % self._step:
            return _R.OFF_TICK
        if not self._min_price <= price <= self._max_price:
            return _R.PRICE_OUT_OF_BOUNDS
        return None

    def _rest(self, order: _Order) -> None:
        """Index ``order``, queue it at the back of its level, and track its expiry."""
        self._index[order.order_id] = order
        order.side.append(order)
        if order.expires_at is not None:
            expiries = self._expiries
            self._seq += 1
            heapq.heappush(expiries, (order.expires_at, order.order_id, self._seq, order))
            if len(expiries) > 2 * len(self._index) + 1024:
                self._compact_expiries()

    def _compact_expiries(self) -> None:
        """Drop heap entries of orders that are gone (more than half of the heap)."""
        index = self._index
        self._expiries = [e for e in self._expiries if index.get(e[1]) is e[3]]
        heapq.heapify(self._expiries)

    # ------------------------------------------------------------------- queries

    @property
    def config(self) -> MarketConfig:
        """The market's configuration."""
        return self._config

    @property
    def clock(self) -> int:
        """The market clock (last ``advance_clock`` value)."""
        return self._clock

    def instruments(self) -> tuple[Instrument, ...]:
        """Every instrument ever opened (open or closed), sorted."""
        return tuple(sorted(self._books, key=_instrument_key))

    def is_open(self, instrument: Instrument) -> bool:
        """True if the instrument is open for orders."""
        book = self._books.get(instrument)
        return book is not None and not book.closed

    def book(self, instrument: Instrument) -> Book:
        """The book of ``instrument`` (read it, do not mutate it).

        Raises:
            UnknownInstrument: if it was never opened.
        """
        book = self._books.get(instrument)
        if book is None:
            msg = f"unknown instrument {instrument!r}"
            raise UnknownInstrument(msg)
        return book

    def best_bid(self, instrument: Instrument) -> int | None:
        """Highest resting bid price of the instrument, or None."""
        return self.book(instrument).best_bid()

    def best_ask(self, instrument: Instrument) -> int | None:
        """Lowest resting ask price of the instrument, or None."""
        return self.book(instrument).best_ask()

    def depth(self, instrument: Instrument, levels: int | None = None) -> Depth:
        """L2 depth: ``levels`` price levels per side (None: all), best first."""
        return self.book(instrument).depth(levels)

    def orders(self, instrument: Instrument) -> tuple[OrderView, ...]:
        """L3: resting orders, bids then asks, best price first, in queue order."""
        return self.book(instrument).orders()

    def order(self, order_id: int) -> OrderView | None:
        """The resting order with this id, or None."""
        order = self._index.get(order_id)
        return None if order is None else view(order)

    def __len__(self) -> int:
        """Number of resting orders in all books."""
        return len(self._index)

    # ------------------------------------------------------------ state & checks

    def snapshot(self) -> bytes:
        """Canonical bytes of the whole state (see ``orderbook.snapshot``). O(n)."""
        instruments = self.instruments()
        grid: list[object] = [
            state.entry_value(i.product.value, i.slot)
            for i in instruments
            if (state := self._books[i].grid) is not None
        ]
        return encode_market(
            self._config,
            self._clock,
            [_book_rows(self._books[i]) for i in instruments],
            grid or None,
        )

    def book_snapshot(self, instrument: Instrument) -> bytes:
        """Canonical bytes of one book's state."""
        return encode_book(_book_rows(self.book(instrument)))

    def state_digest(self) -> bytes:
        """The 32-byte digest of ``snapshot()``'s content: equal exactly when the states are equal.

        A two-level SHA-256 (per price level, then over the level hashes; see
        ``orderbook.digest``), kept up to date from caches, so it costs
        O(levels) plus the hashing of changed levels instead of O(resting
        orders). ``orderbook.digest.snapshot_digest(snapshot())`` is the
        reference.
        """
        books = self._books
        cache = self._digest
        if len(cache.instruments) != len(books):  # books are added, never removed
            cache.instruments = self.instruments()
        listed = [books[i] for i in cache.instruments]
        entries = [
            state.entry_text(b.instrument.product.value, b.instrument.slot)
            for b in listed
            if (state := b.grid) is not None
        ]
        grid = b"[" + b",".join(entries) + b"]" if entries else None
        return cache.market_digest(self._config, self._clock, listed, grid)

    @classmethod
    def restore(cls, data: bytes) -> Self:
        """Rebuild a market from ``snapshot()`` bytes.

        Raises:
            SnapshotError: if ``data`` is not a canonical snapshot of a valid state.
        """
        config, clock, books, grid = decode_market(data)
        market = cls(config, now=clock)
        states = _grid_states(grid)
        for rows in books:
            instrument = rows.instrument
            if instrument in market._books:
                msg = f"snapshot: duplicate instrument {instrument!r}"
                raise SnapshotError(msg)
            book = market._open_book(instrument)
            book.closed = rows.closed
            book.grid = states.pop(instrument, None)
            if book.closed or book.grid is not None:
                del market._fast[instrument]
            for side, orders in ((book.bids, rows.bids), (book.asks, rows.asks)):
                for row in orders:
                    market._restore_order(side, row)
        for book in market._books.values():
            if book.grid is not None:
                book.grid.index_orders(book)
        if states:
            msg = f"snapshot: grid data for books it does not hold: {sorted(states)!r:.80}"
            raise SnapshotError(msg)
        try:
            market._check()
        except InvariantError as exc:
            msg = f"snapshot: inconsistent state: {exc}"
            raise SnapshotError(msg) from exc
        if market.snapshot() != data:
            msg = "snapshot: orders are not in priority order"
            raise SnapshotError(msg)
        return market

    def restore_book(self, data: bytes) -> None:
        """Set one book to the state in ``book_snapshot()`` bytes (opening it if new).

        The snapshot may come from another market with the same config; its
        GTD orders must expire after this market's clock and its order ids
        must not be resting in this market's other books. On any error the
        market is left unchanged.

        Raises:
            SnapshotError: if ``data`` is not a canonical, consistent book
                snapshot, or it conflicts with the rest of the market.
        """
        rows = decode_book(data)
        instrument = rows.instrument
        old = self._books.get(instrument)
        if (old is not None and old.grid is not None) or any(
            type(row) is not OrderRow for row in (*rows.bids, *rows.asks)
        ):
            msg = "book snapshot: a book in a grid mode is restored with Market.restore only"
            raise SnapshotError(msg)
        scratch = MarketState(self._config, now=self._clock)
        book = scratch._open_book(instrument)
        book.closed = rows.closed
        if book.closed:
            del scratch._fast[instrument]
        for side, orders in ((book.bids, rows.bids), (book.asks, rows.asks)):
            for row in orders:
                scratch._restore_order(side, row)
        try:
            scratch._check()
        except InvariantError as exc:
            msg = f"book snapshot: inconsistent state: {exc}"
            raise SnapshotError(msg) from exc
        if encode_book(_book_rows(book)) != data:
            msg = "book snapshot: not canonical or orders not in priority order"
            raise SnapshotError(msg)
        old = self._books.get(instrument)
        old_ids = {o.order_id for o in old.iter_orders()} if old is not None else set()
        clash = sorted(i for i in scratch._index if i in self._index and i not in old_ids)
        if clash:
            msg = f"book snapshot: order ids {clash[:10]} rest in other books"
            raise SnapshotError(msg)
        for order_id in old_ids:  # their expiry entries go stale
            self._index.pop(order_id).level = None
        self._books[instrument] = book
        if book.closed:
            self._fast.pop(instrument, None)
        else:
            self._fast[instrument] = book
        self._index.update(scratch._index)
        for expires_at, order_id, _, order in scratch._expiries:
            self._seq += 1
            heapq.heappush(self._expiries, (expires_at, order_id, self._seq, order))

    def _open_book(self, instrument: Instrument) -> Book:
        """Add an empty book (the caller checked that the instrument is new)."""
        book = self._books[instrument] = self._fast[instrument] = Book(instrument)
        return book

    def _restore_order(self, side: _Side, row: Row) -> None:
        """Put one snapshot order back, checking it as a new order would be."""
        if row.order_id in self._index:
            msg = f"snapshot: duplicate order id {row.order_id}"
            raise SnapshotError(msg)
        if (
            self._price_reason(row.price) is not None
            or not 0 < row.quantity <= self._max_quantity
            or not row.owner
            or (row.expires_at is not None and row.expires_at <= self._clock)
        ):
            msg = f"snapshot: invalid order {row!r}"
            raise SnapshotError(msg)
        order = _Order(
            row.order_id,
            row.owner,
            side,
            row.price,
            row.quantity,
            row.expires_at,
            row.stp,
            row.post_only,
        )
        state = self._books[side.instrument].grid
        if (state is None) != (type(row) is OrderRow):
            msg = f"snapshot: order {row.order_id} has the wrong shape for its book's mode"
            raise SnapshotError(msg)
        if state is not None:
            assert isinstance(row, GridOrderRow)
            bus = state.owner_bus.get(row.owner)
            if bus is None:
                msg = f"snapshot: order {row.order_id}: owner {row.owner!r} has no bus"
                raise SnapshotError(msg)
            try:
                prefs = None if row.prefs is None else Preferences.from_value(row.prefs)
            except GridError as exc:
                msg = f"snapshot: order {row.order_id}: {exc}"
                raise SnapshotError(msg) from exc
            order.bus = bus
            order.prefs = prefs
            order.seq = row.seq
        self._rest(order)

    def _check(self) -> None:
        """Verify every invariant of every book and of the id index. O(n).

        Raises:
            InvariantError: on any inconsistency.
        """
        total = sum(book._check(self._index) for book in self._books.values())
        for instrument, book in self._books.items():
            check_encoded(book)
            check_grid(book, self._index)
            if (self._fast.get(instrument) is book) != (book.grid is None and not book.closed):
                msg = f"{instrument}: fast-path table out of step with mode / closed"
                raise InvariantError(msg)
        if len(self._fast) != sum(b.grid is None and not b.closed for b in self._books.values()):
            msg = "fast-path table holds books the market does not"
            raise InvariantError(msg)
        if total != len(self._index):
            msg = f"id index holds {len(self._index)} orders, books {total}"
            raise InvariantError(msg)
        for order_id, order in self._index.items():
            if order.order_id != order_id or order.level is None:
                msg = f"id index entry {order_id} is stale"
                raise InvariantError(msg)
        live = {e[1] for e in self._expiries if self._index.get(e[1]) is e[3]}
        gtd = {i for i, o in self._index.items() if o.expires_at is not None}
        if live != gtd:
            msg = f"expiry heap tracks {sorted(live)}, GTD orders are {sorted(gtd)}"
            raise InvariantError(msg)
        clock = self._clock
        if any(o.expires_at is not None and o.expires_at <= clock for o in self._index.values()):
            msg = "a GTD order is past its expiry"
            raise InvariantError(msg)


def valid_instrument(instrument: object) -> bool:
    """True if ``instrument`` is an Instrument of a Product and an int slot."""
    return (
        type(instrument) is Instrument
        and isinstance(instrument.product, Product)
        and type(instrument.slot) is int
    )


def _instrument_key(instrument: Instrument) -> tuple[str, int]:
    return (instrument.product.value, instrument.slot)


def _book_rows(book: Book) -> BookRows:
    new = tuple.__new__  # OrderRow is a named tuple: skip its Python-level __new__

    def rows(side: _Side) -> list[Row]:
        out: list[Row] = []
        for level in side.iter_levels():
            o = level.head
            while o is not None:
                if book.grid is not None:
                    prefs = o.prefs
                    out.append(
                        GridOrderRow(
                            o.order_id,
                            o.owner,
                            o.price,
                            o.quantity,
                            o.expires_at,
                            o.stp,
                            o.post_only,
                            o.seq,
                            None if prefs is None else prefs.value(),
                        )
                    )
                    o = o.next
                    continue
                out.append(
                    new(
                        OrderRow,
                        (
                            o.order_id,
                            o.owner,
                            o.price,
                            o.quantity,
                            o.expires_at,
                            o.stp,
                            o.post_only,
                        ),
                    )
                )
                o = o.next
        return out

    return BookRows(book.instrument, book.closed, rows(book.bids), rows(book.asks))


def _grid_states(grid: list[object] | None) -> dict[Instrument, GridState]:
    """The grid states of a snapshot's ``grid`` array, by instrument.

    Raises:
        SnapshotError: if an entry is malformed or describes invalid grid data.
    """
    out: dict[Instrument, GridState] = {}
    for entry in grid or ():
        if not isinstance(entry, list) or len(entry) != 8:
            msg = f"malformed snapshot: a grid entry is a list of 8 items, got {entry!r:.80}"
            raise SnapshotError(msg)
        product, slot, mode, seq, flow, value, trade_no, pending = entry
        try:
            instrument = Instrument(Product(product), slot)
            grid_mode = GridMode(mode)
            if not isinstance(pending, list) or not all(
                isinstance(p, list) and len(p) == 4 and all(type(x) is int for x in p)
                for p in pending
            ):
                msg = "pending trades must be lists of 4 ints"
                raise ValueError(msg)
            held = {p[0]: (p[1], p[2], p[3]) for p in pending}
            state = GridState(grid_mode, Grid.from_value(value), seq, flow, trade_no, held)
        except (ValueError, TypeError, GridError) as exc:
            msg = f"malformed snapshot: grid entry {entry!r:.80}: {exc}"
            raise SnapshotError(msg) from exc
        if (
            grid_mode is GridMode.BIDS_OFFERS
            or state.grid.missing(grid_mode) is not None
            or type(slot) is not int
            or type(seq) is not int
            or type(trade_no) is not int
            or len(held) != len(pending)
            or any(no >= trade_no for no in held)
            or (held and grid_mode is not GridMode.LINE_VALIDATION)
            or not isinstance(flow, list)
            or len(flow) != len(state.flow)
            or any(type(x) is not int for x in flow)
            or instrument in out
        ):
            msg = f"malformed snapshot: grid entry {entry!r:.80}"
            raise SnapshotError(msg)
        out[instrument] = state
    return out


def check_grid(book: Book, index: dict[int, _Order]) -> None:
    """Verify a book's grid state against its orders. O(n).

    Raises:
        InvariantError: a plain book's order with grid fields; a grid book's
            order without them, on the wrong bus, or out of seq order in its
            queue; a mode-4 line above its capacity, or its kept limits
            (``GridState.up_limit``, ``down_limit``) unlike a recomputation.
    """
    state = book.grid
    for side in (book.bids, book.asks):
        for level in side.levels.values():
            last = -1
            order = level.head
            while order is not None:
                seq = getattr(order, "seq", None)
                if state is None:
                    if seq is not None:
                        msg = f"order {order.order_id}: grid fields in a plain book"
                        raise InvariantError(msg)
                else:
                    if type(seq) is not int or not last < seq < state.seq:
                        msg = f"order {order.order_id}: seq {seq} after {last}, next {state.seq}"
                        raise InvariantError(msg)
                    if order.bus != state.owner_bus.get(order.owner):
                        msg = f"order {order.order_id}: bus {order.bus} is not its owner's"
                        raise InvariantError(msg)
                    last = seq
                order = order.next
    if state is not None and state.mode is GridMode.PRICE_SIGNALS:
        for k, side in enumerate((book.bids, book.asks)):
            live = set()
            for bus, heap in enumerate(state.heaps[k]):
                if state.tops[k][bus] != (heap[0][0] if heap else EMPTY):
                    msg = f"{book.instrument}: bus {bus} top {state.tops[k][bus]} is stale"
                    raise InvariantError(msg)
                for key, seq, order_id in heap:
                    entry_order = index.get(order_id)
                    if entry_order is None or entry_order.side is not side:
                        continue
                    if entry_order.seq != seq:
                        continue
                    if key != side.sign * entry_order.price or entry_order.bus != bus:
                        msg = f"order {order_id}: heap entry at the wrong key or bus"
                        raise InvariantError(msg)
                    live.add(id(entry_order))
            for level in side.levels.values():
                order = level.head
                while order is not None:
                    if id(order) not in live:
                        msg = f"order {order.order_id}: missing from the per-bus heaps"
                        raise InvariantError(msg)
                    order = order.next
    if state is not None:
        n = state.grid.n_buses
        for no, (seller_bus, buyer_bus, qty) in state.pending.items():
            if not (0 <= seller_bus < n and 0 <= buyer_bus < n and qty > 0 and no < state.trade_no):
                msg = f"{book.instrument}: pending trade {no} is malformed"
                raise InvariantError(msg)
    if state is not None and state.mode is GridMode.LINE_VALIDATION:
        fresh = GridState(state.mode, state.grid, state.seq, state.flow, 0, state.pending)
        if (fresh.up_pending, fresh.down_pending) != (state.up_pending, state.down_pending):
            msg = f"{book.instrument}: pending sums out of step with the pending trades"
            raise InvariantError(msg)
        if (fresh.up_limit, fresh.down_limit) != (state.up_limit, state.down_limit):
            msg = f"{book.instrument}: line limits out of step with the pending trades"
            raise InvariantError(msg)
        for line, (flow, cap) in enumerate(zip(state.flow, state.capacity, strict=True)):
            # Within capacity whatever pending trades are refused.
            worst = (flow + state.down_pending[line], flow - state.up_pending[line])
            if state.parent[line] >= 0 and (worst[0] > cap or worst[1] < -cap):
                msg = f"{book.instrument}: line {line} carries {worst} Wh, capacity {cap}"
                raise InvariantError(msg)
