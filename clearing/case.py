"""A clearing case: the network, the peers and their curves, the tariffs.

Units (all floats: ``clearing`` is the one float boundary of p2pex):

- power and heat in kW (kW_th for heat), averaged over the delivery slot;
- ``a`` in currency/kW²h, ``b`` in currency/kWh, ``c`` in currency/h;
- ``alpha`` in currency/(kWh·Ω), ``beta`` in currency/kWh;
- ``tick``: the price tick in currency per kWh (prices on the ledger are
  integer ticks per kWh), ``slot_hours``: the slot length (energy = P x hours).

Sign convention of the chapter (12.3): producers inject (``0 <= p_min <=
p_max``), consumers withdraw (``p_min <= p_max <= 0``). The same quadratic
``½ a P² + b P + c`` is used for both: for a consumer, ``P <= 0`` and with
``a, b >= 0`` it is minus the utility ``U(x) = b x - ½ a x² - c`` of
consuming ``x = -P``, so its marginal willingness to pay is ``b - a x`` and
the objective stays convex.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Any

from clearing.chp import ChpRegion, check_chp
from clearing.errors import EmptyMarket, InvalidCase, InvalidPeer, UnknownPeer
from clearing.fields import (
    CASE_FIELDS,
    CHP_FIELDS,
    HEAT_FIELDS,
    PEER_FIELDS,
    TARIFF_FIELDS,
    check_fields,
)
from clearing.network import Network, network_from_dict

REFERENCE_CASE = "chapter12_11bus.json"
DEFAULT_REGULARISATION = 1e-7  # currency/kW²h on Σ P_ij² / 2; see docs/clearing.md


class Role(StrEnum):
    """A peer's role in the slot (fixed per slot, as in the chapter)."""

    PRODUCER = "producer"
    CONSUMER = "consumer"
    GRID = "grid"  # the main grid: a producer at the root bus with its own tariff


def _num(value: Any, what: str, peer: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        msg = f"peer {peer!r}: {what} must be a finite number, got {value!r}"
        raise InvalidPeer(msg, peer=peer)
    return float(value)


def _check_curve(a: float, b: float, c: float, what: str, peer: str) -> None:
    for name, value in (("a", a), ("b", b), ("c", c)):
        _num(value, f"{what}{name}", peer)
    if a < 0:
        msg = f"peer {peer!r}: {what}a must be >= 0 (a convex cost), got {a}"
        raise InvalidPeer(msg, peer=peer)


def _check_bounds(lo: float, hi: float, producer: bool, what: str, peer: str) -> None:
    _num(lo, f"{what}_min", peer)
    _num(hi, f"{what}_max", peer)
    if lo > hi:
        msg = f"peer {peer!r}: {what}_min {lo} > {what}_max {hi}"
        raise InvalidPeer(msg, peer=peer)
    if producer and lo < 0:
        msg = f"peer {peer!r}: a producer's {what} bounds must be >= 0 (12.3), got [{lo}, {hi}]"
        raise InvalidPeer(msg, peer=peer)
    if not producer and hi > 0:
        msg = f"peer {peer!r}: a consumer's {what} bounds must be <= 0 (12.3), got [{lo}, {hi}]"
        raise InvalidPeer(msg, peer=peer)


@dataclass(frozen=True, slots=True)
class HeatCurve:
    """A peer's heat cost (producer) or willingness to pay (consumer), and heat bounds (kW_th)."""

    a: float
    b: float
    c: float
    h_min: float
    h_max: float


@dataclass(frozen=True, slots=True)
class Peer:
    """A market participant for one slot.

    Attributes:
        name: Unique name (e.g. ``"C1"``, ``"G20"``).
        role: Producer, consumer or the main grid.
        a, b, c: Electricity cost (producer) or minus willingness to pay
            (consumer), ``½ a P² + b P + c``.
        p_min, p_max: Injection bounds in kW (12.7), signed per 12.3.
        partners: μ_i, the peers this one may trade with; ``None`` = all.
            A pair trades only if each lists the other (or lists all).
        heat: Heat curve and bounds, ``None`` if the peer has no heat.
        chp: CHP region (producers only); a CHP peer without ``heat`` gets a
            zero heat cost and heat bounds ``[0, max H of the region]``.
        alpha, beta: Per-peer loss / congestion penalties overriding the case tariff.
        pair_penalties: c_ij, product differentiation (Sorin, Bobo and Pinson
            2019): ``(partner, cost)`` pairs, sorted by partner, the cost in
            currency/kWh this peer puts on its side ``|P_ij|`` of every trade
            with that partner (>= 0; partners not listed: 0). A term of the
            objective only, never money paid to anyone (docs/clearing.md).
    """

    name: str
    role: Role
    a: float
    b: float
    c: float
    p_min: float
    p_max: float
    partners: tuple[str, ...] | None = None
    heat: HeatCurve | None = None
    chp: ChpRegion | None = None
    alpha: float | None = None
    beta: float | None = None
    pair_penalties: tuple[tuple[str, float], ...] = ()

    def __post_init__(self) -> None:
        name = self.name
        if not isinstance(name, str) or not name:
            msg = f"peer name must be a non-empty string, got {name!r}"
            raise InvalidPeer(msg, peer=str(name))
        try:
            object.__setattr__(self, "role", Role(self.role))
        except ValueError:
            roles = [r.value for r in Role]
            msg = f"peer {name!r}: role must be one of {roles}, got {self.role!r}"
            raise InvalidPeer(msg, peer=name) from None
        _check_curve(self.a, self.b, self.c, "", name)
        _check_bounds(self.p_min, self.p_max, self.is_producer, "p", name)
        if self.heat is not None:
            h = self.heat
            _check_curve(h.a, h.b, h.c, "heat ", name)
            _check_bounds(h.h_min, h.h_max, self.is_producer, "h", name)
        if self.chp is not None:
            if not self.is_producer:
                msg = f"peer {name!r}: only producers can have a CHP region"
                raise InvalidPeer(msg, peer=name)
            check_chp(self.chp, name)
            if self.heat is None:
                h_top = max(h for _, h in self.chp.points())
                object.__setattr__(self, "heat", HeatCurve(0.0, 0.0, 0.0, 0.0, h_top))
        for what, value in (("alpha", self.alpha), ("beta", self.beta)):
            if value is not None and _num(value, what, name) < 0:
                msg = f"peer {name!r}: {what} must be >= 0, got {value}"
                raise InvalidPeer(msg, peer=name)
        object.__setattr__(self, "pair_penalties", check_pair_penalties(self.pair_penalties, name))

    @property
    def is_producer(self) -> bool:
        """True for producers and the main grid."""
        return self.role is not Role.CONSUMER


def check_pair_penalties(value: Any, peer: str) -> tuple[tuple[str, float], ...]:
    """Return ``value`` as sorted ``(partner, cost)`` pairs, or raise :class:`InvalidPeer`."""
    items = value.items() if isinstance(value, Mapping) else value
    if isinstance(items, str) or not isinstance(items, Iterable):
        msg = f"peer {peer!r}: pair_penalties must map partners to costs, got {value!r}"
        raise InvalidPeer(msg, peer=peer)
    out: dict[str, float] = {}
    for item in items:
        if not isinstance(item, tuple | list) or len(item) != 2:
            msg = f"peer {peer!r}: a pair penalty must be (partner, cost), got {item!r}"
            raise InvalidPeer(msg, peer=peer)
        other, cost = item
        if not isinstance(other, str) or not other or other == peer or other in out:
            msg = (
                f"peer {peer!r}: a pair penalty names another peer once, "
                f"got {other!r} (its own name, repeated, or not a name)"
            )
            raise InvalidPeer(msg, peer=peer)
        c = _num(cost, f"pair penalty towards {other!r}", peer)
        if c < 0:
            msg = f"peer {peer!r}: pair penalty towards {other!r} must be >= 0, got {c}"
            raise InvalidPeer(msg, peer=peer)
        out[other] = c
    return tuple(sorted(out.items()))


def _check_case_numbers(case: Case) -> None:
    for what, value, strict in (
        ("tick", case.tick, True),
        ("slot_hours", case.slot_hours, True),
        ("alpha", case.alpha, False),
        ("beta", case.beta, False),
        ("regularisation", case.regularisation, False),
    ):
        ok = (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and math.isfinite(value)
            and (value > 0 if strict else value >= 0)
        )
        if not ok:
            want = "> 0" if strict else ">= 0"
            msg = f"case {what} must be a finite number {want}, got {value!r}"
            raise InvalidCase(msg)


@dataclass(frozen=True, slots=True)
class Case:
    """Everything one clearing needs.

    Attributes:
        name: A label for reports.
        network: The radial feeder, with every peer's bus.
        peers: The peers, in report order.
        currency: Currency code for reports.
        tick: Price tick in currency per kWh.
        slot_hours: Length of the delivery slot in hours.
        alpha: Default loss penalty α (currency/(kWh·Ω)) for peers without their own.
        beta: Default congestion penalty β (currency/kWh).
        regularisation: ε of the tie-breaking term ``ε/2 Σ_ij P_ij²`` (currency/kW²h).
    """

    name: str
    network: Network
    peers: tuple[Peer, ...]
    currency: str = "USD"
    tick: float = 0.0001
    slot_hours: float = 1.0
    alpha: float = 0.0
    beta: float = 0.0
    regularisation: float = DEFAULT_REGULARISATION
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.peers:
            msg = "empty market: the case has no peer"
            raise EmptyMarket(msg)
        index: dict[str, int] = {}
        for i, peer in enumerate(self.peers):
            if peer.name in index:
                msg = f"duplicate peer name {peer.name!r}"
                raise InvalidPeer(msg, peer=peer.name)
            index[peer.name] = i
            self.network.bus_of(peer.name)
        object.__setattr__(self, "_index", index)
        for peer in self.peers:
            for other in peer.partners or ():
                if other not in index:
                    msg = f"peer {peer.name!r} lists unknown trading partner {other!r}"
                    raise UnknownPeer(msg, peer=other)
            for other, _ in peer.pair_penalties:
                if other not in index:
                    msg = f"peer {peer.name!r} has a pair penalty towards unknown peer {other!r}"
                    raise UnknownPeer(msg, peer=other)
        grids = [p for p in self.peers if p.role is Role.GRID]
        if len(grids) > 1:
            msg = f"at most one main-grid peer, got {[g.name for g in grids]}"
            raise InvalidCase(msg)
        for grid in grids:
            bus = self.network.bus_of(grid.name)
            if bus != self.network.root:
                msg = (
                    f"the main grid {grid.name!r} must sit at the root bus "
                    f"{self.network.root!r}, not {bus!r}"
                )
                raise InvalidPeer(msg, peer=grid.name)
        if not any(p.is_producer for p in self.peers) or all(p.is_producer for p in self.peers):
            msg = "empty market: a case needs at least one producer and one consumer"
            raise EmptyMarket(msg)
        _check_case_numbers(self)

    def index(self, name: str) -> int:
        """Return the position of peer ``name``.

        Raises:
            UnknownPeer: If there is no such peer.
        """
        try:
            return self._index[name]
        except KeyError:
            msg = f"unknown peer {name!r}"
            raise UnknownPeer(msg, peer=name) from None

    @property
    def names(self) -> tuple[str, ...]:
        """Peer names in case order."""
        return tuple(p.name for p in self.peers)

    @property
    def has_pair_penalties(self) -> bool:
        """True when some peer puts a non-zero pair penalty on a partner."""
        return any(c > 0 for p in self.peers for _, c in p.pair_penalties)

    @property
    def has_heat(self) -> bool:
        """True when some peer has heat data."""
        return any(p.heat is not None for p in self.peers)

    def grid_peer(self) -> Peer | None:
        """Return the main-grid peer, if any."""
        return next((p for p in self.peers if p.role is Role.GRID), None)

    def without(self, names: Sequence[str]) -> Case:
        """Return a copy without the peers ``names`` (removed from trading sets and penalties)."""
        drop = set(names)
        for name in drop:
            self.index(name)
        peers = []
        for peer in self.peers:
            if peer.name in drop:
                continue
            partners = None
            if peer.partners is not None:
                partners = tuple(x for x in peer.partners if x not in drop)
            pens = tuple((x, c) for x, c in peer.pair_penalties if x not in drop)
            peers.append(replace(peer, partners=partners, pair_penalties=pens))
        return replace(self, peers=tuple(peers))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Case:
        """Build a case from plain data (the JSON form, see docs/clearing.md).

        Raises:
            InvalidCase: Missing fields or invalid values (and subclasses).
        """
        return case_from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-ready form read by :meth:`from_dict`."""
        return {
            "name": self.name,
            "currency": self.currency,
            "tick": self.tick,
            "slot_hours": self.slot_hours,
            "tariff": {"alpha": self.alpha, "beta": self.beta},
            "regularisation": self.regularisation,
            "network": self.network.to_dict(),
            "peers": [_peer_to_dict(p) for p in self.peers],
        }


def _peer_to_dict(p: Peer) -> dict[str, Any]:
    item: dict[str, Any] = {
        "name": p.name,
        "role": p.role.value,
        "a": p.a,
        "b": p.b,
        "c": p.c,
        "p_min": p.p_min,
        "p_max": p.p_max,
    }
    if p.partners is not None:
        item["partners"] = list(p.partners)
    if p.heat is not None:
        h = p.heat
        item["heat"] = {"a": h.a, "b": h.b, "c": h.c, "h_min": h.h_min, "h_max": h.h_max}
    if p.chp is not None:
        item["chp"] = {k: list(v) for k, v in zip("ABCD", p.chp.points(), strict=True)}
    if p.alpha is not None:
        item["alpha"] = p.alpha
    if p.beta is not None:
        item["beta"] = p.beta
    if p.pair_penalties:
        item["pair_penalties"] = dict(p.pair_penalties)
    return item


def _field(data: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in data:
        msg = f"{where}: missing field {key!r}"
        raise InvalidCase(msg)
    return data[key]


def _point(value: Any, peer: str) -> tuple[float, float]:
    if not isinstance(value, Sequence) or isinstance(value, str) or len(value) != 2:
        msg = f"peer {peer!r}: a CHP point must be [P, H], got {value!r}"
        raise InvalidPeer(msg, peer=peer)
    return (_num(value[0], "CHP point P", peer), _num(value[1], "CHP point H", peer))


def peer_from_dict(data: Any) -> Peer:
    """Build a :class:`Peer` from plain data.

    Raises:
        InvalidPeer: Missing fields or invalid values.
        UnknownField: A key the peer format does not define.
    """
    if not isinstance(data, Mapping):
        msg = f"a peer must be an object, got {data!r}"
        raise InvalidCase(msg)
    name = str(_field(data, "name", "peer"))
    check_fields(data, PEER_FIELDS, f"peer {name!r}")

    def need(key: str, src: Mapping[str, Any]) -> Any:
        if not isinstance(src, Mapping) or key not in src:
            msg = f"peer {name!r}: missing field {key!r}"
            raise InvalidPeer(msg, peer=name)
        return src[key]

    heat = None
    if data.get("heat") is not None:
        h = data["heat"]
        if isinstance(h, Mapping):
            check_fields(h, HEAT_FIELDS, f"peer {name!r} heat")
        heat = HeatCurve(
            a=need("a", h),
            b=need("b", h),
            c=h.get("c", 0.0),
            h_min=need("h_min", h),
            h_max=need("h_max", h),
        )
    chp = None
    if data.get("chp") is not None:
        pts = data["chp"]
        if isinstance(pts, Mapping):
            check_fields(pts, CHP_FIELDS, f"peer {name!r} chp")
        a, b, c, d = (_point(need(k, pts), name) for k in "ABCD")
        chp = ChpRegion(a=a, b=b, c=c, d=d)
    partners = data.get("partners")
    penalties = data.get("pair_penalties")
    if penalties is not None and not isinstance(penalties, Mapping):
        msg = f"peer {name!r}: pair_penalties must be an object {{partner: cost}}"
        msg = f"{msg}, got {penalties!r}"
        raise InvalidPeer(msg, peer=name)
    return Peer(
        name=name,
        role=need("role", data),
        a=need("a", data),
        b=need("b", data),
        c=data.get("c", 0.0),
        p_min=need("p_min", data),
        p_max=need("p_max", data),
        partners=None if partners is None else tuple(str(x) for x in partners),
        heat=heat,
        chp=chp,
        alpha=data.get("alpha"),
        beta=data.get("beta"),
        pair_penalties=tuple((penalties or {}).items()),
    )


def case_from_dict(data: Any) -> Case:
    """Build a :class:`Case` from plain data; see :meth:`Case.from_dict`.

    The format is described in docs/case-format.md and
    ``clearing/cases/case.schema.json``.

    Raises:
        InvalidCase: Missing fields or invalid values (and subclasses).
        UnknownField: A key the format does not define, at any level.
    """
    if not isinstance(data, Mapping):
        msg = f"a case must be an object, got {type(data).__name__}"
        raise InvalidCase(msg)
    check_fields(data, CASE_FIELDS, "case")
    tariff = data.get("tariff") or {}
    if not isinstance(tariff, Mapping):
        msg = f"case: tariff must be an object {{alpha, beta}}, got {tariff!r}"
        raise InvalidCase(msg)
    check_fields(tariff, TARIFF_FIELDS, "tariff")
    raw_peers = _field(data, "peers", "case")
    if not isinstance(raw_peers, Sequence) or isinstance(raw_peers, str):
        msg = "case: peers must be a list"
        raise InvalidCase(msg)
    return Case(
        name=str(data.get("name", "case")),
        network=network_from_dict(_field(data, "network", "case")),
        peers=tuple(peer_from_dict(p) for p in raw_peers),
        currency=str(data.get("currency", "USD")),
        tick=data.get("tick", 0.0001),
        slot_hours=data.get("slot_hours", 1.0),
        alpha=tariff.get("alpha", 0.0),
        beta=tariff.get("beta", 0.0),
        regularisation=data.get("regularisation", DEFAULT_REGULARISATION),
    )


def load_case(path: str | Path) -> Case:
    """Load a case from a JSON file.

    Raises:
        InvalidCase: If the file cannot be read or parsed, or the data is invalid.
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        msg = f"cannot read case file {str(path)!r}: {exc}"
        raise InvalidCase(msg) from exc
    return case_from_dict(data)


def reference_case_path() -> Path:
    """Return the path of the shipped reference case (the chapter's 11-bus community)."""
    return Path(str(resources.files("clearing") / "cases" / REFERENCE_CASE))


def load_reference_case() -> Case:
    """Load the shipped reference case."""
    return load_case(reference_case_path())
