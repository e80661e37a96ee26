"""``p2pex simulate``: the agents' schedules, the designs' figures, a short run on a node."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from node.simulate.day import (
    EXPORT_PRICE,
    SLOT_HOURS,
    BatterySpec,
    Building,
    Day,
    EvSpec,
    HeatPumpSpec,
    chapter_day,
    heat_pump_for,
    outdoor_profile,
    tariffs,
)
from node.simulate.designs import grid_only_outcome, pool_outcome, summarise
from node.simulate.hems import SlotDecision, schedule_day
from node.simulate.runner import decisions_array

TOL = 1e-6  # kWh: the LP's feasibility tolerance, far below a Wh


def check_schedule(b: Building, decisions: list[SlotDecision]) -> None:
    """Every asset constraint of the HEMS, checked on the carried-out slots."""
    h = SLOT_HOURS
    soc = b.battery.soc_start_kwh if b.battery else 0.0
    ev = 0.0
    room = b.heat_pump.start_c if b.heat_pump else 0.0
    for t, d in enumerate(decisions):
        # the meter balance: net = pv - load - charge + discharge - ev - heat pump
        assert d.net_kw == pytest.approx(
            b.pv_kw[t] - b.load_kw[t] - d.charge_kw + d.discharge_kw - d.ev_kw - d.heat_kw,
            abs=1e-9,
        )
        if b.heat_pump is None:
            assert d.heat_kw == 0.0
        else:  # the room model, stepped here by hand, stays in the comfort band
            hp = b.heat_pump
            assert -TOL <= d.heat_kw <= hp.power_kw + TOL
            a = math.exp(-h * hp.ua_kw_per_k / hp.capacitance_kwh_per_k)
            room = a * room + (1 - a) * (hp.outdoor_c[t] + hp.cop * d.heat_kw / hp.ua_kw_per_k)
            assert d.indoor_c == pytest.approx(room, abs=1e-9)
            assert hp.comfort_min_c[t] - TOL <= room <= hp.comfort_max_c[t] + TOL
        if b.battery is None:
            assert d.charge_kw == d.discharge_kw == 0.0
        else:
            bat = b.battery
            assert -TOL <= d.charge_kw <= bat.power_kw + TOL
            assert -TOL <= d.discharge_kw <= bat.power_kw + TOL
            soc += h * (bat.efficiency * d.charge_kw - d.discharge_kw / bat.efficiency)
            assert d.soc_kwh == pytest.approx(soc, abs=1e-9)
            assert bat.soc_min_kwh - TOL <= soc <= bat.soc_max_kwh + TOL
        if b.ev is None or t >= b.ev.departure_slot:
            assert abs(d.ev_kw) <= TOL
        else:
            assert -TOL <= d.ev_kw <= b.ev.charge_kw + TOL
        ev += h * (b.ev.efficiency * d.ev_kw if b.ev else 0.0)
        if b.ev is not None and t == b.ev.departure_slot - 1:
            assert ev >= b.ev.needed_kwh - TOL  # EV energy at departure
    if b.battery is not None:
        assert soc >= b.battery.soc_start_kwh - TOL  # the day does not drain it for free


def test_chapter_agents_schedules_respect_their_assets() -> None:
    day = chapter_day(24, seed=3)
    assert any(b.battery for b in day.buildings)
    assert any(b.ev for b in day.buildings)
    assert [b.name for b in day.buildings if b.heat_pump] == ["C3", "C6", "C9"]
    for b in day.buildings:
        check_schedule(b, schedule_day(b, day.import_price, day.export_price))


@st.composite
def buildings(draw: st.DrawFn) -> Building:
    T = draw(st.integers(1, 24))
    kw = st.floats(0.0, 20.0, allow_nan=False)
    load = tuple(draw(st.lists(kw, min_size=T, max_size=T)))
    pv = tuple(draw(st.lists(kw, min_size=T, max_size=T)))
    battery = None
    if draw(st.booleans()):
        cap = draw(st.floats(1.0, 30.0))
        lo, hi = 0.1 * cap, 0.9 * cap
        start = draw(st.floats(lo, hi))
        battery = BatterySpec(cap, draw(st.floats(0.5, 10.0)), 0.95, lo, hi, start)
    ev = None
    if draw(st.booleans()):
        dep = draw(st.integers(1, T))
        charge = draw(st.floats(1.0, 22.0))
        need = draw(st.floats(0.0, 0.8 * charge * 0.95 * dep))
        ev = EvSpec(dep, need, charge, 60.0, 0.95)
    heat_pump = None
    if draw(st.booleans()):
        outdoor = tuple(draw(st.lists(st.floats(-10.0, 18.0), min_size=T, max_size=T)))
        heat_pump = heat_pump_for(draw(st.floats(0.0, 20.0)), outdoor)
    return Building("H", "1", load, pv, battery, ev, heat_pump)


@given(buildings())
def test_random_buildings_schedules_respect_their_assets(b: Building) -> None:
    imp, exp = tariffs(len(b.load_kw))
    check_schedule(b, schedule_day(b, imp, exp))


def grid_only_reference(day: Day, net_kw: np.ndarray) -> tuple[float, float, float]:
    """The obvious way: each building, each slot, buys or sells at the tariff."""
    cost = imported = exported = 0.0
    for t in range(day.slots):
        for k in range(len(day.buildings)):
            energy = float(net_kw[t, k]) * SLOT_HOURS
            if energy < 0:
                cost += -energy * day.import_price[t] * day.tick
                imported += -energy
            else:
                cost -= energy * day.export_price[t] * day.tick
                exported += energy
    return cost, imported, exported


def test_no_p2p_baseline_matches_the_obvious_reference() -> None:
    day = chapter_day(24, seed=5)
    decisions = {b.name: schedule_day(b, day.import_price, day.export_price) for b in day.buildings}
    net, soc = decisions_array(day, decisions)
    outcome = grid_only_outcome(day, net, soc, "no P2P")
    cost, imported, exported = grid_only_reference(day, net)
    row = summarise(day, outcome)
    assert row.cost == pytest.approx(cost, rel=1e-12)
    assert row.grid_import_kwh == pytest.approx(imported, rel=1e-12)
    assert row.grid_export_kwh == pytest.approx(exported, rel=1e-12)
    # every kWh of PV is sold to the grid when the PV plants trade only with it
    assert row.self_consumption == pytest.approx(0.0, abs=1e-9)


def test_pool_is_no_dearer_than_trading_alone_with_the_grid() -> None:
    day = chapter_day(12, seed=5)
    decisions = {b.name: schedule_day(b, day.import_price, day.export_price) for b in day.buildings}
    net, soc = decisions_array(day, decisions)
    alone = summarise(day, grid_only_outcome(day, net, soc, "no P2P"))
    pool, _ = pool_outcome(day)
    # the pool nets the community's positions and dispatches its batteries jointly
    # (to the interior-point solver's accuracy: the pool also weighs losses)
    assert summarise(day, pool).cost <= alone.cost * (1 + 1e-5)
    for k, b in enumerate(day.buildings):
        if b.battery is not None:
            assert np.all(pool.soc_kwh[:, k] >= b.battery.soc_min_kwh - 1e-4)
            assert np.all(pool.soc_kwh[:, k] <= b.battery.soc_max_kwh + 1e-4)


def test_pool_keeps_every_room_in_its_comfort_band() -> None:
    day = chapter_day(24, seed=5)
    _, result = pool_outcome(day)
    pumps = [b for b in day.buildings if b.heat_pump is not None]
    assert pumps
    for b in pumps:
        hp = b.heat_pump
        assert hp is not None
        got = result.assets[(b.name, "hp")]
        room, power = got["temperature"], got["power"]
        assert np.all(room >= np.array(hp.comfort_min_c) - 1e-6)
        assert np.all(room <= np.array(hp.comfort_max_c) + 1e-6)
        # the pool's room is the agent's: step the same model by hand
        expect, before = [], hp.start_c
        for t in range(day.slots):
            before = hp.next_temperature(before, t, float(power[t]))
            expect.append(before)
        assert room == pytest.approx(expect, abs=1e-6)
        assert np.any(power > 1e-3)  # the cool day makes it work


def test_outdoor_profile_is_seeded_and_a_cool_day() -> None:
    a = outdoor_profile(24, seed=1)
    assert a == outdoor_profile(24, seed=1)
    assert a != outdoor_profile(24, seed=2)
    assert max(range(24), key=lambda t: a[t]) in range(13, 18)  # warmest mid-afternoon
    assert min(range(24), key=lambda t: a[t]) in (range(6))  # coldest before dawn
    assert min(a) >= 2.0 and max(a) <= 14.0


def test_heat_pump_rule_can_hold_the_band_at_the_design_point() -> None:
    hp: HeatPumpSpec = heat_pump_for(1.0, (0.0,))
    # full power holds the comfort minimum 30 K below it
    assert hp.cop * hp.power_kw / hp.ua_kw_per_k == pytest.approx(30.0, rel=1e-3)
    assert hp.power_kw == 3.0 and heat_pump_for(40.0, (0.0,)).power_kw == 20.0


def test_tariffs_keep_export_below_import() -> None:
    imp, exp = tariffs(24)
    assert all(e == EXPORT_PRICE <= i for i, e in zip(imp, exp, strict=True))


def test_the_cli_registers_simulate_with_its_options() -> None:
    from node.cli.main import build_parser

    args = build_parser().parse_args(
        ["simulate", "1-LV-rural1--0-sw", "--slots", "6", "--seed", "2", "--out", "x", "--plot"]
    )
    assert (args.scenario, args.slots, args.seed, str(args.out), args.plot) == (
        "1-LV-rural1--0-sw", 6, 2, "x", True,
    )  # fmt: skip


def test_plot_without_matplotlib_is_refused_before_the_day_runs(monkeypatch, capsys) -> None:
    import importlib.util

    from node.cli.main import main

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "matplotlib" else real(name, *a),
    )
    assert main(["simulate", "chapter", "--slots", "2", "--plot"]) != 0
    out, err = capsys.readouterr()
    assert "--plot needs matplotlib: pip install 'p2pex[plot]'" in err
    assert "building the chapter scenario" not in out  # nothing ran


@pytest.mark.slow
def test_short_chapter_day_on_a_node(tmp_path: Path) -> None:
    from node.simulate import simulate
    from node.simulate.output import write_tables

    printed: list[str] = []
    # 8 hours: PV from 06:00, so the CDA trades in the last two slots
    sim = simulate("chapter", slots=8, seed=3, root=tmp_path / "node", say=printed.append)
    assert sim.run.ok
    assert [r.payments_sum for r in sim.run.slots] == [0] * 8  # money conserved per slot
    assert sum("settled, money conserved" in line for line in printed) == 8  # progress per slot
    for b in sim.day.buildings:  # the schedules the agents carried out on the node
        check_schedule(b, sim.run.decisions[b.name])
    assert [s.design for s in sim.summary] == ["P2P market", "no P2P", "pool"]
    out = tmp_path / "out"
    write_tables(out, sim.day, sim.run, sim.designs, sim.summary, sim.pool_grid_price)
    with (out / "summary.csv").open() as f:
        summary = list(csv.DictReader(f))
    assert [r["design"] for r in summary] == ["P2P market", "no P2P", "pool"]
    with (out / "prices.csv").open() as f:
        prices = list(csv.DictReader(f))
    assert len(prices) == 8
    assert all(float(r["max_line_loading_pool"]) >= 0 for r in prices)
    assert all(int(r["payments_sum_tick_wh"]) == 0 for r in prices)  # per slot
    assert sum(int(r["cda_trades"]) for r in prices) > 0
    with (out / "slots.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 8 * 19
    from node.simulate.output import parquet_available

    if parquet_available():  # the Parquet copies hold the same tables
        from pyarrow import parquet as pq  # type: ignore[import-not-found, import-untyped, unused-ignore]

        for name, table in (("slots", rows), ("prices", prices), ("summary", summary)):
            pt = pq.read_table(out / f"{name}.parquet")
            assert pt.num_rows == len(table)
            assert pt.column_names == list(table[0])
    for r in rows:
        # the meter read what the agent did; the imbalance is metered - contracted
        assert abs(int(r["metered_wh"]) - float(r["net_kwh"]) * 1000) <= 0.5 + 1e-6
        assert int(r["imbalance_wh"]) == int(r["metered_wh"]) - int(r["contracted_wh"])
    # P2P trades between buildings only lower what the community pays the grid
    # for the same net positions (prices lie between the tariffs)
    for p in prices:
        slot_rows = [r for r in rows if r["slot"] == p["slot"]]
        paid = -sum(int(r["payment_tick_wh"]) for r in slot_rows)
        alone = sum(
            -int(r["metered_wh"])
            * int(p["import_ticks" if int(r["metered_wh"]) < 0 else "export_ticks"])
            for r in slot_rows
        )
        assert paid <= alone


def test_agents_expect_the_last_cda_price_position_between_the_tariffs() -> None:
    from node.simulate.hems import expected_sell, price_share

    assert expected_sell([500, 500], [1500, 3000], None) == [500.0, 500.0]
    share = price_share(1000.0, 500, 1500)  # halfway between export and import
    assert share == 0.5
    assert expected_sell([500, 500], [1500, 3000], share) == [1000.0, 1750.0]
    assert expected_sell([500], [1500], 2.0) == [1500.0]  # never above the import tariff


def test_bad_scenarios_are_clear_errors(tmp_path: Path) -> None:
    from node.errors import NodeError
    from node.simulate import simulate

    with pytest.raises(NodeError, match="slots"):
        simulate("chapter", slots=0, seed=1, root=tmp_path, say=lambda _: None)
    with pytest.raises(NodeError, match="unknown SimBench code"):
        simulate("no-such-grid", slots=2, seed=1, root=tmp_path, say=lambda _: None)


def test_parquet_round_trips_to_the_csv_content(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    from pyarrow import parquet as pq  # type: ignore[import-not-found, import-untyped, unused-ignore]

    from node.simulate.output import write_parquet

    header = ["slot", "peer", "soc_kwh", "order_side", "payment_tick_wh", "self_consumption"]
    rows = [
        [1, "H1", 2.5, "buy", -120_000_000_000, 0.25],
        [1, "H2", "", "", 0, 1.0],  # no battery, no order: empty cells
        [2, "H1", 3.0001, "sell", 7, 0.0],
    ]
    path = tmp_path / "t.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    out = write_parquet(path)
    assert out == tmp_path / "t.parquet"
    table = pq.read_table(out)
    assert table.column_names == header
    with path.open() as f:
        cells = list(csv.reader(f))[1:]
    got = table.to_pylist()
    assert len(got) == len(cells)
    for record, line in zip(got, cells, strict=True):
        for name, cell in zip(header, line, strict=True):
            value = record[name]
            if cell == "":
                assert value in (None, "")  # an empty text cell or a missing number
            elif isinstance(value, str):
                assert value == cell
            else:
                assert value == float(cell)
                assert isinstance(value, int) == cell.lstrip("-").isdigit()  # ints stay ints
