"""``p2pex clear --json / --csv``: a case's clearing as data instead of the chapter's tables.

One JSON document (per model: each peer's injection, price, payment and
penalty, the losses, the congested lines, and the trades as a list of
seller-buyer pairs) or CSV with one row per bilateral trade: a 101-peer
case is then ~a few thousand short rows, not a 333-column matrix.
"""

from __future__ import annotations

import argparse
from typing import Any

from node.cli import output

MODELS = ("basic", "loss", "congestion", "loss+congestion")  # "all" in the JSON
TRADE_COLUMNS = ("model", "seller", "buyer", "kw", "price")
MIN_KW = 1e-6  # trades below this (solver noise) are left out


def result_to_plain(case: Any, result: Any) -> dict[str, Any]:
    """One ``clearing.ClearingResult`` as plain JSON-ready data (``ClearingResult.to_dict``)."""
    return dict(result.to_dict(min_kw=MIN_KW))


def run_clear_data(args: argparse.Namespace, source: str, value: str) -> None:
    """Solve the case with the asked model (``all``: the four electricity models); print data.

    Raises:
        ClearingError: bad case or options, or a failed clearing.
    """
    from clearing.command import load_case_from
    from clearing.market import clear

    case = load_case_from(source, value, time_step=args.time_step, seed=args.seed)
    alpha = None if args.alpha is None else args.alpha / 1000.0
    beta = None if args.beta is None else args.beta / 1000.0
    models = MODELS if args.model == "all" else (args.model,)
    results = [result_to_plain(case, clear(case, m, alpha=alpha, beta=beta)) for m in models]
    if args.csv:
        rows = [{"model": r["model"], **t} for r in results for t in r["trades"]]
        output.write_csv(args.csv, rows, TRADE_COLUMNS)
    if args.json:
        output.print_json({"case": case.name, "currency": case.currency, "results": results})


def add_clear_data_flags(parser: argparse.ArgumentParser) -> None:
    """``--json`` and ``--csv FILE`` of ``p2pex clear``."""
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the clearing as one JSON document (per model: peers, trades, losses) "
        "instead of the tables",
    )
    parser.add_argument(
        "--csv",
        metavar="FILE",
        help="write the trades as CSV to FILE, one row per seller-buyer pair, instead of "
        "printing the tables ('-': to stdout)",
    )
