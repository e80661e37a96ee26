"""Standard grid data into clearing cases: MATPOWER files, pandapower networks, SimBench codes.

Each importer reads a network into one plain intermediate form
(:class:`GridData`: buses, branches in Ω at one voltage level, loads,
generators, the root) and :func:`case_from_grid` turns that into a
:class:`~clearing.case.Case` by the documented, seeded rule of
:class:`PeerRule` (docs/case-format.md). The same input and rule always give
the same case: the only randomness is a ``numpy`` generator seeded by
``PeerRule.seed``.

MATPOWER files are parsed here (no extra needed). pandapower and simbench
(the ``grid`` extra) are imported only when a pandapower network or a
SimBench code is read; SimBench ships its data inside the package, so no
import touches the network.

Units: MATPOWER and pandapower use MW and per-unit or Ω; the case uses kW
and Ω referred to the case's ``voltage_kv`` (the voltage level of most
buses), so that ``r (P / V)²`` is the per-unit loss on every level.
"""

from __future__ import annotations

import copy
import functools
import json
import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from clearing.case import Case, Peer, Role
from clearing.errors import GridImportError, InvalidOption, NonRadialNetwork
from clearing.network import Line, Network

KW_PER_MW = 1000.0
SQRT3 = math.sqrt(3.0)
MIN_SIZE_KW = 0.1  # curve slopes divide by a peer's size: floor it to keep the QP well scaled


@dataclass(frozen=True, slots=True)
class PeerRule:
    """How loads and generators become peers with quadratic curves (seeded).

    Attributes:
        seed: Seed of the ``numpy`` generator that spreads prices.
        wtp: Consumers' mean willingness to pay, currency/kWh.
        wtp_spread: Relative half-width of the uniform spread of ``wtp``.
        flexible_share: Share of a load's demand it may forgo: bounds
            ``[-L, -(1 - flexible_share) L]``.
        slope_share: Fraction by which a curve's marginal price moves over
            the peer's range: ``a = slope_share * b / size``.
        res_price: Renewable (sgen) producers' mean marginal cost, currency/kWh.
        res_spread: Relative half-width of the uniform spread of ``res_price``.
        gen_price: Marginal cost of a generator without cost data, currency/kWh.
        grid_price: The main grid's selling price (the import tariff), currency/kWh.
        grid_slope: The main grid's ``a``, currency/kW²h.
        currency: Currency code for the case.
        tick: Price tick, currency/kWh.
        slot_hours: Slot length in hours.
        alpha, beta: The case tariff (loss and congestion penalties), currency/(kWh·Ω)
            and currency/kWh.
    """

    seed: int = 0
    wtp: float = 0.35
    wtp_spread: float = 0.1
    flexible_share: float = 0.5
    slope_share: float = 0.2
    res_price: float = 0.05
    res_spread: float = 0.2
    gen_price: float = 0.15
    grid_price: float = 0.25
    grid_slope: float = 1e-4
    currency: str = "EUR"
    tick: float = 0.0001
    slot_hours: float = 1.0
    alpha: float = 0.005  # the chapter's smallest α, as in the reference case
    beta: float = 0.005  # the chapter's β: without one the congestion procedure cannot act


@dataclass(frozen=True, slots=True)
class GridLoad:
    """A load: ``p_kw`` is its demand (>= 0) in the imported state."""

    name: str
    bus: str
    p_kw: float


@dataclass(frozen=True, slots=True)
class GridGen:
    """A generator or static generator.

    Attributes:
        name: Peer name.
        bus: Its bus.
        p_min_kw, p_max_kw: Output bounds, kW (>= 0).
        cost: ``(a, b, c)`` of ``½ a P² + b P + c`` (P in kW), or ``None`` to
            use the rule's prices.
        renewable: True for sgens (priced at ``res_price``), False for
            generators (``gen_price``).
    """

    name: str
    bus: str
    p_min_kw: float
    p_max_kw: float
    cost: tuple[float, float, float] | None = None
    renewable: bool = False


@dataclass(frozen=True, slots=True)
class GridData:
    """A network read from standard data, before peers get their curves.

    Attributes:
        name: The case name.
        voltage_kv: The reference voltage level (kV) all impedances are referred to.
        root: The bus of the external grid (slack).
        buses: Bus names.
        lines: Lines and transformers as :class:`~clearing.network.Line` (Ω at ``voltage_kv``).
        loads, gens: The elements that become peers.
        grid_cost: The main grid's ``(a, b, c)`` if the data has one.
        grid_max_kw: The main grid's capacity (transformer rating), ``inf`` if unknown.
    """

    name: str
    voltage_kv: float
    root: str
    buses: tuple[str, ...]
    lines: tuple[Line, ...]
    loads: tuple[GridLoad, ...]
    gens: tuple[GridGen, ...]
    grid_cost: tuple[float, float, float] | None = None
    grid_max_kw: float = math.inf


# --------------------------------------------------------------------- case


def _spread(rng: np.random.Generator, n: int, mean: float, half: float) -> Any:
    return mean * (1.0 + rng.uniform(-half, half, size=n))


def case_from_grid(grid: GridData, rule: PeerRule | None = None) -> Case:
    """Turn imported grid data into a case by the rule of :class:`PeerRule`.

    Peers, in order: one consumer per load, one producer per generator, the
    main grid (a ``grid`` peer at the root). The seeded generator draws, in
    this order, one willingness-to-pay factor per load and one price factor
    per renewable generator, so adding a generator does not change the
    loads' curves.

    Raises:
        NonRadialNetwork: If the feeder is not a tree rooted at the external grid.
        InvalidCase: If the data cannot make a market (e.g. no load).
    """
    rule = PeerRule() if rule is None else rule
    rng = np.random.default_rng(rule.seed)
    wtp = _spread(rng, len(grid.loads), rule.wtp, rule.wtp_spread)
    renewables = [g for g in grid.gens if g.renewable and g.cost is None]
    res = dict(
        zip(
            (g.name for g in renewables),
            _spread(rng, len(renewables), rule.res_price, rule.res_spread),
            strict=True,
        )
    )
    peers: list[Peer] = []
    peer_bus: dict[str, str] = {}
    flex = 1.0 - rule.flexible_share
    for load, b in zip(grid.loads, wtp, strict=True):
        size = max(load.p_kw, MIN_SIZE_KW)
        peers.append(
            Peer(
                name=load.name,
                role=Role.CONSUMER,
                a=rule.slope_share * float(b) / size,
                b=float(b),
                c=0.0,
                p_min=-load.p_kw,
                p_max=-flex * load.p_kw,
            )
        )
        peer_bus[load.name] = load.bus
    for gen in grid.gens:
        if gen.cost is not None:
            a, b, c = gen.cost
        else:
            b = float(res[gen.name]) if gen.renewable else rule.gen_price
            a, c = rule.slope_share * b / max(gen.p_max_kw, MIN_SIZE_KW), 0.0
        peers.append(Peer(gen.name, Role.PRODUCER, a, b, c, gen.p_min_kw, gen.p_max_kw))
        peer_bus[gen.name] = gen.bus
    demand = sum(ld.p_kw for ld in grid.loads)
    grid_max = grid.grid_max_kw if math.isfinite(grid.grid_max_kw) else 0.0
    ga, gb, gc = grid.grid_cost or (rule.grid_slope, rule.grid_price, 0.0)
    peers.append(Peer("grid", Role.GRID, ga, gb, gc, 0.0, max(grid_max, 2.0 * demand, 1.0)))
    peer_bus["grid"] = grid.root
    try:
        network = Network(
            voltage_kv=grid.voltage_kv,
            root=grid.root,
            buses=grid.buses,
            lines=grid.lines,
            peer_bus=peer_bus,
        )
    except NonRadialNetwork as exc:
        msg = f"{grid.name}: {exc} (p2pex clears radial feeders only; open a switch)"
        raise NonRadialNetwork(msg) from exc
    return Case(
        name=grid.name,
        network=network,
        peers=tuple(peers),
        currency=rule.currency,
        tick=rule.tick,
        slot_hours=rule.slot_hours,
        alpha=rule.alpha,
        beta=rule.beta,
    )


def _reference_kv(levels: Sequence[float]) -> float:
    """The voltage level of most buses (the lower on a tie)."""
    counts = Counter(round(v, 6) for v in levels)
    return min(counts, key=lambda v: (-counts[v], v))


def _connected(root: str, buses: Sequence[str], lines: Sequence[Line]) -> set[str]:
    adjacent: dict[str, list[str]] = {b: [] for b in buses}
    for ln in lines:
        adjacent[ln.from_bus].append(ln.to_bus)
        adjacent[ln.to_bus].append(ln.from_bus)
    seen, todo = {root}, [root]
    while todo:
        for nxt in adjacent[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def _drop_empty_islands(
    root: str, buses: Sequence[str], lines: Sequence[Line], used: set[str]
) -> tuple[tuple[str, ...], tuple[Line, ...]]:
    """Drop buses cut off from the root that carry no load or generator.

    Feeders often keep spare buses behind open switches; they change
    nothing. An island with a load or generator is left in, so that the
    network's check refuses it by name.
    """
    reach = _connected(root, buses, lines)
    keep = tuple(b for b in buses if b in reach or b in used)
    kept = set(keep)
    return keep, tuple(ln for ln in lines if ln.from_bus in kept and ln.to_bus in kept)


# ----------------------------------------------------------------- MATPOWER

_MATRIX = re.compile(r"mpc\.(\w+)\s*=\s*\[(.*?)\]\s*;?", re.S)
_SCALAR = re.compile(r"mpc\.(\w+)\s*=\s*([-+0-9.eEInfa]+)\s*;")


def parse_matpower(text: str) -> dict[str, Any]:
    """Parse the numeric fields of a MATPOWER case file (version 2).

    Returns ``{"baseMVA": float, "bus": ndarray, "gen": ndarray, "branch":
    ndarray, "gencost": ndarray (if present)}``; cell arrays (names) are ignored.

    >>> m = parse_matpower("mpc.baseMVA = 10; mpc.bus = [1 3 0; 2 1 1.5]; mpc.branch = [1 2 0.1];")
    >>> m["baseMVA"], m["bus"].shape, m["branch"].tolist()
    (10.0, (2, 3), [[1.0, 2.0, 0.1]])

    Raises:
        GridImportError: A malformed matrix or a missing bus, branch or baseMVA.
    """
    clean = "\n".join(line.split("%", 1)[0] for line in text.splitlines())
    out: dict[str, Any] = {}
    for key, value in _SCALAR.findall(clean):
        try:
            out[key] = float(value)
        except ValueError:
            continue
    for key, body in _MATRIX.findall(clean):
        rows = [r.replace(",", " ").split() for r in re.split(r"[;\n]", body)]
        rows = [r for r in rows if r]
        try:
            values = [[float(x) for x in r] for r in rows]
        except ValueError as exc:
            msg = f"MATPOWER field mpc.{key}: not a numeric matrix ({exc})"
            raise GridImportError(msg) from exc
        widths = {len(r) for r in values}
        if len(widths) > 1:
            msg = f"MATPOWER field mpc.{key}: rows of different lengths {sorted(widths)}"
            raise GridImportError(msg)
        out[key] = np.array(values, dtype=np.float64).reshape(len(values), -1)
    for key in ("baseMVA", "bus", "branch"):
        if key not in out:
            msg = f"not a MATPOWER case: mpc.{key} is missing"
            raise GridImportError(msg)
    return out


def _gencost(row: Any) -> tuple[float, float, float] | None:
    """``(a, b, c)`` in kW units from a polynomial gencost row (model 2), else ``None``."""
    if int(row[0]) != 2:
        return None
    n = int(row[3])
    coef = [float(x) for x in row[4 : 4 + n]][::-1]  # c0, c1, c2, ...
    if n > 3 or any(x != 0 for x in coef[3:]):
        return None
    c0, c1, c2 = [*coef, 0.0, 0.0, 0.0][:3]
    # cost $/h = c2 P_MW² + c1 P_MW + c0 = ½ (2 c2 / 10⁶) P_kW² + (c1 / 1000) P_kW + c0
    return (2.0 * c2 / KW_PER_MW**2, c1 / KW_PER_MW, c0)


def grid_from_matpower(path: str | Path) -> GridData:
    """Read a MATPOWER case file into :class:`GridData`.

    Buses (``BUS_I`` as the name; type 4, isolated, is left out), in-service
    branches (``r`` in Ω at the reference level: ``r_pu x V_ref² / baseMVA``;
    ``RATE_A`` MVA -> kW, 0 = unlimited), loads (``Pd > 0``, named
    ``load<bus>``), in-service generators (``gen<row>``, 1-based; the first
    at the reference bus is the main grid) with their polynomial costs.

    Raises:
        GridImportError: Unreadable file or unusable data.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        msg = f"cannot read MATPOWER file {str(path)!r}: {exc}"
        raise GridImportError(msg) from exc
    mpc = parse_matpower(text)
    base_mva = float(mpc["baseMVA"])
    bus, branch = mpc["bus"], mpc["branch"]
    if bus.shape[1] < 10 or branch.shape[1] < 11:
        msg = f"{p.name}: mpc.bus needs 13 columns and mpc.branch 13 (version 2 format)"
        raise GridImportError(msg)
    live = bus[bus[:, 1] != 4]
    names = tuple(str(int(b)) for b in live[:, 0])
    kv = {n: float(v) for n, v in zip(names, live[:, 9], strict=True)}
    bad_kv = [n for n, v in kv.items() if v <= 0]
    if bad_kv:
        msg = f"{p.name}: buses {bad_kv[:5]} have baseKV <= 0, so Ω are unknown"
        raise GridImportError(msg)
    refs = [str(int(b)) for b in live[live[:, 1] == 3][:, 0]]
    if len(refs) != 1:
        msg = f"{p.name}: need exactly one reference bus (type 3), got {refs}"
        raise GridImportError(msg)
    root = refs[0]
    v_ref = _reference_kv(list(kv.values()))
    z_base = v_ref**2 / base_mva
    lines = []
    for k, row in enumerate(branch, start=1):
        f, t = str(int(row[0])), str(int(row[1]))
        if row[10] == 0 or f not in kv or t not in kv:
            continue
        rate = float(row[5])
        cap = rate * KW_PER_MW if rate > 0 else math.inf
        lines.append(Line(f"L{k}", f, t, float(row[2]) * z_base, float(row[3]) * z_base, cap))
    loads = tuple(
        GridLoad(f"load{int(b)}", str(int(b)), float(pd) * KW_PER_MW)
        for b, pd in zip(live[:, 0], live[:, 2], strict=True)
        if pd > 0
    )
    gens: list[GridGen] = []
    gen = mpc.get("gen", np.zeros((0, 10)))
    costs = mpc.get("gencost")
    grid_cost: tuple[float, float, float] | None = None
    grid_max = math.inf
    grid_taken = False
    for k, row in enumerate(gen, start=1):
        b = str(int(row[0]))
        if row[7] <= 0 or b not in kv:
            continue
        cost = _gencost(costs[k - 1]) if costs is not None and len(costs) >= k else None
        if b == root and not grid_taken:
            grid_taken, grid_cost = True, cost
            grid_max = float(row[8]) * KW_PER_MW if row[8] > 0 else math.inf
            continue
        if row[8] <= 0:
            continue
        p_min = max(float(row[9]), 0.0) * KW_PER_MW
        gens.append(GridGen(f"gen{k}", b, p_min, float(row[8]) * KW_PER_MW, cost))
    used = {ld.bus for ld in loads} | {g.bus for g in gens}
    buses, kept = _drop_empty_islands(root, names, lines, used)
    return GridData(
        name=f"MATPOWER {p.stem}",
        voltage_kv=v_ref,
        root=root,
        buses=buses,
        lines=kept,
        loads=loads,
        gens=tuple(gens),
        grid_cost=grid_cost,
        grid_max_kw=grid_max,
    )


def case_from_matpower(path: str | Path, rule: PeerRule | None = None) -> Case:
    """Import a MATPOWER case file (``.m``) as a clearing case.

    MATPOWER costs are in $/h, so the default rule's currency is USD.

    Raises:
        GridImportError: Unreadable or unusable file.
        NonRadialNetwork: The in-service branches do not form a tree.
    """
    return case_from_grid(grid_from_matpower(path), rule or PeerRule(currency="USD"))


# ---------------------------------------------------------------- pandapower


def _import(module: str) -> Any:
    """Import an optional grid package, or say how to install it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        msg = f"importing grid data needs {module}: pip install 'p2pex[grid]'"
        raise InvalidOption(msg) from exc


def _open_switches(net: Any, kind: str) -> set[int]:
    sw = net.switch
    if len(sw) == 0:
        return set()
    mask = (sw["et"] == kind) & ~sw["closed"].astype(bool)
    return {int(e) for e in sw.loc[mask, "element"]}


def _merge_closed_bus_switches(net: Any, buses: Sequence[int], root: int) -> dict[int, int]:
    """Map each bus to the bus it is fused with by closed bus-bus switches."""
    parent = {b: b for b in buses}

    def find(b: int) -> int:
        while parent[b] != b:
            parent[b] = parent[parent[b]]
            b = parent[b]
        return b

    sw = net.switch
    if len(sw):
        mask = (sw["et"] == "b") & sw["closed"].astype(bool)
        for a, b in zip(sw.loc[mask, "bus"], sw.loc[mask, "element"], strict=True):
            if int(a) in parent and int(b) in parent:
                ra, rb = find(int(a)), find(int(b))
                if ra != rb:
                    # keep the root as its group's name, else the smaller index
                    top = find(root)
                    keep_a = ra == top or (rb != top and ra < rb)
                    parent[rb if keep_a else ra] = ra if keep_a else rb
    return {b: find(b) for b in buses}


def _in_service(table: Any) -> Any:
    if len(table) == 0 or "in_service" not in table:
        return table
    return table[table["in_service"].astype(bool)]


def grid_from_pandapower(
    net: Any,
    *,
    name: str | None = None,
    load_kw: Mapping[int, float] | None = None,
    sgen_kw: Mapping[int, float] | None = None,
) -> GridData:
    """Read a pandapower network into :class:`GridData`.

    In-service buses, lines and two-winding transformers; elements behind an
    open switch are out, buses joined by a closed bus-bus switch are one bus.
    Loads and sgens take ``p_mw x scaling`` unless ``load_kw`` / ``sgen_kw``
    give their power (kW) by table index (a profile's time step); gens take
    ``max_p_mw`` (or ``p_mw``) and their ``poly_cost``.

    Raises:
        GridImportError: No or several external grids, three-winding
            transformers or other branch elements in service, bad data.
    """
    buses_df = _in_service(net.bus)
    ext = _in_service(net.ext_grid)
    if len(ext) != 1:
        msg = f"need exactly one in-service external grid (the feeder's root), got {len(ext)}"
        raise GridImportError(msg)
    for table in ("trafo3w", "impedance", "dcline", "vsc", "tcsc", "ssc"):
        if table in net and len(_in_service(net[table])):
            msg = f"pandapower table {table!r} is not supported in a radial feeder import"
            raise GridImportError(msg)
    live = [int(b) for b in buses_df.index]
    vn = {int(b): float(v) for b, v in zip(buses_df.index, buses_df["vn_kv"], strict=True)}
    root_bus = int(ext["bus"].iloc[0])
    group = _merge_closed_bus_switches(net, live, root_bus)
    v_ref = _reference_kv([vn[b] for b in live])
    lines: list[Line] = []
    open_lines = _open_switches(net, "l")
    for idx, row in _in_service(net.line).iterrows():
        f, t = int(row["from_bus"]), int(row["to_bus"])
        if int(idx) in open_lines or f not in group or t not in group:
            continue
        par = float(row.get("parallel", 1) or 1)
        ref = (v_ref / vn[f]) ** 2
        r = float(row["r_ohm_per_km"]) * float(row["length_km"]) / par * ref
        x = float(row["x_ohm_per_km"]) * float(row["length_km"]) / par * ref
        i_max = float(row["max_i_ka"]) * par * float(row.get("df", 1.0) or 1.0)
        cap = SQRT3 * vn[f] * i_max * KW_PER_MW if i_max > 0 and math.isfinite(i_max) else math.inf
        lines.append(Line(f"line{idx}", str(group[f]), str(group[t]), r, x, cap))
    open_trafos = _open_switches(net, "t")
    grid_max = math.inf
    for idx, row in _in_service(net.trafo).iterrows():
        hv, lv = int(row["hv_bus"]), int(row["lv_bus"])
        if int(idx) in open_trafos or hv not in group or lv not in group:
            continue
        par = float(row.get("parallel", 1) or 1)
        sn = float(row["sn_mva"]) * par
        z_base = vn[lv] ** 2 / sn * (v_ref / vn[lv]) ** 2
        r = float(row["vkr_percent"]) / 100.0 * z_base
        z = float(row["vk_percent"]) / 100.0 * z_base
        x = math.sqrt(max(z * z - r * r, 0.0))
        lines.append(Line(f"trafo{idx}", str(group[hv]), str(group[lv]), r, x, sn * KW_PER_MW))
        if group[hv] == group[root_bus]:
            grid_max = sn * KW_PER_MW if math.isinf(grid_max) else grid_max + sn * KW_PER_MW
    loads = []
    for idx, row in _in_service(net.load).iterrows():
        if int(row["bus"]) not in group:
            continue
        p = (load_kw or {}).get(int(idx))
        if p is None:
            p = float(row["p_mw"]) * float(row.get("scaling", 1.0)) * KW_PER_MW
        loads.append(GridLoad(f"load{idx}", str(group[int(row["bus"])]), max(float(p), 0.0)))
    gens = []
    for idx, row in _in_service(net.sgen).iterrows():
        if int(row["bus"]) not in group:
            continue
        p = (sgen_kw or {}).get(int(idx))
        if p is None:
            p = float(row["p_mw"]) * float(row.get("scaling", 1.0)) * KW_PER_MW
        p = max(float(p), 0.0)
        gens.append(GridGen(f"sgen{idx}", str(group[int(row["bus"])]), 0.0, p, None, True))
    costs = _poly_costs(net)
    for idx, row in _in_service(net.gen).iterrows():
        if int(row["bus"]) not in group:
            continue
        top = row.get("max_p_mw")
        p_max = float(top if top is not None and np.isfinite(top) else row["p_mw"]) * KW_PER_MW
        low = row.get("min_p_mw")
        p_min = max(float(low) if low is not None and np.isfinite(low) else 0.0, 0.0) * KW_PER_MW
        if p_max > 0:
            bus_name = str(group[int(row["bus"])])
            gens.append(GridGen(f"gen{idx}", bus_name, min(p_min, p_max), p_max,
                                costs.get(("gen", int(idx)))))  # fmt: skip
    root = str(group[root_bus])
    names = tuple(dict.fromkeys(str(group[b]) for b in live))
    used = {ld.bus for ld in loads} | {g.bus for g in gens}
    buses, kept = _drop_empty_islands(root, names, lines, used)
    label = name or str(getattr(net, "name", "") or "pandapower network")
    ext_id = int(ext.index[0])
    return GridData(
        name=label,
        voltage_kv=v_ref,
        root=root,
        buses=buses,
        lines=kept,
        loads=tuple(loads),
        gens=tuple(gens),
        grid_cost=costs.get(("ext_grid", ext_id)),
        grid_max_kw=grid_max,
    )


def _poly_costs(net: Any) -> dict[tuple[str, int], tuple[float, float, float]]:
    """pandapower ``poly_cost`` rows (EUR, MW) as ``(a, b, c)`` in kW units."""
    out: dict[tuple[str, int], tuple[float, float, float]] = {}
    table = net.get("poly_cost") if hasattr(net, "get") else None
    if table is None or len(table) == 0:
        return out
    for _, row in table.iterrows():
        c2, c1, c0 = (float(row[k]) for k in ("cp2_eur_per_mw2", "cp1_eur_per_mw", "cp0_eur"))
        if c2 == 0 and c1 == 0:
            continue  # a placeholder cost: let the rule price it
        out[(str(row["et"]), int(row["element"]))] = (2 * c2 / KW_PER_MW**2, c1 / KW_PER_MW, c0)
    return out


def load_pandapower(path: str | Path) -> Any:
    """Read a pandapower network from a JSON file (``pandapower.to_json``).

    Raises:
        GridImportError: If the file cannot be read as a pandapower network.
        InvalidOption: If pandapower is not installed.
    """
    pp = _import("pandapower")
    try:
        json.loads(Path(path).read_text(encoding="utf-8"))
        return pp.from_json(str(path))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        msg = f"cannot read pandapower network {str(path)!r}: {exc}"
        raise GridImportError(msg) from exc


def case_from_pandapower(
    net: Any, rule: PeerRule | None = None, *, name: str | None = None
) -> Case:
    """Import a pandapower network (an object, or the path of its JSON file).

    Raises:
        GridImportError: Unreadable or unsupported network.
        NonRadialNetwork: The in-service branches do not form a tree.
        InvalidOption: pandapower is not installed (when a path is given).
    """
    if isinstance(net, str | Path):
        name = name or f"pandapower {Path(net).stem}"
        net = load_pandapower(net)
    return case_from_grid(grid_from_pandapower(net, name=name), rule)


# ------------------------------------------------------------------ SimBench

SIMBENCH_STEP_HOURS = 0.25  # SimBench profiles have 96 steps a day


def simbench_net(code: str) -> Any:
    """Return (a copy of) the SimBench network of ``code``, read from the installed package.

    Raises:
        GridImportError: An unknown code.
        InvalidOption: simbench is not installed.
    """
    return copy.deepcopy(_simbench_data(code)[0])


def simbench_profiles(code: str) -> tuple[Any, Any]:
    """Return the load and sgen active power profiles of ``code`` in kW (steps x elements).

    Columns are the load and sgen table indices; rows the 15-minute steps of a year.

    Raises:
        GridImportError: An unknown code, or a network without profiles.
    """
    _, loads, sgens = _simbench_data(code)
    return loads.copy(), sgens.copy()


@functools.lru_cache(maxsize=4)
def _simbench_data(code: str) -> tuple[Any, Any, Any]:
    """Read a SimBench grid and its profiles once per code.

    simbench parses its whole CSV data set for every grid it returns (many
    seconds); the result depends only on the code, so it is kept. Callers
    must not change what they get: the public functions hand out copies.
    """
    sb = _import("simbench")
    try:
        net = sb.get_simbench_net(code)
    except Exception as exc:  # simbench raises IndexError, ValueError, ... on bad codes
        msg = f"unknown SimBench code {code!r} (e.g. '1-LV-rural1--0-sw'): {exc!r}"
        raise GridImportError(msg) from exc
    try:
        prof = sb.get_absolute_values(net, profiles_instead_of_study_cases=True)
        loads, sgens = prof[("load", "p_mw")], prof[("sgen", "p_mw")]
    except Exception as exc:  # simbench raises what pandas raises
        msg = f"the SimBench grid {code!r} has no usable profiles: {exc!r}"
        raise GridImportError(msg) from exc
    return net, loads * KW_PER_MW, sgens * KW_PER_MW


def case_from_simbench(code: str, *, time_step: int = 0, rule: PeerRule | None = None) -> Case:
    """Import a SimBench grid at one profile time step (15-minute steps of a year).

    Loads demand their profile's power at ``time_step``, sgens (mostly PV)
    offer theirs. The default rule's slot is the profile step (0.25 h).

    Raises:
        GridImportError: Unknown code, or ``time_step`` outside the profiles.
        NonRadialNetwork: The switched network is not a tree.
    """
    net, loads, sgens = _simbench_data(code)
    steps = len(loads.index)
    if isinstance(time_step, bool) or not isinstance(time_step, int) or not 0 <= time_step < steps:
        msg = f"time_step must be an integer in [0, {steps}), got {time_step!r}"
        raise GridImportError(msg)
    rule = PeerRule(slot_hours=SIMBENCH_STEP_HOURS) if rule is None else rule
    grid = grid_from_pandapower(
        net,
        name=f"SimBench {code} step {time_step}",
        load_kw={int(k): float(v) for k, v in loads.iloc[time_step].items()},
        sgen_kw={int(k): float(v) for k, v in sgens.iloc[time_step].items()},
    )
    return case_from_grid(grid, rule)
