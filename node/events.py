"""Order book events as wire values (maps of str, int, bool), for clients."""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum

from orderbook.types import Instrument


def event_to_wire(event: object) -> dict[str, object]:
    """Return one order book event as a protocol map.

    The map has ``type`` (the event class in snake case, e.g. ``"trade"``) and
    the event's fields; an instrument becomes ``product`` and ``slot``, enums
    their string value, owners stay account-id hex strings.
    """
    event_type = type(event)
    kind, fields = _layout(event_type)
    out: dict[str, object] = {"type": kind}
    for key, value in zip(fields, event, strict=True):  # type: ignore[call-overload]
        value_type = type(value)
        if value_type is int or value_type is str:
            out[key] = value
        elif value_type is Instrument:
            out["product"] = value.product.value
            out["slot"] = value.slot
        elif isinstance(value, Enum):
            out[key] = value.value
        else:
            out[key] = value
    # Keys in sorted order: the map is then canonical as it is, and encoding
    # the reply or event that carries it does not copy it (node.protocol).
    order = _ORDERS.get(event_type)
    if order is None or len(order) != len(out):
        order = _ORDERS[event_type] = tuple(sorted(out))
    return {key: out[key] for key in order}


_LAYOUTS: dict[type, tuple[str, tuple[str, ...]]] = {}
_ORDERS: dict[type, tuple[str, ...]] = {}  # an event class's wire keys, sorted


def _layout(event_type: type) -> tuple[str, tuple[str, ...]]:
    """An event class's wire name (snake case) and field names, worked out once."""
    layout = _LAYOUTS.get(event_type)
    if layout is None:
        name = event_type.__name__
        snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")
        layout = _LAYOUTS[event_type] = (snake, tuple(event_type._fields))  # type: ignore[attr-defined]
    return layout


def events_to_wire(events: Iterable[object]) -> list[dict[str, object]]:
    """Return ``event_to_wire`` of each event."""
    return [event_to_wire(event) for event in events]
