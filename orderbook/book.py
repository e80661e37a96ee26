"""The data structure of one book: price levels of FIFO queues, with O(1) cancel.

Layout (after exchange-core's TreeMap + linked queue + id map):

- each side keeps a ``dict`` key -> level and a binary min-heap of the keys
  (``heapq``, in C); the key is the price for asks and the negated price for
  bids, so on both sides the best level has the smallest key and "crosses"
  is one comparison. The heap deletes lazily: a dropped level's key stays in
  the heap until it reaches the top (or the heap is rebuilt when more than
  half of it is stale), so opening and dropping a level cost O(log L) in C.
  A ``SortedList`` did the same job in O(log L) Python steps and cost ~6% of
  the steady benchmark's time; ordered walks (depth, L3, snapshots, FOK)
  sort the dict's keys or pop a copy of the heap instead;
- each level is an intrusive doubly linked list of order objects (``prev`` /
  ``next`` slots), so appending at the back, removing the front and removing
  any order by id are O(1) without scanning the level, whatever its length;
- each side caches its best key (``EMPTY`` when the side is empty), so the
  hot path never indexes the SortedList.

This module holds the structure, the queries and the invariant check; the
market (``orderbook.market``) and the matching loop (``orderbook.matching``)
mutate it, inlining the primitives below where speed matters.
"""

from __future__ import annotations

from collections.abc import Iterator
from heapq import heappop, heappush, nsmallest
from typing import TYPE_CHECKING, NamedTuple, NoReturn

from orderbook.errors import InvariantError
from orderbook.types import Instrument, Side, STPMode

if TYPE_CHECKING:
    import hashlib

    from orderbook.grid import Preferences
    from orderbook.gridstate import GridState

# Best key of an empty side: above every real key (|price| <= 2**60).
EMPTY = 2**62

# A level's cached digest: (head, tail, count, volume, SHA-256 object fed with the
# level's text, its digest), see orderbook.digest.
LevelHash = tuple["_Order", "_Order", int, int, "hashlib._Hash", bytes]


class _Order:
    """A resting (or matching) order. Mutable engine state, hence a slots class.

    ``encoded`` is its snapshot text (``orderbook.digest``): left unset until a
    digest needs it (setting it on insertion would cost the hot path), None
    once stale. Whoever changes a field in place must set it to None.
    """

    encoded: str | None

    # bus, prefs and seq are set only in books run in a grid mode
    # (orderbook.gridmatch); a plain book never stores them.
    bus: int
    prefs: Preferences | None
    seq: int

    __slots__ = (
        "bus",
        "encoded",
        "expires_at",
        "level",
        "next",
        "order_id",
        "owner",
        "post_only",
        "prefs",
        "prev",
        "price",
        "quantity",
        "seq",
        "side",
        "stp",
    )

    def __init__(
        self,
        order_id: int,
        owner: str,
        side: _Side,
        price: int,
        quantity: int,
        expires_at: int | None,
        stp: STPMode,
        post_only: bool,
    ) -> None:
        self.order_id = order_id
        self.owner = owner
        self.side = side
        self.price = price  # ticks per kWh
        self.quantity = quantity  # Wh still open
        self.expires_at = expires_at  # market clock; None for GTC
        self.stp = stp
        self.post_only = post_only
        self.level: _Level | None = None
        self.prev: _Order | None = None
        self.next: _Order | None = None


class _Level:
    """All resting orders at one price, oldest first, as a linked list.

    Orders join only at the tail, as new objects; the one exception,
    ``Market.amend`` re-queueing an order, must reset ``encoded`` (see
    ``orderbook.digest``, whose cache check relies on this).
    """

    __slots__ = ("count", "encoded", "head", "key", "price", "tail", "volume")

    def __init__(self, key: int, price: int) -> None:
        self.key = key
        self.price = price  # ticks per kWh
        self.head: _Order | None = None
        self.tail: _Order | None = None
        self.volume = 0  # Wh: sum of the orders' quantities
        self.count = 0  # number of orders
        # Hash of the queue's snapshot text and the (head, tail, count, volume)
        # it was built for (orderbook.digest); None until a digest needs it.
        self.encoded: LevelHash | None = None


class _Side:
    """One side of a book: levels by key (price, or -price for bids)."""

    __slots__ = ("best", "heap", "instrument", "levels", "side", "sign")

    def __init__(self, instrument: Instrument, side: Side) -> None:
        self.instrument = instrument
        self.side = side
        self.sign = -1 if side is Side.BID else 1  # key = sign * price
        self.levels: dict[int, _Level] = {}
        self.heap: list[int] = []  # keys of the levels, plus stale keys (lazy deletion)
        self.best = EMPTY  # smallest live key: heap[0] once stale tops are popped

    def append(self, order: _Order) -> None:
        """Put ``order`` at the back of the queue at its price. O(1), O(log n) for a new level."""
        key = self.sign * order.price
        level = self.levels.get(key)
        if level is None:
            levels = self.levels
            level = levels[key] = _Level(key, order.price)
            heap = self.heap
            heappush(heap, key)
            if key < self.best:
                self.best = key
            if len(heap) > 2 * len(levels) + 64:
                # More than half stale: rebuild (a sorted list is a heap).
                self.heap = sorted(levels)
        tail = level.tail
        order.prev = tail
        order.next = None
        if tail is None:
            level.head = order
        else:
            tail.next = order
        level.tail = order
        level.volume += order.quantity
        level.count += 1
        order.level = level

    def unlink(self, order: _Order) -> None:
        """Take ``order`` out of its level (dropping the level if empty). O(1) amortised."""
        level = order.level
        assert level is not None
        prev = order.prev
        nxt = order.next
        if prev is None:
            level.head = nxt
        else:
            prev.next = nxt
        if nxt is None:
            level.tail = prev
        else:
            nxt.prev = prev
        level.volume -= order.quantity
        level.count -= 1
        order.level = None
        if level.head is None:
            self.drop_level(level)

    def drop_level(self, level: _Level) -> None:
        """Forget an empty level and refresh the cached best key. O(log L) amortised."""
        key = level.key
        levels = self.levels
        del levels[key]
        if key == self.best:
            heap = self.heap
            while heap and heap[0] not in levels:
                heappop(heap)
            self.best = heap[0] if heap else EMPTY

    def iter_levels(self) -> list[_Level]:
        """Levels best first. O(L log L)."""
        levels = self.levels
        return [levels[key] for key in sorted(levels)]

    def keys_from_best(self) -> Iterator[int]:
        """Level keys best first, lazily: O(L) to start, O(log L) per key."""
        heap = self.heap.copy()
        levels = self.levels
        last = None
        while heap:
            key = heappop(heap)
            if key != last and key in levels:
                yield key
            last = key

    def clear(self) -> None:
        """Drop every level."""
        self.levels.clear()
        self.heap.clear()
        self.best = EMPTY


def iter_queue(level: _Level) -> list[_Order]:
    """Orders of a level in time priority."""
    out = []
    order = level.head
    while order is not None:
        out.append(order)
        order = order.next
    return out


class DepthLevel(NamedTuple):
    """One price level of L2 depth."""

    price: int  # ticks per kWh
    quantity: int  # Wh
    orders: int  # number of resting orders


class Depth(NamedTuple):
    """L2 depth: levels best first on each side."""

    bids: tuple[DepthLevel, ...]
    asks: tuple[DepthLevel, ...]


class OrderView(NamedTuple):
    """A resting order as seen by queries (L3)."""

    instrument: Instrument
    order_id: int
    owner: str
    side: Side
    price: int  # ticks per kWh
    quantity: int  # Wh open
    expires_at: int | None  # None: GTC
    post_only: bool
    stp: STPMode


def view(order: _Order) -> OrderView:
    """The public view of an order."""
    side = order.side
    return OrderView(
        side.instrument,
        order.order_id,
        order.owner,
        side.side,
        order.price,
        order.quantity,
        order.expires_at,
        order.post_only,
        order.stp,
    )


class Book:
    """The two sides of one instrument, whether its gate has closed, and its grid mode.

    ``grid`` is None for a plain (mode 2) book, else the mode and grid data
    (``orderbook.gridmatch.GridState``).
    """

    __slots__ = ("asks", "bids", "closed", "grid", "instrument")

    def __init__(self, instrument: Instrument) -> None:
        self.instrument = instrument
        self.bids = _Side(instrument, Side.BID)
        self.asks = _Side(instrument, Side.ASK)
        self.closed = False
        self.grid: GridState | None = None

    def best_bid(self) -> int | None:
        """Highest bid price, or None. O(1)."""
        best = self.bids.best
        return None if best == EMPTY else -best

    def best_ask(self) -> int | None:
        """Lowest ask price, or None. O(1)."""
        best = self.asks.best
        return None if best == EMPTY else best

    def depth(self, levels: int | None = None) -> Depth:
        """L2 depth, ``levels`` per side (None: all). O(levels)."""
        return Depth(_depth(self.bids, levels), _depth(self.asks, levels))

    def iter_orders(self) -> list[_Order]:
        """Every resting order, bids then asks, best price first, in queue order."""
        return [
            order
            for side in (self.bids, self.asks)
            for level in side.iter_levels()
            for order in iter_queue(level)
        ]

    def orders(self) -> tuple[OrderView, ...]:
        """L3: every resting order, bids then asks, each best price first, in queue order."""
        out: list[OrderView] = []
        for side in (self.bids, self.asks):
            for level in side.iter_levels():
                out.extend(view(order) for order in iter_queue(level))
        return tuple(out)

    def _check(self, index: dict[int, _Order]) -> int:
        """Verify every invariant in O(n); return the number of resting orders.

        Raises:
            InvariantError: levels out of order or with a wrong key, price or
                volume, broken links, an order missing from (or stale in) the
                id index, a crossed book, or orders in a closed book.
        """
        total = 0
        for side in (self.bids, self.asks):
            heap = side.heap
            if not set(side.levels) <= set(heap):
                _fail(f"{side.side} heap {heap} misses levels {sorted(side.levels)}")
            if any(heap[(i - 1) // 2] > heap[i] for i in range(1, len(heap))):
                _fail(f"{side.side} heap property broken: {heap}")
            want_best = min(side.levels, default=EMPTY)
            if side.best != want_best:
                _fail(f"{side.side} cached best {side.best} != {want_best}")
            for key, level in side.levels.items():
                if level.key != key or key != side.sign * level.price:
                    _fail(f"level key {level.key} / price {level.price} under key {key}")
                prev = None
                volume = count = 0
                order = level.head
                while order is not None:
                    if order.prev is not prev or order.level is not level:
                        _fail(f"order {order.order_id}: broken links")
                    if order.side is not side or order.price != level.price:
                        _fail(f"order {order.order_id}: wrong side or price")
                    if order.quantity <= 0:
                        _fail(f"order {order.order_id}: quantity {order.quantity}")
                    if index.get(order.order_id) is not order:
                        _fail(f"order {order.order_id} not in the id index")
                    volume += order.quantity
                    count += 1
                    prev = order
                    order = order.next
                if level.tail is not prev or count == 0:
                    _fail(f"level {level.price}: bad tail or empty")
                if volume != level.volume or count != level.count:
                    _fail(f"level {level.price}: volume {level.volume}/{volume} n {level.count}")
                total += count
        bid, ask = self.best_bid(), self.best_ask()
        # A grid book may rest crossed: grid charges, line limits or
        # preferences can keep a bid and a cheaper ask apart.
        if self.grid is None and bid is not None and ask is not None and bid >= ask:
            _fail(f"{self.instrument}: crossed book at rest, bid {bid} >= ask {ask}")
        if self.closed and total:
            _fail(f"{self.instrument}: closed book holds {total} orders")
        return total


def _depth(side: _Side, levels: int | None) -> tuple[DepthLevel, ...]:
    keys = sorted(side.levels) if levels is None else nsmallest(max(levels, 0), side.levels)
    return tuple(
        DepthLevel(level.price, level.volume, level.count)
        for level in (side.levels[key] for key in keys)
    )


def _fail(message: str) -> NoReturn:
    raise InvariantError(message)
