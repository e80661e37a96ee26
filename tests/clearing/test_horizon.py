"""Multi-period clearing: equal to today's clearing at T = 1, asset constraints in every slot,
prosumers, certificates over the horizon, size linear in T."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clearing import (
    Case,
    ChpRegion,
    Infeasible,
    InvalidOption,
    clear,
    congestion_procedure,
    load_reference_case,
    network_from_dict,
)
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
)
from clearing.horizon import clear_horizon, horizon_congestion_procedure
from clearing.horizon_bridge import case_for_slot, horizon_from_case
from clearing.horizon_case import (
    HorizonCase,
    HorizonPeer,
    PeerKind,
    SlotCurve,
    SlotSignals,
)
from clearing.horizon_certificate import (
    HorizonCertificate,
    check_horizon_certificate,
    horizon_certificate_from_plain,
    horizon_certificate_to_plain,
)
from clearing.horizon_errors import InvalidAsset, InvalidHorizon
from clearing.horizon_ordering import ordering_hint, state_columns, stores_are_meshed
from clearing.horizon_problem import build_horizon_problem, make_horizon_spec
from clearing.horizon_rounding import round_horizon_settlement
from tests.clearing.helpers import feeder, peer

TOL_P = 1e-3  # kW
TOL_PRICE = 1e-4  # currency/kWh


# ----------------------------------------------------------------- T = 1
def assert_same_as_single_slot(case: Case, model: str, **kw: object) -> None:
    horizon = horizon_from_case(case)
    one = clear(case, model, **kw)  # type: ignore[arg-type]
    hkw: dict[str, object] = {}
    if kw.get("penalised"):
        hkw["penalised"] = (kw["penalised"],)
    if kw.get("line_limits"):
        hkw["line_limits"] = True
    many = clear_horizon(horizon, model, **hkw)  # type: ignore[arg-type]
    assert many.objective == pytest.approx(one.objective, rel=1e-7, abs=1e-7)
    np.testing.assert_allclose(many.injection[0], one.injection, atol=TOL_P)
    np.testing.assert_allclose(many.peer_price[0], one.peer_price, atol=TOL_PRICE)
    np.testing.assert_array_equal(many.e_src, one.e_src)
    np.testing.assert_array_equal(many.e_dst, one.e_dst)
    np.testing.assert_allclose(many.flows[0], one.flows, atol=TOL_P * len(case.peers))
    np.testing.assert_allclose(many.line_price[0], one.line_price, atol=TOL_PRICE)
    if one.heat is not None:
        assert many.heat is not None and many.heat_peer_price is not None
        np.testing.assert_allclose(many.heat[0], one.heat, atol=TOL_P)
        np.testing.assert_allclose(many.heat_peer_price[0], one.heat_peer_price, atol=TOL_PRICE)
    assert check_horizon_certificate(horizon, many.certificate).ok


@pytest.mark.parametrize(
    ("model", "kw"),
    [
        ("basic", {}),
        ("loss", {}),
        ("congestion", {"penalised": ("L6", "L9")}),
        ("loss+congestion", {"penalised": ("L6",)}),
        # the horizon's heat model takes the slot's α and β signals, so the
        # single-slot call names them
        ("heat", {"alpha": 0.005, "beta": 0.005, "penalised": ()}),
        ("basic", {"line_limits": True}),
    ],
)
def test_one_slot_without_assets_is_todays_clearing(model: str, kw: dict[str, object]) -> None:
    assert_same_as_single_slot(load_reference_case(), model, **kw)


def test_reference_case_converts_to_ledger_units_exactly() -> None:
    case = load_reference_case()
    back = case_for_slot(horizon_from_case(case), 0)
    for a, b in zip(case.peers, back.peers, strict=True):
        for f in ("a", "b", "c", "p_min", "p_max"):
            assert getattr(a, f) == pytest.approx(getattr(b, f), abs=1e-12)
        assert (a.chp is None) == (b.chp is None)
        if a.chp and b.chp:
            np.testing.assert_allclose(a.chp.points(), b.chp.points(), atol=1e-12)
    assert (back.alpha, back.beta) == (case.alpha, case.beta)


def test_one_slot_congestion_procedure_is_todays() -> None:
    case = load_reference_case()
    one = congestion_procedure(case, "congestion")
    many = horizon_congestion_procedure(horizon_from_case(case), "congestion")
    assert len(many.rounds) == len(one.rounds)
    assert many.resolved == one.resolved
    assert many.final.spec.penalised == (one.rounds[-1].penalised,)
    assert many.final.objective == pytest.approx(one.final.objective, rel=1e-7)


@st.composite
def small_markets(draw: st.DrawFn) -> Case:
    n_prod = draw(st.integers(1, 3))
    n_cons = draw(st.integers(1, 3))
    peers = []
    for k in range(n_prod):
        hi = draw(st.integers(1, 200))
        peers.append(
            peer(
                f"G{k}",
                "producer",
                draw(st.integers(1, 50)) / 1000,
                draw(st.integers(5, 150)) / 1000,
                0.0,
                float(hi),
            )
        )
    for k in range(n_cons):
        lo = draw(st.integers(1, 200))
        peers.append(
            peer(
                f"C{k}",
                "consumer",
                draw(st.integers(1, 50)) / 1000,
                draw(st.integers(50, 400)) / 1000,
                -float(lo),
                0.0,
            )
        )
    buses = {p["name"]: str(draw(st.integers(0, 2))) for p in peers}
    lines = [
        ("L1", "0", "1", draw(st.integers(1, 9)) / 10, None),
        ("L2", "1", "2", draw(st.integers(1, 9)) / 10, None),
    ]
    return Case.from_dict(
        {
            "name": "random",
            "regularisation": 1e-3,
            "tick": 0.001,
            "tariff": {"alpha": draw(st.integers(0, 20)) / 1000},
            "network": feeder(lines, buses),
            "peers": peers,
        }
    )


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=small_markets(), model=st.sampled_from(["basic", "loss"]))
def test_one_slot_equals_single_slot_on_random_markets(case: Case, model: str) -> None:
    # With ε = 1e-3 the trades are unique, so they must agree too.
    one = clear(case, model)
    many = clear_horizon(horizon_from_case(case), model)
    assert many.objective == pytest.approx(one.objective, rel=1e-6, abs=1e-6)
    np.testing.assert_allclose(many.injection[0], one.injection, atol=TOL_P)
    np.testing.assert_allclose(many.trades[0], one.solution.p, atol=1e-2)
    # a peer that does not trade has a range of valid prices: compare the traders'
    trading = np.abs(one.injection) > 1e-2
    np.testing.assert_allclose(many.peer_price[0][trading], one.peer_price[trading], atol=TOL_PRICE)
    active = one.solution.p > 1e-2
    np.testing.assert_allclose(
        many.trade_price[0][active], one.solution.tau[active], atol=TOL_PRICE
    )


# -------------------------------------------------------- a day of buildings
T_DAY = 24


def curve(a_milli: int = 0, b: int = 0, lo: int = 0, hi: int = 0) -> tuple[SlotCurve, ...]:
    return (SlotCurve(a_milli, b, 0, lo, hi),)


def pv_profile(peak_wh: int, slots: int = T_DAY) -> tuple[int, ...]:
    hours = np.arange(slots) * 24 / slots
    return tuple(
        int(v) for v in np.rint(peak_wh * np.clip(np.sin((hours - 6) / 12 * math.pi), 0, None))
    )


def load_profile(base_wh: int, slots: int = T_DAY) -> tuple[int, ...]:
    hours = np.arange(slots) * 24 / slots
    return tuple(int(v) for v in np.rint(base_wh * (1 + (hours >= 17) * (hours < 22))))


def community(slots: int = T_DAY, *, export: int | None = 400, ramp: bool = True) -> HorizonCase:
    """A grid and four households: PV, loads, batteries, EVs (one with V2G), a heat pump,
    power-to-gas, a fuel cell, and a small dispatchable generator with ramp limits."""
    names = ["grid", "H1", "H2", "H3", "H4", "G"]
    net = network_from_dict(
        feeder(
            [("L1", "0", "1", 0.05, None), ("L2", "1", "2", 0.08, None)],
            {"grid": "0", "H1": "1", "H2": "1", "H3": "2", "H4": "2", "G": "2"},
            voltage_kv=0.4,
        )
    )
    hours = np.arange(slots) * 24 / slots
    tariff = tuple(int(v) for v in np.where((hours >= 17) & (hours < 22), 3_500, 2_500))
    scale = 24 // slots if slots <= 24 else 1
    ev_in, ev_out = slots * 18 // 24, slots
    evs = {"departure_slot": ev_out, "charge_w": 7_400, "capacity_wh": 50_000, "arrival_wh": 10_000}
    peers = [
        HorizonPeer("grid", PeerKind.GRID, curve(1, 2_500, -200_000 * scale, 200_000 * scale)),
        HorizonPeer(
            "H1",
            PeerKind.PROSUMER,
            curve(),
            assets=(
                Photovoltaic("pv", pv_profile(4_000 * scale, slots)),
                InflexibleLoad("load", load_profile(500 * scale, slots)),
                Battery("bat", 13_500, 1_000, 13_000, 5_000, 5_000, 6_000, cycle_cost=10),
                FuelCellChp("fc", 1_000, 450_000, 400_000, fuel_price=900),
            ),
        ),
        HorizonPeer(
            "H2",
            PeerKind.PROSUMER,
            curve(),
            assets=(
                Photovoltaic("pv", pv_profile(3_000 * scale, slots)),
                InflexibleLoad("load", load_profile(700 * scale, slots)),
                ElectricVehicle("ev", ev_in, needed_wh=20_000, **evs),  # type: ignore[arg-type]
            ),
        ),
        HorizonPeer(
            "H3",
            PeerKind.PROSUMER,
            curve(),
            assets=(
                InflexibleLoad("load", load_profile(400 * scale, slots)),
                ElectricVehicle("ev", ev_in, needed_wh=5_000, v2g_w=5_000, **evs),  # type: ignore[arg-type]
                PowerToGas("gss", 2_000, 1_000, 10_000, initial_wh=2_000),
            ),
        ),
        HorizonPeer(
            "H4",
            PeerKind.CONSUMER,
            curve(),
            assets=(
                HeatPump(
                    "hp",
                    4_000,
                    3_000_000,
                    150,
                    4_000,
                    21_000,
                    comfort_min_mc=tuple(20_000 if 7 <= h < 22 else 18_000 for h in hours),
                    comfort_max_mc=(23_000,) * slots,
                    outdoor_mc=tuple(
                        int(3_000 + 4_000 * math.sin((h - 9) / 24 * 2 * math.pi)) for h in hours
                    ),
                ),
            ),
        ),
        HorizonPeer(
            "G",
            PeerKind.PRODUCER,
            curve(50_000, 2_000, 0, 8_000 * scale),
            assets=(RampLimit("ramp", 1_000, 1_000, initial_w=0),) if ramp else (),
        ),
    ]
    assert [p.name for p in peers] == names
    signals = tuple(
        SlotSignals(alpha_milli=1, import_tariff=tariff[t], export_tariff=export)
        for t in range(slots)
    )
    return HorizonCase(
        "day", net, tuple(peers), slots, 86_400 // slots, signals, regularisation=1e-5
    )


@pytest.fixture(scope="module")
def day() -> tuple[HorizonCase, object]:
    case = community()
    return case, clear_horizon(case, "loss")


def test_battery_state_of_charge_holds_in_every_slot(day) -> None:
    _case, res = day
    bat = res.assets[("H1", "bat")]
    soc, ch, dis = bat["soc"], bat["charge"], bat["discharge"]
    prev = np.r_[6.0, soc[:-1]]
    np.testing.assert_allclose(soc, prev + 0.95 * ch - dis / 0.95, atol=1e-6)
    assert np.all(soc >= 1.0 - 1e-6) and np.all(soc <= 13.0 + 1e-6)
    assert np.all(ch <= 5 + 1e-6) and np.all(dis <= 5 + 1e-6) and np.all(ch >= -1e-7)
    assert soc[-1] >= 6.0 - 1e-6
    assert ch.max() > 0.5  # the battery is used, not idle


def test_ev_energy_at_departure_and_nothing_outside_its_stay(day) -> None:
    _case, res = day
    for name, needed in (("H2", 20.0), ("H3", 5.0)):
        ev = res.assets[(name, "ev")]
        stay = slice(18, 24)
        assert ev["soc"][23] >= 10.0 + needed - 1e-6
        assert np.all(np.isnan(ev["soc"][:18]))
        assert np.all(ev["charge"][:18] == 0.0)
        assert np.all(ev["charge"][stay] <= 7.4 + 1e-6)
        assert np.all(ev["soc"][stay] <= 50.0 + 1e-6)
    v2g = res.assets[("H3", "ev")]["v2g"]
    assert np.all(v2g[18:] <= 5.0 + 1e-6)


def test_room_stays_in_the_comfort_band_with_the_room_model(day) -> None:
    case, res = day
    hp = next(a for a in case.peers[4].assets if isinstance(a, HeatPump))
    temp, power = res.assets[("H4", "hp")]["temperature"], res.assets[("H4", "hp")]["power"]
    lo = np.asarray(hp.comfort_min_mc) / 1000
    assert np.all(temp >= lo - 1e-6) and np.all(temp <= 23.0 + 1e-6)
    keep = hp.decay(1.0)
    out = np.asarray(hp.outdoor_mc) / 1000
    prev = np.r_[21.0, temp[:-1]]
    model = keep * prev + (1 - keep) * (out + 3.0 * power / 0.15)
    np.testing.assert_allclose(temp, model, atol=1e-6)
    # the house is heated: the pump runs, and its draw is part of H4's injection
    assert power.sum() > 1.0
    np.testing.assert_allclose(res.injection[:, 4], -power, atol=1e-5)


def test_ramps_gas_store_and_balances_hold(day) -> None:
    case, res = day
    g = res.own[:, 5]
    steps = np.diff(np.r_[0.0, g])
    assert np.all(np.abs(steps) <= 1.0 + 1e-6)
    gss = res.assets[("H3", "gss")]
    prev = np.r_[2.0, gss["gas"][:-1]]
    np.testing.assert_allclose(
        gss["gas"], prev + 0.8 * gss["electrolyser"] - gss["fuel_cell"] / 0.5, atol=1e-6
    )
    assert gss["gas"][-1] >= 2.0 - 1e-6 and np.all(gss["gas"] <= 10.0 + 1e-6)
    for t in range(case.slots):
        m = res.trade_matrix(t)
        np.testing.assert_allclose(m + m.T, 0.0, atol=1e-12)  # 12.10 / 12.37
        np.testing.assert_allclose(m.sum(axis=1), res.injection[t], atol=1e-6)  # 12.1
    assert abs(res.injection.sum(axis=1)).max() < 1e-6
    assert abs(res.payment.sum(axis=1)).max() < 1e-6


def test_prosumers_sell_and_buy_with_the_chapters_sign_rules(day) -> None:
    case, res = day
    assert np.all(res.trades >= -1e-7)  # every directed trade P_ij >= 0 (12.8, 12.9)
    h1, h2 = case.index("H1"), case.index("H2")
    # H2 sells its PV at noon and buys for its EV in the evening
    assert res.injection[:, h2].max() > 0.5 and res.injection[:, h2].min() < -0.5
    sellers, buyers = set(res.e_src.tolist()), set(res.e_dst.tolist())
    assert case.index("H4") not in sellers  # a consumer never sells
    assert case.index("G") not in buyers  # a producer never buys
    assert {h1, h2, case.index("grid")} <= sellers & buyers
    # the grid sells at the import tariff when the community imports
    imports = res.injection[:, 0] > 1e-3
    tariff = np.array([s.import_tariff for s in case.signals]) * case.tick
    np.testing.assert_allclose(res.peer_price[imports, 0], tariff[imports], atol=2e-3)


def test_certificate_covers_the_horizon_and_rejects_perturbations(day) -> None:
    case, res = day
    cert = res.certificate
    assert check_horizon_certificate(case, cert).ok
    plain = horizon_certificate_to_plain(cert)
    assert all(isinstance(v, int) for v in plain[8])  # type: ignore[union-attr]
    assert check_horizon_certificate(case, horizon_certificate_from_plain(plain)).ok
    problem = build_horizon_problem(case, cert.spec)
    soc = problem.assets[("H1", "bat")]["soc"][12]
    x = cert.x.copy()
    x[soc] += 0.5  # move the battery's state of charge in one slot
    bad = check_horizon_certificate(case, dataclasses.replace(cert, x=x))
    assert not bad.ok and any("battery.dynamics" in f for f in bad.failures)
    y = cert.y.copy()
    y[problem.eq_groups[-1][1]] += 0.01  # a price moved by 0.01
    assert not check_horizon_certificate(case, dataclasses.replace(cert, y=y)).ok
    z = cert.z.copy()
    z[0] = -0.01  # a negative multiplier
    assert not check_horizon_certificate(case, dataclasses.replace(cert, z=z)).ok


def test_size_grows_linearly_in_slots() -> None:
    sizes = []
    for slots in (24, 48, 96):
        problem = build_horizon_problem(
            community(slots), make_horizon_spec(community(slots), "loss")
        )
        nx, neq, nin = problem.size
        sizes.append(np.array([nx, neq, nin, problem.a_eq.nnz + problem.a_in.nnz]))
    # every block is per slot (EV stays cover the last quarter of the day); only
    # the PV slots with nothing to give (fixed at 0) shift a few rows between kinds
    np.testing.assert_allclose(sizes[1] / sizes[0], 2.0, rtol=0.01)
    np.testing.assert_allclose(sizes[2] / sizes[0], 4.0, rtol=0.01)


def test_export_tariff_is_at_most_the_import_tariff() -> None:
    with pytest.raises(InvalidHorizon) as info:
        dataclasses.replace(
            community(), signals=(SlotSignals(import_tariff=100, export_tariff=200),)
        )
    assert info.value.got == 200 and "import_tariff 100" in info.value.want
    with pytest.raises(InvalidHorizon, match="signals"):
        dataclasses.replace(community(), signals=(SlotSignals(),) * 3)


def test_an_unreachable_comfort_band_is_infeasible() -> None:
    case = community(ramp=False)
    h4 = case.peers[4]
    cold = HeatPump(
        "hp",
        100,
        1_000_000,
        400,
        1_000,
        21_000,
        (20_000,) * T_DAY,
        (23_000,) * T_DAY,
        (-10_000,) * T_DAY,
    )
    peers = list(case.peers)
    peers[4] = dataclasses.replace(h4, assets=(cold,))
    with pytest.raises(Infeasible):
        clear_horizon(dataclasses.replace(case, peers=tuple(peers)))


def test_asset_profiles_must_cover_the_horizon() -> None:
    case = community()
    peers = list(case.peers)
    peers[1] = dataclasses.replace(peers[1], assets=(InflexibleLoad("load", (1, 2, 3)),))
    with pytest.raises(InvalidAsset, match="24 values"):
        dataclasses.replace(case, peers=tuple(peers))


# --------------------------------------------------------------- heat + CHP
def chp_horizon(slots: int = 6) -> HorizonCase:
    net = network_from_dict(
        feeder(
            [("L1", "0", "1", 0.1, None)], {"K1": "0", "K2": "1", "C1": "1", "C2": "0", "grid": "0"}
        )
    )
    demand = [int(30_000 + 25_000 * math.sin(t / slots * 2 * math.pi)) for t in range(slots)]
    heat_demand = [int(20_000 + 15_000 * math.cos(t / slots * 2 * math.pi)) for t in range(slots)]
    chp = ChpUnit(
        "chp",
        a=(60_000, 0),
        b=(52_000, 44_000),
        c=(20_000, 26_000),
        d=(24_000, 0),
        ramp_up_w_per_h=8_000,
        ramp_down_w_per_h=8_000,
        initial_w=30_000,
    )
    peers = (
        HorizonPeer(
            "K1",
            PeerKind.PRODUCER,
            curve(5_000, 900, 0, 60_000),
            heat=curve(4_000, 300, 0, 44_000),
            assets=(chp,),
        ),
        HorizonPeer(
            "K2",
            PeerKind.PRODUCER,
            curve(5_000, 1_000, 0, 60_000),
            heat=curve(4_000, 350, 0, 44_000),
            assets=(chp,),
        ),
        HorizonPeer(
            "C1",
            PeerKind.CONSUMER,
            tuple(SlotCurve(10_000, 3_800, 0, -d, -d // 2) for d in demand),
            heat=tuple(SlotCurve(20_000, 1_200, 0, -h, -h // 2) for h in heat_demand),
        ),
        HorizonPeer(
            "C2",
            PeerKind.CONSUMER,
            curve(10_000, 3_600, -20_000, -10_000),
            heat=curve(20_000, 1_100, -15_000, -5_000),
        ),
        HorizonPeer("grid", PeerKind.GRID, curve(3_000, 1_500, -500_000, 500_000)),
    )
    # the grid takes exports at 0.05: both CHP units must run (P >= 20 kW) in every slot
    signals = (SlotSignals(export_tariff=500),)
    return HorizonCase("chp", net, peers, slots, signals=signals, regularisation=1e-5)


def test_chp_region_and_ramps_hold_in_every_slot_of_the_heat_model() -> None:
    case = chp_horizon()
    res = clear_horizon(case, "heat")
    assert res.heat is not None and res.heat_peer_price is not None
    region: ChpRegion = case.peers[0].assets[0].region()  # type: ignore[attr-defined]
    for i in (0, 1):
        p, h = res.own[:, i], res.heat[:, i]
        for t in range(case.slots):
            assert region.contains(float(p[t]), float(h[t]), tol=1e-6)
        assert np.all(np.abs(np.diff(np.r_[30.0, p])) <= 8.0 + 1e-6)
    assert check_horizon_certificate(case, res.certificate).ok
    # heat balances: sold = bought in every slot
    np.testing.assert_allclose(res.heat.sum(axis=1), 0.0, atol=1e-6)
    # without ramps the schedule moves more: the ramp rows bind
    free = dataclasses.replace(
        case,
        peers=tuple(
            dataclasses.replace(
                p,
                assets=tuple(
                    dataclasses.replace(a, ramp_up_w_per_h=None, ramp_down_w_per_h=None)
                    for a in p.assets
                ),
            )
            for p in case.peers
        ),
    )
    loose = clear_horizon(free, "heat")
    assert loose.objective < res.objective - 1e-6


def test_fuel_cell_heat_needs_a_heat_curve_in_the_heat_model() -> None:
    case = chp_horizon()
    peers = list(case.peers)
    peers[3] = dataclasses.replace(
        peers[3],
        kind=PeerKind.PROSUMER,
        heat=None,
        assets=(FuelCellChp("fc", 1_000, 500_000, 400_000, 100),),
    )
    with pytest.raises(InvalidAsset, match="heat curve"):
        clear_horizon(dataclasses.replace(case, peers=tuple(peers)), "heat")
    with pytest.raises(InvalidOption, match="heat"):
        clear_horizon(community(), "heat")


# ------------------------------------------------------------ properties
def test_ordering_hint_declares_the_stores_of_every_kth_slot_a_dense_block() -> None:
    case = community(12)
    problem = build_horizon_problem(case, make_horizon_spec(case, "loss"))
    rows, cols = ordering_hint(problem, 4)
    assert np.all(rows < cols)  # upper triangle, no diagonal
    ev_in = 12 * 18 // 24
    for t in (3, 7):  # slot 11 is the last: nothing after it to separate
        block = state_columns(problem, t)
        # battery, gas store and room in every slot; the two EVs only while plugged in
        assert block.size == 3 + 2 * (t >= ev_in)
        assert problem.assets[("H1", "bat")]["soc"][t] in block
        assert problem.assets[("H4", "hp")]["temperature"][t] in block
    blocks = [state_columns(problem, t) for t in (3, 7)]
    want = {(int(a), int(b)) for blk in blocks for a in blk for b in blk if a < b}
    assert set(zip(rows.tolist(), cols.tolist(), strict=True)) == want
    for every in (None, 0, 12, 40):
        assert ordering_hint(problem, every)[0].size == 0
    assert stores_are_meshed(problem)  # H1, H2, H3 hold stores and trade with each other
    # stores traded only through the grid: chains that need no hint
    alone = dataclasses.replace(
        case,
        peers=tuple(
            dataclasses.replace(p, partners=None if p.name == "grid" else ("grid",))
            for p in case.peers
        ),
    )
    lonely = build_horizon_problem(alone, make_horizon_spec(alone, "loss"))
    assert not stores_are_meshed(lonely)
    assert ordering_hint(lonely, 4)[0].size == 0
    with pytest.raises(InvalidOption):
        clear_horizon(case, "loss", time_block=-1)


@pytest.mark.parametrize("every", [1, 3, 8])
def test_ordering_hint_leaves_the_optimum_and_certificate_unchanged(every: int) -> None:
    case = community(16)
    plain = clear_horizon(case, "loss", time_block=None)
    hinted = clear_horizon(case, "loss", time_block=every)
    assert hinted.objective == pytest.approx(plain.objective, rel=1e-6)
    np.testing.assert_allclose(hinted.peer_price, plain.peer_price, atol=1e-4)
    assert check_horizon_certificate(case, hinted.certificate).ok


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    slots=st.integers(1, 8),
    capacity=st.integers(2_000, 20_000),
    eta=st.integers(700_000, 1_000_000),
    prices=st.lists(st.integers(500, 5_000), min_size=8, max_size=8),
)
def test_random_battery_horizons_are_certified_and_keep_their_bounds(
    slots: int, capacity: int, eta: int, prices: list[int]
) -> None:
    net = network_from_dict(feeder([("L1", "0", "1", 0.1, None)], {"grid": "0", "B": "1"}))
    bat = Battery(
        "bat",
        capacity,
        0,
        capacity,
        3_000,
        3_000,
        capacity // 2,
        charge_efficiency_ppm=eta,
        discharge_efficiency_ppm=eta,
    )
    case = HorizonCase(
        "bat",
        net,
        (
            HorizonPeer("grid", PeerKind.GRID, curve(1, 3_000, -50_000, 50_000)),
            HorizonPeer(
                "B", PeerKind.PROSUMER, curve(), assets=(bat, InflexibleLoad("l", (500,) * slots))
            ),
        ),
        slots,
        signals=tuple(SlotSignals(import_tariff=p, export_tariff=p - 200) for p in prices[:slots]),
        regularisation=1e-5,
    )
    res = clear_horizon(case)
    assert check_horizon_certificate(case, res.certificate).ok
    b = res.assets[("B", "bat")]
    e = eta / 1e6
    prev = np.r_[capacity // 2 / 1000, b["soc"][:-1]]
    np.testing.assert_allclose(b["soc"], prev + e * b["charge"] - b["discharge"] / e, atol=1e-6)
    assert np.all(b["soc"] >= -1e-6) and np.all(b["soc"] <= capacity / 1000 + 1e-6)
    assert b["soc"][-1] >= capacity // 2 / 1000 - 1e-6
    # the meter sees load - discharge + charge, bought from (or sold to) the grid
    np.testing.assert_allclose(res.injection[:, 1], b["discharge"] - b["charge"] - 0.5, atol=1e-6)


def test_certificate_rejects_wrong_sizes_and_cases(day) -> None:
    case, res = day
    cert: HorizonCertificate = res.certificate
    from clearing import CertificateError

    with pytest.raises(CertificateError, match="shape"):
        check_horizon_certificate(case, dataclasses.replace(cert, x=cert.x[:-1]))
    with pytest.raises(CertificateError, match="slot count"):
        check_horizon_certificate(case, dataclasses.replace(cert, slots=3))
    with pytest.raises(CertificateError):
        horizon_certificate_from_plain([1, 9, "basic"])


# ------------------------------------------------- rounding, limits, congestion
def test_each_slot_rounds_to_exact_integer_balances(day) -> None:
    case, res = day
    settlements = round_horizon_settlement(case, res)
    assert len(settlements) == case.slots
    for t, slot in enumerate(settlements):
        slot.check()
        assert sum(p.energy_wh for p in slot.peers) == 0
        assert sum(p.payment for p in slot.peers) == 0
        assert slot.operator_revenue == sum(p.penalty for p in slot.peers)
        for row in slot.peers:
            i = case.index(row.peer)
            trades = sum(1 for tr in slot.trades if row.peer in (tr.seller, tr.buyer))
            # at most half a Wh per trade away from the cleared energy
            assert abs(row.energy_wh - res.injection[t, i] * 1000) <= 0.5 * trades + 1e-3
        for tr in slot.trades:
            assert isinstance(tr.energy_wh, int) and tr.energy_wh > 0
            assert tr.amount == tr.price * tr.energy_wh


def limited_day() -> HorizonCase:
    case = community(ramp=False)
    net = case.network.to_dict()
    net["lines"][1]["capacity_kw"] = 2.0  # L2 feeds H3, H4 and G
    return dataclasses.replace(case, network=network_from_dict(net))


def test_hard_line_limits_hold_in_every_slot() -> None:
    case = limited_day()
    free = clear_horizon(case, "loss")
    assert np.abs(free.flows[:, 1]).max() > 2.0 + 1e-3  # the limit binds somewhere
    res = clear_horizon(case, "loss", line_limits=True)
    assert np.all(np.abs(res.flows[:, 1]) <= 2.0 + 1e-6)
    assert np.abs(res.line_price[:, 1]).max() > 1e-4
    assert check_horizon_certificate(case, res.certificate).ok
    assert res.objective > free.objective


def test_congestion_procedure_over_the_day() -> None:
    case = limited_day()
    case = dataclasses.replace(
        case, signals=tuple(dataclasses.replace(s, beta_milli=50) for s in case.signals)
    )
    out = horizon_congestion_procedure(case, "loss+congestion")
    assert len(out.rounds) >= 2
    first, last = out.rounds[0], out.final
    assert any(first.overloaded) and set(last.spec.penalised[0]) <= {"L1", "L2"}
    # σ only grows, slot by slot
    for a, b in zip(out.rounds[1:], out.rounds[2:], strict=False):
        for t in range(case.slots):
            assert set(a.spec.penalised[t]) <= set(b.spec.penalised[t])
    assert np.abs(last.flows[:, 1]).max() <= np.abs(first.flows[:, 1]).max() + 1e-9
    assert check_horizon_certificate(case, last.certificate).ok


def test_fuel_cell_heat_enters_the_heat_balance() -> None:
    case = chp_horizon(4)
    peers = list(case.peers)
    fc = FuelCellChp("fc", 10_000, 400_000, 400_000, fuel_price=100, min_power_w=2_000)
    peers[3] = dataclasses.replace(peers[3], kind=PeerKind.PROSUMER, assets=(fc,))
    case = dataclasses.replace(case, peers=tuple(peers))
    res = clear_horizon(case, "heat")
    assert res.heat is not None
    power = res.assets[("C2", "fc")]["power"]
    assert np.all(power >= 2.0 - 1e-6) and np.all(power <= 10.0 + 1e-6)
    own_heat = res.x[build_horizon_problem(case, res.spec).blocks["XH"][:, 3]]
    np.testing.assert_allclose(res.heat[:, 3], own_heat + power, atol=1e-6)  # η_h / η_e = 1
    assert check_horizon_certificate(case, res.certificate).ok


def test_an_air_conditioner_keeps_a_summer_room_cool() -> None:
    net = network_from_dict(feeder([("L1", "0", "1", 0.1, None)], {"grid": "0", "B": "1"}))
    slots = 24
    outdoor = tuple(
        int(27_000 + 6_000 * math.sin((h - 9) / 24 * 2 * math.pi)) for h in range(slots)
    )
    ac = HeatPump(
        "ac",
        3_000,
        3_000_000,
        150,
        3_000,
        24_000,
        (22_000,) * slots,
        (25_000,) * slots,
        outdoor,
        gains_w=(300,) * slots,
        cooling=True,
    )
    case = HorizonCase(
        "summer",
        net,
        (
            HorizonPeer("grid", PeerKind.GRID, curve(1, 3_000, 0, 50_000)),
            HorizonPeer("B", PeerKind.CONSUMER, curve(), assets=(ac,)),
        ),
        slots,
        regularisation=1e-5,
    )
    res = clear_horizon(case)
    temp, power = res.assets[("B", "ac")]["temperature"], res.assets[("B", "ac")]["power"]
    assert np.all(temp >= 22.0 - 1e-6) and np.all(temp <= 25.0 + 1e-6)
    keep = ac.decay(1.0)
    prev = np.r_[24.0, temp[:-1]]
    out = np.asarray(outdoor) / 1000
    np.testing.assert_allclose(
        temp, keep * prev + (1 - keep) * (out + (0.3 - 3.0 * power) / 0.15), atol=1e-6
    )
    assert power.sum() > 1.0  # without cooling the afternoon would pass 25 °C
