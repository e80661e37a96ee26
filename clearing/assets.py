"""Assets of an active building (chapter section 12.3), as data.

Every asset is a frozen dataclass of integers in the project's ledger units,
so that a peer can declare it on the chain as it declares a curve:

- power in **W** (an average over the slot), energy in **Wh**;
- efficiencies and coefficients of performance in **ppm** (parts per
  million: 950_000 is 95 %, a COP of 3.5 is 3_500_000);
- temperatures in **m°C** (milli-degrees Celsius: 21_000 is 21 °C);
- heat-loss coefficients in **W/K**, thermal capacitances in **Wh/K**;
- prices in **ticks per kWh**;
- per-slot profiles as tuples with one value per slot of the horizon
  (energy profiles in Wh per slot, gains in W, temperatures in m°C);
- slots are indices ``0 .. T-1`` into the horizon.

Construction checks what the asset alone can check and raises
:class:`~clearing.horizon_errors.InvalidAsset` (got / want);
:func:`validate_asset` adds the checks that need the horizon (profile
lengths, slots inside the horizon, an EV's energy reachable in its stay).
:mod:`clearing.horizon` turns the integers into the solver's floats (kW,
kWh, °C) and writes the constraints listed on each class.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from clearing.chp import ChpRegion, check_chp
from clearing.errors import InvalidPeer
from clearing.horizon_errors import InvalidAsset

PPM = 1_000_000  # parts per million in one


def _check_int(
    asset: str, field: str, value: object, lo: int | None = None, hi: int | None = None
) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidAsset(asset=asset, field=field, got=value, want="an int")
    if lo is not None and value < lo:
        raise InvalidAsset(asset=asset, field=field, got=value, want=f">= {lo}")
    if hi is not None and value > hi:
        raise InvalidAsset(asset=asset, field=field, got=value, want=f"<= {hi}")
    return value


def _check_name(name: object) -> None:
    if not isinstance(name, str) or not name:
        raise InvalidAsset(asset=str(name), field="name", got=name, want="a non-empty string")


def _check_profile(asset: str, field: str, values: object, lo: int | None = None) -> None:
    if not isinstance(values, tuple) or not values:
        raise InvalidAsset(asset=asset, field=field, got=values, want="a non-empty tuple of ints")
    for v in values:
        _check_int(asset, field, v, lo=lo)


def _efficiency(asset: str, field: str, value: object) -> None:
    _check_int(asset, field, value, lo=1, hi=PPM)


def _ramp(asset: str, up: int | None, down: int | None, initial: int | None) -> None:
    for field, value in (("ramp_up_w_per_h", up), ("ramp_down_w_per_h", down)):
        if value is not None:
            _check_int(asset, field, value, lo=0)
    if initial is not None:
        _check_int(asset, "initial_w", initial)


@dataclass(frozen=True, slots=True)
class Battery:
    """A battery storage system (12.3.1.1).

    State of charge ``e_t`` (end of slot t) follows
    ``e_t = e_{t-1} + h (η_c c_t - d_t / η_d)`` from ``e_{-1} = initial_wh``,
    with ``soc_min_wh <= e_t <= soc_max_wh``, ``0 <= c_t <= charge_w``,
    ``0 <= d_t <= discharge_w`` and ``e_{T-1} >= final_min_wh`` (default: the
    initial energy, so the horizon cannot drain the battery for free). Its
    injection into the peer's balance is ``d_t - c_t``.

    Attributes:
        name: Unique within the peer.
        capacity_wh: Usable capacity, Wh (> 0).
        soc_min_wh, soc_max_wh: State-of-charge bounds, Wh (0 <= min <= max <= capacity).
        charge_w, discharge_w: Power limits, W (>= 0).
        initial_wh: Energy before the first slot, Wh (within the bounds).
        charge_efficiency_ppm, discharge_efficiency_ppm: η_c, η_d in ppm (1 .. 10^6).
        final_min_wh: Least energy after the last slot, Wh; ``None`` = ``initial_wh``.
        cycle_cost: Wear cost in ticks per kWh charged or discharged (>= 0).
    """

    name: str
    capacity_wh: int
    soc_min_wh: int
    soc_max_wh: int
    charge_w: int
    discharge_w: int
    initial_wh: int
    charge_efficiency_ppm: int = 950_000
    discharge_efficiency_ppm: int = 950_000
    final_min_wh: int | None = None
    cycle_cost: int = 0

    def __post_init__(self) -> None:
        _check_name(self.name)
        n = self.name
        _check_int(n, "capacity_wh", self.capacity_wh, lo=1)
        _check_int(n, "soc_min_wh", self.soc_min_wh, lo=0)
        _check_int(n, "soc_max_wh", self.soc_max_wh, lo=self.soc_min_wh, hi=self.capacity_wh)
        _check_int(n, "charge_w", self.charge_w, lo=0)
        _check_int(n, "discharge_w", self.discharge_w, lo=0)
        _check_int(n, "initial_wh", self.initial_wh, lo=self.soc_min_wh, hi=self.soc_max_wh)
        _efficiency(n, "charge_efficiency_ppm", self.charge_efficiency_ppm)
        _efficiency(n, "discharge_efficiency_ppm", self.discharge_efficiency_ppm)
        if self.final_min_wh is not None:
            _check_int(n, "final_min_wh", self.final_min_wh, lo=self.soc_min_wh, hi=self.soc_max_wh)
        _check_int(n, "cycle_cost", self.cycle_cost, lo=0)

    @property
    def final_wh(self) -> int:
        """The least energy after the last slot, Wh."""
        return self.initial_wh if self.final_min_wh is None else self.final_min_wh


@dataclass(frozen=True, slots=True)
class ElectricVehicle:
    """An electric vehicle plugged in at the building (12.3.1.2), with optional V2G.

    Connected during slots ``arrival_slot <= t < departure_slot``. Its energy
    follows ``e_t = e_{t-1} + h (η c_t - v_t / η)`` from ``arrival_wh``, with
    ``0 <= e_t <= capacity_wh``, ``0 <= c_t <= charge_w``,
    ``0 <= v_t <= v2g_w`` (vehicle-to-grid), and at departure
    ``e >= arrival_wh + needed_wh``. Outside its stay it draws nothing.
    Injection ``v_t - c_t``.

    Attributes:
        name: Unique within the peer.
        arrival_slot: First connected slot.
        departure_slot: First slot after the stay (> arrival_slot, <= T).
        needed_wh: Energy to add by departure, Wh (>= 0).
        charge_w: Charging power limit, W (> 0 when energy is needed).
        capacity_wh: Battery capacity, Wh.
        arrival_wh: Energy in the battery on arrival, Wh.
        efficiency_ppm: η of charging and of discharging, ppm.
        v2g_w: Discharging power limit (vehicle-to-grid), W; 0 = no V2G.
    """

    name: str
    arrival_slot: int
    departure_slot: int
    needed_wh: int
    charge_w: int
    capacity_wh: int
    arrival_wh: int = 0
    efficiency_ppm: int = 950_000
    v2g_w: int = 0

    def __post_init__(self) -> None:
        _check_name(self.name)
        n = self.name
        _check_int(n, "arrival_slot", self.arrival_slot, lo=0)
        _check_int(n, "departure_slot", self.departure_slot, lo=self.arrival_slot + 1)
        _check_int(n, "capacity_wh", self.capacity_wh, lo=1)
        _check_int(n, "arrival_wh", self.arrival_wh, lo=0, hi=self.capacity_wh)
        _check_int(n, "needed_wh", self.needed_wh, lo=0, hi=self.capacity_wh - self.arrival_wh)
        _check_int(n, "charge_w", self.charge_w, lo=1 if self.needed_wh else 0)
        _efficiency(n, "efficiency_ppm", self.efficiency_ppm)
        _check_int(n, "v2g_w", self.v2g_w, lo=0)


@dataclass(frozen=True, slots=True)
class HeatPump:
    """Thermal flexibility: an HVAC unit or heat pump and a first-order room (12.3.2.1).

    The room is one thermal capacitance ``C`` losing heat to the outdoors
    through ``UA``. With the electric power ``e_t`` constant over a slot of
    ``h`` hours, the exact solution of ``C dθ/dt = UA (θ_out - θ) + s COP e + g``
    gives ``θ_t = a θ_{t-1} + (1 - a) (θ_out,t + (s COP e_t + g_t) / UA)``
    with ``a = exp(-h UA / C)`` (stable for any slot length), ``s = +1`` for
    heating and ``-1`` for cooling, and ``θ_{-1} = initial_mc``. The comfort
    band ``comfort_min_mc[t] <= θ_t <= comfort_max_mc[t]`` must hold in every
    slot, and ``0 <= e_t <= power_w``. Injection ``-e_t``.

    Attributes:
        name: Unique within the peer.
        power_w: Electric power limit, W (> 0).
        cop_ppm: Coefficient of performance in ppm (3_000_000 = COP 3).
        ua_w_per_k: Heat-loss coefficient of the building, W/K (> 0).
        capacitance_wh_per_k: Thermal capacitance of the room, Wh/K (> 0).
        initial_mc: Indoor temperature before the first slot, m°C.
        comfort_min_mc, comfort_max_mc: Comfort band per slot, m°C.
        outdoor_mc: Outdoor temperature per slot, m°C.
        gains_w: Internal and solar heat gains per slot, W (empty = none).
        cooling: True for an air conditioner (removes heat).
    """

    name: str
    power_w: int
    cop_ppm: int
    ua_w_per_k: int
    capacitance_wh_per_k: int
    initial_mc: int
    comfort_min_mc: tuple[int, ...]
    comfort_max_mc: tuple[int, ...]
    outdoor_mc: tuple[int, ...]
    gains_w: tuple[int, ...] = ()
    cooling: bool = False

    def __post_init__(self) -> None:
        _check_name(self.name)
        n = self.name
        _check_int(n, "power_w", self.power_w, lo=1)
        _check_int(n, "cop_ppm", self.cop_ppm, lo=1)
        _check_int(n, "ua_w_per_k", self.ua_w_per_k, lo=1)
        _check_int(n, "capacitance_wh_per_k", self.capacitance_wh_per_k, lo=1)
        _check_int(n, "initial_mc", self.initial_mc)
        _check_profile(n, "comfort_min_mc", self.comfort_min_mc)
        _check_profile(n, "comfort_max_mc", self.comfort_max_mc)
        _check_profile(n, "outdoor_mc", self.outdoor_mc)
        if self.gains_w:
            _check_profile(n, "gains_w", self.gains_w)
        if len(self.comfort_min_mc) != len(self.comfort_max_mc):
            raise InvalidAsset(
                asset=n,
                field="comfort_max_mc",
                got=len(self.comfort_max_mc),
                want=f"{len(self.comfort_min_mc)} values, as comfort_min_mc",
            )
        for t, (lo, hi) in enumerate(zip(self.comfort_min_mc, self.comfort_max_mc, strict=True)):
            if lo > hi:
                raise InvalidAsset(
                    asset=n,
                    field=f"comfort_max_mc[{t}]",
                    got=hi,
                    want=f">= comfort_min_mc[{t}] = {lo}",
                )
        if not isinstance(self.cooling, bool):
            raise InvalidAsset(asset=n, field="cooling", got=self.cooling, want="a bool")

    def decay(self, slot_hours: float) -> float:
        """Return ``a = exp(-h UA / C)``, the share of the temperature kept over one slot."""
        return math.exp(-slot_hours * self.ua_w_per_k / self.capacitance_wh_per_k)


@dataclass(frozen=True, slots=True)
class ChpUnit:
    """A CHP unit (12.3.2.2): the peer's own generation (P, H) inside polygon A-B-C-D.

    As in the chapter's heat model (12.24-12.26, figure 12.9), the CHP unit
    *is* the peer's dispatchable part: its cost is the peer's electricity
    and heat curves, and in the heat model the peer's own (P_t, H_t) must lie
    in the convex quadrilateral A-B-C-D in every slot. The ramp limits
    ``-down h <= P_t - P_{t-1} <= up h`` hold in every model (from
    ``initial_w`` before the first slot when given).

    Attributes:
        name: Unique within the peer.
        a, b, c, d: Corners ``(P in W, H in W_th)``, in order.
        ramp_up_w_per_h, ramp_down_w_per_h: Ramp limits, W per hour; ``None`` = none.
        initial_w: Electric output before the first slot, W; ``None`` = free.
    """

    name: str
    a: tuple[int, int]
    b: tuple[int, int]
    c: tuple[int, int]
    d: tuple[int, int]
    ramp_up_w_per_h: int | None = None
    ramp_down_w_per_h: int | None = None
    initial_w: int | None = None

    def __post_init__(self) -> None:
        _check_name(self.name)
        for field in "abcd":
            point = getattr(self, field)
            if not isinstance(point, tuple) or len(point) != 2:
                raise InvalidAsset(asset=self.name, field=field, got=point, want="(P_w, H_w)")
            for v in point:
                _check_int(self.name, field, v, lo=0)
        try:
            check_chp(self.region(), self.name)
        except InvalidPeer as exc:
            raise InvalidAsset(
                asset=self.name,
                field="a, b, c, d",
                got=self.region().points(),
                want="a convex quadrilateral in order",
            ) from exc
        _ramp(self.name, self.ramp_up_w_per_h, self.ramp_down_w_per_h, self.initial_w)

    def region(self) -> ChpRegion:
        """The polygon in kW and kW_th, as the single-slot heat model takes it."""
        a, b, c, d = ((p / 1000.0, h / 1000.0) for p, h in (self.a, self.b, self.c, self.d))
        return ChpRegion(a=a, b=b, c=c, d=d)


@dataclass(frozen=True, slots=True)
class RampLimit:
    """Ramp limits on the peer's own dispatchable part (12.6.5: ramping of producers).

    ``-down h <= P_t - P_{t-1} <= up h`` for the peer's own part ``P_t`` (its
    curve's variable), from ``initial_w`` before the first slot when given.

    Attributes:
        name: Unique within the peer.
        ramp_up_w_per_h, ramp_down_w_per_h: W per hour; ``None`` = none.
        initial_w: Output before the first slot, W; ``None`` = free.
    """

    name: str
    ramp_up_w_per_h: int | None
    ramp_down_w_per_h: int | None
    initial_w: int | None = None

    def __post_init__(self) -> None:
        _check_name(self.name)
        _ramp(self.name, self.ramp_up_w_per_h, self.ramp_down_w_per_h, self.initial_w)


@dataclass(frozen=True, slots=True)
class FuelCellChp:
    """A fuel-cell CHP system (12.3.3.1) burning bought gas.

    Electric output ``f_t`` with ``min_power_w <= f_t <= power_w`` (no
    on/off decision: the clearing stays convex) and ramp limits; it burns
    ``f_t / η_e`` of fuel at ``fuel_price`` and gives heat ``f_t η_h / η_e``,
    which enters the peer's heat injection in the heat model (the peer then
    needs a heat curve) and covers the building's own needs otherwise.
    Injection ``+f_t``.

    Attributes:
        name: Unique within the peer.
        power_w: Electric power limit, W (> 0).
        min_power_w: Least electric output, W (0 <= min <= max).
        electric_efficiency_ppm: η_e, ppm.
        thermal_efficiency_ppm: η_h, ppm (η_e + η_h <= 1).
        fuel_price: Ticks per kWh of fuel.
        ramp_up_w_per_h, ramp_down_w_per_h, initial_w: As :class:`RampLimit`.
    """

    name: str
    power_w: int
    electric_efficiency_ppm: int
    thermal_efficiency_ppm: int
    fuel_price: int
    min_power_w: int = 0
    ramp_up_w_per_h: int | None = None
    ramp_down_w_per_h: int | None = None
    initial_w: int | None = None

    def __post_init__(self) -> None:
        _check_name(self.name)
        n = self.name
        _check_int(n, "power_w", self.power_w, lo=1)
        _check_int(n, "min_power_w", self.min_power_w, lo=0, hi=self.power_w)
        _efficiency(n, "electric_efficiency_ppm", self.electric_efficiency_ppm)
        _check_int(
            n,
            "thermal_efficiency_ppm",
            self.thermal_efficiency_ppm,
            lo=0,
            hi=PPM - self.electric_efficiency_ppm,
        )
        _check_int(n, "fuel_price", self.fuel_price, lo=0)
        _ramp(n, self.ramp_up_w_per_h, self.ramp_down_w_per_h, self.initial_w)

    @property
    def heat_ratio(self) -> float:
        """Heat per unit of electricity, ``η_h / η_e``."""
        return self.thermal_efficiency_ppm / self.electric_efficiency_ppm


@dataclass(frozen=True, slots=True)
class PowerToGas:
    """A gas storage system (12.3.3.2): electrolyser, gas store and fuel cell.

    Electrolyser input ``el_t`` (0 .. electrolyser_w), fuel-cell output
    ``fc_t`` (0 .. fuel_cell_w), stored gas ``g_t`` (Wh of gas energy) with
    ``g_t = g_{t-1} + h (η_p el_t - fc_t / η_f)``, ``0 <= g_t <=
    storage_wh``, ``g_{-1} = initial_wh`` and ``g_{T-1} >= final_min_wh``
    (default: the initial gas). The chapter gives η_p about 80 % and η_f
    40-60 %, the defaults here are 80 % and 50 %. Injection ``fc_t - el_t``.

    Attributes:
        name: Unique within the peer.
        electrolyser_w: Electrolyser power limit, W.
        fuel_cell_w: Fuel-cell power limit, W.
        storage_wh: Gas storage capacity, Wh (> 0).
        initial_wh: Gas before the first slot, Wh.
        electrolyser_efficiency_ppm: η_p, ppm.
        fuel_cell_efficiency_ppm: η_f, ppm.
        final_min_wh: Least gas after the last slot; ``None`` = ``initial_wh``.
    """

    name: str
    electrolyser_w: int
    fuel_cell_w: int
    storage_wh: int
    initial_wh: int = 0
    electrolyser_efficiency_ppm: int = 800_000
    fuel_cell_efficiency_ppm: int = 500_000
    final_min_wh: int | None = None

    def __post_init__(self) -> None:
        _check_name(self.name)
        n = self.name
        _check_int(n, "electrolyser_w", self.electrolyser_w, lo=0)
        _check_int(n, "fuel_cell_w", self.fuel_cell_w, lo=0)
        _check_int(n, "storage_wh", self.storage_wh, lo=1)
        _check_int(n, "initial_wh", self.initial_wh, lo=0, hi=self.storage_wh)
        _efficiency(n, "electrolyser_efficiency_ppm", self.electrolyser_efficiency_ppm)
        _efficiency(n, "fuel_cell_efficiency_ppm", self.fuel_cell_efficiency_ppm)
        if self.final_min_wh is not None:
            _check_int(n, "final_min_wh", self.final_min_wh, lo=0, hi=self.storage_wh)

    @property
    def final_wh(self) -> int:
        """The least gas after the last slot, Wh."""
        return self.initial_wh if self.final_min_wh is None else self.final_min_wh


@dataclass(frozen=True, slots=True)
class Photovoltaic:
    """PV generation from a per-slot profile (12.3.1.1).

    Injection ``pv_t = profile_wh[t] / h`` (kW), or anything in
    ``[0, profile]`` when ``curtailable`` (an inverter can always curtail;
    without it a feeder with no export could be infeasible).

    Attributes:
        name: Unique within the peer.
        profile_wh: Available energy per slot, Wh (>= 0).
        curtailable: Whether the output may be reduced.
    """

    name: str
    profile_wh: tuple[int, ...]
    curtailable: bool = True

    def __post_init__(self) -> None:
        _check_name(self.name)
        _check_profile(self.name, "profile_wh", self.profile_wh, lo=0)
        if not isinstance(self.curtailable, bool):
            raise InvalidAsset(
                asset=self.name, field="curtailable", got=self.curtailable, want="a bool"
            )


@dataclass(frozen=True, slots=True)
class InflexibleLoad:
    """A load that must be served as metered: injection ``-profile_wh[t] / h`` (kW).

    Attributes:
        name: Unique within the peer.
        profile_wh: Energy drawn per slot, Wh (>= 0).
    """

    name: str
    profile_wh: tuple[int, ...]

    def __post_init__(self) -> None:
        _check_name(self.name)
        _check_profile(self.name, "profile_wh", self.profile_wh, lo=0)


Asset = (
    Battery
    | ElectricVehicle
    | HeatPump
    | ChpUnit
    | RampLimit
    | FuelCellChp
    | PowerToGas
    | Photovoltaic
    | InflexibleLoad
)
ASSET_TYPES = (
    Battery,
    ElectricVehicle,
    HeatPump,
    ChpUnit,
    RampLimit,
    FuelCellChp,
    PowerToGas,
    Photovoltaic,
    InflexibleLoad,
)


def _profile_length(
    asset: Asset, peer: str, field: str, values: tuple[int, ...], slots: int
) -> None:
    if len(values) != slots:
        raise InvalidAsset(
            asset=asset.name,
            peer=peer,
            field=field,
            got=len(values),
            want=f"{slots} values, one per slot",
        )


def validate_asset(asset: object, peer: str, slots: int, slot_seconds: int) -> None:
    """Check ``asset`` against a horizon of ``slots`` slots of ``slot_seconds`` each.

    Profiles need one value per slot (a heat pump's ``gains_w`` may be
    empty); an EV's stay must lie in the horizon and its ``needed_wh`` be
    reachable at ``charge_w`` within it.

    Raises:
        InvalidAsset: Otherwise, or if ``asset`` is not an asset.
    """
    if not isinstance(asset, ASSET_TYPES):
        raise InvalidAsset(
            asset=str(asset),
            peer=peer,
            field="type",
            got=type(asset).__name__,
            want=f"one of {[t.__name__ for t in ASSET_TYPES]}",
        )
    hours = slot_seconds / 3600.0
    if isinstance(asset, HeatPump):
        for field in ("comfort_min_mc", "comfort_max_mc", "outdoor_mc"):
            _profile_length(asset, peer, field, getattr(asset, field), slots)
        if asset.gains_w:
            _profile_length(asset, peer, "gains_w", asset.gains_w, slots)
    elif isinstance(asset, Photovoltaic | InflexibleLoad):
        _profile_length(asset, peer, "profile_wh", asset.profile_wh, slots)
    elif isinstance(asset, ElectricVehicle):
        if asset.departure_slot > slots:
            raise InvalidAsset(
                asset=asset.name,
                peer=peer,
                field="departure_slot",
                got=asset.departure_slot,
                want=f"<= {slots} (the horizon)",
            )
        stay = asset.departure_slot - asset.arrival_slot
        reach = asset.charge_w * hours * stay * asset.efficiency_ppm / PPM
        if asset.needed_wh > reach + 1e-9:
            raise InvalidAsset(
                asset=asset.name,
                peer=peer,
                field="needed_wh",
                got=asset.needed_wh,
                want=f"<= {reach:.0f} Wh, what charge_w gives in {stay} slots",
            )
