"""Partner sets and pair penalties (product differentiation) in the multi-period clearing.

At T = 1 without assets the horizon QP is the single-slot QP, so the
single-slot clearing (``clearing.clear``, itself checked against a slow
reference in test_pair_penalties) is the reference: same objective, trades,
trade prices and money, with the same partner sets and pair penalties.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from clearing import Case, EmptyMarket, InvalidPeer, UnknownPeer, clear
from clearing.horizon import clear_horizon
from clearing.horizon_bridge import case_for_slot, horizon_from_case
from clearing.horizon_case import (
    HorizonCase,
    HorizonPeer,
    PeerKind,
    SlotCurve,
)
from clearing.horizon_certificate import check_horizon_certificate
from clearing.horizon_problem import build_horizon_problem, make_horizon_spec
from clearing.horizon_rounding import round_horizon_settlement
from clearing.network import network_from_dict
from tests.clearing.helpers import feeder, peer

TOL_P = 1e-2  # kW
TOL_PRICE = 1e-4  # currency/kWh


def _strip(case: HorizonCase) -> HorizonCase:
    """``case`` without any pair penalty (partner sets kept)."""
    peers = tuple(dataclasses.replace(p, pair_penalties=()) for p in case.peers)
    return dataclasses.replace(case, peers=peers)


@st.composite
def preferring_markets(draw: st.DrawFn) -> Case:
    """Small random markets where some peers restrict and some penalise their partners."""
    n_prod = draw(st.integers(1, 3))
    n_cons = draw(st.integers(1, 3))
    peers: list[dict[str, Any]] = []
    for k in range(n_prod):
        a, b = draw(st.integers(1, 50)) / 1000, draw(st.integers(5, 150)) / 1000
        peers.append(peer(f"G{k}", "producer", a, b, 0.0, float(draw(st.integers(1, 200)))))
    for k in range(n_cons):
        a, b = draw(st.integers(1, 50)) / 1000, draw(st.integers(50, 400)) / 1000
        peers.append(peer(f"C{k}", "consumer", a, b, -float(draw(st.integers(1, 200))), 0.0))
    names = [p["name"] for p in peers]
    for p in peers:
        others = [x for x in names if x != p["name"]]
        if draw(st.booleans()):
            p["partners"] = sorted(draw(st.sets(st.sampled_from(others), min_size=1)))
        pens = draw(st.dictionaries(st.sampled_from(others), st.integers(1, 100), max_size=3))
        if pens:
            p["pair_penalties"] = {x: c / 1000 for x, c in pens.items()}
    buses = {name: str(draw(st.integers(0, 2))) for name in names}
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


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=preferring_markets(), model=st.sampled_from(["basic", "loss"]))
def test_one_slot_with_preferences_equals_the_single_slot_clearing(case: Case, model: str) -> None:
    try:
        one = clear(case, model)
    except EmptyMarket:
        assume(False)
        return
    horizon = horizon_from_case(case)
    many = clear_horizon(horizon, model)
    assert many.objective == pytest.approx(one.objective, rel=1e-6, abs=1e-6)
    np.testing.assert_array_equal(many.e_src, one.e_src)
    np.testing.assert_array_equal(many.e_dst, one.e_dst)
    np.testing.assert_allclose(many.trades[0], one.solution.p, atol=TOL_P)
    active = one.solution.p > 1e-2
    np.testing.assert_allclose(
        many.trade_price[0][active], one.solution.tau[active], atol=TOL_PRICE
    )
    # the penalties paid are the grid's alone, in both clearings
    np.testing.assert_allclose(many.penalty[0], one.penalty, atol=1e-4)
    np.testing.assert_allclose(many.payment[0], one.payment, atol=1e-3)
    assert check_horizon_certificate(horizon, many.certificate).ok


def _hand_case(**penalties: float) -> Case:
    """G1 (b = 0.1) is cheaper than G2 (b = 0.2); C (b = 0.6) may put a premium on G1."""
    c = peer("C", "consumer", 0.02, 0.6, -40.0, 0.0)
    if penalties:
        c["pair_penalties"] = penalties
    return Case.from_dict(
        {
            "name": "hand",
            "regularisation": 1e-3,
            "tick": 0.001,
            "network": feeder([("L1", "0", "1", 1.0, None)], {"G1": "0", "G2": "1", "C": "1"}),
            "peers": [
                peer("G1", "producer", 0.01, 0.1, 0.0, 100.0),
                peer("G2", "producer", 0.01, 0.2, 0.0, 100.0),
                c,
            ],
        }
    )


def test_a_premium_moves_the_horizon_dispatch_and_prices_but_is_not_paid() -> None:
    plain = clear_horizon(horizon_from_case(_hand_case()), "loss")
    case = horizon_from_case(_hand_case(G1=0.3))
    result = clear_horizon(case, "loss")
    g1, g2 = case.index("G1"), case.index("G2")
    assert result.injection[0, g1] < plain.injection[0, g1] - 1.0
    assert result.injection[0, g2] > plain.injection[0, g2] + 1.0
    problem = build_horizon_problem(case, make_horizon_spec(case, "loss"))
    k = int(np.flatnonzero((problem.e_src == g1) & (problem.e_dst == case.index("C")))[0])
    assert problem.dc[k] == pytest.approx(0.3) and problem.dp[k] == 0.0
    assert not problem.wc.any() or problem.wc[0, k] == problem.wp[0, k]  # grid terms unchanged
    # C pays τ to G1, which is the seller-side price: the premium lowers it
    assert result.trade_price[0, k] < plain.trade_price[0, k]
    # paid penalties are α R alone (the premium is nobody's money)
    np.testing.assert_allclose(
        result.penalty[0][g1], problem.wp[0, k] * result.trades[0, k], atol=1e-9
    )
    for slot in round_horizon_settlement(case, result):
        assert sum(p.payment for p in slot.peers) == 0


def test_certificate_accepts_the_right_solution_and_rejects_one_without_the_premiums() -> None:
    case = horizon_from_case(_hand_case(G1=0.3))
    right = clear_horizon(case, "loss")
    assert check_horizon_certificate(case, right.certificate).ok
    wrong = clear_horizon(_strip(case), "loss")
    assert check_horizon_certificate(_strip(case), wrong.certificate).ok
    report = check_horizon_certificate(case, wrong.certificate)
    assert not report.ok
    assert any("stationarity" in f for f in report.failures)


def _prosumer_horizon(slots: int, penalty: float | None) -> HorizonCase:
    """Two prosumers and a grid over ``slots`` slots; P1 penalises P2 (both directions)."""
    net = network_from_dict(
        {
            "voltage_kv": 0.4,
            "root": "0",
            "buses": ["0", "1"],
            "lines": [{"name": "L1", "from": "0", "to": "1", "r_ohm": 0.1, "x_ohm": 0.05}],
            "peer_bus": {"grid": "0", "P1": "1", "P2": "1"},
        }
    )
    # P1 buys in even slots, sells in odd ones; P2 the other way round
    p1 = tuple(
        SlotCurve(20_000, 3_000 if t % 2 else 1_000, 0, -20_000, 20_000) for t in range(slots)
    )
    p2 = tuple(
        SlotCurve(20_000, 1_000 if t % 2 else 3_000, 0, -20_000, 20_000) for t in range(slots)
    )
    pens = () if penalty is None else (("P2", penalty),)
    return HorizonCase(
        name="prosumers",
        network=net,
        peers=(
            HorizonPeer("grid", PeerKind.GRID, (SlotCurve(0, 2_500, 0, -100_000, 100_000),)),
            HorizonPeer("P1", PeerKind.PROSUMER, p1, pair_penalties=pens),
            HorizonPeer("P2", PeerKind.PROSUMER, p2),
        ),
        slots=slots,
        tick=0.0001,
        regularisation=1e-4,
    )


def test_a_prosumers_premium_weighs_its_sales_and_its_purchases_in_every_slot() -> None:
    case = _prosumer_horizon(4, 0.05)
    problem = build_horizon_problem(case, make_horizon_spec(case, "basic"))
    p1, p2 = case.index("P1"), case.index("P2")
    sells = int(np.flatnonzero((problem.e_src == p1) & (problem.e_dst == p2))[0])
    buys = int(np.flatnonzero((problem.e_src == p2) & (problem.e_dst == p1))[0])
    assert problem.dp[sells] == pytest.approx(0.05) and problem.dc[sells] == 0.0
    assert problem.dc[buys] == pytest.approx(0.05) and problem.dp[buys] == 0.0
    assert problem.dp.sum() + problem.dc.sum() == pytest.approx(0.1)
    plain = clear_horizon(_prosumer_horizon(4, None), "basic")
    result = clear_horizon(case, "basic")
    assert check_horizon_certificate(case, result.certificate).ok
    traded = result.trades[:, sells] + result.trades[:, buys]
    assert (plain.trades[:, sells] + plain.trades[:, buys] > 1.0).all()  # P1 and P2 trade
    assert (traded < plain.trades[:, sells] + plain.trades[:, buys] - 1.0).all()


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=preferring_markets(), slots=st.integers(2, 4), seed=st.integers(0, 2**16))
def test_many_slots_with_constant_penalties_equal_each_slot_cleared_alone(
    case: Case, slots: int, seed: int
) -> None:
    try:
        clear(case, "basic")
    except EmptyMarket:
        assume(False)
        return
    base = horizon_from_case(case)
    rng = np.random.default_rng(seed)
    peers = []
    for p in base.peers:
        (cv,) = p.curves
        curves = tuple(
            dataclasses.replace(cv, b=cv.b + int(rng.integers(-20, 21))) for _ in range(slots)
        )
        peers.append(dataclasses.replace(p, curves=curves))
    horizon = dataclasses.replace(base, peers=tuple(peers), slots=slots)
    many = clear_horizon(horizon, "basic")
    assert check_horizon_certificate(horizon, many.certificate).ok
    total = 0.0
    for t in range(slots):
        single = case_for_slot(horizon, t)
        assert [p.pair_penalties for p in single.peers] == [p.pair_penalties for p in case.peers]
        one = clear(single, "basic")
        total += one.objective
        np.testing.assert_allclose(many.trades[t], one.solution.p, atol=TOL_P)
    assert many.objective == pytest.approx(total, rel=1e-6, abs=1e-6)


def test_pair_penalties_convert_both_ways() -> None:
    case = _hand_case(G1=0.3, G2=0.05)
    horizon = horizon_from_case(case)
    assert horizon.peers[horizon.index("C")].pair_penalties == (("G1", 0.3), ("G2", 0.05))
    back = case_for_slot(horizon, 0)
    assert back.peers[back.index("C")].pair_penalties == (("G1", 0.3), ("G2", 0.05))


@pytest.mark.parametrize(
    ("penalties", "error", "text"),
    [
        ((("P2", -1.0),), InvalidPeer, "must be >= 0"),
        ((("P2", "cheap"),), InvalidPeer, "finite number"),
        ((("P2", float("nan")),), InvalidPeer, "finite number"),
        ((("P1", 1.0),), InvalidPeer, "its own name"),
        ((("P2", 1.0), ("P2", 2.0)), InvalidPeer, "repeated"),
        ("P2", InvalidPeer, "must map partners"),
        ((("nobody", 1.0),), UnknownPeer, "unknown peer 'nobody'"),
    ],
)
def test_bad_horizon_pair_penalties_raise_typed_errors(
    penalties: Any, error: type[Exception], text: str
) -> None:
    case = _prosumer_horizon(1, None)
    with pytest.raises(error, match=text):
        peers = tuple(
            dataclasses.replace(p, pair_penalties=penalties) if p.name == "P1" else p
            for p in case.peers
        )
        dataclasses.replace(case, peers=peers)
