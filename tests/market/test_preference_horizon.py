"""Mode 1's preferences in a slot cleared in the horizon form (a prosumer whose curve spans zero).

The chapter's 20 peers of test_preference_reference plus a PV prosumer X
that may buy or sell: the slot is cleared by the multi-period clearing at
T = 1, and must honour the same partner sets and pair penalties as the
single-slot reference.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from clearing.horizon_case import HorizonCase
from clearing.horizon_certificate import horizon_certificate_from_plain
from clearing.horizon_settle import result_from_horizon_certificate
from ledger.codec import decode
from ledger.keys import SigningKey
from market import transactions as txn
from market.gate_clearing import check_published, clear_job, job_from_state, run_job
from market.gate_horizon import HorizonJob
from tests.market.test_preference_reference import PREMIUM, Chain, mode_1

SLOT = 9
NON_PV = tuple(f"G{i}" for i in range(16, 21))
# C1 buys green only; X refuses the grid; G16 refuses C5
FORBIDDEN = {("C1", g) for g in NON_PV} | {("X", "G20"), ("G16", "C5")}


def prosumer_chain(slot: int = SLOT, *, heat: bool = False) -> Chain:
    """A mode-1 slot with a spanning PV prosumer X and green-only C1, gate(s) closed."""
    chain = Chain()
    chain.keys["X"] = SigningKey.from_seed(b"x" * 32)
    chain.send("X", txn.RegisterPeer("X", "5", "prosumer"))
    chain.send("X", txn.DeclareTechnology("pv"))
    chain.op(mode_1(slot))
    chain.curves(slot)
    chain.send("X", txn.DeclareCurve("electricity", slot, 20_000, 3_000, 0, -30_000, 30_000))
    chain.order("C1", slot, techs="pv")  # green only
    chain.order("X", slot, excluded=["G20"])  # X never trades with the grid
    chain.order("C2", slot, preferred=["G13"])  # G13 first: a premium on everyone else
    chain.order("G16", slot, excluded=["C5"])
    if heat:
        chain.send("G16", txn.DeclareCurve("heat", slot, 0, 500, 0, 0, 5_000))
        chain.send("C1", txn.DeclareCurve("heat", slot, 0, 3_000, 0, -5_000, 0))
    chain.op(txn.CloseSlot("electricity", slot))
    if heat:
        chain.op(txn.CloseSlot("heat", slot))
    return chain


def trades(job: HorizonJob, certificate: bytes) -> tuple[HorizonCase, np.ndarray]:
    plain = decode(certificate, max_size=len(certificate))
    cert = horizon_certificate_from_plain(plain)  # type: ignore[arg-type]
    return job.case, result_from_horizon_certificate(job.case, cert).trade_matrix(0)


def without(job: HorizonJob, *fields: str) -> HorizonJob:
    """The same job with the named preference fields cleared from every peer."""
    empty: dict[str, Any] = {"partners": None, "pair_penalties": ()}
    peers = tuple(replace(p, **{f: empty[f] for f in fields}) for p in job.case.peers)
    return replace(job, case=replace(job.case, peers=peers))


@pytest.fixture(scope="module")
def chain() -> Chain:
    return prosumer_chain()


@pytest.fixture(scope="module")
def published(chain: Chain) -> tuple[HorizonJob, txn.PublishClearing]:
    job = job_from_state(chain.state, "electricity", SLOT, "basic")
    assert isinstance(job, HorizonJob)
    rows, certificate = run_job(job)
    return job, txn.PublishClearing("electricity", SLOT, rows, certificate)


def test_the_horizon_case_carries_the_partner_sets_and_premiums(published):
    job, _ = published
    peers = {p.name: p for p in job.case.peers}
    assert peers["X"].kind.value == "prosumer"
    assert peers["C1"].partners == ("G12", "G13", "G14", "G15", "X")
    assert peers["X"].partners is not None and "G20" not in peers["X"].partners
    assert "C5" not in (peers["G16"].partners or ())
    pens = dict(peers["C2"].pair_penalties)
    assert "G13" not in pens and set(pens) == {p for p in peers if p not in ("C2", "G13")}
    assert all(v == pytest.approx(PREMIUM) for v in pens.values())
    assert peers["C5"].partners is None and peers["C5"].pair_penalties == ()


def test_the_gate_clearing_never_trades_a_forbidden_pair(published):
    job, payload = published
    case, matrix = trades(job, payload.certificate)
    for a, b in FORBIDDEN:
        i, j = case.index(a), case.index(b)
        assert matrix[i, j] == 0.0 and matrix[j, i] == 0.0, (a, b)
    x = case.index("X")
    assert np.abs(matrix[x]).sum() > 1.0  # the prosumer trades
    assert np.abs(matrix[case.index("C1")]).sum() > 1.0  # C1 buys its green power
    assert sum(row[1] for row in payload.settlements) == 0


def test_a_replica_accepts_the_clearing_and_refuses_one_without_the_preferences(chain, published):
    job, payload = published
    assert check_published(chain.state, payload) is None
    forged = without(job, "partners", "pair_penalties")
    rows, cert = run_job(forged)
    case, matrix = trades(forged, cert)
    # cleared as if no order carried a preference, the slot trades a forbidden pair ...
    assert max(abs(matrix[case.index(a), case.index(b)]) for a, b in FORBIDDEN) > 1.0
    # ... so a replica refuses it
    why = check_published(chain.state, txn.PublishClearing("electricity", SLOT, rows, cert))
    assert why is not None


def test_a_clearing_with_the_sets_but_without_the_premiums_is_refused(chain, published):
    job, _ = published
    rows, cert = run_job(without(job, "pair_penalties"))
    why = check_published(chain.state, txn.PublishClearing("electricity", SLOT, rows, cert))
    assert why is not None


def test_a_joint_heat_and_power_slot_is_cleared_without_the_preferences():
    # mode 1's orders speak for electricity; the horizon's partner sets would also
    # bar heat trades (C1 refuses G16's power, not its heat), so the joint slot has none
    chain = prosumer_chain(SLOT + 1, heat=True)
    job = job_from_state(chain.state, "electricity", SLOT + 1, "basic")
    assert isinstance(job, HorizonJob) and job.products == ("electricity", "heat")
    assert all(p.partners is None and not p.pair_penalties for p in job.case.peers)
    rows, cert = clear_job(job)
    heat = {account: energy for account, energy, _ in rows["heat"]}
    assert heat[chain.account("C1")] < -1_000  # C1 buys G16's heat
    assert heat[chain.account("G16")] > 1_000
    for product in ("electricity", "heat"):
        payload = txn.PublishClearing(product, SLOT + 1, rows[product], cert)
        assert check_published(chain.state, payload) is None, product
