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
currency only when it is written into a case (:func:`named_terms`, used by
:func:`add_preferences`, :func:`case_with_preferences` and the horizon form's
``market.gate_horizon``), at the clearing boundary.

Preferences are per product. A slot cleared jointly with heat
(``market.gate_plan``) takes the electricity slot's terms for its
electricity trades and the heat slot's terms (when the heat slot itself is
in mode 1) for its heat trades; ``market.gate_horizon`` writes them into
``HorizonPeer.partners``/``pair_penalties`` and ``HorizonPeer.heat_terms``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from market.modes import bus_names
from orderbook.grid import GridMode
from orderbook.gridmatch import allows

if TYPE_CHECKING:
    from clearing.case import Case
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
        partners: mu_i, the owners (sorted) it accepts; None = all.
        penalties: ``(owner, ticks per kWh)`` it puts on partners it accepts in part, sorted.
    """

    partners: tuple[str, ...] | None
    penalties: tuple[tuple[str, int], ...]


def derive_preferences(
    owners: Sequence[str],
    orders: Mapping[str, Sequence[Preferences]],
    labels: Mapping[str, str],
    distance: Callable[[str, str], int] | None = None,
) -> dict[str, PeerPreferences]:
    """Partner sets and pair penalties from what each owner's orders accept (the rule above).

    Args:
        owners: every peer of the case, by the name its counterparties'
            ``Preferences`` use for it (account hex on the chain).
        orders: owner -> the preferences of its orders (a plain order: ``Preferences()``).
        labels: owner -> its technology label (missing: no label).
        distance: electrical distance from one owner's bus to another's
            (None: 0, as the order book without grid distances).

    Returns:
        The owners that restrict or differentiate their partners; the others
        accept everyone at no premium.

    Runtime complexity: O(k p) for k recorded preferences and p owners.
    """
    ranked = sorted(owners)
    out: dict[str, PeerPreferences] = {}
    for owner in ranked:
        prefs = orders.get(owner, ())
        if not prefs:
            continue
        preferred = frozenset().union(*(p.preferred for p in prefs))
        partners: list[str] = []
        penalties: list[tuple[str, int]] = []
        others = [x for x in ranked if x != owner]
        for other in others:
            d = 0 if distance is None else distance(owner, other)  # as the book: own bus first
            accepted = [allows(p, other, labels.get(other), d) for p in prefs]
            if not any(accepted):
                continue
            partners.append(other)
            if not all(accepted) or (preferred and other not in preferred):
                penalties.append((other, PREFERENCE_PREMIUM))
        everyone = len(partners) == len(others)
        if not everyone or penalties:
            out[owner] = PeerPreferences(None if everyone else tuple(partners), tuple(penalties))
    return out


def slot_participants(state: ExchangeState, product: str, slot: int) -> list[bytes]:
    """The accounts of (product, slot)'s reference case that may trade the product, sorted.

    Those with a curve for it, and the owners of the slot's CHP regions: a
    CHP unit sells power and heat in a joint slot even without a curve
    (``market.gate_horizon``). A slot without heat data has no CHP region,
    so there it is the accounts with a curve.
    """
    return sorted(set(state.curves.get((product, slot), {})) | set(state.chp.get(slot, {})))


class _Distance:
    """The slot grid's electrical distance between two accounts' buses (no grid data: 0)."""

    __slots__ = ("bus", "flat", "n")

    def __init__(self, state: ExchangeState, key: tuple[str, int], accounts: list[bytes]) -> None:
        payload = state.slot_modes[key]
        index = {name: i for i, name in enumerate(bus_names(payload))}
        self.n = len(index)
        self.flat = payload.distance
        self.bus = {a.hex(): index.get(state.peers[a].bus) for a in accounts}

    def __call__(self, a: str, b: str) -> int:
        if not self.flat:
            return 0
        i, j = self.bus.get(a), self.bus.get(b)
        if i is None or j is None or i * self.n + j >= len(self.flat):
            return _FAR
        return self.flat[i * self.n + j]


def slot_preferences(state: ExchangeState, product: str, slot: int) -> dict[str, PeerPreferences]:
    """Each restricting peer's partner set and pair penalties in a mode-1 slot, by account hex.

    A slot not in mode 1 at the gate, or without a recorded order, gives an
    empty map. Only the slot's participants take part
    (:func:`slot_participants`: a curve for the product, or a CHP region).
    The terms are the product's own: a heat slot's orders give heat terms,
    an electricity slot's electricity terms.
    """
    key = (product, slot)
    mode = state.slot_modes.get(key)
    recorded = state.preferences.of(key)
    if mode is None or mode.mode != GridMode.PREFERENCES or not recorded:
        return {}
    accounts = slot_participants(state, product, slot)
    taking_part = set(accounts)
    labels = state.preferences.labels.get(key, state.technologies)
    return derive_preferences(
        [a.hex() for a in accounts],
        {a.hex(): p for a, p in recorded.items() if a in taking_part},
        {a.hex(): label for a, label in labels.items()},
        _Distance(state, key, accounts),
    )


Named = tuple[tuple[str, ...] | None, tuple[tuple[str, float], ...]]


def named_terms(terms: PeerPreferences, names: Mapping[str, str], tick: float) -> Named:
    """One peer's partner set and pair penalties by case name, premiums in currency/kWh.

    Args:
        terms: the peer's preferences (owners by account hex or case name).
        names: owner -> its name in the case; owners not in it (left out of
            the case) are dropped from the set and the penalties.
        tick: currency per tick: ``PREFERENCE_PREMIUM`` ticks -> currency/kWh.

    Returns:
        ``(partners, penalties)``: the partner names sorted (None = all) and
        ``(name, currency per kWh)`` pairs sorted by name, the form both
        ``clearing.Peer`` and ``clearing.HorizonPeer`` take.
    """
    partners = None
    if terms.partners is not None:
        partners = tuple(sorted(names[x] for x in terms.partners if x in names))
    penalties = tuple(
        sorted((names[x], ticks * tick) for x, ticks in terms.penalties if x in names)
    )
    return partners, penalties


def slot_terms(
    state: ExchangeState, product: str, slot: int, names: Mapping[bytes, str], tick: float
) -> dict[str, Named]:
    """Each restricting peer's :func:`named_terms` in a mode-1 slot, by its name in the case.

    Args:
        state: the chain's state after the slot's gate closure.
        product, slot: the slot.
        names: account -> the peer's name in the case; accounts not in it
            are left out (and dropped from every set).
        tick: currency per tick.

    Returns:
        Empty for a slot not in mode 1 or without a recorded order.
    """
    terms = slot_preferences(state, product, slot)
    if not terms:
        return {}
    by_hex = {a.hex(): n for a, n in names.items()}
    return {by_hex[o]: named_terms(t, by_hex, tick) for o, t in terms.items() if o in by_hex}


def _write(item: dict[str, Any], terms: Named) -> None:
    partners, penalties = terms
    if partners is not None:
        item["partners"] = list(partners)
    if penalties:
        item["pair_penalties"] = dict(penalties)


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
    terms = slot_terms(state, product, slot, names, tick)
    if not terms:
        return
    by_name = {p["name"]: p for p in peers}
    for name, t in terms.items():
        _write(by_name[name], t)


def case_with_preferences(
    case: Case,
    orders: Mapping[str, Sequence[Preferences]],
    labels: Mapping[str, str],
    *,
    distance: Callable[[str, str], int] | None = None,
) -> Case:
    """A clearing case with the partner sets and pair penalties that ``orders`` imply.

    The same rule as a mode-1 slot's reference (:func:`derive_preferences`),
    for callers that hold a ``clearing.Case`` and the orders they placed
    (the demo, benchmarks): owners are the case's peer names, and the
    premium is converted at the case's tick.
    """
    terms = derive_preferences(case.names, orders, labels, distance)
    if not terms:
        return case
    peers = []
    for peer in case.peers:
        t = terms.get(peer.name)
        if t is None:
            peers.append(peer)
            continue
        partners, penalties = named_terms(t, {n: n for n in case.names}, case.tick)
        peers.append(replace(peer, partners=partners, pair_penalties=penalties))
    return replace(case, peers=tuple(peers))
