"""Size, congestion relief, names and accuracy: defects found by attacking the clearing."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clearing import (
    Case,
    Clearer,
    CongestionStatus,
    CongestionUnrelievable,
    InvalidOption,
    ProblemTooLarge,
    clear,
    congestion_procedure,
    estimate_bytes,
    load_reference_case,
)
from clearing.model import QpModel
from clearing.problem import _pairs, build_problem, count_pairs
from clearing.spec import make_spec
from tests.clearing.helpers import feeder, peer, y_feeder_case


def all_pairs_case(producers: int, consumers: int) -> Case:
    """Every producer may sell to every consumer; two buses."""
    peers = [peer(f"G{i}", "producer", 1e-3, 0.1 + 1e-4 * i, 0.0, 50.0) for i in range(producers)]
    peers += [peer(f"C{i}", "consumer", 1e-3, 0.4, -40.0, 0.0) for i in range(consumers)]
    bus = {p["name"]: str(i % 2) for i, p in enumerate(peers)}
    network = feeder([("L1", "0", "1", 0.5, None)], bus)
    return Case.from_dict({"name": "all", "network": network, "peers": peers})


# ------------------------------------------------------------------ size (item 12)
def test_compiling_stays_linear_in_peers_plus_pairs():
    case = all_pairs_case(150, 150)
    data = build_problem(case, make_spec(case, "loss", alpha=0.01))
    n, m = data.n, data.e_src.size
    tracemalloc.start()
    try:
        QpModel(data).problem.get_problem_data("CLARABEL")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # b @ P in the objective made cvxpy allocate a dense (n + 3) x (2m + 4n + 2)
    # float matrix (110 MB here, 30 GiB at 1,000 x 1,000); the pairs' own data
    # is a few hundred bytes each
    dense = 8 * (n + 3) * (2 * m + 4 * n + 2)
    assert peak < 1000 * m < dense / 3, (peak, dense)


def test_a_case_over_the_memory_limit_is_refused_before_anything_is_built(monkeypatch):
    case = all_pairs_case(30, 40)

    def no_build(*args, **kwargs):
        raise AssertionError("build_problem must not run")

    monkeypatch.setattr("clearing.solve.build_problem", no_build)
    with pytest.raises(ProblemTooLarge, match="too large") as err:
        clear(case, "basic", clearer=Clearer(memory_limit=1 << 20))
    e = err.value
    assert (e.peers, e.pairs, e.limit_bytes) == (70, 1200, 1 << 20)
    assert e.estimate_bytes == estimate_bytes(peers=70, pairs=1200, lines=1) > e.limit_bytes


def test_the_default_limit_admits_a_million_pairs_and_refuses_far_more():
    assert estimate_bytes(peers=2000, pairs=1_000_000, lines=500) < Clearer().memory_limit
    assert estimate_bytes(peers=8000, pairs=16_000_000, lines=2000) > Clearer().memory_limit


def test_memory_limit_must_be_positive():
    with pytest.raises(InvalidOption, match="memory_limit"):
        Clearer(memory_limit=0)


def naive_pairs(case: Case, sellers: np.ndarray, buyers: np.ndarray):
    """The n x n mask the pairs used to come from: obviously right, quadratic."""
    n = len(case.peers)
    allowed = np.outer(sellers, buyers)
    for i, p in enumerate(case.peers):
        if p.partners is not None:
            mask = np.zeros(n, dtype=np.bool_)
            mask[[case.index(x) for x in p.partners]] = True
            allowed[i, :] &= mask
            allowed[:, i] &= mask
    return np.nonzero(allowed)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_pairs_match_the_quadratic_reference(data):
    n_prod = data.draw(st.integers(1, 6), label="producers")
    n_cons = data.draw(st.integers(1, 6), label="consumers")
    names = [f"G{i}" for i in range(n_prod)] + [f"C{i}" for i in range(n_cons)]
    peers = []
    for i, name in enumerate(names):
        role = "producer" if i < n_prod else "consumer"
        lo, hi = (0.0, 10.0) if role == "producer" else (-10.0, 0.0)
        item = peer(name, role, 0.01, 1.0, lo, hi)
        if data.draw(st.booleans(), label=f"{name} restricted"):
            item["partners"] = data.draw(st.lists(st.sampled_from(names), unique=True))
        peers.append(item)
    network = feeder([("L1", "0", "1", 0.5, None)], dict.fromkeys(names, "1"))
    case = Case.from_dict({"name": "p", "network": network, "peers": peers})
    producer = np.array([p.is_producer for p in case.peers])
    src, dst = _pairs(case, producer, ~producer)
    want_src, want_dst = naive_pairs(case, producer, ~producer)
    assert src.tolist() == want_src.tolist() and dst.tolist() == want_dst.tolist()
    assert count_pairs(case, make_spec(case, "basic")) == (len(want_src), 0)


def test_heat_pairs_are_counted_as_built():
    case = load_reference_case()
    spec = make_spec(case, "heat")
    data = build_problem(case, spec)
    assert count_pairs(case, spec) == (data.e_src.size, data.h_src.size)


# ------------------------------------------------------------------ congestion relief (item 13)
def stuck_case() -> Case:
    """C must take 50 kW across L2 (cap 40): no clearing relieves L2; L1 (cap 10) can be."""
    data = y_feeder_case().to_dict()
    for line in data["network"]["lines"]:
        line["capacity_kw"] = {"L1": 10.0, "L2": 40.0}[line["name"]]
    return Case.from_dict(data)


def test_procedure_stops_and_names_the_line_no_clearing_can_relieve():
    case = stuck_case()
    outcome = congestion_procedure(case, beta=1.0)
    assert outcome.status is CongestionStatus.UNRELIEVABLE and not outcome.resolved
    assert outcome.unrelievable == ("L2",)
    # it stopped where it would have doubled β: no round beyond the first with β
    assert [r.beta_scale for r in outcome.rounds] == [0.0, 1.0]
    assert set(outcome.rounds[0].overloaded) == {"L1", "L2"}


def test_clear_raises_with_the_lines_and_the_rounds():
    with pytest.raises(CongestionUnrelievable, match="L2") as err:
        clear(stuck_case(), "congestion", beta=1.0)
    assert err.value.lines == ("L2",)
    assert err.value.outcome.status is CongestionStatus.UNRELIEVABLE


def test_relievable_congestion_still_escalates_beta():
    # every pair crosses L2 (cap 45) and C may take 20-50 kW: only a larger β
    # moves C's purchase down to what L2 carries
    data = y_feeder_case().to_dict()
    data["peers"][2]["p_min"], data["peers"][2]["p_max"] = -50.0, -20.0
    data["network"]["lines"][1]["capacity_kw"] = 45.0
    case = Case.from_dict(data)
    outcome = congestion_procedure(case, beta=0.01)
    assert outcome.status is CongestionStatus.RESOLVED
    assert outcome.rounds[-1].beta_scale > 1.0
    assert outcome.unrelievable == ()


def test_fixed_beta_stops_when_another_round_would_repeat_the_last():
    data = y_feeder_case().to_dict()
    data["peers"][2]["p_min"], data["peers"][2]["p_max"] = -50.0, -20.0
    data["network"]["lines"][1]["capacity_kw"] = 45.0
    outcome = congestion_procedure(Case.from_dict(data), beta=0.01, beta_growth=1.0)
    assert outcome.status is CongestionStatus.STALLED
    assert [r.beta_scale for r in outcome.rounds] == [0.0, 1.0]
    assert outcome.rounds[-1].overloaded == ("L2",)


def test_a_procedure_without_any_beta_is_refused():
    with pytest.raises(InvalidOption, match="β > 0"):
        congestion_procedure(stuck_case(), beta=0.0)
    # clear with β = 0 has nothing to penalise: one solve, lines reported
    result = clear(stuck_case(), "congestion", beta=0.0)
    assert set(result.overloaded) == {"L1", "L2"}


# ------------------------------------------------- names, tariff, accuracy (item 14)
def test_overloaded_and_penalised_are_different_names():
    case = load_reference_case()
    outcome = congestion_procedure(case, beta=0.005, beta_growth=1.0)
    last = outcome.rounds[-1]
    assert last.penalised == ("L6", "L9") == last.result.spec.penalised
    assert last.overloaded == () == last.result.overloaded
    # read-only aliases the demo and the report output still read
    assert (last.penalised, last.overloaded, last.result.overloaded) == (("L6", "L9"), (), ())


def test_heat_honours_the_case_tariff():
    case = load_reference_case()
    heat = clear(case, "heat")
    assert heat.spec.alpha == make_spec(case, "loss").alpha
    # with α the feeder is within capacity: the procedure stops at round 0
    assert heat.overloaded == ()
    fixed = clear(case, "heat", penalised=("L6",))
    assert fixed.spec.beta == make_spec(case, "congestion").beta and any(fixed.spec.beta)
    plain = clear(case, "heat", alpha=0.0, beta=0.0)
    assert not any(plain.spec.alpha) and not any(plain.spec.beta)
    assert heat.losses_kw < plain.losses_kw


@pytest.mark.parametrize(("model", "kw"), [("basic", {}), ("loss", {"alpha": 0.005})])
def test_trades_are_resolved_to_a_few_wh(model, kw):
    case = load_reference_case()
    tol = 1e-13
    finer = Clearer(options={"tol_gap_abs": tol, "tol_gap_rel": tol, "tol_feas": tol})
    want = clear(case, model, clearer=finer, **kw).trades
    got = clear(case, model, **kw)
    assert got.accurate
    # at Clarabel's default tolerances trades were 34-130 W off; 5 Wh over a 1 h slot
    assert np.abs(got.trades - want).max() < 0.005


# ------------------------------------------------- what docs/clearing.md says (item 15)
def test_the_loss_penalty_sheds_demand_only_above_alpha_5e3():
    case = load_reference_case()
    consumers = [i for i, p in enumerate(case.peers) if not p.is_producer]
    most = -sum(case.peers[i].p_min for i in consumers)

    def served(alpha: float) -> float:
        return -float(clear(case, "loss", alpha=alpha).injection[consumers].sum())

    assert served(0.005) == pytest.approx(most, abs=0.05)
    assert served(0.020) < 0.95 * most  # part of the loss reduction is unserved demand


def test_after_one_round_c9_still_buys_most_of_its_power_across_l6():
    case = load_reference_case()
    outcome = congestion_procedure(case, beta=0.005, beta_growth=1.0)
    after = outcome.rounds[1].result
    net = case.network
    c9 = case.names.index("C9")
    trades = after.trades  # the dense view, built once
    across = sum(
        -trades[c9, j]
        for j, name in enumerate(case.names)
        if trades[c9, j] < 0 and "L6" in net.path(net.bus_of(name), net.bus_of("C9"))
    )
    local = -trades[c9, [case.names.index("G16"), case.names.index("G17")]].sum()
    assert 1.0 < local < across  # G16/G17 gain some of C9's demand, not most of it
