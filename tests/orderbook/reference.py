"""A naive reference market: one flat list of orders, scanned and sorted on every command.

It implements the documented semantics of ``orderbook.Market`` as plainly as
possible (no levels, no linked lists, no caches, no fast path) so that the
property tests can compare the two event by event. Time priority is a
sequence number: a new order, or an amend that loses priority, takes the
next one.
"""

from __future__ import annotations

from dataclasses import dataclass

from orderbook import (
    Accepted,
    AdvanceClock,
    Amended,
    AmendOrder,
    Cancelled,
    CancelOrder,
    CancelReason,
    CloseInstrument,
    Expired,
    Instrument,
    InstrumentClosed,
    InstrumentOpened,
    MarketConfig,
    OpenInstrument,
    OrderView,
    PlaceOrder,
    Product,
    Rejected,
    RejectReason,
    Side,
    STPMode,
    TimeInForce,
    Trade,
)

R = RejectReason


@dataclass
class RefOrder:
    instrument: Instrument
    order_id: int
    owner: str
    side: Side
    price: int
    quantity: int
    expires_at: int | None
    stp: STPMode
    post_only: bool
    seq: int


class ReferenceMarket:
    def __init__(self, config: MarketConfig, now: int = 0) -> None:
        self.config = config
        self.clock = now
        self.instruments: dict[Instrument, bool] = {}  # instrument -> closed
        self.orders: list[RefOrder] = []
        self.seq = 0

    # ---------------------------------------------------------------- helpers

    def find(self, order_id: object) -> RefOrder | None:
        for o in self.orders:
            if o.order_id == order_id and type(order_id) is int:
                return o
        return None

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    @staticmethod
    def priority(o: RefOrder) -> tuple[int, int]:
        return (-o.price if o.side is Side.BID else o.price, o.seq)

    def side_orders(self, instrument: Instrument, side: Side) -> list[RefOrder]:
        return sorted(
            (o for o in self.orders if o.instrument == instrument and o.side is side),
            key=self.priority,
        )

    def crossing(self, instrument: Instrument, side: Side, limit: int | None) -> list[RefOrder]:
        """Opposite orders an incoming order of ``side`` may trade with, in priority."""
        opposite = Side.ASK if side is Side.BID else Side.BID
        out = []
        for o in self.side_orders(instrument, opposite):
            if limit is None or (o.price <= limit if side is Side.BID else o.price >= limit):
                out.append(o)
        return out

    def price_reason(self, price: object) -> RejectReason | None:
        c = self.config
        if type(price) is not int or price <= 0:
            return R.INVALID_PRICE
        if price % c.price_step != 0:
            return R.OFF_TICK
        if price < c.min_price or price > c.max_price:
            return R.PRICE_OUT_OF_BOUNDS
        return None

    # --------------------------------------------------------------- commands

    def execute(self, cmd: object) -> list[object]:
        if isinstance(cmd, PlaceOrder):
            return self.place(cmd)
        if isinstance(cmd, CancelOrder):
            return self.cancel(cmd)
        if isinstance(cmd, AmendOrder):
            return self.amend(cmd)
        if isinstance(cmd, AdvanceClock):
            return self.advance(cmd.now)
        if isinstance(cmd, OpenInstrument):
            return self.open(cmd.instrument)
        if isinstance(cmd, CloseInstrument):
            return self.close(cmd.instrument)
        return [Rejected(None, R.UNKNOWN_COMMAND)]

    def place_reason(self, c: PlaceOrder) -> RejectReason | None:
        if type(c.order_id) is not int or c.order_id < 0:
            return R.INVALID_ORDER_ID
        if c.instrument not in self.instruments:
            return R.UNKNOWN_INSTRUMENT
        if self.instruments[c.instrument]:
            return R.INSTRUMENT_CLOSED
        if self.find(c.order_id) is not None:
            return R.DUPLICATE_ORDER_ID
        if not isinstance(c.owner, str) or type(c.owner) is not str or c.owner == "":
            return R.INVALID_OWNER
        if c.side not in (Side.BID, Side.ASK) or not isinstance(c.side, Side):
            return R.INVALID_SIDE
        if type(c.quantity) is not int or c.quantity < 1:
            return R.INVALID_QUANTITY
        if c.quantity > self.config.max_quantity:
            return R.QUANTITY_TOO_LARGE
        if c.price is not None and c.protection_price is not None:
            return R.INVALID_PROTECTION
        if c.price is not None:
            reason = self.price_reason(c.price)
            if reason:
                return reason
        elif c.protection_price is not None:
            reason = self.price_reason(c.protection_price)
            if reason:
                return reason
        if not isinstance(c.tif, TimeInForce):
            return R.INVALID_TIF
        if c.price is None and c.tif == TimeInForce.GTD:
            return R.INVALID_TIF
        if c.tif == TimeInForce.GTD:
            if type(c.expires_at) is not int:
                return R.INVALID_EXPIRY
            if c.expires_at <= self.clock:
                return R.EXPIRED_ON_ARRIVAL
        elif c.expires_at is not None:
            return R.INVALID_EXPIRY
        if c.post_only is not True and c.post_only is not False:
            return R.INVALID_POST_ONLY
        if c.post_only and (c.price is None or c.tif in (TimeInForce.IOC, TimeInForce.FOK)):
            return R.INVALID_POST_ONLY
        if c.stp is not None and not isinstance(c.stp, STPMode):
            return R.INVALID_STP
        return None

    def fok_ok(self, makers: list[RefOrder], owner: str, quantity: int, stp: STPMode) -> bool:
        need = quantity
        for m in makers:
            if m.owner == owner:
                if stp == STPMode.CANCEL_OLDEST:
                    continue
                return False
            need -= m.quantity
            if need <= 0:
                return True
        return False

    def match(
        self,
        instrument: Instrument,
        order_id: int,
        owner: str,
        side: Side,
        quantity: int,
        limit: int | None,
        stp: STPMode,
        events: list[object],
    ) -> tuple[int, bool]:
        remaining = quantity
        for m in self.crossing(instrument, side, limit):
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
            fill = min(m.quantity, remaining)
            m.quantity -= fill
            remaining -= fill
            if m.quantity == 0:
                self.orders.remove(m)
            events.append(
                Trade(
                    instrument,
                    m.order_id,
                    order_id,
                    m.owner,
                    owner,
                    m.price,
                    fill,
                    m.quantity,
                    remaining,
                    side,
                )
            )
        return remaining, False

    def place(self, c: PlaceOrder) -> list[object]:
        reason = self.place_reason(c)
        if reason is not None:
            return [Rejected(c.order_id, reason)]
        stp = c.stp if c.stp is not None else self.config.default_stp
        limit = c.price if c.price is not None else c.protection_price
        makers = self.crossing(c.instrument, c.side, limit)
        if c.post_only and makers:
            return [Rejected(c.order_id, R.WOULD_TAKE)]
        if c.tif == TimeInForce.FOK and not self.fok_ok(makers, c.owner, c.quantity, stp):
            return [Rejected(c.order_id, R.FOK_UNFILLABLE)]
        events: list[object] = [
            Accepted(c.instrument, c.order_id, c.owner, c.side, c.price, c.quantity)
        ]
        remaining, stopped = self.match(
            c.instrument, c.order_id, c.owner, c.side, c.quantity, limit, stp, events
        )
        if stopped:
            if len(events) == 1:
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
            return events
        if len(events) == 1:
            return [Rejected(c.order_id, R.NO_LIQUIDITY if c.price is None else R.IOC_UNFILLED)]
        events.append(
            Cancelled(c.instrument, c.order_id, c.owner, remaining, 0, CancelReason.UNFILLED)
        )
        return events

    def cancel(self, c: CancelOrder) -> list[object]:
        if type(c.order_id) is not int or c.order_id < 0:
            return [Rejected(c.order_id, R.INVALID_ORDER_ID)]
        o = self.find(c.order_id)
        if o is None:
            return [Rejected(c.order_id, R.UNKNOWN_ORDER)]
        if c.owner is not None and c.owner != o.owner:
            return [Rejected(c.order_id, R.NOT_OWNER)]
        self.orders.remove(o)
        return [Cancelled(o.instrument, o.order_id, o.owner, o.quantity, 0, CancelReason.REQUESTED)]

    def amend(self, c: AmendOrder) -> list[object]:
        if type(c.order_id) is not int or c.order_id < 0:
            return [Rejected(c.order_id, R.INVALID_ORDER_ID)]
        o = self.find(c.order_id)
        if o is None:
            return [Rejected(c.order_id, R.UNKNOWN_ORDER)]
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
        price = o.price if c.price is None else c.price
        quantity = o.quantity if c.quantity is None else c.quantity
        if price == o.price and quantity == o.quantity:
            return [Rejected(c.order_id, R.NO_CHANGE)]
        old_price, old_quantity = o.price, o.quantity
        if price == o.price and quantity < o.quantity:
            o.quantity = quantity
            amended = Amended(
                o.instrument, o.order_id, o.owner, price, quantity, price, old_quantity, True
            )
            return [amended]
        makers = self.crossing(o.instrument, o.side, price)
        if o.post_only and makers:
            return [Rejected(c.order_id, R.WOULD_TAKE)]
        self.orders.remove(o)
        events: list[object] = [
            Amended(
                o.instrument, o.order_id, o.owner, price, quantity, old_price, old_quantity, False
            )
        ]
        remaining, stopped = self.match(
            o.instrument, o.order_id, o.owner, o.side, quantity, price, o.stp, events
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

    def open(self, instrument: object) -> list[object]:
        if (
            not isinstance(instrument, Instrument)
            or not isinstance(instrument.product, Product)
            or type(instrument.slot) is not int
        ):
            return [Rejected(None, R.INVALID_INSTRUMENT)]
        if instrument in self.instruments:
            closed = self.instruments[instrument]
            return [Rejected(None, R.INSTRUMENT_CLOSED if closed else R.INSTRUMENT_EXISTS)]
        self.instruments[instrument] = False
        return [InstrumentOpened(instrument)]

    def close(self, instrument: Instrument) -> list[object]:
        if instrument not in self.instruments:
            return [Rejected(None, R.UNKNOWN_INSTRUMENT)]
        if self.instruments[instrument]:
            return [Rejected(None, R.INSTRUMENT_CLOSED)]
        events: list[object] = []
        for side in (Side.BID, Side.ASK):
            for o in self.side_orders(instrument, side):
                self.orders.remove(o)
                events.append(
                    Expired(
                        instrument, o.order_id, o.owner, o.quantity, CancelReason.INSTRUMENT_CLOSED
                    )
                )
        self.instruments[instrument] = True
        events.append(InstrumentClosed(instrument))
        return events

    def advance(self, now: object) -> list[object]:
        if type(now) is not int:
            return [Rejected(None, R.INVALID_TIME)]
        if now < self.clock:
            return [Rejected(None, R.CLOCK_BACKWARDS)]
        self.clock = now
        due = sorted(
            (o for o in self.orders if o.expires_at is not None and o.expires_at <= now),
            key=lambda o: (o.expires_at, o.order_id),
        )
        events: list[object] = []
        for o in due:
            self.orders.remove(o)
            events.append(
                Expired(o.instrument, o.order_id, o.owner, o.quantity, CancelReason.EXPIRED)
            )
        return events

    # ---------------------------------------------------------------- queries

    def views(self, instrument: Instrument) -> tuple[OrderView, ...]:
        return tuple(
            OrderView(
                o.instrument,
                o.order_id,
                o.owner,
                o.side,
                o.price,
                o.quantity,
                o.expires_at,
                o.post_only,
                o.stp,
            )
            for side in (Side.BID, Side.ASK)
            for o in self.side_orders(instrument, side)
        )
