"""The replica node: fetch blocks, verify everything, store, serve reads, forward writes.

The sync loop connects to the upstream (the operator or another replica),
subscribes to new blocks, then pulls every block after its own head
(``blocks`` from height h) until it is level, and afterwards takes pushed
blocks, pulling again whenever it sees a gap. Every block is verified in full
before it is stored (``replay.verify_and_replay``); a block that fails is
refused, logged and listed in ``status``'s ``refused``, and never stored; the
state machine is rebuilt from the store so the next block is checked against
the last good state. After a restart the replica rebuilds its state from its
own store and continues from its stored head.

Writes (``submit``) are forwarded to the upstream, which forwards them on
until they reach the operator. ``wait_committed`` is answered here: one short
question upstream says whether the transaction is known at all, and the wait
itself is for this replica's own store (a block reaches a replica only once
the operator stored it), so long waits never hold the shared upstream
connection, whose waits the operator bounds per connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ledger.errors import StoreError
from market import replay
from market.gate_clearing import check_published
from node.clock import Clock, sleep
from node.config import NodeConfig, parse_address
from node.errors import BlockRefused, FrameTooLarge, NodeError, RequestFailed
from node.pipeline import chain
from node.pipeline.store_writer import ProcessBlockStore
from node.roles.service import NodeService, arg_bytes, arg_int
from node.wire.protocol import E_FRAME_TOO_LARGE, E_TIMEOUT, E_UNAVAILABLE
from node.wire.rpc import AsyncRpc
from node.wire.server import Args, Handler, Result, Session

log = logging.getLogger("p2pex.replica")


class Upstream(Protocol):
    """Where a replica gets its blocks and forwards its writes."""

    async def connect(self, timeout: float, max_frame: int | None = None) -> AsyncRpc:
        """A new RPC connection to the upstream node (frames up to ``max_frame`` bytes)."""
        ...


@dataclass(frozen=True, slots=True)
class TcpUpstream:
    """An upstream node at a TCP address."""

    host: str
    port: int

    async def connect(self, timeout: float, max_frame: int | None = None) -> AsyncRpc:
        """Connect over TCP."""
        if max_frame is None:
            return await AsyncRpc.connect(self.host, self.port, timeout=timeout)
        return await AsyncRpc.connect(self.host, self.port, timeout=timeout, max_frame=max_frame)

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


PULL_LIMIT = 256  # blocks per ``blocks`` request
# The ledger's errors for a block of another operator or chain (``ledger.errors``),
# as ``replay.verify_and_replay`` names them in a refusal's reason.
GENESIS_MISMATCH = ("UnauthorisedProposer", "WrongChainId")
RETRY_SECONDS = 0.5


class Replica(NodeService):
    """A verifying follower of the chain."""

    role = "replica"

    def __init__(
        self,
        config: NodeConfig,
        operator_public_key: bytes,
        clock: Clock,
        upstream: Upstream | None = None,
    ) -> None:
        """A replica of the chain its ``upstream`` serves (default: TCP to ``config.upstream``)."""
        # Appends (an fsync each) run in a child process, as the operator's do:
        # on the event loop they held reads and forwarded writes up.
        self.writer = ProcessBlockStore(chain.store_file(Path(config.data_dir)))
        super().__init__(config, operator_public_key, clock, store=self.writer)
        if upstream is None:
            assert config.upstream is not None
            upstream = TcpUpstream(*parse_address(config.upstream))
        self.upstream = upstream
        self.synced = asyncio.Event()  # set after the first complete catch-up
        self._sync_task: asyncio.Task[None] | None = None
        self._forward: AsyncRpc | None = None
        self._forward_lock = asyncio.Lock()

    def handlers(self) -> dict[str, Handler]:
        """Reads plus forwarded writes."""
        handlers = super().handlers()
        handlers["submit"] = self.h_forward("submit")
        handlers["wait_committed"] = self.h_wait_committed
        handlers["nonce"] = self.h_forward("nonce")  # the operator knows the pending ones
        return handlers

    async def start(self, host: str, port: int) -> int:
        """Listen, then start following the upstream."""
        await self.writer.start()
        actual = await super().start(host, port)
        self._sync_task = self.watch(asyncio.create_task(self._sync_loop()))
        return actual

    async def close(self) -> None:
        """Stop following and serving."""
        if self._sync_task is not None:
            self._sync_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sync_task
        if self._forward is not None:
            await self._forward.close()
        await super().close()

    # -- forwarding ------------------------------------------------------------------------------

    async def _forwarder(self) -> AsyncRpc:
        async with self._forward_lock:
            if self._forward is None or self._forward.closed:
                try:
                    # with this node's frame limit: a request the upstream would
                    # refuse is refused here, not sent to close the shared connection
                    self._forward = await self.upstream.connect(60.0, self.config.max_frame)
                except NodeError as exc:
                    raise RequestFailed(E_UNAVAILABLE, f"upstream unreachable: {exc}") from exc
            return self._forward

    async def h_wait_committed(self, session: Session, args: Args) -> Result:
        """``wait_committed``: reply once this replica stores the transaction's block."""
        tx_id = arg_bytes(args, "tx_id", 32)
        timeout = arg_int(args, "timeout_ms", 30_000) / 1000
        if self.store.transaction(tx_id) is None:
            # Known upstream? A 1 ms wait answers at once: a height (committed),
            # not_found (unknown: said now, as the operator would) or timeout (pending).
            try:
                await self.h_forward("wait_committed")(session, {"tx_id": tx_id, "timeout_ms": 1})
            except RequestFailed as exc:
                if exc.code != E_TIMEOUT:
                    raise
        loop = asyncio.get_running_loop()  # a request's timeout is its client's real time
        deadline = loop.time() + timeout
        while True:
            height = self.store.height  # before the look-up: a block stored after it wakes us
            found = self.store.transaction(tx_id)
            if found is not None:
                break
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise RequestFailed(E_TIMEOUT, "not committed in time")
            try:
                await self.height_waiters.wait(height, remaining)
            except TimeoutError as exc:
                raise RequestFailed(E_TIMEOUT, "not committed in time") from exc
        return {"tx_id": tx_id, "height": found.height}

    def h_forward(self, command: str) -> Handler:
        """A handler that forwards ``command`` to the upstream and relays the answer."""

        async def forward(session: Session, args: Args) -> Result:
            rpc = await self._forwarder()
            try:
                return await rpc.call(command, args)
            except RequestFailed:
                raise
            except FrameTooLarge as exc:  # re-framed with this node's request id: too long
                raise RequestFailed(E_FRAME_TOO_LARGE, f"forwarded request: {exc}") from exc
            except NodeError as exc:
                raise RequestFailed(E_UNAVAILABLE, f"upstream failed: {exc}") from exc

        return forward

    # -- following -------------------------------------------------------------------------------

    async def _sync_loop(self) -> None:
        started = self.clock.monotonic()
        reached = False  # the upstream answered at least once since start-up
        while True:
            rpc = None
            try:
                rpc = await self.upstream.connect(10.0, self.config.max_frame)
                await rpc.call("subscribe", {"topics": ["blocks"]})
                reached = True
                await self._catch_up(rpc)
                self.synced.set()
                while True:
                    event = await rpc.next_event()
                    height = event.data.get("height")
                    if not isinstance(height, int) or height < self.store.height:
                        continue
                    block = event.data.get("block")
                    if height == self.store.height and isinstance(block, bytes):
                        await self._accept(block)
                    else:
                        await self._catch_up(rpc)
            except (asyncio.CancelledError, StoreError):
                raise  # a store that cannot take blocks stops the node (``watch``)
            except BlockRefused as exc:
                if self._report(exc):
                    return
            except NodeError as exc:
                waited = self.clock.monotonic() - started
                if not reached and self.store.height == 0 and waited >= self.config.upstream_wait_s:
                    self._give_up(
                        f"upstream {self.upstream} unreachable for {waited:.0f} s since start-up "
                        f"({exc}): start the operator first, or check --upstream"
                    )
                    return
                log.info("upstream %s: %s; retrying", self.upstream, exc)
            except Exception:
                log.exception("sync loop failed; retrying")
            finally:
                if rpc is not None:
                    await rpc.close()
            self.synced.set()  # ready even if the upstream is away: reads still work
            await sleep(self.clock, RETRY_SECONDS)

    async def _catch_up(self, rpc: AsyncRpc) -> None:
        """Pull blocks until level with the upstream."""
        while True:
            reply = await rpc.call("blocks", {"from": self.store.height, "limit": PULL_LIMIT})
            blocks = reply.get("blocks")
            if not isinstance(blocks, list) or not blocks:
                return
            for data in blocks:
                if not isinstance(data, bytes):
                    raise BlockRefused(self.store.height, "upstream sent a non-bytes block")
                await self._accept(data)
                # Reads and forwarded writes go on between blocks: a pull of 256
                # blocks, each verified in full, once held them up for seconds.
                await asyncio.sleep(0)
            if self.store.height >= reply.get("height", 0):
                return

    async def _accept(self, data: bytes) -> None:
        """Verify one block in full; store it only if everything checks out."""
        block = chain.decode(data)
        expected = self.store.height
        if block.header.height != expected:
            raise BlockRefused(block.header.height, f"expected height {expected}")
        try:
            replay.verify_and_replay(
                self.state,
                block,
                chain.head_header(self.store),
                check_certificate=check_published,
            )
            await self.writer.append_soon(block)
        except BaseException:
            # The state may be half-way through (or past) a block the store does
            # not hold: rebuild it from the store before anything else reads it.
            self.state = replay.replay_store(self.store, self.new_state)
            raise
        await self.on_block_stored(block, data)

    def _report(self, exc: BlockRefused) -> bool:
        """Log and list a refused block; True if the replica can never follow this upstream.

        A refused genesis block whose proposer or chain id is not the
        configured one is certain to be refused again, every retry: the
        replica stops with what to fix instead of retrying forever.
        """
        log.error("REFUSED block %d from %s: %s", exc.height, self.upstream, exc.reason)
        self.refused.append({"height": exc.height, "reason": exc.reason[:500]})
        del self.refused[:-100]
        if exc.height != 0 or self.store.height != 0 or not exc.reason.startswith(GENESIS_MISMATCH):
            return False
        self._give_up(
            f"the genesis block of upstream {self.upstream} is refused ({exc.reason}): this "
            f"replica follows chain {self.config.chain_id!r} of operator "
            f"{self.operator_public_key.hex()}, the upstream serves another. Give the "
            "operator's key file (--operator-key) or public key (--operator-public-key) and its "
            "--chain-id; 'p2pex status --node UPSTREAM' prints both"
        )
        return True

    def _give_up(self, message: str) -> None:
        """Stop the node (exit code 1) with ``message``: retrying cannot help."""
        log.critical("replica stops: %s", message)
        self.refused.append({"height": -1, "reason": message[:1000]})
        self.fatal.set()
        self.synced.set()  # the runner stops waiting for the first catch-up
