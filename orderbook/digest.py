"""The state digest: a hash of the snapshot's content, kept up to date per price level.

``MarketState.state_digest()`` is taken at every block. Hashing the whole
snapshot each time costs O(resting orders) (on a large book, most of a
block's cut: ``bench_digest``). The digest
is instead a two-level hash of exactly the snapshot's content
(``orderbook.snapshot``): each price level's queue text ``ORDER,ORDER,...``
(the orders as the snapshot writes them) is hashed on its own, and the
digest is

    SHA-256(DIGEST_TAG || '{"books":[' || BOOK,... || rest of the snapshot's wrapper)
    BOOK = '[product,slot,closed,[' || SIDE(bids) || '],[' || SIDE(asks) || ']]'
    SIDE = number of levels (ASCII digits) || ':' || SHA-256(level text), best level first

``snapshot_digest(snapshot())`` computes it from the snapshot bytes alone and
is the reference. Equal digests mean equal snapshots, i.e. equal states: the
level count makes the layout of each side unambiguous, and equal level
hashes mean equal level texts (SHA-256 collision resistance).

Caches, so that a digest costs O(levels) plus the hashing of what changed:

- each order caches its ``ORDER`` array in ``_Order.encoded`` (str), built on
  the first digest that needs it. Whoever changes an order's fields in place
  sets it to None (partial fills and self-trade decrements in
  ``matching.take``, amends in ``Market.amend``). New orders leave the slot
  unset, read here as None (``getattr`` with a default, the first time):
  even storing None on insertion measurably slowed the matching
  benchmark;
- each level caches ``(head, tail, count, volume, hasher, digest)`` in
  ``_Level.encoded``: a SHA-256 object fed with the level's text so far and
  its digest. The cache is still right when the level has the same head,
  tail, count and volume. That check needs no hook in the hot paths, because
  (1) orders only join a level at its tail, as new objects, except when
  ``Market.amend`` re-queues an order, and amend clears the level's cache;
  (2) in-place changes only lower a quantity. So if the cached tail is still
  the tail, no order joined since; the queue is then the cached one minus
  removed orders, the same count means nothing was removed, and the same
  volume means no quantity was lowered. If the cached tail is still in the
  level but no longer last, the same argument on the part up to it shows
  that only orders were appended: a copy of the hasher is fed their text
  (O(appended), whatever the queue's length). Any other change re-hashes the
  level's text.

The market keeps the bytes it hashed last; when they are equal, the last
digest is returned without hashing.

``check_encoded`` verifies every cache against a fresh encoding; the
market's ``_check()`` calls it, so the property tests catch a stale cache.
"""

from __future__ import annotations

import hashlib
from json.encoder import encode_basestring_ascii
from typing import TYPE_CHECKING

from orderbook.errors import InvariantError
from orderbook.snapshot import _dumps, _market_value, decode_market
from orderbook.types import STPMode

if TYPE_CHECKING:
    from orderbook.book import Book, _Level, _Order
    from orderbook.types import Instrument, MarketConfig

# Domain tag of the market digest (the layout in the module docstring, version 1).
DIGEST_TAG = b"p2pex/orderbook-digest/v1\x00"
_EMPTY_LEVEL = hashlib.sha256(b"").digest()

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
    text = (
        f"[{order.order_id},{encode_basestring_ascii(order.owner)},{order.price},"
        f"{order.quantity},{'null' if expires_at is None else expires_at},"
        f"{_STP_JSON[order.stp]},{'true' if order.post_only else 'false'}"
    )
    seq = getattr(order, "seq", None)  # set only in a grid book
    if seq is None:
        return text + "]"
    prefs = order.prefs
    prefs_text = "null" if prefs is None else _dumps(prefs.value()).decode("ascii")
    return f"{text},{seq},{prefs_text}]"


def level_hash(level: _Level) -> bytes:
    """SHA-256 of the comma-joined ``ORDER`` arrays of ``level``'s queue, from cache where valid.

    Runtime complexity: O(1) if unchanged, O(k) for k orders appended since
    the last call, O(n) for a level of n orders otherwise.
    """
    head, tail = level.head, level.tail
    if head is None or tail is None:  # never digested: an emptied level is dropped at once
        return _EMPTY_LEVEL
    memo = level.encoded
    if memo is not None:
        old_head, old_tail, old_count, old_volume, hasher, digest = memo
        if old_tail is tail:
            if old_head is head and old_count == level.count and old_volume == level.volume:
                return digest
        elif old_tail.level is level:
            # The cached tail is still queued here: maybe only appends since.
            frags, count, volume = _encode_queue(old_tail.next)
            if level.count - count == old_count and level.volume - volume == old_volume:
                hasher = hasher.copy()
                hasher.update(("," + ",".join(frags)).encode("ascii"))
                digest = hasher.digest()
                level.encoded = (head, tail, level.count, level.volume, hasher, digest)
                return digest
    frags, _, _ = _encode_queue(head)
    hasher = hashlib.sha256(",".join(frags).encode("ascii"))
    digest = hasher.digest()
    level.encoded = (head, tail, level.count, level.volume, hasher, digest)
    return digest


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
    """What a market remembers between digests: the last bytes hashed and their digest."""

    __slots__ = ("digest", "hashed", "headers", "instruments")

    def __init__(self) -> None:
        self.hashed = b""
        self.digest = b""
        # The market's instruments in snapshot order, kept by the market.
        self.instruments: tuple[Instrument, ...] = ()
        # (instrument, closed) -> text of a BOOK array up to its bids: '[product,slot,closed,['
        self.headers: dict[tuple[Instrument, bool], bytes] = {}

    def market_digest(
        self, config: MarketConfig, clock: int, books: list[Book], grid: bytes | None = None
    ) -> bytes:
        """The digest (module docstring) of a market with these books, sorted by (product, slot).

        Equal to ``snapshot_digest(encode_market(config, clock, rows))`` for
        the same state; ``grid`` is the text of the snapshot's ``grid`` array
        (None: no book in a grid mode). Runtime complexity: O(L log L) for L
        levels, plus ``level_hash`` of the changed levels.
        """
        wrapper = _wrapper(config, clock, grid)
        parts: list[bytes] = [wrapper[:10]]
        append = parts.append
        headers = self.headers
        for book in books:
            key = (book.instrument, book.closed)
            header = headers.get(key)
            if header is None:
                header = headers[key] = _book_header(*key)
            if len(parts) > 1:
                append(b",")
            append(header)
            levels = book.bids.levels
            append(b"%d:" % len(levels))
            parts.extend(map(level_hash, map(levels.__getitem__, sorted(levels))))
            append(b"],[")
            levels = book.asks.levels
            append(b"%d:" % len(levels))
            parts.extend(map(level_hash, map(levels.__getitem__, sorted(levels))))
            append(b"]]")
        append(wrapper[10:])
        hashed = b"".join(parts)
        if hashed != self.hashed:
            self.hashed = hashed
            self.digest = hashlib.sha256(DIGEST_TAG + hashed).digest()
        return self.digest


def snapshot_digest(snapshot: bytes) -> bytes:
    """The digest of the state whose ``snapshot()`` bytes these are (the reference).

    Computed from the snapshot alone, without any cache: each level's text
    is the snapshot's own JSON of its orders.

    Raises:
        SnapshotError: if ``snapshot`` is not a well-formed snapshot.
    """
    config, clock, books, grid = decode_market(snapshot)
    wrapper = _wrapper(config, clock, None if grid is None else _dumps(grid))
    parts = [wrapper[:10]]
    for i, rows in enumerate(books):
        if i:
            parts.append(b",")
        parts.append(_book_header(rows.instrument, rows.closed))
        for side, end in ((rows.bids, b"],["), (rows.asks, b"]]")):
            levels: list[list[bytes]] = []
            last_price: int | None = None
            for row in side:  # best first, so a level's orders are consecutive
                if row.price != last_price:
                    levels.append([])
                    last_price = row.price
                levels[-1].append(_dumps(row))
            parts.append(b"%d:" % len(levels))
            parts.extend(hashlib.sha256(b",".join(level)).digest() for level in levels)
            parts.append(end)
    parts.append(wrapper[10:])
    return hashlib.sha256(DIGEST_TAG + b"".join(parts)).digest()


def _wrapper(config: MarketConfig, clock: int, grid: bytes | None = None) -> bytes:
    """The snapshot's top-level object with an empty books array: ``{"books":[`` + the rest.

    ``grid`` is the JSON text of the ``grid`` array, spliced in as the last key.
    """
    text = _dumps(_market_value(config, clock, []))
    if grid is None:
        return text
    return text[:-1] + b',"grid":' + grid + b"}"


def _book_header(instrument: Instrument, closed: bool) -> bytes:
    """``[product,slot,closed,[`` of a BOOK array, as ``encode_book`` writes it."""
    text = _dumps([instrument.product.value, instrument.slot, closed, [], []])
    return text[: -len(b"],[]]")]


def check_encoded(book: Book) -> None:
    """Verify every cached order text and level hash of ``book`` against a fresh encoding. O(n).

    A level's cache is checked in the cases where ``level_hash`` would use
    it: all of it when its key matches, its hash as that of the queue's
    prefix up to the cached tail when only appends would be seen since. Orders are encoded
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
            head, tail, count, volume, hasher, digest = memo
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
            want = hashlib.sha256(",".join(t for _, t in prefix).encode("ascii")).digest()
            if used and (digest != want or hasher.digest() != digest):
                msg = f"level {level.price}: cached hash {digest.hex()}, want {want.hex()}"
                raise InvariantError(msg)
