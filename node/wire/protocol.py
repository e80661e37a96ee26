"""The wire protocol's messages, sans I/O: canonical msgpack bodies, error codes, limits.

Frames (a 4-byte length, then the body) are ``node.wire.frames``; their
names are re-exported here. This module turns a frame body into a message
and back, and is the one place bodies are decoded, within the limits a
message must respect (``MAX_DEPTH``, ``MAX_REQUEST_VALUES``,
``MAX_MESSAGE_VALUES``): a body within the frame limit still cannot cost
its receiver more than a bounded amount of work.

A body is one canonical msgpack message, a fixed-order array:

- ``[0, id, command, args]``  request (``args`` is a map with string keys)
- ``[1, id, result]``         reply to request ``id``
- ``[2, id, code, message]``  error reply to request ``id`` (``id`` 0 when the
  request could not be read at all)
- ``[3, sub, topic, data]``   event pushed on subscription ``sub``

Values are None, bool, int (64-bit), str, bytes, arrays and maps with string
keys. Canonical means: maps sorted by key, shortest msgpack forms, str and bin
kept apart; a received body is refused unless re-encoding its decoded value
gives the received bytes, so one message has exactly one encoding.
See ``docs/protocol.md`` for the commands.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import msgpack

from node.errors import MalformedMessage
from node.wire.frames import DEFAULT_MAX_FRAME as DEFAULT_MAX_FRAME
from node.wire.frames import HEADER as HEADER
from node.wire.frames import frame as frame
from node.wire.frames import frame_length as frame_length

PROTOCOL_VERSION: Final = 1
MAX_DEPTH: Final = 16  # nesting of arrays and maps in one message
# Values in one message: array elements plus map entries, over every level.
# The frame limit alone bounds them only by its length (8 million empty maps
# fit in 8 MiB, seconds and hundreds of MB to decode), so decoding stops at a count.
# A request's arguments are a few scalars (a transaction travels as one
# byte string); replies and events carry up to 10,000 trades of 10 fields.
MAX_REQUEST_VALUES: Final = 4_096
MAX_MESSAGE_VALUES: Final = 1 << 18

KIND_REQUEST: Final = 0
KIND_REPLY: Final = 1
KIND_ERROR: Final = 2
KIND_EVENT: Final = 3

# Stable error codes of error replies (docs/protocol.md lists their meaning).
E_MALFORMED: Final = "malformed"
E_FRAME_TOO_LARGE: Final = "frame_too_large"
E_UNKNOWN_COMMAND: Final = "unknown_command"
E_BAD_ARGUMENTS: Final = "bad_arguments"
E_BAD_SIGNATURE: Final = "bad_signature"
E_BAD_NONCE: Final = "bad_nonce"
E_BAD_TRANSACTION: Final = "bad_transaction"
E_NOT_PERMITTED: Final = "not_permitted"
E_WRONG_CHAIN: Final = "wrong_chain"
E_NOT_FOUND: Final = "not_found"
E_TIMEOUT: Final = "timeout"
E_UNAVAILABLE: Final = "unavailable"
E_OVERLOADED: Final = "overloaded"
E_INTERNAL: Final = "internal"

Value = Any  # a protocol value: None, bool, int, str, bytes, list, dict[str, Value]


_SCALARS: Final = frozenset({str, bytes, bool, type(None)})
_LEAVES: Final = _SCALARS | {int}  # decoded: an int is always in range
_STRINGS: Final = frozenset({str})


class CanonicalMap(dict[str, Value]):
    """A map its builder made canonical: string keys in sorted order, scalar values.

    ``encode_message`` sends it as it is, without looking inside: for maps
    built by code that guarantees the form, many per second (the order book
    events of every reply, ``node.wire.events``), where even checking the form
    cost more than packing the map. Integers are still range-checked by
    ``packb``.
    """

    __slots__ = ()


def _canonical(value: Value, depth: int = 0) -> Value:
    """Return ``value`` with maps in sorted key order; raise unless it is a protocol value.

    This runs for every message sent, so what is canonical already is
    returned as it is: a ``CanonicalMap`` unchecked, and, checked with
    C-level operations, a map whose keys are strings in sorted order and
    whose values are scalars, or an array of scalars.
    Integers are not range-checked here: ``encode_message``'s ``packb``
    refuses those outside [-2^63, 2^64 - 1], the protocol's range.
    """
    kind = type(value)
    if kind in _LEAVES or kind is CanonicalMap:
        return value
    if depth >= MAX_DEPTH:
        msg = f"message nested deeper than {MAX_DEPTH}"
        raise MalformedMessage(msg)
    if kind is dict:
        keys = list(value)
        if _STRINGS.issuperset(map(type, keys)) and keys == sorted(keys):
            if _LEAVES.issuperset(map(type, value.values())):
                return value
            return {
                key: item if type(item) in _LEAVES else _canonical(item, depth + 1)
                for key, item in value.items()
            }
    if kind is dict or isinstance(value, Mapping):
        return {key: _canonical(value[key], depth + 1) for key in sorted(value, key=_string_key)}
    if kind is list or kind is tuple:
        if _LEAVES.issuperset(map(type, value)):
            return value
        return [item if type(item) in _LEAVES else _canonical(item, depth + 1) for item in value]
    if isinstance(value, bool | str | bytes):  # a subclass, such as a StrEnum member
        return value
    if isinstance(value, int):  # an IntEnum member
        return int(value)
    msg = f"type {kind.__name__} is not a protocol value"
    raise MalformedMessage(msg)


def _check_decoded(value: Value, depth: int = 0) -> None:
    """Raise unless a decoded ``value`` is a protocol value with its maps in canonical order.

    The decoding side of ``_canonical``: it builds nothing. A map decodes
    with its keys in wire order, so keys in sorted order mean ``_canonical``
    would leave it as it is, and re-packing the value then gives the bytes
    ``encode_message`` would. Decoded integers always fit in 64 bits, and
    map keys are str or bytes (``strict_map_key``).
    """
    kind = type(value)
    if kind in _LEAVES:
        return
    if depth >= MAX_DEPTH:
        msg = f"message nested deeper than {MAX_DEPTH}"
        raise MalformedMessage(msg)
    if kind is dict:
        keys = list(value)
        try:
            in_order = keys == sorted(keys)
        except TypeError:  # str and bytes keys: not comparable
            in_order = False
        if keys and (not in_order or type(keys[0]) is not str):
            bad = next((key for key in keys if type(key) is not str), None)
            if bad is not None:
                msg = f"map key {bad!r} is not a string"
                raise MalformedMessage(msg)
            msg = "message is not canonically encoded"
            raise MalformedMessage(msg)
        items: Iterable[Value] = value.values()
    elif kind is list:
        items = value
    else:
        msg = f"type {kind.__name__} is not a protocol value"
        raise MalformedMessage(msg)
    if not _LEAVES.issuperset(map(type, items)):  # a container inside
        for item in items:
            if type(item) not in _LEAVES:
                _check_decoded(item, depth + 1)


def _string_key(key: object) -> str:
    """Sort key of a map key; raise unless it is a string."""
    if type(key) is not str:
        msg = f"map key {key!r} is not a string"
        raise MalformedMessage(msg)
    return key


def encode_message(message: list[Value]) -> bytes:
    """Return the canonical msgpack bytes of a message.

    >>> encode_message([1, 7, {"b": 1, "a": b"x"}]).hex()
    '93010782a161c40178a16201'
    """
    try:
        data: bytes = msgpack.packb(_canonical(message), use_bin_type=True)
    except OverflowError as exc:  # an integer outside [-2^63, 2^64 - 1]
        msg = f"integer out of the 64-bit range: {exc}"
        raise MalformedMessage(msg) from exc
    return data


def decode_message(
    data: bytes, *, canonical: bool = True, max_values: int = MAX_MESSAGE_VALUES
) -> list[Value]:
    """Decode one frame body and check that it is canonical.

    ``canonical=False`` skips the canonical-form check (key order, shortest
    forms, value types inside maps and arrays) and keeps the shape check: for
    a client reading its node's replies and events, where the form protects
    nothing (no signature covers an envelope) and the check cost more than
    the decoding itself (docs/performance.md).
    ``max_values`` bounds the work: decoding stops once the message holds
    more values (array elements plus map entries); a node reads requests
    with ``MAX_REQUEST_VALUES``.

    Raises:
        MalformedMessage: not msgpack, trailing bytes, too many values, not
            canonical, or not a message array of a known kind and shape.
    """
    value = _unpack(data, max_values)
    if not isinstance(value, list) or not value:
        msg = "message is not a non-empty array"
        raise MalformedMessage(msg)
    if canonical:
        # = encode_message(value) != data, without building sorted copies
        _check_decoded(value)
        if msgpack.packb(value, use_bin_type=True) != data:
            msg = "message is not canonically encoded"
            raise MalformedMessage(msg)
    _check_shape(value)
    return value


class _TooManyValues(Exception):
    """Raised by the decoding hooks of ``_unpack`` to stop at the value limit."""


def _unpack(data: bytes, max_values: int) -> Value:
    """Decode one msgpack value of at most ``max_values`` values; raise ``MalformedMessage``.

    Every value takes at least one byte, so a body no longer than the limit
    is decoded as it is. A longer one is decoded with a count: each array and
    map adds its length as it completes (no container may be longer than
    the limit), and decoding stops once the total exceeds the limit, having
    built at most twice the limit's values.
    """
    if len(data) <= max_values:
        try:
            return msgpack.unpackb(data, raw=False, use_list=True, strict_map_key=True)
        except Exception as exc:  # msgpack raises a few internal types on hostile input
            raise _not_msgpack(exc) from exc
    left = max_values

    def count(container: Any) -> Any:
        nonlocal left
        left -= len(container)
        if left < 0:
            raise _TooManyValues
        return container

    try:
        return msgpack.unpackb(
            data,
            raw=False,
            use_list=True,
            strict_map_key=True,
            max_array_len=max_values,
            max_map_len=max_values,
            list_hook=count,
            object_hook=count,
        )
    except _TooManyValues:
        msg = f"message holds more than {max_values} values"
        raise MalformedMessage(msg) from None
    except ValueError as exc:
        if "exceeds max_" in str(exc):  # one array or map longer than the limit, from its header
            msg = f"message holds more than {max_values} values ({exc})"
            raise MalformedMessage(msg) from exc
        raise _not_msgpack(exc) from exc
    except Exception as exc:
        raise _not_msgpack(exc) from exc


def _not_msgpack(exc: Exception) -> MalformedMessage:
    """The error for a body msgpack refused, naming why (some of its errors say nothing)."""
    detail = str(exc) or type(exc).__name__
    if isinstance(exc, msgpack.ExtraData):
        detail = "trailing bytes after the value"
    elif isinstance(exc, msgpack.StackError):
        detail = "nested too deep"
    return MalformedMessage(f"body is not one msgpack value: {detail}")


_SHAPES: Final[dict[int, tuple[type, ...]]] = {
    KIND_REQUEST: (int, int, str, dict),
    KIND_REPLY: (int, int, dict),
    KIND_ERROR: (int, int, str, str),
    KIND_EVENT: (int, int, str, dict),
}


def _check_shape(value: list[Value]) -> None:
    """Raise ``MalformedMessage`` unless ``value`` has a message kind's shape."""
    kind = value[0]
    if type(kind) is not int or kind not in _SHAPES:
        msg = f"unknown message kind {kind!r}"
        raise MalformedMessage(msg)
    shape = _SHAPES[kind]
    # decoded values: exact types (a bool is not an int here)
    ok = len(value) == len(shape) and all(
        type(item) is want for item, want in zip(value, shape, strict=True)
    )
    if not ok:
        msg = f"message of kind {kind} has the wrong shape"
        raise MalformedMessage(msg)
    if value[1] < 0:
        msg = f"message id {value[1]} is negative (ids are unsigned)"
        raise MalformedMessage(msg)


@dataclass(frozen=True, slots=True)
class Request:
    """A decoded request: ``[0, id, command, args]``."""

    request_id: int
    command: str
    args: dict[str, Value]


@dataclass(frozen=True, slots=True)
class Reply:
    """A decoded reply: ``[1, id, result]``."""

    request_id: int
    result: dict[str, Value]


@dataclass(frozen=True, slots=True)
class ErrorReply:
    """A decoded error reply: ``[2, id, code, message]``."""

    request_id: int
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class Event:
    """A decoded pushed event: ``[3, subscription, topic, data]``."""

    subscription: int
    topic: str
    data: dict[str, Value]


Message = Request | Reply | ErrorReply | Event


def parse_message(
    data: bytes, *, canonical: bool = True, max_values: int = MAX_MESSAGE_VALUES
) -> Message:
    """Decode a frame body into its message record (see ``decode_message``)."""
    value = decode_message(data, canonical=canonical, max_values=max_values)
    kind = value[0]
    if kind == KIND_REQUEST:
        return Request(value[1], value[2], value[3])
    if kind == KIND_REPLY:
        return Reply(value[1], value[2])
    if kind == KIND_ERROR:
        return ErrorReply(value[1], value[2], value[3])
    return Event(value[1], value[2], value[3])


def request_body(request_id: int, command: str, args: Mapping[str, Value]) -> bytes:
    """Return the body of a request."""
    return encode_message([KIND_REQUEST, request_id, command, dict(args)])


def reply_body(request_id: int, result: Mapping[str, Value]) -> bytes:
    """Return the body of a reply."""
    return encode_message([KIND_REPLY, request_id, dict(result)])


def error_body(request_id: int, code: str, message: str) -> bytes:
    """Return the body of an error reply."""
    return encode_message([KIND_ERROR, request_id, code, message])


def event_body(subscription: int, topic: str, data: Mapping[str, Value]) -> bytes:
    """Return the body of a pushed event."""
    return encode_message([KIND_EVENT, subscription, topic, dict(data)])
