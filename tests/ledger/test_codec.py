"""Canonical encoding: round trips, and every kind of bad input gives its typed error."""

from __future__ import annotations

import contextlib

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger import (
    BadRecord,
    DecodeError,
    EncodeError,
    LedgerError,
    MalformedData,
    NonCanonicalEncoding,
    OversizedData,
    TrailingBytes,
    UnexpectedType,
    decode,
    decode_block,
    decode_transaction,
    encode,
)
from ledger.audit import decode_inclusion_proof
from ledger.block import decode_header
from ledger.codec import MAX_DEPTH, decode_record
from ledger.results import decode_result, peek_result_kind
from tests.ledger.chainkit import make_chain

scalars = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.binary(max_size=300),
    st.text(max_size=300),
)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=5), max_leaves=30)


@given(values)
def test_round_trip(value):
    data = encode(value)
    assert decode(data) == value
    assert encode(decode(data)) == data


def test_tuples_encode_as_arrays():
    assert encode((1, (b"x", "y"))) == encode([1, [b"x", "y"]])


def test_known_bytes():
    # Hand-read from the msgpack spec: fixarray(4), 1, 2, bin8 len 2, fixstr len 2.
    assert encode([1, 2, b"ab", "cd"]) == bytes.fromhex("940102c4026162a26364")
    assert encode(2**64 - 1) == bytes.fromhex("cfffffffffffffffff")
    assert encode(-(2**63)) == bytes.fromhex("d38000000000000000")


@pytest.mark.parametrize(
    "value",
    [1.5, True, None, {"a": 1}, bytearray(b"x"), 2**64, -(2**63) - 1, [1, [2.0]], {1, 2}],
    ids=["float", "bool", "none", "dict", "bytearray", "too-big", "too-small", "nested", "set"],
)
def test_encode_refuses(value):
    with pytest.raises(EncodeError):
        encode(value)


def test_encode_refuses_deep_nesting():
    value: list = []
    for _ in range(MAX_DEPTH + 1):
        value = [value]
    with pytest.raises(EncodeError):
        encode(value)


DECODERS = [
    decode,
    decode_transaction,
    decode_block,
    decode_header,
    decode_result,
    decode_inclusion_proof,
]


# (description, hex bytes, expected error)
BAD_INPUTS = [
    ("empty input", "", MalformedData),
    ("reserved byte 0xc1", "c1", MalformedData),
    ("truncated uint32", "ce0000", MalformedData),
    ("truncated array", "930102", MalformedData),
    ("bin8 claims 5 bytes, has 2", "c4056162", MalformedData),
    ("invalid utf-8 in str", "a2c328", MalformedData),
    ("array32 claiming 2**32-1 items", "ddffffffff", MalformedData),
    ("trailing byte", "0100", TrailingBytes),
    ("two values", "9101c0", TrailingBytes),
    ("int 1 as uint8", "cc01", NonCanonicalEncoding),
    ("int 1 as int8", "d001", NonCanonicalEncoding),
    ("int 1 as uint64", "cf0000000000000001", NonCanonicalEncoding),
    ("-1 as int16", "d1ffff", NonCanonicalEncoding),
    ("short str as str8", "d9026364", NonCanonicalEncoding),
    ("short array as array16", "dc000101", NonCanonicalEncoding),
    ("bin as bin16", "c500026162", NonCanonicalEncoding),
    ("map", "81a16101", UnexpectedType),
    ("empty map", "80", UnexpectedType),
    ("float64", "cb3ff8000000000000", UnexpectedType),
    ("float32", "ca3fc00000", UnexpectedType),
    ("nil", "c0", UnexpectedType),
    ("true", "c3", UnexpectedType),
    ("float inside an array", "9201cb3ff8000000000000", UnexpectedType),
    ("fixext1", "d40101", UnexpectedType),
    ("timestamp ext", "d6ff00000001", UnexpectedType),
    ("map with int key", "810101", MalformedData),  # strict_map_key refuses it first
]


@pytest.mark.parametrize(("desc", "hexdata", "error"), BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_input_gives_its_error(desc, hexdata, error):
    with pytest.raises(error) as info:
        decode(bytes.fromhex(hexdata))
    # exactly that error class, not a sibling
    assert type(info.value) is error, desc


def test_oversized_is_refused_before_parsing():
    data = encode(b"x" * 100)
    with pytest.raises(OversizedData) as info:
        decode(data, max_size=50)
    assert (info.value.expected, info.value.found) == (50, len(data))
    assert decode(data, max_size=len(data)) == b"x" * 100


def test_deep_nesting_is_refused():
    data = b"\x91" * (MAX_DEPTH + 1) + b"\x01"
    with pytest.raises(MalformedData):
        decode(data)
    data = b"\x91" * 5000 + b"\x01"  # beyond msgpack's own stack limit
    with pytest.raises(MalformedData):
        decode(data)


@pytest.mark.parametrize("decoder", DECODERS, ids=lambda d: d.__name__)
@pytest.mark.parametrize("value", [bytearray(b"\x01"), None, "text", 5], ids=repr)
def test_non_bytes_input_is_refused(decoder, value):
    with pytest.raises(MalformedData):
        decoder(value)


def test_decode_record_still_checks_canonical_form():
    with pytest.raises(NonCanonicalEncoding):
        decode_record(bytes.fromhex("cc01"))
    # it leaves the type walk to the record decoders
    assert decode_record(bytes.fromhex("c0")) is None  # type: ignore[comparison-overlap]


@given(st.binary(max_size=400))
def test_random_bytes_only_raise_ledger_errors(data):
    for decoder in DECODERS:
        try:
            decoder(data)
        except LedgerError as exc:
            assert isinstance(exc, DecodeError)


@given(values)
def test_well_formed_values_of_the_wrong_shape_give_bad_record(value):
    data = encode(value)
    for decoder in DECODERS[1:]:
        with pytest.raises(BadRecord):
            decoder(data)


@given(st.recursive(st.one_of(st.none(), st.booleans(), st.floats(), scalars), st.lists))
def test_any_msgpack_only_raises_decode_errors(value):
    data = msgpack.packb(value, use_bin_type=True)
    for decoder in DECODERS:
        with contextlib.suppress(DecodeError):
            decoder(data)


def _valid_samples() -> list[bytes]:
    block = make_chain(2, 2)[1]
    return [block.to_bytes(), block.header.to_bytes(), *block.transactions, *block.results]


SAMPLES = _valid_samples()


@given(st.data())
def test_mutated_valid_records_only_raise_decode_errors(data):
    sample = data.draw(st.sampled_from(SAMPLES))
    mutated = bytearray(sample)
    for _ in range(data.draw(st.integers(1, 3))):
        position = data.draw(st.integers(0, len(mutated) - 1))
        mutated[position] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(mutated)))
    for candidate in (bytes(mutated), bytes(mutated[:cut]), bytes(mutated) + b"\x00"):
        for decoder in DECODERS:
            with contextlib.suppress(DecodeError):
                decoder(candidate)


RESULT_SAMPLES = [result for block in make_chain(6, 4) for result in block.results]


def test_peek_result_kind_reads_each_kind_off_the_bytes():
    kinds = {peek_result_kind(data) for data in RESULT_SAMPLES}
    assert kinds == {16, 17, 18, 19}  # trade, rejection, settlement, event
    for data in RESULT_SAMPLES:
        assert peek_result_kind(data) == decode_result(data).KIND
    for data in (b"", b"\x92", b"\x93\x02\x10", b"\x93\x01\xcc\x80", b"\x80\x01\x10", b"\xa3abc"):
        assert peek_result_kind(data) is None


@given(st.data())
def test_peek_result_kind_agrees_with_decoding_whenever_decoding_succeeds(data):
    mutated = bytearray(data.draw(st.sampled_from(RESULT_SAMPLES)))
    position = data.draw(st.integers(0, len(mutated) - 1))
    mutated[position] = data.draw(st.integers(0, 255))
    try:
        record = decode_result(bytes(mutated))
    except DecodeError:
        return
    assert peek_result_kind(bytes(mutated)) == record.KIND
