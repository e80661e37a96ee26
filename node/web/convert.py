"""Query parameters in, JSON out: the gateway's two small translations.

Protocol values hold raw bytes (hashes, account ids, keys); JSON has no
bytes, so every ``bytes`` becomes lower-case hex, recursively.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from node.web.errors import BadParameter

MAX_INT_PARAM = 2**62  # larger is no slot, height or index any node holds


def to_json(value: Any) -> Any:
    """``value`` with bytes as hex strings, tuples as lists and map keys as strings.

    >>> to_json({"head": b"\\x01\\xff", "rows": [(1, b"")]})
    {'head': '01ff', 'rows': [[1, '']]}
    """
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, Mapping):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    return value


def int_param(
    query: Mapping[str, str],
    name: str,
    default: int | None = None,
    *,
    low: int = 0,
    high: int = MAX_INT_PARAM,
) -> int:
    """The integer query parameter ``name``, ``low`` to ``high``.

    >>> int_param({"slot": "3"}, "slot")
    3

    Raises:
        BadParameter: missing without a default, not a decimal integer, or out of range.
    """
    text = query.get(name)
    want = f"an integer {low} to {high}"
    if text is None:
        if default is None:
            raise BadParameter(name, None, want)
        return default
    stripped = text.strip()
    digits = stripped[1:] if stripped.startswith("-") else stripped
    if not digits.isdigit() or not digits.isascii() or len(digits) > 19:
        raise BadParameter(name, text, want)
    value = int(stripped)
    if not low <= value <= high:
        raise BadParameter(name, text, want)
    return value


def hex_param(query: Mapping[str, str], name: str, size: int) -> bytes:
    """The hex query parameter ``name`` as exactly ``size`` bytes.

    Raises:
        BadParameter: missing, not hex, or not ``size`` bytes long.
    """
    text = query.get(name)
    want = f"{size * 2} hex digits"
    if text is None or len(text) != size * 2:
        raise BadParameter(name, text, want)
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise BadParameter(name, text, want) from None


def choice_param(
    query: Mapping[str, str], name: str, default: str, allowed: tuple[str, ...]
) -> str:
    """The query parameter ``name``, one of ``allowed``.

    Raises:
        BadParameter: not one of ``allowed``.
    """
    text = query.get(name, default)
    if text not in allowed:
        raise BadParameter(name, text, f"one of {list(allowed)}")
    return text
