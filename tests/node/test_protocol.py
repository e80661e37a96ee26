"""The wire codec: canonical messages, shapes, frame limits."""

from __future__ import annotations

import contextlib

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from node.errors import FrameTooLarge, MalformedMessage
from node.protocol import (
    HEADER,
    ErrorReply,
    Event,
    Reply,
    Request,
    decode_message,
    encode_message,
    error_body,
    event_body,
    frame,
    frame_length,
    parse_message,
    reply_body,
    request_body,
)
from orderbook.types import Side, STPMode

values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.text(max_size=20)
    | st.binary(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=20,
)


@given(st.integers(0, 2**32), st.text(max_size=10), st.dictionaries(st.text(max_size=5), values))
def test_request_round_trip(request_id, command, args):
    message = parse_message(request_body(request_id, command, args))
    assert message == Request(request_id, command, dict(sorted(args.items())))


def test_each_kind_round_trips():
    assert parse_message(reply_body(3, {"x": [1, b"y"]})) == Reply(3, {"x": [1, b"y"]})
    assert parse_message(error_body(3, "bad_nonce", "nonce 1, want 2")) == ErrorReply(
        3, "bad_nonce", "nonce 1, want 2"
    )
    assert parse_message(event_body(9, "block", {"height": 4})) == Event(9, "block", {"height": 4})


def test_map_keys_are_sorted_so_encoding_is_unique():
    assert encode_message([1, 1, {"b": 1, "a": 2}]) == encode_message([1, 1, {"a": 2, "b": 1}])


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"", "not one msgpack value"),
        (b"\xc1", "not one msgpack value"),
        (msgpack.packb([1, 1, {}]) + b"\x00", "not one msgpack value"),
        (msgpack.packb({"a": 1}), "non-empty array"),
        (msgpack.packb([1, 1, {"b": 1, "a": 2}]), "canonical"),
        (msgpack.packb([1, 1, {"a": 1.5}]), "not a protocol value"),
        (msgpack.packb([7, 1, {}]), "unknown message kind"),
        (msgpack.packb([0, 1, "x"]), "wrong shape"),
        (msgpack.packb([0, True, "x", {}]), "wrong shape"),
        (msgpack.packb([1, 1, {1: 2}], strict_types=False), "not one msgpack value"),
        (b"\x93\xd9\x05ab", "not one msgpack value"),  # truncated str8
    ],
)
def test_malformed_bodies_are_refused(body, why):
    with pytest.raises(MalformedMessage, match=why):
        decode_message(body)


def test_non_shortest_int_is_not_canonical():
    body = b"\x93\x01\xcd\x00\x01\x80"  # [1, uint16(1), {}]: 1 fits a fixint
    with pytest.raises(MalformedMessage, match="canonical"):
        decode_message(body)


def test_unsupported_types_cannot_be_sent():
    with pytest.raises(MalformedMessage):
        encode_message([1, 1, {"x": 1.0}])
    with pytest.raises(MalformedMessage):
        encode_message([1, 1, {"x": 2**64}])


def test_frame_limit_is_checked_on_both_sides():
    assert frame(b"abc", 3) == b"\x00\x00\x00\x03abc"
    with pytest.raises(FrameTooLarge) as exc:
        frame(b"abcd", 3)
    assert (exc.value.size, exc.value.limit) == (4, 3)
    assert frame_length(HEADER.pack(3), 3) == 3
    with pytest.raises(FrameTooLarge):
        frame_length(HEADER.pack(2**32 - 1), 1 << 20)


@given(st.binary(max_size=200))
def test_any_bytes_decode_or_raise_malformed(data):
    with contextlib.suppress(MalformedMessage):
        parse_message(data)


@given(st.binary(min_size=1, max_size=60), st.integers(0, 59))
def test_flipped_bytes_of_a_valid_message_never_crash(payload, position):
    body = bytearray(request_body(9, "submit", {"tx": payload}))
    body[position % len(body)] ^= 0xFF
    try:
        message = parse_message(bytes(body))
    except MalformedMessage:
        return
    assert isinstance(message, Request | Reply | ErrorReply | Event)


def naive_canonical(value, depth=0):
    """The reference: an isinstance walk that sorts map keys and checks types."""
    if value is None or isinstance(value, bool | str | bytes):
        return value
    if isinstance(value, int):
        if not -(2**63) <= value < 2**64:
            raise MalformedMessage("int range")
        return int(value)
    if depth >= 16:
        raise MalformedMessage("depth")
    if isinstance(value, list | tuple):
        return [naive_canonical(v, depth + 1) for v in value]
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise MalformedMessage("key")
        return {k: naive_canonical(value[k], depth + 1) for k in sorted(value)}
    raise MalformedMessage("type")


outgoing = st.recursive(
    values
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.sampled_from([Side.BID, STPMode.DECREMENT, frozenset()]),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=3).map(tuple)
        | st.dictionaries(st.text(max_size=5) | st.integers(0, 3), inner, max_size=4)
    ),
    max_leaves=25,
)


@given(outgoing)
def test_encoding_agrees_with_a_naive_walk(value):
    """Same bytes as the reference for protocol values, MalformedMessage for the rest."""
    try:
        expected = msgpack.packb(naive_canonical([1, 1, {"v": value}]), use_bin_type=True)
    except MalformedMessage:
        with pytest.raises(MalformedMessage):
            encode_message([1, 1, {"v": value}])
    else:
        assert encode_message([1, 1, {"v": value}]) == expected
