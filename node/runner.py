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

from node.clock import Clock, SystemClock
from node.config import NodeConfig, parse_address
from node.errors import ConfigError
from node.gc_policy import keep_pauses_short
from node.keys import load_key, parse_public_key
from node.sched_hint import request_slice
from node.service import NodeService

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
        from node.operator import Operator

        assert config.operator_key is not None
        return Operator(config, load_key(config.operator_key), clock)
    from node.replica import Replica

    if config.operator_public_key is not None:
        public = parse_public_key(config.operator_public_key)
    elif config.operator_key is not None:
        public = load_key(config.operator_key).public_key_bytes()
    else:  # pragma: no cover - validate() refuses this
        msg = "a replica needs the operator's public key"
        raise ConfigError(msg)
    return Replica(config, public, clock)


async def serve(config: NodeConfig, stop: asyncio.Event | None = None) -> int:
    """Run a node until ``stop`` is set or the process gets SIGTERM / SIGINT.

    Returns:
        0 after a requested stop, 1 when a background loop of the node failed.
    """
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    node = build_node(config)
    try:
        host, port = parse_address(config.listen)
        try:
            actual = await node.start(host, port)
        except OSError as exc:
            msg = f"cannot listen on {config.listen}: {exc.strerror or exc}"
            raise ConfigError(msg) from exc
        synced = getattr(node, "synced", None)
        if isinstance(synced, asyncio.Event):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(synced.wait(), REPLICA_READY_WAIT)
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
        await node.close()
        log.info("node stopped")


def run(config: NodeConfig) -> int:
    """Run a node in a new event loop, in this thread; return the exit code.

    The thread asks for a short scheduling slice first (``loop_slice_us``,
    ``node.sched_hint``): like the GC policy, only a process that runs a node
    does this, not a library or a test embedding one.
    """
    logging.basicConfig(
        level=os.environ.get("P2PEX_LOG", "INFO"),
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    if config.loop_slice_us > 0:
        request_slice(config.loop_slice_us)
    return asyncio.run(serve(config))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m node.runner [flags of p2pex node run]``: start a node without the CLI.

    Imports only what a node needs (not the demo or the offline clearing
    report), so node processes start fast; ``LocalNet`` uses it.
    """
    from node.cli_node import add_run_arguments, run_node
    from node.errors import NodeError

    parser = argparse.ArgumentParser(prog="python -m node.runner", description=__doc__)
    add_run_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run_node(args)
    except NodeError as exc:
        print(f"p2pex: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
