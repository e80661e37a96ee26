"""A community of households on a SimBench low-voltage grid, with a year of profiles.

:func:`simbench_community` reads a SimBench grid (the ``grid`` extra) and
returns plain data: the feeder, one :class:`Household` per load with its
load profile, the PV (sgen) at its bus and its profile, and the assets a
seeded, documented rule (:class:`AssetRule`) gives it: a battery, an
electric vehicle, a heat pump. The asset models that schedule these over a
horizon live elsewhere; this module only says who owns what, with the
numbers, so that the same seed always builds the same community.

Units: kW, kWh, hours; profile steps are SimBench's 15 minutes
(:data:`~clearing.importers.SIMBENCH_STEP_HOURS`), 35,136 of them (2016).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from clearing.case import Case
from clearing.importers import (
    SIMBENCH_STEP_HOURS,
    PeerRule,
    case_from_grid,
    grid_from_pandapower,
    simbench_net,
    simbench_profiles,
)
from clearing.network import Network

FloatArray = npt.NDArray[np.float64]
STEPS_PER_DAY = 96


@dataclass(frozen=True, slots=True)
class HouseholdBattery:
    """A home battery: ``capacity_kwh``, ``power_kw`` (charge and discharge),
    one-way efficiencies, state-of-charge bounds and start as fractions of capacity."""

    capacity_kwh: float
    power_kw: float
    charge_efficiency: float
    discharge_efficiency: float
    soc_min: float
    soc_max: float
    soc_start: float


@dataclass(frozen=True, slots=True)
class HouseholdEv:
    """An electric vehicle, at home from ``arrival_step`` to ``departure_step`` the next day.

    Steps are 15-minute steps of the day (0-95). ``energy_kwh`` must be
    charged by departure; ``v2g`` allows discharging into the home or grid.
    """

    capacity_kwh: float
    charge_kw: float
    arrival_step: int
    departure_step: int
    energy_kwh: float
    v2g: bool


@dataclass(frozen=True, slots=True)
class HouseholdHeatPump:
    """A heat pump with a one-node room model (12.3.2.1).

    ``C dT/dt = cop P - ua (T - T_out)``: ``power_kw`` electric rating,
    ``cop`` heat per electricity, ``capacity_kwh_per_k`` the room's heat
    capacity C, ``ua_kw_per_k`` its loss coefficient, comfort band in °C.
    """

    power_kw: float
    cop: float
    capacity_kwh_per_k: float
    ua_kw_per_k: float
    comfort_min_c: float
    comfort_max_c: float


@dataclass(frozen=True, slots=True)
class Household:
    """One building: its load peer, its bus, its PV peer (if any) and its assets."""

    name: str
    bus: str
    pv: str | None
    pv_kwp: float
    battery: HouseholdBattery | None
    ev: HouseholdEv | None
    heat_pump: HouseholdHeatPump | None


@dataclass(frozen=True, slots=True)
class AssetRule:
    """Who gets which asset, and its size (seeded; see :func:`assign_assets`).

    Attributes:
        seed: Seed of the ``numpy`` generator.
        battery_share_pv, battery_share_no_pv: Probability of a battery with / without PV.
        battery_kwh_per_kwp: Battery size per kWp of PV (clipped to 5-15 kWh; 5 kWh without PV).
        ev_share: Probability of an EV; ``v2g_share``: of those, the share with vehicle-to-grid.
        heat_pump_share: Probability of a heat pump.
    """

    seed: int = 0
    battery_share_pv: float = 0.5
    battery_share_no_pv: float = 0.1
    battery_kwh_per_kwp: float = 1.0
    ev_share: float = 0.3
    v2g_share: float = 0.2
    heat_pump_share: float = 0.3


def assign_assets(
    names: tuple[str, ...], pv_kwp: tuple[float, ...], rule: AssetRule
) -> tuple[tuple[HouseholdBattery | None, HouseholdEv | None, HouseholdHeatPump | None], ...]:
    """Give each household its assets by the seeded rule.

    Each household draws the same eight uniforms ``u[0..7]`` in order
    (one ``(n, 8)`` draw), whether it uses them or not, so one household's
    assets never shift another's:

    - battery if ``u0 < battery_share_pv`` (with PV) or ``< battery_share_no_pv``;
      ``clip(battery_kwh_per_kwp x kWp, 5, 15)`` kWh (5 without PV), power
      half the capacity per hour, efficiencies 0.95, SoC 10-90 %, start 50 %;
    - EV if ``u1 < ev_share``: 50 kWh, 11 kW, home from 17:00 + ``u2`` x 3 h
      to 07:00 + ``u3`` x 2 h (15-minute steps), needs 5 + 15 ``u4`` kWh by
      departure; vehicle-to-grid if ``u5 < v2g_share``;
    - heat pump if ``u6 < heat_pump_share``: 2 + 3 ``u7`` kW electric, COP 3,
      room C = 10 kWh/K, UA = 0.2 kW/K, comfort 20-22 °C.
    """
    rng = np.random.default_rng(rule.seed)
    u = rng.uniform(size=(len(names), 8))
    out = []
    for k, kwp in enumerate(pv_kwp):
        share = rule.battery_share_pv if kwp > 0 else rule.battery_share_no_pv
        battery = None
        if u[k, 0] < share:
            size = float(np.clip(rule.battery_kwh_per_kwp * kwp, 5.0, 15.0)) if kwp > 0 else 5.0
            battery = HouseholdBattery(size, size / 2, 0.95, 0.95, 0.1, 0.9, 0.5)
        ev = None
        if u[k, 1] < rule.ev_share:
            arrival = 68 + int(u[k, 2] * 12)  # 17:00-19:45
            departure = 28 + int(u[k, 3] * 8)  # 07:00-08:45
            ev = HouseholdEv(50.0, 11.0, arrival, departure, 5.0 + 15.0 * float(u[k, 4]),
                             bool(u[k, 5] < rule.v2g_share))  # fmt: skip
        heat_pump = None
        if u[k, 6] < rule.heat_pump_share:
            heat_pump = HouseholdHeatPump(2.0 + 3.0 * float(u[k, 7]), 3.0, 10.0, 0.2, 20.0, 22.0)
        out.append((battery, ev, heat_pump))
    return tuple(out)


@dataclass(frozen=True, slots=True, eq=False)
class Community:
    """A SimBench community: feeder, households, and their profiles.

    Attributes:
        code: The SimBench code.
        network: The feeder with every load and sgen peer's bus (and ``grid`` at the root).
        households: One per load, in load-table order.
        loads: Load peer names (columns of ``load_kw``).
        pvs: Sgen peer names (columns of ``pv_kw``).
        load_kw: Demand per step and load, kW (steps x loads).
        pv_kw: PV output per step and sgen, kW (steps x sgens).
        step_hours: Length of a step (0.25 h).
    """

    code: str
    network: Network
    households: tuple[Household, ...]
    loads: tuple[str, ...]
    pvs: tuple[str, ...]
    load_kw: FloatArray
    pv_kw: FloatArray
    step_hours: float

    @property
    def steps(self) -> int:
        """Number of profile steps."""
        return int(self.load_kw.shape[0])

    def case_at(self, step: int, rule: PeerRule | None = None) -> Case:
        """Return the single-slot case of one step (as :func:`case_from_simbench` gives it)."""
        from clearing.importers import case_from_simbench

        return case_from_simbench(self.code, time_step=step, rule=rule)


def simbench_community(code: str = "1-LV-rural1--0-sw", rule: AssetRule | None = None) -> Community:
    """Build a community of households on the SimBench grid ``code``.

    Every load is a household; an sgen at a household's bus is its PV (the
    first household of the bus takes the first sgen there; sgens at buses
    without a load stay plain producers, not listed in ``households``).

    Raises:
        GridImportError: Unknown code or no profiles.
        InvalidOption: simbench is not installed.
        NonRadialNetwork: The switched grid is not a tree.
    """
    rule = AssetRule() if rule is None else rule
    net = simbench_net(code)
    loads, sgens = simbench_profiles(code)
    grid = grid_from_pandapower(net, name=f"SimBench {code}")
    network = case_from_grid(grid, PeerRule(slot_hours=SIMBENCH_STEP_HOURS)).network
    load_names = tuple(f"load{int(k)}" for k in loads.columns)
    pv_names = tuple(f"sgen{int(k)}" for k in sgens.columns)
    nominal = {f"sgen{int(k)}": float(p) * 1000.0 for k, p in net.sgen["p_mw"].items()}
    free = list(pv_names)
    pv_of: dict[str, str] = {}
    for name in load_names:
        bus = network.bus_of(name)
        match = next((p for p in free if network.bus_of(p) == bus), None)
        if match is not None:
            free.remove(match)
            pv_of[name] = match
    kwp = tuple(nominal[pv_of[n]] if n in pv_of else 0.0 for n in load_names)
    assets = assign_assets(load_names, kwp, rule)
    households = tuple(
        Household(n, network.bus_of(n), pv_of.get(n), p, *a)
        for n, p, a in zip(load_names, kwp, assets, strict=True)
    )
    return Community(
        code=code,
        network=network,
        households=households,
        loads=load_names,
        pvs=pv_names,
        load_kw=np.asarray(loads.to_numpy(), dtype=np.float64),
        pv_kw=np.asarray(sgens.to_numpy(), dtype=np.float64),
        step_hours=SIMBENCH_STEP_HOURS,
    )
