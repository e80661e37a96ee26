"""Run one node process until SIGTERM / SIGINT (``p2pex node run``).

Readiness: once the node listens (and a replica has caught up with its
upstream, or given up waiting for it) the actual port is written to the port
file, atomically (temporary file + rename), and a line ``p2pex node ready
ROLE 127.0.0.1:PORT height H`` goes to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from node.clock import Clock, SystemClock
from node.config import NodeConfig, load_config, parse_address
from node.errors import ConfigError, NodeError
from node.keys import load_key, parse_public_key
from node.roles.gc_policy import keep_pauses_short
from node.roles.sched_hint import request_slice
from node.roles.service import NodeService

if TYPE_CHECKING:
    from node.web import Gateway

log = logging.getLogger("p2pex.runner")

REPLICA_READY_WAIT = 15.0  # seconds a replica waits for its first catch-up before reporting ready


def write_port_file(path: Path, port: int) -> None:
    """Write ``port`` to ``path`` atomically, so a reader never sees a partial number."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(f"{port}\n", encoding="ascii")
    os.replace(temporary, path)


def build_node(config: NodeConfig, clock: Clock | None = None) -> NodeService:
    """Create the operator or replica described by ``config`` (loads keys, opens the store)."""
    clock = clock or SystemClock()
    if config.role == "operator":
        from node.roles.operator import Operator

        assert config.operator_key is not None
        return Operator(config, load_key(config.operator_key), clock)
    from node.roles.replica import Replica

    if config.operator_public_key is not None:
        public = parse_public_key(config.operator_public_key)
    elif config.operator_key is not None:
        public = load_key(config.operator_key).public_key_bytes()
    else:  # pragma: no cover - validate() refuses this
        msg = "a replica needs the operator's public key"
        raise ConfigError(msg)
    return Replica(config, public, clock)


async def serve(
    config: NodeConfig, stop: asyncio.Event | None = None, web: str | None = None
) -> int:
    """Run a node until ``stop`` is set or the process gets SIGTERM / SIGINT.

    ``web``: ``HOST:PORT`` to serve the read-only web view on (``node.web``),
    started before the node reports ready; None: no web view.

    Returns:
        0 after a requested stop, 1 when a background loop of the node failed.
    """
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    node = build_node(config)
    gateway: Gateway | None = None
    try:
        host, port = parse_address(config.listen)
        try:
            actual = await node.start(host, port)
        except OSError as exc:
            msg = f"cannot listen on {config.listen}: {exc.strerror or exc}"
            raise ConfigError(msg) from exc
        if web is not None:
            try:
                from node.web import start_gateway
            except ImportError as exc:  # aiohttp is the optional `web` extra
                msg = f"--web needs aiohttp ({exc}): pip install 'p2pex[web]'"
                raise ConfigError(msg) from exc
            gateway = await start_gateway(web, f"{local_host(host)}:{actual}")
            print(f"p2pex web view at http://{web_url_host(web)}:{gateway.port}/", flush=True)
            if config.port_file is not None:  # before the node's own: ready means both are
                write_port_file(web_port_file(config.port_file), gateway.port)
        synced = getattr(node, "synced", None)
        if isinstance(synced, asyncio.Event):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(synced.wait(), REPLICA_READY_WAIT)
        if not node.fatal.is_set():  # a replica that gave up on its upstream is not ready
            if config.port_file is not None:
                write_port_file(config.port_file, actual)
            print(
                f"p2pex node ready {config.role} {host}:{actual} height {node.store.height}",
                flush=True,
            )
        waits: list[asyncio.Task[object]] = [
            asyncio.create_task(stop.wait()),
            asyncio.create_task(node.fatal.wait()),
        ]
        if config.gc_freeze_interval_s > 0:
            waits.append(
                asyncio.create_task(
                    keep_pauses_short(config.gc_freeze_interval_s, config.gc_full_interval_s)
                )
            )
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for task in waits:
            task.cancel()
        return 1 if node.fatal.is_set() else 0
    finally:
        if gateway is not None:
            await gateway.close()
        await node.close()
        log.info("node stopped")


def local_host(host: str) -> str:
    """The address to reach a node listening on ``host`` from this machine."""
    return "127.0.0.1" if host in ("0.0.0.0", "", "::") else host


def web_port_file(port_file: Path) -> Path:
    """Where a node started with ``--web`` writes its web view's actual port."""
    return port_file.with_name(port_file.name + ".web")


def web_url_host(listen: str) -> str:
    """The host part of the web view's URL for ``--web HOST:PORT``."""
    return local_host(parse_address(listen)[0])


def run(config: NodeConfig, web: str | None = None) -> int:
    """Run a node in a new event loop, in this thread; return the exit code.

    The thread asks for a short scheduling slice first (``loop_slice_us``,
    ``node.roles.sched_hint``): like the GC policy, only a process that runs a node
    does this, not a library or a test embedding one.
    """
    logging.basicConfig(
        level=os.environ.get("P2PEX_LOG", "INFO"),
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    if config.loop_slice_us > 0:
        request_slice(config.loop_slice_us)
    return asyncio.run(serve(config, web=web))


def run_node(args: argparse.Namespace) -> int:
    """Load the configuration (file, then flags) and run the node until stopped."""
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
    web = getattr(args, "web", None)
    if web is not None:  # the web view is a process option, not part of the node's config
        return run(load_config(args.config, overrides), web)
    return run(load_config(args.config, overrides))


def add_run_arguments(run: argparse.ArgumentParser) -> None:
    """The flags of ``p2pex node run`` (shared with ``python -m node.roles.runner``)."""
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
    run.add_argument(
        "--web",
        metavar="HOST:PORT",
        help="also serve the read-only web view here (docs/web.md; default: off)",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m node.roles.runner [flags of p2pex node run]``: start a node without the CLI.

    Imports only what a node needs (not the demo or the offline clearing
    report), so node processes start fast; ``LocalNet`` uses it.
    """
    parser = argparse.ArgumentParser(prog="python -m node.roles.runner", description=__doc__)
    add_run_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run_node(args)
    except NodeError as exc:
        print(f"p2pex: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
