"""Optional plots of the clearing asked for: flows on the feeder, and losses against α.

What is drawn is first computed as plain data (:func:`feeder_panels`,
:func:`loss_curve`), so that tests compare the data and the drawing stays a
thin layer. The plots follow the question: ``model``, ``alpha`` and ``beta``
choose the clearings drawn, and the asked α is marked on the loss curve.

matplotlib (the ``plot`` extra) is imported only when a plot is drawn. The
feeder is laid out by networkx (also in the ``plot`` extra) when it is
installed, so that a 100-bus feeder stays readable; without it a simple
tree layout is used. Large feeders drop per-line labels for a colour scale
of line loading and label only the congested lines.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from clearing.case import Case
from clearing.errors import InvalidOption
from clearing.market import clear, congestion_procedure, pool_dispatch
from clearing.network import Network
from clearing.result import ClearingResult
from clearing.solve import Clearer
from clearing.spec import Model, parse_model
from clearing.sweep import loss_sweep, sweep_alphas

LABEL_LIMIT = 25  # above this many lines, label only congested lines (and no peers)
Position = tuple[float, float]


@dataclass(frozen=True, slots=True)
class FeederPanel:
    """One clearing drawn on the feeder.

    Attributes:
        title: The panel title (model and the penalties used).
        flows_kw: Line flows in kW (network order), positive downstream.
        loading: ``|flow| / capacity`` per line (0 for unlimited lines).
        overloaded: Lines over capacity.
        losses_kw: The clearing's linear losses.
    """

    title: str
    flows_kw: tuple[float, ...]
    loading: tuple[float, ...]
    overloaded: tuple[str, ...]
    losses_kw: float


@dataclass(frozen=True, slots=True)
class LossCurve:
    """Losses of the loss model against α (table 12.2), with the asked α marked.

    Attributes:
        alphas_milli: α values in 10^-3 currency/(kWh·Ω).
        losses_kw: Losses at each α.
        asked_milli: The α the question used (``None`` when its model has no α).
        pool_kw: The pool baseline's losses, ``None`` without a main grid.
    """

    alphas_milli: tuple[float, ...]
    losses_kw: tuple[float, ...]
    asked_milli: float | None
    pool_kw: float | None


def _milli(value: float | None) -> str:
    return "tariff" if value is None else f"{value * 1000:g}e-3"


def asked_clearings(
    case: Case,
    *,
    model: str = "all",
    alpha: float | None = None,
    beta: float | None = None,
    clearer: Clearer | None = None,
) -> list[tuple[str, ClearingResult]]:
    """Return the clearings the question asks for, with their panel titles.

    ``all``: the basic market and the congestion procedure's final clearing
    with ``beta`` (as the report's tables); one model: that model with
    ``alpha`` and ``beta`` (currency units; ``None`` = the case tariff).

    Raises:
        InvalidOption: Unknown model.
        ClearingError: From the clearings.
    """
    clearer = Clearer() if clearer is None else clearer
    if model == "all":
        basic = clear(case, "basic", clearer=clearer)
        after = congestion_procedure(case, beta=beta, clearer=clearer).final
        return [("basic P2P", basic), (f"after beta = {_milli(beta)}", after)]
    m = parse_model(model)
    result = clear(case, m.value, alpha=alpha, beta=beta, clearer=clearer)
    uses_alpha = m in (Model.LOSS, Model.LOSS_CONGESTION) or (m is Model.HEAT and alpha is not None)
    uses_beta = m in (Model.CONGESTION, Model.LOSS_CONGESTION) or (
        m is Model.HEAT and beta is not None
    )
    terms = [f"alpha = {_milli(alpha)}"] * uses_alpha + [f"beta = {_milli(beta)}"] * uses_beta
    return [(f"{m.value}" + (f" ({', '.join(terms)})" if terms else ""), result)]


def feeder_panels(
    case: Case, clearings: Sequence[tuple[str, ClearingResult]]
) -> tuple[FeederPanel, ...]:
    """Return the data of one feeder panel per clearing."""
    caps = case.network.capacities()
    panels = []
    for title, result in clearings:
        flows = np.asarray(result.flows, dtype=np.float64)
        loading = np.where(np.isfinite(caps), np.abs(flows) / caps, 0.0)
        panels.append(
            FeederPanel(
                title=f"{title}: losses {result.losses_kw:.2f} kW",
                flows_kw=tuple(float(f) for f in flows),
                loading=tuple(float(x) for x in loading),
                overloaded=result.overloaded,
                losses_kw=result.losses_kw,
            )
        )
    return tuple(panels)


def loss_curve(
    case: Case,
    *,
    model: str = "all",
    alpha: float | None = None,
    clearer: Clearer | None = None,
) -> LossCurve:
    """Return the losses-against-α data, with the asked α added and marked.

    The asked α is the one ``model`` uses: ``alpha`` (or the case tariff)
    for ``loss``, ``loss+congestion`` and ``all``; for ``heat`` only when
    given; none for ``basic`` and ``congestion``.
    """
    clearer = Clearer() if clearer is None else clearer
    asked: float | None = None
    if model in ("all", Model.LOSS.value, Model.LOSS_CONGESTION.value) or (
        model == Model.HEAT.value and alpha is not None
    ):
        asked = (case.alpha if alpha is None else alpha) * 1000.0
    alphas = sweep_alphas(asked)
    pool = None
    if case.grid_peer() is not None:
        pool = pool_dispatch(case, clearer=clearer).losses_kw
    return LossCurve(alphas, loss_sweep(case, alphas, clearer=clearer), asked, pool)


def _tree_layout(net: Network) -> dict[str, Position]:
    """Lay the tree out without networkx: depth on x, leaves spread on y."""
    children: dict[str, list[str]] = {b: [] for b in net.buses}
    for li in range(len(net.lines)):
        children[net.parent_bus(li)].append(net.child_bus(li))
    pos: dict[str, Position] = {}
    next_y = 0.0
    # Iterative post-order, so that deep feeders do not hit the recursion limit.
    stack: list[tuple[str, int, bool]] = [(net.root, 0, False)]
    while stack:
        bus, depth, done = stack.pop()
        kids = children[bus]
        if not kids:
            pos[bus] = (float(depth), -next_y)
            next_y += 1.0
        elif done:
            pos[bus] = (float(depth), float(np.mean([pos[k][1] for k in kids])))
        else:
            stack.append((bus, depth, True))
            stack.extend((k, depth + 1, False) for k in reversed(kids))
    return pos


def feeder_layout(net: Network) -> dict[str, Position]:
    """Return a position per bus: networkx's Kamada-Kawai layout, or a tree layout.

    Kamada-Kawai places buses by their graph distance, which spreads a
    long, branchy feeder over the page instead of stacking its leaves in one
    column. It is deterministic (it starts from a fixed circular layout), so
    the same case gives the same image.
    """
    try:
        # through importlib: networkx ships no type stubs, so it stays Any here
        nx: Any = importlib.import_module("networkx")
    except ImportError:
        return _tree_layout(net)
    if len(net.buses) <= 2:
        return _tree_layout(net)
    graph = nx.Graph()
    graph.add_nodes_from(net.buses)
    graph.add_edges_from((ln.from_bus, ln.to_bus) for ln in net.lines)
    raw: Mapping[str, Any] = nx.kamada_kawai_layout(graph)
    return {bus: (float(raw[bus][0]), float(raw[bus][1])) for bus in net.buses}


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError as exc:
        msg = "plots need matplotlib: pip install 'p2pex[plot]'"
        raise InvalidOption(msg) from exc
    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def _draw_panel(ax: Any, case: Case, panel: FeederPanel, pos: Mapping[str, Position]) -> Any:
    """Draw one panel; return the line collection (for the colour bar)."""
    import matplotlib
    from matplotlib.collections import LineCollection

    net = case.network
    small = len(net.lines) <= LABEL_LIMIT
    segments = [(pos[net.parent_bus(li)], pos[net.child_bus(li)]) for li in range(len(net.lines))]
    loading = np.asarray(panel.loading)
    over = np.array([ln.name in panel.overloaded for ln in net.lines], dtype=bool)
    # loading 0-1 on viridis, anything over capacity in red (the colour bar's "over" end)
    cmap = matplotlib.colormaps["viridis"].with_extremes(over="red")
    widths = 1.0 + 3.0 * np.minimum(loading, 1.5)
    lines = LineCollection(segments, cmap=cmap, linewidths=widths)
    lines.set_array(loading)
    lines.set_clim(0.0, 1.0)
    ax.add_collection(lines)
    for li, line in enumerate(net.lines):
        if not (small or over[li]):
            continue
        (x0, y0), (x1, y1) = segments[li]
        cap = "" if math.isinf(line.capacity_kw) else f"/{line.capacity_kw:g}"
        ax.annotate(
            f"{line.name}: {panel.flows_kw[li]:.0f}{cap} kW",
            ((x0 + x1) / 2, (y0 + y1) / 2),
            fontsize=7 if small else 6,
            ha="center",
            xytext=(0, -10),
            textcoords="offset points",
            color="darkred" if over[li] else "black",
        )
    names = set(case.names)
    peers_at: dict[str, list[str]] = {b: [] for b in net.buses}
    for peer, bus in net.peer_bus.items():
        if peer in names:
            peers_at[bus].append(peer)
    xy = np.array([pos[b] for b in net.buses])
    sizes = np.array([12.0 + 6.0 * min(len(peers_at[b]), 6) for b in net.buses])
    ax.scatter(xy[:, 0], xy[:, 1], s=sizes if small else sizes / 2, color="black", zorder=3)
    for bus in net.buses:
        if small or bus == net.root:
            label = f"{bus}: {' '.join(peers_at[bus])}" if small else f"{bus} (root)"
            ax.annotate(label, pos[bus], fontsize=7, xytext=(3, 5), textcoords="offset points")
    ax.set_title(panel.title, fontsize=9)
    ax.autoscale()
    ax.set_axis_off()
    return lines


def save_plots(
    case: Case,
    directory: Path,
    *,
    model: str = "all",
    alpha: float | None = None,
    beta: float | None = None,
    clearer: Clearer | None = None,
) -> list[Path]:
    """Save ``flows.png`` (the asked clearings on the feeder) and ``losses_alpha.png``.

    Args:
        case: The case.
        directory: Where to write (created if missing).
        model: ``all`` (basic and after β) or one model, as in the report.
        alpha, beta: Penalties in currency units (``None`` = the case tariff).
        clearer: Re-use compiled models.

    Returns:
        The written paths.

    Raises:
        InvalidOption: matplotlib missing, or the directory cannot be written.
        ClearingError: From the clearings.
    """
    plt = _pyplot()
    clearer = Clearer() if clearer is None else clearer
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        msg = f"cannot write plots into {str(directory)!r}: {exc.strerror or exc}"
        raise InvalidOption(msg) from exc
    clearings = asked_clearings(case, model=model, alpha=alpha, beta=beta, clearer=clearer)
    panels = feeder_panels(case, clearings)
    pos = feeder_layout(case.network)
    side = 5.0 + 0.6 * math.sqrt(len(case.network.buses))
    fig, axes = plt.subplots(1, len(panels), figsize=(side * len(panels) + 1.0, side))
    axes = np.atleast_1d(axes)
    drawn = None
    for ax, panel in zip(axes, panels, strict=True):
        drawn = _draw_panel(ax, case, panel, pos)
    fig.colorbar(drawn, ax=list(axes), shrink=0.6, extend="max",
                 label="line loading |flow| / capacity (red: over)")  # fmt: skip
    fig.suptitle(case.name, fontsize=10)
    paths = [directory / "flows.png", directory / "losses_alpha.png"]
    _save(fig, paths[0], plt)

    curve = loss_curve(case, model=model, alpha=alpha, clearer=clearer)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(curve.alphas_milli, curve.losses_kw, "o-", label="P2P with loss penalty")
    if curve.asked_milli is not None:
        k = curve.alphas_milli.index(curve.asked_milli)
        ax.plot([curve.asked_milli], [curve.losses_kw[k]], "*", color="darkorange",
                markersize=14, label=f"asked: alpha = {curve.asked_milli:g}")  # fmt: skip
    if curve.pool_kw is not None:
        ax.axhline(curve.pool_kw, color="red", ls="--", label="pool-based")
    ax.set_xlabel(f"alpha (10^-3 {case.currency}/(kWh*ohm))")
    ax.set_ylabel("losses (kW)")
    ax.legend()
    _save(fig, paths[1], plt)
    return paths


def _save(fig: Any, path: Path, plt: Any) -> None:
    try:
        fig.savefig(path, dpi=120, bbox_inches="tight")
    except OSError as exc:
        msg = f"cannot write {str(path)!r}: {exc.strerror or exc}"
        raise InvalidOption(msg) from exc
    finally:
        plt.close(fig)
