"""The reference case reproduces the shape of the chapter's findings (section 12.6.5)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from clearing import (
    Clearer,
    check_certificate,
    clear,
    congestion_procedure,
    load_reference_case,
    pool_dispatch,
)

ALPHAS = (0.0, 0.005, 0.010, 0.020, 0.030, 0.035)  # table 12.2, currency/(kWh·Ω)


@pytest.fixture(scope="module")
def case():
    return load_reference_case()


@pytest.fixture(scope="module")
def clearer():
    return Clearer()


def assert_balances(result):
    t = result.trades
    np.testing.assert_allclose(t, -t.T, atol=1e-6)  # 12.10
    np.testing.assert_allclose(t.sum(axis=1), result.injection, atol=1e-6)  # 12.1
    assert abs(result.injection.sum()) < 1e-6
    producers = result.injection > 1e-9
    assert (t[producers] >= -1e-7).all()  # 12.8
    if result.heat_trades is not None:
        h = result.heat_trades
        np.testing.assert_allclose(h, -h.T, atol=1e-6)  # 12.38
        np.testing.assert_allclose(h.sum(axis=1), result.heat, atol=1e-6)  # 12.19


def test_basic_market_prefers_the_cheap_main_grid_and_congests_lines(case, clearer):
    basic = clear(case, "basic", clearer=clearer)
    assert_balances(basic)
    sold = basic.trades.sum(axis=1)
    grid = case.names.index("G20")
    assert sold[grid] == sold.max()  # table 12.1: most buildings buy from the grid
    assert set(basic.overloaded) == {"L6", "L9"}  # "lines 6 and 9 were congested"
    assert check_certificate(case, basic.certificate).ok


def test_pool_losses_are_well_above_basic_p2p_losses(case, clearer):
    pool = pool_dispatch(case, clearer=clearer)
    basic = clear(case, "basic", clearer=clearer)
    assert pool.losses_kw > 2.0 * basic.losses_kw  # table 12.2: 110.76 vs 26.95
    assert set(pool.overloaded) >= {"L6", "L9"}  # congested in both structures


def test_losses_do_not_increase_with_alpha(case, clearer):
    losses = [clear(case, "loss", alpha=a, clearer=clearer).losses_kw for a in ALPHAS]
    assert all(b <= a + 1e-6 for a, b in itertools.pairwise(losses)), losses
    assert losses[-1] < 0.5 * losses[0]


def test_congestion_of_the_basic_case_is_removed_with_beta(case, clearer):
    outcome = congestion_procedure(case, beta=0.005, beta_growth=1.0, clearer=clearer)
    first, last = outcome.rounds[0], outcome.rounds[-1]
    assert set(first.overloaded) == {"L6", "L9"}
    assert outcome.resolved and last.overloaded == ()
    assert last.penalised == ("L6", "L9")
    assert len(outcome.rounds) == 2  # one round with beta = 5e-3 suffices, as in the chapter
    after = last.result
    caps = case.network.capacities()
    assert (np.abs(after.flows) <= caps + 1e-6).all()
    assert_balances(after)
    # C9 buys more from producers behind L6 (G16, G17) than before: the chapter's figure 12.12
    c9 = case.names.index("C9")
    local = [case.names.index(g) for g in ("G16", "G17")]
    assert -after.trades[c9, local].sum() > -first.result.trades[c9, local].sum() + 1.0
    assert check_certificate(case, after.certificate).ok


def test_hard_limits_are_the_exact_alternative(case, clearer):
    exact = clear(case, "basic", line_limits=True, clearer=clearer)
    caps = case.network.capacities()
    assert (np.abs(exact.flows) <= caps + 1e-4).all()
    lines = [case.network.lines[i].name for i in np.flatnonzero(np.abs(exact.line_price) > 1e-6)]
    assert set(lines) == {"L6", "L9"}  # the binding limits carry the congestion prices
    penalised = congestion_procedure(case, clearer=clearer).final
    assert exact.welfare >= penalised.welfare - 1e-6  # the exact limit costs no more welfare


@pytest.mark.parametrize("kw", [{}, {"alpha": 0.005, "beta": 0.005}])
def test_chp_points_inside_their_polygons_and_balances_hold(case, clearer, kw):
    heat = clear(case, "heat", clearer=clearer, **kw)
    assert_balances(heat)
    assert check_certificate(case, heat.certificate).ok
    for i, p in enumerate(case.peers):
        if p.chp is not None:
            assert p.chp.contains(heat.injection[i], heat.heat[i], tol=1e-5), p.name
            assert heat.heat[i] > 0.0
    consumers = [i for i, p in enumerate(case.peers) if not p.is_producer]
    assert (heat.heat[consumers] < 0).all()  # every consumer's heat demand is served
