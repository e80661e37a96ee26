"""What each peer's orders accepted in a mode-1 slot, kept for the slot's reference clearing.

The order book forgets a slot's orders at gate closure, but the reference
clearing that runs after it must honour the preferences they carried
(``market.preference_reference``). The state machine therefore records, per
(product, slot) in mode 1 (12.2.2):

- for every account, the distinct ``Preferences`` of its accepted orders
  (a plain ``PlaceOrder`` counts as ``Preferences()``: it accepts anyone);
- at gate closure, the technology labels of the slot's peers, so that a
  ``DeclareTechnology`` after the close cannot change the closed slot's
  case (the operator and a replica derive it at different times).

Only orders placed while the slot is in mode 1 are recorded. Everything is
integers, bytes and strings; ``digest_record`` gives the canonical form the
state digest covers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ledger.codec import encode_trusted

if TYPE_CHECKING:
    from collections.abc import Iterable

    from orderbook.grid import Preferences

Key = tuple[str, int]  # (product, slot)


class SlotPreferences:
    """The mode-1 record of every slot (see the module docstring)."""

    __slots__ = ("labels", "orders")

    def __init__(self) -> None:
        # (product, slot) -> account -> its orders' distinct preferences, in arrival order
        self.orders: dict[Key, dict[bytes, dict[Preferences, None]]] = {}
        # (product, slot) -> account -> technology label, as at the gate closure
        self.labels: dict[Key, dict[bytes, str]] = {}

    def __bool__(self) -> bool:
        return bool(self.orders)

    def record(self, key: Key, account: bytes, prefs: Preferences) -> None:
        """Note that ``account`` placed an accepted order with ``prefs`` in mode-1 slot ``key``.

        Runtime complexity: O(1) (a preference seen before is not stored again).
        """
        self.orders.setdefault(key, {}).setdefault(account, {})[prefs] = None

    def close(self, key: Key, technologies: dict[bytes, str], accounts: Iterable[bytes]) -> None:
        """At the gate closure of ``key``: keep the labels of ``accounts`` (the slot's peers)."""
        if key in self.orders and key not in self.labels:
            self.labels[key] = {a: technologies[a] for a in sorted(accounts) if a in technologies}

    def of(self, key: Key) -> dict[bytes, tuple[Preferences, ...]]:
        """Each account's recorded preferences in slot ``key`` (empty: no mode-1 order)."""
        return {a: tuple(p) for a, p in sorted(self.orders.get(key, {}).items())}

    def digest_record(self) -> list[object]:
        """The record as sorted lists of ints, bytes and strings, for the state digest."""
        orders = [
            [p, s, [[a, sorted(_encoded(x) for x in prefs)] for a, prefs in sorted(by.items())]]
            for (p, s), by in sorted(self.orders.items())
        ]
        labels = [
            [p, s, [[a, label] for a, label in sorted(by.items())]]
            for (p, s), by in sorted(self.labels.items())
        ]
        return [orders, labels]


def _encoded(prefs: Preferences) -> bytes:
    """Canonical bytes of one ``Preferences`` (no None: -1 and [] stand for "any")."""
    techs = prefs.technologies
    limit = prefs.max_distance
    return encode_trusted(
        [
            [] if techs is None else [1, *sorted(techs)],
            sorted(prefs.preferred),
            sorted(prefs.excluded),
            -1 if limit is None else limit,
        ]
    )
