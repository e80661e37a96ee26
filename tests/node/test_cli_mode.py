"""``p2pex operator mode``: the SetSlotMode it computes from a case (--print: no node)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from clearing import load_reference_case
from market.grid_terms import slot_mode
from market.units import Units
from node.cli.main import main


def printed(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    assert main(["operator", "mode", "--case", "reference", "--print", *argv]) == 0
    data: dict[str, Any] = json.loads(capsys.readouterr().out)
    return data


def test_mode_3_prints_the_grid_terms_of_the_case(capsys: pytest.CaptureFixture[str]) -> None:
    got = printed(capsys, "--slot", "3", "--mode", "3", "--penalised", "L6")
    case = load_reference_case()
    want = slot_mode(
        case.network,
        product="electricity",
        slot=3,
        mode=3,
        alpha=case.alpha,
        beta=case.beta,
        penalised=["L6"],
        units=Units(case.tick, case.slot_hours),
    )
    assert got["seller_charge"] == list(want.seller_charge)
    assert got["buyer_charge"] == list(want.seller_charge)
    assert got["seller_charge"][6] == 214  # bus 1 -> bus 7 across L6 (see test_grid_terms)
    assert (got["slot"], got["mode"], got["parent"]) == (3, 3, [])


def test_mode_4_prints_parents_and_capacities(capsys: pytest.CaptureFixture[str]) -> None:
    got = printed(capsys, "--slot", "1", "--mode", "4", "--approval")
    assert got["parent"] == [-1, 0, 1, 2, 3, 4, 2, 6, 7, 1, 9]
    assert got["capacity"][6] == 110_000  # L6 (bus 3 -> 7): 110 kW over a 1-hour slot
    assert got["approval"] is True
    assert got["seller_charge"] == []


def test_bad_line_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["operator", "mode", "--case", "reference", "--print", "--slot", "1", "--mode", "3"]
    assert main([*argv, "--penalised", "L99"]) != 0
    assert "unknown line 'L99'" in capsys.readouterr().err
