"""The keys each object of the case format may hold, and the check that refuses others.

A misspelt key (``"capacity_kv"``, ``"pmax"``) would otherwise be ignored and
its default silently used; the loaders refuse it instead, naming the key.
The same key sets are written in ``clearing/cases/case.schema.json`` (a test
keeps the two in step).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from clearing.errors import UnknownField

CASE_FIELDS = (
    "$schema",
    "name",
    "currency",
    "tick",
    "slot_hours",
    "tariff",
    "regularisation",
    "network",
    "peers",
)
TARIFF_FIELDS = ("alpha", "beta")
NETWORK_FIELDS = ("voltage_kv", "root", "buses", "lines", "peer_bus")
LINE_FIELDS = ("name", "from", "to", "r_ohm", "x_ohm", "capacity_kw")
PEER_FIELDS = (
    "name",
    "role",
    "a",
    "b",
    "c",
    "p_min",
    "p_max",
    "partners",
    "heat",
    "chp",
    "alpha",
    "beta",
    "pair_penalties",
)
HEAT_FIELDS = ("a", "b", "c", "h_min", "h_max")
CHP_FIELDS = ("A", "B", "C", "D")


def check_fields(data: Mapping[str, Any], allowed: tuple[str, ...], where: str) -> None:
    """Refuse any key of ``data`` that is not in ``allowed``.

    Args:
        data: One object of the case format.
        allowed: The keys it may hold.
        where: What the object is, for the message (``"case"``, ``"line 'L1'"``).

    Raises:
        UnknownField: Naming the first unknown key (in the data's order), the
            closest allowed key, and every allowed key.
    """
    for key in data:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            msg = f"{where}: unknown field {key!r}{hint}; allowed: {', '.join(allowed)}"
            raise UnknownField(msg, key=str(key), where=where, allowed=allowed)
