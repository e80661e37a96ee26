"""The chain's state as a clearing case, the published result and its check (in-process)."""

from __future__ import annotations

import json

import pytest

from clearing import reference_case_path
from ledger.codec import decode, encode
from ledger.keys import SigningKey
from market import transactions as txn
from market.gate_clearing import check_published, job_from_state, run_job
from market.state import ExchangeState

CHAIN = "c"
OPERATOR = SigningKey.from_seed(b"o" * 32)


def reference_market(slot: int) -> ExchangeState:
    """The chapter's 20 peers registered with their curves for ``slot``, gate closed."""
    ref = json.loads(reference_case_path().read_text(encoding="utf-8"))
    network = {k: v for k, v in ref["network"].items() if k != "peer_bus"}
    state = ExchangeState(CHAIN, OPERATOR.public_key_bytes())
    state.begin_block(1)
    nonce = iter(range(1, 100))
    state.apply(txn.make(OPERATOR, CHAIN, next(nonce), txn.SetNetwork(json.dumps(network))))
    for i, p in enumerate(ref["peers"]):
        key = SigningKey.from_seed(bytes([i + 1]) * 32)
        role = "grid" if p["role"] == "grid" else p["role"]
        bus = ref["network"]["peer_bus"][p["name"]]
        state.apply(txn.make(key, CHAIN, 1, txn.RegisterPeer(p["name"], bus, role)))
        a, b = round(p["a"] / 0.0001 * 1000), round(p["b"] / 0.0001)
        curve = txn.DeclareCurve(
            "electricity", slot, a, b, 0, round(p["p_min"] * 1000), round(p["p_max"] * 1000)
        )
        assert state.apply(txn.make(key, CHAIN, 2, curve)).results == []
    state.apply(txn.make(OPERATOR, CHAIN, next(nonce), txn.CloseSlot("electricity", slot)))
    return state


@pytest.fixture(scope="module")
def published():
    state = reference_market(7)
    job = job_from_state(state, "electricity", 7, "basic")
    rows, certificate = run_job(job)
    return state, txn.PublishClearing("electricity", 7, rows, certificate)


def test_job_maps_every_declared_curve_to_a_peer():
    state = reference_market(3)
    job = job_from_state(state, "electricity", 3, "basic")
    assert len(job.case["peers"]) == 20
    assert set(job.accounts.values()) == set(state.curves[("electricity", 3)])
    c1 = next(p for p in job.case["peers"] if p["name"] == "C1")
    assert c1["role"] == "consumer" and c1["p_min"] == -42.0 and c1["b"] == pytest.approx(0.384)


def test_published_clearing_balances_and_checks(published):
    state, payload = published
    assert sum(row[1] for row in payload.settlements) == 0
    assert any(row[1] > 0 for row in payload.settlements)
    assert check_published(state, payload) is None


def test_tampered_certificate_or_settlements_fail_the_check(published):
    state, payload = published
    plain = decode(payload.certificate, max_size=len(payload.certificate))
    arrays = plain[-1]
    arrays[1] = [v + 5_000_000_000 for v in arrays[1]]  # shift every trade by 5 kW
    forged = txn.PublishClearing("electricity", 7, payload.settlements, encode(plain))
    assert check_published(state, forged) is not None
    rows = list(payload.settlements)
    rows[0] = (rows[0][0], rows[0][1] + 1000, rows[0][2])
    unbalanced = txn.PublishClearing("electricity", 7, tuple(rows), payload.certificate)
    assert check_published(state, unbalanced) == (
        "settlements differ from the certified solution's rounding"
    )
    first, second, *rest = payload.settlements
    swapped = (second, first, *rest)  # balanced, but not what the solution gives
    reordered = txn.PublishClearing("electricity", 7, swapped, payload.certificate)
    assert check_published(state, reordered) is not None
    garbage = txn.PublishClearing("electricity", 7, payload.settlements, b"\x93\x01")
    assert check_published(state, garbage) is not None


def test_case_helpers_are_the_inverse_of_the_job_mapping():
    from clearing import load_reference_case
    from market.gate_clearing import curve_for_peer, network_for_case

    case = load_reference_case()
    state = ExchangeState(CHAIN, OPERATOR.public_key_bytes())
    state.begin_block(1)
    state.apply(txn.make(OPERATOR, CHAIN, 1, network_for_case(case)))
    for i, peer in enumerate(case.peers):
        key = SigningKey.from_seed(bytes([i + 1]) * 32)
        bus = case.network.bus_of(peer.name)
        state.apply(txn.make(key, CHAIN, 1, txn.RegisterPeer(peer.name, bus, peer.role.value)))
        assert state.apply(txn.make(key, CHAIN, 2, curve_for_peer(peer, 9))).results == []
    state.apply(txn.make(OPERATOR, CHAIN, 2, txn.CloseSlot("electricity", 9)))
    job = job_from_state(state, "electricity", 9, "basic")
    by_name = {p["name"]: p for p in job.case["peers"]}
    for peer in case.peers:
        got = by_name[peer.name]
        assert got["p_min"] == pytest.approx(peer.p_min) and got["b"] == pytest.approx(peer.b)
    assert job.case["network"]["peer_bus"]["G20"] == case.network.bus_of("G20")


def test_a_clearing_under_another_tariff_fails_the_check():
    state = reference_market(5)  # the chain's tariff is alpha = beta = 0
    job = job_from_state(state, "electricity", 5, "loss")
    honest_rows, honest_cert = run_job(job)
    honest = txn.PublishClearing("electricity", 5, honest_rows, honest_cert)
    assert check_published(state, honest) is None
    forged_case = {**job.case, "tariff": {"alpha": 0.05, "beta": 0.0}}
    forged_job = type(job)(job.product, job.slot, "loss", forged_case, job.accounts)
    rows, cert = run_job(forged_job)
    forged = txn.PublishClearing("electricity", 5, rows, cert)
    why = check_published(state, forged)
    assert why is not None and "options" in why
