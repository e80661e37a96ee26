"""The matching loop: an incoming order takes liquidity from the opposite side.

Price-time priority: best level first, oldest order first within a level;
every trade is at the resting (maker) order's price. Self-trade prevention
follows the incoming order's ``STPMode`` (see ``orderbook.types.STPMode``).

This is the hot path of every marketable order: attributes and methods are
bound to locals, and events are built with ``tuple.__new__`` (the events are
named tuples), which skips the generated ``__new__`` wrapper.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from orderbook.events import Cancelled, CancelReason, Trade
from orderbook.types import Side, STPMode

if TYPE_CHECKING:
    from orderbook.book import _Level, _Order, _Side
    from orderbook.events import Event

_SELF_TRADE = CancelReason.SELF_TRADE
_CANCEL_NEWEST = STPMode.CANCEL_NEWEST
_CANCEL_OLDEST = STPMode.CANCEL_OLDEST
_CANCEL_BOTH = STPMode.CANCEL_BOTH
_new = tuple.__new__


def take(
    index: dict[int, _Order],
    opp: _Side,
    order_id: int,
    owner: str,
    side: Side,
    quantity: int,
    limit_key: int,
    stp: STPMode,
    events: list[Event],
) -> tuple[int, bool]:
    """Match ``quantity`` Wh of an incoming order against ``opp`` up to ``limit_key``.

    ``limit_key`` is the worst acceptable level key of ``opp`` (the limit
    price for a buyer taking asks, minus the limit price for a seller taking
    bids); levels with a larger key are not touched. Trades and self-trade
    cancellations are appended to ``events``; filled and cancelled makers
    leave the book and ``index``.

    Args:
        index: the market's order-id index.
        opp: the side to take from.
        order_id: the incoming order's id.
        owner: the incoming order's owner.
        side: the incoming order's side.
        quantity: Wh to match, > 0.
        limit_key: worst level key to trade at.
        stp: the incoming order's self-trade prevention mode.
        events: the command's event list, appended to.

    Returns:
        ``(remaining, stopped)``: the incoming order's unmatched Wh, and True
        if self-trade prevention cancelled it (CANCEL_NEWEST / CANCEL_BOTH);
        the caller then cancels ``remaining``.

    Runtime complexity: O(t + k log n) for t orders touched and k levels emptied.
    """
    instrument = opp.instrument
    levels = opp.levels
    append = events.append
    remaining = quantity
    while remaining and opp.best <= limit_key:
        level = levels[opp.best]
        price = level.price
        maker = level.head
        while maker is not None:
            maker_qty = maker.quantity
            if maker.owner == owner:
                # Self-trade prevention, rare: kept out of the trading branch below.
                if stp is _CANCEL_NEWEST:
                    return remaining, True
                if stp is _CANCEL_OLDEST or stp is _CANCEL_BOTH:
                    nxt = maker.next
                    _remove_front(level, maker, index)
                    append(
                        _new(
                            Cancelled,
                            (instrument, maker.order_id, maker.owner, maker_qty, 0, _SELF_TRADE),
                        )
                    )
                    if stp is _CANCEL_BOTH:
                        if level.head is None:
                            opp.drop_level(level)
                        return remaining, True
                    maker = nxt
                    continue
                # DECREMENT: both lose the overlap, no trade.
                cut = maker_qty if maker_qty < remaining else remaining
                left = maker_qty - cut
                nxt = maker.next
                if left:
                    maker.quantity = left
                    maker.encoded = None  # its snapshot text changed
                    level.volume -= cut
                else:
                    _remove_front(level, maker, index)
                remaining -= cut
                maker_id = maker.order_id
                append(_new(Cancelled, (instrument, maker_id, maker.owner, cut, left, _SELF_TRADE)))
                append(_new(Cancelled, (instrument, order_id, owner, cut, remaining, _SELF_TRADE)))
                if not remaining:
                    break
                maker = nxt
                continue
            if maker_qty <= remaining:
                # The maker fills completely: unlink it from the front.
                remaining -= maker_qty
                nxt = maker.next
                level.head = nxt
                if nxt is None:
                    level.tail = None
                else:
                    nxt.prev = None
                level.volume -= maker_qty
                level.count -= 1
                maker.level = None
                del index[maker.order_id]
                append(
                    _new(
                        Trade,
                        (
                            instrument,
                            maker.order_id,
                            order_id,
                            maker.owner,
                            owner,
                            price,
                            maker_qty,
                            0,
                            remaining,
                            side,
                        ),
                    )
                )
                if not remaining:
                    break
                maker = nxt
            else:
                # The taker fills completely; the maker keeps its place.
                left = maker_qty - remaining
                maker.quantity = left
                maker.encoded = None  # its snapshot text changed
                level.volume -= remaining
                append(
                    _new(
                        Trade,
                        (
                            instrument,
                            maker.order_id,
                            order_id,
                            maker.owner,
                            owner,
                            price,
                            remaining,
                            left,
                            0,
                            side,
                        ),
                    )
                )
                return 0, False
        if level.head is None:
            opp.drop_level(level)
    return remaining, False


def _remove_front(level: _Level, maker: _Order, index: dict[int, _Order]) -> None:
    """Unlink a maker from ``level`` and forget its id; the caller drops an emptied level."""
    prev, nxt = maker.prev, maker.next
    if prev is None:
        level.head = nxt
    else:
        prev.next = nxt
    if nxt is None:
        level.tail = prev
    else:
        nxt.prev = prev
    level.volume -= maker.quantity
    level.count -= 1
    maker.level = None
    del index[maker.order_id]


def fok_fillable(opp: _Side, owner: str, quantity: int, limit_key: int, stp: STPMode) -> bool:
    """True if an incoming FOK order would trade its whole ``quantity``. Reads only.

    Mirrors ``take``: a resting order of the same owner stops the walk under
    CANCEL_NEWEST, CANCEL_BOTH and DECREMENT (the incoming order would be
    cancelled or reduced without trading, so it cannot fill completely), and
    is skipped under CANCEL_OLDEST (it would be cancelled, adding nothing).

    Runtime complexity: O(t + k) for t orders and k levels walked.
    """
    if opp.best > limit_key:
        return False
    need = quantity
    levels = opp.levels
    for key in opp.keys_from_best():
        if key > limit_key:
            break
        level = levels[key]
        order = level.head
        while order is not None:
            if order.owner == owner:
                if stp is not _CANCEL_OLDEST:
                    return False
            else:
                need -= order.quantity
                if need <= 0:
                    return True
            order = order.next
    return False
