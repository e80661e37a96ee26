"""The ``p2pex`` command line.

Each sub-command is one ``add_*_command`` function that registers its parser
and sets ``handler``; ``main`` dispatches to it. Handlers return the process
exit code. Errors of the project (``NodeError`` and the core packages' base
errors) are reported as one line on stderr with exit code 1, never as a
traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from ledger.errors import LedgerError
from market.errors import MarketError
from node.cli.chain import add_chain_command
from node.cli.clear import add_clear_command
from node.cli.market import add_book_command, add_order_command, add_trades_command
from node.cli.money import add_money_commands
from node.cli.operator import add_clearing_command, add_operator_command
from node.cli.peer import (
    add_curve_command,
    add_peers_command,
    add_register_command,
    add_settlements_command,
    add_status_command,
)
from node.cli.serve import add_keygen_command, add_node_command
from node.demo.scenario import add_demo_command
from node.errors import ConnectionLost, NodeError, RequestFailed
from node.simulate import add_simulate_command
from node.version import __version__

Handler = Callable[[argparse.Namespace], int]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    """Build the ``p2pex`` argument parser with every sub-command."""
    parser = argparse.ArgumentParser(
        prog="p2pex",
        description=(
            "p2pex: a peer-to-peer energy exchange for communities of active "
            "buildings (continuous double auction, signed hash-chained ledger, "
            "periodic optimal clearing on a radial feeder). From a new key to a cleared "
            "slot, step by step: docs/walkthrough.md."
        ),
    )
    parser.add_argument("--version", action="version", version=f"p2pex {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    add_keygen_command(commands)
    add_node_command(commands)
    add_register_command(commands)
    add_peers_command(commands)
    add_status_command(commands)
    add_curve_command(commands)
    add_order_command(commands)
    add_book_command(commands)
    add_trades_command(commands)
    add_settlements_command(commands)
    add_money_commands(commands)
    add_operator_command(commands)
    add_clearing_command(commands)
    add_chain_command(commands)
    add_demo_command(commands)
    add_clear_command(commands)
    add_simulate_command(commands)
    return parser


def hint(exc: Exception) -> str:
    """What to do about a refused request or a missing node, as a suffix of the error line."""
    if isinstance(exc, ConnectionLost) and "cannot connect" in str(exc):
        return " (is a node running there? start one with p2pex node run, or give --node)"
    if not isinstance(exc, RequestFailed):
        return ""
    if exc.code == "not_permitted" and "not registered" in exc.message:
        return " (register this key first: p2pex register --key KEYFILE ...)"
    if exc.code == "not_permitted":
        return " (sign with the operator's key file: --key, the key its node runs with)"
    if exc.code == "unavailable":
        return " (the replica cannot reach its upstream: use the operator's address)"
    return ""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``p2pex`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return handler(args)
    except (NodeError, MarketError, LedgerError) as exc:
        print(f"p2pex: error: {exc}{hint(exc)}", file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:  # the reader went away (``p2pex trades --csv - | head``)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no flush error at exit
        return EXIT_OK
    except KeyboardInterrupt:
        print("p2pex: interrupted", file=sys.stderr)
        return 130
