"""``p2pex clear CASE``: print the chapter's tables for a clearing case.

The work is done by :func:`clearing.report.run_clear_command`; this module
only registers the sub-command, like ``add_demo_command`` in ``node.cli.main``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXIT_OK = 0
EXIT_ERROR = 1


def run_clear(args: argparse.Namespace) -> int:
    """Handle ``p2pex clear``: print the report, one-line error on bad data."""
    # Imported here so that `p2pex --help` does not pay for importing cvxpy.
    from clearing.errors import ClearingError
    from clearing.report import run_clear_command

    if args.plot is not None:
        try:  # before the solve: a directory that cannot be made fails at once
            Path(args.plot).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            print(
                f"p2pex: error: cannot write plots to {args.plot}: {exc.strerror or exc} "
                "(give --plot a directory you can write)",
                file=sys.stderr,
            )
            return EXIT_ERROR
    try:
        if args.json or args.csv:
            from node.cli.clear_output import run_clear_data

            run_clear_data(args)
            return EXIT_OK
        text = run_clear_command(
            args.case,
            model=args.model,
            alpha_milli=args.alpha,
            beta_milli=args.beta,
            plot_dir=args.plot,
        )
    except ClearingError as exc:
        print(f"p2pex: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as exc:  # writing the plots
        print(f"p2pex: error: cannot write plots: {exc}", file=sys.stderr)
        return EXIT_ERROR
    print(text)
    return EXIT_OK


def add_clear_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``p2pex clear CASE [--model M] [--alpha A] [--beta B] [--plot DIR]``."""
    parser = commands.add_parser(
        "clear",
        help="solve the optimal P2P clearing of a case and print the chapter's tables",
        description=(
            "Solve the chapter's optimal P2P market clearing (section 12.6) for a "
            "case file (or 'reference' for the shipped 11-bus community) and print "
            "the trade matrix, the losses of the pool-based, basic and "
            "loss-penalized markets, and the congestion before and after the "
            "congestion penalty."
        ),
    )
    parser.add_argument("case", metavar="CASE", help="case JSON file, or 'reference'")
    parser.add_argument(
        "--model",
        default="all",
        choices=["all", "basic", "loss", "congestion", "loss+congestion", "heat"],
        help="which model's trade matrix to print (default: all tables)",
    )
    parser.add_argument(
        "--alpha",
        type=float,
        default=None,
        help="loss penalty alpha in 10^-3 currency/(kWh*ohm) (default: the case's tariff)",
    )
    parser.add_argument(
        "--beta",
        type=float,
        default=None,
        help="congestion penalty beta in 10^-3 currency/kWh (default: the case's tariff)",
    )
    parser.add_argument(
        "--plot", metavar="DIR", default=None, help="save PNG plots (matplotlib) into DIR"
    )
    from node.cli.clear_output import add_clear_data_flags

    add_clear_data_flags(parser)
    parser.set_defaults(handler=run_clear)
