"""Property tests of the grid modes: the real market against the scan-everything reference.

A hypothesis state machine switches one book between the four modes (with
grids on one feeder and on another, and malformed mode commands), and sends
mixed orders (with preferences in mode 1), cancels, amends and clock moves
to ``orderbook.Market`` and to ``GridReferenceMarket`` (which scans every
resting order for the best net price and recomputes every line flow from
all trades). After every step: identical events and L3 books, a passing
``_check()`` (no line above capacity, seq order, caches), flows equal to the
reference's recomputation, a state digest equal to the uncached snapshot's
and to that of a restored copy. Every ``GridTrade`` is checked on its own:
both limits hold net of each side's charge, money is conserved, and in mode
1 both sides' preferences accept the match. At the end the command log is
replayed: same events, same digest.
"""

from __future__ import annotations

import dataclasses
import itertools

from hypothesis import event as event_note
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from orderbook import (
    AdvanceClock,
    AmendOrder,
    CancelOrder,
    DecideTrade,
    Grid,
    GridMode,
    GridTrade,
    Instrument,
    Market,
    MarketConfig,
    OpenInstrument,
    PlaceOrder,
    Preferences,
    Product,
    SetMode,
    Side,
    STPMode,
    TimeInForce,
)
from orderbook.digest import snapshot_digest
from tests.orderbook.grid_reference import GridReferenceMarket, RefGrid, allows, flows

CONFIG = MarketConfig(
    price_step=2, min_price=2, max_price=40, max_quantity=500, default_stp=STPMode.CANCEL_NEWEST
)
E0 = Instrument(Product.ELECTRICITY, 0)
H0 = Instrument(Product.HEAT, 0)
N = 5
OWNERS = ["a", "b", "c", "d", "e"]
LABELS = ["pv", "battery", "chp", "grid"]

owners = st.sampled_from([*OWNERS * 4, "x"])  # x has no bus
order_ids = st.integers(0, 40)
prices = st.sampled_from(range(12, 30, 2))
quantities = st.integers(1, 40)
sides = st.sampled_from([Side.BID, Side.ASK])
stps = st.sampled_from([None, *STPMode])
subsets = st.frozensets(st.sampled_from(OWNERS), max_size=2)
preferences = st.one_of(
    st.none(),
    st.builds(
        Preferences,
        st.one_of(st.none(), st.frozensets(st.sampled_from(LABELS), min_size=1, max_size=2)),
        subsets,
        subsets,
        st.one_of(st.none(), st.integers(0, 6)),
    ),
)
matrix = st.lists(st.lists(st.integers(0, 3), min_size=N, max_size=N), min_size=N, max_size=N)


@st.composite
def grids(draw, parent=None):
    """A grid of N buses: a random tree (or ``parent``), charges, capacities, labels."""
    if parent is None:
        parent = [-1] + [draw(st.integers(0, b - 1)) for b in range(1, N)]
    capacity = [0] + [draw(st.integers(0, 60)) for _ in range(1, N)]
    base = [0] + [draw(st.integers(-c // 2, c // 2)) for c in capacity[1:]]
    buses = tuple((o, draw(st.integers(0, N - 1))) for o in OWNERS)
    labelled = draw(st.lists(st.sampled_from(OWNERS), unique=True))
    techs = tuple(sorted((o, draw(st.sampled_from(LABELS))) for o in labelled))
    sc = draw(matrix)
    bc = draw(matrix)
    dist = draw(matrix)
    return Grid(
        N,
        buses,
        tuple(tuple(2 * x for x in r) for r in sc),
        tuple(tuple(r) for r in bc),  # odd charges too: trade prices off the tick grid
        tuple(parent),
        tuple(capacity),
        tuple(base),
        tuple(tuple(r) for r in dist),
        techs,
        draw(st.booleans()),  # mode 4: trades wait for the DSO
    )


def run(commands: list[object]) -> tuple[list[object], bytes]:
    market = Market(CONFIG)
    events = [market.execute(cmd) for cmd in commands]  # type: ignore[arg-type]
    return events, market.state_digest()


class GridMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.market = Market(CONFIG)
        self.ref = GridReferenceMarket(CONFIG)
        self.log: list[object] = []
        self.events: list[object] = []
        self.grids: list[Grid] = []

    def do(self, cmd: object) -> list[object]:
        before = {o.order_id: (o.price, o.owner) for o in self.ref.orders}
        prefs_before = dict(self.ref.prefs)
        got = self.market.execute(cmd)  # type: ignore[arg-type]
        want = self.ref.execute(cmd)
        assert got == want, f"{cmd}\n got: {got}\nwant: {want}"
        self.log.append(cmd)
        self.events.append(got)
        g = self.ref.grids.get(E0)
        for event in got:
            if type(event) is GridTrade:
                self.check_trade(cmd, event, before, prefs_before)
            if g is not None:
                event_note(f"mode {int(g.mode)}: {type(event).__name__}")
        return got

    def check_trade(self, cmd, t, before, prefs_before):
        maker_price, _ = before[t.maker_order_id]
        if isinstance(cmd, PlaceOrder):
            taker_limit = cmd.price if cmd.price is not None else cmd.protection_price
            taker_prefs = cmd.preferences
        else:
            assert isinstance(cmd, AmendOrder)
            taker_limit = cmd.price if cmd.price is not None else before[cmd.order_id][0]
            taker_prefs = prefs_before.get(cmd.order_id)
        q, sc, bc = t.quantity, t.seller_charge, t.buyer_charge
        assert q > 0 and sc >= 0 and bc >= 0
        buyer_pays, seller_gets = (t.price + bc) * q, (t.price - sc) * q
        assert buyer_pays == seller_gets + (sc + bc) * q  # money conserved
        if t.taker_side is Side.BID:
            assert t.price - sc == maker_price  # the maker gets its limit, net
            assert taker_limit is None or t.price + bc <= taker_limit
        else:
            assert t.price + bc == maker_price
            assert taker_limit is None or t.price - sc >= taker_limit
        g = self.ref.grids[E0]
        if g.mode is GridMode.PREFERENCES:
            tech = dict(g.grid.technologies)
            mb, tb = self.ref.bus[t.maker_order_id], dict(g.grid.buses)[t.taker_owner]
            d = g.grid.distance
            maker_prefs = prefs_before.get(t.maker_order_id)
            assert allows(taker_prefs, t.maker_owner, tech.get(t.maker_owner), d[tb][mb])
            assert allows(maker_prefs, t.taker_owner, tech.get(t.taker_owner), d[mb][tb])
            assert t.maker_owner not in (taker_prefs.excluded if taker_prefs else ())
        else:
            assert taker_prefs is None or g.mode is not GridMode.PREFERENCES

    @initialize(a=grids(), data=st.data())
    def open_books(self, a, data):
        same_feeder = data.draw(grids(parent=list(a.parent)))
        other = data.draw(grids())
        self.grids = [a, same_feeder, other]
        self.do(OpenInstrument(E0))
        self.do(OpenInstrument(H0))
        mode = data.draw(st.sampled_from(list(GridMode)))
        self.do(SetMode(E0, mode, None if mode is GridMode.BIDS_OFFERS else a))

    @rule(mode=st.sampled_from(list(GridMode)), which=st.integers(0, 2))
    def set_mode(self, mode, which):
        grid = None if mode is GridMode.BIDS_OFFERS else self.grids[which]
        self.do(SetMode(E0, mode, grid))

    @rule(which=st.integers(0, 2))
    def set_mode_with_approval(self, which):
        grid = dataclasses.replace(self.grids[which], approval=True)
        self.do(SetMode(E0, GridMode.LINE_VALIDATION, grid))

    @rule(
        bad=st.sampled_from(
            [
                (3, "grid"),  # a plain int, not a GridMode
                (GridMode.BIDS_OFFERS, "grid"),
                (GridMode.PRICE_SIGNALS, "bare"),
                (GridMode.LINE_VALIDATION, "bare"),
                (GridMode.PRICE_SIGNALS, None),
            ]
        )
    )
    def set_mode_malformed(self, bad):
        mode, which = bad
        grid = {"grid": self.grids[0], "bare": Grid(N, self.grids[0].buses), None: None}[which]
        before = self.market.state_digest()
        events = self.do(SetMode(E0, mode, grid))
        assert type(events[0]).__name__ == "Rejected"
        assert self.market.state_digest() == before

    @rule(
        instrument=st.sampled_from([E0, E0, E0, H0]),
        order_id=order_ids,
        owner=owners,
        side=sides,
        quantity=quantities,
        price=prices,
        tif=st.sampled_from([*TimeInForce, TimeInForce.GTC, TimeInForce.GTC]),
        expiry=st.integers(1, 6),
        post_only=st.booleans(),
        stp=stps,
        prefs=preferences,
    )
    def place(
        self, instrument, order_id, owner, side, quantity, price, tif, expiry, post_only, stp, prefs
    ):
        expires_at = self.ref.clock + expiry if tif is TimeInForce.GTD else None
        post_only = post_only and tif in (TimeInForce.GTC, TimeInForce.GTD)
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
                preferences=prefs,
            )
        )

    @rule(
        orders=st.lists(
            st.tuples(order_ids, owners, sides, quantities, prices, preferences),
            min_size=1,
            max_size=8,
        )
    )
    def place_batch(self, orders):
        for order_id, owner, side, quantity, price, prefs in orders:
            self.do(PlaceOrder(E0, order_id, owner, side, quantity, price, preferences=prefs))

    @rule(
        order_id=order_ids,
        owner=owners,
        side=sides,
        quantity=st.integers(1, 120),
        tif=st.sampled_from([TimeInForce.IOC, TimeInForce.FOK, TimeInForce.GTC]),
        protection=st.one_of(st.none(), prices),
        stp=stps,
    )
    def place_market(self, order_id, owner, side, quantity, tif, protection, stp):
        self.do(
            PlaceOrder(
                E0, order_id, owner, side, quantity, None, tif, stp=stp, protection_price=protection
            )
        )

    @rule(data=st.data(), owner=st.one_of(st.none(), owners))
    def cancel(self, data, owner):
        live = [o.order_id for o in self.ref.orders]
        order_id = data.draw(st.sampled_from(live) if live else order_ids)
        self.do(CancelOrder(order_id, owner))

    @rule(
        data=st.data(),
        price=st.one_of(st.none(), prices),
        quantity=st.one_of(st.none(), quantities),
    )
    def amend(self, data, price, quantity):
        live = [o.order_id for o in self.ref.orders]
        order_id = data.draw(st.sampled_from(live) if live else order_ids)
        self.do(AmendOrder(order_id, None, price, quantity))

    @rule(data=st.data(), approve=st.booleans())
    def decide(self, data, approve):
        g = self.ref.grids.get(E0)
        pending = sorted(g.pending) if g is not None else []
        trade_no = data.draw(st.sampled_from(pending) if pending else st.integers(0, 3))
        self.do(DecideTrade(E0, trade_no, approve))

    @rule(step=st.integers(0, 3))
    def advance_clock(self, step):
        self.do(AdvanceClock(self.ref.clock + step))

    @rule()
    def snapshot_restore(self):
        before = self.market.state_digest()
        self.market = Market.restore(self.market.snapshot())
        assert self.market.state_digest() == before

    @invariant()
    def consistent(self):
        market, ref = self.market, self.ref
        market._check()
        assert len(market) == len(ref.orders)
        for instrument in (E0, H0):
            if instrument in ref.instruments:
                assert market.orders(instrument) == ref.views(instrument)
        g = ref.grids.get(E0)
        state = market.book(E0).grid if E0 in ref.instruments else None
        assert (g is None) == (state is None)
        if g is not None and state is not None:
            assert state.mode is g.mode
            assert state.pending == g.pending and state.trade_no == g.trade_no
            if g.mode is GridMode.LINE_VALIDATION:
                flow = flows(g)
                assert state.flow == flow
                # No line above capacity, whichever pending trades the DSO refuses.
                for refused in itertools.product([False, True], repeat=min(len(g.pending), 6)):
                    kept = [t for t, r in zip(g.pending.values(), refused, strict=False) if not r]
                    rest = list(g.pending.values())[len(refused) :]
                    f = flows(RefGrid(g.mode, g.grid, g.base, [*g.trades, *kept, *rest]))
                    for line, x in enumerate(f):
                        if g.grid.parent[line] >= 0:
                            assert abs(x) <= g.grid.capacity[line]
        digest = market.state_digest()
        assert digest == snapshot_digest(market.snapshot())
        assert Market.restore(market.snapshot()).state_digest() == digest

    def teardown(self):
        if not self.log:
            return
        events, digest = run(self.log)
        assert events == self.events
        assert digest == self.market.state_digest()


GridMachine.TestCase.settings = settings(stateful_step_count=50, max_examples=60, deadline=None)
TestGridAgainstReference = GridMachine.TestCase
