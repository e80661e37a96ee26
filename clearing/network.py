"""A radial distribution network: paths, R_ij (12.11), θ_ij (12.15), flows and losses.

Lines are stored as given and oriented from the root for all computations:
the *parent* end of a line is the one nearer the root bus. A line flow is in
kW, positive from the parent end to the child end (downstream), and equals
minus the net injection of the subtree below the line (the network is
lossless inside the market; losses are computed afterwards, as in the
chapter). Losses of a line are ``r_l (P_l / V)^2``: with ``P_l`` the
three-phase power in kW and ``V`` the line-to-line voltage in kV this is
``3 r I^2`` at unity power factor, in W (divided by 1000 for kW).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from clearing.errors import InvalidNetwork, NonRadialNetwork, UnknownBus
from clearing.fields import LINE_FIELDS, NETWORK_FIELDS, check_fields

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class Line:
    """A distribution line.

    Attributes:
        name: Unique line name (e.g. ``"L6"``).
        from_bus: One end.
        to_bus: The other end (orientation is recomputed from the root).
        r_ohm: Series resistance in ohm (per phase), ``>= 0``.
        x_ohm: Series reactance in ohm (per phase); kept for documentation and plots.
        capacity_kw: Thermal limit in kW (three-phase active power), ``> 0``;
            ``math.inf`` for an unlimited line.
    """

    name: str
    from_bus: str
    to_bus: str
    r_ohm: float
    x_ohm: float
    capacity_kw: float = math.inf


@dataclass(frozen=True, slots=True)
class _Topology:
    """Index arrays of a validated tree (built once per network)."""

    bus_index: dict[str, int]
    line_index: dict[str, int]
    parent: IntArray  # (B,) parent bus of each bus, -1 at the root
    parent_line: IntArray  # (B,) line to the parent, -1 at the root
    child: IntArray  # (L,) downstream (child) bus of each line
    on_path: BoolArray  # (B, L): line l is on the path root -> bus b
    depth_r: FloatArray  # (B,) resistance from the root to each bus, ohm


@dataclass(frozen=True, slots=True)
class Network:
    """A radial feeder and the bus each peer sits on.

    Construction validates the data (see :func:`validate_network`) and raises
    :class:`~clearing.errors.InvalidNetwork` subclasses on bad data.

    Attributes:
        voltage_kv: Line-to-line voltage level in kV used for losses.
        root: The substation (slack) bus, where the main grid connects.
        buses: Bus names.
        lines: Lines; exactly ``len(buses) - 1`` of them, forming a tree.
        peer_bus: Peer name -> bus name.
    """

    voltage_kv: float
    root: str
    buses: tuple[str, ...]
    lines: tuple[Line, ...]
    peer_bus: Mapping[str, str]
    _topo: _Topology = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_topo", validate_network(self))

    # ----------------------------------------------------------------- queries
    def bus_of(self, peer: str) -> str:
        """Return the bus of ``peer``.

        Raises:
            UnknownBus: If the peer has no bus in this network.
        """
        try:
            return self.peer_bus[peer]
        except KeyError:
            msg = f"peer {peer!r} has no bus in the network (peer_bus lacks it)"
            raise UnknownBus(msg, bus="") from None

    def bus_indices(self, buses: Iterable[str]) -> IntArray:
        """Return the indices of bus names (order of :attr:`buses`)."""
        index = self._topo.bus_index
        return np.fromiter((index[b] for b in buses), dtype=np.int64)

    def line_indices(self, names: Iterable[str]) -> IntArray:
        """Return the indices of line names.

        Raises:
            InvalidNetwork: If a name is not a line of the network.
        """
        index = self._topo.line_index
        out = []
        for name in names:
            if name not in index:
                msg = f"unknown line {name!r}; lines are {sorted(index)}"
                raise InvalidNetwork(msg)
            out.append(index[name])
        return np.asarray(out, dtype=np.int64)

    def path(self, bus_a: str, bus_b: str) -> tuple[str, ...]:
        """Return Λ: the names of the lines between two buses, from ``bus_a`` to ``bus_b``."""
        topo = self._topo
        for bus in (bus_a, bus_b):
            if bus not in topo.bus_index:
                msg = f"unknown bus {bus!r}"
                raise UnknownBus(msg, bus=bus)
        a, b = topo.bus_index[bus_a], topo.bus_index[bus_b]
        on_a, on_b = topo.on_path[a], topo.on_path[b]
        # A line is on the a-b path iff it is on exactly one of the two root paths:
        # climb from each end while the line above is not shared with the other end.
        up: list[int] = []
        while topo.parent_line[a] >= 0 and not on_b[topo.parent_line[a]]:
            up.append(int(topo.parent_line[a]))
            a = int(topo.parent[a])
        down: list[int] = []
        while topo.parent_line[b] >= 0 and not on_a[topo.parent_line[b]]:
            down.append(int(topo.parent_line[b]))
            b = int(topo.parent[b])
        return tuple(self.lines[i].name for i in [*up, *reversed(down)])

    def pair_resistance(self, bus_a: IntArray, bus_b: IntArray) -> FloatArray:
        """Return R_ij (12.11) in ohm for each pair of bus indices (vectorised).

        R_ij = d_i + d_j - 2 d_lca, with d the resistance from the root.
        """
        topo = self._topo
        r = np.array([line.r_ohm for line in self.lines], dtype=np.float64)
        on = topo.on_path.astype(np.float64)
        # Bus x bus matrix first: the number of buses is far smaller than of pairs.
        shared = (on * r) @ on.T
        r_bus = topo.depth_r[:, None] + topo.depth_r[None, :] - 2.0 * shared
        return np.asarray(np.maximum(r_bus[bus_a, bus_b], 0.0))

    def pair_crosses(self, bus_a: IntArray, bus_b: IntArray, lines: IntArray) -> BoolArray:
        """Return θ_ij (12.15) for each pair: does the path cross any of ``lines``?

        The chapter writes ``σ ⊆ Λ_ij``; read literally, two congested lines on
        different branches would give θ = 0 everywhere. We read it, as in the
        chapter's example (C9 penalised for trading across L6 only), as
        ``σ ∩ Λ_ij ≠ ∅``.
        """
        if lines.size == 0:
            return np.zeros(bus_a.shape, dtype=np.bool_)
        on = self._topo.on_path[:, lines].astype(np.float64)
        # Lines of `lines` on exactly one root path = on the a-b path.
        count = on.sum(axis=1)
        crossed = count[:, None] + count[None, :] - 2.0 * (on @ on.T)
        return np.asarray(crossed[bus_a, bus_b] > 0.5)

    def flows(self, bus_injection_kw: FloatArray) -> FloatArray:
        """Return line flows in kW (positive downstream) from net injections per bus."""
        return np.asarray(-(self._topo.on_path.T.astype(np.float64) @ bus_injection_kw))

    def flow_matrix(self, peer_buses: IntArray) -> FloatArray:
        """Return F (lines x peers): flows = F @ P for peer injections P (kW)."""
        return np.asarray(-self._topo.on_path[peer_buses].T.astype(np.float64))

    def peer_flows(self, peer_buses: IntArray, injection_kw: FloatArray) -> FloatArray:
        """Return line flows in kW from the net injections of peers on ``peer_buses``."""
        per_bus = np.zeros(len(self.buses), dtype=np.float64)
        np.add.at(per_bus, peer_buses, injection_kw)
        return self.flows(per_bus)

    def losses_kw(self, flows_kw: FloatArray) -> float:
        """Return total losses Σ r_l (P_l / V)^2 in kW for line flows in kW."""
        r = np.array([line.r_ohm for line in self.lines], dtype=np.float64)
        return float(np.sum(r * (flows_kw / self.voltage_kv) ** 2) / 1000.0)

    def capacities(self) -> FloatArray:
        """Return line capacities in kW (``inf`` for unlimited lines)."""
        return np.array([line.capacity_kw for line in self.lines], dtype=np.float64)

    def child_bus(self, line: int) -> str:
        """Return the downstream bus of line index ``line``."""
        return self.buses[int(self._topo.child[line])]

    def lines_above(self, buses: IntArray) -> IntArray:
        """Return the index of the line feeding each bus index (-1 for the root)."""
        return np.asarray(self._topo.parent_line[buses], dtype=np.int64)

    def lines_above_lines(self) -> IntArray:
        """Return, for each line, the line feeding its upstream bus (-1 below the root)."""
        topo = self._topo
        return np.asarray(topo.parent_line[topo.parent[topo.child]], dtype=np.int64)

    def parent_bus(self, line: int) -> str:
        """Return the upstream bus of line index ``line``."""
        return self.buses[int(self._topo.parent[self._topo.child[line]])]

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-ready form read by :func:`network_from_dict`."""
        return {
            "voltage_kv": self.voltage_kv,
            "root": self.root,
            "buses": list(self.buses),
            "lines": [
                {
                    "name": ln.name,
                    "from": ln.from_bus,
                    "to": ln.to_bus,
                    "r_ohm": ln.r_ohm,
                    "x_ohm": ln.x_ohm,
                    "capacity_kw": None if math.isinf(ln.capacity_kw) else ln.capacity_kw,
                }
                for ln in self.lines
            ],
            "peer_bus": dict(self.peer_bus),
        }


def _finite(value: float, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        msg = f"{what} must be a finite number, got {value!r}"
        raise InvalidNetwork(msg)
    return float(value)


def validate_network(net: Network) -> _Topology:
    """Check that ``net`` is a tree rooted at its root and index it.

    Raises:
        InvalidNetwork: Bad voltage, duplicate names, bad line data.
        UnknownBus: A line end or a peer's bus is not a bus of the network.
        NonRadialNetwork: A loop (including a self-loop or parallel lines) or
            a bus not connected to the root.
    """
    if _finite(net.voltage_kv, "voltage_kv") <= 0:
        msg = f"voltage_kv must be > 0, got {net.voltage_kv}"
        raise InvalidNetwork(msg)
    if not net.buses:
        msg = "the network has no bus"
        raise InvalidNetwork(msg)
    bus_index = {b: i for i, b in enumerate(net.buses)}
    if len(bus_index) != len(net.buses):
        msg = "duplicate bus names"
        raise InvalidNetwork(msg)
    if net.root not in bus_index:
        msg = f"root bus {net.root!r} is not a bus of the network"
        raise UnknownBus(msg, bus=net.root)
    line_index = {ln.name: i for i, ln in enumerate(net.lines)}
    if len(line_index) != len(net.lines):
        msg = "duplicate line names"
        raise InvalidNetwork(msg)
    adjacency: list[list[tuple[int, int]]] = [[] for _ in net.buses]
    for i, ln in enumerate(net.lines):
        for bus in (ln.from_bus, ln.to_bus):
            if bus not in bus_index:
                msg = f"line {ln.name!r} refers to unknown bus {bus!r}"
                raise UnknownBus(msg, bus=bus)
        if _finite(ln.r_ohm, f"r_ohm of {ln.name}") < 0:
            msg = f"line {ln.name!r}: r_ohm must be >= 0, got {ln.r_ohm}"
            raise InvalidNetwork(msg)
        _finite(ln.x_ohm, f"x_ohm of {ln.name}")
        cap = ln.capacity_kw
        if isinstance(cap, bool) or not isinstance(cap, int | float) or math.isnan(cap) or cap <= 0:
            msg = f"line {ln.name!r}: capacity_kw must be > 0 (or unlimited), got {cap!r}"
            raise InvalidNetwork(msg)
        if ln.from_bus == ln.to_bus:
            msg = f"line {ln.name!r} connects bus {ln.from_bus!r} to itself: not radial"
            raise NonRadialNetwork(msg)
        a, b = bus_index[ln.from_bus], bus_index[ln.to_bus]
        adjacency[a].append((b, i))
        adjacency[b].append((a, i))
    n_bus, n_line = len(net.buses), len(net.lines)
    parent = np.full(n_bus, -1, dtype=np.int64)
    parent_line = np.full(n_bus, -1, dtype=np.int64)
    child = np.full(n_line, -1, dtype=np.int64)
    seen = np.zeros(n_bus, dtype=np.bool_)
    order = [bus_index[net.root]]
    seen[order[0]] = True
    used = np.zeros(n_line, dtype=np.bool_)
    for here in order:  # breadth-first; `order` grows while we walk it
        for nxt, li in adjacency[here]:
            if used[li]:
                continue
            used[li] = True
            if seen[nxt]:
                msg = (
                    f"line {net.lines[li].name!r} closes a loop at bus "
                    f"{net.buses[nxt]!r}: the network must be radial (a tree)"
                )
                raise NonRadialNetwork(msg)
            seen[nxt] = True
            parent[nxt], parent_line[nxt], child[li] = here, li, nxt
            order.append(nxt)
    if not seen.all():
        missing = [net.buses[i] for i in np.flatnonzero(~seen)]
        msg = f"buses not connected to the root {net.root!r}: {missing}"
        raise NonRadialNetwork(msg)
    on_path = np.zeros((n_bus, n_line), dtype=np.bool_)
    for node in order[1:]:  # parents come first in BFS order
        on_path[node] = on_path[parent[node]]
        on_path[node, parent_line[node]] = True
    r = np.array([ln.r_ohm for ln in net.lines], dtype=np.float64)
    for peer, bus in net.peer_bus.items():
        if bus not in bus_index:
            msg = f"peer {peer!r} sits on unknown bus {bus!r}"
            raise UnknownBus(msg, bus=bus)
    return _Topology(
        bus_index=bus_index,
        line_index=line_index,
        parent=parent,
        parent_line=parent_line,
        child=child,
        on_path=on_path,
        depth_r=np.asarray(on_path.astype(np.float64) @ r),
    )


def _get(data: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in data:
        msg = f"{where}: missing field {key!r}"
        raise InvalidNetwork(msg)
    return data[key]


def network_from_dict(data: Any) -> Network:
    """Build a :class:`Network` from plain data (the JSON form).

    The form is ``{"voltage_kv", "root", "buses": [...], "lines": [{"name",
    "from", "to", "r_ohm", "x_ohm", "capacity_kw" (null = unlimited)}],
    "peer_bus": {peer: bus}}``.

    Raises:
        InvalidNetwork: Missing fields or bad values (and its subclasses).
        UnknownField: A key the network or line format does not define.
    """
    if not isinstance(data, Mapping):
        msg = f"network must be an object, got {type(data).__name__}"
        raise InvalidNetwork(msg)
    check_fields(data, NETWORK_FIELDS, "network")
    lines: list[Line] = []
    raw_lines: Sequence[Any] = _get(data, "lines", "network")
    for raw in raw_lines:
        if not isinstance(raw, Mapping):
            msg = f"each line must be an object, got {raw!r}"
            raise InvalidNetwork(msg)
        name = str(_get(raw, "name", "line"))
        check_fields(raw, LINE_FIELDS, f"line {name!r}")
        cap = raw.get("capacity_kw")
        lines.append(
            Line(
                name=name,
                from_bus=str(_get(raw, "from", name)),
                to_bus=str(_get(raw, "to", name)),
                r_ohm=_get(raw, "r_ohm", name),
                x_ohm=raw.get("x_ohm", 0.0),
                capacity_kw=math.inf if cap is None else cap,
            )
        )
    peer_bus = _get(data, "peer_bus", "network")
    if not isinstance(peer_bus, Mapping):
        msg = "network: peer_bus must be an object {peer: bus}"
        raise InvalidNetwork(msg)
    return Network(
        voltage_kv=_get(data, "voltage_kv", "network"),
        root=str(_get(data, "root", "network")),
        buses=tuple(str(b) for b in _get(data, "buses", "network")),
        lines=tuple(lines),
        peer_bus={str(k): str(v) for k, v in peer_bus.items()},
    )


def load_network(path: str | Path) -> Network:
    """Load a network from a JSON file (a network object, or a case's ``"network"``).

    Raises:
        InvalidNetwork: If the file is not valid JSON or the data is invalid.
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        msg = f"cannot read network file {str(path)!r}: {exc}"
        raise InvalidNetwork(msg) from exc
    if isinstance(data, Mapping) and "network" in data:
        data = data["network"]
    return network_from_dict(data)
