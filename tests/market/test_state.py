"""The market state machine, in-process: permissions, nonces, results, determinism."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.keys import SigningKey
from ledger.results import EventRecord, RejectionRecord, TradeRecord, decode_result
from market import transactions as txn
from market.errors import BadNonce, InvalidTransaction, NotPermitted
from market.state import ExchangeState
from orderbook.events import Trade

CHAIN = "test-chain"
OPERATOR = SigningKey.from_seed(b"\x01" * 32)


def key(n: int) -> SigningKey:
    return SigningKey.from_seed(bytes([n + 10]) * 32)


class Peer:
    """A test peer: key + nonce counter."""

    def __init__(self, n: int) -> None:
        self.key = key(n)
        self.nonce = 0

    def tx(self, payload):
        self.nonce += 1
        return txn.make(self.key, CHAIN, self.nonce, payload)


def order(side, price, qty, coid, slot=1, tif="GTC", product="electricity"):
    return txn.PlaceOrder(product, slot, side, price, qty, tif, 0, False, "", coid)


def new_state() -> ExchangeState:
    state = ExchangeState(CHAIN, OPERATOR.public_key_bytes())
    state.begin_block(1_000)
    return state


def registered(state, n, role):
    peer = Peer(n)
    out = state.apply(peer.tx(txn.RegisterPeer(f"peer{n}", "bus1", role)))
    assert out.results == []
    return peer


def records(outcome):
    return [decode_result(r) for r in outcome.results]


def test_trade_between_producer_and_consumer():
    state = new_state()
    seller = registered(state, 1, "producer")
    buyer = registered(state, 2, "consumer")
    ask = state.apply(seller.tx(order("ask", 100, 5_000, coid=1)))
    assert ask.order_id == 1
    assert [type(r) for r in records(ask)] == [EventRecord]
    bid = state.apply(buyer.tx(order("bid", 120, 2_000, coid=1)))
    got = records(bid)
    assert isinstance(got[0], EventRecord) and got[0].values == (2,)
    trade = got[1]
    assert isinstance(trade, TradeRecord)
    assert (trade.price, trade.quantity, trade.maker_order, trade.taker_order) == (100, 2000, 1, 2)
    assert trade.maker_account == seller.key.account_id
    assert trade.taker_account == buyer.key.account_id
    assert any(isinstance(e, Trade) for e in bid.events)


@pytest.mark.parametrize(("role", "side"), [("consumer", "ask"), ("producer", "bid")])
def test_role_limits_the_side(role, side):
    state = new_state()
    peer = registered(state, 1, role)
    out = state.apply(peer.tx(order(side, 100, 1_000, coid=1)))
    assert records(out) == [RejectionRecord(out.tx_id, "role_not_permitted")]
    assert state.next_nonce(peer.key.public_key_bytes()) == 3  # the nonce is used


def test_unregistered_sender_and_operator_kinds_are_refused_without_change():
    state = new_state()
    stranger = Peer(5)
    before = state.state_digest()
    with pytest.raises(NotPermitted):
        state.apply(stranger.tx(order("bid", 100, 1_000, coid=1)))
    peer = registered(state, 1, "prosumer")
    before = state.state_digest()
    with pytest.raises(NotPermitted):
        state.apply(peer.tx(txn.CloseSlot("electricity", 1)))
    assert state.state_digest() == before
    closing = txn.make(OPERATOR, CHAIN, 1, txn.CloseSlot("electricity", 1))
    assert state.apply(closing).results == []
    out = state.apply(peer.tx(order("bid", 100, 1_000, coid=1)))
    assert records(out) == [RejectionRecord(out.tx_id, "slot_closed")]


def test_nonces_refuse_replays_and_allow_gaps():
    state = new_state()
    peer = Peer(1)
    first = peer.tx(txn.RegisterPeer("p", "bus1", "prosumer"))
    state.apply(first)
    digest = state.state_digest()
    with pytest.raises(BadNonce) as exc:
        state.apply(first)  # replay of the same bytes
    assert (exc.value.expected, exc.value.got) == (2, 1)
    assert state.state_digest() == digest
    peer.nonce = 10  # a gap is fine
    state.apply(peer.tx(order("bid", 100, 1_000, coid=1)))
    assert state.next_nonce(peer.key.public_key_bytes()) == 12


def test_bad_signature_and_wrong_chain_are_refused():
    state = new_state()
    peer = Peer(1)
    good = peer.tx(txn.RegisterPeer("p", "bus1", "prosumer"))
    data = bytearray(good.to_bytes())
    data[-1] ^= 1  # flip a signature bit
    with pytest.raises(InvalidTransaction) as exc:
        state.apply(txn.decode(bytes(data)))
    assert exc.value.code == "bad_signature"
    other = txn.make(peer.key, "other-chain", 1, txn.RegisterPeer("p", "bus1", "prosumer"))
    with pytest.raises(InvalidTransaction):
        state.apply(other)
    assert state.peers == {}


def test_cancel_and_amend_act_only_on_own_orders():
    state = new_state()
    a = registered(state, 1, "prosumer")
    b = registered(state, 2, "prosumer")
    state.apply(a.tx(order("bid", 100, 1_000, coid=7)))
    # b's client order id 7 names b's own (non-existent) order, never a's
    out = state.apply(b.tx(txn.CancelOrder(7)))
    assert records(out) == [RejectionRecord(out.tx_id, "unknown_order")]
    assert state.market.order(1) is not None
    out = state.apply(a.tx(txn.AmendOrder(7, 0, 500)))
    assert records(out) == []
    assert state.market.order(1).quantity == 500
    out = state.apply(a.tx(txn.CancelOrder(7)))
    assert state.market.order(1) is None
    out = state.apply(a.tx(order("bid", 100, 1_000, coid=7)))
    assert records(out) == [RejectionRecord(out.tx_id, "duplicate_client_order_id")]


def test_curves_follow_the_sign_convention():
    state = new_state()
    consumer = registered(state, 1, "consumer")
    out = state.apply(consumer.tx(txn.DeclareCurve("electricity", 3, 10, 5, 0, -5_000, 0)))
    assert out.results == []
    out = state.apply(consumer.tx(txn.DeclareCurve("electricity", 3, 10, 5, 0, 0, 5_000)))
    assert records(out) == [RejectionRecord(out.tx_id, "role_not_permitted")]
    assert list(state.curves[("electricity", 3)]) == [consumer.key.account_id]
    out = state.apply(consumer.tx(txn.DeclareChp(3, (0, 0, 10, 0, 10, 5, 0, 5))))
    assert records(out) == [RejectionRecord(out.tx_id, "role_not_permitted")]
    assert state.chp == {}


def test_publish_clearing_records_settlements_once():
    state = new_state()
    acct = key(1).account_id
    op_nonce = iter(range(1, 10))

    def op(payload):
        return state.apply(txn.make(OPERATOR, CHAIN, next(op_nonce), payload))

    publish = txn.PublishClearing("electricity", 2, ((acct, 100, -500),), b"cert")
    out = op(publish)
    assert records(out) == [RejectionRecord(out.tx_id, "slot_open")]
    op(txn.CloseSlot("electricity", 2))
    out = op(publish)
    settlement = records(out)[0]
    assert (settlement.account, settlement.energy_wh, settlement.payment) == (acct, 100, -500)
    out = op(publish)
    assert records(out) == [RejectionRecord(out.tx_id, "already_cleared")]


def test_block_time_never_goes_backwards():
    state = new_state()
    with pytest.raises(InvalidTransaction):
        state.begin_block(999)


def random_transactions(seed: int, count: int):
    rng = random.Random(seed)
    peers = [Peer(i) for i in range(6)]
    roles = ["producer", "consumer", "prosumer", "prosumer", "grid", "consumer"]
    txs = [p.tx(txn.RegisterPeer(f"p{i}", "bus1", roles[i])) for i, p in enumerate(peers)]
    for i in range(count):
        p = rng.choice(peers)
        pick = rng.random()
        if pick < 0.7:
            side = rng.choice(["bid", "ask"])
            tif = rng.choice(["GTC", "GTC", "IOC", "GTD"])
            price, qty = rng.randint(90, 110), rng.randint(1, 50) * 100
            expires = 1_000 + i + rng.randint(1, 200) if tif == "GTD" else 0
            payload = txn.PlaceOrder("electricity", 1, side, price, qty, tif, expires, False, "", i)
            txs.append(p.tx(payload))
        elif pick < 0.85:
            txs.append(p.tx(txn.CancelOrder(rng.randrange(i + 1))))
        else:
            txs.append(p.tx(txn.AmendOrder(rng.randrange(i + 1), rng.randint(90, 110), 0)))
    return txs


def run(txs, blocks_of: int):
    state = ExchangeState(CHAIN, OPERATOR.public_key_bytes())
    results, digests = [], []
    for start in range(0, len(txs), blocks_of):
        results.extend(state.begin_block(1_000 + start))
        for signed in txs[start : start + blocks_of]:
            results.extend(state.apply(txn.decode(signed.to_bytes())).results)
        digests.append(state.state_digest())
    return results, digests


def test_replay_is_deterministic():
    seed = 20260501
    print("seed", seed)
    txs = random_transactions(seed, 400)
    first = run(txs, 50)
    second = run(txs, 50)
    assert first == second
    kinds = {type(decode_result(r)) for r in first[0]}
    assert {TradeRecord, EventRecord, RejectionRecord} <= kinds
    assert any(
        isinstance(r, EventRecord) and r.event == "expired" and r.tx_id == bytes(32)
        for r in map(decode_result, first[0])
    )
    assert len(set(first[1])) == len(first[1])  # the digest moves with the state


def test_gtd_orders_expire_at_the_block_that_reaches_their_time():
    state = new_state()  # block time 1_000
    peer = registered(state, 1, "prosumer")
    gtd = txn.PlaceOrder("electricity", 1, "bid", 100, 700, "GTD", 5_000, False, "", 1)
    placed = state.apply(peer.tx(gtd))
    assert state.begin_block(4_999) == []
    assert state.market.order(placed.order_id) is not None
    expired = [decode_result(r) for r in state.begin_block(5_000)]
    assert expired == [
        EventRecord(bytes(32), "expired", peer.key.account_id, (placed.order_id, 700))
    ]
    assert state.market.order(placed.order_id) is None


def test_gate_closure_records_the_orders_it_expires():
    state = new_state()
    peer = registered(state, 1, "prosumer")
    placed = state.apply(peer.tx(order("ask", 100, 900, coid=1, slot=4)))
    out = state.apply(txn.make(OPERATOR, CHAIN, 1, txn.CloseSlot("electricity", 4)))
    assert records(out) == [
        EventRecord(out.tx_id, "expired", peer.key.account_id, (placed.order_id, 900))
    ]


step = st.tuples(
    st.integers(0, 3),  # sender: 0 is the operator, 1..3 peers
    st.sampled_from(["register", "bid", "ask", "cancel", "amend", "close", "curve"]),
    st.integers(-1, 2),  # nonce step: <= 0 replays or reuses a nonce
    st.integers(95, 105),  # price
    st.integers(1, 5),  # client order id
)


@given(st.lists(step, max_size=40))
def test_refused_transactions_change_nothing_and_replay_is_exact(steps):
    keys = [OPERATOR, key(1), key(2), key(3)]
    nonces = [0, 0, 0, 0]
    state = new_state()
    accepted, results = [], []
    for sender, kind, nonce_step, price, coid in steps:
        nonces[sender] += nonce_step
        payload = {
            "register": txn.RegisterPeer(
                "p", "B1", ["grid", "producer", "consumer", "prosumer"][sender]
            ),
            "bid": order("bid", price, 100 * coid, coid),
            "ask": order("ask", price, 100 * coid, coid),
            "cancel": txn.CancelOrder(coid),
            "amend": txn.AmendOrder(coid, price, 0),
            "close": txn.CloseSlot("electricity", 1),
            "curve": txn.DeclareCurve("electricity", 2, 10, price, 0, -1000, 0),
        }[kind]
        signed = txn.make(keys[sender], CHAIN, max(nonces[sender], 0), payload)
        before = state.state_digest()
        try:
            outcome = state.apply(signed)
        except InvalidTransaction:
            assert state.state_digest() == before
            continue
        accepted.append(signed)
        results.extend(outcome.results)
    again = ExchangeState(CHAIN, OPERATOR.public_key_bytes())
    again.begin_block(1_000)
    replayed = [r for s in accepted for r in again.apply(s).results]
    assert replayed == results
    assert again.state_digest() == state.state_digest()


@pytest.mark.parametrize(
    "rejected",
    [
        order("bid", 100, 500, coid=1, slot=7, tif="FOK"),  # nothing to fill it
        order("bid", 100, 10**15, coid=1, slot=7),  # more than the book takes
    ],
)
def test_a_rejected_order_on_a_new_slot_leaves_no_book(rejected):
    """A refused order changes nothing but its sender's nonce: no book, no digest change."""
    state, other = new_state(), new_state()
    buyer, twin = registered(state, 2, "consumer"), registered(other, 2, "consumer")
    out = state.apply(buyer.tx(rejected))
    assert out.rejected is not None
    # the same nonce spent on a rejection that never names a slot
    assert other.apply(twin.tx(txn.CancelOrder(99))).rejected == "unknown_order"
    assert ("electricity", 7) not in state.opened
    assert state.market.instruments() == ()
    # the books and slots are as if the order never came (its order id is spent:
    # ids are given before the book looks at an order, as in every chain so far)
    assert state.market.state_digest() == other.market.state_digest()
    assert state.opened == other.opened
    # the slot still opens for the first order that is placed in it
    assert state.apply(buyer.tx(order("bid", 100, 500, coid=2, slot=7))).rejected is None
    assert ("electricity", 7) in state.opened
