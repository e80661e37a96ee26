"""The three market designs measured on the same day, and the figures of the summary.

- **P2P market**: the CDA's outcome as settled on the chain. A building's
  contracted energy is what it sold minus what it bought in the CDA; its
  meter reads its actual net energy; the difference is its imbalance, which
  the ledger settles against the ``grid`` account at the slot's import or
  export tariff (docs/settlement.md). So "the grid sells at the import
  tariff and buys at the export tariff" is the settlement rule itself, and
  no grid peer's standing orders are needed.
- **No P2P**: every building runs the same HEMS against the tariffs alone
  and buys its deficit at the import tariff and sells its surplus at the
  export tariff.
- **Pool**: the operator's multi-period reference clearing
  (``clearing.clear_horizon``, loss model with the chapter's α): economic
  dispatch of every building's battery, EV and heat pump (the same room
  and comfort band as its agent's) over the day, with one grid
  peer selling at the import and buying at the export tariff.

Figures (energies in kWh, power in kW, money in currency):

- community cost: what the buildings together pay to outside the
  community (payments between buildings cancel);
- grid import / export: energy bought from / sold to the grid;
- peak import: the largest grid purchase in one slot, kW;
- self-consumption: the share of the community's PV not sold to the grid;
- losses: I²R losses of the feeder's line flows from the buildings' net
  injections (the pool's from its own dispatch).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from node.simulate.day import ALPHA_MILLI, SLOT_HOURS, Day, FloatArray, HeatPumpSpec

if TYPE_CHECKING:
    from clearing.assets import HeatPump
    from clearing.horizon import HorizonResult

BIG_WH = 100_000_000  # Wh per slot the grid peer may sell or buy in the pool


@dataclass(frozen=True, slots=True, eq=False)
class Outcome:
    """One design's day: per-slot arrays (slots first).

    Attributes:
        design: ``P2P market``, ``no P2P`` or ``pool``.
        net_kw: (T, buildings) net injection of each building, kW.
        grid_import_kw, grid_export_kw: (T,) energy bought from / sold to the grid, kW.
        cost: (T,) what the community pays outside, currency.
        losses_kw: (T,) feeder losses, kW.
        soc_kwh: (T, buildings) battery energy at the end of each slot (nan: no battery).
    """

    design: str
    net_kw: FloatArray
    grid_import_kw: FloatArray
    grid_export_kw: FloatArray
    cost: FloatArray
    losses_kw: FloatArray
    soc_kwh: FloatArray


@dataclass(frozen=True, slots=True)
class Summary:
    """The summary row of one design."""

    design: str
    cost: float
    grid_import_kwh: float
    grid_export_kwh: float
    peak_import_kw: float
    self_consumption: float
    losses_kwh: float


def feeder_losses(day: Day, net_kw: FloatArray) -> FloatArray:
    """Losses per slot (kW) of the flows the buildings' net injections cause."""
    net = day.network
    buses = net.bus_indices(net.bus_of(b.name) for b in day.buildings)
    return np.array([net.losses_kw(net.peer_flows(buses, row)) for row in net_kw])


def line_loading(day: Day, net_kw: FloatArray) -> FloatArray:
    """(T, lines) |flow| / capacity (0 for unlimited lines)."""
    net = day.network
    buses = net.bus_indices(net.bus_of(b.name) for b in day.buildings)
    caps = net.capacities()
    flows = np.array([net.peer_flows(buses, row) for row in net_kw])
    with np.errstate(divide="ignore", invalid="ignore"):
        load = np.where(np.isfinite(caps), np.abs(flows) / caps, 0.0)
    return np.asarray(load)


def grid_only_outcome(day: Day, net_kw: FloatArray, soc_kwh: FloatArray, design: str) -> Outcome:
    """Every building trades only with the grid at the tariffs (vectorised)."""
    imp = np.array(day.import_price, dtype=np.float64)
    exp = np.array(day.export_price, dtype=np.float64)
    buy = np.maximum(-net_kw, 0.0).sum(axis=1)
    sell = np.maximum(net_kw, 0.0).sum(axis=1)
    cost = (imp * buy - exp * sell) * SLOT_HOURS * day.tick
    return Outcome(design, net_kw, buy, sell, cost, feeder_losses(day, net_kw), soc_kwh)


def pool_outcome(day: Day) -> tuple[Outcome, HorizonResult]:
    """Clear the day with ``clear_horizon`` (loss model); the outcome and the raw result."""
    from clearing import clear_horizon
    from clearing.assets import (
        Asset,
        Battery,
        ElectricVehicle,
        InflexibleLoad,
        Photovoltaic,
    )
    from clearing.horizon_case import HorizonCase, HorizonPeer, PeerKind, SlotCurve, SlotSignals

    T = day.slots
    wh = SLOT_HOURS * 1000.0
    peers = []
    for b in day.buildings:
        assets: list[Asset] = []
        if any(x > 0 for x in b.load_kw):
            assets.append(InflexibleLoad("load", tuple(round(x * wh) for x in b.load_kw)))
        if any(x > 0 for x in b.pv_kw):
            assets.append(Photovoltaic("pv", tuple(round(x * wh) for x in b.pv_kw), False))
        if b.battery is not None:
            s = b.battery
            ppm = round(s.efficiency * 1e6)
            assets.append(
                Battery(
                    "bat", round(s.capacity_kwh * 1000), round(s.soc_min_kwh * 1000),
                    round(s.soc_max_kwh * 1000), round(s.power_kw * 1000),
                    round(s.power_kw * 1000), round(s.soc_start_kwh * 1000), ppm, ppm,
                )
            )  # fmt: skip
        if b.ev is not None:
            e = b.ev
            assets.append(
                ElectricVehicle(
                    "ev", 0, e.departure_slot, round(e.needed_kwh * 1000),
                    round(e.charge_kw * 1000), round(e.capacity_kwh * 1000), 0,
                    round(e.efficiency * 1e6),
                )
            )  # fmt: skip
        if b.heat_pump is not None:
            assets.append(heat_pump_asset(b.heat_pump))
        kind = PeerKind(b.role)
        peers.append(HorizonPeer(b.name, kind, (SlotCurve(0, 0, 0, 0, 0),), assets=tuple(assets)))
    grid_curve = SlotCurve(0, day.import_price[0], 0, -BIG_WH, BIG_WH)
    peers.append(HorizonPeer(day.grid, PeerKind.GRID, (grid_curve,)))
    signals = tuple(
        SlotSignals(alpha_milli=ALPHA_MILLI, import_tariff=i, export_tariff=e)
        for i, e in zip(day.import_price, day.export_price, strict=True)
    )
    case = HorizonCase(
        f"{day.name} day",
        day.network,
        tuple(peers),
        slots=T,
        slot_seconds=round(3600 * SLOT_HOURS),
        signals=signals,
        currency=day.currency,
        tick=day.tick,
    )
    result = clear_horizon(case, "loss")
    g = result.injection[:, case.index(day.grid)]
    imp = np.array(day.import_price, dtype=np.float64)
    exp = np.array(day.export_price, dtype=np.float64)
    buy, sell = np.maximum(g, 0.0), np.maximum(-g, 0.0)
    cost = (imp * buy - exp * sell) * SLOT_HOURS * day.tick
    idx = [case.index(b.name) for b in day.buildings]
    net_kw = np.asarray(result.injection[:, idx])
    soc = np.full((T, len(day.buildings)), np.nan)
    for k, b in enumerate(day.buildings):
        if b.battery is not None:
            soc[:, k] = result.assets[(b.name, "bat")]["soc"]
    outcome = Outcome("pool", net_kw, buy, sell, cost, np.asarray(result.losses_kw), soc)
    return outcome, result


def heat_pump_asset(hp: HeatPumpSpec) -> HeatPump:
    """The clearing's :class:`~clearing.assets.HeatPump` for an agent's heat pump.

    ``heat_pump_for`` gives W-, W/K- and Wh/K-round values and temperatures
    in whole m°C, so the pool's room is the agent's room exactly.
    """
    from clearing.assets import HeatPump

    def mc(values: Sequence[float]) -> tuple[int, ...]:
        return tuple(round(v * 1000) for v in values)

    return HeatPump(
        "hp", round(hp.power_kw * 1000), round(hp.cop * 1e6), round(hp.ua_kw_per_k * 1000),
        round(hp.capacitance_kwh_per_k * 1000), round(hp.start_c * 1000),
        mc(hp.comfort_min_c), mc(hp.comfort_max_c), mc(hp.outdoor_c),
    )  # fmt: skip


def summarise(day: Day, outcome: Outcome) -> Summary:
    """The summary row of a design."""
    pv = sum(sum(b.pv_kw) for b in day.buildings) * SLOT_HOURS
    export = float(outcome.grid_export_kw.sum() * SLOT_HOURS)
    return Summary(
        design=outcome.design,
        cost=float(outcome.cost.sum()),
        grid_import_kwh=float(outcome.grid_import_kw.sum() * SLOT_HOURS),
        grid_export_kwh=export,
        peak_import_kw=float(outcome.grid_import_kw.max()),
        self_consumption=1.0 - export / pv if pv > 0 else float("nan"),
        losses_kwh=float(outcome.losses_kw.sum() * SLOT_HOURS),
    )


def format_summary(rows: Sequence[Summary], currency: str) -> str:
    """The summary as a fixed-width table."""
    head = (
        f"{'design':<12} {'cost ' + currency:>12} {'import kWh':>11} {'export kWh':>11} "
        f"{'peak imp kW':>11} {'self-cons.':>10} {'losses kWh':>10}"
    )
    lines = [head, "-" * len(head)]
    lines += [
        f"{r.design:<12} {r.cost:12.2f} {r.grid_import_kwh:11.1f} {r.grid_export_kwh:11.1f} "
        f"{r.peak_import_kw:11.1f} {r.self_consumption:10.1%} {r.losses_kwh:10.2f}"
        for r in rows
    ]
    return "\n".join(lines)
