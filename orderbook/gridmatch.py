"""Matching in modes 1, 3 and 4: candidate ranking and the match loops.

A book in a grid mode keeps its ordinary levels (price -> FIFO queue) and
adds a ``GridState`` (``orderbook.gridstate``). Each resting order of such
a book carries ``seq`` (its arrival number in the book, the "time" of
price-time priority across price levels), ``bus`` (its owner's bus) and
``prefs`` (mode 1 preferences or None).

An incoming order first collects its *candidates*, the resting orders it may
trade with, best first (``candidates``), then walks them (``take_grid``):

- mode 3 ranks by the price net of the grid charges between the two buses
  (``key + seller_charge + buyer_charge``, keys as in ``orderbook.book``),
  then ``seq``; a candidate must satisfy the incoming limit net of both
  charges. Charges are >= 0, so the walk over levels stops at
  ``limit_key - (smallest charge to this bus)``;
- mode 4 ranks by price, then ``seq`` (plain price-time), and cuts each
  match to the headroom of the lines on the radial path between the two
  buses, or skips it (``LineBlocked``) when a line has none left;
- mode 1 keeps the candidates that both sides' preferences accept, ranks the
  incoming order's preferred partners first, then price, then ``seq``.

``candidates`` builds the whole ranked list before anything changes
(matching only removes or reduces the candidates themselves, so the ranking
stays valid during the walk): mode 1, and FOK in every mode. Modes 3 and 4
find candidates as matching goes instead (``lazy``: mode 3's per-bus heaps
searched by charge, ``best_net``; mode 4's level walk), and their hot loops
``take_net`` and ``take_lines`` inline that search and the fills, which is
what a marketable order pays for in the benchmark. With ``Grid.approval``
every mode-4 trade is held for the DSO (``TradePending``).
"""

from __future__ import annotations

from heapq import heappop
from typing import TYPE_CHECKING

from orderbook.book import EMPTY
from orderbook.events import Cancelled, CancelReason, GridTrade, LineBlocked, TradePending
from orderbook.grid import GridMode, Preferences
from orderbook.gridpaths import Path
from orderbook.gridstate import GridState
from orderbook.types import Side, STPMode

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from orderbook.book import _Order, _Side
    from orderbook.events import Event
    from orderbook.types import Instrument

_new = tuple.__new__
_BID = Side.BID
_SELF_TRADE = CancelReason.SELF_TRADE
_PREFERENCES = GridMode.PREFERENCES
_PRICE_SIGNALS = GridMode.PRICE_SIGNALS
_LINE_VALIDATION = GridMode.LINE_VALIDATION
_CANCEL_NEWEST = STPMode.CANCEL_NEWEST
_CANCEL_OLDEST = STPMode.CANCEL_OLDEST
_CANCEL_BOTH = STPMode.CANCEL_BOTH


def allows(prefs: Preferences | None, other: str, tech: str | None, distance: int) -> bool:
    """True if ``prefs`` accept a counterparty ``other`` with label ``tech`` at ``distance``."""
    if prefs is None:
        return True
    if other in prefs.excluded:
        return False
    techs = prefs.technologies
    if techs is not None and tech not in techs:
        return False
    limit = prefs.max_distance
    return limit is None or distance <= limit


def candidates(
    state: GridState,
    opp: _Side,
    taker_bid: bool,
    owner: str,
    bus: int,
    prefs: Preferences | None,
    limit_key: int,
) -> list[_Order]:
    """Resting orders of ``opp`` an incoming order may trade with, best first. Reads only.

    Runtime complexity: O(k log k) for the k orders on levels within reach
    (mode 3: up to ``limit_key`` minus the smallest charge to ``bus``).
    """
    mode = state.mode
    levels = opp.levels
    if mode is _PRICE_SIGNALS:
        row = state.bid_rows[bus] if taker_bid else state.total[bus]
        bound = limit_key - (state.min_for_bid[bus] if taker_bid else state.min_for_ask[bus])
        if opp.best > bound:
            return []
        ranked: list[tuple[int, int, _Order]] = []
        for key in opp.keys_from_best():
            if key > bound:
                break
            order = levels[key].head
            while order is not None:
                net = key + row[order.bus]
                if net <= limit_key:
                    ranked.append((net, order.seq, order))
                order = order.next
        ranked.sort(key=_rank)
        return [r[2] for r in ranked]
    if opp.best > limit_key:
        return []
    out: list[_Order] = []
    for key in opp.keys_from_best():
        if key > limit_key:
            break
        order = levels[key].head
        while order is not None:
            out.append(order)
            order = order.next
    if mode is _PREFERENCES:
        tech = state.tech
        dist = state.distance
        own_tech = tech.get(owner)
        kept = []
        for order in out:
            d = dist[bus][order.bus] if dist else 0
            back = dist[order.bus][bus] if dist else 0
            if allows(prefs, order.owner, tech.get(order.owner), d) and allows(
                order.prefs, owner, own_tech, back
            ):
                kept.append(order)
        if prefs is not None and prefs.preferred:
            preferred = prefs.preferred
            kept.sort(key=lambda o: o.owner not in preferred)  # stable: price, seq kept
        return kept
    return out


def lazy(
    index: dict[int, _Order],
    state: GridState,
    opp: _Side,
    taker_bid: bool,
    bus: int,
    limit_key: int,
) -> Iterator[_Order]:
    """Modes 3 and 4: the candidates of ``candidates``, found one at a time as matching goes.

    The caller must take each yielded order out of reach before asking for
    the next (fill it, cancel it), or, in mode 4 only, may leave it (a line
    blocked it): mode 3 yields its best again, mode 4 walks on.
    """
    if state.mode is _PRICE_SIGNALS:
        return _best_net(index, state, opp, 1 if taker_bid else 0, bus, limit_key)
    return _walk(opp, limit_key)


def _best_net(
    index: dict[int, _Order], state: GridState, opp: _Side, k: int, bus: int, limit_key: int
) -> Iterator[_Order]:
    """Mode 3: the resting order with the best net key (then the lowest seq), repeatedly."""
    while True:
        found = best_net(index, state, opp, k, bus, limit_key)
        if found is None:
            return
        yield found[0]


def best_net(
    index: dict[int, _Order], state: GridState, opp: _Side, k: int, bus: int, limit_key: int
) -> tuple[_Order, int] | None:
    """Mode 3: (the resting order with the best (net key, seq) within ``limit_key``, its bus).

    For an incoming order at ``bus`` against side ``k`` of ``opp`` (1: it
    buys). Visits the per-bus heap tops in ``GridState.scan`` order (by
    charge) and stops at the first bus whose charge added to the side's best
    key is already above the best net found: every resting order there nets
    at least that much. A stale top met on the way is popped. ``take_net``
    calls it once per match.

    Runtime complexity: O(b) for the b buses within reach of the best net
    price (all B at worst), plus stale heap entries.
    """
    heaps = state.heaps[k]
    tops = state.tops[k]
    scan = state.scans[k][bus]
    if scan is None:
        scan = state.scan(k, bus)
    floor = opp.best  # every resting order's key is at least this
    best = limit_key  # a match must net at most the limit
    best_seq = -1
    maker = None
    maker_bus = 0
    for charge, s in scan:
        if floor + charge > best:
            break  # this bus and the rest net more than the best found
        if tops[s] + charge > best:
            continue
        heap = heaps[s]
        while heap:
            key, seq, order_id = heap[0]
            top = index.get(order_id)
            if top is not None and top.side is opp and top.seq == seq:
                break
            heappop(heap)  # gone or re-queued: stale
        else:
            tops[s] = EMPTY
            continue
        tops[s] = key
        net = key + charge
        if net < best or (net == best and (maker is None or seq < best_seq)):
            best = net
            best_seq = seq
            maker = top
            maker_bus = s
    return None if maker is None else (maker, maker_bus)


def _walk(opp: _Side, limit_key: int) -> Iterator[_Order]:
    """Mode 4: resting orders up to ``limit_key`` in price-time order, read as matching goes."""
    if opp.best > limit_key:
        return
    levels = opp.levels
    for key in opp.keys_from_best():
        if key > limit_key:
            return
        level = levels.get(key)
        order = None if level is None else level.head
        while order is not None:
            nxt = order.next  # read before the caller may unlink the order
            yield order
            order = nxt


def _rank(entry: tuple[int, int, _Order]) -> tuple[int, int]:
    return entry[0], entry[1]


def headroom(state: GridState, path: Path) -> tuple[int, int]:
    """(Wh that may still flow along ``path``, the first line that binds it)."""
    best = -1
    line = -1
    for x, d in path:
        room = state.room(x, d)
        if best < 0 or room < best:
            best = room
            line = x
    return best, line


def take_grid(
    index: dict[int, _Order],
    state: GridState,
    opp: _Side,
    cands: Iterable[_Order],
    order_id: int,
    owner: str,
    side: Side,
    bus: int,
    quantity: int,
    stp: STPMode,
    events: list[Event],
) -> tuple[int, bool]:
    """Match ``quantity`` Wh of an incoming order against ``cands`` (``candidates`` or ``lazy``).

    Self-trade prevention as in ``orderbook.matching.take``. Filled and
    cancelled makers leave the book and ``index``; mode 4 flows move along
    each trade's path.

    Returns:
        ``(remaining, stopped)`` as ``orderbook.matching.take``.

    Runtime complexity: O(t * depth) for t candidates walked.
    """
    instrument: Instrument = opp.instrument
    append = events.append
    mode = state.mode
    approval = state.grid.approval
    taker_bid = side is _BID
    remaining = quantity
    walk = iter(cands)
    while remaining:
        maker = next(walk, None)
        if maker is None:
            break
        maker_qty = maker.quantity
        if maker.owner == owner:
            if stp is _CANCEL_NEWEST:
                return remaining, True
            if stp is _CANCEL_OLDEST or stp is _CANCEL_BOTH:
                del index[maker.order_id]
                opp.unlink(maker)
                append(
                    _new(
                        Cancelled,
                        (instrument, maker.order_id, maker.owner, maker_qty, 0, _SELF_TRADE),
                    )
                )
                if stp is _CANCEL_BOTH:
                    return remaining, True
                continue
            cut = maker_qty if maker_qty < remaining else remaining
            _reduce(index, opp, maker, cut)
            remaining -= cut
            left = maker_qty - cut
            maker_id = maker.order_id
            append(_new(Cancelled, (instrument, maker_id, maker.owner, cut, left, _SELF_TRADE)))
            append(_new(Cancelled, (instrument, order_id, owner, cut, remaining, _SELF_TRADE)))
            continue
        qty = maker_qty if maker_qty < remaining else remaining
        seller_bus, buyer_bus = (maker.bus, bus) if taker_bid else (bus, maker.bus)
        sc = bc = 0
        line = None
        price = maker.price
        if mode is _PRICE_SIGNALS:
            sc = state.seller_charge[seller_bus][buyer_bus]
            bc = state.buyer_charge[seller_bus][buyer_bus]
            # The maker gets exactly its limit net of its own charge.
            price = price + sc if taker_bid else price - bc
        elif mode is _LINE_VALIDATION:
            path = state.path(seller_bus, buyer_bus)
            if path:
                room, binding = headroom(state, path)
                if room <= 0:
                    append(_new(LineBlocked, (instrument, maker.order_id, order_id, binding)))
                    continue
                if room < qty:
                    qty = room
                    line = binding
                state.move(seller_bus, buyer_bus, qty)
        _reduce(index, opp, maker, qty)
        remaining -= qty
        trade_no = -1
        if approval and mode is _LINE_VALIDATION:
            trade_no = state.hold(seller_bus, buyer_bus, qty)
        append(
            _new(
                GridTrade,
                (
                    instrument,
                    maker.order_id,
                    order_id,
                    maker.owner,
                    owner,
                    price,
                    qty,
                    maker_qty - qty,
                    remaining,
                    side,
                    sc,
                    bc,
                    line,
                ),
            )
        )
        if trade_no >= 0:
            append(_new(TradePending, (instrument, trade_no, maker.order_id, order_id, qty)))
    return remaining, False


def _reduce(index: dict[int, _Order], opp: _Side, maker: _Order, qty: int) -> None:
    """Take ``qty`` Wh off a resting order, removing it when nothing is left."""
    if qty == maker.quantity:
        del index[maker.order_id]
        opp.unlink(maker)
        return
    maker.quantity -= qty
    maker.encoded = None  # its snapshot text changed
    level = maker.level
    assert level is not None
    level.volume -= qty


def fok_fillable_grid(
    state: GridState,
    cands: list[_Order],
    owner: str,
    side: Side,
    bus: int,
    quantity: int,
    stp: STPMode,
) -> bool:
    """True if ``take_grid`` would trade the whole ``quantity`` against ``cands``. Reads only.

    Mirrors ``orderbook.matching.fok_fillable``, with mode 4's flows moved
    on a scratch copy as the trades would move them.
    """
    need = quantity
    flow = list(state.flow) if state.mode is _LINE_VALIDATION else None
    approval = state.grid.approval
    up, down = list(state.up_pending), list(state.down_pending)  # scratch copies
    for maker in cands:
        if maker.owner == owner:
            if stp is not _CANCEL_OLDEST:
                return False
            continue
        qty = maker.quantity if maker.quantity < need else need
        if flow is not None:
            seller_bus, buyer_bus = (maker.bus, bus) if side is _BID else (bus, maker.bus)
            path = state.path(seller_bus, buyer_bus)
            cap = state.capacity
            for x, d in path:
                room = cap[x] - flow[x] - down[x] if d > 0 else cap[x] + flow[x] - up[x]
                qty = min(qty, room)
            if qty <= 0:
                continue
            for x, d in path:
                flow[x] += d * qty
                if approval:
                    if d > 0:
                        up[x] += qty
                    else:
                        down[x] += qty
        need -= qty
        if need <= 0:
            return True
    return False


def take_lines(
    index: dict[int, _Order],
    state: GridState,
    opp: _Side,
    order_id: int,
    owner: str,
    side: Side,
    bus: int,
    quantity: int,
    limit_key: int,
    stp: STPMode,
    events: list[Event],
) -> tuple[int, bool]:
    """Mode 4: ``take_grid`` over the price-time walk, with the walk, headroom and fills inlined.

    Same events and state as ``take_grid(..., lazy(...), ...)`` (the property
    tests hold both to the reference); this is the hot path of a marketable
    order in mode 4, so it reads levels directly, like ``matching.take``.
    A match moves its flow along its lane (``orderbook.gridpaths``) while
    reading the room left, ``up_limit - flow`` on the lines it runs up and
    ``down_limit + flow`` on those it runs down, and takes it back to cut it
    (or skip it) when some line would go over.

    Runtime complexity: O(t * depth) for t resting orders walked.
    """
    instrument = opp.instrument
    append = events.append
    levels = opp.levels
    taker_bid = side is _BID
    flow = state.flow
    up_limit = state.up_limit
    down_limit = state.down_limit
    row = state.lane_row(taker_bid, bus)
    approval = state.grid.approval
    remaining = quantity
    # Maker bus -> the line that blocked its lane, while no flow has moved
    # since: the makers behind it at that bus are skipped without a check.
    blocked: dict[int, int] = {}
    # Like matching.take, the walk follows opp.best while every level it
    # reaches empties; once a line leaves a maker behind, the levels after it
    # come from a sorted walk of the keys (keys_from_best copies the heap: only then).
    later: Iterator[int] | None = None
    key = opp.best
    while key <= limit_key:
        level = levels.get(key)
        maker = None if level is None else level.head
        while maker is not None:
            nxt = maker.next  # read before the maker may leave the level
            maker_qty = maker.quantity
            if maker.owner == owner:
                if stp is _CANCEL_NEWEST:
                    return remaining, True
                if stp is _CANCEL_OLDEST or stp is _CANCEL_BOTH:
                    del index[maker.order_id]
                    opp.unlink(maker)
                    cancelled = (instrument, maker.order_id, maker.owner, maker_qty, 0, _SELF_TRADE)
                    append(_new(Cancelled, cancelled))
                    if stp is _CANCEL_BOTH:
                        return remaining, True
                    maker = nxt
                    continue
                cut = maker_qty if maker_qty < remaining else remaining
                _reduce(index, opp, maker, cut)
                remaining -= cut
                maker_id = maker.order_id
                left = maker_qty - cut
                append(_new(Cancelled, (instrument, maker_id, maker.owner, cut, left, _SELF_TRADE)))
                append(_new(Cancelled, (instrument, order_id, owner, cut, remaining, _SELF_TRADE)))
                if not remaining:
                    return 0, False
                maker = nxt
                continue
            qty = maker_qty if maker_qty < remaining else remaining
            maker_bus = maker.bus
            line = None
            if maker_bus != bus:
                if blocked and maker_bus in blocked:  # no flow moved since it was blocked
                    binding = blocked[maker_bus]
                    append(_new(LineBlocked, (instrument, maker.order_id, order_id, binding)))
                    maker = nxt
                    continue
                lane = row[maker_bus]
                if lane is None:
                    pair = (maker_bus, bus) if taker_bid else (bus, maker_bus)
                    lane = row[maker_bus] = state.lane(pair)
                ups, downs = lane
                # Move the trade along the path, noting the least room left and
                # the first line that has it (lanes list their lines in path
                # order, ups first); if some line would go over, take it back.
                least = 0
                binding = -1
                for x in ups:
                    f = flow[x] + qty
                    flow[x] = f
                    r = up_limit[x] - f
                    if r < least:
                        least = r
                        binding = x
                for x in downs:
                    f = flow[x] - qty
                    flow[x] = f
                    r = down_limit[x] + f
                    if r < least:
                        least = r
                        binding = x
                if least < 0:
                    for x in ups:
                        flow[x] -= qty
                    for x in downs:
                        flow[x] += qty
                    room = qty + least  # the path's headroom before this match
                    if room <= 0:
                        blocked[maker_bus] = binding
                        append(_new(LineBlocked, (instrument, maker.order_id, order_id, binding)))
                        maker = nxt
                        continue
                    qty = room
                    line = binding
                    for x in ups:
                        flow[x] += qty
                    for x in downs:
                        flow[x] -= qty
                if blocked:
                    blocked.clear()  # flows moved: blocked lanes are checked afresh
                if approval:
                    if taker_bid:
                        no = state.hold(maker_bus, bus, qty)
                    else:
                        no = state.hold(bus, maker_bus, qty)
            elif approval:
                no = state.hold(bus, bus, qty)
            left = maker_qty - qty
            if left:
                maker.quantity = left
                maker.encoded = None  # its snapshot text changed
                level.volume -= qty  # type: ignore[union-attr]  # maker is on it
            else:
                # _Side.unlink inlined.
                del index[maker.order_id]
                prev = maker.prev
                if prev is None:
                    level.head = nxt  # type: ignore[union-attr]
                else:
                    prev.next = nxt
                if nxt is None:
                    level.tail = prev  # type: ignore[union-attr]
                else:
                    nxt.prev = prev
                level.volume -= maker_qty  # type: ignore[union-attr]
                level.count -= 1  # type: ignore[union-attr]
                maker.level = None
                if level.head is None:  # type: ignore[union-attr]
                    opp.drop_level(level)  # type: ignore[arg-type]
            remaining -= qty
            append(
                _new(
                    GridTrade,
                    (
                        instrument,
                        maker.order_id,
                        order_id,
                        maker.owner,
                        owner,
                        maker.price,
                        qty,
                        left,
                        remaining,
                        side,
                        0,
                        0,
                        line,
                    ),
                )
            )
            if approval:
                append(_new(TradePending, (instrument, no, maker.order_id, order_id, qty)))
            if not remaining:
                return 0, False
            maker = nxt
        if later is None and key not in levels:
            key = opp.best  # the level emptied: the next best is the side's best
            continue
        if later is None:
            later = opp.keys_from_best()
        key = next((k for k in later if k > key), EMPTY)
    return remaining, False


def take_net(
    index: dict[int, _Order],
    state: GridState,
    opp: _Side,
    order_id: int,
    owner: str,
    side: Side,
    bus: int,
    quantity: int,
    limit_key: int,
    stp: STPMode,
    events: list[Event],
) -> tuple[int, bool]:
    """Mode 3: ``take_grid`` over the best net prices (``best_net``), with the fills inlined.

    Same events and state as ``take_grid(..., lazy(...), ...)`` (the property
    tests hold both to the reference); this is the hot path of a marketable
    order in mode 3. Each match takes ``best_net``'s maker: an inlined copy
    of the search measured within the noise of the call
    (``bench_modes --part modes``), so there is one copy.

    Runtime complexity: O(b) per match for the b buses within reach of the
    best net price (all B at worst), plus stale heap entries.
    """
    instrument = opp.instrument
    append = events.append
    taker_bid = side is _BID
    k = 1 if taker_bid else 0
    seller_charge = state.seller_charge
    buyer_charge = state.buyer_charge
    remaining = quantity
    while remaining:
        found = best_net(index, state, opp, k, bus, limit_key)
        if found is None:
            break
        maker, maker_bus = found
        maker_qty = maker.quantity
        if maker.owner == owner:
            if stp is _CANCEL_NEWEST:
                return remaining, True
            if stp is _CANCEL_OLDEST or stp is _CANCEL_BOTH:
                del index[maker.order_id]
                opp.unlink(maker)
                cancelled = (instrument, maker.order_id, maker.owner, maker_qty, 0, _SELF_TRADE)
                append(_new(Cancelled, cancelled))
                if stp is _CANCEL_BOTH:
                    return remaining, True
                continue
            cut = maker_qty if maker_qty < remaining else remaining
            _reduce(index, opp, maker, cut)
            remaining -= cut
            maker_id = maker.order_id
            left = maker_qty - cut
            append(_new(Cancelled, (instrument, maker_id, maker.owner, cut, left, _SELF_TRADE)))
            append(_new(Cancelled, (instrument, order_id, owner, cut, remaining, _SELF_TRADE)))
            continue
        qty = maker_qty if maker_qty < remaining else remaining
        if taker_bid:
            sc = seller_charge[maker_bus][bus]
            bc = buyer_charge[maker_bus][bus]
            price = maker.price + sc  # the maker gets its limit net of its charge
        else:
            sc = seller_charge[bus][maker_bus]
            bc = buyer_charge[bus][maker_bus]
            price = maker.price - bc
        left = maker_qty - qty
        if left:
            maker.quantity = left
            maker.encoded = None  # its snapshot text changed
            maker.level.volume -= qty  # type: ignore[union-attr]  # it rests
        else:
            del index[maker.order_id]
            opp.unlink(maker)
        remaining -= qty
        append(
            _new(
                GridTrade,
                (
                    instrument,
                    maker.order_id,
                    order_id,
                    maker.owner,
                    owner,
                    price,
                    qty,
                    left,
                    remaining,
                    side,
                    sc,
                    bc,
                    None,
                ),
            )
        )
    return remaining, False


def crosses_net(state: GridState, opp: _Side, k: int, bus: int, limit_key: int) -> bool:
    """Mode 3: True if some per-bus heap top may net within ``limit_key`` (a stale top may).

    False means no resting order of ``opp`` nets within the limit for an
    incoming order at ``bus`` against side ``k`` (1: it buys): it rests, or
    an IOC is refused. True sends it to ``take_net``, which pops stale tops.

    Runtime complexity: O(b) for the b buses whose charge is within
    ``limit_key - opp.best``.
    """
    floor = opp.best
    if floor > limit_key:
        return False
    scan = state.scans[k][bus]
    if scan is None:
        scan = state.scan(k, bus)
    tops = state.tops[k]
    for charge, s in scan:
        if floor + charge > limit_key:
            return False
        if tops[s] + charge <= limit_key:
            return True
    return False
