"""``p2pex clear`` with standard grid data, the AC check and plots (in process)."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.cli.main import main

RADIAL6 = Path(__file__).resolve().parents[1] / "clearing" / "data" / "radial6.m"


def test_clear_a_matpower_case_with_the_ac_check(capsys):
    pytest.importorskip("pandapower")
    assert main(["clear", "--matpower", str(RADIAL6), "--model", "basic", "--ac-check"]) == 0
    out = capsys.readouterr().out
    assert "Case: MATPOWER radial6" in out
    assert "Electricity trades P_ij (basic)" in out
    assert "AC check (basic)" in out and "losses AC" in out


def test_clear_a_simbench_grid(capsys):
    pytest.importorskip("simbench")
    code = "1-LV-rural1--0-sw"
    assert main(["clear", "--simbench", code, "--time-step", "16464", "--model", "loss"]) == 0
    out = capsys.readouterr().out
    assert f"Case: SimBench {code} step 16464" in out
    assert "sgen0" in out and "Electricity trades P_ij (loss)" in out


def test_clear_needs_exactly_one_source(capsys):
    assert main(["clear"]) == 1
    assert "give exactly one of CASE or --matpower" in capsys.readouterr().err
    assert main(["clear", "reference", "--matpower", str(RADIAL6)]) == 1
    assert "give exactly one of" in capsys.readouterr().err


def test_clear_import_errors_are_one_line(capsys, tmp_path):
    assert main(["clear", "--matpower", str(tmp_path / "missing.m")]) == 1
    assert capsys.readouterr().err.startswith("p2pex: error: cannot read MATPOWER file")
    bad = tmp_path / "typo.json"
    bad.write_text('{"peers": [], "network": {}, "tarif": {}}', encoding="utf-8")
    assert main(["clear", str(bad)]) == 1
    assert "unknown field 'tarif' (did you mean 'tariff'?)" in capsys.readouterr().err


def test_clear_plot_into_an_unwritable_place_is_an_error(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    assert main(["clear", "reference", "--model", "basic", "--plot", str(blocker / "d")]) == 1
    assert "p2pex: error: cannot write plots into" in capsys.readouterr().err


def test_help_names_the_sources_and_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["clear", "--help"])
    out = capsys.readouterr().out
    for word in ("--matpower", "--pandapower", "--simbench", "--ac-check", "default: 16464"):
        assert word in out
