"""The wire codec: canonical messages, shapes, frame limits."""

from __future__ import annotations

import contextlib

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from node.errors import FrameTooLarge, MalformedMessage
from node.wire.protocol import (
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


def _reference_decode(data: bytes) -> object:
    """The naive canonical check: re-encode the decoded value and compare the bytes."""
    try:
        value = msgpack.unpackb(data, raw=False, use_list=True, strict_map_key=True)
    except Exception as exc:
        raise MalformedMessage(str(exc)) from exc
    if not isinstance(value, list) or not value:
        raise MalformedMessage("not a non-empty array")
    if encode_message(value) != data:  # raises MalformedMessage for a non-protocol value
        raise MalformedMessage("not canonical")
    kind = value[0]
    shapes = {0: (int, int, str, dict), 1: (int, int, dict), 2: (int, int, str, str)}
    shapes[3] = (int, int, str, dict)
    shape = shapes.get(kind) if type(kind) is int else None
    if shape is None or len(value) != len(shape):
        raise MalformedMessage("shape")
    if not all(type(item) is want for item, want in zip(value, shape, strict=True)):
        raise MalformedMessage("shape")
    if value[1] < 0:  # ids (and subscriptions) are unsigned
        raise MalformedMessage("negative id")
    return value


def _verdict(decode, data: bytes) -> object:
    try:
        return decode(data)
    except MalformedMessage:
        return MalformedMessage


_VALID_LEAF = (
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.text(max_size=4)
) | st.binary(max_size=4)
# Maps keep insertion order when packed, so unsorted maps occur as often as sorted ones.
_VALID = st.recursive(
    _VALID_LEAF,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner, max_size=4)
    ),
    max_leaves=12,
)
# ... and, less often, what no protocol value holds: floats, bytes map keys.
_VALUE = st.recursive(
    _VALID_LEAF | st.floats(allow_nan=False),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=3) | st.binary(max_size=2), inner, max_size=4)
    ),
    max_leaves=12,
)
_MAP = st.dictionaries(st.text(max_size=3), _VALID, max_size=5) | st.dictionaries(
    st.text(max_size=3) | st.binary(max_size=2), _VALUE, max_size=4
)
_ID = st.integers(-(2**63), 2**64 - 1)
_MESSAGE = st.one_of(
    # the four shapes, with any values inside: the canonical check decides
    st.builds(lambda i, c, m: [0, i, c, m], _ID, st.text(max_size=3), _MAP),
    st.builds(lambda i, m: [1, i, m], _ID, _MAP),
    st.builds(lambda i, c, t: [2, i, c, t], _ID, st.text(max_size=3), st.text(max_size=3)),
    st.builds(lambda i, t, m: [3, i, t, m], _ID, st.text(max_size=3), _MAP),
    # anything else
    st.tuples(st.sampled_from([0, 1, 2, 3, 7, True]), st.lists(_VALUE, max_size=3)).map(
        lambda parts: [parts[0], *parts[1]]
    ),
)


@given(_MESSAGE)
def test_the_canonical_check_agrees_with_re_encoding(message):
    data = msgpack.packb(message, use_bin_type=True)
    assert _verdict(decode_message, data) == _verdict(_reference_decode, data)


def test_map_keys_must_be_strings_and_sorted_at_any_depth():
    nested_unsorted = msgpack.packb([1, 1, {"a": [{"y": 1, "x": 2}]}])
    with pytest.raises(MalformedMessage, match="canonical"):
        decode_message(nested_unsorted)
    for keys in ({b"k": 1}, {"a": 1, b"b": 2}, {b"a": 1, "b": 2}):
        with pytest.raises(MalformedMessage, match="not a string"):
            decode_message(msgpack.packb([1, 1, {"x": keys}], use_bin_type=True))


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
        # sorted as built: encode_message sends these without copying them
        | st.dictionaries(st.text(max_size=5), inner, max_size=4).map(
            lambda d: dict(sorted(d.items()))
        )
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


def test_a_map_already_canonical_is_encoded_as_it_is():
    from node.wire.protocol import _canonical

    built_sorted = {"a": 1, "b": "x", "c": b"y", "d": None}
    assert _canonical(built_sorted) is built_sorted
    unsorted = {"b": 1, "a": 2}
    assert list(_canonical(unsorted)) == ["a", "b"]
    assert list(unsorted) == ["b", "a"]  # the caller's map is not reordered


def test_a_client_checks_the_shape_of_what_its_node_sends_not_the_form():
    unsorted = msgpack.packb([1, 4, {"b": 1, "a": 2}])
    long_int = b"\x93\x01\xcd\x00\x01\x80"  # [1, uint16(1), {}]
    assert parse_message(unsorted, canonical=False) == Reply(4, {"b": 1, "a": 2})
    assert parse_message(long_int, canonical=False) == Reply(1, {})
    for body, why in [
        (b"\xc1", "not one msgpack value"),
        (msgpack.packb([1, 1, {}]) + b"\x00", "not one msgpack value"),
        (msgpack.packb([7, 1, {}]), "unknown message kind"),
        (msgpack.packb([1, "x", {}]), "wrong shape"),
    ]:
        with pytest.raises(MalformedMessage, match=why):
            decode_message(body, canonical=False)


def test_negative_ids_are_refused():
    """Ids are unsigned: ``[0, -5, "ping", {}]`` is malformed, not a request to answer."""
    for body in (
        msgpack.packb([0, -5, "ping", {}]),
        msgpack.packb([1, -1, {}]),
        msgpack.packb([2, -(2**63), "x", "y"]),
        msgpack.packb([3, -2, "blocks", {}]),
    ):
        with pytest.raises(MalformedMessage, match="negative"):
            parse_message(body)
        with pytest.raises(MalformedMessage, match="negative"):
            parse_message(body, canonical=False)
    assert parse_message(msgpack.packb([0, 0, "ping", {}])) == Request(0, "ping", {})


def _empty_maps(count: int) -> bytes:
    """``[0, 1, "ping", {"x": [{}, {}, ...]}]`` with ``count`` empty maps."""
    header = b"\xdd" + count.to_bytes(4, "big")
    return msgpack.packb([0, 1, "ping", {"x": []}])[:-1] + header + b"\x80" * count


def _nested_lists(width: int, lists: int) -> bytes:
    """A request whose args hold ``lists`` arrays of ``width`` zeros each."""
    inner = b"\xdd" + width.to_bytes(4, "big") + b"\x00" * width
    outer = b"\xdd" + lists.to_bytes(4, "big") + inner * lists
    return msgpack.packb([0, 1, "ping", {"x": []}])[:-1] + outer


def test_decoding_stops_at_the_value_limit_whatever_the_frame_length():
    """Values (array elements plus map entries) are counted over every level."""
    from node.wire.protocol import MAX_REQUEST_VALUES

    def maps(count: int) -> bytes:
        return msgpack.packb([0, 1, "ping", {"x": [{}] * count}])

    within = maps(MAX_REQUEST_VALUES - 5)  # + 4 in the request array, 1 in args
    assert len(parse_message(within, max_values=MAX_REQUEST_VALUES).args["x"]) == 4091
    with pytest.raises(MalformedMessage, match="values"):
        parse_message(maps(MAX_REQUEST_VALUES - 4), max_values=MAX_REQUEST_VALUES)
    # one long array: refused from its header, before any element is built
    with pytest.raises(MalformedMessage, match="values"):
        parse_message(_empty_maps(8_000_000), max_values=MAX_REQUEST_VALUES)
    # many arrays each under the limit: refused once their sum exceeds it
    with pytest.raises(MalformedMessage, match=f"more than {MAX_REQUEST_VALUES} values"):
        parse_message(_nested_lists(1000, 50), max_values=MAX_REQUEST_VALUES)
    four = msgpack.packb([0, 1, "ping", {"x": [[0] * 1000] * 4}])
    assert parse_message(four, max_values=MAX_REQUEST_VALUES).args["x"] == [[0] * 1000] * 4


def test_an_eight_megabyte_frame_of_empty_maps_is_refused_cheaply():
    """The frame that stalled a node for 13 s: refused, whichever decoder limit applies."""
    body = _empty_maps(8 * 1024 * 1024 - 20)
    for max_values in (4_096, 1 << 18):
        with pytest.raises(MalformedMessage, match="values"):
            decode_message(body, max_values=max_values)


def test_deep_nesting_is_refused_with_a_reason():
    deep = msgpack.packb([0, 1, "ping", {}])[:-1] + b"\x81\xa1x" + b"\x91" * 5000 + b"\xc0"
    with pytest.raises(MalformedMessage, match="nested too deep"):
        parse_message(deep)
    nested = [0, 1, "ping", {"x": []}]
    leaf = nested[3]["x"]
    for _ in range(20):
        leaf.append([])
        leaf = leaf[0]
    with pytest.raises(MalformedMessage, match="deeper than 16"):
        parse_message(msgpack.packb(nested))


@given(st.binary(max_size=40))
def test_every_refusal_says_why(data):
    """No error ends with an empty detail (msgpack's FormatError and StackError say nothing)."""
    try:
        parse_message(data)
    except MalformedMessage as exc:
        text = str(exc)
        assert text and not text.endswith(": "), text
