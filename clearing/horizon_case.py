"""A market over a horizon of T slots: peers with per-slot curves, assets, signals.

Everything here comes from the ledger, so it is in the ledger's integer
units (the same as a curve declaration and ``SetTariff``):

- a curve over one slot's energy ``E`` (kWh): ``½ a E² + b E + c`` with
  ``a_milli`` in milli-ticks per kWh², ``b`` in ticks per kWh, ``c`` in
  tick·Wh, and bounds ``q_min <= E <= q_max`` in Wh per slot, signed as in
  the chapter (12.3: injection positive);
- signals per slot: ``alpha_milli`` (α in 10^-3 currency/(kWh·Ω)) and
  ``beta_milli`` (β in 10^-3 currency/kWh), as ``SetTariff``; the grid's
  ``import_tariff`` and ``export_tariff`` in ticks per kWh;
- assets as in :mod:`clearing.assets`.

The case's ``tick`` (currency per tick) and ``slot_seconds`` turn them into
the solver's units (:func:`curve_rates`): power in kW, prices in
currency/kWh, a slot's cost as a rate in currency/h. With one-hour slots
this is exactly the mapping gate closure uses for the single-slot
:class:`~clearing.case.Case`.

Peer kinds: a producer injects (``q_min >= 0``), a consumer withdraws
(``q_max <= 0``), a **prosumer** may do either (``q_min < 0 < q_max``
allowed) and the **grid** sells at the import tariff and, when its
``q_min < 0``, buys at the export tariff. The chapter's sign rules hold per
direction: a trade ``i -> j`` is ``P_ij >= 0`` with ``P_ji = -P_ij``; sellers
are producers, prosumers and the grid, buyers consumers, prosumers and a grid
that buys.

Partner sets and pair penalties (μ_i of 12.1, product differentiation) are
per product. ``HorizonPeer.partners`` and ``pair_penalties`` are the
electricity ones. For heat, ``HorizonPeer.heat_terms`` is a
:class:`TradeTerms` of its own; when it is ``None`` the heat trades follow
``partners`` and carry no pair penalty, as every horizon case did before
heat had terms of its own (and as the single-slot heat model does), so
existing cases clear unchanged. ``heat_terms=TradeTerms()`` frees a peer's
heat trades while its electricity stays restricted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from clearing.assets import Asset, ChpUnit, FuelCellChp, validate_asset
from clearing.case import check_pair_penalties
from clearing.errors import EmptyMarket, InvalidCase, InvalidPeer, UnknownPeer
from clearing.horizon_errors import InvalidAsset, InvalidHorizon
from clearing.network import Network

DEFAULT_REGULARISATION = 1e-7  # currency/kW²h on Σ P_ij² / 2, as the single-slot case
MAX_SLOTS = 10_000


class PeerKind(StrEnum):
    """What a peer may do in the horizon."""

    PRODUCER = "producer"
    CONSUMER = "consumer"
    PROSUMER = "prosumer"
    GRID = "grid"


@dataclass(frozen=True, slots=True)
class SlotCurve:
    """A cost (or minus willingness to pay) over one slot's energy, in ledger units.

    Attributes:
        a_milli: Milli-ticks per kWh² (>= 0: convex).
        b: Ticks per kWh.
        c: Tick·Wh.
        q_min, q_max: Energy bounds, Wh per slot (injection positive).
    """

    a_milli: int
    b: int
    c: int
    q_min: int
    q_max: int


@dataclass(frozen=True, slots=True)
class SlotSignals:
    """The operator's and DSO's numbers for one slot.

    Attributes:
        alpha_milli: Loss penalty α, 10^-3 currency/(kWh·Ω) (>= 0).
        beta_milli: Congestion penalty β, 10^-3 currency/kWh (>= 0).
        penalised: σ, the lines that set θ_ij in this slot.
        import_tariff: Ticks per kWh the grid sells at (``None`` = its curve's ``b``).
        export_tariff: Ticks per kWh the grid buys at (``None`` = the import price);
            at most the import price.
    """

    alpha_milli: int = 0
    beta_milli: int = 0
    penalised: tuple[str, ...] = ()
    import_tariff: int | None = None
    export_tariff: int | None = None


@dataclass(frozen=True, slots=True)
class TradeTerms:
    """A peer's partner set and pair penalties for one product (heat; see the module docstring).

    Attributes:
        partners: μ_i for this product, the peers it may trade it with; ``None`` = all.
        pair_penalties: ``(partner, cost)`` pairs, the cost in currency/kWh
            this peer puts on its side of every trade of this product with
            that partner (>= 0), as :attr:`HorizonPeer.pair_penalties`.
            Checked and sorted by the owning :class:`HorizonPeer`.
    """

    partners: tuple[str, ...] | None = None
    pair_penalties: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True, slots=True)
class HorizonPeer:
    """A market participant over the horizon.

    Attributes:
        name: Unique name.
        kind: Producer, consumer, prosumer or the grid.
        curves: The curve of the peer's own dispatchable part, one per slot
            (or one for every slot).
        partners: μ_i, the peers it may trade electricity with; ``None`` = all.
            Heat follows it too unless ``heat_terms`` is given.
        heat: Heat curves (kWh_th), one per slot or one for all; ``None`` = no heat.
        assets: Its assets (:mod:`clearing.assets`), names unique within the peer.
        pair_penalties: c_ij, product differentiation, as the single-slot
            :attr:`clearing.case.Peer.pair_penalties`: ``(partner, cost)``
            pairs sorted by partner, the cost in currency/kWh this peer puts
            on its side of every electricity trade with that partner, the
            same in every slot (>= 0). A term of the objective and the trade
            prices only, never money paid. Electricity only: heat trades
            carry ``heat_terms``' penalties (none by default, as in the
            single-slot heat model).
        heat_terms: The heat trades' own partner set and pair penalties;
            ``None`` = heat follows ``partners`` with no penalty (see the
            module docstring).
    """

    name: str
    kind: PeerKind
    curves: tuple[SlotCurve, ...]
    partners: tuple[str, ...] | None = None
    heat: tuple[SlotCurve, ...] | None = None
    assets: tuple[Asset, ...] = ()
    pair_penalties: tuple[tuple[str, float], ...] = ()
    heat_terms: TradeTerms | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            msg = f"peer name must be a non-empty string, got {self.name!r}"
            raise InvalidPeer(msg, peer=str(self.name))
        try:
            object.__setattr__(self, "kind", PeerKind(self.kind))
        except ValueError:
            msg = f"peer {self.name!r}: kind must be one of {[k.value for k in PeerKind]}"
            raise InvalidPeer(msg, peer=self.name) from None
        _check_curves(self.name, self.kind, self.curves, "curves")
        if self.heat is not None:
            _check_curves(self.name, self.kind, self.heat, "heat")
        seen: set[str] = set()
        for asset in self.assets:
            name = getattr(asset, "name", None)
            if not isinstance(name, str) or name in seen:
                raise InvalidAsset(
                    asset=str(name),
                    peer=self.name,
                    field="name",
                    got=name,
                    want="a name unique within the peer",
                )
            seen.add(name)
        chps = [a for a in self.assets if isinstance(a, ChpUnit)]
        if chps and (len(chps) > 1 or self.kind in (PeerKind.CONSUMER, PeerKind.GRID)):
            raise InvalidAsset(
                asset=chps[0].name,
                peer=self.name,
                field="kind",
                got=self.kind.value,
                want="one CHP unit, on a producer or prosumer",
            )
        object.__setattr__(
            self, "pair_penalties", check_pair_penalties(self.pair_penalties, self.name)
        )
        if self.heat_terms is not None:
            terms = self.heat_terms
            if not isinstance(terms, TradeTerms):  # type: ignore[redundant-expr,unused-ignore]
                msg = f"peer {self.name!r}: heat_terms = {terms!r}, want a TradeTerms or None"  # type: ignore[unreachable,unused-ignore]
                raise InvalidPeer(msg, peer=self.name)
            _check_partners(self.name, "heat_terms.partners", terms.partners)
            pens = check_pair_penalties(terms.pair_penalties, self.name)
            object.__setattr__(self, "heat_terms", TradeTerms(terms.partners, pens))

    @property
    def heat_partners(self) -> tuple[str, ...] | None:
        """μ_i for heat: ``heat_terms.partners``, or ``partners`` without heat terms."""
        return self.partners if self.heat_terms is None else self.heat_terms.partners

    @property
    def heat_pair_penalties(self) -> tuple[tuple[str, float], ...]:
        """The heat trades' pair penalties (none without heat terms)."""
        return () if self.heat_terms is None else self.heat_terms.pair_penalties

    @property
    def sells(self) -> bool:
        """True when the peer may sell electricity."""
        return self.kind is not PeerKind.CONSUMER

    @property
    def buys(self) -> bool:
        """True when the peer may buy electricity (a grid only when it takes exports)."""
        if self.kind is PeerKind.GRID:
            return any(c.q_min < 0 for c in self.curves)
        return self.kind is not PeerKind.PRODUCER

    @property
    def sells_heat(self) -> bool:
        """True when the peer may sell heat."""
        if self.kind is PeerKind.CONSUMER:
            return False
        if any(isinstance(a, ChpUnit) for a in self.assets):
            return True  # as the single-slot case: a CHP unit sells heat (zero cost by default)
        if self.heat is None:
            return False
        return any(c.q_max > 0 for c in self.heat) or any(
            isinstance(a, FuelCellChp) for a in self.assets
        )

    @property
    def buys_heat(self) -> bool:
        """True when the peer may buy heat."""
        return self.heat is not None and self.kind in (PeerKind.CONSUMER, PeerKind.PROSUMER)

    def curve(self, t: int) -> SlotCurve:
        """The electricity curve of slot ``t``."""
        return self.curves[t if len(self.curves) > 1 else 0]

    def heat_curve(self, t: int) -> SlotCurve | None:
        """The heat curve of slot ``t`` (``None`` without heat)."""
        if self.heat is None:
            return None
        return self.heat[t if len(self.heat) > 1 else 0]


def _check_int(peer: str, what: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        msg = f"peer {peer!r}: {what} = {value!r}, want an int"
        raise InvalidPeer(msg, peer=peer)
    return value


def _check_partners(peer: str, what: str, partners: object) -> None:
    if partners is None:
        return
    if not isinstance(partners, tuple) or not all(isinstance(x, str) and x for x in partners):
        msg = f"peer {peer!r}: {what} = {partners!r}, want None or a tuple of peer names"
        raise InvalidPeer(msg, peer=peer)


def _check_curves(peer: str, kind: PeerKind, curves: object, what: str) -> None:
    if not isinstance(curves, tuple) or not curves:
        msg = f"peer {peer!r}: {what} = {curves!r}, want a non-empty tuple of SlotCurve"
        raise InvalidPeer(msg, peer=peer)
    for t, cv in enumerate(curves):
        if not isinstance(cv, SlotCurve):
            msg = f"peer {peer!r}: {what}[{t}] = {cv!r}, want a SlotCurve"
            raise InvalidPeer(msg, peer=peer)
        for name in ("a_milli", "b", "c", "q_min", "q_max"):
            _check_int(peer, f"{what}[{t}].{name}", getattr(cv, name))
        if cv.a_milli < 0:
            msg = f"peer {peer!r}: {what}[{t}].a_milli = {cv.a_milli}, want >= 0 (convex)"
            raise InvalidPeer(msg, peer=peer)
        if cv.q_min > cv.q_max:
            msg = f"peer {peer!r}: {what}[{t}] q_min {cv.q_min} > q_max {cv.q_max}"
            raise InvalidPeer(msg, peer=peer)
        if kind is PeerKind.PRODUCER and cv.q_min < 0:
            msg = f"peer {peer!r}: a producer's {what}[{t}] q_min = {cv.q_min}, want >= 0 (12.3)"
            raise InvalidPeer(msg, peer=peer)
        if kind is PeerKind.CONSUMER and cv.q_max > 0:
            msg = f"peer {peer!r}: a consumer's {what}[{t}] q_max = {cv.q_max}, want <= 0 (12.3)"
            raise InvalidPeer(msg, peer=peer)


@dataclass(frozen=True, slots=True)
class HorizonCase:
    """Everything a multi-period clearing needs.

    Attributes:
        name: A label for reports.
        network: The radial feeder with every peer's bus.
        peers: The peers, in report order.
        slots: T, the number of slots.
        slot_seconds: Length of one slot, s (3600 = hourly, 900 = quarter-hourly).
        signals: One :class:`SlotSignals` per slot, or one for every slot.
        currency: Currency code for reports.
        tick: Currency per price tick.
        regularisation: ε of ``ε/2 Σ_ij P_ij²`` per slot (currency/kW²h).
    """

    name: str
    network: Network
    peers: tuple[HorizonPeer, ...]
    slots: int
    slot_seconds: int = 3600
    signals: tuple[SlotSignals, ...] = (SlotSignals(),)
    currency: str = "USD"
    tick: float = 0.0001
    regularisation: float = DEFAULT_REGULARISATION
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        validate_horizon(self)
        object.__setattr__(self, "_index", {p.name: i for i, p in enumerate(self.peers)})

    @property
    def names(self) -> tuple[str, ...]:
        """Peer names in case order."""
        return tuple(p.name for p in self.peers)

    @property
    def slot_hours(self) -> float:
        """Slot length in hours."""
        return self.slot_seconds / 3600.0

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

    def signal(self, t: int) -> SlotSignals:
        """The signals of slot ``t``."""
        return self.signals[t if len(self.signals) > 1 else 0]

    @property
    def has_heat(self) -> bool:
        """True when some peer has heat curves."""
        return any(p.heat is not None for p in self.peers)


def _per_slot(value: Sequence[object], what: str, slots: int) -> None:
    if len(value) not in (1, slots):
        raise InvalidHorizon(field=what, got=len(value), want=f"1 or {slots} values (T)")


def validate_horizon(case: HorizonCase) -> None:
    """Check a horizon case; see :class:`HorizonCase`.

    Raises:
        InvalidHorizon: Bad slot count or length, signals, or per-slot lengths.
        InvalidPeer, InvalidAsset, UnknownPeer, UnknownBus, EmptyMarket: Bad peers.
    """
    for what, value, lo, hi in (
        ("slots", case.slots, 1, MAX_SLOTS),
        ("slot_seconds", case.slot_seconds, 1, 86_400),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise InvalidHorizon(field=what, got=value, want=f"an int in [{lo}, {hi}]")
    for what, num, strict in (
        ("tick", case.tick, True),
        ("regularisation", case.regularisation, False),
    ):
        ok = isinstance(num, int | float) and not isinstance(num, bool) and num == num
        if not ok or num < 0 or (strict and num == 0) or num == float("inf"):
            raise InvalidHorizon(
                field=what,
                got=num,
                want="a finite number > 0" if strict else "a finite number >= 0",
            )
    T = case.slots
    if not isinstance(case.signals, tuple) or not case.signals:
        raise InvalidHorizon(field="signals", got=case.signals, want="a non-empty tuple")
    _per_slot(case.signals, "signals", T)
    lines = {ln.name for ln in case.network.lines}
    for t, s in enumerate(case.signals):
        if not isinstance(s, SlotSignals):
            raise InvalidHorizon(field=f"signals[{t}]", got=s, want="a SlotSignals")
        for what in ("alpha_milli", "beta_milli"):
            v = getattr(s, what)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise InvalidHorizon(field=f"signals[{t}].{what}", got=v, want="an int >= 0")
        for what in ("import_tariff", "export_tariff"):
            v = getattr(s, what)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int)):
                raise InvalidHorizon(field=f"signals[{t}].{what}", got=v, want="an int or None")
        imp, exp = s.import_tariff, s.export_tariff
        if imp is not None and exp is not None and exp > imp:
            raise InvalidHorizon(
                field=f"signals[{t}].export_tariff",
                got=s.export_tariff,
                want=f"<= import_tariff {s.import_tariff}",
            )
        for line in s.penalised:
            if line not in lines:
                raise InvalidHorizon(
                    field=f"signals[{t}].penalised",
                    got=line,
                    want=f"a line of the network {sorted(lines)}",
                )
    if not case.peers:
        msg = "empty market: the case has no peer"
        raise EmptyMarket(msg)
    names: set[str] = set()
    for p in case.peers:
        if not isinstance(p, HorizonPeer):  # type: ignore[redundant-expr,unused-ignore]
            msg = f"peers must be HorizonPeer, got {p!r}"  # type: ignore[unreachable]
            raise InvalidCase(msg)
        if p.name in names:
            msg = f"duplicate peer name {p.name!r}"
            raise InvalidPeer(msg, peer=p.name)
        names.add(p.name)
        case.network.bus_of(p.name)
        _per_slot(p.curves, f"peer {p.name!r} curves", T)
        if p.heat is not None:
            _per_slot(p.heat, f"peer {p.name!r} heat", T)
        for asset in p.assets:
            validate_asset(asset, p.name, T, case.slot_seconds)
    for p in case.peers:
        for what, partners, penalties in (
            ("", p.partners, p.pair_penalties),
            ("heat ", p.heat_partners, p.heat_pair_penalties),
        ):
            for other in partners or ():
                if other not in names:
                    msg = f"peer {p.name!r} lists unknown {what}trading partner {other!r}"
                    raise UnknownPeer(msg, peer=other)
            for other, _ in penalties:
                if other not in names:
                    msg = f"peer {p.name!r} has a {what}pair penalty towards unknown peer {other!r}"
                    raise UnknownPeer(msg, peer=other)
    grids = [p for p in case.peers if p.kind is PeerKind.GRID]
    if len(grids) > 1:
        msg = f"at most one main-grid peer, got {[g.name for g in grids]}"
        raise InvalidCase(msg)
    for g in grids:
        if case.network.bus_of(g.name) != case.network.root:
            msg = f"the main grid {g.name!r} must sit at the root bus {case.network.root!r}"
            raise InvalidPeer(msg, peer=g.name)
    if not any(p.sells for p in case.peers) or not any(p.buys for p in case.peers):
        msg = "empty market: a horizon needs a peer that may sell and one that may buy"
        raise EmptyMarket(msg)


def curve_rates(
    curve: SlotCurve, tick: float, hours: float
) -> tuple[float, float, float, float, float]:
    """Return ``(a, b, c, p_min, p_max)`` of a ledger curve in the solver's rate units.

    A slot's cost ``½ a_e E² + b E + c`` with ``E = P h`` (kWh), divided by
    ``h``, is ``½ (a_e h) P² + b P + c / h`` per hour; so ``a`` is in
    currency/kW²h, ``b`` in currency/kWh, ``c`` in currency/h and the bounds
    in kW. With ``h = 1`` this is gate closure's mapping.

    >>> curve_rates(SlotCurve(a_milli=10_000, b=3840, c=0, q_min=-42_000, q_max=-21_000), 1e-4, 1.0)
    (0.001, 0.384, 0.0, -42.0, -21.0)
    """
    a = curve.a_milli / 1000.0 * tick * hours
    b = curve.b * tick
    c = curve.c / 1000.0 * tick / hours
    return a, b, c, curve.q_min / 1000.0 / hours, curve.q_max / 1000.0 / hours
