"""Property tests: the real market against the naive reference, event by event.

A hypothesis state machine sends random mixed streams (limit, market, IOC,
FOK, post-only, GTD and clock advances, cancel, amend, every STP mode, gate
closure, malformed fields, snapshot/restore) to ``orderbook.Market`` and to
``tests.orderbook.reference.ReferenceMarket`` and requires identical events,
identical L3 books, a passing ``_check()`` after every step (which also
checks the digest's cached text), a state digest equal to the SHA-256 of the
uncached ``snapshot()``, and equal exactly when the reference states are
equal. At the end
the whole command log is replayed on a fresh market, and once more with a
snapshot/restore in the middle: same events, same digest.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from orderbook import (
    AdvanceClock,
    AmendOrder,
    CancelOrder,
    CloseInstrument,
    Instrument,
    Market,
    MarketConfig,
    OpenInstrument,
    PlaceOrder,
    Product,
    Side,
    STPMode,
    TimeInForce,
)
from orderbook.digest import snapshot_digest
from tests.orderbook.reference import ReferenceMarket

CONFIG = MarketConfig(
    price_step=2, min_price=2, max_price=40, max_quantity=500, default_stp=STPMode.CANCEL_NEWEST
)
E0 = Instrument(Product.ELECTRICITY, 0)
H0 = Instrument(Product.HEAT, 0)
E1 = Instrument(Product.ELECTRICITY, 1)
H1 = Instrument(Product.HEAT, 1)
ALL = (E0, H0, E1, H1)

# The last owner needs JSON escaping (quote, backslash, non-ASCII, control char).
owners = st.sampled_from(["alice", "bob", "carol", 'd"\\\u00e9\x07'])
order_ids = st.integers(0, 40)
prices = st.sampled_from(range(14, 28, 2))
good_prices = prices
quantities = st.integers(1, 30)
# One malformed field per command: (field, bad value) pairs for place_malformed.
MALFORMED = [
    ("order_id", -1),
    ("order_id", "7"),
    ("order_id", True),
    ("order_id", 3.0),
    ("owner", ""),
    ("owner", 5),
    ("side", "bid"),
    ("side", None),
    ("quantity", 0),
    ("quantity", -3),
    ("quantity", 501),
    ("quantity", 2.0),
    ("quantity", True),
    ("price", 0),
    ("price", -2),
    ("price", 15),
    ("price", 1),
    ("price", 42),
    ("price", "20"),
    ("price", 20.0),
    ("tif", "GTC"),
    ("tif", None),
    ("expires_at", 5),
    ("post_only", 1),
    ("post_only", None),
    ("stp", "decrement"),
    ("stp", 3),
    ("protection_price", 20),
    ("instrument", Instrument(Product.HEAT, 99)),
]
sides = st.sampled_from([Side.BID, Side.ASK])
stps = st.sampled_from([None, *STPMode])
instruments = st.sampled_from([E0, E0, E0, E0, E0, H0, E1, H1])


def run(commands: list[object], *, split: int | None = None) -> tuple[list[object], bytes]:
    """Run ``commands`` on a fresh market (restoring from a snapshot before ``split``)."""
    market = Market(CONFIG)
    events: list[object] = []
    for i, cmd in enumerate(commands):
        if i == split:
            market = Market.restore(market.snapshot())
        events.append(market.execute(cmd))  # type: ignore[arg-type]
    return events, market.state_digest()


class MarketMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.market = Market(CONFIG)
        self.ref = ReferenceMarket(CONFIG)
        self.log: list[object] = []
        self.events: list[object] = []
        self.digest_to_state: dict[bytes, object] = {}
        self.state_to_digest: dict[object, bytes] = {}

    def do(self, cmd: object) -> None:
        got = self.market.execute(cmd)  # type: ignore[arg-type]
        want = self.ref.execute(cmd)
        assert got == want, f"{cmd}\n got: {got}\nwant: {want}"
        self.log.append(cmd)
        self.events.append(got)

    @initialize()
    def open_books(self) -> None:
        self.do(OpenInstrument(E0))
        self.do(OpenInstrument(H0))

    @rule(
        instrument=instruments,
        order_id=order_ids,
        owner=owners,
        side=sides,
        quantity=quantities,
        price=prices,
        stp=stps,
    )
    def place_gtc(self, instrument, order_id, owner, side, quantity, price, stp):
        self.do(PlaceOrder(instrument, order_id, owner, side, quantity, price, stp=stp))

    @rule(
        orders=st.lists(
            st.tuples(
                order_ids,
                owners,
                sides,
                quantities,
                prices,
                stps,
                st.one_of(st.none(), st.none(), st.integers(0, 6)),
            ),
            min_size=1,
            max_size=8,
        )
    )
    def place_batch(self, orders):
        # Several GTC / GTD orders on the busiest book, so that books get deep quickly.
        for order_id, owner, side, quantity, price, stp, expiry in orders:
            tif = TimeInForce.GTC if expiry is None else TimeInForce.GTD
            expires_at = None if expiry is None else self.ref.clock + expiry
            order = PlaceOrder(E0, order_id, owner, side, quantity, price, tif, expires_at, stp=stp)
            self.do(order)

    @rule(
        instrument=instruments,
        order_id=order_ids,
        owner=owners,
        side=sides,
        quantity=quantities,
        price=prices,
        tif=st.sampled_from(list(TimeInForce)),
        expiry=st.one_of(st.none(), st.integers(-1, 8)),
        post_only=st.booleans(),
        stp=stps,
    )
    def place_any(
        self, instrument, order_id, owner, side, quantity, price, tif, expiry, post_only, stp
    ):
        expires_at = None if expiry is None else self.ref.clock + expiry
        self.do(
            PlaceOrder(
                instrument,
                order_id,
                owner,
                side,
                quantity,
                price,
                tif,
                expires_at,
                post_only,
                stp,
            )
        )

    @rule(
        order_id=order_ids,
        owner=owners,
        side=sides,
        quantity=st.integers(1, 80),
        depth=st.integers(0, 3),
        tif=st.sampled_from([TimeInForce.IOC, TimeInForce.FOK, TimeInForce.GTC]),
        stp=stps,
    )
    def place_taker(self, order_id, owner, side, quantity, depth, tif, stp):
        # A limit order priced ``depth`` ticks through the best opposite price:
        # exercises IOC / FOK / STP against real liquidity.
        best = self.market.best_ask(E0) if side is Side.BID else self.market.best_bid(E0)
        if best is None:
            return
        price = best + 2 * depth if side is Side.BID else max(best - 2 * depth, 2)
        self.do(PlaceOrder(E0, order_id, owner, side, quantity, price, tif, stp=stp))

    @rule(
        instrument=instruments,
        order_id=order_ids,
        owner=owners,
        side=sides,
        quantity=quantities,
        tif=st.sampled_from([TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK, TimeInForce.GTD]),
        protection=st.one_of(st.none(), prices),
        stp=stps,
    )
    def place_market(self, instrument, order_id, owner, side, quantity, tif, protection, stp):
        self.do(
            PlaceOrder(
                instrument,
                order_id,
                owner,
                side,
                quantity,
                None,
                tif,
                stp=stp,
                protection_price=protection,
            )
        )

    @rule(
        instrument=instruments,
        order_id=order_ids,
        owner=owners,
        side=sides,
        quantity=quantities,
        price=prices,
        bad=st.sampled_from(MALFORMED),
    )
    def place_malformed(self, instrument, order_id, owner, side, quantity, price, bad):
        fields = {
            "instrument": instrument,
            "order_id": order_id,
            "owner": owner,
            "side": side,
            "quantity": quantity,
            "price": price,
        }
        field, value = bad
        fields[field] = value
        before = self.market.state_digest()
        self.do(PlaceOrder(**fields))  # type: ignore[arg-type]
        if len(self.events[-1]) == 1 and type(self.events[-1][0]).__name__ == "Rejected":
            assert self.market.state_digest() == before

    @rule(data=st.data(), owner=st.one_of(st.none(), owners))
    def cancel(self, data, owner):
        live = [o.order_id for o in self.ref.orders]
        order_id = data.draw(st.sampled_from(live) if live else order_ids)
        self.do(CancelOrder(order_id, owner))

    @rule(order_id=order_ids)
    def cancel_any(self, order_id):
        self.do(CancelOrder(order_id))

    @rule(
        data=st.data(),
        owner=st.one_of(st.none(), owners),
        price=st.one_of(st.none(), prices),
        quantity=st.one_of(st.none(), quantities),
    )
    def amend(self, data, owner, price, quantity):
        live = [o.order_id for o in self.ref.orders]
        order_id = data.draw(st.sampled_from(live) if live else order_ids)
        self.do(AmendOrder(order_id, owner, price, quantity))

    @rule(data=st.data())
    def amend_reduce(self, data):
        # The keep-priority path: a quantity reduction by the owner.
        if not self.ref.orders:
            return
        order = data.draw(st.sampled_from(self.ref.orders))
        cut = data.draw(st.integers(0, order.quantity))
        self.do(AmendOrder(order.order_id, order.owner, None, order.quantity - cut or 1))

    @rule(
        steps=st.lists(
            st.tuples(
                st.sampled_from(["place", "place", "cancel", "amend", "take"]),
                order_ids,
                owners,
                sides,
                quantities,
                prices,
                stps,
            ),
            min_size=2,
            max_size=12,
        )
    )
    def burst(self, steps):
        # Several commands on the busiest book between two digests, so that the
        # digest's cached text meets many changes at once.
        for kind, order_id, owner, side, quantity, price, stp in steps:
            live = [o for o in self.ref.orders if o.instrument == E0]
            if kind == "place" or not live:
                self.do(PlaceOrder(E0, order_id, owner, side, quantity, price, stp=stp))
            elif kind == "take":
                self.do(
                    PlaceOrder(E0, order_id, owner, side, quantity, None, TimeInForce.IOC, stp=stp)
                )
            else:
                target = live[order_id % len(live)]
                if kind == "cancel":
                    self.do(CancelOrder(target.order_id))
                else:
                    self.do(AmendOrder(target.order_id, None, price, quantity))

    @rule(data=st.data(), side=sides, owner=owners)
    def requeue_then_tail(self, data, side, owner):
        # On a level of 3+ orders at the far end of the book, after a digest:
        # amend a middle order up and back down (same size, lost place), then
        # the last order likewise. The level has the same head, tail, count and
        # volume as at the digest, in another order.
        price = 14 if side is Side.BID else 26
        free = [i for i in range(41) if self.ref.find(i) is None]
        for order_id in free[:3]:
            self.do(PlaceOrder(E0, order_id, owner, side, 5, price))
        queue = [
            o
            for o in sorted(self.ref.orders, key=lambda o: o.seq)
            if (o.instrument, o.side, o.price) == (E0, side, price)
        ]
        if len(queue) < 3:
            return
        assert self.market.state_digest() == snapshot_digest(self.market.snapshot())
        middle = data.draw(st.sampled_from(queue[1:-1]))
        for order_id, quantity in [(o.order_id, o.quantity) for o in (middle, queue[-1])]:
            self.do(AmendOrder(order_id, None, None, quantity + 1))
            self.do(AmendOrder(order_id, None, None, quantity))

    @rule(step=st.integers(-1, 4))
    def advance_clock(self, step):
        self.do(AdvanceClock(self.ref.clock + step))

    @rule(instrument=st.sampled_from([H0, E1, H1]), close=st.booleans())
    def open_or_close(self, instrument, close):
        self.do(CloseInstrument(instrument) if close else OpenInstrument(instrument))

    @rule()
    def snapshot_restore(self):
        before = self.market.state_digest()
        self.market = Market.restore(self.market.snapshot())
        assert self.market.state_digest() == before

    @rule()
    def restore_each_book(self):
        # Book-level restore, into a copy of the market: same state afterwards.
        before = self.market.state_digest()
        copy = Market.restore(self.market.snapshot())
        for instrument in copy.instruments():
            copy.restore_book(self.market.book_snapshot(instrument))
        assert copy.state_digest() == before
        self.market = copy

    @invariant()
    def consistent(self):
        market, ref = self.market, self.ref
        market._check()
        assert len(market) == len(ref.orders)
        for instrument in ALL:
            if instrument in ref.instruments:
                assert market.orders(instrument) == ref.views(instrument)
                mine = [o for o in ref.orders if o.instrument == instrument]
                bids = [o.price for o in mine if o.side is Side.BID]
                asks = [o.price for o in mine if o.side is Side.ASK]
                assert market.best_bid(instrument) == (max(bids) if bids else None)
                assert market.best_ask(instrument) == (min(asks) if asks else None)
                assert market.is_open(instrument) == (not ref.instruments[instrument])
        # The digest is a function of the state, and an injective one.
        state = (
            ref.clock,
            tuple(sorted((i.product.value, i.slot, c) for i, c in ref.instruments.items())),
            tuple(ref.views(i) for i in sorted(ref.instruments)),
        )
        digest = market.state_digest()
        assert digest == snapshot_digest(market.snapshot())  # cached == uncached
        assert self.digest_to_state.setdefault(digest, state) == state
        assert self.state_to_digest.setdefault(state, digest) == digest

    def teardown(self):
        if not self.log:
            return
        events, digest = run(self.log)
        assert events == self.events
        assert digest == self.market.state_digest()
        split_events, split_digest = run(self.log, split=len(self.log) // 2)
        assert split_events == self.events
        assert split_digest == digest


MarketMachine.TestCase.settings = settings(stateful_step_count=80)
TestMarketAgainstReference = MarketMachine.TestCase


@given(
    st.lists(
        st.builds(
            PlaceOrder,
            st.just(E0),
            st.integers(0, 60),
            owners,
            sides,
            st.integers(1, 40),
            good_prices,
            st.sampled_from([TimeInForce.GTC, TimeInForce.IOC]),
        ),
        max_size=80,
    ),
    st.integers(0, 80),
)
def test_restore_midway_gives_same_events(orders, split):
    commands: list[object] = [OpenInstrument(E0), *orders]
    whole, digest = run(commands)
    assert run(commands) == (whole, digest)
    assert run(commands, split=split) == (whole, digest)
