"""Text report of a case: the chapter's tables 12.1-12.4 and the congestion rounds.

Text only: ``p2pex clear`` (:mod:`clearing.command`) puts it together with
the plots and the AC check, so this module imports neither.
"""

from __future__ import annotations

from collections.abc import Sequence

from clearing.case import Case
from clearing.market import clear, congestion_procedure, pool_dispatch
from clearing.problem import FloatArray
from clearing.result import ClearingResult
from clearing.solve import Clearer
from clearing.spec import parse_model
from clearing.sweep import ALPHAS_MILLI

MAX_COLUMNS = 12  # a wider table is folded into blocks of this many data columns


def _table(title: str, head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A right-aligned text table; past ``MAX_COLUMNS`` columns, folded into blocks.

    Each block repeats the first column (the row's name), so a 100-peer
    market reads as several narrow tables instead of one 300-column line.
    """
    blocks = [
        list(range(1, len(head)))[k : k + MAX_COLUMNS] for k in range(0, len(head) - 1, MAX_COLUMNS)
    ]
    out = [title]
    for n, block in enumerate(blocks or [[]]):
        cols = [0, *block]
        widths = [max(len(head[c]), *(len(r[c]) for r in rows)) for c in cols]
        fmt = "  ".join(f"{{:>{w}}}" for w in widths)
        if len(blocks) > 1:
            out.append(f"(columns {block[0]}-{block[-1]} of {len(head) - 1})" if n else "")
        out.append(fmt.format(*(head[c] for c in cols)))
        out.append(fmt.format(*("-" * w for w in widths)))
        out += [fmt.format(*(r[c] for c in cols)) for r in rows]
    return "\n".join(line for line in out if line or len(blocks) > 1)


def format_trade_matrix(case: Case, matrix: FloatArray, title: str) -> str:
    """Format producers (rows) x consumers (columns) of a trade matrix, in kW."""
    sellers = [i for i, p in enumerate(case.peers) if p.is_producer]
    buyers = [i for i, p in enumerate(case.peers) if not p.is_producer]
    rows = [
        [case.names[s], *(f"{matrix[s, d]:.1f}" for d in buyers), f"{matrix[s, buyers].sum():.1f}"]
        for s in sellers
    ]
    rows.append(["total", *(f"{-matrix[d, sellers].sum():.1f}" for d in buyers), ""])
    head = ["kW", *(case.names[d] for d in buyers), "sold"]
    return _table(title, head, rows)


def format_peer_summary(case: Case, result: ClearingResult) -> str:
    """Format each peer's P_i (H_i), price, payment and penalty."""
    cur = case.currency
    rows = []
    for i, name in enumerate(case.names):
        row = [
            name,
            case.peers[i].role.value,
            f"{result.injection[i]:.2f}",
            f"{result.peer_price[i]:.4f}",
            f"{-result.payment[i]:.3f}",
            f"{result.penalty[i]:.4f}",
        ]
        if result.heat is not None and result.heat_peer_price is not None:
            row += [f"{result.heat[i]:.2f}", f"{result.heat_peer_price[i]:.4f}"]
        rows.append(row)
    head = ["peer", "role", "P_i kW", f"price {cur}/kWh", f"received {cur}", f"penalty {cur}"]
    if result.heat is not None:
        head += ["H_i kW", f"heat price {cur}/kWh"]
    title = (
        f"Peers ({result.model}): welfare {result.welfare:.2f} {cur}, "
        f"losses {result.losses_kw:.3f} kW, solver {result.status} "
        f"({result.compile_time_s * 1000:.1f} ms compile, "
        f"{result.solve_time_s * 1000:.1f} ms solve)"
    )
    return _table(title, head, rows)


def format_flows(case: Case, results: Sequence[ClearingResult], labels: Sequence[str]) -> str:
    """Format line flows (kW) of several clearings side by side with capacities."""
    net = case.network
    rows = []
    for li, line in enumerate(net.lines):
        row = [line.name, f"{net.parent_bus(li)}->{net.child_bus(li)}", f"{line.capacity_kw:g}"]
        for r in results:
            mark = "*" if line.name in r.overloaded else ""
            row.append(f"{r.flows[li]:.1f}{mark}")
        rows.append(row)
    head = ["line", "buses", "cap kW", *labels]
    return _table("Line flows in kW (* = over capacity)", head, rows)


def format_case_report(
    case: Case,
    *,
    model: str = "all",
    alpha_milli: float | None = None,
    beta_milli: float | None = None,
    clearer: Clearer | None = None,
) -> str:
    """Return the chapter's tables for ``case`` as text.

    Args:
        case: The case.
        model: ``all`` for every table, or one model whose trade matrix,
            peer summary and flows are printed.
        alpha_milli: α for the loss models in 10^-3 currency/(kWh·Ω) (default: the tariff).
        beta_milli: β in 10^-3 currency/kWh (default: the tariff).
        clearer: Re-use compiled models.

    Raises:
        ClearingError: From the clearings.
    """
    clearer = Clearer() if clearer is None else clearer
    alpha = None if alpha_milli is None else alpha_milli / 1000.0
    beta = None if beta_milli is None else beta_milli / 1000.0
    out = [f"Case: {case.name}", f"{len(case.peers)} peers, {len(case.network.lines)} lines, "
           f"{case.network.voltage_kv:g} kV"]  # fmt: skip
    if model != "all":
        m = parse_model(model)
        result = clear(case, m.value, alpha=alpha, beta=beta, clearer=clearer)
        out.append(format_trade_matrix(case, result.trades, f"Electricity trades P_ij ({m.value})"))
        heat_trades = result.heat_trades
        if heat_trades is not None:
            out.append(format_trade_matrix(case, heat_trades, "Heat trades H_ij (heat)"))
        out += [format_peer_summary(case, result), format_flows(case, [result], [m.value])]
        return "\n\n".join(out) + "\n"
    basic = clear(case, "basic", clearer=clearer)
    out.append(format_trade_matrix(case, basic.trades, "Table 12.1: trades in the basic model"))
    out.append(format_peer_summary(case, basic))
    rows = []
    if case.grid_peer() is not None:
        rows.append(["pool-based", f"{pool_dispatch(case, clearer=clearer).losses_kw:.3f}"])
    rows.append(["basic P2P", f"{basic.losses_kw:.3f}"])
    alphas = sorted({*ALPHAS_MILLI[1:], *(() if alpha_milli is None else (alpha_milli,))})
    for a in alphas:
        r = clear(case, "loss", alpha=a / 1000.0, clearer=clearer)
        rows.append([f"alpha = {a:g}", f"{r.losses_kw:.3f}"])
    out.append(
        _table(
            f"Table 12.2: losses (alpha in 10^-3 {case.currency}/(kWh*ohm))",
            ["market", "losses kW"],
            rows,
        )
    )
    outcome = congestion_procedure(case, beta=beta, clearer=clearer)
    rounds = [
        [str(r.round), ",".join(r.penalised) or "-", f"{r.beta_scale:g}",
         ",".join(r.overloaded) or "none", f"{r.losses_kw:.3f}"]
        for r in outcome.rounds
    ]  # fmt: skip
    beta_used = (case.beta if beta is None else beta) * 1000.0
    out.append(
        _table(
            f"Congestion procedure (12.6.3), beta = {beta_used:g} x 10^-3 {case.currency}/kWh: "
            + ("resolved" if outcome.resolved else "NOT resolved"),
            ["round", "sigma", "beta x", "over capacity", "losses kW"],
            rounds,
        )
    )
    out.append(format_flows(case, [basic, outcome.final], ["basic", "after beta"]))
    if case.has_heat:
        heat = clear(case, "heat", clearer=clearer)
        out.append(
            format_trade_matrix(case, heat.trades, "Table 12.3: electricity trades with CHP")
        )
        heat_trades = heat.heat_trades
        if heat_trades is not None:
            out.append(format_trade_matrix(case, heat_trades, "Table 12.4: heat trades"))
        out.append(format_peer_summary(case, heat))
    return "\n\n".join(out) + "\n"
