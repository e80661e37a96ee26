"""Plots that follow the question, and the report / plots modules without a cycle."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import numpy as np
import pytest

from clearing import Case, Line, Network, Peer, Role, load_reference_case
from clearing.command import run_clear_command
from clearing.plots import asked_clearings, feeder_layout, feeder_panels, loss_curve

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def reference():
    return load_reference_case()


def test_plotted_data_follows_the_model(reference):
    basic = feeder_panels(reference, asked_clearings(reference, model="basic"))
    loss = feeder_panels(reference, asked_clearings(reference, model="loss", alpha=0.03))
    assert basic[0].title.startswith("basic:") and "alpha = 30e-3" in loss[0].title
    assert basic[0].overloaded == ("L6", "L9") and loss[0].overloaded == ()
    assert not np.allclose(basic[0].flows_kw, loss[0].flows_kw)
    everything = asked_clearings(reference, model="all", beta=0.005)
    assert [t for t, _ in everything] == ["basic P2P", "after beta = 5e-3"]


def test_loss_curve_marks_the_asked_alpha(reference):
    curve = loss_curve(reference, model="loss", alpha=0.0075)
    assert curve.asked_milli == 7.5 and 7.5 in curve.alphas_milli
    assert curve.pool_kw is not None and curve.pool_kw > max(curve.losses_kw)
    assert loss_curve(reference, model="basic").asked_milli is None


def test_plot_images_differ_when_the_question_differs(tmp_path):
    pytest.importorskip("matplotlib")

    def images(name, **kw):
        run_clear_command("reference", plot_dir=str(tmp_path / name), **kw)
        return [(tmp_path / name / f).read_bytes() for f in ("flows.png", "losses_alpha.png")]

    basic = images("basic", model="basic")
    again = images("again", model="basic")
    loss = images("loss", model="loss", alpha_milli=30.0)
    loss10 = images("loss10", model="loss", alpha_milli=10.0)
    assert basic == again  # same question, same bytes
    assert basic[0] != loss[0] and loss[0] != loss10[0]
    assert basic[1] != loss[1] and loss[1] != loss10[1]


def test_unwritable_plot_directory_is_a_clear_error(tmp_path):
    pytest.importorskip("matplotlib")
    from clearing import InvalidOption

    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    with pytest.raises(InvalidOption, match="cannot write plots into"):
        run_clear_command("reference", model="basic", plot_dir=str(blocker / "sub"))


def feeder_100() -> Case:
    """A 100-bus feeder: a trunk of 20 buses with laterals of 4 (seeded shape, no randomness)."""
    buses = [f"b{i}" for i in range(100)]
    lines = []
    for i in range(1, 100):
        parent = i - 1 if i < 20 or i % 4 != 0 else (i // 4) % 20
        lines.append(Line(f"L{i}", buses[parent], buses[i], 0.05, 0.02, 80.0))
    peer_bus = {"grid": "b0", **{f"C{i}": f"b{i}" for i in range(1, 100)}}
    peers = [Peer("grid", Role.GRID, 1e-4, 0.1, 0.0, 0.0, 5000.0)]
    peers += [Peer(f"C{i}", Role.CONSUMER, 0.01, 0.3, 0.0, -10.0, -5.0) for i in range(1, 100)]
    return Case("100-bus", Network(0.4, "b0", tuple(buses), tuple(lines), peer_bus), tuple(peers))


def test_layout_spreads_a_100_bus_feeder():
    pytest.importorskip("networkx")
    case = feeder_100()
    pos = feeder_layout(case.network)
    xy = np.array([pos[b] for b in case.network.buses])
    gaps = np.linalg.norm(xy[:, None] - xy[None, :], axis=-1) + np.eye(len(xy)) * 1e9
    span = np.ptp(xy, axis=0).max()
    # no two buses on top of each other: the closest pair is at least 1/200 of the drawing
    assert gaps.min() > span / 200
    assert all(math.isfinite(v) for p in pos.values() for v in p)


def test_a_100_bus_feeder_is_drawn(tmp_path):
    pytest.importorskip("matplotlib")
    from clearing.plots import save_plots

    paths = save_plots(feeder_100(), tmp_path, model="basic")
    assert all(p.stat().st_size > 10_000 for p in paths)


def imports_of(module: str) -> set[str]:
    tree = ast.parse((ROOT / "clearing" / f"{module}.py").read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return found


@pytest.mark.parametrize(
    ("module", "never"),
    [
        ("report", {"clearing.plots", "clearing.command", "clearing.ac_check"}),
        ("plots", {"clearing.report", "clearing.command", "clearing.ac_check"}),
        ("ac_check", {"clearing.report", "clearing.plots", "clearing.command"}),
        ("sweep", {"clearing.report", "clearing.plots", "clearing.command"}),
    ],
)
def test_report_and_plots_do_not_import_each_other(module, never):
    assert imports_of(module) & never == set()
