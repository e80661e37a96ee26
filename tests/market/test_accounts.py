"""Settlement that pays: balances, meters, imbalances, statements (market.accounts)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.block import build_block
from ledger.errors import LedgerError
from ledger.keys import SigningKey
from ledger.results import EventRecord, StatementRecord, decode_result
from market import replay
from market import transactions as txn
from market.accounts import DSO, GRID
from market.errors import BlockRefused, NotPermitted
from market.state import ExchangeState

CHAIN = "money-chain"
OPERATOR = SigningKey.from_seed(b"\x07" * 32)


class Sender:
    """A key and its nonces."""

    def __init__(self, key: SigningKey) -> None:
        self.key = key
        self.nonce = 0

    @property
    def account(self) -> bytes:
        return self.key.account_id

    def tx(self, payload):
        self.nonce += 1
        return txn.make(self.key, CHAIN, self.nonce, payload)


def key(n: int) -> SigningKey:
    return SigningKey.from_seed(bytes([n + 40]) * 32)


class Community:
    """A state machine with an operator, peers and their meters, applied block by block."""

    def __init__(self, roles: list[str], buses: list[str] | None = None) -> None:
        self.state = ExchangeState(CHAIN, OPERATOR.public_key_bytes())
        self.operator = Sender(OPERATOR)
        self.peers = [Sender(key(i)) for i in range(len(roles))]
        self.meters = [Sender(key(100 + i)) for i in range(len(roles))]
        self.blocks: list = []
        self.pending: list = []
        for i, (peer, role) in enumerate(zip(self.peers, roles, strict=True)):
            bus = "B1" if buses is None else buses[i]
            self.send(peer.tx(txn.RegisterPeer(f"p{i}", bus, role)))
            meter = self.meters[i].key.public_key_bytes()
            self.op(txn.RegisterMeter(peer.account, meter))
        self.cut()

    def send(self, signed):
        if not self.pending:
            self.pending_results = self.state.begin_block(1_000 * (len(self.blocks) + 1))
        out = self.state.apply(signed)
        self.pending.append(signed)
        self.pending_results.extend(out.results)
        return out

    def op(self, payload):
        return self.send(self.operator.tx(payload))

    def cut(self):
        parent = self.blocks[-1].header if self.blocks else None
        block = build_block(
            OPERATOR,
            chain_id=CHAIN,
            parent=parent,
            time_ns=1_000 * (len(self.blocks) + 1),
            transactions=[s.to_bytes() for s in self.pending],
            results=self.pending_results,
            state_digest=self.state.state_digest(),
        )
        self.blocks.append(block)
        self.pending = []
        return block


def statements(outcome) -> list[StatementRecord]:
    return [r for r in map(decode_result, outcome.results) if isinstance(r, StatementRecord)]


def order(side, price, qty, coid, slot=1):
    return txn.PlaceOrder("electricity", slot, side, price, qty, "GTC", 0, False, "", coid)


def test_a_slot_settles_contracts_and_imbalances_at_the_grids_tariffs():
    c = Community(["producer", "consumer"])
    seller, buyer = c.peers
    c.op(txn.Deposit(buyer.account, 1_000_000))
    c.send(seller.tx(order("ask", 100, 2_000, 1)))
    c.send(buyer.tx(order("bid", 120, 3_000, 1)))  # buys 2,000 Wh at 100, rests 1,000
    c.op(txn.SetSlotTerms("electricity", 1, 150, 40, "cda"))
    c.op(txn.CloseSlot("electricity", 1))
    # the seller delivered 1,500 of 2,000 Wh; the buyer used 2,500 Wh
    c.send(c.meters[0].tx(txn.MeterReading("electricity", 1, 1_500)))
    c.send(c.meters[1].tx(txn.MeterReading("electricity", 1, -2_500)))
    out = c.op(txn.SettleSlot("electricity", 1))
    got = {s.account: s for s in statements(out)}
    # seller: +100*2000 for the contract, short 500 Wh bought at 150
    assert got[seller.account].payment == 200_000 - 500 * 150
    assert got[seller.account].imbalance_wh == -500
    # buyer: -100*2000, and 500 Wh more than contracted from the grid at 150
    assert got[buyer.account].payment == -200_000 - 500 * 150
    assert got[buyer.account].balance_after == 1_000_000 - 275_000
    assert got[GRID].payment == 2 * 500 * 150
    assert sum(s.payment for s in got.values()) == 0
    assert c.state.accounts.conserved()
    # settled once
    assert c.op(txn.SettleSlot("electricity", 1)).rejected == "already_settled"


def test_a_cleared_market_slot_binds_the_clearing_and_the_dso_takes_its_penalties():
    c = Community(["producer", "consumer"])
    seller, buyer = c.peers
    c.op(txn.SetSlotTerms("electricity", 2, 150, 40, "cleared"))
    c.op(txn.CloseSlot("electricity", 2))
    assert c.op(txn.SettleSlot("electricity", 2)).rejected == "not_cleared"
    # the clearing: seller injects 1,000 Wh, is paid 90,000; buyer pays 95,000 (penalties 5,000)
    rows = ((seller.account, 1_000, 90_000), (buyer.account, -1_000, -95_000))
    c.op(txn.PublishClearing("electricity", 2, rows, b"cert"))
    c.send(c.meters[0].tx(txn.MeterReading("electricity", 2, 1_000)))
    c.send(c.meters[1].tx(txn.MeterReading("electricity", 2, -1_000)))
    got = {s.account: s for s in statements(c.op(txn.SettleSlot("electricity", 2)))}
    assert got[seller.account].payment == 90_000
    assert got[buyer.account].payment == -95_000
    assert got[DSO].payment == 5_000
    assert GRID not in got  # nobody was out of balance
    assert c.state.accounts.conserved()


def test_bad_readings_are_refused_each_with_its_reason_and_change_no_money():
    c = Community(["producer", "consumer"])
    seller, _buyer = c.peers
    m_seller, m_buyer = c.meters
    c.op(txn.SetSlotTerms("electricity", 3, 150, 40, "cda"))
    early = c.send(m_seller.tx(txn.MeterReading("electricity", 3, 10)))
    assert early.rejected == "slot_open"
    c.op(txn.CloseSlot("electricity", 3))
    assert c.send(m_buyer.tx(txn.MeterReading("electricity", 3, 10))).rejected == (
        "reading_out_of_range"  # a consumer cannot inject
    )
    assert c.send(m_seller.tx(txn.MeterReading("electricity", 3, 10))).rejected is None
    assert c.send(m_seller.tx(txn.MeterReading("electricity", 3, 20))).rejected == (
        "duplicate_reading"
    )
    # a peer's own key is not its meter: refused, never in a block
    with pytest.raises(NotPermitted, match="not a registered meter"):
        c.state.apply(seller.tx(txn.MeterReading("electricity", 3, 10)))
    seller.nonce -= 1
    # out of range for the payload itself: refused before it is ever signed
    with pytest.raises(LedgerError):
        txn.MeterReading("electricity", 3, 10**10)
    # a wrongly signed reading does not verify
    forged = bytearray(m_buyer.tx(txn.MeterReading("electricity", 3, -5)).to_bytes())
    forged[-1] ^= 1
    with pytest.raises(Exception, match="signature"):
        c.state.apply(txn.decode(bytes(forged)))
    assert c.state.accounts.readings[("electricity", 3)] == {seller.account: 10}
    assert c.state.accounts.balances == {}
    c.op(txn.SettleSlot("electricity", 3))
    late = c.send(m_buyer.tx(txn.MeterReading("electricity", 3, -5)))
    assert late.rejected == "slot_settled"


def test_money_moves_only_by_the_operator_and_withdrawals_cannot_overdraw():
    c = Community(["prosumer"])
    (peer,) = c.peers
    with pytest.raises(NotPermitted):
        c.state.apply(peer.tx(txn.Deposit(peer.account, 10)))
    peer.nonce -= 1
    out = c.op(txn.Deposit(peer.account, 500))
    assert decode_result(out.results[0]) == EventRecord(
        out.tx_id, "deposit", peer.account, (500, 500)
    )
    assert c.op(txn.Withdraw(peer.account, 501)).rejected == "insufficient_balance"
    assert c.op(txn.Withdraw(peer.account, 200)).rejected is None
    assert c.state.accounts.balances[peer.account] == 300
    assert c.state.accounts.deposited == 300


def test_replay_gives_the_same_balances_and_a_forged_statement_is_refused():
    c = Community(["producer", "consumer"])
    seller, buyer = c.peers
    c.op(txn.Deposit(buyer.account, 10**6))
    c.send(seller.tx(order("ask", 90, 1_000, 1, slot=4)))
    c.send(buyer.tx(order("bid", 90, 1_000, 1, slot=4)))
    c.op(txn.SetSlotTerms("electricity", 4, 150, 40, "cda"))
    c.op(txn.CloseSlot("electricity", 4))
    c.send(c.meters[1].tx(txn.MeterReading("electricity", 4, -800)))
    c.op(txn.SettleSlot("electricity", 4))
    c.cut()
    again = ExchangeState(CHAIN, OPERATOR.public_key_bytes())
    parent = None
    for block in c.blocks:
        replay.verify_and_replay(again, block, parent)
        parent = block.header
    assert again.accounts.balances == c.state.accounts.balances
    assert again.state_digest() == c.state.state_digest()
    # the operator pays itself out of the seller's statement: the replica refuses it
    last = c.blocks[-1]
    forged_results = []
    for data in last.results:
        record = decode_result(data)
        if isinstance(record, StatementRecord) and record.account == seller.account:
            fields = {f: getattr(record, f) for f in record.__slots__}
            fields["payment"] += 1
            record = StatementRecord(**fields)
        forged_results.append(record.to_bytes())
    forged = build_block(
        OPERATOR,
        chain_id=CHAIN,
        parent=c.blocks[-2].header,
        time_ns=last.header.time_ns,
        transactions=list(last.transactions),
        results=forged_results,
        state_digest=last.header.state_digest,
    )
    fresh = ExchangeState(CHAIN, OPERATOR.public_key_bytes())
    for block in c.blocks[:-1]:
        replay.replay(fresh, block)
    with pytest.raises(BlockRefused, match="other results"):
        replay.verify_and_replay(fresh, forged, c.blocks[-2].header)


def reference_payments(trades, readings, import_price, export_price):
    """Every account's balance change, from the list of trades and readings: no shared code."""
    energy: dict[int, int] = {}
    money: dict[int, int] = {}
    for seller, buyer, price, qty in trades:
        energy[seller] = energy.get(seller, 0) + qty
        energy[buyer] = energy.get(buyer, 0) - qty
        money[seller] = money.get(seller, 0) + price * qty
        money[buyer] = money.get(buyer, 0) - price * qty
    grid = 0
    out = {}
    for who in set(energy) | set(readings):
        diff = readings.get(who, 0) - energy.get(who, 0)
        pay = diff * (export_price if diff > 0 else import_price)
        out[who] = money.get(who, 0) + pay
        grid -= pay
    return out, grid


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    orders=st.lists(
        st.tuples(
            st.integers(0, 3),  # peer
            st.sampled_from(["bid", "ask"]),
            st.integers(50, 150),  # price
            st.integers(1, 5_000),  # Wh
        ),
        max_size=25,
    ),
    readings=st.dictionaries(st.integers(0, 3), st.integers(-8_000, 8_000), max_size=4),
    tariff=st.tuples(st.integers(0, 300), st.integers(0, 300)),
)
def test_money_is_conserved_and_matches_a_reference(orders, readings, tariff):
    import_price, export_price = max(tariff), min(tariff)
    c = Community(["prosumer"] * 4)
    for i, peer in enumerate(c.peers):
        c.op(txn.Deposit(peer.account, 10**9 + i))
    trades = []
    for n, (who, side, price, qty) in enumerate(orders):
        out = c.send(c.peers[who].tx(order(side, price, qty, n + 1, slot=9)))
        for record in map(decode_result, out.results):
            if hasattr(record, "maker_account") and hasattr(record, "price"):
                maker = next(i for i, p in enumerate(c.peers) if p.account == record.maker_account)
                taker = next(i for i, p in enumerate(c.peers) if p.account == record.taker_account)
                seller, buyer = (taker, maker) if side == "ask" else (maker, taker)
                trades.append((seller, buyer, record.price, record.quantity))
    c.op(txn.SetSlotTerms("electricity", 9, import_price, export_price, "cda"))
    c.op(txn.CloseSlot("electricity", 9))
    for who, wh in readings.items():
        assert c.send(c.meters[who].tx(txn.MeterReading("electricity", 9, wh))).rejected is None
    before = dict(c.state.accounts.balances)
    settled = statements(c.op(txn.SettleSlot("electricity", 9)))
    assert sum(s.payment for s in settled) == 0
    assert c.state.accounts.conserved()
    want, grid = reference_payments(trades, readings, import_price, export_price)
    got = {s.account: s.payment for s in settled}
    for who, payment in want.items():
        account = c.peers[who].account
        assert got.get(account, 0) == payment
        assert c.state.accounts.balances[account] == before[account] + payment
    assert got.get(GRID, 0) == grid
