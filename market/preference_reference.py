"""Mode 1's reference clearing: the peers' preferences as partner sets and pair penalties.

In a slot the DSO runs with preferences (mode 1, 12.2.2) the order book
never matches two orders that one of them refuses (``orderbook.gridmatch``).
The slot's reference clearing honours the same preferences in the two ways
the chapter's P2P model has room for (docs/modes.md):

- **partner sets** mu_i (12.1): peer i may trade with j only if at least one
  of i's orders in the slot accepts j: j not excluded, j's technology label
  among the accepted ones, j's bus within the order's maximum electrical
  distance. A pair trades only if each side accepts the other;
- **pair penalties** c_ij (product differentiation, Sorin, Bobo and Pinson
  2019): a counterparty that i accepts only in part costs i a premium of
  ``PREFERENCE_PREMIUM`` ticks per kWh on its side of the trade. "In part"
  means some of i's orders refuse j, or i names preferred partners and j is
  not one of them (the book matches preferred partners first).

A peer's orders are those ``market.slot_preferences`` recorded: every
accepted order placed while the slot was in mode 1, a plain order counting
as one that accepts anyone; cancelled, filled and expired orders count
(what a peer stated once stands for the slot). A peer with no recorded
order accepts anyone at no premium. Labels are those at the gate closure;
distances come from the slot's ``SetSlotMode`` (``distance`` between the
buses the peers registered at; a peer whose bus the grid does not name is
beyond every maximum distance).

Everything here is integers, bytes and strings in sorted order, so the
operator and every replica derive the same case; the premium becomes
currency only in :func:`add_preferences`, at the clearing boundary.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from market.modes import bus_names
from orderbook.grid import GridMode
from orderbook.gridmatch import allows

if TYPE_CHECKING:
    from market.state import ExchangeState
    from orderbook.grid import Preferences

# The premium a peer puts on a partner it accepts only in part, ticks per kWh.
# The ledger's preferences carry no amount, so the chain uses one constant:
# 100 ticks (0.01 currency/kWh at the default tick), a few percent of the
# chapter's energy prices and of the order of its loss penalties alpha R_ij.
PREFERENCE_PREMIUM = 100

_FAR = 2**62  # the distance to a bus the slot's grid does not name


@dataclass(frozen=True, slots=True)
class PeerPreferences:
    """One peer's part of a mode-1 reference case.

    Attributes:
        partners: mu_i, the peers (by account, sorted) it accepts; None = all.
        penalties: ``(account, ticks per kWh)`` it puts on partners it accepts in part, sorted.
    """

    partners: tuple[bytes, ...] | None
    penalties: tuple[tuple[bytes, int], ...]


class _Distance:
    """The slot grid's electrical distance between two accounts' buses (no grid data: 0)."""

    __slots__ = ("bus", "flat", "n")

    def __init__(self, state: ExchangeState, key: tuple[str, int]) -> None:
        payload = state.slot_modes[key]
        index = {name: i for i, name in enumerate(bus_names(payload))}
        self.n = len(index)
        self.flat = payload.distance
        self.bus = {a: index.get(state.peers[a].bus) for a in state.curves.get(key, {})}

    def __call__(self, a: bytes, b: bytes) -> int:
        if not self.flat:
            return 0
        i, j = self.bus.get(a), self.bus.get(b)
        if i is None or j is None or i * self.n + j >= len(self.flat):
            return _FAR
        return self.flat[i * self.n + j]


def slot_preferences(state: ExchangeState, product: str, slot: int) -> dict[bytes, PeerPreferences]:
    """Each restricting peer's partner set and pair penalties in a mode-1 slot.

    Peers that accept everyone at no premium are left out. A slot not in
    mode 1, or without a recorded order, gives an empty map.

    Runtime complexity: O(k p) for k recorded preferences and p peers with a curve.
    """
    key = (product, slot)
    mode = state.slot_modes.get(key)
    recorded = state.preferences.of(key)
    if mode is None or mode.mode != GridMode.PREFERENCES or not recorded:
        return {}
    peers = sorted(state.curves.get(key, {}))
    labels = state.preferences.labels.get(key, state.technologies)
    dist = _Distance(state, key)
    out: dict[bytes, PeerPreferences] = {}
    for account, prefs in recorded.items():
        if account not in state.curves.get(key, {}):
            continue
        others = [b for b in peers if b != account]
        terms = _terms(account, prefs, others, labels, dist)
        if terms.partners is not None or terms.penalties:
            out[account] = terms
    return out


def _terms(
    account: bytes,
    prefs: tuple[Preferences, ...],
    others: list[bytes],
    labels: dict[bytes, str],
    dist: _Distance,
) -> PeerPreferences:
    preferred = frozenset().union(*(p.preferred for p in prefs))
    partners: list[bytes] = []
    penalties: list[tuple[bytes, int]] = []
    for other in others:
        owner = other.hex()
        d = dist(account, other)  # as the book: this peer's bus to the other's
        accepted = [allows(p, owner, labels.get(other), d) for p in prefs]
        if not any(accepted):
            continue
        partners.append(other)
        if not all(accepted) or (preferred and owner not in preferred):
            penalties.append((other, PREFERENCE_PREMIUM))
    everyone = len(partners) == len(others)
    return PeerPreferences(None if everyone else tuple(partners), tuple(penalties))


def add_preferences(
    state: ExchangeState,
    product: str,
    slot: int,
    peers: list[dict[str, Any]],
    names: dict[bytes, str],
    tick: float,
) -> None:
    """Write mode 1's partner sets and pair penalties into a clearing case's peers (in place).

    Args:
        state: the chain's state after the slot's gate closure.
        product, slot: the slot.
        peers: the case's peer dicts (clearing's JSON form), named by ``names``.
        names: account -> the peer's name in the case; accounts not in it
            (left out of the case) are dropped from every set.
        tick: currency per tick: ``PREFERENCE_PREMIUM`` ticks -> currency/kWh.
    """
    terms = slot_preferences(state, product, slot)
    if not terms:
        return
    by_name = {p["name"]: p for p in peers}
    for account, t in terms.items():
        name = names.get(account)
        if name is None:
            continue
        item = by_name[name]
        if t.partners is not None:
            item["partners"] = sorted(names[a] for a in t.partners if a in names)
        pens = {names[a]: ticks * tick for a, ticks in t.penalties if a in names}
        if pens:
            item["pair_penalties"] = dict(sorted(pens.items()))
