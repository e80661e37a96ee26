"""The state digest from cached text: the snapshot's exact bytes without re-encoding them.

``MarketState.state_digest()`` is ``sha256(snapshot())``; an operator takes it
at every block, and encoding every resting order again (``snapshot()``,
~1 us per order) dominated it. This module assembles the very same bytes
(the format is in ``orderbook.snapshot``) from text cached at two levels:

- each order caches its ``ORDER`` array in ``_Order.encoded`` (str), built on
  the first digest that needs it. Whoever changes an order's fields in place
  sets it to None (partial fills and self-trade decrements in
  ``matching.take``, amends in ``Market.amend``). New orders leave the slot
  unset, read here as None (``getattr`` with a default, ~0.15 us the first
  time): even storing None on insertion measurably slowed the matching
  benchmark;
- each level caches the comma-joined text of its queue in ``_Level.encoded``
  as ``(head, tail, count, volume, text)``: the text is still right when the
  level has the same head, tail, count and volume. That check needs no hook
  in the hot paths, because (1) orders only join a level at its tail, as new
  objects, except when ``Market.amend`` re-queues an order, and amend clears
  the level's cache; (2) in-place changes only lower a quantity. So if the
  cached tail is still the tail, no order joined since; the queue is then the
  cached one minus removed orders, the same count means nothing was removed,
  and the same volume means no quantity was lowered. If the cached tail is
  still in the level but no longer last, the same argument on the part up to
  it shows that only orders were appended, whose text is added to the cache.

The market keeps the parts of its last digest (wrapper text, and per side
the list of its level texts); when the new parts are equal (usually the
same objects), the last digest is returned without hashing. Otherwise the
sides are joined (unchanged sides reuse their last joined text) and the
whole is hashed: the SHA-256 of the snapshot (~0.15 ms for 5,000 orders) is
the floor of a changed state. Every level is still looked at once per
digest (~0.1 us each), which is what a market of many books pays.

``check_encoded`` verifies every cache against a fresh encoding; the
market's ``_check()`` calls it, so the property tests catch a stale cache.
"""

from __future__ import annotations

import hashlib
from json.encoder import encode_basestring_ascii
from typing import TYPE_CHECKING

from orderbook.errors import InvariantError
from orderbook.snapshot import FORMAT, _dumps
from orderbook.types import STPMode

if TYPE_CHECKING:
    from orderbook.book import Book, _Level, _Order
    from orderbook.types import Instrument, MarketConfig

# STPMode is a StrEnum: json writes a member as its (plain ASCII) value.
_STP_JSON = {mode: encode_basestring_ascii(mode.value) for mode in STPMode}


def encode_order(order: _Order) -> str:
    r"""The snapshot's ``ORDER`` array of ``order``, exactly as ``json.dumps`` writes it.

    ``json.dumps`` (sort_keys, compact separators, ensure_ascii) writes an int
    with ``int.__repr__`` (the fields are exact ints: validation checks
    ``type(x) is int``), a string with ``encode_basestring_ascii``, None as
    ``null`` and booleans as ``true`` / ``false``.

    >>> from orderbook.book import _Order
    >>> encode_order(_Order(7, 'a"\u00e9', None, 20, 5, None, STPMode.DECREMENT, False))
    '[7,"a\\"\\u00e9",20,5,null,"decrement",false]'
    """
    expires_at = order.expires_at
    return (
        f"[{order.order_id},{encode_basestring_ascii(order.owner)},{order.price},"
        f"{order.quantity},{'null' if expires_at is None else expires_at},"
        f"{_STP_JSON[order.stp]},{'true' if order.post_only else 'false'}]"
    )


def level_text(level: _Level) -> bytes:
    """The comma-joined ``ORDER`` arrays of ``level``'s queue, from cache where valid.

    Runtime complexity: O(1) if unchanged, O(k) for k orders appended since
    the last call, O(n) for a level of n orders otherwise.
    """
    head, tail = level.head, level.tail
    if head is None or tail is None:  # never digested: an emptied level is dropped at once
        return b""
    memo = level.encoded
    if memo is not None:
        old_head, old_tail, old_count, old_volume, text = memo
        if old_tail is tail:
            if old_head is head and old_count == level.count and old_volume == level.volume:
                return text
        elif old_tail.level is level:
            # The cached tail is still queued here: maybe only appends since.
            frags, count, volume = _encode_queue(old_tail.next)
            if level.count - count == old_count and level.volume - volume == old_volume:
                text = b"".join((text, b",", ",".join(frags).encode("ascii")))
                level.encoded = (head, tail, level.count, level.volume, text)
                return text
    frags, _, _ = _encode_queue(head)
    text = ",".join(frags).encode("ascii")
    level.encoded = (head, tail, level.count, level.volume, text)
    return text


def _encode_queue(order: _Order | None) -> tuple[list[str], int, int]:
    """Cached text of ``order`` and the orders after it; their count and volume (Wh)."""
    frags: list[str] = []
    append = frags.append
    count = volume = 0
    while order is not None:
        frag = getattr(order, "encoded", None)  # unset on new orders
        if frag is None:
            frag = order.encoded = encode_order(order)
        append(frag)
        count += 1
        volume += order.quantity
        order = order.next
    return frags, count, volume


class DigestCache:
    """What a market remembers between digests: the last parts and their digest."""

    __slots__ = ("digest", "flat", "headers", "instruments", "parts")

    def __init__(self) -> None:
        self.parts: list[bytes | list[bytes]] = []
        self.flat: list[bytes] = []  # the parts, each side's list joined
        self.digest = b""
        # The market's instruments in snapshot order, kept by the market.
        self.instruments: tuple[Instrument, ...] = ()
        # (instrument, closed) -> text of a BOOK array up to its bids: '[product,slot,closed,['
        self.headers: dict[tuple[Instrument, bool], bytes] = {}

    def market_digest(self, config: MarketConfig, clock: int, books: list[Book]) -> bytes:
        """SHA-256 of the snapshot of a market with these books (sorted by (product, slot)).

        Equal to ``hashlib.sha256(encode_market(config, clock, rows)).digest()``
        for the same state. Runtime complexity: O(L) for L levels when nothing
        changed, plus the cost of ``level_text`` for changed levels and
        O(bytes) to hash when anything changed.
        """
        wrapper = _dumps(
            {
                "books": [],
                "clock": clock,
                "config": [
                    config.price_step,
                    config.min_price,
                    config.max_price,
                    config.max_quantity,
                    config.default_stp.value,
                ],
                "format": FORMAT,
            }
        )
        # Sorted keys put "books" first: its empty array is at a fixed place.
        # A part is bytes, or the list of one side's level texts (best first),
        # to be joined with commas: comparing with the last parts is then
        # mostly identity checks, and nothing is joined unless hashing.
        parts: list[bytes | list[bytes]] = [wrapper[:10]]
        append = parts.append
        headers = self.headers
        for book in books:
            key = (book.instrument, book.closed)
            header = headers.get(key)
            if header is None:
                header = headers[key] = _book_header(book)
            if len(parts) > 1:
                append(b",")
            append(header)
            levels = book.bids.levels
            append(list(map(level_text, map(levels.__getitem__, sorted(levels)))))
            append(b"],[")
            levels = book.asks.levels
            append(list(map(level_text, map(levels.__getitem__, sorted(levels)))))
            append(b"]]")
        append(wrapper[10:])
        old = self.parts
        if parts == old:
            return self.digest
        # Join each side's levels, reusing the last joined text of unchanged sides
        # (the parts line up when the number of books is the same).
        old_flat = self.flat
        if len(old) != len(parts):
            blank: list[bytes | list[bytes]] = [b""] * len(parts)
            old, old_flat = blank, [b""] * len(parts)
        flat = [
            part if isinstance(part, bytes) else was if part == prev else b",".join(part)
            for part, prev, was in zip(parts, old, old_flat, strict=True)
        ]
        self.parts, self.flat = parts, flat
        self.digest = hashlib.sha256(b"".join(flat)).digest()
        return self.digest


def _book_header(book: Book) -> bytes:
    """``[product,slot,closed,[`` of a BOOK array, as ``encode_book`` writes it."""
    inst = book.instrument
    text = _dumps([inst.product.value, inst.slot, book.closed, [], []])
    return text[: -len(b"],[]]")]


def check_encoded(book: Book) -> None:
    """Verify every cached order and level text of ``book`` against a fresh encoding. O(n).

    A level's cache is checked in the cases where ``level_text`` would use
    it: all of it when its key matches, its text as the queue's prefix up to
    the cached tail when only appends would be seen since. Orders are encoded
    only where a cache exists (``Market.restore`` checks a fresh market).

    Raises:
        InvariantError: if a cache that would be used is stale.
    """
    for side in (book.bids, book.asks):
        for level in side.levels.values():
            memo = level.encoded
            fresh: list[tuple[_Order, str]] = []
            order = level.head
            while order is not None:
                cached = getattr(order, "encoded", None)
                if memo is not None or cached is not None:
                    frag = encode_order(order)
                    if cached not in (None, frag):
                        msg = f"order {order.order_id}: cached text {cached!r}, want {frag!r}"
                        raise InvariantError(msg)
                    fresh.append((order, frag))
                order = order.next
            if memo is None:
                continue
            head, tail, count, volume, text = memo
            queue = [o for o, _ in fresh]
            if tail is level.tail:
                used = head is level.head and count == level.count and volume == level.volume
                prefix = fresh
            else:
                used = tail.level is level
                prefix = fresh[: queue.index(tail) + 1] if used else []
                after = fresh[len(prefix) :]
                used = (
                    used
                    and level.count - len(after) == count
                    and level.volume - sum(o.quantity for o, _ in after) == volume
                )
            want = ",".join(t for _, t in prefix).encode("ascii")
            if used and text != want:
                msg = f"level {level.price}: cached text {text[:80]!r}, want {want[:80]!r}"
                raise InvariantError(msg)
