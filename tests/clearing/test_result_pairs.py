"""The result stores trades per pair: its dense views, exports and rounding match the old forms.

The slow references below are the earlier implementations, kept verbatim in
spirit: dense matrices filled pair by pair in Python, ``to_dict`` read off
the dense matrices, and ``round_settlement`` as a loop over pairs with
Python's ``round``. Synthetic results (random primal and dual values on the
reference case's pairs, with exact rounding ties) exercise them without a
solver; real clearings cover the solver's values.
"""

from __future__ import annotations

import dataclasses
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clearing import (
    Case,
    Clearer,
    ProblemTooLarge,
    clear,
    estimate_bytes,
    load_reference_case,
    round_settlement,
)
from clearing.errors import ClearingError
from clearing.ieee33 import community_case
from clearing.memory import FILL_BYTES, GIB, PAIR_BYTES, check_size
from clearing.problem import ProblemData, build_problem
from clearing.result import ClearingResult, assemble_result
from clearing.rounding import PeerSettlement, Settlement, TradeSettlement
from clearing.solution import Solution, SolveInfo
from clearing.spec import make_spec

INFO = SolveInfo("optimal", "synthetic", 0.0, 0.0, 0, 0.0)


# --- slow references: the earlier implementations ---------------------------------------


def dense_reference(n: int, src: Any, dst: Any, fwd: Any, back: Any) -> np.ndarray:
    out = np.zeros((n, n))
    for k in range(len(src)):
        out[src[k], dst[k]] = fwd[k]
    for k in range(len(src)):
        out[dst[k], src[k]] = back[k]
    return out


def price_reference(n: int, src: Any, dst: Any, tau: Any) -> np.ndarray:
    out = np.full((n, n), np.nan)
    for k in range(len(src)):
        out[src[k], dst[k]] = tau[k]
        out[dst[k], src[k]] = tau[k]
    return out


def to_dict_trades_reference(result: ClearingResult, min_kw: float) -> list[dict[str, Any]]:
    sol, n, names = result.solution, len(result.names), list(result.names)
    trades = dense_reference(n, result.e_src, result.e_dst, sol.p, sol.q)
    price = price_reference(n, result.e_src, result.e_dst, sol.tau)
    return [
        {
            "seller": seller,
            "buyer": names[j],
            "kw": float(trades[i, j]),
            "price": float(price[i, j]),
        }
        for i, seller in enumerate(names)
        for j in np.flatnonzero(trades[i] > min_kw)
    ]


def round_settlement_reference(case: Case, result: ClearingResult) -> Settlement:
    """The loop over pairs that round_settlement was (one ``round`` per figure)."""
    names = result.names
    wh_per_kw = case.slot_hours * 1000.0
    trades: list[TradeSettlement] = []
    totals: dict[tuple[str, str], list[int]] = {}

    def add(product: str, s: int, d: int, kw: float, tau: float, ws: float, wd: float) -> None:
        energy = round(kw * wh_per_kw)
        if energy <= 0:
            return
        price = round(tau / case.tick)
        amount = price * energy
        pen_s, pen_d = round(ws / case.tick) * energy, round(wd / case.tick) * energy
        trades.append(
            TradeSettlement(product, names[s], names[d], energy, price, amount, pen_s, pen_d)
        )
        for peer, sign, pen in ((names[s], 1, pen_s), (names[d], -1, pen_d)):
            row = totals.setdefault((product, peer), [0, 0, 0])
            row[0] += sign * energy
            row[1] -= sign * amount
            row[2] += pen

    sol = result.solution
    for k in range(result.e_src.size):
        s, d = int(result.e_src[k]), int(result.e_dst[k])
        add("electricity", s, d, float(sol.p[k]), float(sol.tau[k]), result.wp[k], result.wc[k])
    for k in range(result.h_src.size):
        s, d = int(result.h_src[k]), int(result.h_dst[k])
        add("heat", s, d, float(sol.hp[k]), float(sol.tauh[k]), 0.0, 0.0)
    products = ["electricity"] + (["heat"] if result.h_src.size else [])
    peers = tuple(
        PeerSettlement(product, name, *totals.get((product, name), [0, 0, 0]))
        for product in products
        for name in names
    )
    revenue = sum(t.seller_penalty + t.buyer_penalty for t in trades)
    return Settlement(case.tick, tuple(trades), peers, revenue)


def assert_same_settlement(got: Settlement, want: Settlement) -> None:
    assert got == want
    for t in got.trades:
        for value in dataclasses.astuple(t)[3:]:
            assert type(value) is int
    for p in got.peers:
        assert type(p.energy_wh) is int and type(p.payment) is int and type(p.penalty) is int
    assert type(got.operator_revenue) is int


# --- synthetic results -------------------------------------------------------------------


def _problem(model: str, partners: bool) -> tuple[Case, ProblemData]:
    case = load_reference_case()
    if partners:  # every consumer trades with two producers only
        producers = [p.name for p in case.peers if p.is_producer]
        peers = tuple(
            p
            if p.is_producer
            else replace(
                p, partners=(producers[k % len(producers)], producers[(k + 1) % len(producers)])
            )
            for k, p in enumerate(case.peers)
        )
        case = replace(case, peers=peers)
    return case, build_problem(case, make_spec(case, model, alpha=0.01, beta=0.005))


def synthetic(case: Case, data: ProblemData, seed: int, scale: float = 1.0) -> ClearingResult:
    """A result with random values; energies and prices sit on rounding ties half the time."""
    rng = np.random.default_rng(seed)
    n, m, mh = data.n, data.e_src.size, data.h_src.size

    def kw(size: int) -> np.ndarray:
        tie = (rng.integers(-2, 200, size) + 0.5) / (1000.0 * case.slot_hours)
        free = rng.uniform(-0.001, 50.0, size)
        return np.where(rng.random(size) < 0.5, tie, free) * scale

    def price(size: int) -> np.ndarray:
        tie = (rng.integers(0, 5000, size) + 0.5) * case.tick
        return np.where(rng.random(size) < 0.5, tie, rng.uniform(0.0, 0.5, size)) * scale

    p, hp = kw(m), kw(mh)
    zero_n, zero_0 = np.zeros(n), np.zeros(0)
    heat = mh > 0 or data.heat
    sol = Solution(
        P=rng.normal(size=n), p=p, q=-p + rng.normal(0, 1e-9, m), H=rng.normal(size=n) if heat
        else zero_0, hp=hp, hq=-hp, pi=rng.normal(size=n), tau=price(m), up=zero_n, lo=zero_n,
        sp=np.zeros(m), sq=np.zeros(m), fu=np.zeros(data.limited.size),
        fl=np.zeros(data.limited.size), pih=rng.normal(size=n) if heat else zero_0,
        tauh=price(mh), uph=zero_n if heat else zero_0, loh=zero_n if heat else zero_0,
        sph=np.zeros(mh), sqh=np.zeros(mh), kappa=np.zeros(data.chp_peer.size if heat else 0),
    )  # fmt: skip
    return assemble_result(case, "synthetic", data, sol, INFO, data_spec(case, data))


def data_spec(case: Case, data: ProblemData) -> Any:
    return make_spec(case, "heat" if data.heat else "loss+congestion", alpha=0.01, beta=0.005)


PROBLEMS = {
    (model, partners): _problem(model, partners)
    for model in ("loss+congestion", "heat")
    for partners in (False, True)
}


def check_views(result: ClearingResult) -> None:
    n, sol = len(result.names), result.solution
    want = dense_reference(n, result.e_src, result.e_dst, sol.p, sol.q)
    np.testing.assert_array_equal(result.trades, want)
    np.testing.assert_array_equal(
        result.trade_price, price_reference(n, result.e_src, result.e_dst, sol.tau)
    )
    if result.heat is None:
        assert result.heat_trades is None and result.heat_trade_price is None
    else:
        heat = dense_reference(n, result.h_src, result.h_dst, sol.hp, sol.hq)
        np.testing.assert_array_equal(result.heat_trades, heat)
        np.testing.assert_array_equal(
            result.heat_trade_price, price_reference(n, result.h_src, result.h_dst, sol.tauh)
        )
    for min_kw in (1e-6, 5.0):
        assert result.to_dict(min_kw)["trades"] == to_dict_trades_reference(result, min_kw)
    for i, seller in enumerate(result.names):
        for j, buyer in enumerate(result.names):
            assert result.trade(seller, buyer) == want[i, j]


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), key=st.sampled_from(sorted(PROBLEMS)))
def test_views_exports_and_rounding_match_the_dense_forms(seed, key):
    case, data = PROBLEMS[key]
    result = synthetic(case, data, seed)
    check_views(result)
    assert_same_settlement(round_settlement(case, result), round_settlement_reference(case, result))


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), scale=st.sampled_from([1e9, 1e12, 1e15]))
def test_rounding_stays_exact_beyond_int64(seed, scale):
    """Products past 2^63 take the Python-integer path and still equal the loop's."""
    case, data = PROBLEMS[("heat", False)]
    result = synthetic(case, data, seed, scale=scale)
    got = round_settlement(case, result)
    assert_same_settlement(got, round_settlement_reference(case, result))
    if scale >= 1e12:
        assert max(abs(t.amount) for t in got.trades) > 2**63


def test_rounding_refuses_a_non_finite_traded_price():
    case, data = PROBLEMS[("loss+congestion", False)]
    result = synthetic(case, data, 7)
    sol = result.solution
    k = int(np.argmax(sol.p))
    bad_tau = sol.tau.copy()
    bad_tau[k] = np.nan
    bad = replace(result, solution=replace(sol, tau=bad_tau))
    with pytest.raises(ClearingError, match="price is not finite"):
        round_settlement(case, bad)
    bad_p = sol.p.copy()
    bad_p[0] = np.inf
    with pytest.raises(ClearingError, match="energy is not finite"):
        round_settlement(case, replace(result, solution=replace(sol, p=bad_p)))


@pytest.mark.parametrize("model", ["basic", "loss+congestion", "heat"])
def test_real_clearings_match_the_dense_forms(model):
    case = load_reference_case()
    result = clear(case, model, alpha=0.01, beta=0.005)
    check_views(result)
    assert result.trade("G16", "C9") == result.trades[case.index("G16"), case.index("C9")]
    assert_same_settlement(round_settlement(case, result), round_settlement_reference(case, result))


def test_the_result_holds_no_square_matrix():
    case, data = PROBLEMS[("heat", True)]
    result = synthetic(case, data, 3)
    n = len(result.names)
    for field in dataclasses.fields(result):
        value = getattr(result, field.name)
        if isinstance(value, np.ndarray):
            assert value.ndim == 1 or value.shape[0] != n or value.shape[1] != n, field.name


def _sparse(case: Case, partners: int) -> Case:
    producers = [p.name for p in case.peers if p.is_producer]
    peers = tuple(
        p
        if p.is_producer
        else replace(
            p, partners=tuple(producers[(k * 7 + j) % len(producers)] for j in range(partners))
        )
        for k, p in enumerate(case.peers)
    )
    return replace(case, peers=peers)


def test_memory_estimate_counts_no_result_matrices():
    n = 10_000
    estimate = estimate_bytes(peers=n, pairs=50_000, lines=32)
    # below what two dense n x n float matrices of a result alone would take;
    # the factor's fill bound (4 bytes per peers²) is the only square term
    assert estimate < 2 * 8 * n * n
    assert FILL_BYTES * n * n < estimate < FILL_BYTES * n * n + GIB // 2
    more_pairs = estimate_bytes(peers=n, pairs=100_000, lines=32)
    assert more_pairs - estimate == PAIR_BYTES * 50_000
    case = community_case(5000, 5000, seed=1)
    spec = make_spec(case, "basic")
    limit = GIB
    assert check_size(_sparse(case, 10), spec, limit) < limit  # 50,000 pairs: accepted
    with pytest.raises(ProblemTooLarge) as info:  # 25 million pairs: refused
        check_size(case, spec, limit)
    assert info.value.pairs == 25_000_000 and info.value.peers == 10_000
    with pytest.raises(ProblemTooLarge):
        Clearer(memory_limit=limit).solve(case, spec, "basic")
