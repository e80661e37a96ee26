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
    name = type(event).__name__
    snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")
    out: dict[str, object] = {"type": snake}
    fields: dict[str, object] = event._asdict()  # type: ignore[attr-defined]
    for key, value in fields.items():
        if isinstance(value, Instrument):
            out["product"] = value.product.value
            out["slot"] = value.slot
        elif isinstance(value, Enum):
            out[key] = value.value
        else:
            out[key] = value
    return out


def events_to_wire(events: Iterable[object]) -> list[dict[str, object]]:
    """Return ``event_to_wire`` of each event."""
    return [event_to_wire(event) for event in events]
