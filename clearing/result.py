"""The outcome of one clearing: trades, prices, payments, welfare, flows, losses.

Money: prices are in currency per kWh; payments, penalties and welfare in
currency for the whole slot (power x ``slot_hours``). Inside the solver's
arrays (``payment``) a positive payment is paid by the peer, as in the
chapter's equations; everything this package shows people and programs
(``to_dict``, ``to_frames``, the report of ``p2pex clear``) uses the
ledger's one sign (docs/settlement.md): ``received`` > 0 when the peer is
paid. Penalties (the loss and congestion terms, 12.12 and 12.16) are paid
to the grid operator on top.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from clearing.case import Case
from clearing.certificate import Certificate
from clearing.problem import FloatArray, ProblemData
from clearing.solution import Solution, SolveInfo
from clearing.spec import ModelSpec

CONGESTION_TOLERANCE = 1e-6  # relative: a line is overloaded above cap * (1 + this)


@dataclass(frozen=True, slots=True, eq=False)
class ClearingResult:
    """Everything a clearing reports (arrays are in case peer order).

    Attributes:
        model: The model name (``basic``, ``loss``, ...; ``pool`` for the pool baseline).
        names: Peer names.
        line_names: Line names (network order).
        injection: P_i = Σ_j P_ij in kW.
        heat: H_i in kW_th (``None`` without heat).
        peer_price: π_i, the dual of peer i's balance 12.1, currency/kWh.
        heat_peer_price: The same for heat (``None`` without heat).
        payment: Money paid by each peer for its trades over the slot.
        penalty: Loss and congestion penalties paid by each peer over the slot
            (with hard line limits: the congestion charge ``(F^T μ)_i P_i``).
        welfare: Social welfare over the slot: consumers' utility minus
            producers' cost, without penalties or the tie-breaking term.
        objective: The solver's objective (per hour, with penalties and ε term).
        flows: Line flows in kW, positive downstream (from the root side).
        losses_kw: Σ r_l (P_l / V)^2 in kW.
        overloaded: Lines whose |flow| exceeds capacity in this clearing (not σ,
            the lines a congestion model penalises: that is ``spec.penalised``).
        line_price: Duals of the hard line limits (currency/kWh per kW of
            flow), ``fu - fl``, zeros when the limits are off.
        status, solver, compile_time_s, solve_time_s, iterations: From the solver.
        accurate: False when the solver could not reach the clearing's tightened
            tolerances and fell back to its defaults: the split of trades
            (P_ij) among producers is then loose by far more than a Wh; P_i,
            prices and the certificate's KKT checks are unaffected. When
            True, trades are resolved to about the settlement unit
            (docs/clearing.md states the measured accuracy).
        spec, solution: Model options and raw primal/dual values (the certificate).
        e_src, e_dst: The electricity pairs (seller, buyer) in peer indices,
            the storage of the trades: pair ``k`` carries ``pair_kw[k]`` at
            ``pair_price[k]`` (``solution.p``, ``solution.tau``).
        h_src, h_dst: The heat pairs likewise (empty without heat).
        wp, wc: Per-pair penalties of the seller and of the buyer, currency/kWh.

    Storage is linear in peers plus pairs: with partner sets a market of
    many peers has far fewer pairs than ``n²``. The dense ``n x n``
    matrices of the chapter's tables (:attr:`trades`, :attr:`trade_price`,
    :attr:`heat_trades`, :attr:`heat_trade_price`) are views built from the
    pairs on each access, O(n²) in time and memory: bind one to a name
    rather than indexing the property in a loop, and read the pair arrays
    for anything large.
    """

    model: str
    names: tuple[str, ...]
    line_names: tuple[str, ...]
    injection: FloatArray
    heat: FloatArray | None
    peer_price: FloatArray
    heat_peer_price: FloatArray | None
    payment: FloatArray
    penalty: FloatArray
    welfare: float
    objective: float
    flows: FloatArray
    losses_kw: float
    overloaded: tuple[str, ...]
    line_price: FloatArray
    status: str
    solver: str
    compile_time_s: float
    solve_time_s: float
    iterations: int
    spec: ModelSpec
    solution: Solution
    e_src: np.ndarray
    e_dst: np.ndarray
    h_src: np.ndarray
    h_dst: np.ndarray
    wp: FloatArray
    wc: FloatArray
    accurate: bool = True

    @property
    def certificate(self) -> Certificate:
        """The optimality certificate of this clearing."""
        return Certificate(
            model=self.model, names=self.names, spec=self.spec, solution=self.solution
        )

    @property
    def pair_kw(self) -> FloatArray:
        """P_ij of each electricity pair ``(e_src[k], e_dst[k])``, seller to buyer, kW (>= 0)."""
        return self.solution.p

    @property
    def pair_price(self) -> FloatArray:
        """τ_ij of each electricity pair, currency/kWh."""
        return self.solution.tau

    @property
    def heat_pair_kw(self) -> FloatArray:
        """H_ij of each heat pair ``(h_src[k], h_dst[k])``, kW_th (empty without heat)."""
        return self.solution.hp

    @property
    def heat_pair_price(self) -> FloatArray:
        """The heat trade price of each heat pair, currency/kWh (empty without heat)."""
        return self.solution.tauh

    @property
    def trades(self) -> FloatArray:
        """P_ij in kW as a dense ``n x n`` matrix, built on each access: O(n²).

        Row i is what i injects towards j (producer rows >= 0, consumer rows
        <= 0, ``P + P.T == 0``); zero where the pair may not trade. For a
        large market read :attr:`pair_kw` with ``e_src`` and ``e_dst``.
        """
        sol = self.solution
        return _matrix(len(self.names), self.e_src, self.e_dst, sol.p, sol.q)

    @property
    def trade_price(self) -> FloatArray:
        """τ_ij in currency/kWh as a dense ``n x n`` matrix, built on each access: O(n²).

        Symmetric, ``nan`` where the pair may not trade; :attr:`pair_price`
        holds the same per pair.
        """
        return _price_matrix(len(self.names), self.e_src, self.e_dst, self.solution.tau)

    @property
    def heat_trades(self) -> FloatArray | None:
        """H_ij in kW_th as a dense ``n x n`` matrix (``None`` without heat): O(n²) per access."""
        if self.heat is None:
            return None
        sol = self.solution
        return _matrix(len(self.names), self.h_src, self.h_dst, sol.hp, sol.hq)

    @property
    def heat_trade_price(self) -> FloatArray | None:
        """Heat trade prices as a dense ``n x n`` matrix (``None`` without heat): O(n²)."""
        if self.heat is None:
            return None
        return _price_matrix(len(self.names), self.h_src, self.h_dst, self.solution.tauh)

    def to_dict(self, min_kw: float = 1e-6) -> dict[str, Any]:
        """The clearing as plain data (JSON-ready): model, losses, lines, peers and trades.

        Peers carry ``injection_kw``, ``price`` (currency/kWh), ``received``
        and ``penalty`` (currency; received > 0 when the peer is paid, the
        ledger's sign); trades the seller, buyer, ``kw`` and ``price`` of
        every pair with more than ``min_kw`` traded.
        """
        names = list(self.names)
        sol = self.solution
        # Both sides of every pair, in the dense matrix's row-major order.
        rows = np.concatenate([self.e_src, self.e_dst])
        cols = np.concatenate([self.e_dst, self.e_src])
        kw = np.concatenate([sol.p, sol.q])
        price = np.concatenate([sol.tau, sol.tau])
        keep = np.flatnonzero(kw > min_kw)
        keep = keep[np.lexsort((cols[keep], rows[keep]))]
        trades = [
            {"seller": names[i], "buyer": names[j], "kw": k, "price": t}
            for i, j, k, t in zip(
                rows[keep].tolist(),
                cols[keep].tolist(),
                kw[keep].tolist(),
                price[keep].tolist(),
                strict=True,
            )
        ]
        peers = [
            {
                "name": name,
                "injection_kw": float(self.injection[i]),
                "price": float(self.peer_price[i]),
                "received": -float(self.payment[i]),
                "penalty": float(self.penalty[i]),
            }
            for i, name in enumerate(names)
        ]
        return {
            "model": self.model,
            "objective": float(self.objective),
            "welfare": float(self.welfare),
            "losses_kw": float(self.losses_kw),
            "overloaded": list(self.overloaded),
            "lines": [
                {"name": name, "flow_kw": float(self.flows[k])}
                for k, name in enumerate(self.line_names)
            ],
            "peers": peers,
            "trades": trades,
        }

    def to_frames(self) -> dict[str, Any]:
        """``to_dict``'s peers, trades and lines as pandas DataFrames (needs pandas).

        Raises:
            ImportError: pandas is not installed (``pip install pandas``).
        """
        try:
            import pandas as pd  # type: ignore[import-untyped]
        except ImportError as exc:
            msg = "ClearingResult.to_frames needs pandas: pip install pandas"
            raise ImportError(msg) from exc
        plain = self.to_dict()
        return {
            "peers": pd.DataFrame(plain["peers"]).set_index("name"),
            "trades": pd.DataFrame(plain["trades"], columns=["seller", "buyer", "kw", "price"]),
            "lines": pd.DataFrame(plain["lines"]).set_index("name"),
        }

    def trade(self, seller: str, buyer: str) -> float:
        """Return P_{seller, buyer} in kW (``trades[seller, buyer]``, without the dense matrix).

        Raises:
            ValueError: If a name is not a peer of the clearing.
        """
        i, j = self.names.index(seller), self.names.index(buyer)
        sol = self.solution
        forward = np.flatnonzero((self.e_src == i) & (self.e_dst == j))
        if forward.size:
            return float(sol.p[forward[-1]])
        backward = np.flatnonzero((self.e_src == j) & (self.e_dst == i))
        if backward.size:
            return float(sol.q[backward[-1]])
        return 0.0


def _matrix(
    n: int, src: np.ndarray, dst: np.ndarray, fwd: FloatArray, back: FloatArray
) -> FloatArray:
    out = np.zeros((n, n), dtype=np.float64)
    out[src, dst] = fwd
    out[dst, src] = back
    return out


def _price_matrix(n: int, src: np.ndarray, dst: np.ndarray, tau: FloatArray) -> FloatArray:
    out = np.full((n, n), np.nan)
    out[src, dst] = tau
    out[dst, src] = tau
    return out


def _peer_sum(n: int, src: np.ndarray, dst: np.ndarray, a: FloatArray, b: FloatArray) -> FloatArray:
    out = np.zeros(n, dtype=np.float64)
    np.add.at(out, src, a)
    np.add.at(out, dst, b)
    return out


def assemble_result(
    case: Case, model: str, data: ProblemData, sol: Solution, info: SolveInfo, spec: ModelSpec
) -> ClearingResult:
    """Derive the reported quantities from a solution."""
    n, s, d = data.n, data.e_src, data.e_dst
    hours = case.slot_hours
    # a producer receives tau * p, a consumer pays tau * |q|
    payment = -_peer_sum(n, s, d, sol.tau * sol.p, sol.tau * sol.q) * hours
    penalty = _peer_sum(n, s, d, data.wp * sol.p, -data.wc * sol.q) * hours
    cost = 0.5 * data.a * sol.P**2 + data.b * sol.P + data.c
    heat = heat_pp = None
    if data.heat:
        hs, hd = data.h_src, data.h_dst
        heat = sol.H
        heat_pp = sol.pih
        payment = payment - _peer_sum(n, hs, hd, sol.tauh * sol.hp, sol.tauh * sol.hq) * hours
        cost = cost + 0.5 * data.ah * sol.H**2 + data.bh * sol.H + data.ch
    net = case.network
    flows = data.flow @ sol.P
    caps = net.capacities()
    over = np.abs(flows) > caps * (1.0 + CONGESTION_TOLERANCE) + CONGESTION_TOLERANCE
    line_price = np.zeros(len(net.lines), dtype=np.float64)
    line_price[data.limited] = sol.fu - sol.fl
    if data.limited.size:
        # With hard limits the bilateral prices π, τ exclude congestion: each
        # peer also pays (F^T μ)_i per kW injected, so that its net price is
        # the nodal price π_i - (F^T μ)_i. Counted with the penalties.
        charge = data.flow[data.limited].T @ (sol.fu - sol.fl)
        penalty = penalty + charge * sol.P * hours
    return ClearingResult(
        model=model,
        names=case.names,
        line_names=tuple(ln.name for ln in net.lines),
        injection=sol.P,
        heat=heat,
        peer_price=sol.pi,
        heat_peer_price=heat_pp,
        payment=payment,
        penalty=penalty,
        welfare=-float(np.sum(cost)) * hours,
        objective=info.objective,
        flows=flows,
        losses_kw=net.losses_kw(flows),
        overloaded=tuple(net.lines[i].name for i in np.flatnonzero(over)),
        line_price=line_price,
        status=info.status,
        solver=info.solver,
        compile_time_s=info.compile_time_s,
        solve_time_s=info.solve_time_s,
        iterations=info.iterations,
        accurate=info.accurate,
        spec=spec,
        solution=sol,
        e_src=s,
        e_dst=d,
        h_src=data.h_src,
        h_dst=data.h_dst,
        wp=data.wp,
        wc=data.wc,
    )
