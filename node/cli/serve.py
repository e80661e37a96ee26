"""``p2pex keygen`` and ``p2pex node run``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from node.roles.runner import add_run_arguments, run_node

if TYPE_CHECKING:
    SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]


def run_keygen(args: argparse.Namespace) -> int:
    """Write a new Ed25519 key file (mode 0600) and print its public key and account id."""
    from ledger.errors import LedgerError
    from ledger.keys import generate_signing_key, save_signing_key
    from node.errors import ConfigError

    key = generate_signing_key()
    try:
        save_signing_key(key, args.path, overwrite=args.force)
    except LedgerError as exc:
        raise ConfigError(str(exc)) from exc
    print(f"public_key {key.public_key_bytes().hex()}")
    print(f"account    {key.account_id.hex()}")
    return 0


def add_keygen_command(commands: SubParsers) -> None:
    """Register ``p2pex keygen PATH``."""
    parser = commands.add_parser(
        "keygen",
        help="create an Ed25519 signing key file",
        description="Create a new Ed25519 key, save it as PKCS#8 PEM (mode 0600) at PATH "
        "and print its public key and account id.",
    )
    parser.add_argument("path", metavar="PATH", type=Path, help="where to write the key")
    parser.add_argument("--force", action="store_true", help="overwrite an existing file")
    parser.set_defaults(handler=run_keygen)


def add_node_command(commands: SubParsers) -> None:
    """Register ``p2pex node run``."""
    parser = commands.add_parser(
        "node",
        help="run a peer node (operator or replica)",
        description="Run p2pex peer nodes.",
    )
    sub = parser.add_subparsers(title="node commands", metavar="COMMAND")
    run = sub.add_parser(
        "run",
        help="run an operator or replica node until SIGTERM / Ctrl-C",
        description="Run an operator (sequences transactions, produces blocks, runs the "
        "clearing) or a replica (fetches and verifies blocks, serves reads, forwards "
        "writes). Flags override the configuration file. Once ready the node writes its "
        "port to --port-file and prints 'p2pex node ready ...'. `python -m node node run` "
        "and `python -m node.roles.runner` (which skips the other commands' imports) are the "
        "same command.",
    )
    add_run_arguments(run)
    run.set_defaults(handler=run_node)

    def usage(_args: argparse.Namespace) -> int:
        parser.print_help()
        return 2

    parser.set_defaults(handler=usage)
