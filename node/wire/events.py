"""Order book events as wire values (maps of str, int, bool), for clients."""

from __future__ import annotations

import typing
from collections.abc import Callable, Iterable
from enum import Enum

from node.wire.protocol import CanonicalMap
from orderbook.types import Instrument

if typing.TYPE_CHECKING:
    from market.state import Outcome

ToWire = Callable[[object], CanonicalMap]


def event_to_wire(event: object) -> CanonicalMap:
    """Return one order book event as a protocol map.

    The map has ``type`` (the event class in snake case, e.g. ``"trade"``) and
    the event's fields; an instrument becomes ``product`` and ``slot``, enums
    their string value, owners stay account-id hex strings. Its keys are in
    sorted order, so it is a ``CanonicalMap``: sent as it is.
    """
    event_type = type(event)
    to_wire = _CONVERTERS.get(event_type)
    if to_wire is None:
        to_wire = _CONVERTERS[event_type] = _converter(event_type)
    return to_wire(event)


def events_to_wire(events: Iterable[object]) -> list[CanonicalMap]:
    """Return ``event_to_wire`` of each event."""
    return [event_to_wire(event) for event in events]


def outcome_events(outcome: Outcome) -> list[CanonicalMap]:
    """The events a client is told about one applied transaction.

    The order book's events, then, if the market refused the transaction, a
    ``rejected`` event with the state machine's reason (the one recorded in
    the block).
    """
    events = [event_to_wire(event) for event in outcome.events]
    if outcome.rejected is not None:
        events.append(CanonicalMap({"reason": outcome.rejected, "type": "rejected"}))
    return events


_CONVERTERS: dict[type, ToWire] = {}


def _converter(event_type: type) -> ToWire:
    """A function that builds ``event_type``'s map in one dict display, keys sorted.

    Written out once per event class from its field types (as ``dataclasses``
    and ``namedtuple`` write their methods): a loop over the fields that
    tested each value's type, and sorting its map afterwards, cost more than
    the rest of the reply's encoding; a reply carries a few events.
    """
    name = event_type.__name__
    kind = "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")
    hints = typing.get_type_hints(event_type)
    items = {"type": repr(kind)}
    for index, field in enumerate(event_type._fields):  # type: ignore[attr-defined]
        value = f"e[{index}]"
        hint = hints[field]
        enum = _enum_in(hint)
        if hint is Instrument:
            items["product"] = f"{value}.product.value"
            items["slot"] = f"{value}.slot"
        elif enum is not None and enum is hint:
            items[field] = f"{value}.value"
        elif enum is not None:  # optional enum
            items[field] = f"(None if {value} is None else {value}.value)"
        else:
            items[field] = value  # int, str, bool, or None
    display = ", ".join(f"{key!r}: {items[key]}" for key in sorted(items))
    namespace: dict[str, object] = {"Map": CanonicalMap}
    # the text holds only this class's field names (identifiers) and repr()s of its keys
    exec(f"def to_wire(e):\n    return Map({{{display}}})\n", namespace)
    return typing.cast(ToWire, namespace["to_wire"])


def _enum_in(hint: object) -> type[Enum] | None:
    """The Enum class ``hint`` is, or holds in a union (``X | None``), else None."""
    if isinstance(hint, type) and issubclass(hint, Enum):
        return hint
    for arg in typing.get_args(hint):
        if isinstance(arg, type) and issubclass(arg, Enum):
            return arg
    return None
