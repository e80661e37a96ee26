"""The aggregated all-pairs clearing against the per-pair one, and the choice of form.

Random cases come from a seed drawn by hypothesis (derandomized, so every run
sees the same seeds; a failure prints its seed): a random radial feeder of 2-6
buses with several peers per bus, per-peer tariffs for some peers, and heat
for some. The reference is the per-pair cvxpy model of ``clearing.model``.
"""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clearing import (
    Case,
    Clearer,
    check_certificate,
    clear,
    congestion_procedure,
    load_reference_case,
    round_settlement,
)
from clearing.aggregate import (
    AggregateClearer,
    ClearingForm,
    clear_aggregated,
    clear_auto,
)
from clearing.aggregate_certificate import (
    aggregate_certificate_from_plain,
    aggregate_certificate_to_plain,
    check_aggregate_certificate,
)
from clearing.aggregate_problem import NotAggregable, build_aggregate, restricting_peers
from clearing.aggregate_recover import recover_trades
from clearing.errors import CertificateError
from clearing.ieee33 import community_case, ieee33_data, ieee33_network
from clearing.spec import make_spec
from tests.clearing.helpers import feeder, peer

MODELS = [
    ("basic", {}),
    ("loss", {}),
    ("congestion", {"penalised": "pick"}),
    ("loss+congestion", {"penalised": "pick"}),
    ("basic", {"line_limits": True}),
    ("heat", {}),
    ("heat", {"alpha": 0.004, "beta": 0.01, "penalised": "pick"}),
]
MODEL_IDS = [f"{m}-{'-'.join(kw)}" if kw else m for m, kw in MODELS]


def random_case(seed: int, *, heat: bool) -> Case:
    """A small all-pairs market on a random radial feeder (numpy rng from ``seed``)."""
    rng = np.random.default_rng(seed)
    n_bus = int(rng.integers(2, 7))
    lines = []
    for i in range(1, n_bus):
        parent = int(rng.integers(0, i))
        cap = None if rng.random() < 0.3 else float(rng.uniform(5.0, 40.0))
        lines.append((f"L{i}", str(parent), str(i), float(rng.uniform(0.1, 2.0)), cap))
    buses = [str(b) for b in range(n_bus)]
    peers, peer_bus = [], {}
    n_prod, n_cons = int(rng.integers(1, 6)), int(rng.integers(1, 6))
    for k in range(n_prod):
        name = f"G{k}"
        item = peer(
            name,
            "producer",
            float(rng.uniform(0.005, 0.05)),
            float(rng.uniform(0.02, 0.2)),
            0.0,
            float(rng.uniform(1.0, 30.0)),
        )
        if rng.random() < 0.3:
            item["alpha"] = float(rng.uniform(0.0, 0.01))
        if heat and rng.random() < 0.6:
            item["heat"] = {
                "a": float(rng.uniform(0.001, 0.01)),
                "b": float(rng.uniform(0.01, 0.05)),
                "h_min": 0.0,
                "h_max": float(rng.uniform(1.0, 20.0)),
            }
        peers.append(item)
        peer_bus[name] = str(rng.choice(buses))
    for k in range(n_cons):
        name = f"C{k}"
        item = peer(
            name,
            "consumer",
            float(rng.uniform(0.005, 0.05)),
            float(rng.uniform(0.15, 0.4)),
            -float(rng.uniform(1.0, 30.0)),
            0.0,
        )
        if rng.random() < 0.3:
            item["beta"] = float(rng.uniform(0.0, 0.03))
        if heat and rng.random() < 0.6:
            item["heat"] = {
                "a": float(rng.uniform(0.001, 0.01)),
                "b": float(rng.uniform(0.05, 0.15)),
                "h_min": -float(rng.uniform(1.0, 20.0)),
                "h_max": 0.0,
            }
        peers.append(item)
        peer_bus[name] = str(rng.choice(buses))
    if rng.random() < 0.5:
        peers.append(peer("grid", "grid", 1e-4, 0.3, 0.0, 200.0))
        peer_bus["grid"] = "0"
    return Case.from_dict(
        {
            "name": f"random-{seed}",
            "tariff": {"alpha": 0.003, "beta": 0.02},
            "network": feeder(lines, peer_bus, voltage_kv=0.4),
            "peers": peers,
        }
    )


def model_args(case: Case, kw: dict, seed: int) -> dict:
    out = dict(kw)
    if out.get("penalised") == "pick":
        lines = case.network.lines
        out["penalised"] = (lines[seed % len(lines)].name,) if lines else ()
    return out


def scale_p(case: Case) -> float:
    return max([1.0] + [max(abs(p.p_min), abs(p.p_max)) for p in case.peers])


def interior(case: Case, injection: np.ndarray, margin: float) -> np.ndarray:
    lo = np.array([p.p_min for p in case.peers])
    hi = np.array([p.p_max for p in case.peers])
    return (injection > lo + margin) & (injection < hi - margin)


def assert_agree(case: Case, model: str, kw: dict) -> None:
    """The aggregated and per-pair forms give the same objective, dispatch and prices."""
    agg = clear_aggregated(case, model, **kw)
    ref = clear(case, model, **kw)
    got = agg.result
    obj_tol = 1e-6 * max(1.0, abs(ref.objective))
    # equal up to the tie-break gap, ε times the spread of the trades in a block (small
    # here, where trades are tens of kW; 1e-9 relative at community scale)
    assert abs(got.objective - ref.objective) <= obj_tol + agg.gap_bound
    # the sandwich of aggregate_recover: agg optimum <= per-pair optimum <= pair objective
    assert got.objective <= ref.objective + obj_tol
    assert ref.objective <= agg.pair_objective + obj_tol
    s = scale_p(case)
    np.testing.assert_allclose(got.injection, ref.injection, rtol=0, atol=1e-4 * s)
    # a price is determined by the QP where the peer is inside its bounds: π = a P + b
    inside = interior(case, ref.injection, 1e-3 * s) & interior(case, got.injection, 1e-3 * s)
    a_max = max(p.a for p in case.peers)
    np.testing.assert_allclose(
        got.peer_price[inside], ref.peer_price[inside], rtol=0, atol=a_max * 1e-4 * s + 1e-6
    )
    if got.heat is not None:
        assert ref.heat is not None
        np.testing.assert_allclose(got.heat, ref.heat, rtol=0, atol=1e-4 * s)
    assert got.overloaded == ref.overloaded
    assert got.losses_kw == pytest.approx(ref.losses_kw, rel=1e-3, abs=1e-6 * s)


def assert_trades_valid(case: Case, agg_result) -> None:
    """The recovered trades satisfy the per-pair constraints and the sign rules exactly."""
    trades, inj = agg_result.trades, agg_result.injection
    producer = np.array([p.is_producer for p in case.peers])
    assert (trades[producer] >= 0).all()  # 12.8
    assert (trades[~producer] <= 0).all()  # 12.9
    np.testing.assert_array_equal(trades, -trades.T)  # 12.10
    assert not trades[np.ix_(producer, producer)].any()
    s = scale_p(case)
    np.testing.assert_allclose(trades.sum(axis=1), inj, rtol=0, atol=1e-7 * s)  # 12.1
    sol = agg_result.solution
    assert (sol.p >= 0).all() and (sol.q <= 0).all()
    if agg_result.heat_trades is not None:
        ht = agg_result.heat_trades
        assert (ht[producer] >= 0).all() and (ht[~producer] <= 0).all()
        np.testing.assert_allclose(ht.sum(axis=1), agg_result.heat, rtol=0, atol=1e-7 * s)


@settings(max_examples=12, derandomize=True)
@given(seed=st.integers(0, 2**32 - 1), k=st.sampled_from(range(len(MODELS))))
def test_aggregated_and_per_pair_forms_agree_on_random_radial_cases(seed, k):
    model, kw = MODELS[k]
    case = random_case(seed, heat=model == "heat")
    if model == "heat" and not case.has_heat:
        model = "basic"
    assert_agree(case, model, model_args(case, kw, seed))


@pytest.mark.parametrize("k", range(len(MODELS)), ids=MODEL_IDS)
@pytest.mark.parametrize("seed", [7, 2024])
def test_every_model_agrees_with_per_pair(seed, k):
    model, kw = MODELS[k]
    case = random_case(seed, heat=True)
    assert_agree(case, model, model_args(case, kw, seed))


@settings(max_examples=15, derandomize=True)
@given(seed=st.integers(0, 2**32 - 1), k=st.sampled_from(range(len(MODELS))))
def test_recovered_trades_satisfy_the_per_pair_constraints(seed, k):
    model, kw = MODELS[k]
    case = random_case(seed, heat=True)
    agg = clear_aggregated(case, model, **model_args(case, kw, seed))
    assert_trades_valid(case, agg.result)
    # the aggregated certificate holds (for the model under the case's tariff,
    # unless the test sets α or β itself)
    tariff = model if "alpha" not in kw and "beta" not in kw else None
    report = check_aggregate_certificate(case, agg.certificate, model=tariff)
    assert report.ok, report.failures
    # and the expansion satisfies the per-pair KKT check of clearing.certificate
    pair = check_certificate(case, agg.result.certificate)
    assert pair.ok, pair.failures
    settlement = round_settlement(case, agg.result)
    settlement.check()


def slow_pro_rata(case: Case, injection, x, grouping) -> dict[tuple[int, int], float]:
    """The rule written out pair by pair, with plain Python floats."""
    groups: dict[int, list[int]] = {}
    for i, g in enumerate(grouping.group):
        groups.setdefault(int(g), []).append(i)
    out = {}
    for s, ps in enumerate(case.peers):
        if not ps.is_producer:
            continue
        for d, pd in enumerate(case.peers):
            if pd.is_producer:
                continue
            gs, gd = int(grouping.group[s]), int(grouping.group[d])
            tot_s = sum(max(float(injection[i]), 0.0) for i in groups[gs])
            tot_d = sum(max(-float(injection[j]), 0.0) for j in groups[gd])
            share_s = max(float(injection[s]), 0.0) / tot_s if tot_s > 0 else 0.0
            share_d = max(-float(injection[d]), 0.0) / tot_d if tot_d > 0 else 0.0
            block = gs * grouping.buyers + (gd - grouping.sellers)
            out[(s, d)] = max(float(x[block]), 0.0) * share_s * share_d
    return out


@settings(max_examples=25, derandomize=True)
@given(seed=st.integers(0, 2**32 - 1))
def test_pro_rata_rule_matches_a_pair_by_pair_reference(seed):
    case = random_case(seed, heat=False)
    spec = make_spec(case, "loss")
    prob = build_aggregate(case, spec)
    rng = np.random.default_rng(seed)
    inj = np.array(
        [rng.uniform(0, p.p_max) if p.is_producer else rng.uniform(p.p_min, 0) for p in case.peers]
    )
    inj[rng.random(inj.size) < 0.2] = 0.0  # some groups inject nothing
    x = rng.uniform(-1e-12, 10.0, prob.elec.blocks)
    src = np.array(
        [
            s
            for s, p in enumerate(case.peers)
            if p.is_producer
            for d, q in enumerate(case.peers)
            if not q.is_producer
        ]
    )
    dst = np.array(
        [
            d
            for s, p in enumerate(case.peers)
            if p.is_producer
            for d, q in enumerate(case.peers)
            if not q.is_producer
        ]
    )
    got = recover_trades(prob.elec, inj, x, src, dst)
    want = slow_pro_rata(case, inj, x, prob.elec)
    for k in range(src.size):
        assert got[k] == pytest.approx(want[(int(src[k]), int(dst[k]))], rel=1e-12, abs=1e-15)


def test_aggregated_certificate_rejects_a_perturbed_solution():
    case = random_case(11, heat=True)
    agg = clear_aggregated(case, "loss")
    assert check_aggregate_certificate(case, agg.certificate).ok
    sol = agg.certificate.solution
    for field, factor in (("P", 1.001), ("pi", 1.001), ("x", 1.01)):
        bad_sol = dataclasses.replace(sol, **{field: getattr(sol, field) * factor})
        bad = dataclasses.replace(agg.certificate, solution=bad_sol)
        assert not check_aggregate_certificate(case, bad).ok, field
    # options that are not the tariff's are named when a model is required
    other = dataclasses.replace(agg.certificate, spec=make_spec(case, "loss", alpha=0.5))
    report = check_aggregate_certificate(case, other, model="loss")
    assert not report.ok and any("alpha" in f for f in report.failures)


def with_partners(case: Case) -> Case:
    """Consumer 0 may buy only from producer 0."""
    producer = next(p for p in case.peers if p.is_producer)
    peers = tuple(
        dataclasses.replace(p, partners=(producer.name,)) if p.name == "C0" else p
        for p in case.peers
    )
    return dataclasses.replace(case, peers=peers)


def test_partner_sets_are_refused_by_the_aggregated_form_and_routed_to_per_pair():
    case = with_partners(random_case(5, heat=False))
    assert restricting_peers(case) == ("C0",)
    with pytest.raises(NotAggregable) as err:
        clear_aggregated(case, "loss")
    assert err.value.peers == ("C0",)
    assert "C0" in str(err.value)
    auto = clear_auto(case, "loss")
    assert auto.form is ClearingForm.PER_PAIR and auto.aggregate is None
    ref = clear(case, "loss")
    np.testing.assert_allclose(auto.result.trades, ref.trades, atol=1e-9)
    assert auto.result.objective == pytest.approx(ref.objective, rel=1e-12)


def test_a_partner_set_listing_every_counterpart_restricts_nothing():
    base = random_case(5, heat=False)
    producers = tuple(p.name for p in base.peers if p.is_producer)
    peers = tuple(
        dataclasses.replace(p, partners=producers) if not p.is_producer else p for p in base.peers
    )
    case = dataclasses.replace(base, peers=peers)
    auto = clear_auto(case, "loss")
    assert auto.form is ClearingForm.AGGREGATED
    assert auto.aggregate is not None and str(auto.aggregate.blocks) in auto.reason


def test_clear_auto_uses_the_aggregated_form_for_all_pairs():
    case = community_case(30, 20, seed=4, grid=True)
    auto = clear_auto(case, "loss")
    assert auto.form is ClearingForm.AGGREGATED
    agg = auto.aggregate
    assert agg is not None
    assert agg.pairs == 21 * 30
    assert agg.blocks < agg.pairs
    assert agg.gap_bound >= 0.0
    ref = clear(case, "loss")
    assert auto.result.objective == pytest.approx(ref.objective, rel=1e-6)


def test_congestion_procedure_runs_on_the_aggregate_clearer():
    case = load_reference_case()  # its line L6 congests in the basic clearing
    clearer = AggregateClearer()
    got = congestion_procedure(case, "congestion", clearer=clearer)
    ref = congestion_procedure(case, "congestion", clearer=Clearer())
    assert [r.penalised for r in got.rounds] == [r.penalised for r in ref.rounds]
    assert got.resolved == ref.resolved
    assert got.final.objective == pytest.approx(ref.final.objective, rel=1e-6)
    assert clearer.last is not None and clearer.last.result is got.final
    agg = clear_aggregated(case, "congestion")  # penalised=None runs the procedure
    assert agg.result.objective == pytest.approx(ref.final.objective, rel=1e-6)


@pytest.mark.parametrize("model", ["heat", "loss+congestion"])
def test_reference_case_agrees(model):
    case = load_reference_case()
    kw = {"penalised": ("L6",)} if "congestion" in model else {}
    assert_agree(case, model, kw)
    agg = clear_aggregated(case, model, **kw)  # CHP units in the heat model
    assert_trades_valid(case, agg.result)
    report = check_certificate(case, agg.result.certificate, model=model)
    assert report.ok, report.failures


def test_aggregate_size_grows_with_buses_not_pairs():
    small = build_aggregate(
        community_case(50, 50, seed=2), make_spec(community_case(50, 50, seed=2), "basic")
    )
    case = community_case(400, 300, seed=2)
    big = build_aggregate(case, make_spec(case, "loss+congestion", penalised=("L6",)))
    assert big.elec.groups <= 2 * 32 and big.elec.blocks <= 32 * 32
    assert small.elec.blocks <= big.elec.blocks
    assert int(big.elec.size.sum()) == 700


def test_ieee33_feeder_data():
    data = ieee33_data()
    assert len(data["lines"]) == 32
    assert sum(data["loads_kw"].values()) == pytest.approx(3715.0)
    net = ieee33_network({})
    assert net.root == "1" and len(net.buses) == 33
    # the farthest bus, 18, is the end of the main trunk
    r = net.pair_resistance(net.bus_indices(["1"] * 33), net.bus_indices(net.buses))
    assert net.buses[int(np.argmax(r))] == "18"


def test_ieee33_feeder_matches_pandapower():
    pn = pytest.importorskip("pandapower.networks")
    ref = pn.case33bw()
    live = ref.line[ref.line.in_service]
    ours = {(ln["from"], ln["to"]): (ln["r_ohm"], ln["x_ohm"]) for ln in ieee33_data()["lines"]}
    assert len(live) == len(ours)
    for row in live.itertuples():
        key = (str(int(row.from_bus) + 1), str(int(row.to_bus) + 1))
        r, x = ours[key]
        assert r == pytest.approx(row.r_ohm_per_km * row.length_km, abs=1e-6)
        assert x == pytest.approx(row.x_ohm_per_km * row.length_km, abs=1e-6)


def test_community_case_is_seeded_and_all_pairs():
    a, b = community_case(40, 30, seed=9), community_case(40, 30, seed=9)
    assert json.dumps(a.to_dict()) == json.dumps(b.to_dict())
    assert json.dumps(a.to_dict()) != json.dumps(community_case(40, 30, seed=10).to_dict())
    assert restricting_peers(a) == ()
    assert all(not math.isnan(p.b) for p in a.peers)


@pytest.mark.parametrize("model", ["loss+congestion", "heat"])
def test_aggregate_certificate_survives_the_plain_round_trip(model):
    case = load_reference_case()
    kw = {"penalised": ("L6",)} if "congestion" in model else {"line_limits": True}
    agg = clear_aggregated(case, model, **kw)
    plain = json.loads(json.dumps(aggregate_certificate_to_plain(agg.certificate)))
    back = aggregate_certificate_from_plain(plain)
    assert back.spec == agg.certificate.spec
    report = check_aggregate_certificate(case, back, model=model)
    assert report.ok, report.failures
    # a flipped value is caught after decoding too
    arrays = plain[-1]
    arrays[0][0] += 10**9  # P of the first peer + 1 kW
    assert not check_aggregate_certificate(case, aggregate_certificate_from_plain(plain)).ok
    with pytest.raises(CertificateError):
        aggregate_certificate_from_plain(plain[:-1])
    with pytest.raises(CertificateError):
        aggregate_certificate_from_plain([*plain[:2], "pairs", *plain[3:]])


def test_aggregate_certificate_size_does_not_grow_with_pairs():
    sizes = []
    for n in (40, 160):
        case = community_case(n, n, seed=3)
        cert = clear_aggregated(case, "basic").certificate
        sizes.append(sum(len(a) for a in aggregate_certificate_to_plain(cert)[-1]))
    # peers grow 4x, pairs 16x: the certificate grows with the peers (and blocks, <= 32²)
    assert sizes[1] < 4 * sizes[0] + 3 * 32 * 32
