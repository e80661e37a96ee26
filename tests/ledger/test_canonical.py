"""One value, one encoding: every accepted record re-encodes to exactly its received bytes.

The class of defect: a field type with two accepted encodings (a msgpack
boolean where the int 0 / 1 is meant, a float for an int, bin for str, a
wider int form, a map, an extension value, trailing bytes...) gives one
order two valid byte strings and two transaction ids. The property checked
here for transactions, results, headers and blocks: whatever the decoder
accepts, re-encoding the decoded record gives the received bytes.
"""

from __future__ import annotations

import hashlib
import struct

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger import (
    BadRecord,
    CancelOrder,
    DecodeError,
    EncodeError,
    MalformedBlockContent,
    PlaceOrder,
    RejectionRecord,
    SigningKey,
    Transaction,
    TxKind,
    build_block,
    decode_block,
    decode_result,
    decode_transaction,
    encode,
    sign_transaction,
    validate_block,
)
from ledger.block import decode_header
from ledger.results import check_result, result_accounts
from ledger.transactions import TX_DOMAIN_TAG, parse_transaction
from tests.ledger.chainkit import CHAIN_ID, OPERATOR, PEERS, T0, make_chain
from tests.ledger.test_transactions import PAYLOADS
from tests.ledger.test_transactions import RECORDS as RESULT_RECORDS


class Wide(int):
    """An int the test encoder writes in its 8-byte form (valid msgpack, not canonical)."""


def pack(value: object) -> bytes:
    """A permissive msgpack writer: bools, floats, nil, maps, ext values and wide ints too."""
    if isinstance(value, Wide):
        return (
            (b"\xd3" + struct.pack(">q", value))
            if value < 0
            else b"\xcf" + struct.pack(">Q", value)
        )
    if isinstance(value, list | tuple):
        n = len(value)
        head = bytes([0x90 | n]) if n < 16 else b"\xdc" + struct.pack(">H", n)
        return head + b"".join(pack(item) for item in value)
    if isinstance(value, dict):
        n = len(value)
        return bytes([0x80 | n]) + b"".join(pack(k) + pack(v) for k, v in value.items())
    return msgpack.packb(value, use_bin_type=True)


def signed_from_body(key: SigningKey, body_values: list[object]) -> bytes:
    """The envelope of a body written by ``pack``, correctly signed by ``key``."""
    body = pack(body_values)
    signature = key.sign(TX_DOMAIN_TAG + body)
    return msgpack.packb([1, 1, body, signature], use_bin_type=True)


def body_values(
    payload_values: list[object], key: SigningKey, kind: int, nonce: int = 5
) -> list[object]:
    return [1, kind, CHAIN_ID, key.public_key_bytes(), nonce, payload_values]


def canonical_values(payload: object) -> list[object]:
    from ledger.fields import fields_to_values

    return list(fields_to_values(payload, payload.SPECS))  # type: ignore[attr-defined]


def alternatives(value: object) -> list[object]:
    """Other msgpack values a lax decoder could read as the same Python value."""
    found: list[object] = []
    if type(value) is int:
        found += [Wide(value), float(value)]
        if value in (0, 1):
            found.append(bool(value))
    elif type(value) is str:
        found += [value.encode(), [value]]
    elif type(value) is bytes:
        found += [bytearray(value)]
        if value.isascii():
            found.append(value.decode())
    elif type(value) is list:
        found += [tuple(value), dict(enumerate(value))]
        for i, item in enumerate(value):
            found += [[*value[:i], alt, *value[i + 1 :]] for alt in alternatives(item)]
    found += [None, msgpack.ExtType(1, b"x")]
    return found


def assert_accepted_means_canonical(data: bytes) -> None:
    """The transaction property: refused, or its re-encoding is exactly ``data``."""
    try:
        signed = decode_transaction(data)
    except DecodeError:
        with pytest.raises(DecodeError):
            parse_transaction(data)
        return
    tx = signed.transaction
    rebuilt = sign_transaction(PEERS[0], tx) if tx.sender == PEERS[0].public_key_bytes() else None
    assert tx.body_bytes() == signed.body, "accepted a body that is not its value's encoding"
    if rebuilt is not None:
        assert rebuilt.to_bytes() == data
        assert rebuilt.tx_id == signed.tx_id


def test_post_only_as_a_msgpack_boolean_is_refused_everywhere():
    # the case: a correctly re-signed PlaceOrder with post_only = msgpack true
    key = PEERS[0]
    payload = PlaceOrder("electricity", 7, "bid", 120, 1000, "GTC", 0, True, "", 1)
    good = sign_transaction(
        key, Transaction(TxKind.PLACE_ORDER, CHAIN_ID, key.public_key_bytes(), 1, payload)
    )
    values = canonical_values(payload)
    assert values[7] == 1
    values[7] = True
    forged = signed_from_body(key, body_values(values, key, TxKind.PLACE_ORDER, nonce=1))
    assert forged != good.to_bytes()
    with pytest.raises(DecodeError, match="post_only"):
        decode_transaction(forged)
    with pytest.raises(DecodeError, match="post_only"):
        parse_transaction(forged)
    block = build_block(OPERATOR, chain_id=CHAIN_ID, parent=None, time_ns=T0, transactions=[forged])
    with pytest.raises(MalformedBlockContent) as info:
        validate_block(
            block, None, chain_id=CHAIN_ID, authorised_proposers={OPERATOR.public_key_bytes()}
        )
    assert info.value.index == 0
    # and the canonical form still passes
    block = build_block(OPERATOR, chain_id=CHAIN_ID, parent=None, time_ns=T0, transactions=[good])
    validate_block(
        block, None, chain_id=CHAIN_ID, authorised_proposers={OPERATOR.public_key_bytes()}
    )


@pytest.mark.parametrize("payload", PAYLOADS, ids=lambda p: type(p).__name__)
def test_every_other_encoding_of_a_payload_field_is_refused(payload):
    key = PEERS[0]
    values = canonical_values(payload)
    canonical = signed_from_body(key, body_values(values, key, payload.KIND))
    assert decode_transaction(canonical).transaction.payload == payload
    tried = 0
    for i, value in enumerate(values):
        for alt in alternatives(value):
            changed = [*values[:i], alt, *values[i + 1 :]]
            data = signed_from_body(key, body_values(changed, key, payload.KIND))
            assert_accepted_means_canonical(data)
            tried += 1
    assert tried >= 3 * len(values)


def test_other_encodings_of_the_body_and_envelope_fields_are_refused():
    key = PEERS[0]
    payload = PAYLOADS[1]
    values = body_values(canonical_values(payload), key, payload.KIND)
    for i in range(5):  # version, kind, chain id, sender, nonce
        for alt in alternatives(values[i]):
            changed = [*values[:i], alt, *values[i + 1 :]]
            assert_accepted_means_canonical(signed_from_body(key, changed))
    body = pack(values)
    signature = key.sign(TX_DOMAIN_TAG + body)
    for envelope in (
        [True, 1, body, signature],
        [1, True, body, signature],
        [Wide(1), 1, body, signature],
        [1, 1, body.decode("latin-1"), signature],
        [1, 1, body, signature, b""],
    ):
        assert_accepted_means_canonical(pack(envelope))
    good = msgpack.packb([1, 1, body, signature], use_bin_type=True)
    for extra in (b"\x00", b"\xc0", b"\x90"):
        assert_accepted_means_canonical(good + extra)


field_values = st.recursive(
    st.one_of(
        st.booleans(),
        st.none(),
        st.floats(allow_nan=False),
        st.integers(min_value=-(2**63), max_value=2**64 - 1),
        st.integers(min_value=-(2**63), max_value=2**63 - 1).map(Wide),
        st.binary(max_size=40),
        st.text(max_size=40),
        st.builds(msgpack.ExtType, st.integers(0, 127), st.binary(max_size=4)),
    ),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=10,
)


@given(st.sampled_from(PAYLOADS), st.data())
def test_any_field_replacement_accepted_only_if_canonical(payload, data):
    key = PEERS[0]
    values = canonical_values(payload)
    i = data.draw(st.integers(0, len(values) - 1))
    changed = [*values[:i], data.draw(field_values), *values[i + 1 :]]
    assert_accepted_means_canonical(signed_from_body(key, body_values(changed, key, payload.KIND)))


def assert_result_accepted_means_canonical(data: bytes) -> None:
    try:
        record = decode_result(data)
    except DecodeError:
        with pytest.raises(DecodeError):
            check_result(data)
        with pytest.raises(DecodeError):
            result_accounts(data)
        return
    assert record.to_bytes() == data, "accepted a result that is not its value's encoding"


@pytest.mark.parametrize("record", RESULT_RECORDS, ids=lambda r: type(r).__name__)
def test_every_other_encoding_of_a_result_field_is_refused(record):
    values = msgpack.unpackb(record.to_bytes())
    assert decode_result(pack(values)) == record
    for i, value in enumerate(values):
        for alt in alternatives(value):
            assert_result_accepted_means_canonical(pack([*values[:i], alt, *values[i + 1 :]]))


@given(st.sampled_from(RESULT_RECORDS), st.data())
def test_any_result_field_replacement_accepted_only_if_canonical(record, data):
    values = msgpack.unpackb(record.to_bytes())
    i = data.draw(st.integers(0, len(values) - 1))
    changed = [*values[:i], data.draw(field_values), *values[i + 1 :]]
    assert_result_accepted_means_canonical(pack(changed))


def test_every_other_encoding_of_a_header_or_block_field_is_refused():
    block = make_chain(2)[1]
    header = msgpack.unpackb(block.header.to_bytes())
    for i, value in enumerate(header):
        for alt in alternatives(value):
            data = pack([*header[:i], alt, *header[i + 1 :]])
            try:
                decoded = decode_header(data)
            except DecodeError:
                continue
            assert decoded.to_bytes() == data
    outer = msgpack.unpackb(block.to_bytes())
    for i, value in enumerate(outer):
        for alt in alternatives(value):
            data = pack([*outer[:i], alt, *outer[i + 1 :]])
            try:
                decoded_block = decode_block(data)
            except DecodeError:
                continue
            assert decoded_block.to_bytes() == data
            assert hashlib.sha256(decoded_block.header.to_bytes()).digest()


def test_a_str_without_an_encoding_is_a_typed_error_not_a_unicode_error():
    # a lone surrogate is a valid Python str with no UTF-8 bytes: no canonical form at all
    key = PEERS[0]
    sender = key.public_key_bytes()
    with pytest.raises(BadRecord, match="stp"):
        PlaceOrder("electricity", 1, "bid", 1, 1, "GTC", 0, False, "\ud800", 1)
    with pytest.raises(BadRecord, match="chain id"):
        Transaction(TxKind.CANCEL_ORDER, "x\ud800", sender, 1, CancelOrder(1))
    with pytest.raises(BadRecord, match="reason"):
        RejectionRecord(bytes(32), "\udc80")
    with pytest.raises(BadRecord, match="chain id"):
        build_block(OPERATOR, chain_id="\ud800", parent=None, time_ns=T0, transactions=[])
    with pytest.raises(EncodeError):
        encode(["\ud800"])
    assert (
        decode_transaction(
            sign_transaction(
                key, Transaction(TxKind.CANCEL_ORDER, "é-chain", sender, 1, CancelOrder(1))
            ).to_bytes()
        ).transaction.chain_id
        == "é-chain"
    )
