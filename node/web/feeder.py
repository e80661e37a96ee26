"""The feeder as the page draws it: bus positions, and a slot's clearing on it.

``feeder_layout`` places a radial network's buses as a tree (depth from the
root across, subtrees down), deterministic, from the published JSON alone.
``clearing_view`` puts a published clearing on that layout:

- each bus's net injection in kW, summed from the slot's settlements
  (Wh over the chain's one-hour slot, so Wh/1000 reads as kW) by the bus
  each account registered at;
- each line's flow from those injections (``clearing.Network.flows``: positive
  downstream, from the root side), its loading against capacity and
  whether it is congested (at or above capacity);
- each peer's price from the clearing's certificate (the dual of its balance,
  π_i), in ticks per kWh.

``clearing_view`` imports ``clearing`` (numpy, cvxpy: seconds the first time):
the gateway runs it in a worker thread.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from node.web.chainview import PublishedClearing

CONGESTED_AT = 1.0 - 1e-6  # loading (|flow| / capacity) counted as congested


def feeder_layout(network: Mapping[str, Any]) -> dict[str, tuple[float, float]]:
    """(x, y) of each bus: x = lines from the root, y = order of the leaves below it.

    Buses the lines do not reach from the root are put in a column of their own.

    >>> feeder_layout({"root": "A", "buses": ["A", "B", "C"],
    ...                "lines": [{"from": "A", "to": "B"}, {"from": "B", "to": "C"}]})
    {'A': (0.0, 0.0), 'B': (1.0, 0.0), 'C': (2.0, 0.0)}
    """
    buses = [str(b) for b in network.get("buses", [])]
    root = str(network.get("root", buses[0] if buses else ""))
    neighbours: dict[str, list[str]] = {b: [] for b in buses}
    for line in network.get("lines", []):
        a, b = str(line.get("from")), str(line.get("to"))
        neighbours.setdefault(a, []).append(b)
        neighbours.setdefault(b, []).append(a)
    position: dict[str, tuple[float, float]] = {}
    next_row = 0.0
    # iterative depth-first walk: a leaf takes the next row, a parent the mean of its children
    stack: list[tuple[str, str | None, int, bool]] = [(root, None, 0, False)]
    children: dict[str, list[str]] = {}
    while stack:
        bus, parent, depth, done = stack.pop()
        if done:
            rows = [position[c][1] for c in children[bus]]
            if rows:
                position[bus] = (float(depth), sum(rows) / len(rows))
            else:
                position[bus] = (float(depth), next_row)
                next_row += 1.0
            continue
        if bus in position or bus in children:
            continue  # a loop in the data: draw each bus once
        children[bus] = [n for n in neighbours.get(bus, []) if n != parent and n not in children]
        stack.append((bus, parent, depth, True))
        stack.extend((c, bus, depth + 1, False) for c in reversed(children[bus]))
    width = max((x for x, _ in position.values()), default=0.0) + 1.0
    for bus in buses:
        if bus not in position:
            position[bus] = (width, next_row)
            next_row += 1.0
    return {bus: position[bus] for bus in buses if bus in position}


def network_view(network_json: str) -> dict[str, Any]:
    """The published network with a layout: buses with (x, y), lines with their ends.

    Raises:
        ValueError: the JSON does not parse or is not an object.
    """
    network = json.loads(network_json)
    if not isinstance(network, dict):
        msg = "the published network is not a JSON object"
        raise ValueError(msg)
    layout = feeder_layout(network)
    return {
        "root": network.get("root"),
        "voltage_kv": network.get("voltage_kv"),
        "buses": [{"name": b, "x": x, "y": y} for b, (x, y) in layout.items()],
        "lines": [
            {
                "name": line.get("name"),
                "from": line.get("from"),
                "to": line.get("to"),
                "capacity_kw": line.get("capacity_kw"),
            }
            for line in network.get("lines", [])
        ],
    }


def clearing_view(
    network_json: str,
    peers: Sequence[Mapping[str, Any]],
    published: PublishedClearing,
    *,
    tick: float,
    slot_hours: float,
) -> dict[str, Any]:
    """A published clearing drawn on the network: injections, flows, congestion, prices.

    Args:
        network_json: the network in force (the published ``SetNetwork`` JSON).
        peers: the node's ``peers`` rows (``account`` bytes, ``name``, ``bus``).
        published: the slot's ``PublishClearing``.
        tick: currency per tick (the chain's units), to turn π into ticks/kWh.
        slot_hours: the chain's slot length in hours, to turn Wh into kW.

    Raises:
        ValueError: the network or the certificate does not decode.
    """
    import numpy as np

    from clearing import network_from_dict
    from clearing.errors import ClearingError
    from ledger.codec import decode
    from ledger.errors import LedgerError

    view = network_view(network_json)
    try:
        net = network_from_dict({**json.loads(network_json), "peer_bus": {}})
        plain = decode(published.certificate, max_size=len(published.certificate))
        model, pi_by_peer = _certificate_prices(plain)
    except (ClearingError, LedgerError) as exc:
        msg = f"cannot read the clearing of slot {published.slot}: {exc}"
        raise ValueError(msg) from exc
    bus_of_account = {bytes(p["account"]): str(p["bus"]) for p in peers}
    bus_of_name = {str(p["name"]): str(p["bus"]) for p in peers}
    name_of_account = {bytes(p["account"]): str(p["name"]) for p in peers}
    injection = dict.fromkeys(net.buses, 0.0)
    settled: list[dict[str, Any]] = []
    for account, energy_wh, payment in published.settlements:
        bus = bus_of_account.get(bytes(account))
        kw = energy_wh / 1000 / slot_hours
        if bus in injection:
            injection[bus] += kw
        settled.append(
            {
                "account": bytes(account).hex(),
                "name": name_of_account.get(bytes(account), ""),
                "bus": bus,
                "energy_wh": energy_wh,
                "payment": payment,
            }
        )
    flows = net.flows(np.array([injection[b] for b in net.buses], dtype=np.float64))
    prices: dict[str, list[dict[str, Any]]] = {}
    for name, pi in pi_by_peer:
        bus = bus_of_name.get(name.split("#", 1)[0])
        if bus is not None:
            prices.setdefault(bus, []).append({"peer": name, "price": float(pi) / tick})
    for bus in view["buses"]:
        name = bus["name"]
        bus["injection_kw"] = injection.get(name, 0.0)
        bus["prices"] = prices.get(name, [])
    for line, flow in zip(view["lines"], flows, strict=True):
        cap = line["capacity_kw"]
        loading = None if cap in (None, 0) else abs(float(flow)) / float(cap)
        line["flow_kw"] = float(flow)
        line["loading"] = loading
        line["congested"] = loading is not None and loading >= CONGESTED_AT
    view.update(
        product=published.product,
        slot=published.slot,
        height=published.height,
        model=model,
        losses_kw=net.losses_kw(flows),
        settlements=settled,
        price_unit="ticks/kWh",
    )
    return view


def _certificate_prices(plain: Any) -> tuple[str, list[tuple[str, float]]]:
    """A published certificate's model and each peer's price π (currency per kWh).

    A slot with prosumers or heat is published in the multi-period form at
    T = 1 (``market.gate_horizon``), whose prices need the case's QP layout:
    it gives the model and no prices; its flows come from the settlements.

    Raises:
        ClearingError: the plain form is neither certificate form.
    """
    from clearing import certificate_from_plain, horizon_certificate_from_plain
    from clearing.errors import ClearingError

    try:
        certificate = certificate_from_plain(plain)
    except ClearingError:
        horizon = horizon_certificate_from_plain(plain)
        return horizon.spec.model.value, []
    pi = certificate.solution.pi
    return certificate.model, [(n, float(v)) for n, v in zip(certificate.names, pi, strict=False)]
