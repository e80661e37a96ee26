"""Canonical snapshot bytes of a market or a book.

The snapshot is compact JSON (sorted keys, no spaces, ASCII only) holding
ints, strings, booleans and nulls, never floats, so the same state gives the
same bytes on every machine and Python version::

    {"books":[BOOK,...],"clock":INT,"config":[price_step,min_price,max_price,
     max_quantity,default_stp],"format":"p2pex-orderbook/1"[,"grid":[GRID,...]]}
    BOOK  = [product, slot, closed, [ORDER,...bids], [ORDER,...asks]]
    ORDER = [order_id, owner, price, quantity, expires_at|null, stp, post_only]
            + [seq, PREFERENCES|null] in a book run in a grid mode
    GRID  = [product, slot, mode, next seq, [flow per line], GRIDDATA, next trade
             number, [[trade_no, seller bus, buyer bus, Wh], ...pending trades]]

The ``grid`` key is there only when some book runs in mode 1, 3 or 4
(``orderbook.grid``): a market of plain books has the same bytes as before
modes existed. ``GRIDDATA`` is ``Grid.value()``, ``PREFERENCES``
``Preferences.value()``; GRID entries are sorted like the books.

Books are sorted by (product, slot); each side lists its orders best price
first and, within a price, in queue (time priority) order. Internal sequence
numbers are not state and are not stored. Decoding accepts only bytes that
re-encode to themselves.
"""

from __future__ import annotations

import json
from typing import NamedTuple, NoReturn

from orderbook.errors import ConfigError, SnapshotError
from orderbook.types import Instrument, MarketConfig, Product, STPMode

FORMAT = "p2pex-orderbook/1"

# json.loads gives nested lists, dicts and scalars; decoding narrows with
# isinstance checks, so the parsed value is typed as ``object``.
_Json = object


class OrderRow(NamedTuple):
    """A resting order in a snapshot."""

    order_id: int
    owner: str
    price: int  # ticks per kWh
    quantity: int  # Wh
    expires_at: int | None
    stp: STPMode
    post_only: bool


class GridOrderRow(NamedTuple):
    """A resting order of a book run in a grid mode: an ``OrderRow`` plus seq and preferences."""

    order_id: int
    owner: str
    price: int  # ticks per kWh
    quantity: int  # Wh
    expires_at: int | None
    stp: STPMode
    post_only: bool
    seq: int  # arrival number in the book (time priority across prices)
    prefs: _Json  # Preferences.value() or None


Row = OrderRow | GridOrderRow


class BookRows(NamedTuple):
    """One book in a snapshot."""

    instrument: Instrument
    closed: bool
    bids: list[Row]  # best first, queue order
    asks: list[Row]


def _dumps(value: _Json) -> bytes:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    ).encode("ascii")


def _book_value(book: BookRows) -> list[_Json]:
    # An OrderRow's fields are in ORDER's order, json writes a tuple as an
    # array and a StrEnum (STPMode) as its string: the rows go in as they are
    # (reading ``.value`` of 10,000 enums took longer than the JSON encoding).
    inst = book.instrument
    return [inst.product.value, inst.slot, book.closed, book.bids, book.asks]


def encode_book(book: BookRows) -> bytes:
    """Canonical bytes of one book."""
    return _dumps(_book_value(book))


def encode_market(
    config: MarketConfig, clock: int, books: list[BookRows], grid: list[_Json] | None = None
) -> bytes:
    """Canonical bytes of a market; ``books`` (and ``grid``) must be sorted by (product, slot)."""
    return _dumps(_market_value(config, clock, [_book_value(b) for b in books], grid))


def _market_value(
    config: MarketConfig, clock: int, books: list[_Json], grid: list[_Json] | None = None
) -> dict[str, _Json]:
    """The snapshot's top-level object around already converted ``books`` (and ``grid``)."""
    value: dict[str, _Json] = {
        "books": books,
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
    if grid is not None:
        value["grid"] = grid
    return value


def decode_market(
    data: bytes,
) -> tuple[MarketConfig, int, list[BookRows], list[_Json] | None]:
    """Parse snapshot bytes into (config, clock, books, grid), checking shapes and types.

    ``grid`` is the raw JSON list of the ``grid`` key, or None without one.

    Only the syntax is checked here; ``Market.restore`` checks the state
    (prices on the grid, no crossed book, unique ids, priority order).

    Raises:
        SnapshotError: if ``data`` is not a well-formed snapshot.
    """
    try:
        value = json.loads(data.decode("ascii"))
    except (AttributeError, UnicodeDecodeError, ValueError) as exc:
        msg = f"snapshot is not ASCII JSON: {exc}"
        raise SnapshotError(msg) from exc
    keys = ["books", "clock", "config", "format"]
    if not isinstance(value, dict) or sorted(value) not in (keys, [*keys, "grid"]):
        _bad("top level must be an object with books, clock, config, format (and grid)")
    if value["format"] != FORMAT:
        _bad(f"format {value['format']!r}, want {FORMAT!r}")
    clock = _int(value["clock"])
    cfg = _list(value["config"], 5)
    try:
        config = MarketConfig(_int(cfg[0]), _int(cfg[1]), _int(cfg[2]), _int(cfg[3]), _stp(cfg[4]))
    except ConfigError as exc:
        msg = f"snapshot config: {exc}"
        raise SnapshotError(msg) from exc
    books = [_decode_book(b) for b in _list(value["books"], None)]
    grid = _list(value["grid"], None) if "grid" in value else None
    return config, clock, books, grid


def decode_book(data: bytes) -> BookRows:
    """Parse ``encode_book`` bytes, checking shapes and types only.

    Raises:
        SnapshotError: if ``data`` is not a well-formed book snapshot.
    """
    try:
        value = json.loads(data.decode("ascii"))
    except (AttributeError, UnicodeDecodeError, ValueError) as exc:
        msg = f"book snapshot is not ASCII JSON: {exc}"
        raise SnapshotError(msg) from exc
    return _decode_book(value)


def _decode_book(value: _Json) -> BookRows:
    fields = _list(value, 5)
    product = fields[0]
    if not isinstance(product, str) or product not in {p.value for p in Product}:
        _bad(f"unknown product {product!r}")
    instrument = Instrument(Product(product), _int(fields[1]))
    return BookRows(
        instrument,
        _bool(fields[2]),
        [_decode_order(o) for o in _list(fields[3], None)],
        [_decode_order(o) for o in _list(fields[4], None)],
    )


def _decode_order(value: _Json) -> Row:
    f = _list(value, None)
    if len(f) not in (7, 9):
        _bad(f"an order is a list of 7 or 9 items, got {value!r:.80}")
    owner = f[1]
    if not isinstance(owner, str):
        _bad(f"owner {owner!r} is not a string")
    expires_at = None if f[4] is None else _int(f[4])
    row = (_int(f[0]), owner, _int(f[2]), _int(f[3]), expires_at, _stp(f[5]), _bool(f[6]))
    if len(f) == 7:
        return OrderRow(*row)
    return GridOrderRow(*row, _int(f[7]), f[8])


def _list(value: _Json, length: int | None) -> list[_Json]:
    if not isinstance(value, list) or (length is not None and len(value) != length):
        _bad(f"expected a list of {length or 'any'} items, got {value!r:.80}")
    return value


def _int(value: _Json) -> int:
    if type(value) is not int:
        _bad(f"expected an int, got {value!r:.80}")
    return value


def _bool(value: _Json) -> bool:
    if type(value) is not bool:
        _bad(f"expected a bool, got {value!r:.80}")
    return value


def _stp(value: _Json) -> STPMode:
    if not isinstance(value, str) or value not in {m.value for m in STPMode}:
        _bad(f"unknown STP mode {value!r:.80}")
    return STPMode(value)


def _bad(message: str) -> NoReturn:
    msg = f"malformed snapshot: {message}"
    raise SnapshotError(msg)
