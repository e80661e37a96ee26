"""A SimBench community: households, profiles and the seeded asset rule."""

from __future__ import annotations

import numpy as np
import pytest

from clearing import clear
from clearing.community import AssetRule, assign_assets, simbench_community
from clearing.importers import case_from_simbench

CODE = "1-LV-rural1--0-sw"
NOON_21_JUNE = 16464


@pytest.fixture(scope="module")
def community():
    pytest.importorskip("simbench")
    return simbench_community(CODE, AssetRule(seed=3))


def test_households_and_profiles(community):
    assert len(community.households) == 13 and community.pvs == ("sgen0", "sgen1", "sgen2", "sgen3")
    assert community.load_kw.shape == (35136, 13) and community.pv_kw.shape == (35136, 4)
    assert community.step_hours == 0.25
    with_pv = [h for h in community.households if h.pv is not None]
    assert {h.pv for h in with_pv} == set(community.pvs)  # every PV sits at a household's bus
    for h in with_pv:
        assert community.network.bus_of(h.pv) == h.bus and h.pv_kwp > 0
    # a year of data: PV produces at noon in June and nothing at midnight
    day = community.pv_kw[NOON_21_JUNE - 48 : NOON_21_JUNE + 48].sum(axis=1)
    assert day[0] == 0 and day[48] > 5
    assert np.all(community.load_kw >= 0)


def test_a_step_of_the_community_is_the_simbench_case(community):
    case = community.case_at(NOON_21_JUNE)
    assert case == case_from_simbench(CODE, time_step=NOON_21_JUNE)
    loads = [case.peers[case.index(n)] for n in community.loads]
    assert [-p.p_min for p in loads] == pytest.approx(community.load_kw[NOON_21_JUNE])
    assert clear(case, "basic").status == "optimal"


def test_assets_follow_the_seeded_rule(community):
    again = simbench_community(CODE, AssetRule(seed=3))
    assert again.households == community.households
    other = simbench_community(CODE, AssetRule(seed=4))
    assert other.households != community.households


def test_asset_rule_shares_and_sizes():
    n = 4000
    names = tuple(f"h{i}" for i in range(n))
    kwp = tuple(8.0 if i % 2 else 0.0 for i in range(n))
    rule = AssetRule(seed=1)
    assets = assign_assets(names, kwp, rule)
    pv_batt = np.mean([a[0] is not None for a, k in zip(assets, kwp, strict=True) if k > 0])
    no_pv_batt = np.mean([a[0] is not None for a, k in zip(assets, kwp, strict=True) if k == 0])
    evs = [a[1] for a in assets if a[1] is not None]
    hps = [a[2] for a in assets if a[2] is not None]
    # shares within 4 standard errors of the rule's probabilities
    assert abs(pv_batt - rule.battery_share_pv) < 4 * np.sqrt(0.25 / (n / 2))
    assert abs(no_pv_batt - rule.battery_share_no_pv) < 4 * np.sqrt(0.09 / (n / 2))
    assert abs(len(evs) / n - rule.ev_share) < 4 * np.sqrt(0.21 / n)
    assert abs(len(hps) / n - rule.heat_pump_share) < 4 * np.sqrt(0.21 / n)
    for (battery, _, _), k in zip(assets, kwp, strict=True):
        if battery is not None:
            assert battery.capacity_kwh == (8.0 if k else 5.0)
            assert battery.power_kw == battery.capacity_kwh / 2
    assert all(68 <= e.arrival_step <= 79 and 28 <= e.departure_step <= 35 for e in evs)
    assert all(5.0 <= e.energy_kwh <= 20.0 for e in evs)
    assert all(2.0 <= h.power_kw <= 5.0 for h in hps)
    # each household has its own row of draws: a shorter list keeps the first ones' assets
    assert assign_assets(names[:10], kwp[:10], rule) == assets[:10]
