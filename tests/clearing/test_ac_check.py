"""The AC check: pandapower's power flow on a clearing's injections."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from clearing import clear, load_reference_case
from clearing.ac_check import VOLTAGE_BAND, ac_check, format_ac_check
from clearing.importers import case_from_matpower

pytest.importorskip("pandapower")

# The linear losses Σ r (P/V)² use lossless flows at nominal voltage; the AC flow
# carries the losses too and sees voltages a little below 1 p.u. On feeders with
# losses of a few per cent of the load the two agree within this (relative):
LOSSES_TOLERANCE = 0.05
RADIAL6 = Path(__file__).resolve().parent / "data" / "radial6.m"


@pytest.fixture(scope="module")
def reference():
    return load_reference_case()


@pytest.mark.parametrize(("model", "alpha"), [("basic", None), ("loss", 0.005)])
def test_ac_losses_agree_with_the_linear_losses(reference, model, alpha):
    result = clear(reference, model, alpha=alpha)
    check = ac_check(reference, result)
    assert check.linear_losses_kw == pytest.approx(result.losses_kw)
    assert abs(check.losses_gap) < LOSSES_TOLERANCE, check.losses_gap
    # AC flows carry the losses downstream of them: close to the linear flows
    flows = np.array(check.ac_flow_kw) - np.array(check.linear_flow_kw)
    assert np.abs(flows).max() < 0.02 * np.abs(check.linear_flow_kw).max() + 0.1
    # the slack covers the clearing's root injection plus every loss (to within
    # pandapower's mismatch tolerance, 1e-8 MVA per bus)
    assert check.slack_kw == pytest.approx(check.linear_root_kw + check.ac_losses_kw, abs=1e-3)
    lo, hi = VOLTAGE_BAND
    assert lo < min(check.vm_pu) <= max(check.vm_pu) < hi and not check.out_of_band


def test_ac_check_reports_the_congested_lines(reference):
    result = clear(reference, "basic")
    check = ac_check(reference, result)
    assert set(check.overloaded) == set(result.overloaded) == {"L6", "L9"}
    text = format_ac_check(reference, check, "basic")
    assert "AC check (basic)" in text and "lines over their limit in AC: L6, L9" in text
    # summary, the note on overloaded lines, table head and rule, one row per line
    assert len(text.splitlines()) == 1 + 1 + 2 + len(reference.network.lines)


def test_ac_check_on_an_imported_case():
    case = case_from_matpower(RADIAL6)
    check = ac_check(case, clear(case, "basic"))
    assert abs(check.losses_gap) < LOSSES_TOLERANCE
    assert check.buses == case.network.buses and len(check.vm_pu) == 6


def test_heavier_loading_widens_the_gap(reference):
    # The linear losses leave out the voltage drop: the gap grows with the flows.
    light = ac_check(reference, clear(reference, "loss", alpha=0.035))
    heavy = ac_check(reference, clear(reference, "basic"))
    assert heavy.ac_losses_kw > light.ac_losses_kw
    assert heavy.losses_gap > light.losses_gap > 0
