"""Mode 1's reference clearing honours the orders' preferences (partner sets, pair penalties)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clearing import Case, certificate_from_plain, reference_case_path, result_from_certificate
from ledger.codec import decode
from ledger.keys import SigningKey
from market import transactions as txn
from market.gate_clearing import check_published, job_from_state, run_job
from market.preference_reference import PREFERENCE_PREMIUM
from market.state import ExchangeState

CHAIN = "c"
OPERATOR = SigningKey.from_seed(b"o" * 32)
SLOT = 7
BUSES = [str(b) for b in range(1, 12)]
LABELS = {f"G{i}": "pv" for i in range(12, 16)} | {f"G{i}": "chp" for i in range(16, 20)}
LABELS["G20"] = "grid"
PREMIUM = PREFERENCE_PREMIUM * 0.0001  # currency/kWh at the chain's tick


class Chain:
    """The chapter's 20 peers on a state machine, each with its own key and nonces."""

    def __init__(self) -> None:
        ref = json.loads(reference_case_path().read_text(encoding="utf-8"))
        self.ref = ref
        self.state = ExchangeState(CHAIN, OPERATOR.public_key_bytes())
        self.state.begin_block(1)
        self.nonces: dict[bytes, int] = {}
        self.keys = {
            p["name"]: SigningKey.from_seed(bytes([i + 1]) * 32) for i, p in enumerate(ref["peers"])
        }
        self.txs: list[txn.SignedTransaction] = []
        network = {k: v for k, v in ref["network"].items() if k != "peer_bus"}
        self.op(txn.SetNetwork(json.dumps(network)))
        for p in ref["peers"]:
            bus = ref["network"]["peer_bus"][p["name"]]
            self.send(p["name"], txn.RegisterPeer(p["name"], bus, p["role"]))
            self.send(p["name"], txn.DeclareTechnology(LABELS.get(p["name"], "load")))

    def account(self, name: str) -> bytes:
        return self.keys[name].account_id

    def send(self, name: str, payload: Any) -> Any:
        return self._apply(self.keys[name], payload)

    def op(self, payload: Any) -> Any:
        return self._apply(OPERATOR, payload)

    def _apply(self, key: SigningKey, payload: Any) -> Any:
        pk = key.public_key_bytes()
        self.nonces[pk] = self.nonces.get(pk, 0) + 1
        signed = txn.make(key, CHAIN, self.nonces[pk], payload)
        self.txs.append(signed)
        out = self.state.apply(signed)
        assert out.rejected is None, out.rejected
        return out

    def curves(self, slot: int) -> None:
        for p in self.ref["peers"]:
            a, b = round(p["a"] / 0.0001 * 1000), round(p["b"] / 0.0001)
            lo, hi = round(p["p_min"] * 1000), round(p["p_max"] * 1000)
            self.send(p["name"], txn.DeclareCurve("electricity", slot, a, b, 0, lo, hi))

    def order(self, name: str, slot: int, *, techs="", preferred=(), excluded=(), limit=-1) -> None:
        """A resting order: bids at 1 tick, asks at 9,000 (nothing crosses)."""
        bid = name.startswith("C")
        coid = self.nonces.get(self.keys[name].public_key_bytes(), 0) + 1
        common = ("electricity", slot, "bid" if bid else "ask", 1 if bid else 9_000, 1_000)
        common += ("GTC", 0, False, "", coid)
        if not (techs or preferred or excluded or limit >= 0):
            self.send(name, txn.PlaceOrder(*common))
            return
        ids = [b"".join(self.account(x) for x in names) for names in (preferred, excluded)]
        self.send(name, txn.PlacePreferredOrder(*common, techs, ids[0], ids[1], limit))


def mode_1(slot: int) -> txn.SetSlotMode:
    # distance: how many bus numbers apart (a stand-in for R_ij in the grid's unit)
    n = len(BUSES)
    distance = tuple(abs(i - j) for i in range(n) for j in range(n))
    return txn.SetSlotMode(
        "electricity", slot, 1, ",".join(BUSES), (), (), (), (), (), distance, False
    )


def preference_market(slot: int = SLOT) -> Chain:
    """A mode-1 slot where several peers restrict or differentiate their partners, gate closed."""
    chain = Chain()
    chain.op(mode_1(slot))
    chain.curves(slot)
    chain.order("C1", slot, techs="pv")  # green only
    chain.order("C2", slot, excluded=["G20"], preferred=["G13"])  # no grid; G13 first
    chain.order("C3", slot, techs="pv")  # part green only ...
    chain.order("C3", slot)  # ... part anyone
    chain.order("C4", slot, limit=1)  # within one bus number
    chain.order("G16", slot, excluded=["C5"])
    chain.order("C6", slot)  # a plain order in mode 1: accepts anyone
    chain.op(txn.CloseSlot("electricity", slot))
    return chain


# the pairs the preferences above forbid, by hand (C4 sits at bus 4: buses 3-5 are G15, G12, G13)
FORBIDDEN = (
    {("C1", g) for g in ("G16", "G17", "G18", "G19", "G20")}
    | {("C2", "G20")}
    | {("C4", f"G{i}") for i in (14, 16, 17, 18, 19, 20)}
    | {("G16", "C5")}
)


def peers_of(case: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in case["peers"]}


@pytest.fixture(scope="module")
def chain() -> Chain:
    return preference_market()


@pytest.fixture(scope="module")
def published(chain: Chain) -> tuple[Any, txn.PublishClearing]:
    job = job_from_state(chain.state, "electricity", SLOT, "basic")
    rows, certificate = run_job(job)
    return job, txn.PublishClearing("electricity", SLOT, rows, certificate)


def test_the_case_carries_partner_sets_and_pair_penalties(chain):
    peers = peers_of(job_from_state(chain.state, "electricity", SLOT, "basic").case)
    assert peers["C1"]["partners"] == ["G12", "G13", "G14", "G15"]
    assert "pair_penalties" not in peers["C1"]  # every order of C1 accepts the same peers
    assert "G20" not in peers["C2"]["partners"] and "G12" in peers["C2"]["partners"]
    # C2 names G13 as preferred: every other partner carries the premium
    assert set(peers["C2"]["pair_penalties"]) == set(peers["C2"]["partners"]) - {"G13"}
    assert "partners" not in peers["C3"]  # its plain order accepts anyone ...
    # ... but its green-only one refuses what is not PV: a premium, not a ban
    non_pv = {f"G{i}" for i in range(16, 21)}
    assert non_pv <= set(peers["C3"]["pair_penalties"])
    assert not {f"G{i}" for i in range(12, 16)} & set(peers["C3"]["pair_penalties"])
    assert all(v == pytest.approx(PREMIUM) for v in peers["C3"]["pair_penalties"].values())
    assert peers["C4"]["partners"] == ["C3", "C5", "G12", "G13", "G15"]
    assert "C5" not in peers["G16"]["partners"]
    for name in ("C5", "C6", "G12", "G20"):  # no preference: no set, no premium
        assert "partners" not in peers[name] and "pair_penalties" not in peers[name]


def test_the_reference_never_trades_a_forbidden_pair(chain, published):
    job, payload = published
    case = Case.from_dict(job.case)
    cert = certificate_from_plain(decode(payload.certificate, max_size=len(payload.certificate)))
    trades = result_from_certificate(case, cert).trades
    for a, b in FORBIDDEN:
        i, j = case.index(a), case.index(b)
        assert trades[i, j] == 0.0 and trades[j, i] == 0.0, (a, b)
    assert np.abs(trades).sum() > 0
    # the settlements name only accounts of the case, and balance
    assert sum(row[1] for row in payload.settlements) == 0


def test_a_replica_accepts_the_clearing_and_refuses_one_without_the_preferences(chain, published):
    job, payload = published
    assert check_published(chain.state, payload) is None
    # the same slot cleared as if the orders had carried no preference
    plain = dict(job.case)
    plain["peers"] = [
        {k: v for k, v in p.items() if k not in ("partners", "pair_penalties")}
        for p in job.case["peers"]
    ]
    forged_job = type(job)(job.product, job.slot, job.model, plain, job.accounts)
    rows, cert = run_job(forged_job)
    # that clearing does trade a pair the preferences forbid ...
    case = Case.from_dict(plain)
    decoded = certificate_from_plain(decode(cert, max_size=len(cert)))
    trades = result_from_certificate(case, decoded).trades
    assert any(trades[case.index(a), case.index(b)] != 0 for a, b in FORBIDDEN)
    # ... so a replica refuses it
    why = check_published(chain.state, txn.PublishClearing("electricity", SLOT, rows, cert))
    assert why is not None


def test_a_clearing_with_the_sets_but_without_the_premiums_is_refused(chain, published):
    job, _ = published
    case = dict(job.case)
    case["peers"] = [
        {k: v for k, v in p.items() if k != "pair_penalties"} for p in job.case["peers"]
    ]
    rows, cert = run_job(type(job)(job.product, job.slot, job.model, case, job.accounts))
    why = check_published(chain.state, txn.PublishClearing("electricity", SLOT, rows, cert))
    assert why is not None


def test_a_replica_derives_the_same_case_and_a_late_label_changes_nothing(chain):
    again = ExchangeState(CHAIN, OPERATOR.public_key_bytes())
    again.begin_block(1)
    for signed in chain.txs:
        assert again.apply(signed).rejected is None
    mine = job_from_state(chain.state, "electricity", SLOT, "basic")
    theirs = job_from_state(again, "electricity", SLOT, "basic")
    assert json.dumps(mine.case, sort_keys=True) == json.dumps(theirs.case, sort_keys=True)
    assert again.state_digest() == chain.state.state_digest()
    # G16 calls itself PV after the gate closed: the closed slot keeps its labels
    late = preference_market(SLOT + 1)
    before = job_from_state(late.state, "electricity", SLOT + 1, "basic").case
    digest = late.state.state_digest()
    late.send("G17", txn.DeclareTechnology("pv"))
    assert late.state.state_digest() != digest
    after = job_from_state(late.state, "electricity", SLOT + 1, "basic").case
    assert after == before


def test_orders_outside_mode_1_leave_the_case_as_it_was():
    chain = Chain()
    chain.curves(3)
    chain.order("C1", 3)  # a plain order in a slot with no mode
    chain.op(txn.CloseSlot("electricity", 3))
    job = job_from_state(chain.state, "electricity", 3, "basic")
    assert not any("partners" in p or "pair_penalties" in p for p in job.case["peers"])
    # a mode-1 slot with plain orders only: everyone accepts everyone
    chain.op(mode_1(4))
    chain.curves(4)
    chain.order("C1", 4)
    chain.order("G12", 4)
    chain.op(txn.CloseSlot("electricity", 4))
    job = job_from_state(chain.state, "electricity", 4, "basic")
    assert not any("partners" in p or "pair_penalties" in p for p in job.case["peers"])


# ------------------------------------------------------------------ against a naive reading

NAMES = [f"C{i}" for i in range(1, 12)] + [f"G{i}" for i in range(12, 21)]

order_specs = st.fixed_dictionaries(
    {
        "techs": st.sampled_from(["", "pv", "pv,chp", "grid", "load"]),
        "preferred": st.lists(st.sampled_from(NAMES), max_size=2, unique=True),
        "excluded": st.lists(st.sampled_from(NAMES), max_size=3, unique=True),
        "limit": st.sampled_from([-1, 0, 2, 5]),
    }
)


def naive_accepts(order: dict[str, Any], me: str, other: str, bus: dict[str, str]) -> bool:
    """What one order accepts, read straight from its fields (12.2.2's mode 1)."""
    label = LABELS.get(other, "load")
    if other in order["excluded"]:
        return False
    if order["techs"] and label not in order["techs"].split(","):
        return False
    return order["limit"] < 0 or abs(int(bus[me]) - int(bus[other])) <= order["limit"]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(
        st.sampled_from(NAMES), st.lists(order_specs, min_size=1, max_size=3), max_size=6
    )
)
def test_partner_sets_and_penalties_follow_a_naive_reading_of_the_orders(orders):
    chain = Chain()
    chain.op(mode_1(2))
    chain.curves(2)
    for name, specs in sorted(orders.items()):
        for spec in specs:
            own = [x for x in spec["preferred"] if x != name]
            bad = [x for x in spec["excluded"] if x != name]
            chain.order(
                name, 2, techs=spec["techs"], preferred=own, excluded=bad, limit=spec["limit"]
            )
    chain.op(txn.CloseSlot("electricity", 2))
    peers = peers_of(job_from_state(chain.state, "electricity", 2, "basic").case)
    bus = chain.ref["network"]["peer_bus"]
    for name in NAMES:
        specs = [
            {**s, "excluded": [x for x in s["excluded"] if x != name]} for s in orders.get(name, [])
        ]
        others = [x for x in NAMES if x != name]
        ok = {x: [naive_accepts(s, name, x, bus) for s in specs] for x in others}
        accepted = sorted(x for x in others if any(ok[x]))
        want_partners = None if not specs or len(accepted) == len(others) else accepted
        assert peers[name].get("partners") == want_partners, name
        preferred = {x for s in specs for x in s["preferred"] if x != name}
        want_pens = {x for x in accepted if not all(ok[x]) or (preferred and x not in preferred)}
        assert set(peers[name].get("pair_penalties", {})) == want_pens, name


def test_a_case_with_the_same_orders_gets_what_the_chain_derives():
    from clearing import load_reference_case
    from market.preference_reference import case_with_preferences
    from orderbook.grid import Preferences

    chain = Chain()
    chain.op(mode_1(5))
    chain.curves(5)
    placed = {"C1": ["pv", ""], "C2": ["pv"], "C7": ["pv,chp", "grid"], "G16": ["load"]}
    for name, techs in placed.items():
        for t in techs:
            chain.order(name, 5, techs=t)
    chain.op(txn.CloseSlot("electricity", 5))
    derived = peers_of(job_from_state(chain.state, "electricity", 5, "basic").case)
    orders = {
        name: [Preferences(frozenset(t.split(",")) if t else None) for t in techs]
        for name, techs in placed.items()
    }
    labels = {name: LABELS.get(name, "load") for name in NAMES}
    case = case_with_preferences(load_reference_case(), orders, labels)
    for peer in case.peers:
        want = derived[peer.name]
        got_partners = None if peer.partners is None else list(peer.partners)
        assert got_partners == want.get("partners"), peer.name
        assert dict(peer.pair_penalties) == pytest.approx(want.get("pair_penalties", {}))
    assert case.peers[case.index("C1")].pair_penalties  # green for part of its orders
    assert case.peers[case.index("C2")].partners == ("G12", "G13", "G14", "G15")
