"""The ``p2pex clear`` report, the CLI wiring and the plots."""

from __future__ import annotations

import json

import pytest

from clearing import InvalidOption, format_case_report, load_reference_case
from clearing.command import run_clear_command
from node.cli.main import main
from tests.clearing.helpers import two_peer_case


@pytest.fixture(scope="module")
def report():
    return format_case_report(load_reference_case())


def test_report_has_the_chapter_tables(report):
    for title in ("Table 12.1", "Table 12.2", "Congestion procedure", "Table 12.3", "Table 12.4"):
        assert title in report
    assert "pool-based" in report and "alpha = 35" in report
    assert "L6,L9" in report and "resolved" in report


def test_single_model_report():
    text = format_case_report(two_peer_case(), model="basic")
    assert "Electricity trades P_ij (basic)" in text
    assert "50.0" in text  # the hand-solved trade
    with pytest.raises(InvalidOption):
        format_case_report(two_peer_case(), model="nope")


def test_cli_clear_prints_and_reports_errors(tmp_path, capsys):
    path = tmp_path / "two.json"
    path.write_text(json.dumps(two_peer_case().to_dict()), encoding="utf-8")
    assert main(["clear", str(path), "--model", "loss", "--alpha", "250"]) == 0
    out = capsys.readouterr().out
    assert "Electricity trades P_ij (loss)" in out
    assert main(["clear", str(tmp_path / "missing.json")]) == 1
    assert "p2pex: error: cannot read case file" in capsys.readouterr().err
    assert main(["clear", str(path), "--alpha", "-1"]) == 1
    assert "--alpha must be" in capsys.readouterr().err


def test_plots_are_written(tmp_path):
    pytest.importorskip("matplotlib")
    text = run_clear_command("reference", model="basic", plot_dir=str(tmp_path / "plots"))
    assert (tmp_path / "plots" / "flows.png").stat().st_size > 1000
    assert (tmp_path / "plots" / "losses_alpha.png").stat().st_size > 1000
    assert "Plots:" in text
