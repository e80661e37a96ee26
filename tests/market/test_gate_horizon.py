"""Gate clearing in the horizon form: prosumers, heat and CHP units cleared from the chain."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from clearing import SlotSignals, clear, load_reference_case, reference_case_path
from clearing.chp import ChpRegion
from ledger.codec import decode, encode
from ledger.keys import SigningKey
from market import gate_plan
from market import transactions as txn
from market.accounts import DSO
from market.gate_clearing import check_published, clear_job, job_from_state, run_job
from market.gate_horizon import HorizonJob
from market.state import ExchangeState

CHAIN = "c"
OPERATOR = SigningKey.from_seed(b"o" * 32)
TICK = 0.0001
FEEDER = {
    "voltage_kv": 0.4,
    "root": "B1",
    "buses": ["B1", "B2", "B3"],
    "lines": [
        {"name": "L1", "from": "B1", "to": "B2", "r_ohm": 0.05, "capacity_kw": 500.0},
        {"name": "L2", "from": "B2", "to": "B3", "r_ohm": 0.05, "capacity_kw": 500.0},
    ],
}


class Chain:
    """An in-process chain: the operator and peers applying transactions to one state."""

    def __init__(self, network: dict) -> None:
        self.state = ExchangeState(CHAIN, OPERATOR.public_key_bytes())
        self.state.begin_block(1)
        self.nonces: dict[bytes, int] = {}
        self.keys: dict[str, SigningKey] = {}
        self.operator(txn.SetNetwork(json.dumps(network)))

    def send(self, key: SigningKey, payload) -> txn.Payload:
        nonce = self.nonces[key.public_key_bytes()] = self.nonces.get(key.public_key_bytes(), 0) + 1
        return self.state.apply(txn.make(key, CHAIN, nonce, payload))

    def operator(self, payload):
        out = self.send(OPERATOR, payload)
        assert out.rejected is None, out.rejected
        return out

    def peer(self, name: str, bus: str, role: str) -> bytes:
        key = self.keys[name] = SigningKey.from_seed(name.encode().ljust(32, b"."))
        assert self.send(key, txn.RegisterPeer(name, bus, role)).rejected is None
        return key.account_id

    def declare(self, name: str, payload) -> str | None:
        return self.send(self.keys[name], payload).rejected

    def close(self, slot: int, *products: str) -> None:
        for product in products:
            self.operator(txn.CloseSlot(product, slot))


def rows_by_account(rows) -> dict[bytes, tuple[int, int]]:
    return {account: (energy, money) for account, energy, money in rows}


# ------------------------------------------------------------------ prosumers


def prosumer_market(grid_b: int, prosumer_b: int, slot: int = 2) -> tuple[Chain, dict[str, bytes]]:
    """A producer, a consumer and a prosumer whose curve spans zero (it may buy or sell)."""
    chain = Chain(FEEDER)
    ids = {
        "G": chain.peer("G", "B1", "producer"),
        "C": chain.peer("C", "B3", "consumer"),
        "X": chain.peer("X", "B2", "prosumer"),
    }
    for name, curve in (
        ("G", (100, grid_b, 0, 0, 200_000)),
        ("C", (100, 8_000, 0, -60_000, -20_000)),
        ("X", (200, prosumer_b, 0, -40_000, 40_000)),
    ):
        assert chain.declare(name, txn.DeclareCurve("electricity", slot, *curve)) is None
    chain.close(slot, "electricity")
    return chain, ids


@pytest.mark.parametrize(
    ("grid_b", "prosumer_b", "sells"), [(6_000, 1_000, True), (500, 4_000, False)]
)
def test_a_spanning_prosumer_trades_in_the_gate_clearing(grid_b, prosumer_b, sells):
    chain, ids = prosumer_market(grid_b, prosumer_b)
    assert gate_plan.needs_horizon(chain.state, "electricity", 2)
    job = job_from_state(chain.state, "electricity", 2, "loss")
    assert isinstance(job, HorizonJob) and job.products == ("electricity",)
    assert {p.name: p.kind.value for p in job.case.peers}["X"] == "prosumer"
    rows, certificate = run_job(job)
    energy = rows_by_account(rows)
    assert sum(e for e, _ in energy.values()) == 0
    # the prosumer trades, in the direction its curve asks for: it sells when
    # it is the cheapest source, it buys when the grid-side producer is cheaper
    assert (energy[ids["X"]][0] > 0) is sells and energy[ids["X"]][0] != 0
    assert (energy[ids["X"]][1] > 0) is sells  # a seller is paid, a buyer pays
    assert -60_000 <= energy[ids["C"]][0] <= -20_000
    payload = txn.PublishClearing("electricity", 2, rows, certificate)
    assert check_published(chain.state, payload) is None


def test_a_prosumer_that_does_not_span_zero_keeps_the_single_slot_clearing():
    chain = Chain(FEEDER)
    chain.peer("G", "B1", "producer")
    chain.peer("C", "B3", "consumer")
    chain.peer("X", "B2", "prosumer")
    for name, curve in (
        ("G", (100, 1_000, 0, 0, 200_000)),
        ("C", (100, 8_000, 0, -60_000, -20_000)),
        ("X", (200, 2_000, 0, 0, 40_000)),
    ):
        assert chain.declare(name, txn.DeclareCurve("electricity", 2, *curve)) is None
    chain.close(2, "electricity")
    assert not gate_plan.needs_horizon(chain.state, "electricity", 2)
    job = job_from_state(chain.state, "electricity", 2, "basic")
    assert not isinstance(job, HorizonJob)
    assert {p["name"]: p["role"] for p in job.case["peers"]}["X"] == "producer"


@pytest.fixture(scope="module")
def prosumer_published():
    chain, ids = prosumer_market(6_000, 1_000)
    rows, certificate = run_job(job_from_state(chain.state, "electricity", 2, "basic"))
    return chain, ids, txn.PublishClearing("electricity", 2, rows, certificate)


def test_a_tampered_prosumer_clearing_fails_the_check(prosumer_published):
    chain, _ids, payload = prosumer_published
    state = chain.state
    assert check_published(state, payload) is None
    rows = list(payload.settlements)
    rows[0] = (rows[0][0], rows[0][1], rows[0][2] + 1)  # one tick·Wh more for one peer
    changed = txn.PublishClearing("electricity", 2, tuple(rows), payload.certificate)
    assert check_published(state, changed) == (
        "settlements differ from the certified solution's rounding"
    )
    plain = decode(payload.certificate, max_size=len(payload.certificate))
    plain[8] = [v + 3_000_000_000 for v in plain[8]]  # every primal value 3 units off
    forged = txn.PublishClearing("electricity", 2, payload.settlements, encode(plain))
    assert check_published(state, forged) is not None
    garbage = txn.PublishClearing("electricity", 2, payload.settlements, b"\x93\x01")
    assert check_published(state, garbage) is not None


def test_a_certificate_of_another_kind_or_model_fails_the_check(prosumer_published):
    chain, _ids, payload = prosumer_published
    # the single-slot clearing's certificate (the prosumer left out, as before)
    from clearing import Case, certificate_to_plain

    job = job_from_state(chain.state, "electricity", 2, "basic")
    case = job.case
    peers = [p for p in case.peers if p.name != "X"]
    single = {
        "name": "s",
        "tick": TICK,
        "network": {**FEEDER, "peer_bus": {"G": "B1", "C": "B3"}},
        "peers": [
            {"name": p.name, "role": p.kind.value, "a": 0.00001, "b": p.curve(0).b * TICK}
            | {"p_min": p.curve(0).q_min / 1000, "p_max": p.curve(0).q_max / 1000}
            for p in peers
        ],
    }
    other = clear(Case.from_dict(single), "basic").certificate
    kind = txn.PublishClearing(
        "electricity", 2, payload.settlements, encode(certificate_to_plain(other))
    )
    assert check_published(chain.state, kind) is not None
    # the horizon certificate with another model: the heat model needs heat data
    heat_model = decode(payload.certificate, max_size=len(payload.certificate))
    heat_model[2] = "heat"
    wrong = txn.PublishClearing("electricity", 2, payload.settlements, encode(heat_model))
    assert check_published(chain.state, wrong) is not None


def test_a_certificate_under_another_tariff_fails_the_check():
    chain, _ids = prosumer_market(6_000, 1_000)
    honest_job = job_from_state(chain.state, "electricity", 2, "loss")
    rows, cert = run_job(honest_job)
    assert check_published(chain.state, txn.PublishClearing("electricity", 2, rows, cert)) is None
    # a job built as if alpha were 0.5: optimal for that case, not for the chain's
    forged_case = replace(honest_job.case, signals=(SlotSignals(alpha_milli=500),))
    rows, cert = run_job(replace(honest_job, case=forged_case))
    why = check_published(chain.state, txn.PublishClearing("electricity", 2, rows, cert))
    assert why is not None


# ------------------------------------------------------------------ heat and CHP


def heat_market(
    slot: int, *, close: tuple[str, ...] = ("electricity", "heat"), cleared: bool = False
) -> Chain:
    """The chapter's 20 peers with electricity, heat curves and CHP regions declared for ``slot``.

    ``cleared``: both products of the slot settle as a cleared market (terms set before the gate).
    """
    ref = json.loads(reference_case_path().read_text(encoding="utf-8"))
    chain = Chain({k: v for k, v in ref["network"].items() if k != "peer_bus"})
    if cleared:
        for product in ("electricity", "heat"):
            chain.operator(txn.SetSlotTerms(product, slot, 2_000, 500, "cleared"))
    for p in ref["peers"]:
        chain.peer(p["name"], ref["network"]["peer_bus"][p["name"]], p["role"])
        a, b = round(p["a"] / TICK * 1000), round(p["b"] / TICK)
        lo, hi = round(p["p_min"] * 1000), round(p["p_max"] * 1000)
        assert (
            chain.declare(p["name"], txn.DeclareCurve("electricity", slot, a, b, 0, lo, hi)) is None
        )
        if p.get("heat"):
            h = p["heat"]
            curve = (round(h["a"] / TICK * 1000), round(h["b"] / TICK), 0)
            bounds = (round(h["h_min"] * 1000), round(h["h_max"] * 1000))
            assert chain.declare(p["name"], txn.DeclareCurve("heat", slot, *curve, *bounds)) is None
        if p.get("chp"):
            points = tuple(round(v * 1000) for k in "ABCD" for v in p["chp"][k])
            assert chain.declare(p["name"], txn.DeclareChp(slot, points)) is None
    chain.close(slot, *close)
    return chain


@pytest.fixture(scope="module")
def heat_published():
    chain = heat_market(4)
    job = job_from_state(chain.state, "electricity", 4, "basic")
    rows, certificate = clear_job(job)
    return chain, job, rows, certificate


def test_a_heat_slot_clears_jointly_with_every_chp_inside_its_polygon(heat_published):
    chain, job, rows, _certificate = heat_published
    assert isinstance(job, HorizonJob)
    assert job.model == "heat" and job.products == ("electricity", "heat")
    assert set(rows) == {"electricity", "heat"}
    ref = json.loads(reference_case_path().read_text(encoding="utf-8"))
    by_name = {p["name"]: p for p in ref["peers"]}
    account = {n: chain.keys[n].account_id for n in by_name}
    power, heat = rows_by_account(rows["electricity"]), rows_by_account(rows["heat"])
    for product, got in (("electricity", power), ("heat", heat)):
        assert sum(e for e, _ in got.values()) == 0, product
        assert sum(m for _, m in got.values()) == 0, product  # no heat penalties at alpha = 0
    for name in ("G12", "G13", "G14", "G15"):
        points = by_name[name]["chp"]
        region = ChpRegion(*(tuple(points[k]) for k in "ABCD"))
        p_kw, h_kw = power[account[name]][0] / 1000, heat[account[name]][0] / 1000
        assert region.contains(p_kw, h_kw, tol=2e-3), (name, p_kw, h_kw)
        assert h_kw > 0  # every CHP unit sells heat
        assert heat[account[name]][1] > 0  # and is paid for it
    for name in (f"C{i}" for i in range(1, 12)):
        h = by_name[name]["heat"]
        assert h["h_min"] * 1000 - 1 <= heat[account[name]][0] <= h["h_max"] * 1000 + 1
        assert heat[account[name]][1] < 0  # consumers pay for heat
    # the same dispatch as the chapter's single-slot heat model (offline), to the
    # rounding: half a Wh per trade, and a peer trades with at most 10 others
    offline = clear(load_reference_case(), "heat", alpha=0.0, beta=0.0)  # the chain's tariff
    for i, name in enumerate(offline.names):
        assert power[account[name]][0] == pytest.approx(offline.injection[i] * 1000, abs=5)
        if account[name] in heat:
            assert heat[account[name]][0] == pytest.approx(offline.heat[i] * 1000, abs=5)


def test_replicas_accept_both_products_of_the_joint_clearing(heat_published):
    chain, _job, rows, certificate = heat_published
    for product in ("electricity", "heat"):
        payload = txn.PublishClearing(product, 4, rows[product], certificate)
        assert check_published(chain.state, payload) is None, product
    # each product's rows belong to it: heat rows under electricity fail
    swapped = txn.PublishClearing("electricity", 4, rows["heat"], certificate)
    assert check_published(chain.state, swapped) is not None


def test_a_tampered_heat_clearing_fails_the_check(heat_published):
    chain, _job, rows, certificate = heat_published
    heat = list(rows["heat"])
    heat[0] = (heat[0][0], heat[0][1], heat[0][2] - 5)
    assert check_published(chain.state, txn.PublishClearing("heat", 4, tuple(heat), certificate))
    plain = decode(certificate, max_size=len(certificate))
    plain[2] = "loss+congestion"  # the heat slot cleared without heat
    forged = encode(plain)
    why = check_published(chain.state, txn.PublishClearing("heat", 4, rows["heat"], forged))
    assert why is not None and "heat model" in why


def test_a_joint_slot_is_cleared_only_once_both_gates_are_closed():
    chain = heat_market(5, close=("electricity",))
    state = chain.state
    assert gate_plan.products_cleared_with(state, "electricity", 5) == ("electricity", "heat")
    assert not gate_plan.ready_to_clear(state, "electricity", 5)
    # heat data close with the slot's first gate: none may be added now
    assert chain.declare("C1", txn.DeclareCurve("heat", 5, 0, 1000, 0, -5000, -1000)) == (
        "slot_closed"
    )
    chp = txn.DeclareChp(5, (41000, 0, 35700, 29900, 13400, 17400, 16400, 0))
    assert chain.declare("G12", chp) == "slot_closed"
    early = heat_market(4)  # the same data with both gates closed: a valid clearing
    rows, certificate = clear_job(job_from_state(early.state, "electricity", 4, "basic"))
    payload = txn.PublishClearing("electricity", 5, rows["electricity"], certificate)
    assert "gates are all closed" in (check_published(state, payload) or "")


def test_heat_settlement_moves_money_for_heat():
    chain = heat_market(7, cleared=True)
    state = chain.state
    rows, certificate = clear_job(job_from_state(state, "heat", 7, "basic"))
    for product in ("electricity", "heat"):
        chain.operator(txn.PublishClearing(product, 7, rows[product], certificate))
    assert state.accounts.cleared_rows[("heat", 7)] == rows["heat"]
    for n, (account, energy, _money) in enumerate(rows["heat"]):  # delivered as cleared
        meter = SigningKey.from_seed(bytes([200, n]) * 16)
        chain.operator(txn.RegisterMeter(account, meter.public_key_bytes()))
        assert chain.send(meter, txn.MeterReading("heat", 7, energy)).rejected is None
    before = dict(state.accounts.balances)
    out = chain.operator(txn.SettleSlot("heat", 7))
    assert out.results
    moved = {
        a: state.accounts.balances.get(a, 0) - before.get(a, 0)
        for a in set(state.accounts.balances)
    }
    heat = rows_by_account(rows["heat"])
    assert all(moved[a] == money for a, (_e, money) in heat.items())  # no imbalance
    sellers = [a for a, (e, _) in heat.items() if e > 0]
    assert sellers and all(moved[a] > 0 for a in sellers)  # the CHP owners are paid for heat
    assert sum(moved.values()) == 0  # money moved, none created
    assert state.accounts.conserved()
    assert moved.get(DSO, 0) == 0  # heat carries no loss or congestion penalty


# ------------------------------------------------------------------ declarations


def test_chp_declarations_are_checked_and_close_with_the_first_gate():
    chain = Chain(FEEDER)
    chain.peer("P", "B2", "producer")
    chain.peer("C", "B3", "consumer")
    chain.peer("N", "B1", "grid")
    good = (41000, 0, 35700, 29900, 13400, 17400, 16400, 0)
    assert chain.declare("C", txn.DeclareChp(1, good)) == "role_not_permitted"
    assert chain.declare("N", txn.DeclareChp(1, good)) == "role_not_permitted"
    crossed = (0, 0, 10, 10, 10, 0, 0, 10)
    assert chain.declare("P", txn.DeclareChp(1, crossed)) == "invalid_chp"
    assert chain.declare("P", txn.DeclareChp(1, good)) is None
    assert gate_plan.has_heat(chain.state, 1)
    chain.close(1, "electricity")
    assert chain.declare("P", txn.DeclareChp(1, good)) == "slot_closed"
    assert chain.declare("C", txn.DeclareCurve("heat", 1, 0, 100, 0, -10, 0)) == "slot_closed"
