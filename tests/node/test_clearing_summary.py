"""``p2pex clearing``'s certificate summary reads both certificate kinds on the chain."""

from __future__ import annotations

from market.gate_clearing import job_from_state, run_job
from node.cli.operator import certificate_summary
from tests.market.test_gate_clearing import reference_market
from tests.market.test_gate_horizon import heat_market, prosumer_market


def test_the_summary_of_a_horizon_form_certificate():
    chain, _ids = prosumer_market(6_000, 1_000)
    _rows, certificate = run_job(job_from_state(chain.state, "electricity", 2, "loss"))
    summary = certificate_summary(certificate)
    assert summary["model"] == "loss" and sorted(summary["peers"]) == ["C", "G", "X"]
    assert summary["heat"] is False and summary["congested"] == []
    heat = heat_market(3)
    _rows, certificate = run_job(job_from_state(heat.state, "heat", 3, "basic"))
    assert certificate_summary(certificate)["heat"] is True
    # and the single-slot form as before
    single = reference_market(8)
    _rows, certificate = run_job(job_from_state(single, "electricity", 8, "basic"))
    summary = certificate_summary(certificate)
    assert summary["model"] == "basic" and len(summary["price"]) == 20
