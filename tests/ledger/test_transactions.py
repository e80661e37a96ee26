"""Transactions and result records: every kind round-trips, signatures bind every byte."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger import (
    AmendOrder,
    BadRecord,
    BadTransactionSignature,
    CancelOrder,
    CloseSlot,
    DeclareChp,
    DeclareCurve,
    DecodeError,
    EventRecord,
    NonCanonicalEncoding,
    PlaceOrder,
    PublishClearing,
    RegisterPeer,
    RejectionRecord,
    SetNetwork,
    SetTariff,
    SettlementRecord,
    TradeRecord,
    Transaction,
    TransactionChainMismatch,
    TxKind,
    decode_result,
    decode_transaction,
    encode,
    sign_transaction,
    verify_transaction,
)
from ledger.codec import decode
from ledger.fields import check_values, compile_checker, fields_to_values
from ledger.results import result_accounts
from ledger.transactions import TX_DOMAIN_TAG, parse_transaction
from tests.ledger.chainkit import CHAIN_ID, OPERATOR, PEERS

ACCOUNT = PEERS[0].account_id

PAYLOADS = [
    RegisterPeer("building 12", "bus-7", "prosumer"),
    PlaceOrder("electricity", 42, "ask", 1250, 3000, "GTD", 99, True, "CANCEL_NEWEST", 7),
    PlaceOrder("heat", 0, "bid", 0, 1, "IOC", 0, False, "", 2**63 - 1),
    CancelOrder(7),
    AmendOrder(7, 0, 2500),
    DeclareCurve("electricity", 3, 12, 250, 0, -5000, 0),
    DeclareChp(3, (0, 0, 100, 50, 200, 80, 150, 0)),
    SetTariff(35_000, 10_000),
    SetNetwork('{"buses": ["b1", "b2"], "lines": []}'),
    CloseSlot("heat", 3),
    PublishClearing(
        "electricity", 3, ((ACCOUNT, 1500, -187_500), (bytes(32), -1500, 187_500)), b"c"
    ),
]


@pytest.mark.parametrize("payload", PAYLOADS, ids=lambda p: type(p).__name__)
def test_every_kind_round_trips_and_verifies(payload):
    signer = OPERATOR
    tx = Transaction(payload.KIND, CHAIN_ID, signer.public_key_bytes(), 5, payload)
    signed = sign_transaction(signer, tx)
    assert signed.tx_id == hashlib.sha256(signed.to_bytes()).digest()
    again = decode_transaction(signed.to_bytes())
    assert again == signed
    assert again.transaction.payload == payload
    verify_transaction(again, chain_id=CHAIN_ID)
    # the signature is over the domain tag and the exact body bytes
    assert OPERATOR.sign(TX_DOMAIN_TAG + signed.body) == signed.signature
    kind, chain, sender, nonce, *_ = parse_transaction(signed.to_bytes())
    assert (kind, chain, sender, nonce) == (payload.KIND, CHAIN_ID, signer.public_key_bytes(), 5)


def _signed(nonce: int = 1):
    payload = PlaceOrder("electricity", 1, "bid", 100, 500, "GTC", 0, False, "", 1)
    tx = Transaction(TxKind.PLACE_ORDER, CHAIN_ID, PEERS[0].public_key_bytes(), nonce, payload)
    return sign_transaction(PEERS[0], tx)


def test_every_byte_of_the_signature_and_body_matters():
    signed = _signed()
    data = signed.to_bytes()
    body_start = data.index(signed.body)
    for position in range(len(data)):
        tampered = bytearray(data)
        tampered[position] ^= 0x01
        try:
            candidate = decode_transaction(bytes(tampered))
        except DecodeError:
            continue  # the change broke the encoding: refused at decode
        with pytest.raises((BadTransactionSignature, TransactionChainMismatch)):
            verify_transaction(candidate, chain_id=CHAIN_ID)
        assert position >= body_start  # the envelope prefix cannot change silently


def test_wrong_chain_id():
    signed = _signed()
    with pytest.raises(TransactionChainMismatch) as info:
        verify_transaction(signed, chain_id="other-chain")
    assert (info.value.expected, info.value.found) == ("other-chain", CHAIN_ID)
    verify_transaction(signed)  # without a chain id only the signature is checked


def test_signature_under_another_key_is_refused():
    signed = _signed()
    payload = signed.transaction.payload
    forged_tx = Transaction(TxKind.PLACE_ORDER, CHAIN_ID, PEERS[1].public_key_bytes(), 1, payload)
    # a valid body for PEERS[1] carrying PEERS[0]'s signature
    body = forged_tx.body_bytes()
    data = encode([1, 1, body, signed.signature])
    with pytest.raises(BadTransactionSignature):
        verify_transaction(decode_transaction(data))


def test_sign_with_a_key_that_is_not_the_sender():
    tx = _signed().transaction
    with pytest.raises(BadRecord):
        sign_transaction(PEERS[1], tx)


@pytest.mark.parametrize(
    ("build", "desc"),
    [
        (lambda: PlaceOrder("gas", 1, "bid", 1, 1, "GTC", 0, False, "", 1), "product"),
        (lambda: PlaceOrder("heat", 1, "buy", 1, 1, "GTC", 0, False, "", 1), "side"),
        (lambda: PlaceOrder("heat", 1, "bid", 1.5, 1, "GTC", 0, False, "", 1), "float price"),
        (lambda: PlaceOrder("heat", 1, "bid", 1, 1, "DAY", 0, False, "", 1), "tif"),
        (lambda: PlaceOrder("heat", 1, "bid", 1, 1, "GTC", 0, 2, "", 1), "post_only 2"),
        (lambda: PlaceOrder("heat", 2**63, "bid", 1, 1, "GTC", 0, 0, "", 1), "slot range"),
        (lambda: RegisterPeer("x", "b", "miner"), "role"),
        (lambda: RegisterPeer("x" * 65, "b", "grid"), "long name"),
        (lambda: DeclareChp(1, (1, 2, 3)), "7 points short"),
        (lambda: PublishClearing("heat", 1, ((b"short", 1, 1),), b""), "account size"),
        (lambda: CancelOrder(True), "bool id"),
    ],
)
def test_bad_payload_fields(build, desc):
    with pytest.raises(BadRecord):
        build()


def test_bad_transaction_fields():
    payload = CancelOrder(1)
    public = PEERS[0].public_key_bytes()
    with pytest.raises(BadRecord):
        Transaction(TxKind.PLACE_ORDER, CHAIN_ID, public, 1, payload)  # kind mismatch
    with pytest.raises(BadRecord):
        Transaction(TxKind.CANCEL_ORDER, "", public, 1, payload)
    with pytest.raises(BadRecord):
        Transaction(TxKind.CANCEL_ORDER, CHAIN_ID, public[:31], 1, payload)
    with pytest.raises(BadRecord):
        Transaction(TxKind.CANCEL_ORDER, CHAIN_ID, public, -1, payload)
    with pytest.raises(BadRecord):
        Transaction(TxKind.CANCEL_ORDER, CHAIN_ID, public, 2**64, payload)


def _rewrap(signed, mutate_body=None, mutate_outer=None):
    """Re-encode a transaction after changing its decoded body or envelope."""
    body = decode(signed.body)
    if mutate_body:
        mutate_body(body)
    outer = [1, 1, encode(body), signed.signature]
    if mutate_outer:
        mutate_outer(outer)
    return encode(outer)


@pytest.mark.parametrize(
    ("desc", "mutate_body", "mutate_outer"),
    [
        ("unknown kind", lambda b: b.__setitem__(1, 99), None),
        ("body version 2", lambda b: b.__setitem__(0, 2), None),
        ("sender 31 bytes", lambda b: b.__setitem__(3, b[3][:31]), None),
        ("negative nonce", lambda b: b.__setitem__(4, -1), None),
        ("payload missing a field", lambda b: b[5].pop(), None),
        ("payload extra field", lambda b: b[5].append(0), None),
        ("payload not an array", lambda b: b.__setitem__(5, b"x"), None),
        ("chain id as bytes", lambda b: b.__setitem__(2, b"p2pex-test"), None),
        ("envelope kind 2", None, lambda o: o.__setitem__(1, 2)),
        ("signature 63 bytes", None, lambda o: o.__setitem__(3, o[3][:63])),
        ("body as str", None, lambda o: o.__setitem__(2, "body")),
        ("extra envelope field", None, lambda o: o.append(b"")),
    ],
)
def test_wrong_shapes_give_bad_record(desc, mutate_body, mutate_outer):
    data = _rewrap(_signed(), mutate_body, mutate_outer)
    with pytest.raises(BadRecord):
        decode_transaction(data)


def test_non_canonical_body_inside_a_canonical_envelope():
    signed = _signed()
    # nonce 1 written as uint8 0xcc01 inside the body bytes
    fields = decode(signed.body)
    head = encode(fields[:4])[1:]  # the first four fields without the array header
    body = b"\x96" + head + b"\xcc\x01" + encode(fields[5])
    assert decode(body.replace(b"\xcc\x01", b"\x01", 1)) == fields
    data = encode([1, 1, body, signed.signature])
    with pytest.raises(NonCanonicalEncoding):
        decode_transaction(data)


RECORDS = [
    TradeRecord(bytes(32), "electricity", 4, 130, 750, ACCOUNT, PEERS[1].account_id, 11, 12),
    RejectionRecord(bytes(32), "self_trade"),
    SettlementRecord("heat", 4, ACCOUNT, -200, 26_000),
    EventRecord(bytes(32), "cancelled", ACCOUNT, (11, 250)),
    EventRecord(bytes(32), "expired", b"", ()),
]


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: type(r).__name__)
def test_results_round_trip(record):
    assert decode_result(record.to_bytes()) == record


def test_result_accounts():
    trade, rejection, settlement, event, anonymous = RECORDS
    assert trade.accounts() == (ACCOUNT, PEERS[1].account_id)
    assert rejection.accounts() == ()
    assert settlement.accounts() == (ACCOUNT,)
    assert event.accounts() == (ACCOUNT,)
    assert anonymous.accounts() == ()
    self_trade = TradeRecord(bytes(32), "heat", 1, 1, 1, ACCOUNT, ACCOUNT, 1, 2)
    assert self_trade.accounts() == (ACCOUNT,)


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: type(r).__name__)
def test_result_accounts_without_building_the_record(record):
    assert result_accounts(record.to_bytes()) == (record.KIND, record.accounts())


accounts = st.sampled_from([ACCOUNT, PEERS[1].account_id, PEERS[2].account_id])
amounts = st.integers(-(2**40), 2**40)
any_record = st.one_of(
    st.builds(
        TradeRecord,
        st.binary(min_size=32, max_size=32),
        st.sampled_from(["electricity", "heat"]),
        st.integers(0, 2**31),
        st.integers(1, 10_000),
        st.integers(1, 10**9),
        accounts,
        accounts,
        st.integers(0, 2**40),
        st.integers(0, 2**40),
    ),
    st.builds(RejectionRecord, st.binary(min_size=32, max_size=32), st.just("self_trade")),
    st.builds(SettlementRecord, st.just("heat"), st.integers(0, 99), accounts, amounts, amounts),
    st.builds(
        EventRecord,
        st.binary(min_size=32, max_size=32),
        st.sampled_from(["accepted", "cancelled", "expired"]),
        st.one_of(st.just(b""), accounts),
        st.lists(amounts, max_size=4).map(tuple),
    ),
)


@given(any_record)
def test_result_accounts_agree_with_the_decoded_record(record):
    decoded = decode_result(record.to_bytes())
    assert result_accounts(record.to_bytes()) == (decoded.KIND, decoded.accounts())


@pytest.mark.parametrize(
    "fields",
    [
        [1, 99, b""],
        [2, 17, bytes(32), "x"],
        [1, 17, bytes(32)],
        [1, 17, bytes(31), "x"],
        [1],
        [1, 17, bytes(32), "x", 1],
    ],
    ids=["unknown-kind", "version-2", "missing-field", "short-tx-id", "no-kind", "extra-field"],
)
def test_bad_results(fields):
    with pytest.raises(BadRecord):
        decode_result(encode(fields))
    with pytest.raises(BadRecord):
        result_accounts(encode(fields))


def test_envelope_fast_path_and_its_fallback():
    # bodies of every bin size class round-trip
    for size in (10, 300, 70_000):
        payload = SetNetwork("x" * size)
        tx = Transaction(TxKind.SET_NETWORK, CHAIN_ID, OPERATOR.public_key_bytes(), 1, payload)
        signed = sign_transaction(OPERATOR, tx)
        assert decode_transaction(signed.to_bytes()) == signed
        assert parse_transaction(signed.to_bytes())[4] == signed.body
    # a short body written as bin16 is valid msgpack but not canonical
    signed = _signed()
    data = signed.to_bytes()
    head = bytes([0x94, 1, 1, 0xC5]) + len(signed.body).to_bytes(2, "big")
    longer = head + data[5:]
    assert data[3] == 0xC4
    with pytest.raises(NonCanonicalEncoding):
        parse_transaction(longer)
    with pytest.raises(NonCanonicalEncoding):
        decode_transaction(longer)


@pytest.mark.parametrize("payload", PAYLOADS, ids=lambda p: type(p).__name__)
def test_compiled_checks_agree_with_the_specs(payload):
    fast = compile_checker(payload.SPECS)
    values = decode(encode(fields_to_values(payload, payload.SPECS)))
    has_lists = type(payload).__name__ in {"DeclareChp", "PublishClearing"}
    assert fast(values) is not has_lists  # list fields always take the slow path
    check_values(payload.SPECS, values, "x")
    # any single field replaced by a value of another type or range fails both ways
    for i in range(len(values)):
        for bad in (2**63, -(2**63) - 1, "x" * 70_000, b"y" * 33, [1], "gas", 2):
            changed = [*values[:i], bad, *values[i + 1 :]]
            try:
                check_values(payload.SPECS, changed, "x")
            except BadRecord:
                assert not fast(changed), (i, bad)
