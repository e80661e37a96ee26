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
        trades: P_ij in kW, ``n x n``: row i is what i injects towards j
            (producer rows >= 0, consumer rows <= 0, ``P + P.T == 0``).
        injection: P_i = Σ_j P_ij in kW.
        heat_trades, heat: H_ij and H_i in kW_th (``None`` without heat).
        peer_price: π_i, the dual of peer i's balance 12.1, currency/kWh.
        trade_price: τ_ij, the dual of P_ij + P_ji = 0, currency/kWh
            (``nan`` where the pair may not trade).
        heat_peer_price, heat_trade_price: The same for heat (``None`` without heat).
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
    """

    model: str
    names: tuple[str, ...]
    line_names: tuple[str, ...]
    trades: FloatArray
    injection: FloatArray
    heat_trades: FloatArray | None
    heat: FloatArray | None
    peer_price: FloatArray
    trade_price: FloatArray
    heat_peer_price: FloatArray | None
    heat_trade_price: FloatArray | None
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

    def to_dict(self, min_kw: float = 1e-6) -> dict[str, Any]:
        """The clearing as plain data (JSON-ready): model, losses, lines, peers and trades.

        Peers carry ``injection_kw``, ``price`` (currency/kWh), ``received``
        and ``penalty`` (currency; received > 0 when the peer is paid, the
        ledger's sign); trades the seller, buyer, ``kw`` and ``price`` of
        every pair with more than ``min_kw`` traded.
        """
        names = list(self.names)
        trades = [
            {
                "seller": seller,
                "buyer": names[j],
                "kw": float(self.trades[i, j]),
                "price": float(self.trade_price[i, j]),
            }
            for i, seller in enumerate(names)
            for j in np.flatnonzero(self.trades[i] > min_kw)
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
        """Return P_{seller, buyer} in kW."""
        return float(self.trades[self.names.index(seller), self.names.index(buyer)])


def _matrix(
    n: int, src: np.ndarray, dst: np.ndarray, fwd: FloatArray, back: FloatArray
) -> FloatArray:
    out = np.zeros((n, n), dtype=np.float64)
    out[src, dst] = fwd
    out[dst, src] = back
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
    trades = _matrix(n, s, d, sol.p, sol.q)
    trade_price = np.full((n, n), np.nan)
    trade_price[s, d] = sol.tau
    trade_price[d, s] = sol.tau
    # a producer receives tau * p, a consumer pays tau * |q|
    payment = -_peer_sum(n, s, d, sol.tau * sol.p, sol.tau * sol.q) * hours
    penalty = _peer_sum(n, s, d, data.wp * sol.p, -data.wc * sol.q) * hours
    cost = 0.5 * data.a * sol.P**2 + data.b * sol.P + data.c
    heat_trades = heat = heat_pp = heat_tp = None
    if data.heat:
        hs, hd = data.h_src, data.h_dst
        heat_trades = _matrix(n, hs, hd, sol.hp, sol.hq)
        heat = sol.H
        heat_pp = sol.pih
        heat_tp = np.full((n, n), np.nan)
        heat_tp[hs, hd] = sol.tauh
        heat_tp[hd, hs] = sol.tauh
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
        trades=trades,
        injection=sol.P,
        heat_trades=heat_trades,
        heat=heat,
        peer_price=sol.pi,
        trade_price=trade_price,
        heat_peer_price=heat_pp,
        heat_trade_price=heat_tp,
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
