"""The grid state of a book run in mode 1, 3 or 4: its data, live flows, pending trades.

``GridState`` is the mutable engine state a book in a grid mode adds to its
levels (``orderbook.book.Book.grid``): the mode and ``Grid`` data, what
matching derives from them (total charges per bus pair, paths on the
feeder), the live line flows of mode 4 and its trades awaiting the DSO, the
arrival counter, and mode 3's per-bus heaps. ``orderbook.gridmatch`` reads
and moves it.
"""

from __future__ import annotations

from heapq import heapify, heappush
from typing import TYPE_CHECKING

from orderbook.book import EMPTY
from orderbook.grid import Grid, GridMode
from orderbook.gridpaths import FeederPaths, Lane, Path, feeder_paths
from orderbook.snapshot import _dumps

if TYPE_CHECKING:
    from orderbook.book import Book, _Order

_PRICE_SIGNALS = GridMode.PRICE_SIGNALS

# Mode 3: the buses of the resting orders an incoming order at one bus may
# meet, as (charge, bus) pairs sorted by the total charge between the two
# buses (then by bus): a search for the best net price stops at the first
# bus whose charge alone, added to the side's best key, is already worse.
Scan = tuple[tuple[int, int], ...]


class GridState:
    """The mode of one book, its grid data, and what matching derives from them.

    Mutable engine state: ``flow`` (mode 4, Wh per line, positive towards the
    root) changes with every trade and ``seq`` with every resting order.
    """

    __slots__ = (
        "bid_rows",
        "buyer_charge",
        "capacity",
        "distance",
        "down_limit",
        "down_pending",
        "feeder",
        "flow",
        "grid",
        "heaps",
        "live_hint",
        "min_for_ask",
        "min_for_bid",
        "mode",
        "owner_bus",
        "parent",
        "pending",
        "pushes",
        "scans",
        "seller_charge",
        "seq",
        "tech",
        "text",
        "tops",
        "total",
        "trade_no",
        "up_limit",
        "up_pending",
    )

    def __init__(
        self,
        mode: GridMode,
        grid: Grid,
        seq: int = 0,
        flow: list[int] | None = None,
        trade_no: int = 0,
        pending: dict[int, tuple[int, int, int]] | None = None,
    ) -> None:
        n = grid.n_buses
        self.mode = mode
        self.grid = grid
        self.seq = seq  # the next order's arrival number
        self.owner_bus = dict(grid.buses)
        self.tech = dict(grid.technologies)
        self.text = _dumps(grid.value())  # cached: the grid is immutable
        self.seller_charge = grid.seller_charge
        self.buyer_charge = grid.buyer_charge
        self.distance = grid.distance
        # total[s][b]: both charges of a trade from seller bus s to buyer bus b.
        self.total: list[list[int]] = []
        self.bid_rows: list[list[int]] = []  # bid_rows[b][s] = total[s][b]
        self.min_for_bid: list[int] = []  # smallest total into buyer bus b
        self.min_for_ask: list[int] = []  # smallest total out of seller bus s
        if grid.seller_charge:
            sc, bc = grid.seller_charge, grid.buyer_charge
            self.total = [[sc[s][b] + bc[s][b] for b in range(n)] for s in range(n)]
            self.bid_rows = [[self.total[s][b] for s in range(n)] for b in range(n)]
            self.min_for_bid = [min(row) for row in self.bid_rows]
            self.min_for_ask = [min(row) for row in self.total]
        # scans[k][b]: mode 3's search order for an incoming order at bus b
        # against side k (0 bids, 1 asks), built on first use (O(B log B)).
        self.scans: list[list[Scan | None]] = [[None] * n, [None] * n]
        self.parent = grid.parent
        self.capacity = grid.capacity
        self.flow: list[int] = []
        if grid.parent:
            self.flow = list(flow) if flow is not None else list(grid.base_flow or [0] * n)
        # Paths split by direction (orderbook.gridpaths), shared by every
        # book on this feeder.
        self.feeder: FeederPaths | None = feeder_paths(grid.parent) if grid.parent else None
        # Mode 4 with approval: trades awaiting the DSO, by number:
        # (seller bus, buyer bus, Wh); their flow is already on the lines.
        self.trade_no = trade_no  # the next trade's number
        self.pending: dict[int, tuple[int, int, int]] = {} if pending is None else pending
        # Per line, Wh of pending trades running up (towards the root) and down
        # it. Any pending trade may still be refused, so a match may not lean
        # on a pending trade's counterflow: a line's worst case is its flow
        # without the pending trades that relieve it (derived, not state).
        self.up_pending: list[int] = [0] * len(self.flow)
        self.down_pending: list[int] = [0] * len(self.flow)
        # Mode 4: how far each line's flow may go either way, whatever
        # pending trades are refused: up_limit[x] = capacity - down_pending
        # (towards the root: flow <= up_limit), down_limit[x] = capacity -
        # up_pending (away from it: -flow <= down_limit). A match's headroom
        # is then up_limit - flow over the lines it runs up and down_limit +
        # flow over those it runs down. Kept in step with the pending sums;
        # derived, not state (reset_limits rebuilds them).
        self.up_limit: list[int] = list(self.capacity) if self.flow else []
        self.down_limit: list[int] = list(self.up_limit)
        for seller_bus, buyer_bus, qty in self.pending.values():
            self._count_pending(seller_bus, buyer_bus, qty)
        # Mode 3: per side (0 bids, 1 asks) and bus, a heap of (key, seq,
        # order_id) of the resting orders at that bus, with lazy deletion (an
        # entry is live while the id index holds an order on that side with
        # that seq; ids, not orders, so a cancelled order is freed at once),
        # and each heap's top key (EMPTY when empty, else at most the live
        # top's key): the best net price is then searched over the tops in
        # scan order (orderbook.gridmatch.best_net). Not part of the state:
        # rebuilt from the book (index_orders).
        self.heaps: list[list[list[tuple[int, int, int]]]] = []
        self.tops: list[list[int]] = []
        self.pushes = 0  # entries pushed since the last rebuild
        self.live_hint = 0  # resting orders at the last rebuild

    def index_orders(self, book: Book) -> None:
        """Mode 3: rebuild the per-bus heaps from the book's resting orders. O(n)."""
        if self.mode is not _PRICE_SIGNALS:
            return
        n = self.grid.n_buses
        self.heaps = [[[] for _ in range(n)], [[] for _ in range(n)]]
        self.tops = [[EMPTY] * n, [EMPTY] * n]
        count = 0
        for k, side in enumerate((book.bids, book.asks)):
            heaps = self.heaps[k]
            for key, level in side.levels.items():
                order = level.head
                while order is not None:
                    heaps[order.bus].append((key, order.seq, order.order_id))
                    count += 1
                    order = order.next
            tops = self.tops[k]
            for bus, heap in enumerate(heaps):
                heapify(heap)
                tops[bus] = heap[0][0] if heap else EMPTY
        self.pushes = 0
        self.live_hint = count

    def track(self, order: _Order, book: Book) -> None:
        """Mode 3: note a newly queued order (after ``seq`` and ``bus`` are set)."""
        if self.mode is not _PRICE_SIGNALS:
            return
        self.pushes += 1
        if self.pushes > 2 * self.live_hint + 4096:  # mostly stale entries: rebuild
            self.index_orders(book)
            return
        side = order.side
        k = 0 if side is book.bids else 1
        key = side.sign * order.price
        heappush(self.heaps[k][order.bus], (key, order.seq, order.order_id))
        tops = self.tops[k]
        if key < tops[order.bus]:
            tops[order.bus] = key

    def path(self, seller_bus: int, buyer_bus: int) -> Path:
        """The lines from ``seller_bus`` to ``buyer_bus`` with directions (cached). O(depth)."""
        assert self.feeder is not None  # a feeder is given (mode 4's data)
        return self.feeder.path(seller_bus, buyer_bus)

    def lane(self, pair: tuple[int, int]) -> Lane:
        """``path(*pair)`` split by direction (cached). O(depth)."""
        assert self.feeder is not None
        return self.feeder.lane(pair)

    def lane_row(self, buys: bool, bus: int) -> list[Lane | None]:
        """The lanes of an incoming order at ``bus`` by maker bus (``FeederPaths.row``)."""
        if self.feeder is None:
            return []
        return self.feeder.row(buys, bus)

    def scan(self, k: int, bus: int) -> Scan:
        """Mode 3: the (charge, maker bus) search order of a taker at ``bus`` against side ``k``.

        ``k`` is 1 for a buyer (makers are asks: charges ``total[s][bus]``), 0
        for a seller (makers are bids: ``total[bus][s]``). Cached. O(B log B).
        """
        scan = self.scans[k][bus]
        if scan is None:
            row = self.bid_rows[bus] if k else self.total[bus]
            scan = self.scans[k][bus] = tuple(sorted(zip(row, range(len(row)), strict=True)))
        return scan

    def reset_limits(self) -> None:
        """Recompute ``up_limit`` and ``down_limit`` from the capacities and pending sums. O(n)."""
        cap, up, down = self.capacity, self.up_pending, self.down_pending
        self.up_limit = [c - d for c, d in zip(cap, down, strict=True)]
        self.down_limit = [c - u for c, u in zip(cap, up, strict=True)]

    def move(self, seller_bus: int, buyer_bus: int, qty: int) -> None:
        """Move ``qty`` Wh (or take it back, if negative) along the path's lines."""
        if seller_bus == buyer_bus:
            return
        ups, downs = self.lane((seller_bus, buyer_bus))
        flow = self.flow
        for x in ups:
            flow[x] += qty
        for x in downs:
            flow[x] -= qty

    def pending_value(self) -> list[list[int]]:
        """The pending trades as ``[[trade_no, seller bus, buyer bus, Wh], ...]``, by number."""
        return [[no, *self.pending[no]] for no in sorted(self.pending)]

    def entry_text(self, product: str, slot: int) -> bytes:
        """This book's entry of the snapshot's ``grid`` array (see ``orderbook.snapshot``)."""
        head = _dumps([product, slot, int(self.mode), self.seq, self.flow])
        tail = _dumps([self.trade_no, self.pending_value()])
        return head[:-1] + b"," + self.text + b"," + tail[1:]

    def entry_value(self, product: str, slot: int) -> list[object]:
        """The same entry as a JSON value."""
        return [
            product,
            slot,
            int(self.mode),
            self.seq,
            list(self.flow),
            self.grid.value(),
            self.trade_no,
            self.pending_value(),
        ]

    def _count_pending(self, seller_bus: int, buyer_bus: int, qty: int) -> None:
        """Add ``qty`` Wh (or take it off, if negative) to the pending sums on the path.

        A pending trade's flow may still be taken off, so it never adds
        headroom against its direction: the limit on its lines the other way
        tightens by ``qty``.
        """
        if seller_bus == buyer_bus:
            return
        up, down = self.up_pending, self.down_pending
        up_limit, down_limit = self.up_limit, self.down_limit
        ups, downs = self.lane((seller_bus, buyer_bus))
        for x in ups:
            up[x] += qty
            down_limit[x] -= qty
        for x in downs:
            down[x] += qty
            up_limit[x] -= qty

    def room(self, x: int, d: int) -> int:
        """Wh line ``x`` may still carry in direction ``d``, whatever pending trades are refused."""
        return self.up_limit[x] - self.flow[x] if d > 0 else self.down_limit[x] + self.flow[x]

    def hold(self, seller_bus: int, buyer_bus: int, qty: int) -> int:
        """Number a trade that waits for the DSO (its flow is already on the lines)."""
        no = self.trade_no
        self.trade_no = no + 1
        self.pending[no] = (seller_bus, buyer_bus, qty)
        self._count_pending(seller_bus, buyer_bus, qty)
        return no

    def approve(self, trade_no: int) -> None:
        """Make a pending trade final: its flow stays."""
        seller_bus, buyer_bus, qty = self.pending.pop(trade_no)
        self._count_pending(seller_bus, buyer_bus, -qty)

    def release(self, trade_no: int) -> None:
        """Take a refused trade's flow off the lines and forget it."""
        seller_bus, buyer_bus, qty = self.pending.pop(trade_no)
        self._count_pending(seller_bus, buyer_bus, -qty)
        self.move(seller_bus, buyer_bus, -qty)
