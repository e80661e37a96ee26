"""Unit tests: the cached state digest equals the digest computed from the uncached snapshot.

``Market.snapshot()`` encodes every order afresh (``encode_market`` over
``_book_rows``) and ``snapshot_digest`` hashes it without any cache: the
reference; ``state_digest()`` reuses order texts and level hashes cached by
earlier digests (``orderbook.digest``). Each test takes a digest first so
that the caches are warm, changes the state, and compares again.
"""

from __future__ import annotations

import hashlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orderbook import (
    Instrument,
    InvariantError,
    Market,
    MarketConfig,
    Product,
    STPMode,
    TimeInForce,
)
from orderbook.book import _Order
from orderbook.digest import DIGEST_TAG, encode_order, snapshot_digest
from tests.orderbook.conftest import ASK, BID, CONFIG, E, H

ODD_OWNERS = ['q"uote', "back\\slash", "caf\u00e9 \u2603 \U0001f600", "ctl\x00\x07\n\x1f", "\ud800"]


def reference(market: Market) -> bytes:
    return snapshot_digest(market.snapshot())


def same(market: Market) -> bytes:
    """The digest, checked against the reference (and the caches against a fresh encoding)."""
    market._check()
    digest = market.state_digest()
    assert digest == reference(market)
    market._check()
    return digest


def queue(market: Market, instrument: Instrument = E) -> list[int]:
    return [o.order_id for o in market.orders(instrument)]


@pytest.fixture
def level(market):
    """Four asks of 10 Wh at 50 (ids 1-4, owners a-d) and one at 55; digest taken."""
    for i, owner in enumerate("abcd", start=1):
        market.place(E, i, owner, ASK, 10, 50)
    market.place(E, 5, "e", ASK, 10, 55)
    same(market)
    return market


def test_partial_fill_of_a_cached_maker_invalidates_its_text(level):
    before = level.state_digest()
    maker = level._index[1]
    assert maker.encoded == '[1,"a",50,10,null,"cancel_newest",false]'
    level.place(E, 9, "z", BID, 3, 50)
    assert maker.quantity == 7
    after = same(level)
    assert after != before
    assert maker.encoded == '[1,"a",50,7,null,"cancel_newest",false]'


def test_unchanged_state_gives_the_same_digest_without_rehashing(level):
    first = same(level)
    assert level.state_digest() is first  # the cached bytes: no new hash was computed
    level.advance_clock(level.clock + 1)  # only the clock changes
    same(level)


@pytest.mark.parametrize(
    ("name", "steps"),
    [
        ("cancel middle", [("cancel", 2)]),
        ("cancel head", [("cancel", 1)]),
        ("cancel tail", [("cancel", 4)]),
        ("amend down keeps place", [("amend", 2, None, 4)]),
        ("amend up loses place", [("amend", 2, None, 11)]),
        ("amend price away", [("amend", 2, 55, None)]),
        ("full fill of the head", [("place", 9, "z", BID, 10, 50)]),
        ("fills then appends", [("place", 9, "z", BID, 15, 50), ("place", 10, "y", ASK, 15, 50)]),
        ("appends only", [("place", 9, "y", ASK, 1, 50), ("place", 10, "y", ASK, 2, 50)]),
        ("cancel and append same size", [("cancel", 2), ("place", 9, "y", ASK, 10, 50)]),
        ("price away and back", [("cancel", 2), ("amend", 3, 55, None), ("amend", 3, 50, None)]),
        ("stp decrement cuts the maker", [("place", 9, "a", BID, 4, 50, STPMode.DECREMENT)]),
        ("stp decrement removes it", [("place", 9, "a", BID, 10, 50, STPMode.DECREMENT)]),
        ("stp cancel oldest", [("place", 9, "b", BID, 25, 50, STPMode.CANCEL_OLDEST)]),
        ("sweep both levels", [("place", 9, "z", BID, 45, 55)]),
        ("close the book", [("close",)]),
    ],
)
def test_digest_after_changes_between_digests(level, name, steps):
    before = level.state_digest()
    for step in steps:
        kind, *args = step
        if kind == "cancel":
            events = level.cancel(*args)
        elif kind == "amend":
            events = level.amend(args[0], None, *args[1:])
        elif kind == "place":
            order_id, owner, side, quantity, price, *stp = args
            events = level.place(E, order_id, owner, side, quantity, price, stp=(stp or [None])[0])
        else:
            events = level.close_instrument(E)
        assert type(events[0]).__name__ != "Rejected", (name, step, events)
    assert same(level) != before


@pytest.mark.parametrize(
    "amends",
    [
        [(2, None, 11), (4, None, 11), (2, None, 10), (4, None, 10)],
        [(2, 55, None), (4, 55, None), (2, 50, None), (4, 50, None)],
    ],
)
def test_reordered_queue_with_the_cached_head_tail_count_and_volume(level, amends):
    # Only amend's reset of the level's cache can tell this queue from the cached one.
    lvl = level.book(E).asks.levels[50]
    head, tail, count, volume, _, _ = lvl.encoded
    before = level.state_digest()
    for order_id, price, quantity in amends:
        level.amend(order_id, None, price, quantity)
    assert queue(level)[:4] == [1, 3, 2, 4]
    assert level.book(E).asks.levels[50] is lvl
    assert (lvl.head, lvl.tail, lvl.count, lvl.volume) == (head, tail, count, volume)
    assert same(level) != before


def test_state_back_to_the_cached_one_gives_the_old_digest(level):
    before = level.state_digest()
    level.place(E, 9, "y", ASK, 1, 50)
    level.place(E, 10, "y", ASK, 1, 50)
    level.cancel(10)
    level.cancel(9)
    assert same(level) == before
    level.place(E, 11, "y", ASK, 1, 50)
    assert same(level) != before
    level.cancel(11)
    assert same(level) == before


def test_gtd_expiry_and_clock(market):
    market.place(E, 1, "a", BID, 10, 50, TimeInForce.GTD, expires_at=5)
    market.place(E, 2, "b", BID, 10, 50)
    market.place(E, 3, "c", BID, 10, 50, TimeInForce.GTD, expires_at=7)
    first = same(market)
    market.advance_clock(5)
    assert queue(market) == [2, 3]
    assert same(market) != first
    market.advance_clock(7)
    assert queue(market) == [2]
    same(market)


def test_restore_then_more_commands(level):
    restored = Market.restore(level.snapshot())
    assert same(restored) == level.state_digest()
    for market in (restored, level):
        market.place(E, 9, "z", BID, 3, 50)
        market.amend(3, None, None, 4)
        market.place(E, 10, "y", ASK, 2, 50)
    assert same(restored) == same(level)


def test_restore_book_then_more_commands(level):
    other = Market(CONFIG)
    other.open_instrument(E)
    other.place(E, 20, "x", BID, 5, 40)
    same(other)
    other.restore_book(level.book_snapshot(E))
    assert queue(other) == queue(level)
    same(other)
    other.place(E, 21, "x", BID, 5, 50)
    same(other)


def test_empty_market_and_empty_books():
    market = Market(CONFIG, now=-3)
    same(market)
    market.open_instrument(H)
    same(market)
    market.open_instrument(E)
    market.close_instrument(H)
    same(market)


def test_many_books_sorted_closed_and_empty(market):
    slots = [Instrument(p, s) for s in (3, 0, 2) for p in Product]
    for inst in slots:
        market.open_instrument(inst)
    same(market)
    for n, inst in enumerate(slots):
        market.place(inst, 100 + n, "a", BID, 5, 50)
        market.place(inst, 200 + n, "b", ASK, 5, 60)
    same(market)
    market.close_instrument(slots[1])
    market.place(H, 300, "c", ASK, 1, 60)
    same(market)


@pytest.mark.parametrize("owner", ODD_OWNERS)
def test_owners_that_need_json_escaping(market, owner):
    market.place(E, 1, owner, ASK, 10, 50)
    market.place(E, 2, "plain", ASK, 10, 50)
    same(market)
    market.place(E, 3, "z", BID, 4, 50)
    assert same(Market.restore(market.snapshot())) == same(market)


@given(
    order_id=st.integers(0, 2**70),
    owner=st.text(st.characters(codec=None, categories=None), min_size=1),
    price=st.integers(1, 2**62),
    quantity=st.integers(1, 2**70),
    expires_at=st.one_of(st.none(), st.integers(-(2**70), 2**70)),
    stp=st.sampled_from(STPMode),
    post_only=st.booleans(),
)
def test_encode_order_is_the_json_of_the_row(
    order_id, owner, price, quantity, expires_at, stp, post_only
):
    order = _Order(order_id, owner, None, price, quantity, expires_at, stp, post_only)  # type: ignore[arg-type]
    row = [order_id, owner, price, quantity, expires_at, stp, post_only]
    want = json.dumps(row, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    assert encode_order(order) == want


def test_check_catches_a_stale_order_text(level):
    level._index[2].encoded = '[2,"b",50,9,null,"cancel_newest",false]'
    with pytest.raises(InvariantError, match="order 2: cached text"):
        level._check()


def test_check_catches_a_stale_level_hash(level):
    lvl = level.book(E).asks.levels[50]
    assert lvl.encoded is not None
    head, tail, count, volume, _, _ = lvl.encoded
    stale = hashlib.sha256(b'[1,"a",50,10,null,"cancel_newest",false]')  # one order short
    lvl.encoded = (head, tail, count, volume, stale, stale.digest())
    with pytest.raises(InvariantError, match="level 50: cached hash"):
        level._check()
    # The same stale hash behind appended orders is caught too (Market.place:
    # the fixture's place would run the check at once).
    Market.place(level, E, 9, "y", ASK, 1, 50)
    with pytest.raises(InvariantError, match="level 50: cached hash"):
        level._check()


def test_digest_layout_is_the_documented_one(level):
    # Written out by hand from the layout in orderbook.digest's docstring.
    level.place(E, 9, "z", BID, 2, 40)
    orders_50 = ",".join(
        f'[{i},"{o}",50,10,null,"cancel_newest",false]' for i, o in enumerate("abcd", 1)
    )
    bids = b"1:" + hashlib.sha256(b'[9,"z",40,2,null,"cancel_newest",false]').digest()
    asks = (
        b"2:"
        + hashlib.sha256(orders_50.encode()).digest()
        + hashlib.sha256(b'[5,"e",55,10,null,"cancel_newest",false]').digest()
    )
    cfg = level.config
    wrapper_rest = (
        f'],"clock":{level.clock},"config":[{cfg.price_step},{cfg.min_price},{cfg.max_price},'
        f'{cfg.max_quantity},"cancel_newest"],"format":"p2pex-orderbook/1"}}'
    ).encode()
    others = b""
    for inst in level.instruments():
        if inst != E:
            book = json.dumps([inst.product.value, inst.slot, level.book(inst).closed])[1:-1]
            others += b"," + f"[{book.replace(' ', '')},[".encode() + b"0:],[0:]]"
    text = b'{"books":[["electricity",1,false,[' + bids + b"],[" + asks + b"]]" + others
    assert same(level) == hashlib.sha256(DIGEST_TAG + text + wrapper_rest).digest()


def test_large_book_matches_reference():
    # Many levels and orders, several digests with mixed changes in between.
    market = Market(MarketConfig(price_step=1, min_price=1, max_price=10**6))
    market.open_instrument(E)
    order_id = 0
    for round_ in range(4):
        for i in range(300):
            order_id += 1
            side = BID if i % 2 else ASK
            price = 1000 - 1 - i % 20 if side is BID else 1000 + i % 20
            market.place(E, order_id, f"o{i % 13}", side, 1 + i % 50, price)
        market.place(E, 10**6 + round_, "taker", BID, 500, 1002)
        for cancel_id in range(order_id - 290, order_id, 7):
            market.cancel(cancel_id)
        same(market)
