"""``p2pex keygen`` and ``p2pex node run``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from node.config import load_config

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


def run_node(args: argparse.Namespace) -> int:
    """Load the configuration (file, then flags) and run the node until stopped."""
    from node.runner import run

    overrides: dict[str, Any] = {
        "role": args.role,
        "data_dir": args.data_dir,
        "listen": args.listen,
        "upstream": args.upstream,
        "operator_key": args.operator_key,
        "operator_public_key": args.operator_public_key,
        "chain_id": args.chain_id,
        "block_interval_ms": args.block_interval_ms,
        "block_max_txs": args.block_max_txs,
        "verify_workers": args.verify_workers,
        "gc_freeze_interval_s": args.gc_freeze_interval_s,
        "gc_full_interval_s": args.gc_full_interval_s,
        "loop_slice_us": args.loop_slice_us,
        "slot_length_ms": args.slot_length_ms,
        "clearing_model": args.clearing_model,
        "max_frame": args.max_frame,
        "idle_timeout_s": args.idle_timeout_s,
        "port_file": args.port_file,
    }
    return run(load_config(args.config, overrides))


def add_run_arguments(run: argparse.ArgumentParser) -> None:
    """The flags of ``p2pex node run`` (shared with ``python -m node.runner``)."""
    run.add_argument("--config", type=Path, help="TOML configuration file (see docs/node.md)")
    run.add_argument("--role", choices=["operator", "replica"])
    run.add_argument("--data-dir", type=Path, help="where the chain is stored")
    run.add_argument("--listen", metavar="HOST:PORT", help="address to serve on (port 0: any)")
    run.add_argument("--upstream", metavar="HOST:PORT", help="replica: node to follow")
    run.add_argument("--operator-key", type=Path, help="operator's key file (PEM)")
    run.add_argument("--operator-public-key", metavar="HEX", help="replica: operator public key")
    run.add_argument("--chain-id")
    run.add_argument("--block-interval-ms", type=int, help="cut a block this long after its start")
    run.add_argument("--block-max-txs", type=int, help="cut a block at this many transactions")
    run.add_argument(
        "--verify-workers",
        type=int,
        help="operator: processes checking signatures, batched (default 1; 0: on the event loop)",
    )
    run.add_argument(
        "--gc-freeze-interval-s",
        type=float,
        help="freeze surviving objects this often for short GC pauses (default 1; 0: off)",
    )
    run.add_argument(
        "--gc-full-interval-s",
        type=float,
        help="run a full garbage collection this often (default 600; 0: never)",
    )
    run.add_argument(
        "--loop-slice-us",
        type=int,
        help="Linux: ask the scheduler for this short a slice for the event loop, so the "
        "processes it wakes are less likely to preempt it (default 100; 0: off)",
    )
    run.add_argument("--slot-length-ms", type=int, help="auto gate closure (0: off)")
    run.add_argument("--clearing-model", help="clearing model at gate closure (default basic)")
    run.add_argument("--max-frame", type=int, help="frame size limit in bytes")
    run.add_argument("--idle-timeout-s", type=float, help="close idle client connections")
    run.add_argument("--port-file", type=Path, help="write the actual port here once ready")


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
        "and `python -m node.runner` (which skips the other commands' imports) are the "
        "same command.",
    )
    add_run_arguments(run)
    run.set_defaults(handler=run_node)

    def usage(_args: argparse.Namespace) -> int:
        parser.print_help()
        return 2

    parser.set_defaults(handler=usage)
