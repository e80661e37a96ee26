"""The multi-period clearing QP as sparse arrays: what the solver and the certificate share.

:func:`build_horizon_problem` turns a :class:`~clearing.horizon_case.HorizonCase`
and a :class:`HorizonSpec` into the standard form::

    min  ½ xᵀ diag(h) x + qᵀ x          s.t.   A_eq x = b_eq : y,   A_in x <= b_in : z >= 0

Per slot t (h = slot hours, powers in kW averaged over the slot, energies
in kWh, temperatures in °C), with a peer's own part ``X`` (its curve's
variable), its net market injection ``P`` and seller-side trades
``p_k >= 0`` for directed pairs ``k = (s_k -> d_k)``::

    Σ_i ½ a_it X_it² + b_it X_it                                 (12.6, 12.22)
    + Σ_k (wp_kt + wc_kt) p_kt + ε p_kt²                         (12.12, 12.16; tie-break)
    + Σ_k (dp_k + dc_k) p_kt + Σ_k (hdp_k + hdc_k) hp_kt         (pair penalties)
    + Σ grid spread_t u_t  + asset costs (fuel, wear)
    balance  X_it + Σ_assets inj_it - P_it = -fixed_it            : y (ρ_it)
    link     P_it - Σ_{k: s_k=i} p_kt + Σ_{k: d_k=i} p_kt = 0     : y (π_it = -y, 12.1, 12.10)
    bounds   q_min <= X <= q_max (12.7), p >= 0 (12.8, 12.9 per direction)
    heat     XH_it + fuel-cell heat_it - Σ_out hp + Σ_in hp = 0    : y (πh_it, 12.19, 12.23)
             heat bounds (12.29), CHP polygon on (X, XH) (12.24-12.26)
    flows    f_lt - Σ_{children} f_ct + Σ_{i below l} P_it = 0, |f_lt| <= cap_l (hard limits)
    assets   state of charge, EV energy at departure, room temperature,
             gas store, ramps: see clearing.assets

Every block is built vectorised over slots with scipy.sparse triplets, so
the size is linear in T and in the number of pairs: no T x pairs dense
array is ever made (the only dense matrix is the network's lines x peers F).

``dp_k = c_{s_k d_k}`` and ``dc_k = c_{d_k s_k}`` are the seller's and the
buyer's pair penalties (``HorizonPeer.pair_penalties``, product
differentiation), the same in every slot. As in the single-slot problem
(:mod:`clearing.problem`) they are a preference, not a charge: kept apart
from ``wp, wc`` (the grid's loss and congestion terms, which settlement pays
to the operator), they enter the objective, its KKT check and the trade
prices τ only (``wp + dp`` on the seller's side, ``wc + dc`` on the buyer's).

Heat trades have their own partner sets and pair penalties
(``HorizonPeer.heat_partners``, ``heat_pair_penalties``: the electricity
sets and no penalty unless a peer has ``heat_terms``). ``hdp_k`` and
``hdc_k`` join the heat trade's linear cost ``(hdp + hdc) hp_kt`` and the
heat trade prices the same way; heat trades carry no grid term, so no heat
penalty is ever money paid.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from clearing.assets import (
    PPM,
    Battery,
    ChpUnit,
    ElectricVehicle,
    FuelCellChp,
    HeatPump,
    InflexibleLoad,
    Photovoltaic,
    PowerToGas,
    RampLimit,
)
from clearing.errors import EmptyMarket, InvalidOption
from clearing.horizon_case import HorizonCase, PeerKind, curve_rates
from clearing.horizon_errors import InvalidAsset
from clearing.spec import Model, parse_model

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
Group = tuple[str, int, int]  # (name, first row, end row)


@dataclass(frozen=True, slots=True)
class HorizonSpec:
    """Everything besides the case that fixes the horizon QP.

    Attributes:
        model: One of the chapter's models (basic, loss, congestion,
            loss+congestion, heat); it says which signals are used: α for
            loss, loss+congestion and heat; β for congestion,
            loss+congestion and heat.
        line_limits: Hard limits ``|flow| <= capacity`` in every slot.
        penalised: σ_t per slot (the lines that set θ_ij).
        beta_scale: Factor on every β (the congestion procedure may grow it).
    """

    model: Model
    line_limits: bool
    penalised: tuple[tuple[str, ...], ...]
    beta_scale: float = 1.0


def make_horizon_spec(
    case: HorizonCase,
    model: str | Model = Model.BASIC,
    *,
    line_limits: bool = False,
    penalised: tuple[tuple[str, ...], ...] | None = None,
    beta_scale: float = 1.0,
) -> HorizonSpec:
    """Return the spec of ``model`` on ``case`` (σ_t from the signals unless given).

    Raises:
        InvalidOption: Unknown model, heat without heat data, bad σ or β scale.
    """
    m = parse_model(model)
    if m is Model.HEAT and not case.has_heat:
        msg = f"model 'heat' needs heat curves, and horizon {case.name!r} has none"
        raise InvalidOption(msg)
    if penalised is None:
        penalised = tuple(case.signal(t).penalised for t in range(case.slots))
    if len(penalised) != case.slots:
        msg = f"penalised needs one tuple per slot ({case.slots}), got {len(penalised)}"
        raise InvalidOption(msg)
    if not (isinstance(beta_scale, int | float) and 1.0 <= beta_scale < float("inf")):
        msg = f"beta_scale must be finite and >= 1, got {beta_scale!r}"
        raise InvalidOption(msg)
    return HorizonSpec(m, bool(line_limits), tuple(tuple(s) for s in penalised), float(beta_scale))


@dataclass(frozen=True, slots=True, eq=False)
class HorizonProblem:
    """The horizon QP (see the module docstring) and the indices to read its solution.

    ``blocks`` maps a variable block name to its index array (shape
    ``(T, k)`` for per-slot blocks); ``eq_groups``/``in_groups`` name row
    ranges for the certificate's report; ``assets`` maps ``(peer, asset)``
    to that asset's variable blocks.
    """

    names: tuple[str, ...]
    slots: int
    slot_hours: float
    hdiag: FloatArray
    q: FloatArray
    const: float
    a_eq: sp.csr_matrix
    b_eq: FloatArray
    a_in: sp.csr_matrix
    b_in: FloatArray
    eq_groups: tuple[Group, ...]
    in_groups: tuple[Group, ...]
    blocks: dict[str, IntArray]
    assets: dict[tuple[str, str], dict[str, IntArray]]
    e_src: IntArray
    e_dst: IntArray
    h_src: IntArray
    h_dst: IntArray
    r_pair: FloatArray
    wp: FloatArray  # (T, m) seller-side penalty per kW
    wc: FloatArray  # (T, m) buyer-side penalty per kW
    dp: FloatArray  # (m,) seller-side pair penalty per kW, every slot (not paid)
    dc: FloatArray  # (m,) buyer-side pair penalty per kW, every slot (not paid)
    hdp: FloatArray  # (mh,) seller-side heat pair penalty per kW_th, every slot (not paid)
    hdc: FloatArray  # (mh,) buyer-side heat pair penalty per kW_th, every slot (not paid)
    heat: bool
    flow: FloatArray  # F, lines x peers
    limited: IntArray
    eps: float

    @property
    def size(self) -> tuple[int, int, int]:
        """(variables, equality rows, inequality rows)."""
        return self.q.size, self.b_eq.size, self.b_in.size


@dataclass(slots=True)
class _Builder:
    """Collects variables, costs and constraint triplets; rows are numbered per kind."""

    nvar: int = 0
    hdiag: list[FloatArray] = field(default_factory=list)
    q: list[FloatArray] = field(default_factory=list)
    blocks: dict[str, IntArray] = field(default_factory=dict)
    rows: dict[str, list[IntArray]] = field(default_factory=lambda: {"eq": [], "in": []})
    cols: dict[str, list[IntArray]] = field(default_factory=lambda: {"eq": [], "in": []})
    vals: dict[str, list[FloatArray]] = field(default_factory=lambda: {"eq": [], "in": []})
    rhs: dict[str, list[FloatArray]] = field(default_factory=lambda: {"eq": [], "in": []})
    groups: dict[str, list[Group]] = field(default_factory=lambda: {"eq": [], "in": []})
    nrow: dict[str, int] = field(default_factory=lambda: {"eq": 0, "in": 0})

    def var(
        self,
        name: str,
        shape: tuple[int, ...],
        *,
        lb: FloatArray | float | None = None,
        ub: FloatArray | float | None = None,
        quad: FloatArray | float = 0.0,
        lin: FloatArray | float = 0.0,
        group: str | None = None,
    ) -> IntArray:
        """Add a block of variables; bounds become inequality rows ``group.lb``/``group.ub``."""
        size = int(np.prod(shape))
        idx = np.arange(self.nvar, self.nvar + size, dtype=np.int64).reshape(shape)
        self.nvar += size
        self.blocks[name] = idx
        self.hdiag.append(np.broadcast_to(np.asarray(quad, np.float64), shape).ravel().copy())
        self.q.append(np.broadcast_to(np.asarray(lin, np.float64), shape).ravel().copy())
        g = group or name
        flat = idx.ravel()
        inf = np.full(size, np.inf)
        u = inf if ub is None else np.broadcast_to(np.asarray(ub, np.float64), shape).ravel()
        lo = -inf if lb is None else np.broadcast_to(np.asarray(lb, np.float64), shape).ravel()
        # Equal bounds become one equality: two active inequalities would leave
        # the solver free to grow both multipliers, and the certificate's scale with them.
        fixed = np.isfinite(u) & (lo == u)
        self.add(
            "eq",
            f"{g}.fixed",
            np.arange(int(fixed.sum())),
            flat[fixed],
            np.ones(int(fixed.sum())),
            u[fixed],
        )
        keep = np.isfinite(u) & ~fixed
        self.bound(f"{g}.ub", flat[keep], 1.0, u[keep])
        keep = np.isfinite(lo) & ~fixed
        self.bound(f"{g}.lb", flat[keep], -1.0, -lo[keep])
        return idx

    def bound(self, name: str, cols: IntArray, sign: float, rhs: FloatArray) -> None:
        """Add ``sign x[cols] <= rhs`` (one row per column)."""
        k = cols.size
        self.add("in", name, np.arange(k), cols, np.full(k, sign), rhs)

    def add(
        self,
        kind: str,
        name: str,
        rows: IntArray | npt.ArrayLike,
        cols: IntArray | npt.ArrayLike,
        vals: FloatArray | npt.ArrayLike,
        rhs: FloatArray | npt.ArrayLike,
    ) -> None:
        """Add a row group of ``kind`` ("eq" or "in"); ``rows`` are local (0 .. len(rhs)-1)."""
        b = np.asarray(rhs, np.float64).ravel()
        if b.size == 0:
            return
        start = self.nrow[kind]
        self.rows[kind].append(np.asarray(rows, np.int64).ravel() + start)
        self.cols[kind].append(np.asarray(cols, np.int64).ravel())
        self.vals[kind].append(np.asarray(vals, np.float64).ravel())
        self.rhs[kind].append(b)
        self.nrow[kind] = start + b.size
        self.groups[kind].append((name, start, start + b.size))

    def matrix(self, kind: str) -> tuple[sp.csr_matrix, FloatArray]:
        """Return the assembled (A, b) of ``kind``."""
        n = self.nrow[kind]

        def cat(parts: Sequence[npt.NDArray[Any]], dtype: type) -> npt.NDArray[Any]:
            return np.concatenate(parts) if parts else np.zeros(0, dtype)

        a = sp.csr_matrix(
            (
                cat(self.vals[kind], np.float64),
                (cat(self.rows[kind], np.int64), cat(self.cols[kind], np.int64)),
            ),
            shape=(n, self.nvar),
        )
        a.sum_duplicates()
        return a, np.asarray(cat(self.rhs[kind], np.float64), dtype=np.float64)


def _pairs(
    case: HorizonCase,
    sells: BoolArray,
    buys: BoolArray,
    partners: Sequence[tuple[str, ...] | None] | None = None,
) -> tuple[IntArray, IntArray]:
    """Directed (seller, buyer) pairs allowed by both trading sets, row-major order.

    ``partners`` are the sets of the product traded, one per peer (``None``:
    the electricity sets, ``HorizonPeer.partners``).
    """
    n = len(case.peers)
    if partners is None:
        partners = [peer.partners for peer in case.peers]
    allowed = np.outer(sells, buys)
    np.fill_diagonal(allowed, False)
    for i, mu in enumerate(partners):
        if mu is not None:
            mask = np.zeros(n, dtype=np.bool_)
            mask[[case.index(x) for x in mu]] = True
            allowed[i, :] &= mask
            allowed[:, i] &= mask
    src, dst = np.nonzero(allowed)
    return src.astype(np.int64), dst.astype(np.int64)


def horizon_pair_penalties(
    case: HorizonCase, src: IntArray, dst: IntArray, *, heat: bool = False
) -> tuple[FloatArray, FloatArray]:
    """Each pair's penalties ``(dp, dc)``: c_{src,dst} for the seller, c_{dst,src} for the buyer.

    Pairs must be sorted by (src, dst), as :func:`_pairs` returns them. A
    prosumer's penalty towards j weighs both its sales to j (seller side)
    and its purchases from j (buyer side); a penalty towards a peer it has
    no pair with is skipped. One binary search per penalty and side.
    ``heat`` takes the heat trades' penalties (``HorizonPeer.heat_pair_penalties``)
    instead of the electricity ones.
    """
    m = src.size
    dp = np.zeros(m, dtype=np.float64)
    dc = np.zeros(m, dtype=np.float64)
    n = len(case.peers)
    keys = src * n + dst
    for i, peer in enumerate(case.peers):
        for other, cost in peer.heat_pair_penalties if heat else peer.pair_penalties:
            j = case.index(other)
            for key, side in ((i * n + j, dp), (j * n + i, dc)):
                k = int(np.searchsorted(keys, key))
                if k < m and keys[k] == key:
                    side[k] += cost
    return dp, dc


def _kw(w: float) -> float:
    return w / 1000.0


def _ramp_rows(
    bld: _Builder,
    x: IntArray,
    up: float | None,
    down: float | None,
    initial: float | None,
    hours: float,
) -> None:
    """``-down h <= x_t - x_{t-1} <= up h`` (kW), from ``initial`` before slot 0."""
    T = x.size
    for sign, limit, name in ((1.0, up, "ramp.up"), (-1.0, down, "ramp.down")):
        if limit is None:
            continue
        lim = _kw(limit) * hours
        k = np.arange(T - 1)
        rows = np.concatenate([k, k])
        cols = np.concatenate([x[1:], x[:-1]])
        vals = np.concatenate([np.full(T - 1, sign), np.full(T - 1, -sign)])
        bld.add("in", name, rows, cols, vals, np.full(T - 1, lim))
        if initial is not None:
            bld.add("in", name, [0], [x[0]], [sign], [lim + sign * _kw(initial)])


def _storage(
    bld: _Builder,
    key: str,
    kind: str,
    e0: float,
    lo: float,
    hi: float,
    final: float | None,
    flows: list[tuple[IntArray, float]],
    hours: float,
) -> IntArray:
    """A store ``e_j = e_{j-1} + h Σ coef x_j`` (kWh) from ``e0``, ``lo <= e <= hi``."""
    length = flows[0][0].size
    e = bld.var(f"{key}.energy", (length,), lb=lo, ub=hi, group=f"{kind}.energy")
    j = np.arange(length)
    rows = [j, j[1:]]
    cols = [e, e[:-1]]
    vals = [np.ones(length), -np.ones(length - 1)]
    for x, coef in flows:
        rows.append(j)
        cols.append(x)
        vals.append(np.full(length, -coef * hours))
    rhs = np.zeros(length)
    rhs[0] = e0
    bld.add(
        "eq",
        f"{kind}.dynamics",
        np.concatenate(rows),
        np.concatenate(cols),
        np.concatenate(vals),
        rhs,
    )
    if final is not None:
        bld.add("in", f"{kind}.final", [0], [e[-1]], [-1.0], [-final])
    return e


def build_horizon_problem(case: HorizonCase, spec: HorizonSpec) -> HorizonProblem:
    """Build the QP arrays of ``case`` under ``spec`` (pure; no solver).

    Raises:
        EmptyMarket: If no trade is allowed.
        InvalidNetwork: If σ names an unknown line.
        InvalidAsset: A fuel cell whose heat has nowhere to go in the heat model.
    """
    peers, net = case.peers, case.network
    n, T, hours, tick = len(peers), case.slots, case.slot_hours, case.tick
    heat = spec.model is Model.HEAT
    sells = np.array([p.sells for p in peers], dtype=np.bool_)
    buys = np.array([p.buys for p in peers], dtype=np.bool_)
    e_src, e_dst = _pairs(case, sells, buys)
    if e_src.size == 0:
        msg = "empty market: no seller-buyer pair is allowed by the trading sets"
        raise EmptyMarket(msg)
    m = e_src.size
    bus = net.bus_indices(net.bus_of(p.name) for p in peers)
    r_pair = net.pair_resistance(bus[e_src], bus[e_dst])
    use_alpha = spec.model in (Model.LOSS, Model.LOSS_CONGESTION, Model.HEAT)
    use_beta = spec.model in (Model.CONGESTION, Model.LOSS_CONGESTION, Model.HEAT)
    wp = np.zeros((T, m))
    theta_cache: dict[tuple[str, ...], BoolArray] = {}
    for t in range(T):
        sig = case.signal(t)
        alpha = sig.alpha_milli / 1000.0 if use_alpha else 0.0
        beta = sig.beta_milli / 1000.0 * spec.beta_scale if use_beta else 0.0
        sigma = spec.penalised[t] if use_beta else ()
        if sigma not in theta_cache:
            lines = net.line_indices(sigma)
            theta_cache[sigma] = net.pair_crosses(bus[e_src], bus[e_dst], lines)
        wp[t] = alpha * r_pair + beta * theta_cache[sigma]
    wc = wp.copy()  # per-slot signals are the same for both sides of a trade

    # own part X: curves in rate units (see horizon_case.curve_rates)
    rates = np.array([[curve_rates(p.curve(t), tick, hours) for p in peers] for t in range(T)])
    a_x, b_x, c_x, lo_x, hi_x = (rates[:, :, j] for j in range(5))
    gi = next((i for i, p in enumerate(peers) if p.kind is PeerKind.GRID), None)
    spread = np.zeros(T)
    if gi is not None:
        for t in range(T):
            sig = case.signal(t)
            if sig.import_tariff is not None:
                b_x[t, gi] = sig.import_tariff * tick
            if sig.export_tariff is not None:
                spread[t] = b_x[t, gi] - sig.export_tariff * tick
    bld = _Builder()
    X = bld.var("X", (T, n), lb=lo_x, ub=hi_x, quad=a_x, lin=b_x, group="own")
    P = bld.var("P", (T, n))
    eps = float(case.regularisation)
    dp, dc = horizon_pair_penalties(case, e_src, e_dst)
    p = bld.var("p", (T, m), lb=0.0, quad=2.0 * eps, lin=wp + wc + dp + dc, group="trade")
    const = float(c_x.sum())
    if gi is not None and peers[gi].buys and spread.any():
        # the grid buys at the export tariff: cost b X + (b - export) max(0, -X)
        u = bld.var("grid_export", (T,), lb=0.0, lin=spread, group="grid_export")
        bld.add(
            "in",
            "grid_export.epigraph",
            np.r_[np.arange(T), np.arange(T)],
            np.r_[u, X[:, gi]],
            np.r_[-np.ones(T), -np.ones(T)],
            np.zeros(T),
        )

    # balance X + Σ inj - P = -fixed, collected as triplets over (t, i)
    inj_rows: list[IntArray] = [np.arange(T * n)]
    inj_cols: list[IntArray] = [X.ravel()]
    inj_vals: list[FloatArray] = [np.ones(T * n)]
    fixed = np.zeros((T, n))
    heat_rows: list[IntArray] = []
    heat_cols: list[IntArray] = []
    heat_vals: list[FloatArray] = []
    assets: dict[tuple[str, str], dict[str, IntArray]] = {}
    XH = None
    if heat:
        hrates = np.zeros((T, n, 5))
        for i, peer in enumerate(peers):
            chp = next((x for x in peer.assets if isinstance(x, ChpUnit)), None)
            for t in range(T):
                hc = peer.heat_curve(t)
                if hc is not None:
                    hrates[t, i] = curve_rates(hc, tick, hours)
                elif chp is not None:  # as the single-slot case: zero cost, [0, max H]
                    hrates[t, i, 4] = max(h for _, h in chp.region().points())
        XH = bld.var(
            "XH",
            (T, n),
            lb=hrates[:, :, 3],
            ub=hrates[:, :, 4],
            quad=hrates[:, :, 0],
            lin=hrates[:, :, 1],
            group="own_heat",
        )
        const += float(hrates[:, :, 2].sum())

    slots = np.arange(T)
    for i, peer in enumerate(peers):
        for asset in peer.assets:
            key = f"{peer.name}/{asset.name}"
            ix: dict[str, IntArray] = {}

            def inject(cols: IntArray, sign: float, at: IntArray = slots, *, i: int = i) -> None:
                inj_rows.append(at * n + i)
                inj_cols.append(cols)
                inj_vals.append(np.full(cols.size, sign))

            if isinstance(asset, Battery):
                eta_c = asset.charge_efficiency_ppm / PPM
                eta_d = asset.discharge_efficiency_ppm / PPM
                wear = asset.cycle_cost * tick
                ch = bld.var(
                    f"{key}.charge",
                    (T,),
                    lb=0.0,
                    ub=_kw(asset.charge_w),
                    lin=wear,
                    group="battery.charge",
                )
                dis = bld.var(
                    f"{key}.discharge",
                    (T,),
                    lb=0.0,
                    ub=_kw(asset.discharge_w),
                    lin=wear,
                    group="battery.discharge",
                )
                soc = _storage(
                    bld,
                    key,
                    "battery",
                    _kw(asset.initial_wh),
                    _kw(asset.soc_min_wh),
                    _kw(asset.soc_max_wh),
                    _kw(asset.final_wh),
                    [(ch, eta_c), (dis, -1.0 / eta_d)],
                    hours,
                )
                inject(dis, 1.0)
                inject(ch, -1.0)
                ix = {"charge": ch, "discharge": dis, "soc": soc}
            elif isinstance(asset, ElectricVehicle):
                stay = np.arange(asset.arrival_slot, asset.departure_slot)
                eta = asset.efficiency_ppm / PPM
                ch = bld.var(
                    f"{key}.charge", (stay.size,), lb=0.0, ub=_kw(asset.charge_w), group="ev.charge"
                )
                flows = [(ch, eta)]
                inject(ch, -1.0, stay)
                ix = {"charge": ch}
                if asset.v2g_w:
                    v2g = bld.var(
                        f"{key}.v2g", (stay.size,), lb=0.0, ub=_kw(asset.v2g_w), group="ev.v2g"
                    )
                    flows.append((v2g, -1.0 / eta))
                    inject(v2g, 1.0, stay)
                    ix["v2g"] = v2g
                ix["soc"] = _storage(
                    bld,
                    key,
                    "ev",
                    _kw(asset.arrival_wh),
                    0.0,
                    _kw(asset.capacity_wh),
                    _kw(asset.arrival_wh + asset.needed_wh),
                    flows,
                    hours,
                )
                ix["slots"] = stay
            elif isinstance(asset, HeatPump):
                keep = asset.decay(hours)
                ua = _kw(asset.ua_w_per_k)
                cop = asset.cop_ppm / PPM * (-1.0 if asset.cooling else 1.0)
                gains = np.asarray(asset.gains_w or (0,) * T, np.float64) / 1000.0
                outdoor = np.asarray(asset.outdoor_mc, np.float64) / 1000.0
                el = bld.var(
                    f"{key}.power", (T,), lb=0.0, ub=_kw(asset.power_w), group="heat_pump.power"
                )
                temp = bld.var(
                    f"{key}.temperature",
                    (T,),
                    lb=np.asarray(asset.comfort_min_mc, np.float64) / 1000.0,
                    ub=np.asarray(asset.comfort_max_mc, np.float64) / 1000.0,
                    group="heat_pump.comfort",
                )
                rhs = (1.0 - keep) * (outdoor + gains / ua)
                rhs[0] += keep * asset.initial_mc / 1000.0
                bld.add(
                    "eq",
                    "heat_pump.room",
                    np.r_[slots, slots, slots[1:]],
                    np.r_[temp, el, temp[:-1]],
                    np.r_[np.ones(T), np.full(T, -(1.0 - keep) * cop / ua), np.full(T - 1, -keep)],
                    rhs,
                )
                inject(el, -1.0)
                ix = {"power": el, "temperature": temp}
            elif isinstance(asset, ChpUnit):
                _ramp_rows(
                    bld,
                    X[:, i],
                    asset.ramp_up_w_per_h,
                    asset.ramp_down_w_per_h,
                    asset.initial_w,
                    hours,
                )
                if heat and XH is not None:
                    planes = np.array(asset.region().halfplanes())  # (4, 3): gp, gh, g
                    k = np.arange(4 * T)
                    bld.add(
                        "in",
                        "chp.region",
                        np.r_[k, k],
                        np.r_[np.repeat(X[:, i], 4), np.repeat(XH[:, i], 4)],
                        np.r_[np.tile(planes[:, 0], T), np.tile(planes[:, 1], T)],
                        np.tile(planes[:, 2], T),
                    )
            elif isinstance(asset, RampLimit):
                _ramp_rows(
                    bld,
                    X[:, i],
                    asset.ramp_up_w_per_h,
                    asset.ramp_down_w_per_h,
                    asset.initial_w,
                    hours,
                )
            elif isinstance(asset, FuelCellChp):
                eta_e = asset.electric_efficiency_ppm / PPM
                out = bld.var(
                    f"{key}.power",
                    (T,),
                    lb=_kw(asset.min_power_w),
                    ub=_kw(asset.power_w),
                    lin=asset.fuel_price * tick / eta_e,
                    group="fuel_cell.power",
                )
                _ramp_rows(
                    bld, out, asset.ramp_up_w_per_h, asset.ramp_down_w_per_h, asset.initial_w, hours
                )
                inject(out, 1.0)
                ix = {"power": out}
                if heat and asset.heat_ratio > 0:
                    if peer.heat is None:
                        raise InvalidAsset(
                            asset=asset.name,
                            peer=peer.name,
                            field="heat",
                            got=None,
                            want="a heat curve on the peer in the heat "
                            "model (the fuel cell's heat must go somewhere)",
                        )
                    heat_rows.append(slots * n + i)
                    heat_cols.append(out)
                    heat_vals.append(np.full(T, asset.heat_ratio))
            elif isinstance(asset, PowerToGas):
                el = bld.var(
                    f"{key}.electrolyser",
                    (T,),
                    lb=0.0,
                    ub=_kw(asset.electrolyser_w),
                    group="p2g.electrolyser",
                )
                fc = bld.var(
                    f"{key}.fuel_cell",
                    (T,),
                    lb=0.0,
                    ub=_kw(asset.fuel_cell_w),
                    group="p2g.fuel_cell",
                )
                gas = _storage(
                    bld,
                    key,
                    "p2g",
                    _kw(asset.initial_wh),
                    0.0,
                    _kw(asset.storage_wh),
                    _kw(asset.final_wh),
                    [
                        (el, asset.electrolyser_efficiency_ppm / PPM),
                        (fc, -PPM / asset.fuel_cell_efficiency_ppm),
                    ],
                    hours,
                )
                inject(fc, 1.0)
                inject(el, -1.0)
                ix = {"electrolyser": el, "fuel_cell": fc, "gas": gas}
            elif isinstance(asset, Photovoltaic):
                avail = np.asarray(asset.profile_wh, np.float64) / 1000.0 / hours
                if asset.curtailable:
                    pv = bld.var(f"{key}.output", (T,), lb=0.0, ub=avail, group="pv.output")
                    inject(pv, 1.0)
                    ix = {"output": pv}
                else:
                    fixed[:, i] += avail
            elif isinstance(asset, InflexibleLoad):
                fixed[:, i] -= np.asarray(asset.profile_wh, np.float64) / 1000.0 / hours
            if ix:
                assets[(peer.name, asset.name)] = ix

    inj_rows.append(np.arange(T * n))
    inj_cols.append(P.ravel())
    inj_vals.append(-np.ones(T * n))
    bld.add(
        "eq",
        "balance",
        np.concatenate(inj_rows),
        np.concatenate(inj_cols),
        np.concatenate(inj_vals),
        -fixed.ravel(),
    )
    # link: P_it - Σ_out p + Σ_in p = 0
    tt = np.repeat(slots, m)
    kk = np.tile(np.arange(m), T)
    pf = p.ravel()
    bld.add(
        "eq",
        "link",
        np.r_[np.arange(T * n), tt * n + e_src[kk], tt * n + e_dst[kk]],
        np.r_[P.ravel(), pf, pf],
        np.r_[np.ones(T * n), -np.ones(T * m), np.ones(T * m)],
        np.zeros(T * n),
    )

    h_src = h_dst = np.zeros(0, dtype=np.int64)
    hdp = hdc = np.zeros(0, dtype=np.float64)
    if heat and XH is not None:
        h_sells = np.array([pr.sells_heat for pr in peers], dtype=np.bool_)
        h_buys = np.array([pr.buys_heat for pr in peers], dtype=np.bool_)
        h_src, h_dst = _pairs(case, h_sells, h_buys, [pr.heat_partners for pr in peers])
        mh = h_src.size
        hdp, hdc = horizon_pair_penalties(case, h_src, h_dst, heat=True)
        hp = bld.var("hp", (T, mh), lb=0.0, quad=2.0 * eps, lin=hdp + hdc, group="heat_trade")
        th = np.repeat(slots, mh)
        kh = np.tile(np.arange(mh), T)
        hpf = hp.ravel()
        bld.add(
            "eq",
            "heat_link",
            np.concatenate([np.arange(T * n), th * n + h_src[kh], th * n + h_dst[kh], *heat_rows]),
            np.concatenate([XH.ravel(), hpf, hpf, *heat_cols]),
            np.concatenate([np.ones(T * n), -np.ones(T * mh), np.ones(T * mh), *heat_vals]),
            np.zeros(T * n),
        )

    caps = net.capacities()
    flow = net.flow_matrix(bus)
    limited = np.flatnonzero(np.isfinite(caps)) if spec.line_limits else np.zeros(0, np.int64)
    if limited.size:
        nl = len(net.lines)
        f = bld.var("f", (T, nl))
        peer_line = net.lines_above(bus)
        line_parent = net.lines_above_lines()
        at = np.flatnonzero(peer_line >= 0)
        below = np.flatnonzero(line_parent >= 0)
        rows = [np.arange(T * nl)]
        cols = [f.ravel()]
        vals = [np.ones(T * nl)]
        for t in range(T):  # T x (lines + peers) triplets: small, linear in T
            rows += [t * nl + line_parent[below], t * nl + peer_line[at]]
            cols += [f[t, below], P[t, at]]
            vals += [-np.ones(below.size), np.ones(at.size)]
        bld.add(
            "eq",
            "flow",
            np.concatenate(rows),
            np.concatenate(cols),
            np.concatenate(vals),
            np.zeros(T * nl),
        )
        fl = f[:, limited].ravel()
        cap = np.tile(caps[limited], T)
        bld.bound("line.up", fl, 1.0, cap)
        bld.bound("line.lo", fl, -1.0, cap)

    a_eq, b_eq = bld.matrix("eq")
    a_in, b_in = bld.matrix("in")
    return HorizonProblem(
        names=case.names,
        slots=T,
        slot_hours=hours,
        hdiag=np.concatenate(bld.hdiag),
        q=np.concatenate(bld.q),
        const=const,
        a_eq=a_eq,
        b_eq=b_eq,
        a_in=a_in,
        b_in=b_in,
        eq_groups=tuple(bld.groups["eq"]),
        in_groups=tuple(bld.groups["in"]),
        blocks=bld.blocks,
        assets=assets,
        e_src=e_src,
        e_dst=e_dst,
        h_src=h_src,
        h_dst=h_dst,
        r_pair=np.asarray(r_pair, np.float64),
        wp=wp,
        wc=wc,
        dp=dp,
        dc=dc,
        hdp=hdp,
        hdc=hdc,
        heat=heat,
        flow=flow,
        limited=np.asarray(limited, np.int64),
        eps=eps,
    )
