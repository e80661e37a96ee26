"""A naive reference for the grid modes: scan every resting order, recompute every flow.

``GridReferenceMarket`` extends the flat-list ``ReferenceMarket`` with the
modes of ``orderbook.grid``, written as plainly as possible:

- candidates are found by scanning every resting order of the book and
  sorting by the mode's rank (mode 3: price net of both charges, then
  arrival; mode 4: price, then arrival; mode 1: the incoming order's
  preferred partners first, then price, then arrival);
- mode 4's line flows are recomputed from scratch before every match, from
  the base flows and the list of every trade made in the book, along paths
  found by walking each bus up to the root.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from orderbook import (
    Accepted,
    Amended,
    AmendOrder,
    Cancelled,
    CancelReason,
    DecideTrade,
    Grid,
    GridMode,
    GridTrade,
    Instrument,
    LineBlocked,
    MarketConfig,
    ModeSet,
    PlaceOrder,
    Preferences,
    Rejected,
    RejectReason,
    SetMode,
    Side,
    STPMode,
    TimeInForce,
    TradeDecided,
    TradePending,
)
from tests.orderbook.reference import ReferenceMarket, RefOrder

R = RejectReason


@dataclass
class RefGrid:
    mode: GridMode
    grid: Grid
    base: list[int]
    trades: list[tuple[int, int, int]] = field(default_factory=list)  # (seller bus, buyer bus, Wh)
    pending: dict[int, tuple[int, int, int]] = field(default_factory=dict)  # awaiting the DSO
    trade_no: int = 0


def ancestors(grid: Grid, bus: int) -> list[int]:
    out = []
    while bus >= 0:
        out.append(bus)
        bus = grid.parent[bus]
    return out


def path(grid: Grid, seller: int, buyer: int) -> list[tuple[int, int]]:
    """Lines (child bus) and direction (+1 towards the root) from seller to buyer."""
    up, down = ancestors(grid, seller), ancestors(grid, buyer)
    common = next(b for b in up if b in down)
    return [(b, 1) for b in up[: up.index(common)]] + [
        (b, -1) for b in reversed(down[: down.index(common)])
    ]


def flows(g: RefGrid) -> list[int]:
    flow = list(g.base)
    for seller, buyer, qty in [*g.trades, *g.pending.values()]:
        for line, d in path(g.grid, seller, buyer):
            flow[line] += d * qty
    return flow


def allows(prefs: Preferences | None, other: str, tech: str | None, distance: int) -> bool:
    if prefs is None:
        return True
    return (
        other not in prefs.excluded
        and (prefs.technologies is None or tech in prefs.technologies)
        and (prefs.max_distance is None or distance <= prefs.max_distance)
    )


class GridReferenceMarket(ReferenceMarket):
    def __init__(self, config: MarketConfig, now: int = 0) -> None:
        super().__init__(config, now)
        self.grids: dict[Instrument, RefGrid] = {}
        self.bus: dict[int, int] = {}  # order id -> bus (grid books)
        self.prefs: dict[int, Preferences | None] = {}  # order id -> preferences

    def execute(self, cmd: object) -> list[object]:
        if isinstance(cmd, SetMode):
            return self.set_mode(cmd)
        if isinstance(cmd, DecideTrade):
            return self.decide(cmd)
        return super().execute(cmd)

    def decide(self, c: DecideTrade) -> list[object]:
        if c.instrument not in self.instruments:
            return [Rejected(None, R.UNKNOWN_INSTRUMENT)]
        g = self.grids.get(c.instrument)
        if g is None or c.trade_no not in g.pending or type(c.approve) is not bool:
            return [Rejected(None, R.UNKNOWN_TRADE)]
        trade = g.pending.pop(c.trade_no)
        if c.approve:
            g.trades.append(trade)
        reason = "approved" if c.approve else "refused"
        return [TradeDecided(c.instrument, c.trade_no, c.approve, reason)]

    def close(self, instrument: Instrument) -> list[object]:
        events = super().close(instrument)
        g = self.grids.get(instrument)
        if g is not None and type(events[-1]).__name__ == "InstrumentClosed":
            refused = [TradeDecided(instrument, no, False, "deadline") for no in sorted(g.pending)]
            g.pending.clear()
            events[-1:-1] = refused
        return events

    # ---------------------------------------------------------------- modes

    def set_mode(self, c: SetMode) -> list[object]:
        if c.instrument not in self.instruments:
            return [Rejected(None, R.UNKNOWN_INSTRUMENT)]
        if self.instruments[c.instrument]:
            return [Rejected(None, R.INSTRUMENT_CLOSED)]
        if not isinstance(c.mode, GridMode):
            return [Rejected(None, R.INVALID_MODE)]
        if c.instrument in self.grids and self.grids[c.instrument].pending:
            return [Rejected(None, R.TRADES_PENDING)]
        resting = self.side_orders(c.instrument, Side.BID) + self.side_orders(
            c.instrument, Side.ASK
        )
        if c.mode is GridMode.BIDS_OFFERS:
            if c.grid is not None:
                return [Rejected(None, R.INVALID_GRID)]
            bids = [o.price for o in resting if o.side is Side.BID]
            asks = [o.price for o in resting if o.side is Side.ASK]
            if bids and asks and max(bids) >= min(asks):
                return [Rejected(None, R.BOOK_CROSSED)]
            self.grids.pop(c.instrument, None)
            for o in resting:
                self.prefs.pop(o.order_id, None)
            return [ModeSet(c.instrument, 2)]
        grid = c.grid
        if not isinstance(grid, Grid) or grid.missing(c.mode) is not None:
            return [Rejected(None, R.INVALID_GRID)]
        base = list(grid.base_flow or [0] * grid.n_buses) if grid.parent else []
        old = self.grids.get(c.instrument)
        new = RefGrid(c.mode, grid, base, trade_no=0 if old is None else old.trade_no)
        if (
            c.mode is GridMode.LINE_VALIDATION
            and old is not None
            and old.mode is GridMode.LINE_VALIDATION
            and old.grid.parent == grid.parent
        ):
            # The trades made so far still flow: keep them over the new base.
            new.trades = list(old.trades)
            if any(
                abs(f) > grid.capacity[b] for b, f in enumerate(flows(new)) if grid.parent[b] >= 0
            ):
                return [Rejected(None, R.INVALID_GRID)]
        owner_bus = dict(grid.buses)
        if any(o.owner not in owner_bus for o in resting):
            return [Rejected(None, R.UNKNOWN_BUS)]
        for o in resting:  # renumbered: best price first, queue order
            o.seq = self.next_seq()
            self.bus[o.order_id] = owner_bus[o.owner]
        self.grids[c.instrument] = new
        return [ModeSet(c.instrument, int(c.mode))]

    # ---------------------------------------------------------------- orders

    def place(self, c: PlaceOrder) -> list[object]:
        g = self.grids.get(c.instrument)
        if g is None:
            reason = self.place_reason(c)
            if reason is None and c.preferences is not None:
                reason = R.INVALID_PREFERENCES
            if reason is not None:
                return [Rejected(c.order_id, reason)]
            return super().place(c)
        reason = self.place_reason(c)
        if reason is not None:
            return [Rejected(c.order_id, reason)]
        if c.preferences is not None and (
            type(c.preferences) is not Preferences or g.mode is not GridMode.PREFERENCES
        ):
            return [Rejected(c.order_id, R.INVALID_PREFERENCES)]
        bus = dict(g.grid.buses).get(c.owner)
        if bus is None:
            return [Rejected(c.order_id, R.UNKNOWN_BUS)]
        stp = c.stp if c.stp is not None else self.config.default_stp
        limit = c.price if c.price is not None else c.protection_price
        makers = self.grid_candidates(g, c.instrument, c.side, c.owner, bus, c.preferences, limit)
        if c.post_only and makers:
            return [Rejected(c.order_id, R.WOULD_TAKE)]
        if c.tif == TimeInForce.FOK and not self.grid_fok(g, makers, c, bus, stp):
            return [Rejected(c.order_id, R.FOK_UNFILLABLE)]
        events: list[object] = [
            Accepted(c.instrument, c.order_id, c.owner, c.side, c.price, c.quantity)
        ]
        remaining, stopped = self.grid_match(
            g, c.instrument, c.order_id, c.owner, c.side, bus, c.quantity, makers, stp, events
        )
        changed = any(type(e) is not LineBlocked for e in events[1:])
        if stopped:
            if not changed:
                return [Rejected(c.order_id, R.SELF_TRADE)]
            events.append(
                Cancelled(c.instrument, c.order_id, c.owner, remaining, 0, CancelReason.SELF_TRADE)
            )
            return events
        if remaining == 0:
            return events
        if c.price is not None and c.tif in (TimeInForce.GTC, TimeInForce.GTD):
            self.orders.append(
                RefOrder(
                    c.instrument,
                    c.order_id,
                    c.owner,
                    c.side,
                    c.price,
                    remaining,
                    c.expires_at,
                    stp,
                    c.post_only,
                    self.next_seq(),
                )
            )
            self.bus[c.order_id] = bus
            self.prefs[c.order_id] = c.preferences
            return events
        if not changed:
            return [Rejected(c.order_id, R.NO_LIQUIDITY if c.price is None else R.IOC_UNFILLED)]
        events.append(
            Cancelled(c.instrument, c.order_id, c.owner, remaining, 0, CancelReason.UNFILLED)
        )
        return events

    def amend(self, c: AmendOrder) -> list[object]:
        o = self.find(c.order_id)
        if o is None or o.instrument not in self.grids:
            return super().amend(c)
        g = self.grids[o.instrument]
        if c.owner is not None and c.owner != o.owner:
            return [Rejected(c.order_id, R.NOT_OWNER)]
        if c.price is not None:
            reason = self.price_reason(c.price)
            if reason:
                return [Rejected(c.order_id, reason)]
        if c.quantity is not None:
            if type(c.quantity) is not int or c.quantity < 1:
                return [Rejected(c.order_id, R.INVALID_QUANTITY)]
            if c.quantity > self.config.max_quantity:
                return [Rejected(c.order_id, R.QUANTITY_TOO_LARGE)]
        if (c.price is None or c.price == o.price) and (
            c.quantity is None or c.quantity == o.quantity
        ):
            return [Rejected(c.order_id, R.NO_CHANGE)]
        price = o.price if c.price is None else c.price
        quantity = o.quantity if c.quantity is None else c.quantity
        old_price, old_quantity = o.price, o.quantity
        if price == o.price and quantity < o.quantity:
            o.quantity = quantity
            return [
                Amended(
                    o.instrument, o.order_id, o.owner, price, quantity, price, old_quantity, True
                )
            ]
        bus = self.bus[o.order_id]
        prefs = self.prefs.get(o.order_id)
        makers = self.grid_candidates(g, o.instrument, o.side, o.owner, bus, prefs, price)
        if o.post_only and makers:
            return [Rejected(c.order_id, R.WOULD_TAKE)]
        self.orders.remove(o)
        events: list[object] = [
            Amended(
                o.instrument, o.order_id, o.owner, price, quantity, old_price, old_quantity, False
            )
        ]
        remaining, stopped = self.grid_match(
            g, o.instrument, o.order_id, o.owner, o.side, bus, quantity, makers, o.stp, events
        )
        if stopped:
            events.append(
                Cancelled(o.instrument, o.order_id, o.owner, remaining, 0, CancelReason.SELF_TRADE)
            )
            return events
        if remaining:
            o.price = price
            o.quantity = remaining
            o.seq = self.next_seq()
            self.orders.append(o)
        return events

    # -------------------------------------------------------------- matching

    def charges(self, g: RefGrid, seller_bus: int, buyer_bus: int) -> tuple[int, int]:
        if g.mode is not GridMode.PRICE_SIGNALS:
            return 0, 0
        return (
            g.grid.seller_charge[seller_bus][buyer_bus],
            g.grid.buyer_charge[seller_bus][buyer_bus],
        )

    def grid_candidates(
        self,
        g: RefGrid,
        instrument: Instrument,
        side: Side,
        owner: str,
        bus: int,
        prefs: Preferences | None,
        limit: int | None,
    ) -> list[RefOrder]:
        """Every resting order of the other side the incoming order may trade with, best first."""
        bid = side is Side.BID
        tech = dict(g.grid.technologies)
        dist = g.grid.distance
        ranked = []
        for o in self.orders:
            if o.instrument != instrument or o.side is side:
                continue
            ob = self.bus[o.order_id]
            seller_bus, buyer_bus = (ob, bus) if bid else (bus, ob)
            sc, bc = self.charges(g, seller_bus, buyer_bus)
            # What the incoming order pays (buyer) or gets (seller) per kWh, all in.
            net = o.price + sc + bc if bid else o.price - sc - bc
            if limit is not None and (net > limit if bid else net < limit):
                continue
            if g.mode is GridMode.PREFERENCES:
                d_in = dist[bus][ob] if dist else 0
                d_out = dist[ob][bus] if dist else 0
                if not allows(prefs, o.owner, tech.get(o.owner), d_in):
                    continue
                if not allows(self.prefs.get(o.order_id), owner, tech.get(owner), d_out):
                    continue
            first = 1
            if g.mode is GridMode.PREFERENCES and prefs is not None and o.owner in prefs.preferred:
                first = 0
            ranked.append(((first, net if bid else -net, o.seq), o))
        ranked.sort(key=lambda r: r[0])
        return [o for _, o in ranked]

    def room(self, g: RefGrid, seller_bus: int, buyer_bus: int) -> tuple[int, int]:
        """Headroom along the path, recomputed from every trade, and its first binding line.

        Any pending trade may be refused: a line's room counts the final
        trades and only the pending ones that load it in the match's direction.
        """
        best, line = None, -1
        for b, d in path(g.grid, seller_bus, buyer_bus):
            worst = g.base[b]
            for s, t, q in g.trades:
                worst += sum(dd * q for bb, dd in path(g.grid, s, t) if bb == b)
            for s, t, q in g.pending.values():
                worst += sum(dd * q for bb, dd in path(g.grid, s, t) if bb == b and dd == d)
            room = g.grid.capacity[b] - d * worst
            if best is None or room < best:
                best, line = room, b
        return (10**18 if best is None else best), line

    def grid_fok(
        self, g: RefGrid, makers: list[RefOrder], c: PlaceOrder, bus: int, stp: STPMode
    ) -> bool:
        need = c.quantity
        saved = list(g.trades)
        saved_pending = dict(g.pending)
        try:
            for m in makers:
                if m.owner == c.owner:
                    if stp == STPMode.CANCEL_OLDEST:
                        continue
                    return False
                ob = self.bus[m.order_id]
                seller_bus, buyer_bus = (ob, bus) if c.side is Side.BID else (bus, ob)
                qty = min(m.quantity, need)
                if g.mode is GridMode.LINE_VALIDATION:
                    qty = min(qty, self.room(g, seller_bus, buyer_bus)[0])
                    if qty <= 0:
                        continue
                    if g.grid.approval:
                        g.pending[-1 - len(g.pending)] = (seller_bus, buyer_bus, qty)
                    else:
                        g.trades.append((seller_bus, buyer_bus, qty))
                need -= qty
                if need <= 0:
                    return True
            return False
        finally:
            g.trades = saved
            g.pending = saved_pending

    def grid_match(
        self,
        g: RefGrid,
        instrument: Instrument,
        order_id: int,
        owner: str,
        side: Side,
        bus: int,
        quantity: int,
        makers: list[RefOrder],
        stp: STPMode,
        events: list[object],
    ) -> tuple[int, bool]:
        remaining = quantity
        for m in makers:
            if remaining == 0:
                break
            if m.owner == owner:
                if stp == STPMode.CANCEL_NEWEST:
                    return remaining, True
                if stp in (STPMode.CANCEL_OLDEST, STPMode.CANCEL_BOTH):
                    self.orders.remove(m)
                    events.append(
                        Cancelled(
                            instrument, m.order_id, m.owner, m.quantity, 0, CancelReason.SELF_TRADE
                        )
                    )
                    if stp == STPMode.CANCEL_BOTH:
                        return remaining, True
                    continue
                cut = min(m.quantity, remaining)
                m.quantity -= cut
                remaining -= cut
                if m.quantity == 0:
                    self.orders.remove(m)
                events.append(
                    Cancelled(
                        instrument, m.order_id, m.owner, cut, m.quantity, CancelReason.SELF_TRADE
                    )
                )
                events.append(
                    Cancelled(instrument, order_id, owner, cut, remaining, CancelReason.SELF_TRADE)
                )
                continue
            ob = self.bus[m.order_id]
            seller_bus, buyer_bus = (ob, bus) if side is Side.BID else (bus, ob)
            fill = min(m.quantity, remaining)
            line = None
            held = None
            if g.mode is GridMode.LINE_VALIDATION:
                room, binding = self.room(g, seller_bus, buyer_bus)
                if room <= 0:
                    events.append(LineBlocked(instrument, m.order_id, order_id, binding))
                    continue
                if room < fill:
                    fill, line = room, binding
                held = None
                if g.grid.approval:
                    held = g.trade_no
                    g.trade_no += 1
                    g.pending[held] = (seller_bus, buyer_bus, fill)
                else:
                    g.trades.append((seller_bus, buyer_bus, fill))
            sc, bc = self.charges(g, seller_bus, buyer_bus)
            # The maker gets exactly its own limit, net of its own charge.
            price = m.price + sc if side is Side.BID else m.price - bc
            m.quantity -= fill
            remaining -= fill
            if m.quantity == 0:
                self.orders.remove(m)
            events.append(
                GridTrade(
                    instrument,
                    m.order_id,
                    order_id,
                    m.owner,
                    owner,
                    price,
                    fill,
                    m.quantity,
                    remaining,
                    side,
                    sc,
                    bc,
                    line,
                )
            )
            if g.mode is GridMode.LINE_VALIDATION and held is not None:
                events.append(TradePending(instrument, held, m.order_id, order_id, fill))
        return remaining, False
