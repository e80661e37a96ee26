"""An optional AC check of a clearing: pandapower's power flow on the clearing's injections.

The clearing is linear: its balance is lossless, flows are sums of
injections below each line, and losses are computed afterwards as
``Σ r (P / V)²`` at nominal voltage. This check runs a full AC power flow
(Newton-Raphson, pandapower) on the same feeder with every bus's net
injection from the clearing (unity power factor, as the linear losses
assume), the main grid's bus as the slack, and reports the voltages, the
line loading and the losses next to the clearing's own figures.

pandapower is the ``grid`` extra; it is imported only when the check runs.
The result is plain data (:class:`AcCheck`); :func:`format_ac_check` prints it.
"""

from __future__ import annotations

import importlib
import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from clearing.case import Case
from clearing.errors import InvalidOption, SolverFailed
from clearing.result import ClearingResult

SQRT3 = math.sqrt(3.0)
MIN_IMPEDANCE_OHM = 1e-6  # pandapower refuses zero-impedance lines; a bus-bar gets this
VOLTAGE_BAND = (0.9, 1.1)  # p.u., EN 50160's ±10 %


@dataclass(frozen=True, slots=True)
class AcCheck:
    """pandapower's AC power flow on a clearing's injections, next to the linear figures.

    Attributes:
        buses: Bus names (network order).
        vm_pu: AC voltage magnitude per bus, p.u. of ``voltage_kv``.
        lines: Line names (network order).
        ac_flow_kw: AC active power entering each line at its upstream end, kW
            (positive downstream, as the clearing's flows).
        linear_flow_kw: The clearing's flows, kW.
        loading: AC current over the line's limit (``|flow| / capacity`` in
            current terms), ``nan`` for unlimited lines.
        linear_loading: The clearing's ``|flow| / capacity`` (``nan`` unlimited).
        ac_losses_kw: Total AC losses, kW.
        linear_losses_kw: The clearing's losses ``Σ r (P / V)²``, kW.
        slack_kw: Power the root (main grid) supplies in the AC flow, kW.
        linear_root_kw: Net injection the clearing places at the root bus, kW
            (the slack covers it plus the losses).
        out_of_band: Buses whose AC voltage is outside :data:`VOLTAGE_BAND`.
        overloaded: Lines whose AC loading exceeds 1.
    """

    buses: tuple[str, ...]
    vm_pu: tuple[float, ...]
    lines: tuple[str, ...]
    ac_flow_kw: tuple[float, ...]
    linear_flow_kw: tuple[float, ...]
    loading: tuple[float, ...]
    linear_loading: tuple[float, ...]
    ac_losses_kw: float
    linear_losses_kw: float
    slack_kw: float
    linear_root_kw: float
    out_of_band: tuple[str, ...]
    overloaded: tuple[str, ...]

    @property
    def losses_gap(self) -> float:
        """``(AC - linear) / AC`` losses: what the linear model leaves out (0 if no losses)."""
        if self.ac_losses_kw == 0.0:
            return 0.0
        return (self.ac_losses_kw - self.linear_losses_kw) / self.ac_losses_kw


def _pandapower() -> Any:
    try:
        return importlib.import_module("pandapower")
    except ImportError as exc:
        msg = "the AC check needs pandapower: pip install 'p2pex[grid]'"
        raise InvalidOption(msg) from exc


def ac_check(case: Case, result: ClearingResult) -> AcCheck:
    """Run pandapower's AC power flow on ``result``'s injections on ``case``'s feeder.

    Every bus gets the net injection of its peers (``result.injection``),
    except the root, where the slack (the main grid) balances the flow and
    the losses. Lines take their ``r_ohm``, ``x_ohm`` (no shunt capacitance)
    and a current limit ``capacity_kw / (√3 V)``.

    Raises:
        InvalidOption: pandapower is not installed.
        SolverFailed: The power flow does not converge (status ``ac_not_converged``).
    """
    pp = _pandapower()
    net_c = case.network
    v = net_c.voltage_kv
    net = pp.create_empty_network(name=case.name, sn_mva=1.0)
    index = {
        bus: pp.create_bus(net, vn_kv=v, name=bus, index=i) for i, bus in enumerate(net_c.buses)
    }
    pp.create_ext_grid(net, bus=index[net_c.root], vm_pu=1.0, va_degree=0.0)
    caps = net_c.capacities()
    for li, line in enumerate(net_c.lines):
        i_max = caps[li] / (SQRT3 * v * 1000.0) if math.isfinite(caps[li]) else 1e6
        pp.create_line_from_parameters(
            net,
            from_bus=index[net_c.parent_bus(li)],
            to_bus=index[net_c.child_bus(li)],
            length_km=1.0,
            r_ohm_per_km=max(line.r_ohm, MIN_IMPEDANCE_OHM),
            x_ohm_per_km=max(line.x_ohm, 0.0),
            c_nf_per_km=0.0,
            max_i_ka=i_max,
            name=line.name,
            index=li,
        )
    per_bus = np.zeros(len(net_c.buses))
    buses = net_c.bus_indices(net_c.bus_of(p.name) for p in case.peers)
    np.add.at(per_bus, buses, np.asarray(result.injection, dtype=np.float64))
    root = index[net_c.root]
    for i, p_kw in enumerate(per_bus):
        if i != root and p_kw != 0.0:
            pp.create_load(net, bus=i, p_mw=-p_kw / 1000.0, q_mvar=0.0)
    with warnings.catch_warnings():
        # pandapower warns about optional accelerators (numba); the check does not need them
        warnings.simplefilter("ignore")
        try:
            pp.runpp(net, algorithm="nr", init="flat", numba=False, max_iteration=50)
        except pp.LoadflowNotConverged as exc:
            msg = f"the AC power flow did not converge for {case.name!r}: {exc}"
            raise SolverFailed(msg, status="ac_not_converged") from exc
    vm = np.asarray(net.res_bus.loc[list(range(len(net_c.buses))), "vm_pu"], dtype=np.float64)
    res = net.res_line.loc[list(range(len(net_c.lines)))]
    ac_flow = np.asarray(res["p_from_mw"], dtype=np.float64) * 1000.0
    limited = np.isfinite(caps)
    loading = np.where(limited, np.asarray(res["loading_percent"], dtype=np.float64) / 100, np.nan)
    flows = np.asarray(result.flows, dtype=np.float64)
    linear_loading = np.where(limited, np.abs(flows) / np.where(limited, caps, 1.0), np.nan)
    lo, hi = VOLTAGE_BAND
    names = net_c.buses
    return AcCheck(
        buses=names,
        vm_pu=tuple(float(x) for x in vm),
        lines=tuple(ln.name for ln in net_c.lines),
        ac_flow_kw=tuple(float(x) for x in ac_flow),
        linear_flow_kw=tuple(float(x) for x in flows),
        loading=tuple(float(x) for x in loading),
        linear_loading=tuple(float(x) for x in linear_loading),
        ac_losses_kw=float(np.sum(res["pl_mw"])) * 1000.0,
        linear_losses_kw=float(result.losses_kw),
        slack_kw=float(net.res_ext_grid["p_mw"].sum()) * 1000.0,
        linear_root_kw=float(per_bus[root]),
        out_of_band=tuple(b for b, x in zip(names, vm, strict=True) if not lo <= x <= hi),
        overloaded=tuple(ln.name for ln, x in zip(net_c.lines, loading, strict=True) if x > 1),
    )


def _pct(x: float) -> str:
    return "-" if math.isnan(x) else f"{100 * x:.0f}%"


def format_ac_check(case: Case, check: AcCheck, label: str = "") -> str:
    """Format an :class:`AcCheck` as text: a summary, then one row per line.

    Each line row shows the linear and AC flows and loadings, and the AC
    voltage at the line's downstream bus.
    """
    grid = case.grid_peer()
    head = (
        f"AC check{f' ({label})' if label else ''} (pandapower power flow, unity power factor): "
        f"losses AC {check.ac_losses_kw:.3f} kW vs linear {check.linear_losses_kw:.3f} kW "
        f"({100 * check.losses_gap:+.1f}% of AC); root supplies {check.slack_kw:.1f} kW "
        f"(linear {check.linear_root_kw:.1f} kW{', main grid' if grid else ''}); "
        f"voltage {min(check.vm_pu):.4f}-{max(check.vm_pu):.4f} p.u."
    )
    notes = []
    if check.out_of_band:
        lo, hi = VOLTAGE_BAND
        notes.append(f"buses outside {lo}-{hi} p.u.: {', '.join(check.out_of_band)}")
    if check.overloaded:
        notes.append(f"lines over their limit in AC: {', '.join(check.overloaded)}")
    net = case.network
    vm = dict(zip(check.buses, check.vm_pu, strict=True))
    rows = [
        [
            name,
            f"{net.parent_bus(li)}->{net.child_bus(li)}",
            f"{check.linear_flow_kw[li]:.1f}",
            f"{check.ac_flow_kw[li]:.1f}",
            _pct(check.linear_loading[li]),
            _pct(check.loading[li]),
            f"{vm[net.child_bus(li)]:.4f}",
        ]
        for li, name in enumerate(check.lines)
    ]
    cols = ["line", "buses", "linear kW", "AC kW", "linear load", "AC load", "V to p.u."]
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(cols)]
    fmt = "  ".join(f"{{:>{w}}}" for w in widths)
    table = [fmt.format(*cols), fmt.format(*("-" * w for w in widths))]
    table += [fmt.format(*r) for r in rows]
    return "\n".join([head, *notes, *table])
