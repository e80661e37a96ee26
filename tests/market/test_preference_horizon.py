"""Mode 1's preferences in a slot cleared in the horizon form.

The chapter's 20 peers of test_preference_reference plus a PV prosumer X
that may buy or sell: the slot is cleared by the multi-period clearing at
T = 1, and must honour the same partner sets and pair penalties as the
single-slot reference. A slot with a CHP unit is cleared jointly with heat:
the power orders' preferences bind power trades only, the heat slot's (when
it is in mode 1 too) heat trades.
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
    empty: dict[str, Any] = {"partners": None, "pair_penalties": (), "heat_terms": None}
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


# ------------------------------------------------------ joint heat and power slots
# G16 (label chp) runs a CHP unit, K1 (G17) a dearer heat boiler; C1 and C2 buy heat
CHP = (41_000, 0, 35_700, 29_900, 13_400, 17_400, 16_400, 0)


def heat_order(chain: Chain, name: str, slot: int, *, techs="", excluded=()) -> None:
    """A resting heat bid (1 tick, nothing crosses) refusing ``excluded``."""
    coid = chain.nonces.get(chain.keys[name].public_key_bytes(), 0) + 1
    common = ("heat", slot, "bid", 1, 1_000, "GTC", 0, False, "", coid)
    refused = b"".join(chain.account(x) for x in excluded)
    chain.send(name, txn.PlacePreferredOrder(*common, techs, b"", refused, -1))


def chp_chain(slot: int, *, heat_prefs: bool = False) -> Chain:
    """A mode-1 power slot with a CHP unit (G16) and green-only C1, cleared with heat.

    ``heat_prefs`` puts the heat slot in mode 1 too, with C1 refusing G16's heat
    and C2 taking heat from CHP-labelled peers only, among them G18, whose
    only heat data is a CHP region.
    """
    chain = Chain()
    chain.op(mode_1(slot))
    chain.curves(slot)
    chain.send("G16", txn.DeclareChp(slot, CHP))
    chain.send("G16", txn.DeclareCurve("heat", slot, 4_000, 300, 0, 0, 20_000))
    chain.send("G17", txn.DeclareCurve("heat", slot, 4_000, 900, 0, 0, 20_000))
    chain.send("C1", txn.DeclareCurve("heat", slot, 20_000, 3_000, 0, -10_000, 0))
    chain.send("C2", txn.DeclareCurve("heat", slot, 20_000, 3_000, 0, -10_000, 0))
    chain.order("C1", slot, techs="pv")  # green power only: not G16's (chp) power
    chain.order("G16", slot, excluded=["C5"])
    if heat_prefs:
        chain.op(replace(mode_1(slot), product="heat"))
        heat_order(chain, "C1", slot, excluded=["G16"])
        chain.send("G18", txn.DeclareChp(slot, CHP))
        heat_order(chain, "C2", slot, techs="chp")
    chain.op(txn.CloseSlot("electricity", slot))
    chain.op(txn.CloseSlot("heat", slot))
    return chain


def heat_matrix(job: HorizonJob, certificate: bytes) -> np.ndarray:
    plain = decode(certificate, max_size=len(certificate))
    cert = horizon_certificate_from_plain(plain)  # type: ignore[arg-type]
    result = result_from_horizon_certificate(job.case, cert)
    assert result.heat_trades is not None
    n = len(job.case.peers)
    out = np.zeros((n, n))
    np.add.at(out, (result.h_src, result.h_dst), result.heat_trades[0])
    return out


def refused(chain: Chain, slot: int, job: HorizonJob) -> list[str | None]:
    """What a replica says of ``job``'s clearing, per product (None: accepted)."""
    rows, cert = clear_job(job)
    return [
        check_published(chain.state, txn.PublishClearing(product, slot, rows[product], cert))
        for product in ("electricity", "heat")
    ]


@pytest.fixture(scope="module")
def chp_slot() -> tuple[Chain, HorizonJob, dict, bytes]:
    chain = chp_chain(SLOT + 1)
    job = job_from_state(chain.state, "electricity", SLOT + 1, "basic")
    assert isinstance(job, HorizonJob) and job.products == ("electricity", "heat")
    rows, cert = clear_job(job)
    return chain, job, rows, cert


def test_a_joint_slot_restricts_power_by_the_power_orders_and_leaves_heat_free(chp_slot):
    chain, job, rows, cert = chp_slot
    peers = {p.name: p for p in job.case.peers}
    assert peers["C1"].partners == ("G12", "G13", "G14", "G15")
    assert peers["C1"].heat_terms is not None and peers["C1"].heat_partners is None
    assert "C5" not in (peers["G16"].partners or ()) and peers["G16"].heat_partners is None
    assert peers["C2"].heat_terms is None  # no terms for either product: as before
    case, power = trades(job, cert)
    heat = heat_matrix(job, cert)
    c1, g16 = case.index("C1"), case.index("G16")
    for seller in NON_PV:  # C1 never buys power from the CHP unit (nor the grid) ...
        assert power[case.index(seller), c1] == 0.0
    assert power[g16].sum() > 1.0  # ... which sells power to others
    assert heat[g16, c1] > 1.0  # C1 buys the CHP unit's heat
    by_account = {account: energy for account, energy, _ in rows["heat"]}
    assert by_account[chain.account("C1")] < -1_000


def test_a_replica_accepts_the_joint_clearing_and_refuses_one_without_the_preferences(chp_slot):
    chain, job, rows, cert = chp_slot
    for product in ("electricity", "heat"):
        payload = txn.PublishClearing(product, SLOT + 1, rows[product], cert)
        assert check_published(chain.state, payload) is None, product
    # cleared as if no order carried a preference: C1 buys power that is not green
    plain = without(job, "partners", "pair_penalties", "heat_terms")
    case, power = trades(plain, run_job(plain)[1])
    assert max(power[case.index(seller), case.index("C1")] for seller in NON_PV) > 1.0
    assert all(why is not None for why in refused(chain, SLOT + 1, plain))
    # the power sets on heat too (no heat terms): C1 gets no heat, and is refused
    on_heat = without(job, "heat_terms")
    assert heat_matrix(on_heat, run_job(on_heat)[1])[:, case.index("C1")].sum() == 0.0
    assert all(why is not None for why in refused(chain, SLOT + 1, on_heat))


def test_a_heat_slot_in_mode_1_applies_the_heat_orders_to_heat_trades():
    chain = chp_chain(SLOT + 2, heat_prefs=True)
    job = job_from_state(chain.state, "heat", SLOT + 2, "basic")
    assert isinstance(job, HorizonJob) and job.products == ("electricity", "heat")
    peers = {p.name: p for p in job.case.peers}
    assert peers["C1"].partners == ("G12", "G13", "G14", "G15")  # power: green only
    heat_partners = peers["C1"].heat_partners
    assert heat_partners is not None and "G16" not in heat_partners and "G17" in heat_partners
    # a CHP unit's owner trades heat without a heat curve, and keeps its label
    assert peers["C2"].heat_partners == ("G16", "G17", "G18")
    assert peers["C2"].partners is None and peers["C2"].pair_penalties == ()
    rows, cert = clear_job(job)
    case = job.case
    heat = heat_matrix(job, cert)
    c1, g16 = case.index("C1"), case.index("G16")
    assert heat[g16, c1] == 0.0 and heat[:, c1].sum() > 1.0  # C1 buys heat, not G16's
    c2 = case.index("C2")
    assert heat[:, c2].sum() > 1.0 and heat[g16, c2] + heat[case.index("G18"), c2] > 1.0
    for product in ("electricity", "heat"):
        payload = txn.PublishClearing(product, SLOT + 2, rows[product], cert)
        assert check_published(chain.state, payload) is None, product
    # a clearing that frees C1's heat (the power slot's terms only) is refused
    free = without(job, "heat_terms")
    assert all(why is not None for why in refused(chain, SLOT + 2, free))
