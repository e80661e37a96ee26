"""``p2pex demo`` end to end, and the pure parts of its agents."""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from clearing import Role, load_reference_case
from clearing.case import Peer
from node.demo.agents import (
    ASK,
    BID,
    allocative_efficiency,
    cda_power,
    interleave,
    ladder,
    surplus,
)

PRODUCER = Peer("G", Role.PRODUCER, 0.02, 0.10, 0.0, 0.0, 10.0)
CONSUMER = Peer("C", Role.CONSUMER, 0.01, 0.40, 0.0, -20.0, -5.0)


def test_producer_ladder_offers_marginal_cost_at_tranche_midpoints() -> None:
    orders = ladder(PRODUCER, tick=0.0001, slot_hours=1.0, steps=4)
    # tranches of 2.5 kW: midpoints 1.25, 3.75, 6.25, 8.75 kW; price = 0.02 P + 0.10
    assert [o.side for o in orders] == [ASK] * 4
    assert [o.price for o in orders] == [1250, 1750, 2250, 2750]
    assert [o.quantity for o in orders] == [2500] * 4


def test_consumer_ladder_bids_falling_willingness_to_pay_over_its_whole_range() -> None:
    orders = ladder(CONSUMER, tick=0.0001, slot_hours=0.5, steps=2)
    # 20 kW in two 10 kW tranches of half an hour: 5,000 Wh each; WTP 0.40 - 0.01 x
    assert [(o.side, o.price, o.quantity) for o in orders] == [(BID, 3500, 5000), (BID, 2500, 5000)]


def test_ladder_drops_tranches_that_would_pay_to_produce() -> None:
    cheap = replace(CONSUMER, b=0.05, a=0.01)  # WTP negative beyond 5 kW
    orders = ladder(cheap, tick=0.0001, slot_hours=1.0, steps=4)
    assert all(o.price > 0 for o in orders)
    assert len(orders) == 1
    with pytest.raises(ValueError, match="steps"):
        ladder(PRODUCER, tick=0.0001, slot_hours=1.0, steps=0)


def test_interleave_is_seeded_and_keeps_each_ladder_in_order() -> None:
    a = ladder(PRODUCER, tick=0.0001, slot_hours=1.0, steps=5)
    b = ladder(CONSUMER, tick=0.0001, slot_hours=1.0, steps=5)
    first = interleave([a, b], seed=3)
    assert first == interleave([a, b], seed=3)
    assert sorted(first, key=id) == sorted([*a, *b], key=id)
    assert [o for o in first if o.peer == "G"] == a
    assert [o for o in first if o.peer == "C"] == b
    assert any(interleave([a, b], seed=s) != first for s in range(1, 20))


def test_surplus_and_efficiency_of_a_two_peer_market() -> None:
    case = load_reference_case()
    names = case.names
    g, c = names[-1], names[0]
    trades = [(g, c, 10_000)]  # 10 kWh in a 1-hour slot
    power = cda_power(trades, slot_hours=1.0, case=case)
    assert power[g] == pytest.approx(10.0)
    assert power[c] == pytest.approx(-10.0)
    gp, cp = case.peers[case.index(g)], case.peers[case.index(c)]
    expected = -(0.5 * gp.a * 100 + gp.b * 10) - (0.5 * cp.a * 100 - cp.b * 10)
    assert surplus(case, power) == pytest.approx(expected)
    assert allocative_efficiency(case, power, power) == pytest.approx(1.0)
    assert allocative_efficiency(case, {}, power) == pytest.approx(0.0)


@pytest.mark.slow
def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    data = tmp_path / "demo"
    done = subprocess.run(
        [sys.executable, "-m", "node", "demo", "--slots", "2", "--data-dir", str(data)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert out.rstrip().endswith("demo OK")
    assert "all three nodes hold the identical chain" in out
    assert len(re.findall(r"audit of \w+'s stored chain: OK: .*replay OK", out)) == 3
    heads = set(re.findall(r"head ([0-9a-f]{64})", out))
    assert len(heads) == 1
    assert out.count("energy balance 0 Wh") == 3  # two CDA slots and the heat slot
    heat = re.search(r"energy balance 0 Wh power, 0 Wh heat; .* ([0-9.]+) Wh -> OK", out)
    assert heat is not None, out  # slot 3: heat and power cleared jointly on the chain
    assert len(re.findall(r"CHP G1[2-5]: [0-9.]+ kWh power and [0-9.]+ kWh heat", out)) == 4
    efficiencies = [float(x) for x in re.findall(r"against the reference: ([0-9.]+)%", out)]
    assert len(efficiencies) == 2
    assert all(50.0 < e <= 100.0 for e in efficiencies)
    assert "Reference clearing (table 12.1, kW)" in out
    # every node process is gone and its data stayed where asked
    assert (data / "operator" / "chain.sqlite3").is_file()


@pytest.mark.slow  # a subprocess
def test_demo_refuses_a_non_empty_data_dir(tmp_path: Path) -> None:
    (tmp_path / "something").write_text("x")
    done = subprocess.run(
        [sys.executable, "-m", "node", "demo", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 1
    assert "is not empty" in done.stderr
