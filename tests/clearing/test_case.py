"""Case and peer data: construction from plain data, and bad data refused clearly."""

from __future__ import annotations

import copy
import json

import pytest

from clearing import (
    Case,
    ChpRegion,
    EmptyMarket,
    InvalidCase,
    InvalidPeer,
    UnknownBus,
    UnknownPeer,
    load_case,
    load_reference_case,
    reference_case_path,
)
from tests.clearing.helpers import feeder, peer

SQUARE = {"A": [1, 0], "B": [1, 1], "C": [0, 1], "D": [0, 0]}


def base() -> dict:
    return {
        "name": "t",
        "network": feeder([("L1", "0", "1", 1.0, None)], {"G": "1", "C": "0", "grid": "0"}),
        "peers": [
            peer("G", "producer", 0.04, 1.0, 0.0, 100.0),
            peer("C", "consumer", 0.04, 5.0, -100.0, 0.0),
            peer("grid", "grid", 0.01, 2.0, 0.0, 100.0),
        ],
    }


def with_peer(i: int, **changes) -> dict:
    data = copy.deepcopy(base())
    data["peers"][i].update(changes)
    return data


def test_from_dict_and_to_dict_round_trip():
    case = Case.from_dict(base())
    assert case.names == ("G", "C", "grid")
    assert Case.from_dict(case.to_dict()) == case
    assert case.grid_peer() is not None and case.grid_peer().name == "grid"


def test_reference_case_ships_as_package_data():
    path = reference_case_path()
    assert path.is_file()
    case = load_reference_case()
    names = case.names
    assert names[:11] == tuple(f"C{k}" for k in range(1, 12))
    assert names[11:] == tuple(f"G{k}" for k in range(12, 21))
    assert case.grid_peer().name == "G20"
    assert [p.name for p in case.peers if p.chp] == ["G12", "G13", "G14", "G15"]
    assert len(case.network.buses) == 11


@pytest.mark.parametrize(
    ("data", "error", "text"),
    [
        (with_peer(0, a=-0.1), InvalidPeer, "a must be >= 0"),
        (with_peer(0, p_min=50.0, p_max=10.0), InvalidPeer, "p_min 50.0 > p_max 10.0"),
        (with_peer(0, p_min=-10.0, p_max=10.0), InvalidPeer, "producer's p bounds must be >= 0"),
        (with_peer(1, p_min=-10.0, p_max=5.0), InvalidPeer, "consumer's p bounds must be <= 0"),
        (with_peer(0, role="seller"), InvalidPeer, "role must be one of"),
        (with_peer(0, b=float("inf")), InvalidPeer, "finite"),
        (with_peer(0, partners=["nobody"]), UnknownPeer, "nobody"),
        (with_peer(0, alpha=-1.0), InvalidPeer, "alpha must be >= 0"),
        (with_peer(1, chp=SQUARE), InvalidPeer, "only producers"),
        (with_peer(2, name="G"), InvalidPeer, "duplicate"),
    ],
)
def test_bad_peers_are_refused(data, error, text):
    with pytest.raises(error, match=text):
        Case.from_dict(data)


def test_unknown_bus_of_a_peer():
    data = base()
    data["network"]["peer_bus"]["G"] = "42"
    with pytest.raises(UnknownBus, match="'42'"):
        Case.from_dict(data)
    data = base()
    del data["network"]["peer_bus"]["G"]
    with pytest.raises(UnknownBus, match="'G' has no bus"):
        Case.from_dict(data)


def test_grid_must_sit_at_the_root():
    data = base()
    data["network"]["peer_bus"]["grid"] = "1"
    with pytest.raises(InvalidPeer, match="root bus"):
        Case.from_dict(data)


@pytest.mark.parametrize("keep", [[], [0, 2], [1]])
def test_empty_market(keep):
    data = base()
    data["peers"] = [data["peers"][i] for i in keep]
    with pytest.raises(EmptyMarket, match="empty market"):
        Case.from_dict(data)


def test_bad_case_numbers_and_files(tmp_path):
    data = base()
    data["tick"] = 0
    with pytest.raises(InvalidCase, match="tick"):
        Case.from_dict(data)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(InvalidCase, match="cannot read case file"):
        load_case(bad)
    with pytest.raises(InvalidCase, match="missing field 'peers'"):
        Case.from_dict({"network": base()["network"]})
    good = tmp_path / "good.json"
    good.write_text(json.dumps(base()), encoding="utf-8")
    assert load_case(good).names == ("G", "C", "grid")


def test_chp_region_halfplanes_match_the_chapter_inequalities():
    # the CHP test unit of figure 12.9's shape (P, H)
    region = ChpRegion(a=(247.0, 0.0), b=(215.0, 180.0), c=(81.0, 104.8), d=(98.8, 0.0))
    for p, h in region.points():
        assert region.contains(p, h)
    # 12.24 (D-C), 12.25 (A-B), 12.26 (B-C) at a few points
    for p, h in [(150.0, 50.0), (240.0, 10.0), (100.0, 100.0), (90.0, 5.0), (200.0, 179.0)]:
        c24 = p - 98.8 >= (h - 0.0) * (98.8 - 81.0) / (0.0 - 104.8) - 1e-9
        c25 = p - 247.0 <= (h - 0.0) * (247.0 - 215.0) / (0.0 - 180.0) + 1e-9
        c26 = p - 215.0 >= (h - 180.0) * (215.0 - 81.0) / (180.0 - 104.8) - 1e-9
        assert region.contains(p, h) == (c24 and c25 and c26 and h >= 0)


def test_non_convex_chp_points_are_refused():
    data = with_peer(0, chp={"A": [10, 0], "B": [0, 5], "C": [10, 5], "D": [0, 0]})
    with pytest.raises(InvalidPeer, match="convex"):
        Case.from_dict(data)


def test_chp_without_heat_curve_gets_free_heat_up_to_the_region():
    data = with_peer(0, chp={"A": [10, 0], "B": [8, 6], "C": [3, 4], "D": [4, 0]})
    g = Case.from_dict(data).peers[0]
    assert g.heat is not None and (g.heat.h_min, g.heat.h_max) == (0.0, 6.0)
