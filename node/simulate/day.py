"""The data of a simulated day: buildings, their profiles and assets, the tariffs.

Two scenarios build a :class:`Day`:

- ``chapter``: the chapter's 11-bus community (``clearing.load_reference_case``).
  Consumers C1-C11 become households whose demand follows :data:`LOAD_SHAPE`
  (mean 1) times 75 % of the case's largest demand, with a seeded ±10 % noise
  per hour; producers G12-G19 become PV plants whose output follows
  :data:`PV_SHAPE` (peak 1) times their ``p_max``. Asset rule: every
  odd-numbered consumer (C1, C3, ..., C11) gets a battery of two hours of
  its mean demand (power half the capacity per hour, SoC 10-90 %, start
  50 %, efficiencies 95 %); C2, C6 and C10 get an EV (60 kWh, 22 kW
  charger, plugged in at midnight, leaving at 07:00 plus a seeded 0-2 h,
  needing 20 + 20 u kWh by then). G20 is the main grid.
- a SimBench code (``1-LV-rural1--0-sw``): the households of
  :func:`clearing.community.simbench_community` with the seeded
  :class:`~clearing.community.AssetRule`, on day :data:`SIMBENCH_DAY` of
  SimBench's 2016 profiles (a sunny June day), quarter-hours averaged to
  hours. Batteries as the rule gives them; an EV is plugged in from
  midnight until its departure step and needs its ``energy_kwh`` by then.
  PV plants at buses without a household are PV-only buildings.

Heat pumps (both scenarios; :func:`heat_pump_for`, :func:`outdoor_profile`):
in ``chapter`` every third consumer (C3, C6, C9) has one; in a SimBench
community each household draws one with probability
:data:`HEAT_PUMP_SHARE` from its own seeded stream (so the batteries and
EVs of a seed stay what they were). SimBench has no temperature profile,
so the outdoor temperature is a documented synthetic day: a cosine around
:data:`OUTDOOR_MEAN_C` with a swing of ±:data:`OUTDOOR_SWING_C` K,
coldest at 03:00 and warmest at 15:00, plus a seeded ±0.5 K per hour. It is
a cool (heating-season) day on purpose, so the pumps have heat to deliver;
the PV and load stay those of the scenario's own day. The pumps heat a
first-order room (``clearing.assets.HeatPump``, 12.3.2.1) that must stay in
the comfort band :data:`COMFORT_DAY_C` from 06:00 to 22:00 and
:data:`COMFORT_NIGHT_C` at night (a night set-back), starting at
:data:`INDOOR_START_C`.

Tariffs (both scenarios, ticks per kWh at the chapter's tick of 0.0001 USD):
import :data:`IMPORT_NIGHT` 00-06 h, :data:`IMPORT_DAY` 06-17 h and 21-24 h,
:data:`IMPORT_PEAK` 17-21 h; export :data:`EXPORT_PRICE` all day.

Slots are hours from 00:00; floats in kW and kWh (the node's side of the
float boundary: orders and readings are rounded to Wh with ``Units``).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from node.errors import NodeError

if TYPE_CHECKING:
    from clearing.network import Network

FloatArray = npt.NDArray[np.float64]

SLOT_HOURS = 1.0
MAX_SLOTS = 24
IMPORT_NIGHT = 1_500  # ticks/kWh (0.15 USD)
IMPORT_DAY = 2_000  # ticks/kWh (0.20 USD)
IMPORT_PEAK = 3_000  # ticks/kWh (0.30 USD)
EXPORT_PRICE = 500  # ticks/kWh (0.05 USD)
TICK = 0.0001  # USD per tick, as the chapter's case
SIMBENCH_DAY = 172  # day of the year (0-based) of the SimBench profiles: 21 June 2016
ALPHA_MILLI = 5  # loss penalty of the pool, 10^-3 USD/(kWh·Ω): the chapter's α
HEAT_PUMP_SHARE = 0.4  # share of SimBench households drawn to have a heat pump
OUTDOOR_MEAN_C = 8.0  # °C, the synthetic day's mean
OUTDOOR_SWING_C = 5.0  # K, half the day's range
COMFORT_DAY_C = (20.0, 23.0)  # °C, 06:00-22:00
COMFORT_NIGHT_C = (18.0, 23.0)  # °C, the night set-back
INDOOR_START_C = 21.0  # °C at 00:00
HEAT_PUMP_COP = 3.0
DESIGN_LIFT_K = 30.0  # the pump holds the band's minimum down to 30 K below it
TIME_CONSTANT_H = 40.0  # C / UA of the room: a heavy, well-insulated house

# Residential demand over the day (hour 0..23), mean 1: night low, morning and evening peaks.
LOAD_SHAPE = np.array(
    [0.55, 0.5, 0.48, 0.47, 0.48, 0.55, 0.8, 1.1, 1.15, 1.0, 0.95, 0.95,
     1.0, 0.95, 0.9, 0.92, 1.05, 1.3, 1.55, 1.6, 1.5, 1.3, 1.0, 0.72]
)  # fmt: skip
LOAD_SHAPE = LOAD_SHAPE / LOAD_SHAPE.mean()
# Clear-sky PV over the day, peak 1 at 13:00: a sine from 06:00 to 20:00.
PV_SHAPE = np.maximum(0.0, np.sin(np.pi * (np.arange(24) + 0.5 - 6.0) / 14.0))


@dataclass(frozen=True, slots=True)
class BatterySpec:
    """A home battery: kWh, kW, one-way efficiencies, SoC bounds and start in kWh."""

    capacity_kwh: float
    power_kw: float
    efficiency: float
    soc_min_kwh: float
    soc_max_kwh: float
    soc_start_kwh: float


@dataclass(frozen=True, slots=True)
class EvSpec:
    """An EV plugged in from slot 0 until ``departure_slot``, needing ``needed_kwh`` by then."""

    departure_slot: int
    needed_kwh: float
    charge_kw: float
    capacity_kwh: float
    efficiency: float


@dataclass(frozen=True, slots=True)
class HeatPumpSpec:
    """A heat pump heating a first-order room (the model of ``clearing.assets.HeatPump``).

    ``θ_t = a θ_{t-1} + (1 - a) (θ_out,t + cop e_t / ua)`` with
    ``a = exp(-h ua / capacitance)``; ``comfort_min_c[t] <= θ_t <= comfort_max_c[t]``.

    Attributes:
        power_kw: Electric power limit.
        cop: Coefficient of performance.
        ua_kw_per_k: The building's heat loss, kW/K.
        capacitance_kwh_per_k: The room's thermal capacitance, kWh/K.
        start_c: Indoor temperature at the start of the day, °C.
        comfort_min_c, comfort_max_c: The comfort band per slot, °C.
        outdoor_c: Outdoor temperature per slot, °C.
    """

    power_kw: float
    cop: float
    ua_kw_per_k: float
    capacitance_kwh_per_k: float
    start_c: float
    comfort_min_c: tuple[float, ...]
    comfort_max_c: tuple[float, ...]
    outdoor_c: tuple[float, ...]

    def decay(self, hours: float = SLOT_HOURS) -> float:
        """``a``: the share of the indoor temperature kept over one slot."""
        return math.exp(-hours * self.ua_kw_per_k / self.capacitance_kwh_per_k)

    def next_temperature(self, before_c: float, t: int, power_kw: float) -> float:
        """The indoor temperature at the end of slot ``t`` running at ``power_kw``."""
        a = self.decay()
        gain = self.outdoor_c[t] + self.cop * power_kw / self.ua_kw_per_k
        return a * before_c + (1.0 - a) * gain


def outdoor_profile(slots: int, seed: int) -> tuple[float, ...]:
    """The synthetic outdoor temperature per hourly slot, °C (see the module docstring).

    Rounded to m°C, the unit of ``clearing.assets.HeatPump``.
    """
    rng = random.Random(f"outdoor/{seed}")
    out = []
    for t in range(slots):
        hour = t % 24 + 0.5
        mean = OUTDOOR_MEAN_C + OUTDOOR_SWING_C * math.cos(2.0 * math.pi * (hour - 15.0) / 24.0)
        out.append(round(mean + rng.uniform(-0.5, 0.5), 3))
    return tuple(out)


def heat_pump_for(mean_load_kw: float, outdoor_c: tuple[float, ...]) -> HeatPumpSpec:
    """The heat pump the rule gives a building of ``mean_load_kw``.

    Electric power ``max(3 kW, half the mean demand)``, COP
    :data:`HEAT_PUMP_COP`, a heat loss ``UA`` such that full power holds the
    comfort minimum :data:`DESIGN_LIFT_K` below it, and a capacitance of
    :data:`TIME_CONSTANT_H` hours of ``UA``. Values are rounded to the
    clearing's units (W, W/K, Wh/K) so the agent and the pool see the same room.
    """
    power = round(max(3.0, 0.5 * mean_load_kw), 3)
    ua = round(power * HEAT_PUMP_COP / DESIGN_LIFT_K, 3)
    cap = round(ua * TIME_CONSTANT_H, 3)
    lo, hi = [], []
    for t in range(len(outdoor_c)):
        band = COMFORT_DAY_C if 6 <= t % 24 < 22 else COMFORT_NIGHT_C
        lo.append(band[0])
        hi.append(band[1])
    return HeatPumpSpec(
        power, HEAT_PUMP_COP, ua, cap, INDOOR_START_C, tuple(lo), tuple(hi), outdoor_c
    )


@dataclass(frozen=True, slots=True)
class Building:
    """One building (one agent): its peer name, bus, profiles (kW per slot) and assets."""

    name: str
    bus: str
    load_kw: tuple[float, ...]
    pv_kw: tuple[float, ...]
    battery: BatterySpec | None
    ev: EvSpec | None
    heat_pump: HeatPumpSpec | None = None

    @property
    def role(self) -> str:
        """The ledger role: a PV-only building only sells, a load-only one only buys."""
        has_load = (
            any(x > 0 for x in self.load_kw) or self.ev is not None or self.heat_pump is not None
        )
        may_sell = any(x > 0 for x in self.pv_kw) or self.battery is not None
        if may_sell and has_load:
            return "prosumer"
        return "producer" if may_sell else "consumer"


@dataclass(frozen=True, slots=True, eq=False)
class Day:
    """A scenario over ``slots`` hourly slots.

    Attributes:
        name: The scenario.
        network: The feeder (``clearing.network.Network``) with every peer's bus.
        grid: The main grid's peer name (at the root bus).
        buildings: One per agent.
        import_price, export_price: Grid tariffs per slot, ticks per kWh.
        tick: Currency per tick; ``currency`` its code.
        outdoor_c: Outdoor temperature per slot, °C (empty: no heat pumps).
    """

    name: str
    network: Network
    grid: str
    buildings: tuple[Building, ...]
    import_price: tuple[int, ...]
    export_price: tuple[int, ...]
    tick: float = TICK
    currency: str = "USD"
    outdoor_c: tuple[float, ...] = ()

    @property
    def slots(self) -> int:
        """Number of slots."""
        return len(self.import_price)


def tariffs(slots: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Import and export tariffs per hourly slot (see the module docstring)."""
    imp = []
    for t in range(slots):
        hour = t % 24
        imp.append(IMPORT_NIGHT if hour < 6 else IMPORT_PEAK if 17 <= hour < 21 else IMPORT_DAY)
    return tuple(imp), (EXPORT_PRICE,) * slots


def _check_slots(slots: int) -> None:
    if not 1 <= slots <= MAX_SLOTS:
        msg = f"--slots must be in [1, {MAX_SLOTS}] (hours of one day), got {slots}"
        raise NodeError(msg)


def _ev(departure: int, needed: float, charge_kw: float, cap: float, slots: int) -> EvSpec:
    """An EV clipped to the simulated slots: the need shrinks to what the stay allows."""
    dep = min(departure, slots)
    reachable = 0.8 * charge_kw * 0.95 * dep * SLOT_HOURS
    return EvSpec(dep, min(needed, reachable), charge_kw, cap, 0.95)


def chapter_day(slots: int = 24, seed: int = 7) -> Day:
    """The chapter's 11-bus community over ``slots`` hours (see the module docstring)."""
    from clearing import load_reference_case

    _check_slots(slots)
    case = load_reference_case()
    rng = random.Random(seed)
    outdoor = outdoor_profile(slots, seed)
    buildings = []
    k = 0
    for peer in case.peers:
        if peer.role.value == "grid":
            continue
        bus = case.network.bus_of(peer.name)
        if peer.is_producer:
            pv = tuple(float(peer.p_max * PV_SHAPE[t % 24]) for t in range(slots))
            buildings.append(Building(peer.name, bus, (0.0,) * slots, pv, None, None))
            continue
        k += 1
        mean = 0.75 * -peer.p_min
        load = tuple(float(mean * LOAD_SHAPE[t % 24] * rng.uniform(0.9, 1.1)) for t in range(slots))
        battery = None
        if k % 2 == 1:
            cap = 2.0 * mean
            battery = BatterySpec(cap, cap / 2, 0.95, 0.1 * cap, 0.9 * cap, 0.5 * cap)
        ev = None
        if k % 4 == 2:
            ev = _ev(7 + rng.randrange(3), 20.0 + 20.0 * rng.random(), 22.0, 60.0, slots)
        hp = heat_pump_for(mean, outdoor) if k % 3 == 0 else None
        buildings.append(Building(peer.name, bus, load, (0.0,) * slots, battery, ev, hp))
    imp, exp = tariffs(slots)
    grid = next(p.name for p in case.peers if p.role.value == "grid")
    return Day("chapter", case.network, grid, tuple(buildings), imp, exp, outdoor_c=outdoor)


def simbench_day(code: str, slots: int = 24, seed: int = 7) -> Day:
    """A SimBench community over ``slots`` hours of :data:`SIMBENCH_DAY`.

    Raises:
        NodeError: Bad ``slots``; the clearing package's errors for a bad code.
    """
    from clearing.community import AssetRule, simbench_community

    _check_slots(slots)
    com = simbench_community(code, AssetRule(seed=seed))
    per_hour = round(1.0 / com.step_hours)
    first = SIMBENCH_DAY * 24 * per_hour

    def hourly(column: FloatArray) -> tuple[float, ...]:
        block = column[first : first + slots * per_hour].reshape(slots, per_hour)
        return tuple(float(x) for x in block.mean(axis=1))

    buildings = []
    used = set()
    outdoor = outdoor_profile(slots, seed)
    draw = random.Random(f"heat-pump/{seed}")
    for i, h in enumerate(com.households):
        load = hourly(com.load_kw[:, i])
        pv = (0.0,) * slots
        if h.pv is not None:
            pv = hourly(com.pv_kw[:, com.pvs.index(h.pv)])
            used.add(h.pv)
        battery = None
        if h.battery is not None:
            b = h.battery
            cap = b.capacity_kwh
            battery = BatterySpec(
                cap, b.power_kw, b.charge_efficiency, b.soc_min * cap, b.soc_max * cap,
                b.soc_start * cap,
            )  # fmt: skip
        ev = None
        if h.ev is not None:
            dep = max(1, h.ev.departure_step // per_hour)
            ev = _ev(dep, h.ev.energy_kwh, h.ev.charge_kw, h.ev.capacity_kwh, slots)
        hp = None
        if draw.random() < HEAT_PUMP_SHARE:
            hp = heat_pump_for(float(np.mean(load)), outdoor)
        buildings.append(Building(h.name, h.bus, load, pv, battery, ev, hp))
    for j, name in enumerate(com.pvs):
        if name not in used:
            pv = hourly(com.pv_kw[:, j])
            buildings.append(
                Building(name, com.network.bus_of(name), (0.0,) * slots, pv, None, None)
            )
    imp, exp = tariffs(slots)
    return Day(code, com.network, "grid", tuple(buildings), imp, exp, outdoor_c=outdoor)


def load_day(scenario: str, slots: int = 24, seed: int = 7) -> Day:
    """``chapter`` or a SimBench code."""
    if scenario == "chapter":
        return chapter_day(slots, seed)
    return simbench_day(scenario, slots, seed)
