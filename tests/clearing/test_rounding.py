"""Rounding to integer Wh and ticks keeps every balance exact."""

from __future__ import annotations

import random

import numpy as np
import pytest

from clearing import Case, clear, load_reference_case, round_settlement
from clearing.errors import ClearingError
from clearing.rounding import PeerSettlement, Settlement
from tests.clearing.helpers import feeder, peer, two_peer_case


def assert_exact(settlement: Settlement) -> None:
    for product in {p.product for p in settlement.peers}:
        rows = [p for p in settlement.peers if p.product == product]
        assert sum(p.energy_wh for p in rows) == 0
        assert sum(p.payment for p in rows) == 0
    for t in settlement.trades:
        assert t.amount == t.price * t.energy_wh
        assert t.energy_wh > 0
    assert settlement.operator_revenue == sum(p.penalty for p in settlement.peers)
    for p in settlement.peers:
        for value in (p.energy_wh, p.payment, p.penalty):
            assert type(value) is int


def test_two_peer_settlement_known_answer():
    case = two_peer_case(slot_hours=0.25)
    s = round_settlement(case, clear(case, "basic"))
    (trade,) = s.trades
    # 50 kW for 15 minutes = 12500 Wh at 3.0 USD/kWh = 30000 ticks of 0.0001
    assert (trade.seller, trade.buyer, trade.energy_wh, trade.price) == ("G", "C", 12500, 30000)
    assert trade.amount == 30000 * 12500
    assert s.peers == (
        PeerSettlement("electricity", "G", 12500, -375_000_000, 0),
        PeerSettlement("electricity", "C", -12500, 375_000_000, 0),
    )
    assert_exact(s)


@pytest.mark.parametrize("model", ["basic", "loss+congestion", "heat"])
def test_reference_settlements_balance(model):
    case = load_reference_case()
    result = clear(case, model, alpha=0.01)
    s = round_settlement(case, result)
    assert_exact(s)
    energy = {p.peer: p.energy_wh for p in s.peers if p.product == "electricity"}
    for i, name in enumerate(case.names):
        # within half a Wh per trade of the unrounded injection
        n_trades = sum(1 for t in s.trades if name in (t.seller, t.buyer)) + 1
        assert abs(energy[name] - result.injection[i] * 1000.0) <= 0.5 * n_trades
    if model == "loss+congestion":
        assert s.operator_revenue > 0
    if model == "heat":
        assert any(p.product == "heat" and p.energy_wh for p in s.peers)


def test_random_communities_balance_exactly():
    rng = random.Random(5)  # fixed seed
    for _ in range(4):
        n_p, n_c = rng.randint(1, 4), rng.randint(1, 4)
        names = [f"P{i}" for i in range(n_p)] + [f"C{i}" for i in range(n_c)]
        buses = {name: str(rng.randint(0, 3)) for name in names}
        peers = [peer(f"P{i}", "producer", rng.uniform(0.001, 0.01), rng.uniform(0.05, 0.2), 0.0,
                      rng.uniform(10, 100)) for i in range(n_p)]  # fmt: skip
        peers += [peer(f"C{i}", "consumer", rng.uniform(0.001, 0.01), rng.uniform(0.2, 0.5),
                       -rng.uniform(10, 100), 0.0) for i in range(n_c)]  # fmt: skip
        lines = [("a", "0", "1", 0.3, None), ("b", "1", "2", 0.2, None), ("c", "1", "3", 0.7, None)]
        case = Case.from_dict(
            {
                "name": "random",
                "slot_hours": rng.choice([0.25, 0.5, 1.0]),
                "tick": rng.choice([0.0001, 0.001]),
                "network": feeder(lines, buses, voltage_kv=0.4),
                "peers": peers,
            }
        )
        result = clear(case, "loss", alpha=rng.uniform(0.0, 0.05))
        assert_exact(round_settlement(case, result))
        np.testing.assert_allclose(result.trades, -result.trades.T, atol=1e-9)


def test_check_rejects_an_unbalanced_settlement():
    bad = Settlement(
        tick=0.0001,
        trades=(),
        peers=(PeerSettlement("electricity", "G", 1, 0, 0),),
        operator_revenue=0,
    )
    with pytest.raises(ClearingError, match="does not balance"):
        bad.check()
