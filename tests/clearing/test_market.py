"""Hand-solved markets: quantities, prices (duals), payments, welfare, penalties, limits."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from clearing import (
    Case,
    Clearer,
    EmptyMarket,
    Infeasible,
    InvalidCase,
    InvalidOption,
    check_certificate,
    clear,
    congestion_procedure,
    pool_dispatch,
)
from clearing.model import QpModel
from clearing.problem import build_problem
from clearing.spec import make_spec
from tests.clearing.helpers import feeder, peer, three_peer_case, two_peer_case, y_feeder_case

TOL = 1e-5


def assert_certified(case, result):
    report = check_certificate(case, result.certificate)
    assert report.ok, report.failures


def test_two_peer_basic_market_known_answer():
    case = two_peer_case()
    r = clear(case, "basic")
    # 1 + 0.04 x = 5 - 0.04 x  =>  x = 50, price 3
    assert r.trade("G", "C") == pytest.approx(50.0, abs=TOL)
    assert r.trade("C", "G") == pytest.approx(-50.0, abs=TOL)
    np.testing.assert_allclose(r.injection, [50.0, -50.0], atol=TOL)
    np.testing.assert_allclose(r.peer_price, [3.0, 3.0], atol=TOL)
    assert r.trade_price[0, 1] == pytest.approx(3.0, abs=TOL)
    assert np.isnan(r.trade_price[0, 0])
    # U - C = (5*50 - 0.02*2500) - (50 + 0.02*2500) = 200 - 100
    assert r.welfare == pytest.approx(100.0, abs=1e-3)
    np.testing.assert_allclose(r.payment, [-150.0, 150.0], atol=1e-3)
    np.testing.assert_allclose(r.penalty, [0.0, 0.0], atol=1e-9)
    assert r.status == "optimal" and r.solver == "CLARABEL"
    assert_certified(case, r)


def test_three_peer_market_known_answer():
    case = three_peer_case()
    r = clear(case, "basic")
    # (λ-1)/0.02 + (λ-2)/0.02 = (6-λ)/0.02  =>  λ = 3
    np.testing.assert_allclose(r.injection, [100.0, 50.0, -150.0], atol=TOL)
    np.testing.assert_allclose(r.peer_price, [3.0, 3.0, 3.0], atol=TOL)
    assert r.welfare == pytest.approx(675.0 - 200.0 - 125.0, abs=1e-3)
    np.testing.assert_allclose(r.trades, -r.trades.T, atol=1e-9)
    assert_certified(case, r)


def test_slot_length_scales_money_not_power():
    r = clear(two_peer_case(slot_hours=0.25), "basic")
    assert r.trade("G", "C") == pytest.approx(50.0, abs=TOL)
    assert r.welfare == pytest.approx(25.0, abs=1e-3)
    np.testing.assert_allclose(r.payment, [-37.5, 37.5], atol=1e-3)


def test_loss_penalty_known_answer():
    # R = 2 ohm, alpha = 0.25 on both sides: each side pays alpha R = 0.5 per kW (12.12)
    case = two_peer_case(r=2.0)
    r = clear(case, "loss", alpha=0.25)
    # 1 + 0.04 x + 0.5 = 5 - 0.04 x - 0.5  =>  x = 37.5
    assert r.trade("G", "C") == pytest.approx(37.5, abs=TOL)
    assert r.trade_price[0, 1] == pytest.approx(3.0, abs=TOL)  # τ = marginal cost + penalty
    np.testing.assert_allclose(r.peer_price, [2.5, 3.5], atol=TOL)
    np.testing.assert_allclose(r.penalty, [0.5 * 37.5, 0.5 * 37.5], atol=1e-3)
    assert_certified(case, r)


def test_congestion_penalty_applies_only_to_pairs_crossing_sigma():
    case = y_feeder_case()
    basic = clear(case, "basic")
    # G (b=1) is cheaper than the grid and sells its 30 kW; the grid supplies 20
    np.testing.assert_allclose(basic.injection, [20.0, 30.0, -50.0], atol=TOL)
    r = clear(case, "congestion", beta=5.0, penalised=("L1",))
    # G -> C crosses L1 and pays beta on both sides; grid -> C does not
    assert r.trade("G", "C") == pytest.approx(0.0, abs=TOL)
    assert r.trade("grid", "C") == pytest.approx(50.0, abs=TOL)
    assert_certified(case, r)
    r2 = clear(case, "congestion", beta=5.0, penalised=("L2",))  # every pair crosses L2
    assert r2.trade("G", "C") == pytest.approx(30.0, abs=1e-3)
    np.testing.assert_allclose(r2.penalty, [100.0, 150.0, 250.0], atol=1e-2)


def test_hard_line_limits_and_their_duals():
    # the producer is downstream of L1 (cap 40): 50 kW cannot flow
    case = two_peer_case(cap=40.0)
    r = clear(case, "basic", line_limits=True)
    assert r.trade("G", "C") == pytest.approx(40.0, abs=1e-4)
    assert r.flows[0] == pytest.approx(-40.0, abs=1e-4)
    # marginal WTP 5 - 1.6 = 3.4, marginal cost 1 + 1.6 = 2.6: the line is worth 0.8 per kW
    assert r.line_price[0] == pytest.approx(-0.8, abs=1e-4)
    np.testing.assert_allclose(r.peer_price, [3.4, 3.4], atol=1e-4)
    # the producer's net (nodal) price is 2.6: it pays 0.8 per kW as congestion charge
    assert r.penalty[0] == pytest.approx(0.8 * 40.0, abs=1e-2)
    assert_certified(case, r)
    free = clear(case, "basic")
    assert free.overloaded == ("L1",)
    assert free.line_price[0] == 0.0


def test_trading_sets_restrict_pairs():
    data = y_feeder_case().to_dict()
    data["peers"][2]["partners"] = ["grid"]  # C only buys from the grid
    case = Case.from_dict(data)
    r = clear(case, "basic")
    assert r.trade("G", "C") == 0.0 and np.isnan(r.trade_price[1, 2])
    assert r.trade("grid", "C") == pytest.approx(50.0, abs=TOL)
    data["peers"][2]["partners"] = ["G"]
    data["peers"][1]["partners"] = ["grid"]  # consent is mutual: G never listed C
    with pytest.raises(EmptyMarket, match="no producer-consumer pair"):
        clear(Case.from_dict(data), "basic")


def test_infeasible_data_is_reported_as_infeasible():
    data = two_peer_case().to_dict()
    data["peers"][1]["p_max"] = -150.0  # must consume 150 kW, only 100 kW can be produced
    data["peers"][1]["p_min"] = -200.0
    with pytest.raises(Infeasible, match="infeasible") as err:
        clear(Case.from_dict(data), "basic")
    assert err.value.status.startswith("infeasible")


def test_unknown_model_and_bad_penalties():
    case = two_peer_case()
    with pytest.raises(InvalidOption, match="unknown model"):
        clear(case, "magic")
    with pytest.raises(InvalidOption, match="alpha must be finite and >= 0"):
        clear(case, "loss", alpha=-1.0)
    with pytest.raises(InvalidOption, match="needs heat data"):
        clear(case, "heat")
    with pytest.raises(InvalidCase, match="no main-grid peer"):
        pool_dispatch(case)
    with pytest.raises(InvalidOption, match="needs a model with"):
        congestion_procedure(case, "basic")


def test_pool_dispatch_uses_the_grid_only():
    r = pool_dispatch(y_feeder_case())
    assert r.model == "pool"
    assert r.names == ("grid", "C")
    np.testing.assert_allclose(r.injection, [50.0, -50.0], atol=TOL)


def test_equally_cheap_producers_share_evenly():
    # G1 and G2 identical: the basic optimum is not unique; ε Σ P_ij² picks the even split
    data = three_peer_case().to_dict()
    data["peers"][1].update(b=1.0)
    data["regularisation"] = 1e-7
    data["peers"].append(peer("C2", "consumer", 0.02, 6.0, -200.0, 0.0))
    data["network"]["peer_bus"]["C2"] = "1"
    r = clear(Case.from_dict(data), "basic")
    m = r.trades[:2, 2:]
    np.testing.assert_allclose(m, m[0, 0], rtol=1e-4)


def test_compiled_model_is_dpp_and_reused_across_parameters():
    case = y_feeder_case()
    data = build_problem(case, make_spec(case, "loss+congestion", alpha=0.1, beta=1.0))
    assert QpModel(data).problem.is_dcp(dpp=True)
    clearer = Clearer()
    first = clear(case, "loss", alpha=0.0, clearer=clearer)
    second = clear(case, "loss", alpha=0.5, clearer=clearer)
    third = clear(case, "congestion", beta=1.0, penalised=("L2",), clearer=clearer)
    assert len(clearer) == 1  # one structure, three solves
    assert first.losses_kw != second.losses_kw
    assert third.spec.penalised == ("L2",)


def test_case_tariff_is_the_default_penalty():
    case = dataclasses.replace(two_peer_case(r=2.0), alpha=0.25)
    assert clear(case, "loss").trade("G", "C") == pytest.approx(37.5, abs=TOL)
    per_peer = clear(case, "loss", alpha={"G": 0.0})  # only C pays 0.5 per kW
    assert per_peer.trade("G", "C") == pytest.approx(3.5 / 0.08, abs=TOL)


def test_kkt_of_the_heat_model_on_a_small_chp_case():
    case = Case.from_dict(
        {
            "name": "chp",
            "network": feeder([("L1", "0", "1", 1.0, None)], {"U": "1", "C": "0", "grid": "0"}),
            "peers": [
                peer("U", "producer", 0.001, 0.05, 0.0, 300.0,
                     chp={"A": [247, 0], "B": [215, 180], "C": [81, 104.8], "D": [98.8, 0]},
                     heat={"a": 0.001, "b": 0.02, "h_min": 0.0, "h_max": 200.0}),
                peer("C", "consumer", 0.001, 0.5, -150.0, -50.0,
                     heat={"a": 0.001, "b": 0.3, "h_min": -150.0, "h_max": 0.0}),
                peer("grid", "grid", 0.0005, 0.1, 0.0, 500.0),
            ],
        }
    )  # fmt: skip
    r = clear(case, "heat")
    assert_certified(case, r)
    u = case.peers[0]
    assert u.chp.contains(r.injection[0], r.heat[0])
    # alone, heat would settle at 0.02 + 0.001 H = 0.3 - 0.001 H, H = 140; the unit's
    # electricity is limited by C's demand, so it runs on the edge B-C (12.26), below 140
    assert r.heat[0] < 140.0 - 1.0
    slack = [g - gp * r.injection[0] - gh * r.heat[0] for gp, gh, g in u.chp.halfplanes()]
    assert min(slack) == pytest.approx(0.0, abs=1e-4)
    assert int(np.argmin(slack)) == 1  # edge B-C
    np.testing.assert_allclose(r.heat_trades, -r.heat_trades.T, atol=1e-9)


def test_periodic_resolve_matches_a_fresh_solve():
    case = y_feeder_case()
    clearer = Clearer()
    clear(case, "loss", alpha=0.1, clearer=clearer)
    data = case.to_dict()
    data["peers"][1]["b"] = 1.7  # next slot: new curves, same structure
    data["peers"][2]["p_min"] = data["peers"][2]["p_max"] = -40.0
    nxt = Case.from_dict(data)
    again = clear(nxt, "loss", alpha=0.2, clearer=clearer)
    fresh = clear(nxt, "loss", alpha=0.2)
    assert len(clearer) == 1
    np.testing.assert_allclose(again.trades, fresh.trades, atol=1e-6)
    np.testing.assert_allclose(again.peer_price, fresh.peer_price, atol=1e-7)
    assert_certified(nxt, again)


class FakeProblem:
    """Stands in for a cvxpy Problem to drive the status mapping."""

    def __init__(self, status, error=None):
        self.status = status
        self.error = error

    def solve(self, **kw):
        if self.error is not None:
            raise self.error


@pytest.mark.parametrize(
    ("status", "error", "text"),
    [
        ("optimal_inaccurate", None, "optimal_inaccurate: the solver stopped"),
        ("unbounded", None, "unbounded: the objective is unbounded"),
        ("user_limit", None, "user_limit"),
        ("something_new", None, "unknown status"),
        ("", "boom", "solver_error: boom"),
    ],
)
def test_every_non_optimal_status_is_an_error_naming_it(status, error, text):
    import cvxpy

    from clearing import SolverFailed

    case = two_peer_case()
    data = build_problem(case, make_spec(case, "basic"))
    qp = QpModel(data)
    qp.problem = FakeProblem(status, cvxpy.error.SolverError(error) if error else None)
    with pytest.raises(SolverFailed, match=text) as err:
        qp.solve(data)
    assert not isinstance(err.value, Infeasible)
    assert err.value.status == (status or "solver_error")
