"""Importing standard grid data: MATPOWER files, pandapower networks, SimBench codes."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from clearing import NonRadialNetwork, clear, congestion_procedure
from clearing.errors import GridImportError
from clearing.importers import (
    PeerRule,
    case_from_grid,
    case_from_matpower,
    case_from_pandapower,
    case_from_simbench,
    grid_from_matpower,
    parse_matpower,
    simbench_net,
)

DATA = Path(__file__).resolve().parent / "data"
RADIAL6 = DATA / "radial6.m"
SIMBENCH_CODE = "1-LV-rural1--0-sw"
NOON_21_JUNE = 16464


def cleared_consistently(case, model="basic"):
    """Clear ``case``; check the market balances and every peer is inside its bounds."""
    r = clear(case, model)
    assert r.status == "optimal"
    assert abs(r.injection.sum()) < 1e-5 * max(1.0, np.abs(r.injection).max())
    lo = np.array([p.p_min for p in case.peers])
    hi = np.array([p.p_max for p in case.peers])
    assert np.all(r.injection >= lo - 1e-5) and np.all(r.injection <= hi + 1e-5)
    return r


# ------------------------------------------------------------------ MATPOWER


def test_matpower_parse_reads_matrices_and_skips_comments():
    text = "mpc.baseMVA = 10; % base\nmpc.bus = [\n 1 3 0; % root\n 2 1 0.5;\n];\n"
    text += "mpc.branch = [1 2 0.1 0.2 0 0 0 0 0 0 1];"
    m = parse_matpower(text)
    assert m["baseMVA"] == 10.0
    assert m["bus"].tolist() == [[1, 3, 0], [2, 1, 0.5]]
    assert m["branch"].shape == (1, 11)
    with pytest.raises(GridImportError, match=r"mpc.branch is missing"):
        parse_matpower("mpc.baseMVA = 10; mpc.bus = [1 3 0];")
    with pytest.raises(GridImportError, match="rows of different lengths"):
        parse_matpower("mpc.baseMVA = 1; mpc.bus = [1 3; 2]; mpc.branch = [1 2];")


def test_matpower_case_converts_units_and_costs():
    case = case_from_matpower(RADIAL6)
    net = case.network
    assert net.voltage_kv == 11.0 and net.root == "1"
    assert [ln.name for ln in net.lines] == ["L1", "L2", "L3", "L4", "L5"]  # L6 out of service
    l1 = net.lines[0]
    assert l1.r_ohm == pytest.approx(0.008 * 11**2 / 10)  # r_pu x V^2 / S_base
    assert l1.x_ohm == pytest.approx(0.004 * 11**2 / 10)
    assert l1.capacity_kw == pytest.approx(500.0)  # RATE_A 0.5 MVA
    assert math.isinf(net.lines[4].capacity_kw)  # RATE_A 0 = unlimited
    assert case.names == ("load2", "load3", "load4", "load5", "load6", "gen2", "gen3", "grid")
    gen2 = case.peers[case.index("gen2")]
    # gencost 2 c2 P^2 + 40 P (MW, $/h) -> a = 2 * 2 / 1e6, b = 0.04 per kW
    assert (gen2.a, gen2.b, gen2.p_min, gen2.p_max) == pytest.approx((4e-6, 0.04, 0.0, 150.0))
    gen3 = case.peers[case.index("gen3")]
    assert (gen3.p_min, gen3.p_max) == pytest.approx((10.0, 80.0))
    grid = case.grid_peer()
    assert grid is not None and net.bus_of(grid.name) == "1"
    assert (grid.b, grid.p_max) == pytest.approx((0.06, 1000.0))
    load3 = case.peers[case.index("load3")]
    assert (load3.p_min, load3.p_max) == pytest.approx((-120.0, -60.0))  # Pd 0.12 MW, half flexible
    assert case.currency == "USD"


def test_matpower_case_clears_end_to_end():
    case = case_from_matpower(RADIAL6)
    r = cleared_consistently(case)
    assert r.overloaded == ("L4",)  # 160 kW of load behind L4 (70 kW) minus gen3's 80 kW
    outcome = congestion_procedure(case, beta=0.05)
    assert outcome.resolved


def test_matpower_loop_is_refused_by_name(tmp_path):
    text = RADIAL6.read_text(encoding="utf-8")
    looped = text.replace(
        "\t4\t6\t0.0300\t0.0150\t0\t0.2\t0.2\t0.2\t0\t0\t0\t",
        "\t4\t6\t0.0300\t0.0150\t0\t0.2\t0.2\t0.2\t0\t0\t1\t",
    )
    assert looped != text
    path = tmp_path / "looped.m"
    path.write_text(looped, encoding="utf-8")
    with pytest.raises(NonRadialNetwork, match=r"line 'L\d' closes a loop"):
        case_from_matpower(path)


def test_matpower_bad_files_raise_typed_errors(tmp_path):
    with pytest.raises(GridImportError, match="cannot read MATPOWER file"):
        case_from_matpower(tmp_path / "missing.m")
    bad = tmp_path / "bad.m"
    no_root = (
        "mpc.baseMVA = 10;\nmpc.bus = [1 1 0 0 0 0 1 1 0 11 1 1.1 0.9];\n"
        "mpc.branch = [1 1 0.1 0.1 0 0 0 0 0 0 1 -360 360];"
    )
    bad.write_text(no_root, encoding="utf-8")
    with pytest.raises(GridImportError, match="exactly one reference bus"):
        case_from_matpower(bad)


def test_the_rule_is_seeded():
    grid = grid_from_matpower(RADIAL6)
    a = case_from_grid(grid, PeerRule(seed=7))
    assert case_from_grid(grid, PeerRule(seed=7)) == a
    b = case_from_grid(grid, PeerRule(seed=8))
    assert [p.b for p in a.peers[:5]] != [p.b for p in b.peers[:5]]
    rule = PeerRule()
    for p in a.peers[:5]:
        assert abs(p.b / rule.wtp - 1.0) <= rule.wtp_spread
        # marginal willingness to pay falls by slope_share over the whole demand
        assert p.a * -p.p_min == pytest.approx(rule.slope_share * p.b)


# ---------------------------------------------------------------- pandapower


@pytest.fixture(scope="module")
def pn():
    pytest.importorskip("pandapower")
    import pandapower.networks as networks

    return networks


def test_pandapower_case33bw_clears_end_to_end(pn):
    net = pn.case33bw()
    case = case_from_pandapower(net, name="case33bw")
    assert len(case.network.buses) == 33 and len(case.network.lines) == 32  # 5 ties are open
    assert case.network.voltage_kv == pytest.approx(12.66)
    assert sum(p.role == "consumer" for p in case.peers) == 32
    load = case.peers[case.index("load0")]
    assert load.p_min == pytest.approx(-float(net.load.p_mw[0]) * 1000)
    line = case.network.lines[1]
    row = net.line.loc[1]
    assert line.r_ohm == pytest.approx(row.r_ohm_per_km * row.length_km)
    r = cleared_consistently(case)
    assert r.losses_kw > 0


def test_pandapower_json_file_gives_the_same_case(pn, tmp_path):
    import pandapower as pp

    path = tmp_path / "case33bw.json"
    pp.to_json(pn.case33bw(), str(path))
    assert case_from_pandapower(path, name="x") == case_from_pandapower(pn.case33bw(), name="x")
    (tmp_path / "junk.json").write_text("{]", encoding="utf-8")
    with pytest.raises(GridImportError, match="cannot read pandapower network"):
        case_from_pandapower(tmp_path / "junk.json")


def test_pandapower_meshed_network_is_refused(pn):
    net = pn.case33bw()
    net.line["in_service"] = True  # close the five tie lines
    with pytest.raises(NonRadialNetwork, match="closes a loop"):
        case_from_pandapower(net)


def test_pandapower_open_switch_and_fused_buses(pn):
    import pandapower as pp

    net = pp.create_empty_network()
    b = [pp.create_bus(net, vn_kv=0.4) for _ in range(5)]
    pp.create_ext_grid(net, b[0])
    for f, t in ((0, 1), (1, 2), (2, 3), (3, 0)):  # a ring 0-1-2-3-0
        pp.create_line_from_parameters(net, b[f], b[t], 0.1, 0.2, 0.1, 0.0, 0.2)
    pp.create_switch(net, b[3], 3, et="l", closed=False)  # opens the ring at line 3
    pp.create_switch(net, b[2], b[4], et="b", closed=True)  # bus 4 is bus 2
    pp.create_load(net, b[4], p_mw=0.01)
    pp.create_sgen(net, b[1], p_mw=0.004)
    case = case_from_pandapower(net)
    assert case.network.buses == ("0", "1", "2", "3")
    assert [ln.name for ln in case.network.lines] == ["line0", "line1", "line2"]
    assert case.network.bus_of("load0") == "2"
    cleared_consistently(case)
    net.switch.loc[0, "closed"] = True
    with pytest.raises(NonRadialNetwork):
        case_from_pandapower(net)


# ------------------------------------------------------------------ SimBench


@pytest.fixture(scope="module")
def simbench_case():
    pytest.importorskip("simbench")
    return case_from_simbench(SIMBENCH_CODE, time_step=NOON_21_JUNE)


def test_simbench_lv_grid_with_profiles_clears_end_to_end(simbench_case):
    import simbench as sb

    case = simbench_case
    net = simbench_net(SIMBENCH_CODE)  # a copy of what the importer read
    prof = sb.get_absolute_values(net, profiles_instead_of_study_cases=True)
    assert case.network.voltage_kv == pytest.approx(0.4)
    assert len(case.network.buses) == 15  # 14 LV buses and the MV bus of the transformer
    trafo = case.network.lines[-1]
    assert trafo.name == "trafo0" and trafo.capacity_kw == pytest.approx(160.0)
    assert case.slot_hours == 0.25
    loads = [p for p in case.peers if p.name.startswith("load")]
    pv = [p for p in case.peers if p.name.startswith("sgen")]
    assert (len(loads), len(pv)) == (13, 4)
    want_pv = prof[("sgen", "p_mw")].iloc[NOON_21_JUNE].to_numpy() * 1000
    assert [p.p_max for p in pv] == pytest.approx(want_pv)
    want_load = prof[("load", "p_mw")].iloc[NOON_21_JUNE].to_numpy() * 1000
    assert [-p.p_min for p in loads] == pytest.approx(want_load)
    assert sum(p.p_max for p in pv) > 10.0  # midsummer noon: the PV is producing
    r = cleared_consistently(case)
    sold = r.injection[[case.index(p.name) for p in pv]].sum()
    assert sold > 0  # the households buy the PV's output before the grid's


def test_simbench_bad_code_and_step_are_typed_errors():
    pytest.importorskip("simbench")
    with pytest.raises(GridImportError, match="unknown SimBench code"):
        case_from_simbench("9-XX-nowhere--0-sw")
    with pytest.raises(GridImportError, match="time_step must be"):
        case_from_simbench(SIMBENCH_CODE, time_step=10**6)
