"""The bridge between a single-slot :class:`~clearing.case.Case` and a horizon.

``horizon_from_case`` turns a case into a horizon of equal slots in the
ledger's integer units; ``case_for_slot`` turns one slot of an asset-free
horizon back into a case. Tests and benchmarks use the pair to compare the
multi-period clearing with the single-slot one (T = 1 clears the same).
"""

from __future__ import annotations

from clearing.assets import Asset, ChpUnit
from clearing.case import Case, Peer, Role
from clearing.case import HeatCurve as CaseHeatCurve
from clearing.horizon_case import (
    HorizonCase,
    HorizonPeer,
    PeerKind,
    SlotCurve,
    SlotSignals,
    curve_rates,
)
from clearing.horizon_errors import InvalidHorizon


def _curve_from(
    a: float, b: float, c: float, lo: float, hi: float, tick: float, hours: float
) -> SlotCurve:
    return SlotCurve(
        a_milli=round(a / hours / tick * 1000),
        b=round(b / tick),
        c=round(c * hours / tick * 1000),
        q_min=round(lo * hours * 1000),
        q_max=round(hi * hours * 1000),
    )


def horizon_from_case(case: Case, slots: int = 1) -> HorizonCase:
    """Return ``case`` as a horizon of ``slots`` equal slots (ledger units, rounded).

    Curves, bounds and tariffs are rounded to the ledger's integer units
    (milli-ticks, ticks, Wh, W, 10^-3 α and β); a CHP region becomes a
    :class:`~clearing.assets.ChpUnit`. The reference case converts exactly.

    Raises:
        InvalidHorizon: If a peer has its own α or β (per-slot signals apply to all).
    """
    tick, hours = case.tick, case.slot_hours
    peers = []
    for p in case.peers:
        if p.alpha is not None or p.beta is not None:
            raise InvalidHorizon(
                field=f"peer {p.name!r} alpha/beta",
                got=(p.alpha, p.beta),
                want="None (the horizon's signals apply to every peer)",
            )
        curve = _curve_from(p.a, p.b, p.c, p.p_min, p.p_max, tick, hours)
        heat = None
        if p.heat is not None:
            h = p.heat
            heat = (_curve_from(h.a, h.b, h.c, h.h_min, h.h_max, tick, hours),)
        assets: tuple[Asset, ...] = ()
        if p.chp is not None:
            w = [(round(x * 1000), round(y * 1000)) for x, y in p.chp.points()]
            assets = (ChpUnit(name="chp", a=w[0], b=w[1], c=w[2], d=w[3]),)
        kind = {
            Role.PRODUCER: PeerKind.PRODUCER,
            Role.CONSUMER: PeerKind.CONSUMER,
            Role.GRID: PeerKind.GRID,
        }[p.role]
        peers.append(
            HorizonPeer(p.name, kind, (curve,), p.partners, heat, assets, p.pair_penalties)
        )
    return HorizonCase(
        name=case.name,
        network=case.network,
        peers=tuple(peers),
        slots=slots,
        slot_seconds=round(hours * 3600),
        signals=(
            SlotSignals(alpha_milli=round(case.alpha * 1000), beta_milli=round(case.beta * 1000)),
        ),
        currency=case.currency,
        tick=tick,
        regularisation=case.regularisation,
    )


def case_for_slot(horizon: HorizonCase, t: int) -> Case:
    """Return slot ``t`` of an asset-free horizon as a single-slot :class:`Case`.

    The mapping is the one of :func:`curve_rates`; the slot's α and β become
    the case tariff, and a peer's :class:`~clearing.assets.ChpUnit` its CHP
    region. Used to compare the horizon with today's single-slot clearing.

    Raises:
        InvalidHorizon: If a peer is a prosumer, a grid that buys, has an
            asset other than a CHP unit, or heat terms other than its
            electricity partner set without penalties (the single-slot case
            cannot say it), or the slot sets import/export tariffs.
    """
    hours = horizon.slot_hours
    sig = horizon.signal(t)
    if sig.import_tariff is not None or sig.export_tariff is not None:
        raise InvalidHorizon(
            field=f"signals[{t}] tariffs",
            got=sig,
            want="no import/export tariff in a single-slot case",
        )
    peers = []
    for p in horizon.peers:
        if p.kind is PeerKind.PROSUMER or (p.kind is PeerKind.GRID and p.buys):
            raise InvalidHorizon(
                field=f"peer {p.name!r} kind",
                got=p.kind.value,
                want="a producer, consumer or a grid that only sells",
            )
        if p.heat_partners != p.partners or p.heat_pair_penalties:
            raise InvalidHorizon(
                field=f"peer {p.name!r} heat_terms",
                got=p.heat_terms,
                want="None (a single-slot peer has one partner set and no heat penalties)",
            )
        others = [a for a in p.assets if not isinstance(a, ChpUnit)]
        if others:
            raise InvalidHorizon(
                field=f"peer {p.name!r} assets", got=others, want="none besides a CHP unit"
            )
        a, b, c, lo, hi = curve_rates(p.curve(t), horizon.tick, hours)
        heat = None
        hc = p.heat_curve(t)
        if hc is not None:
            ha, hb, hcc, hlo, hhi = curve_rates(hc, horizon.tick, hours)
            heat = CaseHeatCurve(ha, hb, hcc, hlo, hhi)
        chp = next((x.region() for x in p.assets if isinstance(x, ChpUnit)), None)
        role = {
            PeerKind.PRODUCER: Role.PRODUCER,
            PeerKind.CONSUMER: Role.CONSUMER,
            PeerKind.GRID: Role.GRID,
        }[p.kind]
        peers.append(
            Peer(
                p.name,
                role,
                a,
                b,
                c,
                lo,
                hi,
                p.partners,
                heat,
                chp,
                pair_penalties=p.pair_penalties,
            )
        )
    return Case(
        name=f"{horizon.name} slot {t}",
        network=horizon.network,
        peers=tuple(peers),
        currency=horizon.currency,
        tick=horizon.tick,
        slot_hours=hours,
        alpha=sig.alpha_milli / 1000.0,
        beta=sig.beta_milli / 1000.0,
        regularisation=horizon.regularisation,
    )
