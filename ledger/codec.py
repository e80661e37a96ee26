"""Canonical msgpack encoding: one value, one byte string.

Values are ints (-2**63 .. 2**64 - 1), bytes, str and arrays of values;
nothing else (no maps, floats, nil, booleans or extension types). Every
record of the ledger is an array ``[version, kind, field, ...]`` in a fixed
field order.

msgpack lets one value be written in several ways (an int in a longer form
than needed, a short string as str16, ...). ``encode`` always writes the
shortest form (that is what msgpack's packer does with ``use_bin_type=True``),
and ``decode`` rejects any input whose re-encoding differs from the bytes it
was given, so a record has exactly one valid encoding and hashing or signing
its bytes is hashing or signing its value.

>>> encode([1, 2, b"ab", "cd"]).hex()
'940102c4026162a26364'
>>> decode(bytes.fromhex("940102c4026162a26364"))
[1, 2, b'ab', 'cd']
>>> decode(bytes.fromhex("d001"))  # 1 as an int8: valid msgpack, not canonical
Traceback (most recent call last):
...
ledger.errors.NonCanonicalEncoding: non-canonical encoding: re-encoding gives 01, received d001
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeAlias, cast

import msgpack

from ledger.errors import (
    BadRecord,
    EncodeError,
    MalformedData,
    NonCanonicalEncoding,
    OversizedData,
    TrailingBytes,
    UnexpectedType,
)

Value: TypeAlias = "int | bytes | str | list[Value]"
"""A decoded canonical value."""

EncodableValue: TypeAlias = "int | bytes | str | Sequence[EncodableValue]"
"""A value ``encode`` accepts (tuples are written as arrays)."""

MIN_INT = -(2**63)
MAX_INT = 2**64 - 1
DEFAULT_MAX_SIZE = 1 << 20
"""Default decode limit in bytes (1 MiB); blocks pass a larger one."""

MAX_DEPTH = 16
"""Deepest array nesting accepted; ledger records use at most 4 levels."""
_HEX_SHOWN = 32  # bytes of input shown in error messages


def is_utf8(text: str) -> bool:
    """Whether ``text`` has a UTF-8 encoding (a Python str may hold lone surrogates, which do not).

    A str without one has no canonical bytes at all: building a record
    from it must fail with a ledger error, not a ``UnicodeEncodeError``
    when it is signed. Decoded strs always pass (msgpack decodes strictly).
    """
    if text.isascii():
        return True
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _check_encodable(value: object, depth: int) -> None:
    """Raise EncodeError unless ``value`` is an int, bytes, str or array of them."""
    if isinstance(value, bool) or not isinstance(value, int | bytes | str | list | tuple):
        msg = f"cannot encode a {type(value).__name__}: only int, bytes, str and arrays"
        raise EncodeError(msg)
    if isinstance(value, int):
        if not MIN_INT <= value <= MAX_INT:
            msg = f"int {value} outside the msgpack range [-2**63, 2**64 - 1]"
            raise EncodeError(msg)
    elif isinstance(value, str):
        if not is_utf8(value):
            msg = f"str {value!r} has no UTF-8 encoding (a lone surrogate)"
            raise EncodeError(msg)
    elif isinstance(value, list | tuple):
        if depth >= MAX_DEPTH:
            msg = f"arrays nested deeper than {MAX_DEPTH}"
            raise EncodeError(msg)
        for item in value:
            _check_encodable(item, depth + 1)


def encode(value: EncodableValue) -> bytes:
    """Return the canonical bytes of ``value``.

    Args:
        value: an int, bytes, str, or a list / tuple of such values.

    Returns:
        The shortest msgpack encoding (bytes as bin, str as str).

    Raises:
        EncodeError: for any other type (bool, float, None, dict, bytearray...)
            or an int outside [-2**63, 2**64 - 1].
    """
    _check_encodable(value, 0)
    return encode_trusted(value)


def encode_trusted(value: EncodableValue) -> bytes:
    """Encode a value built by this package's own code, skipping the type walk.

    Only for values whose types are guaranteed by construction (validated
    dataclass fields); anything else must go through ``encode``.
    """
    return msgpack.packb(value, use_bin_type=True)


def _check_decoded(value: object, depth: int) -> None:
    """Raise UnexpectedType for anything but int, bytes, str and lists of them."""
    kind = type(value)
    if kind is int or kind is bytes or kind is str:
        return
    if isinstance(value, list):
        if depth >= MAX_DEPTH:
            msg = f"arrays nested deeper than {MAX_DEPTH}"
            raise MalformedData(msg)
        for item in value:
            _check_decoded(item, depth + 1)
        return
    name = {dict: "map", float: "float", bool: "boolean", type(None): "nil"}.get(
        kind, f"extension ({kind.__name__})"
    )
    msg = f"unexpected {name} value: only int, bytes, str and arrays are allowed"
    raise UnexpectedType(msg)


def decode(data: bytes, *, max_size: int = DEFAULT_MAX_SIZE) -> Value:
    """Decode exactly one canonical value from ``data``.

    Args:
        data: the received bytes.
        max_size: the largest input accepted, in bytes; checked before parsing.

    Returns:
        The value: an int, bytes, str or (nested) list of them.

    Raises:
        OversizedData: ``len(data) > max_size``.
        MalformedData: not msgpack, truncated, invalid UTF-8 or nested too deep.
        TrailingBytes: bytes follow the first complete value.
        UnexpectedType: a map, float, nil, boolean or extension value.
        NonCanonicalEncoding: re-encoding the value gives different bytes.
    """
    value = _unpack(data, max_size)
    _check_decoded(value, 0)
    _check_canonical(value, data)
    return cast("Value", value)


def decode_record(data: bytes, *, max_size: int = DEFAULT_MAX_SIZE) -> Value:
    """Decode like ``decode`` but without the walk that rejects unexpected types.

    For record decoders that check the type of every field themselves (and
    so reject a map, float, nil, boolean or extension value as ``BadRecord``):
    the walk would check each field twice on the audit's hot path. The
    canonical re-encoding check is still made.

    Raises:
        OversizedData, MalformedData, TrailingBytes, NonCanonicalEncoding: as ``decode``.
    """
    value = _unpack(data, max_size)
    _check_canonical(value, data)
    return cast("Value", value)


def _unpack(data: bytes, max_size: int) -> object:
    if type(data) is not bytes:
        msg = f"expected bytes, got {type(data).__name__}"
        raise MalformedData(msg)
    size = len(data)
    if size > max_size:
        msg = f"input of {size} bytes exceeds the limit of {max_size}"
        raise OversizedData(msg, expected=max_size, found=size)
    try:
        # Every element takes at least one byte, so no length claim can
        # legitimately exceed the input size: the limits stop a short input
        # from making msgpack allocate a huge array.
        return msgpack.unpackb(
            data,
            raw=False,
            use_list=True,
            strict_map_key=True,
            max_str_len=size,
            max_bin_len=size,
            max_array_len=size,
            max_map_len=size,
            max_ext_len=size,
            timestamp=0,
        )
    except msgpack.ExtraData as exc:
        msg = "trailing bytes after a complete value"
        raise TrailingBytes(msg) from exc
    except (ValueError, TypeError, OverflowError, msgpack.UnpackException) as exc:
        # ValueError covers truncation, FormatError, StackError, invalid UTF-8
        # and the length limits; TypeError an unhashable map key.
        msg = f"not a msgpack value ({exc}): {data[:_HEX_SHOWN].hex()}"
        raise MalformedData(msg) from exc


def _check_canonical(value: object, data: bytes) -> None:
    try:
        again = msgpack.packb(value, use_bin_type=True)
    except (ValueError, TypeError, OverflowError) as exc:  # e.g. nesting beyond msgpack's limit
        msg = f"value cannot be re-encoded: {exc}"
        raise MalformedData(msg) from exc
    if again != data:
        msg = (
            "non-canonical encoding: re-encoding gives "
            f"{again[:_HEX_SHOWN].hex()}, received {data[:_HEX_SHOWN].hex()}"
        )
        raise NonCanonicalEncoding(msg)


# -- field readers for record decoders ---------------------------------------------------------


def as_array(value: Value, length: int, what: str) -> list[Value]:
    """Return ``value`` as a list of exactly ``length`` items, else raise BadRecord."""
    if type(value) is not list:
        msg = f"{what}: expected an array of {length}, found {type(value).__name__}"
        raise BadRecord(msg, expected=length, found=type(value).__name__)
    if len(value) != length:
        msg = f"{what}: expected {length} fields, found {len(value)}"
        raise BadRecord(msg, expected=length, found=len(value))
    return value


def as_list(value: Value, what: str, max_len: int) -> list[Value]:
    """Return ``value`` as a list of at most ``max_len`` items, else raise BadRecord."""
    if type(value) is not list:
        msg = f"{what}: expected an array, found {type(value).__name__}"
        raise BadRecord(msg, expected="array", found=type(value).__name__)
    if len(value) > max_len:
        msg = f"{what}: at most {max_len} items, found {len(value)}"
        raise BadRecord(msg, expected=max_len, found=len(value))
    return value


def as_int(value: Value, what: str, lo: int = MIN_INT, hi: int = MAX_INT) -> int:
    """Return ``value`` as an int in [lo, hi], else raise BadRecord."""
    if type(value) is not int:
        msg = f"{what}: expected an int, found {type(value).__name__}"
        raise BadRecord(msg, expected="int", found=type(value).__name__)
    if not lo <= value <= hi:
        msg = f"{what}: {value} outside [{lo}, {hi}]"
        raise BadRecord(msg, expected=(lo, hi), found=value)
    return value


def as_bytes(value: Value, what: str, size: int | None = None, max_len: int = MAX_INT) -> bytes:
    """Return ``value`` as bytes (of exactly ``size`` if given), else raise BadRecord."""
    if type(value) is not bytes:
        msg = f"{what}: expected bytes, found {type(value).__name__}"
        raise BadRecord(msg, expected="bytes", found=type(value).__name__)
    if size is not None and len(value) != size:
        msg = f"{what}: expected {size} bytes, found {len(value)}"
        raise BadRecord(msg, expected=size, found=len(value))
    if len(value) > max_len:
        msg = f"{what}: at most {max_len} bytes, found {len(value)}"
        raise BadRecord(msg, expected=max_len, found=len(value))
    return value


def as_str(value: Value, what: str, max_len: int) -> str:
    """Return ``value`` as a str of at most ``max_len`` characters, else raise BadRecord."""
    if type(value) is not str:
        msg = f"{what}: expected a string, found {type(value).__name__}"
        raise BadRecord(msg, expected="str", found=type(value).__name__)
    if len(value) > max_len:
        msg = f"{what}: at most {max_len} characters, found {len(value)}"
        raise BadRecord(msg, expected=max_len, found=len(value))
    if not is_utf8(value):
        msg = f"{what}: {value!r} has no UTF-8 encoding (a lone surrogate)"
        raise BadRecord(msg, expected="a UTF-8 string", found=value)
    return value


def expect_header(fields: list[Value], version: int, kind: int, what: str) -> None:
    """Check a record's leading ``[version, kind]`` pair, else raise BadRecord."""
    if fields[0] != version or type(fields[0]) is not int:
        msg = f"{what}: unsupported version {fields[0]!r}, expected {version}"
        raise BadRecord(msg, expected=version, found=fields[0])
    if fields[1] != kind or type(fields[1]) is not int:
        msg = f"{what}: record kind {fields[1]!r}, expected {kind}"
        raise BadRecord(msg, expected=kind, found=fields[1])
