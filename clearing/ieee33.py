"""Seeded community markets on the IEEE 33-bus radial feeder.

The feeder is the 33-bus distribution system of Baran and Wu (1989): 12.66
kV, 32 normally-closed lines (the five normally-open tie lines are left out,
so the network is radial), line resistances and reactances and the bus loads
as published. The data ship as ``clearing/cases/ieee33bw.json``.

:func:`community_case` puts ``n_consumers`` households and ``n_producers``
small producers on its buses by a seeded, documented rule (see there), every
pair allowed to trade: the workload of the aggregated clearing
(:mod:`clearing.aggregate`).
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import numpy as np

from clearing.case import Case, Peer, Role
from clearing.errors import InvalidOption
from clearing.network import Line, Network

FEEDER_FILE = "ieee33bw.json"


def ieee33_data() -> dict[str, Any]:
    """Return the shipped 33-bus data: ``voltage_kv``, ``root``, ``lines``, ``loads_kw``."""
    text = resources.files("clearing").joinpath("cases", FEEDER_FILE).read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def ieee33_network(peer_bus: dict[str, str], *, capacity_kw: float | None = None) -> Network:
    """Return the 33-bus feeder with ``peer_bus`` placing the peers.

    Lines are named ``L<to bus>`` (``L2`` feeds bus 2, ...), the root is bus
    ``"1"`` (the substation).

    Args:
        peer_bus: Peer name -> bus name (``"1"`` to ``"33"``).
        capacity_kw: One capacity for every line; ``None`` = unlimited.
    """
    data = ieee33_data()
    cap = float("inf") if capacity_kw is None else float(capacity_kw)
    lines = tuple(
        Line(
            name=f"L{ln['to']}",
            from_bus=str(ln["from"]),
            to_bus=str(ln["to"]),
            r_ohm=float(ln["r_ohm"]),
            x_ohm=float(ln["x_ohm"]),
            capacity_kw=cap,
        )
        for ln in data["lines"]
    )
    buses = tuple(str(b) for b in range(1, len(lines) + 2))
    return Network(
        voltage_kv=float(data["voltage_kv"]),
        root=str(data["root"]),
        buses=buses,
        lines=lines,
        peer_bus=dict(peer_bus),
    )


def community_case(
    n_consumers: int,
    n_producers: int,
    *,
    seed: int,
    grid: bool = False,
    alpha: float = 0.002,
    beta: float = 0.01,
    capacity_kw: float | None = None,
) -> Case:
    """Return a seeded all-pairs community on the 33-bus feeder.

    Rule (numpy ``default_rng(seed)``, drawn in this order):

    - each consumer sits on a load bus (2-33) drawn with probability
      proportional to the bus's published load; each producer on a load bus
      drawn uniformly;
    - a consumer is a household of peak demand ``D ~ U(2, 10)`` kW
      (bounds ``[-D, 0]``), willingness to pay ``b ~ U(0.25, 0.45)``
      currency/kWh falling by ``a ~ U(0.01, 0.05)`` per kW;
    - a producer (rooftop PV, small CHP) has capacity ``U(2, 10)`` kW,
      marginal cost ``b ~ U(0.03, 0.20)`` rising by ``a ~ U(0.005, 0.03)``;
    - with ``grid``, a main-grid peer at the root (``b = 0.30``,
      ``a = 1e-5``, up to 10 MW) is added last.

    Every peer may trade with every other (no partner sets), and the tariff
    is ``alpha`` (currency/(kWh·Ω)) and ``beta`` (currency/kWh).

    Raises:
        InvalidOption: If a count is below 1.
    """
    if n_consumers < 1 or n_producers < 1:
        msg = f"need at least one consumer and one producer, got {n_consumers}, {n_producers}"
        raise InvalidOption(msg)
    rng = np.random.default_rng(seed)
    data = ieee33_data()
    load_buses = sorted(data["loads_kw"], key=int)
    weight = np.array([data["loads_kw"][b] for b in load_buses], dtype=np.float64)
    c_bus = rng.choice(len(load_buses), size=n_consumers, p=weight / weight.sum())
    p_bus = rng.integers(0, len(load_buses), size=n_producers)
    demand = rng.uniform(2.0, 10.0, n_consumers)
    c_b = rng.uniform(0.25, 0.45, n_consumers)
    c_a = rng.uniform(0.01, 0.05, n_consumers)
    cap = rng.uniform(2.0, 10.0, n_producers)
    p_b = rng.uniform(0.03, 0.20, n_producers)
    p_a = rng.uniform(0.005, 0.03, n_producers)
    peers: list[Peer] = []
    peer_bus: dict[str, str] = {}
    for i in range(n_consumers):
        name = f"C{i + 1}"
        peers.append(
            Peer(name, Role.CONSUMER, float(c_a[i]), float(c_b[i]), 0.0, -float(demand[i]), 0.0)
        )
        peer_bus[name] = load_buses[int(c_bus[i])]
    for i in range(n_producers):
        name = f"G{i + 1}"
        peers.append(
            Peer(name, Role.PRODUCER, float(p_a[i]), float(p_b[i]), 0.0, 0.0, float(cap[i]))
        )
        peer_bus[name] = load_buses[int(p_bus[i])]
    if grid:
        peers.append(Peer("grid", Role.GRID, 1e-5, 0.30, 0.0, 0.0, 10_000.0))
        peer_bus["grid"] = str(data["root"])
    return Case(
        name=f"community {n_consumers} x {n_producers} on the IEEE 33-bus feeder (seed {seed})",
        network=ieee33_network(peer_bus, capacity_kw=capacity_kw),
        peers=tuple(peers),
        alpha=alpha,
        beta=beta,
    )
