"""The demo's operation-mode helpers: technologies, green-only bids, overloads, penalties."""

from __future__ import annotations

import pytest

from clearing import clear, load_reference_case
from node.demo.agents import (
    ASK,
    BID,
    GREEN,
    OrderIntent,
    cda_power,
    green_tail,
    grid_penalty,
    line_overloads,
    net_efficiency,
    surplus,
    technologies,
)


def test_technologies_label_the_chapters_community() -> None:
    labels = technologies(load_reference_case())
    assert labels["G20"] == "grid"
    assert {labels[f"C{i}"] for i in range(1, 12)} == {"load"}
    # the four cheapest producers (b = 0.100-0.106) are PV, the others CHP
    assert [labels[f"G{i}"] for i in range(12, 20)] == ["pv"] * 4 + ["chp"] * 4


def test_green_tail_marks_only_the_last_bids() -> None:
    ladder = [OrderIntent("C1", BID, 300 - k, 1000) for k in range(4)]
    got = green_tail(ladder, 0.5)
    assert [o.technologies for o in got] == ["", "", GREEN, GREEN]
    asks = [OrderIntent("G1", ASK, 100, 1000)] * 2
    assert green_tail(asks, 1.0) == asks  # offers carry no preference


def test_line_overloads_from_a_trade_across_l6() -> None:
    case = load_reference_case()
    # G12 (bus 4) sells 120 kW to C9 (bus 9): the path 4-3-7-8-9 crosses L6 (110 kW)
    power = cda_power([("G12", "C9", 120_000)], slot_hours=1.0, case=case)
    assert [(name, round(flow, 6), cap) for name, flow, cap in line_overloads(case, power)] == [
        ("L6", 120.0, 110.0)
    ]
    small = cda_power([("G12", "C9", 100_000)], slot_hours=1.0, case=case)
    assert line_overloads(case, small) == []


def test_grid_penalty_of_one_trade_by_hand() -> None:
    case = load_reference_case()
    # G12 (bus 4) -> C9 (bus 9): L3 + L6 + L7 + L8 = 2.095 + 1.002 + 4.403 + 5.642 ohm
    r = 2.095 + 1.002 + 4.403 + 5.642
    got = grid_penalty(case, [("G12", "C9", 10_000)], slot_hours=1.0, penalised=["L6"])
    assert got == pytest.approx(2 * (case.alpha * r + case.beta) * 10.0)
    free = grid_penalty(case, [("G12", "C9", 10_000)], slot_hours=1.0, penalised=[])
    assert free == pytest.approx(2 * case.alpha * r * 10.0)


def test_grid_penalty_agrees_with_the_clearings_own_and_the_reference_is_100_percent() -> None:
    case = load_reference_case()
    result = clear(case, "loss+congestion")
    n = len(case.names)
    trades = result.trades  # the dense view, built once
    legs = [
        (case.names[i], case.names[j], round(float(trades[i, j]) * 1000))
        for i in range(n)
        for j in range(n)
        if trades[i, j] > 1e-6 and case.peers[i].is_producer
    ]
    got = grid_penalty(case, legs, slot_hours=1.0, penalised=result.spec.penalised)
    assert got == pytest.approx(float(result.penalty.sum()), rel=1e-3)
    optimal = {name: float(result.injection[i]) for i, name in enumerate(case.names)}
    assert net_efficiency(case, optimal, got, optimal, got) == pytest.approx(1.0)
    assert net_efficiency(case, {}, 0.0, optimal, got) == pytest.approx(0.0)
    assert surplus(case, optimal) > got
