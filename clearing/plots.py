"""Optional matplotlib plots: flows on the feeder, and losses against α.

matplotlib is an optional dependency (the ``plot`` extra); it is imported
only when a plot is requested.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from clearing.case import Case
from clearing.errors import InvalidOption
from clearing.market import clear, congestion_procedure, pool_dispatch
from clearing.report import ALPHAS_MILLI
from clearing.solve import Clearer


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError as exc:
        msg = "plots need matplotlib: pip install 'p2pex[plot]'"
        raise InvalidOption(msg) from exc
    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def _bus_positions(case: Case) -> dict[str, tuple[float, float]]:
    """Lay the tree out: depth on x, leaves spread on y."""
    net = case.network
    children: dict[str, list[str]] = {b: [] for b in net.buses}
    for li in range(len(net.lines)):
        children[net.parent_bus(li)].append(net.child_bus(li))
    pos: dict[str, tuple[float, float]] = {}
    next_y = [0.0]

    def place(bus: str, depth: int) -> float:
        kids = children[bus]
        if not kids:
            y = next_y[0]
            next_y[0] += 1.0
        else:
            y = float(np.mean([place(k, depth + 1) for k in kids]))
        pos[bus] = (float(depth), -y)
        return y

    place(net.root, 0)
    return pos


def save_plots(case: Case, directory: Path, *, clearer: Clearer | None = None) -> list[Path]:
    """Save ``flows.png`` (basic vs after β on the feeder) and ``losses_alpha.png``.

    Returns:
        The written paths.
    """
    plt = _pyplot()
    clearer = Clearer() if clearer is None else clearer
    directory.mkdir(parents=True, exist_ok=True)
    net = case.network
    pos = _bus_positions(case)
    basic = clear(case, "basic", clearer=clearer)
    after = congestion_procedure(case, clearer=clearer).final
    fig, axes = plt.subplots(1, 2, figsize=(13, 5), sharey=True)
    for ax, result, title in ((axes[0], basic, "basic P2P"), (axes[1], after, "after beta")):
        for li, line in enumerate(net.lines):
            (x0, y0), (x1, y1) = pos[net.parent_bus(li)], pos[net.child_bus(li)]
            over = line.name in result.congested
            ax.plot([x0, x1], [y0, y1], color="red" if over else "gray", lw=1 + 4 * over)
            label = f"{line.name}: {result.flows[li]:.0f}/{line.capacity_kw:g} kW"
            ax.annotate(
                label,
                ((x0 + x1) / 2, (y0 + y1) / 2),
                fontsize=7,
                ha="center",
                xytext=(0, -11),
                textcoords="offset points",
                color="darkred" if over else "black",
            )
        for bus, (x, y) in pos.items():
            peers = [p for p, b in net.peer_bus.items() if b == bus and p in case.names]
            ax.plot(x, y, "o", color="black")
            ax.annotate(f"{bus}: {' '.join(peers)}", (x, y), fontsize=7, xytext=(3, 5),
                        textcoords="offset points")  # fmt: skip
        ax.set_title(f"{title}: losses {result.losses_kw:.2f} kW")
        ax.set_axis_off()
    flows_path = directory / "flows.png"
    fig.savefig(flows_path, dpi=120, bbox_inches="tight")
    plt.close(fig)

    losses = [
        clear(case, "loss", alpha=a / 1000.0, clearer=clearer).losses_kw for a in ALPHAS_MILLI
    ]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(ALPHAS_MILLI, losses, "o-", label="P2P with loss penalty")
    if case.grid_peer() is not None:
        ax.axhline(pool_dispatch(case, clearer=clearer).losses_kw, color="red", ls="--",
                   label="pool-based")  # fmt: skip
    ax.set_xlabel(f"alpha (10^-3 {case.currency}/(kWh*ohm))")
    ax.set_ylabel("losses (kW)")
    ax.legend()
    losses_path = directory / "losses_alpha.png"
    fig.savefig(losses_path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return [flows_path, losses_path]
