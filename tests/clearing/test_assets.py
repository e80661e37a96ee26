"""Asset data: unit checks, typed errors with got/want, horizon-dependent checks."""

from __future__ import annotations

import math

import pytest

from clearing import ClearingError, InvalidPeer
from clearing.assets import (
    Battery,
    ChpUnit,
    ElectricVehicle,
    FuelCellChp,
    HeatPump,
    InflexibleLoad,
    Photovoltaic,
    PowerToGas,
    RampLimit,
    validate_asset,
)
from clearing.horizon_errors import InvalidAsset


def battery(**kw: object) -> Battery:
    base: dict[str, object] = {
        "name": "bat",
        "capacity_wh": 10_000,
        "soc_min_wh": 1_000,
        "soc_max_wh": 9_000,
        "charge_w": 5_000,
        "discharge_w": 5_000,
        "initial_wh": 5_000,
    }
    base.update(kw)
    return Battery(**base)  # type: ignore[arg-type]


def test_battery_defaults_and_final_energy() -> None:
    b = battery()
    assert b.charge_efficiency_ppm == 950_000
    assert b.final_wh == 5_000
    assert battery(final_min_wh=8_000).final_wh == 8_000


@pytest.mark.parametrize(
    ("field", "value", "want"),
    [
        ("capacity_wh", 0, ">= 1"),
        ("soc_max_wh", 11_000, "<= 10000"),
        ("soc_min_wh", -1, ">= 0"),
        ("initial_wh", 500, ">= 1000"),
        ("initial_wh", 9_500, "<= 9000"),
        ("charge_w", -1, ">= 0"),
        ("charge_efficiency_ppm", 0, ">= 1"),
        ("discharge_efficiency_ppm", 1_000_001, "<= 1000000"),
        ("final_min_wh", 9_500, "<= 9000"),
        ("cycle_cost", -2, ">= 0"),
        ("capacity_wh", 10.5, "an int"),
        ("charge_w", True, "an int"),
    ],
)
def test_battery_rejects_bad_fields_with_got_and_want(field: str, value: object, want: str) -> None:
    with pytest.raises(InvalidAsset) as info:
        battery(**{field: value})
    err = info.value
    assert (err.field, err.got, err.want) == (field, value, want)
    assert err.asset == "bat"
    assert isinstance(err, InvalidPeer) and isinstance(err, ClearingError)
    assert repr(value) in str(err) and want in str(err)


def test_ev_checks_its_stay_energy_and_power() -> None:
    ev = ElectricVehicle(
        "ev",
        arrival_slot=2,
        departure_slot=6,
        needed_wh=8_000,
        charge_w=3_000,
        capacity_wh=40_000,
        arrival_wh=10_000,
    )
    validate_asset(ev, "H1", slots=8, slot_seconds=3600)
    with pytest.raises(InvalidAsset, match="departure_slot"):
        ElectricVehicle("ev", 3, 3, 0, 1_000, 40_000)
    with pytest.raises(InvalidAsset, match="needed_wh"):
        ElectricVehicle("ev", 0, 4, 35_000, 3_000, 40_000, arrival_wh=10_000)
    with pytest.raises(InvalidAsset, match="charge_w"):
        ElectricVehicle("ev", 0, 4, 1_000, 0, 40_000)
    with pytest.raises(InvalidAsset, match="<= 5 \\(the horizon\\)"):
        validate_asset(ev, "H1", slots=5, slot_seconds=3600)
    # 8 kWh at 3 kW x 95 % in 4 quarter-hours (2.85 kWh) is out of reach
    with pytest.raises(InvalidAsset, match="needed_wh") as info:
        validate_asset(ev, "H1", slots=8, slot_seconds=900)
    assert info.value.peer == "H1"


def heat_pump(**kw: object) -> HeatPump:
    base: dict[str, object] = {
        "name": "hp",
        "power_w": 3_000,
        "cop_ppm": 3_000_000,
        "ua_w_per_k": 200,
        "capacitance_wh_per_k": 5_000,
        "initial_mc": 21_000,
        "comfort_min_mc": (20_000,) * 4,
        "comfort_max_mc": (23_000,) * 4,
        "outdoor_mc": (5_000,) * 4,
    }
    base.update(kw)
    return HeatPump(**base)  # type: ignore[arg-type]


def test_heat_pump_room_decay_and_band() -> None:
    hp = heat_pump()
    assert hp.decay(1.0) == pytest.approx(math.exp(-200 / 5_000))
    assert hp.decay(0.25) == pytest.approx(math.exp(-0.25 * 200 / 5_000))
    with pytest.raises(InvalidAsset, match=r"comfort_max_mc\[1\]"):
        heat_pump(comfort_max_mc=(23_000, 19_000, 23_000, 23_000))
    with pytest.raises(InvalidAsset, match="comfort_max_mc"):
        heat_pump(comfort_max_mc=(23_000,) * 3)
    with pytest.raises(InvalidAsset, match="ua_w_per_k"):
        heat_pump(ua_w_per_k=0)
    with pytest.raises(InvalidAsset, match="outdoor_mc"):
        validate_asset(heat_pump(outdoor_mc=(0,) * 5), "H", slots=4, slot_seconds=3600)
    with pytest.raises(InvalidAsset, match="gains_w"):
        validate_asset(heat_pump(gains_w=(0, 0)), "H", slots=4, slot_seconds=3600)


def test_chp_unit_polygon_matches_the_single_slot_region() -> None:
    unit = ChpUnit(
        "chp",
        a=(247_000, 0),
        b=(215_000, 180_000),
        c=(81_000, 104_800),
        d=(98_800, 0),
        ramp_up_w_per_h=50_000,
    )
    region = unit.region()
    assert region.a == (247.0, 0.0) and region.c == (81.0, 104.8)
    assert region.contains(150.0, 50.0) and not region.contains(250.0, 100.0)
    with pytest.raises(InvalidAsset, match="convex quadrilateral"):
        ChpUnit("chp", a=(0, 0), b=(10, 10), c=(10, 0), d=(0, 10))
    with pytest.raises(InvalidAsset, match="ramp_up_w_per_h"):
        ChpUnit("chp", a=(10, 0), b=(10, 5), c=(0, 5), d=(0, 0), ramp_up_w_per_h=-1)
    with pytest.raises(InvalidAsset, match=r"\(P_w, H_w\)"):
        ChpUnit("chp", a=(10, 0, 1), b=(10, 5), c=(0, 5), d=(0, 0))  # type: ignore[arg-type]


def test_fuel_cell_power_to_gas_and_profiles() -> None:
    fc = FuelCellChp(
        "fc",
        power_w=1_000,
        electric_efficiency_ppm=500_000,
        thermal_efficiency_ppm=400_000,
        fuel_price=500,
    )
    assert fc.heat_ratio == pytest.approx(0.8)
    with pytest.raises(InvalidAsset, match="thermal_efficiency_ppm"):
        FuelCellChp("fc", 1_000, 600_000, 500_000, 500)
    with pytest.raises(InvalidAsset, match="min_power_w"):
        FuelCellChp("fc", 1_000, 500_000, 400_000, 500, min_power_w=2_000)
    gss = PowerToGas("gss", electrolyser_w=2_000, fuel_cell_w=1_000, storage_wh=5_000)
    assert (gss.electrolyser_efficiency_ppm, gss.fuel_cell_efficiency_ppm) == (800_000, 500_000)
    assert gss.final_wh == 0
    with pytest.raises(InvalidAsset, match="initial_wh"):
        PowerToGas("gss", 1, 1, 5_000, initial_wh=6_000)
    with pytest.raises(InvalidAsset, match="profile_wh"):
        Photovoltaic("pv", (1, -1))
    with pytest.raises(InvalidAsset, match="profile_wh"):
        InflexibleLoad("load", ())
    with pytest.raises(InvalidAsset, match="profile_wh"):
        validate_asset(InflexibleLoad("load", (1, 2)), "H", slots=3, slot_seconds=3600)
    with pytest.raises(InvalidAsset, match="name"):
        RampLimit("", 1, 1)
    with pytest.raises(InvalidAsset, match="type"):
        validate_asset("battery", "H", slots=3, slot_seconds=3600)
