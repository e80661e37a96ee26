"""``p2pex clear CASE``: print the chapter's tables for a clearing case.

The work is done by :func:`clearing.command.run_clear_command`; this module
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
    from clearing.command import run_clear_command
    from clearing.errors import ClearingError

    given = [(k, v) for k, v in sources(args) if v is not None]
    if len(given) != 1:
        names = " or ".join(["CASE", *(f"--{k}" for k in SOURCE_FLAGS)])
        print(f"p2pex: error: give exactly one of {names}", file=sys.stderr)
        return EXIT_ERROR
    source, value = given[0]
    if args.plot is not None:
        try:  # before the solve: a directory that cannot be made fails at once
            Path(args.plot).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            print(
                f"p2pex: error: cannot write plots into {str(args.plot)!r}: {exc.strerror or exc} "
                "(give --plot a directory you can write)",
                file=sys.stderr,
            )
            return EXIT_ERROR
    try:
        if args.json or args.csv:
            from node.cli.clear_output import run_clear_data

            run_clear_data(args, source, value)
            return EXIT_OK
        text = run_clear_command(
            value,
            model=args.model,
            alpha_milli=args.alpha,
            beta_milli=args.beta,
            plot_dir=args.plot,
            source=source,
            time_step=args.time_step,
            seed=args.seed,
            ac_check=args.ac_check,
        )
    except ClearingError as exc:
        print(f"p2pex: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as exc:  # writing the plots
        print(f"p2pex: error: cannot write plots: {exc}", file=sys.stderr)
        return EXIT_ERROR
    print(text)
    return EXIT_OK


SOURCE_FLAGS = ("matpower", "pandapower", "simbench")
NOON_21_JUNE = 16464  # SimBench's 15-minute step of 12:00 on 21 June (day 172 of 2016)


def sources(args: argparse.Namespace) -> list[tuple[str, str | None]]:
    """The case sources given on the command line: CASE and the import flags."""
    return [("case", args.case), *((k, getattr(args, k)) for k in SOURCE_FLAGS)]


def add_clear_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``p2pex clear [CASE | --matpower F | --pandapower F | --simbench C] [options]``."""
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
    parser.add_argument(
        "case",
        metavar="CASE",
        nargs="?",
        help="case JSON file (docs/case-format.md), or 'reference' for the shipped 11-bus case",
    )
    grid = parser.add_argument_group(
        "standard grid data (instead of CASE; needs pip install 'p2pex[grid]' except for MATPOWER)"
    )
    grid.add_argument("--matpower", metavar="FILE", help="import a MATPOWER case file (.m)")
    grid.add_argument(
        "--pandapower", metavar="FILE", help="import a pandapower network (pandapower.to_json)"
    )
    grid.add_argument(
        "--simbench",
        metavar="CODE",
        help="import a SimBench grid with its load and PV profiles, e.g. 1-LV-rural1--0-sw",
    )
    grid.add_argument(
        "--time-step",
        type=int,
        default=NOON_21_JUNE,
        metavar="N",
        help=f"SimBench profile step, 15 minutes each, 0-35135 (default: {NOON_21_JUNE}, "
        "12:00 on 21 June)",
    )
    grid.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the rule that gives imported loads and generators their curves (default: 0)",
    )
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
        "--plot",
        metavar="DIR",
        default=None,
        help="save flows.png and losses_alpha.png of the asked model, alpha and beta into DIR "
        "(needs matplotlib; default: no plots)",
    )
    parser.add_argument(
        "--ac-check",
        action="store_true",
        help="also run pandapower's AC power flow on the clearing and print voltages, line "
        "loading and losses next to the linear figures (needs pandapower; default: off)",
    )
    from node.cli.clear_output import add_clear_data_flags

    add_clear_data_flags(parser)
    parser.set_defaults(handler=run_clear)
