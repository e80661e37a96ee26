"""Pair penalties (product differentiation, c_ij) and partner sets (mu_i) in the per-pair QP.

The penalised QP is checked against a hand-solved market and, on random
small markets, against a slow and independent formulation (scipy's SLSQP on
every allowed pair, penalties read straight from the case data).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import LinearConstraint, minimize

from clearing import (
    Case,
    ClearingForm,
    InvalidPeer,
    NotAggregable,
    UnknownPeer,
    certificate_from_plain,
    certificate_to_plain,
    check_certificate,
    clear,
    clear_aggregated,
    clear_auto,
    settle_certificate,
)
from clearing.certificate import Certificate
from clearing.errors import UnknownField
from clearing.solution import Solution
from tests.clearing.helpers import feeder, peer


def three(penalties: dict[str, float] | None = None, **kw: Any) -> Case:
    """G1 (b=1) and G2 (b=2), a = 0.02, sell to C (b=6, a=0.02) at one bus; C penalises G1."""
    c = peer("C", "consumer", 0.02, 6.0, -200.0, 0.0, **kw)
    if penalties is not None:
        c["pair_penalties"] = penalties
    return Case.from_dict(
        {
            "name": "three",
            "regularisation": 0.0,
            "network": feeder([("L1", "0", "1", 1.0, None)], {"G1": "0", "G2": "0", "C": "0"}),
            "peers": [
                peer("G1", "producer", 0.02, 1.0, 0.0, 500.0),
                peer("G2", "producer", 0.02, 2.0, 0.0, 500.0),
                c,
            ],
        }
    )


# ------------------------------------------------------------------ the case data


def test_pair_penalties_round_trip_sorted_and_dropped_with_their_peer():
    case = three({"G2": 0.5, "G1": 2.0})
    c = case.peers[case.index("C")]
    assert c.pair_penalties == (("G1", 2.0), ("G2", 0.5))
    again = Case.from_dict(case.to_dict())
    assert again.peers[again.index("C")].pair_penalties == c.pair_penalties
    assert case.has_pair_penalties and not three().has_pair_penalties
    smaller = case.without(["G1"])
    assert smaller.peers[smaller.index("C")].pair_penalties == (("G2", 0.5),)


@pytest.mark.parametrize(
    ("penalties", "error", "text"),
    [
        ({"G1": -1.0}, InvalidPeer, "must be >= 0"),
        ({"G1": float("nan")}, InvalidPeer, "finite number"),
        ({"G1": "cheap"}, InvalidPeer, "finite number"),
        ({"G1": True}, InvalidPeer, "finite number"),
        ({"C": 1.0}, InvalidPeer, "its own name"),
        ({"nobody": 1.0}, UnknownPeer, "unknown peer 'nobody'"),
        ([["G1", 1.0]], InvalidPeer, "must be an object"),
    ],
)
def test_bad_pair_penalties_raise_typed_errors(penalties, error, text):
    with pytest.raises(error, match=text):
        three(penalties)


def test_a_misspelt_key_is_refused():
    with pytest.raises(UnknownField, match="pair_penalties"):
        three(pair_penalty={"G1": 1.0})


# ------------------------------------------------------------------ hand-solved


def test_hand_solved_penalty_moves_the_dispatch_and_the_trade_price():
    # C values G1's energy 2 less: G1 = 50 (λ - 3), G2 = 50 (λ - 2), C buys
    # 100 λ - 250 = 50 (6 - λ)... so λ = 11/3 (docs/clearing.md, pair penalties).
    result = clear(three({"G1": 2.0}), "basic")
    lam = 11.0 / 3.0
    assert result.trade("G1", "C") == pytest.approx(50 * (lam - 3), abs=1e-5)
    assert result.trade("G2", "C") == pytest.approx(50 * (lam - 2), abs=1e-5)
    i = result.names.index
    assert result.peer_price[i("C")] == pytest.approx(lam, abs=1e-6)
    # τ of a trade that happens is the seller's marginal cost plus its own
    # penalty, and the buyer's price minus its own: G1's product sells cheaper
    assert result.trade_price[i("G1"), i("C")] == pytest.approx(lam - 2.0, abs=1e-6)
    assert result.trade_price[i("G2"), i("C")] == pytest.approx(lam, abs=1e-6)
    # a preference, not a charge: nobody pays it to the grid operator
    assert not result.penalty.any()
    settlement = settle_certificate(three({"G1": 2.0}), result.certificate)
    assert settlement.operator_revenue == 0
    assert sum(t.seller_penalty + t.buyer_penalty for t in settlement.trades) == 0
    assert check_certificate(three({"G1": 2.0}), result.certificate, model="basic").ok


def test_penalties_add_to_the_grid_terms_on_each_side():
    # C at bus 1 behind a 1-ohm line; both sides pay alpha R, C adds its preference
    data = {
        "name": "two",
        "regularisation": 0.0,
        "tariff": {"alpha": 0.1, "beta": 0.0},
        "network": feeder([("L1", "0", "1", 1.0, None)], {"G": "0", "C": "1"}),
        "peers": [
            peer("G", "producer", 0.04, 1.0, 0.0, 100.0, pair_penalties={"C": 0.3}),
            peer("C", "consumer", 0.04, 5.0, -100.0, 0.0, pair_penalties={"G": 0.2}),
        ],
    }
    result = clear(Case.from_dict(data), "loss")
    # 1 + 0.04 P + 0.1 + 0.3 = 5 - 0.04 P - 0.1 - 0.2  ->  P = 3.3 / 0.08
    assert result.trade("G", "C") == pytest.approx(3.3 / 0.08, abs=1e-4)
    # only the grid terms are money: 0.1 per kWh each side
    assert result.penalty == pytest.approx([0.1 * 3.3 / 0.08] * 2, abs=1e-4)


# ------------------------------------------------------------------ a slow reference


def slow_optimum(data: dict[str, Any]) -> tuple[float, np.ndarray, list[tuple[int, int]]]:
    """Minimise the penalised objective over every allowed (producer, consumer) pair with SLSQP.

    Reads the case data directly: consent from both partner lists, penalty
    c_sd + c_ds per kW of the pair. Returns (objective, P_i, allowed pairs).
    """
    peers = data["peers"]
    n = len(peers)
    names = [p["name"] for p in peers]
    producer = [p["role"] != "consumer" for p in peers]

    def consents(i: int, j: int) -> bool:
        listed = peers[i].get("partners")
        return listed is None or names[j] in listed

    pairs = [
        (s, d)
        for s in range(n)
        for d in range(n)
        if producer[s] and not producer[d] and consents(s, d) and consents(d, s)
    ]
    a = np.array([p["a"] for p in peers])
    b = np.array([p["b"] for p in peers])
    w = np.array(
        [
            peers[s].get("pair_penalties", {}).get(names[d], 0.0)
            + peers[d].get("pair_penalties", {}).get(names[s], 0.0)
            for s, d in pairs
        ]
    )
    m = len(pairs)
    incidence = np.zeros((n, m))
    for k, (s, d) in enumerate(pairs):
        incidence[s, k], incidence[d, k] = 1.0, -1.0
    lo = np.array([p["p_min"] for p in peers])
    hi = np.array([p["p_max"] for p in peers])

    def objective(x: np.ndarray) -> float:
        big_p = incidence @ x
        return float(np.sum(0.5 * a * big_p**2 + b * big_p) + w @ x)

    def gradient(x: np.ndarray) -> np.ndarray:
        big_p = incidence @ x
        return np.asarray(incidence.T @ (a * big_p + b) + w)

    if m == 0:
        return 0.0, np.zeros(n), pairs
    best = None
    for start in (np.zeros(m), np.full(m, 1.0)):
        out = minimize(
            objective,
            start,
            jac=gradient,
            method="SLSQP",
            bounds=[(0.0, None)] * m,
            constraints=[LinearConstraint(incidence, lo, hi)],
            options={"ftol": 1e-12, "maxiter": 1000},
        )
        if best is None or out.fun < best.fun:
            best = out
    assert best is not None
    return float(best.fun), incidence @ best.x, pairs


@st.composite
def markets(draw: st.DrawFn) -> dict[str, Any]:
    sellers = draw(st.integers(1, 3))
    buyers = draw(st.integers(1, 3))
    names = [f"G{k}" for k in range(sellers)] + [f"C{k}" for k in range(buyers)]
    peers = []
    for k, name in enumerate(names):
        is_seller = k < sellers
        a = draw(st.sampled_from([0.01, 0.02, 0.05]))
        b = draw(st.integers(1, 8)) * 0.5
        span = float(draw(st.integers(5, 60)))
        item = peer(
            name,
            "producer" if is_seller else "consumer",
            a,
            b if is_seller else b + 2.0,
            0.0 if is_seller else -span,
            span if is_seller else 0.0,
        )
        others = names[sellers:] if is_seller else names[:sellers]
        if draw(st.booleans()):
            item["partners"] = draw(st.lists(st.sampled_from(others), unique=True))
        pens = draw(st.dictionaries(st.sampled_from(others), st.sampled_from([0.0, 0.5, 1.5, 4.0])))
        if pens:
            item["pair_penalties"] = pens
        peers.append(item)
    return {
        "name": "random",
        "regularisation": 0.0,
        "network": feeder([("L1", "0", "1", 1.0, None)], dict.fromkeys(names, "0")),
        "peers": peers,
    }


@settings(max_examples=40, deadline=None)
@given(markets())
def test_penalised_qp_matches_a_slow_reference_and_keeps_partner_sets(data):
    slow, slow_p, pairs = slow_optimum(data)
    case = Case.from_dict(data)
    if not pairs:
        with pytest.raises(Exception, match="no producer-consumer pair"):
            clear(case, "basic")
        return
    result = clear(case, "basic")
    n = len(case.peers)
    allowed = np.zeros((n, n), dtype=bool)
    for s, d in pairs:
        allowed[s, d] = allowed[d, s] = True
    # mu_i: no trade outside both partner sets
    assert np.all(np.abs(result.trades[~allowed]) == 0.0)
    sol = result.solution
    w = result.solution.p * 0.0
    for k in range(result.e_src.size):
        s, d = int(result.e_src[k]), int(result.e_dst[k])
        pen = [dict(case.peers[x].pair_penalties) for x in (s, d)]
        w[k] = pen[0].get(case.names[d], 0.0) + pen[1].get(case.names[s], 0.0)
    a = np.array([p.a for p in case.peers])
    b = np.array([p.b for p in case.peers])
    ours = float(np.sum(0.5 * a * sol.P**2 + b * sol.P) + w @ sol.p)
    scale = max(1.0, abs(slow))
    # the solver's optimum is never worse than SLSQP's, and SLSQP gets close to it
    assert ours <= slow + 1e-6 * scale
    assert slow <= ours + 1e-4 * scale
    assert np.allclose(sol.P, slow_p, atol=1e-2)
    assert check_certificate(case, result.certificate, model="basic").ok


# ------------------------------------------------------------------ the certificate


def test_certificate_rejects_a_perturbed_solution_and_other_penalties():
    case = three({"G1": 2.0})
    cert = clear(case, "basic").certificate
    plain = certificate_from_plain(certificate_to_plain(cert))
    assert check_certificate(case, plain, model="basic").ok
    sol = cert.solution
    moved = Solution(**{**{f: getattr(sol, f) for f in Solution.__slots__}, "tau": sol.tau + 0.01})
    forged = Certificate(cert.model, cert.names, cert.spec, moved)
    assert not check_certificate(case, forged).ok
    # the same certificate is not optimal for a case whose penalties differ ...
    report = check_certificate(three({"G1": 1.0}), cert)
    assert not report.ok and any("stationarity" in f for f in report.failures)
    # ... nor is one computed without them optimal for the case with them
    plain_cert = clear(three(), "basic").certificate
    assert check_certificate(three(), plain_cert).ok
    assert not check_certificate(case, plain_cert).ok


# ------------------------------------------------------------------ the aggregated form


def test_aggregated_form_refuses_pair_penalties_and_clear_auto_falls_back():
    case = three({"G1": 2.0})
    with pytest.raises(NotAggregable, match="pair penalties"):
        clear_aggregated(case, "basic")
    auto = clear_auto(case, "basic")
    assert auto.form is ClearingForm.PER_PAIR and "penalise" in auto.reason
    assert auto.result.trade("G1", "C") == pytest.approx(50 * (11 / 3 - 3), abs=1e-5)
    # a zero penalty tells nobody apart: still aggregable
    assert clear_auto(three({"G1": 0.0}), "basic").form is ClearingForm.AGGREGATED
