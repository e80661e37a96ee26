"""Heat trades with partner sets and pair penalties of their own (``HorizonPeer.heat_terms``).

A mode-1 order speaks for one product: a peer that buys green power only has
not refused its CHP neighbour's heat. The horizon's electricity partner sets
and premiums therefore leave heat alone once a peer has heat terms; without
them heat follows the electricity sets with no premium (today's behaviour).
The reference for the pairs is a scan of every (seller, buyer) pair against
both sides' sets; for the dispatch, a market where heat and power are not
coupled (no CHP unit), so heat terms must leave the electricity clearing as
it was and act on heat exactly as a partner set used to.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from clearing import CertificateError, EmptyMarket, InvalidPeer, UnknownPeer
from clearing.assets import ChpUnit
from clearing.horizon import HorizonResult, clear_horizon
from clearing.horizon_bridge import case_for_slot
from clearing.horizon_case import (
    HorizonCase,
    HorizonPeer,
    PeerKind,
    SlotCurve,
    SlotSignals,
    TradeTerms,
)
from clearing.horizon_certificate import check_horizon_certificate
from clearing.horizon_errors import InvalidHorizon
from clearing.horizon_problem import build_horizon_problem, make_horizon_spec
from clearing.horizon_rounding import round_horizon_settlement
from clearing.network import network_from_dict
from tests.clearing.helpers import feeder

TOL_P = 1e-2  # kW
TOL_PRICE = 1e-4  # currency/kWh

Sets = Callable[[HorizonPeer], "tuple[str, ...] | None"]


def _with(case: HorizonCase, **changes: dict[str, object]) -> HorizonCase:
    """``case`` with per-peer field changes: ``field={peer name: value}``."""
    peers = []
    for p in case.peers:
        kw = {f: by[p.name] for f, by in changes.items() if p.name in by}
        peers.append(dataclasses.replace(p, **kw))  # type: ignore[arg-type]
    return dataclasses.replace(case, peers=tuple(peers))


def _every(case: HorizonCase, value: Callable[[HorizonPeer], object]) -> dict[str, object]:
    return {p.name: value(p) for p in case.peers}


def _reference_pairs(
    case: HorizonCase, sells: Callable[[HorizonPeer], bool], buys: Callable[[HorizonPeer], bool],
    sets: Sets,
) -> list[tuple[int, int]]:  # fmt: skip
    """Every (seller, buyer) pair both sides' sets allow, by a scan of all pairs."""
    out = []
    for i, s in enumerate(case.peers):
        for j, d in enumerate(case.peers):
            if i == j or not (sells(s) and buys(d)):
                continue
            mu_s, mu_d = sets(s), sets(d)
            if (mu_s is None or d.name in mu_s) and (mu_d is None or s.name in mu_d):
                out.append((i, j))
    return out


@st.composite
def heat_markets(draw: st.DrawFn) -> HorizonCase:
    """Producers, consumers and a prosumer with power and heat, no CHP (products uncoupled)."""
    names: list[str] = []
    peers: list[HorizonPeer] = []

    def heat_curve(lo: int, hi: int) -> tuple[SlotCurve, ...] | None:
        if not draw(st.booleans()):
            return None
        a, b = draw(st.integers(1_000, 20_000)), draw(st.integers(100, 1_500))
        return (SlotCurve(a, b, 0, lo, hi),)

    for k in range(draw(st.integers(1, 3))):
        a, b = draw(st.integers(1_000, 20_000)), draw(st.integers(100, 1_500))
        hi = draw(st.integers(1_000, 50_000))
        peers.append(
            HorizonPeer(
                f"G{k}",
                PeerKind.PRODUCER,
                (SlotCurve(a, b, 0, 0, hi),),
                heat=heat_curve(0, draw(st.integers(1_000, 30_000))),
            )
        )
    for k in range(draw(st.integers(1, 3))):
        a, b = draw(st.integers(1_000, 20_000)), draw(st.integers(1_000, 4_000))
        lo = -draw(st.integers(1_000, 50_000))
        peers.append(
            HorizonPeer(
                f"C{k}",
                PeerKind.CONSUMER,
                (SlotCurve(a, b, 0, lo, 0),),
                heat=heat_curve(-draw(st.integers(1_000, 30_000)), 0),
            )
        )
    if draw(st.booleans()):
        a, b = draw(st.integers(1_000, 20_000)), draw(st.integers(500, 3_000))
        peers.append(
            HorizonPeer(
                "P0",
                PeerKind.PROSUMER,
                (SlotCurve(a, b, 0, -20_000, 20_000),),
                heat=heat_curve(-10_000, 10_000),
            )
        )
    assume(any(p.heat is not None for p in peers))
    names = [p.name for p in peers]

    def some_set(me: str) -> tuple[str, ...] | None:
        if not draw(st.booleans()):
            return None
        others = [x for x in names if x != me]
        return tuple(sorted(draw(st.sets(st.sampled_from(others), min_size=1))))

    def some_penalties(me: str) -> tuple[tuple[str, float], ...]:
        others = [x for x in names if x != me]
        pens = draw(st.dictionaries(st.sampled_from(others), st.integers(1, 50), max_size=2))
        return tuple(sorted((x, c / 1000) for x, c in pens.items()))

    done = []
    for p in peers:
        heat_terms = None
        if draw(st.booleans()):
            heat_terms = TradeTerms(some_set(p.name), some_penalties(p.name))
        done.append(
            dataclasses.replace(
                p,
                partners=some_set(p.name),
                pair_penalties=some_penalties(p.name),
                heat_terms=heat_terms,
            )
        )
    buses = {name: str(draw(st.integers(0, 1))) for name in names}
    return HorizonCase(
        name="random heat",
        network=network_from_dict(feeder([("L1", "0", "1", 0.5, None)], buses)),
        peers=tuple(done),
        slots=draw(st.integers(1, 2)),
        signals=(SlotSignals(alpha_milli=draw(st.integers(0, 20))),),
        regularisation=1e-3,
    )


def _clear(case: HorizonCase) -> HorizonResult:
    try:
        return clear_horizon(case, "heat")
    except EmptyMarket:
        assume(False)


def _assert_same(a: HorizonResult, b: HorizonResult, product: str) -> None:
    """The same pairs and trades of ``product`` in both clearings.

    Prices are not compared here: where bounds bind on both sides of a
    trade they lie anywhere in an interval, which an interior-point solver
    lands on differently when another part of the QP differs.
    """
    if product == "electricity":
        pairs = (a.e_src, a.e_dst, b.e_src, b.e_dst)
        flows = (a.trades, b.trades)
    else:
        assert a.heat_trades is not None and b.heat_trades is not None
        pairs = (a.h_src, a.h_dst, b.h_src, b.h_dst)
        flows = (a.heat_trades, b.heat_trades)
    np.testing.assert_array_equal(pairs[0], pairs[2])
    np.testing.assert_array_equal(pairs[1], pairs[3])
    np.testing.assert_allclose(flows[0], flows[1], atol=TOL_P)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=heat_markets())
def test_heat_pairs_and_premiums_follow_the_heat_terms_and_power_the_power_ones(case) -> None:
    try:
        problem = build_horizon_problem(case, make_horizon_spec(case, "heat"))
    except EmptyMarket:
        assume(False)
    heat_sets: Sets = lambda p: p.partners if p.heat_terms is None else p.heat_terms.partners  # noqa: E731
    want_e = _reference_pairs(case, lambda p: p.sells, lambda p: p.buys, lambda p: p.partners)
    want_h = _reference_pairs(case, lambda p: p.sells_heat, lambda p: p.buys_heat, heat_sets)
    assert list(zip(problem.e_src.tolist(), problem.e_dst.tolist(), strict=True)) == want_e
    assert list(zip(problem.h_src.tolist(), problem.h_dst.tolist(), strict=True)) == want_h
    # each side's heat premium, from its heat terms only (none without them)
    for k, (s, d) in enumerate(want_h):
        seller, buyer = case.peers[s], case.peers[d]
        hs = dict(seller.heat_terms.pair_penalties) if seller.heat_terms else {}
        hb = dict(buyer.heat_terms.pair_penalties) if buyer.heat_terms else {}
        assert problem.hdp[k] == pytest.approx(hs.get(buyer.name, 0.0))
        assert problem.hdc[k] == pytest.approx(hb.get(seller.name, 0.0))
    for k, (s, d) in enumerate(want_e):
        own = dict(case.peers[s].pair_penalties)
        assert problem.dp[k] == pytest.approx(own.get(case.peers[d].name, 0.0))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=heat_markets())
def test_heat_terms_restrict_heat_only_and_act_on_it_as_a_partner_set_did(case) -> None:
    result = _clear(case)
    assert check_horizon_certificate(case, result.certificate).ok
    # without heat terms (heat follows the power sets): power clears the same, since
    # nothing couples the products in these markets
    inherit = _with(case, heat_terms=_every(case, lambda p: None))
    _assert_same(result, _clear(inherit), "electricity")
    # heat terms without premiums act on heat as the one partner set per peer of
    # today's cases did (which bound heat and power alike)
    sets_only = _with(case, heat_terms=_every(case, lambda p: TradeTerms(p.heat_partners)))
    as_before = _with(
        case,
        partners=_every(case, lambda p: p.heat_partners),
        pair_penalties=_every(case, lambda p: ()),
        heat_terms=_every(case, lambda p: None),
    )
    _assert_same(_clear(sets_only), _clear(as_before), "heat")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=heat_markets())
def test_heat_sets_equal_to_the_power_sets_clear_as_today(case) -> None:
    today = _with(case, heat_terms=_every(case, lambda p: None))
    same = _with(case, heat_terms=_every(case, lambda p: TradeTerms(p.partners)))
    try:
        want = build_horizon_problem(today, make_horizon_spec(today, "heat"))
    except EmptyMarket:
        assume(False)
    got = build_horizon_problem(same, make_horizon_spec(same, "heat"))
    for field in ("q", "hdiag", "b_eq", "b_in", "e_src", "h_src", "h_dst", "hdp", "hdc"):
        np.testing.assert_array_equal(getattr(got, field), getattr(want, field), err_msg=field)
    assert (got.a_eq != want.a_eq).nnz == 0 and (got.a_in != want.a_in).nnz == 0
    a, b = _clear(today), _clear(same)
    # the same QP: the same solution, prices included
    assert a.objective == pytest.approx(b.objective, rel=1e-9, abs=1e-9)
    for field in ("trades", "trade_price", "heat_trades", "heat_trade_price", "payment"):
        np.testing.assert_allclose(getattr(a, field), getattr(b, field), atol=1e-9)
    assert check_horizon_certificate(same, a.certificate).ok


# ------------------------------------------------- a CHP unit and a green-only buyer
def chp_market(**c1: object) -> HorizonCase:
    """K1 (CHP, cheap) and K2 (heat boiler, dearer) sell to C1 and C2; PV sells power."""
    chp = ChpUnit("chp", a=(60_000, 0), b=(52_000, 44_000), c=(20_000, 26_000), d=(24_000, 0))
    net = network_from_dict(
        feeder(
            [("L1", "0", "1", 0.1, None)],
            {"K1": "0", "K2": "1", "PV": "1", "C1": "1", "C2": "0", "grid": "0"},
        )
    )
    peers = (
        HorizonPeer(
            "K1",
            PeerKind.PRODUCER,
            (SlotCurve(5_000, 900, 0, 0, 60_000),),
            heat=(SlotCurve(4_000, 300, 0, 0, 44_000),),
            assets=(chp,),
        ),
        HorizonPeer(
            "K2",
            PeerKind.PRODUCER,
            (SlotCurve(0, 0, 0, 0, 0),),
            heat=(SlotCurve(4_000, 900, 0, 0, 44_000),),
        ),
        HorizonPeer("PV", PeerKind.PRODUCER, (SlotCurve(5_000, 1_200, 0, 0, 30_000),)),
        HorizonPeer(
            "C1",
            PeerKind.CONSUMER,
            (SlotCurve(10_000, 3_800, 0, -40_000, 0),),
            heat=(SlotCurve(20_000, 1_500, 0, -30_000, 0),),
            **c1,  # type: ignore[arg-type]
        ),
        HorizonPeer(
            "C2",
            PeerKind.CONSUMER,
            (SlotCurve(10_000, 3_600, 0, -20_000, 0),),
            heat=(SlotCurve(20_000, 1_100, 0, -15_000, 0),),
        ),
        HorizonPeer("grid", PeerKind.GRID, (SlotCurve(3_000, 2_500, 0, -500_000, 500_000),)),
    )
    signals = (SlotSignals(alpha_milli=5, export_tariff=500),)
    return HorizonCase("chp", net, peers, 1, signals=signals, regularisation=1e-5)


GREEN_ONLY = {"partners": ("PV",), "heat_terms": TradeTerms()}


def _trade(result: HorizonResult, case: HorizonCase, s: str, d: str, heat: bool) -> float:
    src, dst = (result.h_src, result.h_dst) if heat else (result.e_src, result.e_dst)
    flows = result.heat_trades if heat else result.trades
    assert flows is not None
    k = np.flatnonzero((src == case.index(s)) & (dst == case.index(d)))
    return float(flows[0, k].sum()) if k.size else 0.0


def test_a_green_only_power_buyer_buys_the_chp_units_heat_but_not_its_power() -> None:
    case = chp_market(**GREEN_ONLY)
    result = clear_horizon(case, "heat")
    assert check_horizon_certificate(case, result.certificate).ok
    assert _trade(result, case, "PV", "C1", heat=False) > 1.0
    assert _trade(result, case, "K1", "C1", heat=True) > 1.0  # the CHP unit's heat
    problem = build_horizon_problem(case, make_horizon_spec(case, "heat"))
    c1 = case.index("C1")
    assert {case.names[s] for s in problem.e_src[problem.e_dst == c1]} == {"PV"}
    assert {case.names[s] for s in problem.h_src[problem.h_dst == c1]} == {"K1", "K2"}
    # without heat terms the power set bars every heat seller: C1 gets no heat
    inherit = clear_horizon(chp_market(partners=("PV",)), "heat")
    assert inherit.heat is not None and abs(inherit.heat[0, c1]) < 1e-6


def test_the_certificate_refuses_a_clearing_without_the_heat_sets() -> None:
    case = chp_market(**GREEN_ONLY)
    wrong_case = chp_market(partners=("PV",))  # heat follows the power set
    wrong = clear_horizon(wrong_case, "heat")
    assert check_horizon_certificate(wrong_case, wrong.certificate).ok
    with pytest.raises(CertificateError, match="shape"):
        check_horizon_certificate(case, wrong.certificate)
    # and the other way round: heat sets of the same size as the power ones, other peers
    narrow = chp_market(heat_terms=TradeTerms(("K2",)))
    narrow_result = clear_horizon(narrow, "heat")
    assert _trade(narrow_result, narrow, "K1", "C1", heat=True) == 0.0
    swapped = chp_market(heat_terms=TradeTerms(("K1",)))
    report = check_horizon_certificate(swapped, narrow_result.certificate)
    assert not report.ok


def test_a_heat_premium_moves_heat_dispatch_and_prices_but_is_not_paid() -> None:
    plain_case = chp_market()
    plain = clear_horizon(plain_case, "heat")
    case = chp_market(heat_terms=TradeTerms(None, (("K1", 0.05),)))
    result = clear_horizon(case, "heat")
    assert check_horizon_certificate(case, result.certificate).ok
    # the certificate sees the premium: the plain clearing fails its stationarity
    report = check_horizon_certificate(case, plain.certificate)
    assert not report.ok and any("stationarity" in f for f in report.failures)
    for seller, shift in (("K1", -1.0), ("K2", 1.0)):  # C1 turns from K1's heat to K2's
        moved = _trade(result, case, seller, "C1", heat=True)
        before = _trade(plain, plain_case, seller, "C1", heat=True)
        assert (moved - before) * shift > 1.0, seller
    problem = build_horizon_problem(case, make_horizon_spec(case, "heat"))
    k1, c1 = case.index("K1"), case.index("C1")
    k = int(np.flatnonzero((problem.h_src == k1) & (problem.h_dst == c1))[0])
    assert problem.hdc[k] == pytest.approx(0.05) and problem.hdp.sum() == 0.0
    assert problem.hdc.sum() == pytest.approx(0.05)
    assert not problem.dp.any() and not problem.dc.any()  # power carries no premium
    # heat τ as electricity τ: the seller's πh + hdp (+ ε p), the buyer's πh - hdc (- ε p)
    assert result.heat_trades is not None and result.heat_trade_price is not None
    assert result.heat_peer_price is not None
    hp, tau, pih = result.heat_trades[0], result.heat_trade_price[0], result.heat_peer_price[0]
    eps = problem.eps
    active = hp > TOL_P
    s, d = problem.h_src[active], problem.h_dst[active]
    seller_side = pih[s] + problem.hdp[active] + eps * hp[active]
    buyer_side = pih[d] - problem.hdc[active] - eps * hp[active]
    np.testing.assert_allclose(tau[active], seller_side, atol=1e-6)
    np.testing.assert_allclose(tau[active], buyer_side, atol=1e-6)
    assert active[k]
    # nobody pays the premium: money penalties are the grid's (electricity) terms alone
    grid_only = np.zeros(len(case.peers))
    np.add.at(grid_only, result.e_src, result.wp[0] * result.trades[0])
    np.add.at(grid_only, result.e_dst, result.wc[0] * result.trades[0])
    np.testing.assert_allclose(result.penalty[0], grid_only, atol=1e-9)
    for slot in round_horizon_settlement(case, result):
        assert sum(p.payment for p in slot.peers) == 0


def test_heat_terms_are_checked() -> None:
    curve = (SlotCurve(0, 100, 0, -1_000, 0),)
    with pytest.raises(InvalidPeer, match="heat_terms"):
        HorizonPeer("C", PeerKind.CONSUMER, curve, heat_terms=("K1",))  # type: ignore[arg-type]
    with pytest.raises(InvalidPeer, match=r"heat_terms\.partners"):
        HorizonPeer("C", PeerKind.CONSUMER, curve, heat_terms=TradeTerms(["K1"]))  # type: ignore[arg-type]
    with pytest.raises(InvalidPeer, match=">= 0"):
        HorizonPeer("C", PeerKind.CONSUMER, curve, heat_terms=TradeTerms(None, (("K1", -1.0),)))
    peer = HorizonPeer(
        "C",
        PeerKind.CONSUMER,
        curve,
        heat_terms=TradeTerms(None, [("K2", 0.1), ("K1", 0.2)]),  # type: ignore[arg-type]
    )
    assert peer.heat_pair_penalties == (("K1", 0.2), ("K2", 0.1))  # checked and sorted
    with pytest.raises(UnknownPeer, match="heat trading partner"):
        chp_market(heat_terms=TradeTerms(("nobody",)))
    with pytest.raises(UnknownPeer, match="heat pair penalty"):
        chp_market(heat_terms=TradeTerms(None, (("nobody", 0.1),)))

    # a single-slot case has one partner set per peer and no heat premium
    def single(case: HorizonCase) -> HorizonCase:  # what a single-slot case can say
        peers = tuple(p for p in case.peers if p.kind is not PeerKind.GRID)
        return dataclasses.replace(case, peers=peers, signals=(SlotSignals(),))

    with pytest.raises(InvalidHorizon, match="heat_terms"):
        case_for_slot(single(chp_market(**GREEN_ONLY)), 0)
    same = case_for_slot(single(chp_market(partners=("PV",), heat_terms=TradeTerms(("PV",)))), 0)
    assert same.peers[3].name == "C1" and same.peers[3].partners == ("PV",)
