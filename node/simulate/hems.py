"""Each building's home energy management system: a tiny LP over the rest of the day.

Why an LP and not a greedy rule: a battery facing a time-of-use tariff must
decide *when* to charge (cheap night, PV surplus at noon) and when to
discharge (the evening peak); a greedy "charge on surplus, discharge on
deficit" rule cannot see that the evening peak is worth more than the
afternoon; a heat pump must decide when to pre-heat the room (cheap
hours, PV) and when to let it cool inside its comfort band. The LP is small
(8 variables per remaining slot, a few dozen rows), so HiGHS
(``scipy.optimize.linprog``) solves one in a millisecond or two, and it is
exact, which lets the tests check the constraints.

The agent's rule (rolling horizon): at slot ``t`` it solves, for slots
``t .. T-1``,

    min  Σ_k h (buy_k m_k - sell_k x_k) + wear (c_k + d_k)
    s.t. m_k - x_k = load_k - pv_k + c_k - d_k + g_k + q_k       (its meter)
         e_k = e_{k-1} + h (η c_k - d_k / η),  soc_min <= e_k <= soc_max
         e_{T-1} >= the SoC it started the day with (no free draining)
         0 <= c_k, d_k <= battery power;  0 <= g_k <= EV charge power
         Σ_{k < departure} h η g_k >= EV energy still needed
         r_k = a r_{k-1} + (1 - a) (θout_k + COP q_k / UA)         (its room)
         comfort_min_k <= r_k <= comfort_max_k;  0 <= q_k <= heat pump power
         m_k, x_k >= 0

and carries out slot ``t`` only; next slot it solves again from the state
it reached. ``buy_k`` is the import tariff; ``sell_k`` is what it expects
a sale to earn: the export tariff until the CDA has traded, then the last
CDA price's position between that slot's tariffs carried over to every
later slot (:func:`expected_sell`), its own expectation of the P2P market.
Units: kW, kWh, ticks per kWh.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linprog

from node.errors import NodeError
from node.simulate.day import SLOT_HOURS, Building, FloatArray

WEAR = 1.0  # ticks per kWh charged or discharged: breaks ties against needless cycling
_VARS = ("c", "d", "g", "m", "x", "e", "q", "r")


@dataclass(frozen=True, slots=True)
class AgentState:
    """What a building's assets hold at the start of a slot.

    Battery kWh, EV kWh added, and the room's temperature in °C (``nan``
    without a heat pump).
    """

    soc_kwh: float
    ev_kwh: float
    indoor_c: float = float("nan")


@dataclass(frozen=True, slots=True)
class SlotDecision:
    """One slot carried out: kW averaged over the slot (net > 0 = the building exports)."""

    charge_kw: float
    discharge_kw: float
    ev_kw: float
    net_kw: float
    soc_kwh: float
    ev_kwh: float
    heat_kw: float = 0.0
    indoor_c: float = float("nan")


def initial_state(b: Building) -> AgentState:
    """Battery at its start SoC, nothing charged into the EV yet, the room at its start."""
    return AgentState(
        b.battery.soc_start_kwh if b.battery else 0.0,
        0.0,
        b.heat_pump.start_c if b.heat_pump else float("nan"),
    )


def state_after(dec: SlotDecision) -> AgentState:
    """The state a carried-out slot leaves for the next one."""
    return AgentState(dec.soc_kwh, dec.ev_kwh, dec.indoor_c)


def plan(
    b: Building,
    t: int,
    state: AgentState,
    buy: Sequence[float],
    sell: Sequence[float],
) -> FloatArray:
    """Solve the LP for slots ``t..T-1``; return an ``(8, K)`` array c, d, g, m, x, e, q, r.

    Raises:
        NodeError: If the LP has no solution (an EV need beyond its charger).
    """
    T = len(b.load_kw)
    K = T - t
    h = SLOT_HOURS
    n = len(_VARS) * K

    def ix(var: str, k: int) -> int:
        return _VARS.index(var) * K + k

    cost = np.zeros(n)
    bounds: list[tuple[float, float | None]] = [(0.0, 0.0)] * n
    for k in range(K):
        s = t + k
        cost[ix("m", k)] = h * buy[s]
        cost[ix("x", k)] = -h * sell[s]
        cost[ix("c", k)] = cost[ix("d", k)] = WEAR * h
        bounds[ix("m", k)] = (0.0, None)
        bounds[ix("x", k)] = (0.0, None)
        if b.battery is not None:
            p = b.battery.power_kw
            bounds[ix("c", k)] = (0.0, p)
            bounds[ix("d", k)] = (0.0, p)
            bounds[ix("e", k)] = (b.battery.soc_min_kwh, b.battery.soc_max_kwh)
        if b.ev is not None and s < b.ev.departure_slot:
            bounds[ix("g", k)] = (0.0, b.ev.charge_kw)
        if b.heat_pump is not None:
            hp = b.heat_pump
            bounds[ix("q", k)] = (0.0, hp.power_kw)
            bounds[ix("r", k)] = (hp.comfort_min_c[s], hp.comfort_max_c[s])
    rows: list[int] = []
    cols: list[int] = []
    vals: list[float] = []
    rhs: list[float] = []
    r = 0
    for k in range(K):  # meter balance: m - x - c + d - g - q = load - pv
        meter = (("m", 1.0), ("x", -1.0), ("c", -1.0), ("d", 1.0), ("g", -1.0), ("q", -1.0))
        for var, coef in meter:
            rows.append(r)
            cols.append(ix(var, k))
            vals.append(coef)
        rhs.append(b.load_kw[t + k] - b.pv_kw[t + k])
        r += 1
    if b.battery is not None:
        eta = b.battery.efficiency
        for k in range(K):  # e_k - e_{k-1} - h eta c + h d / eta = 0
            for var, kk, coef in (
                ("e", k, 1.0), ("c", k, -h * eta), ("d", k, h / eta), ("e", k - 1, -1.0),
            ):  # fmt: skip
                if kk >= 0:
                    rows.append(r)
                    cols.append(ix(var, kk))
                    vals.append(coef)
            rhs.append(state.soc_kwh if k == 0 else 0.0)
            r += 1
    if b.heat_pump is not None:
        hp = b.heat_pump
        a = hp.decay(h)
        for k in range(K):  # r_k - a r_{k-1} - (1 - a) COP / UA q_k = (1 - a) θout_k
            for var, kk, coef in (
                ("r", k, 1.0), ("q", k, -(1.0 - a) * hp.cop / hp.ua_kw_per_k), ("r", k - 1, -a),
            ):  # fmt: skip
                if kk >= 0:
                    rows.append(r)
                    cols.append(ix(var, kk))
                    vals.append(coef)
            rhs.append((1.0 - a) * hp.outdoor_c[t + k] + (a * state.indoor_c if k == 0 else 0.0))
            r += 1
    a_eq = sp.csr_matrix((vals, (rows, cols)), shape=(r, n))
    a_ub = None
    b_ub = None
    ub_rows: list[int] = []
    ub_cols: list[int] = []
    ub_vals: list[float] = []
    ub_rhs: list[float] = []
    if b.battery is not None:  # e_{T-1} >= min(start, reachable)
        bat = b.battery
        reach = state.soc_kwh + h * bat.efficiency * bat.power_kw * K
        ub_rows.append(len(ub_rhs))
        ub_cols.append(ix("e", K - 1))
        ub_vals.append(-1.0)
        ub_rhs.append(-min(bat.soc_start_kwh, reach, bat.soc_max_kwh))
    if b.ev is not None and t < b.ev.departure_slot:
        need = b.ev.needed_kwh - state.ev_kwh
        if need > 0:
            row = len(ub_rhs)
            for k in range(b.ev.departure_slot - t):
                ub_rows.append(row)
                ub_cols.append(ix("g", k))
                ub_vals.append(-h * b.ev.efficiency)
            ub_rhs.append(-need)
    if ub_rhs:
        a_ub = sp.csr_matrix((ub_vals, (ub_rows, ub_cols)), shape=(len(ub_rhs), n))
        b_ub = np.array(ub_rhs)
    res = linprog(
        cost, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=np.array(rhs), bounds=bounds, method="highs"
    )
    if res.status != 0:
        msg = f"building {b.name}: its schedule for slots {t}..{T - 1} failed: {res.message}"
        raise NodeError(msg)
    return np.asarray(res.x, dtype=np.float64).reshape(len(_VARS), K)


def decide(
    b: Building, t: int, state: AgentState, buy: Sequence[float], sell: Sequence[float]
) -> SlotDecision:
    """Plan the rest of the day and carry out slot ``t``."""
    x = plan(b, t, state, buy, sell)
    c, d, g, q = float(x[0, 0]), float(x[1, 0]), float(x[2, 0]), float(x[6, 0])
    net = b.pv_kw[t] - b.load_kw[t] - c + d - g - q
    soc = state.soc_kwh
    if b.battery is not None:
        eta = b.battery.efficiency
        soc = soc + SLOT_HOURS * (eta * c - d / eta)
    ev = state.ev_kwh + SLOT_HOURS * (b.ev.efficiency * g if b.ev else 0.0)
    indoor = float("nan")
    if b.heat_pump is not None:
        indoor = b.heat_pump.next_temperature(state.indoor_c, t, q)
    return SlotDecision(c, d, g, net, soc, ev, q, indoor)


def expected_sell(
    export: Sequence[int], imports: Sequence[int], share: float | None
) -> list[float]:
    """The agent's expected sale price per slot, ticks per kWh.

    ``share`` is where the last CDA price fell between that slot's export and
    import tariffs (0 = export, 1 = import); the agent expects the same
    position in every later slot. ``None`` (no trade seen yet): the export tariff.
    """
    if share is None:
        return [float(e) for e in export]
    u = min(max(share, 0.0), 1.0)
    return [e + u * (i - e) for e, i in zip(export, imports, strict=True)]


def price_share(vwap: float, export: int, imports: int) -> float:
    """Where ``vwap`` lies between the tariffs: 0 at the export, 1 at the import price."""
    return (vwap - export) / (imports - export) if imports > export else 0.0


def schedule_day(b: Building, imports: Sequence[int], export: Sequence[int]) -> list[SlotDecision]:
    """The whole day against the tariffs only (the no-P2P design's agent)."""
    state = initial_state(b)
    out = []
    buy = [float(i) for i in imports]
    sell = expected_sell(export, imports, None)
    for t in range(len(imports)):
        dec = decide(b, t, state, buy, sell)
        out.append(dec)
        state = state_after(dec)
    return out
