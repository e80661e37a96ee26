"""A read-only HTTP and websocket gateway to one node, and the page it serves.

The gateway is a client of its node like any other: it holds two
``AsyncClient`` connections over TCP to the node's address, one for the
page's reads and one subscribed to ``blocks`` and ``trades``. Run inside
the node's process (``p2pex node run --web HOST:PORT``) it shares the node's
event loop, but every read goes through the node's request handlers, which
hand the loop back between pages of work, exactly as for remote clients.

Only GET routes exist (aiohttp answers 405 to anything else) and nothing a
browser sends reaches a write command: the gateway has no key and sends
only reads. Bad parameters are 400, unknown things 404, a node that cannot
be reached 503, each as ``{"error": ..., "status": ...}``.

Routes: ``/`` (the page), ``/static/*``, ``/ws`` (pushes), and
``/api/status``, ``/api/book``, ``/api/trades``, ``/api/blocks``,
``/api/proof``, ``/api/network``, ``/api/clearing`` (see docs/web.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from ledger.block import decode_block, decode_header
from ledger.errors import LedgerError
from market.units import Units
from node.client.clients import AsyncClient
from node.config import parse_address
from node.errors import ConnectionLost, LocalError, NodeError, NodeTimeout, RequestFailed
from node.web.chainview import ChainView, read_block
from node.web.convert import choice_param, hex_param, int_param, to_json
from node.web.errors import NodeUnavailable, NotFound, WebError
from node.web.feeder import clearing_view, network_view
from node.web.hub import Hub
from node.web.proofs import check_proof

log = logging.getLogger("p2pex.web")

STATIC = Path(__file__).with_name("static")
PRODUCTS = ("electricity", "heat")
KEEPALIVE_S = 60.0  # ping the node this often when no event came (its idle timeout is longer)
RECONNECT_S = 1.0  # wait before reconnecting to the node
BLOCKS_PER_READ = 64
MAX_TRADES = 200  # trades per /api/trades reply
UNITS = Units()  # the chain's units (as market.gate_clearing uses them)
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self' ws: wss:; frame-ancestors 'none'; form-action 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
ERROR_STATUS = {"bad_arguments": 400, "not_found": 404}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Gateway:
    """The gateway of one node at ``node_address`` (``HOST:PORT``)."""

    def __init__(self, node_address: str, *, keep: int = 50) -> None:
        parse_address(node_address)
        self.node_address = node_address
        self.view = ChainView(keep)
        self.hub = Hub()
        self.client: AsyncClient | None = None
        self.follower: asyncio.Task[None] | None = None
        self.runner: web.AppRunner | None = None
        self.clearing_cache: dict[tuple[str, int, int], dict[str, Any]] = {}
        self.port = 0

    # -- life cycle ------------------------------------------------------------------------------

    async def start(self, host: str, port: int) -> int:
        """Listen on ``host:port`` and start following the node; return the actual port."""
        self.runner = web.AppRunner(self.app(), access_log=None, handle_signals=False)
        await self.runner.setup()
        site = web.TCPSite(self.runner, host, port)
        await site.start()
        server = getattr(site, "_server", None)
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else port
        self.follower = asyncio.create_task(self.follow())
        return self.port

    async def close(self) -> None:
        """Stop following, close the websockets, the connections and the listener."""
        if self.follower is not None:
            self.follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.follower
        await self.hub.close()
        if self.client is not None:
            await self.client.close()
        if self.runner is not None:
            await self.runner.cleanup()

    def app(self) -> web.Application:
        """The aiohttp application: the page, its static files, ``/ws`` and ``/api/*``."""
        app = web.Application(middlewares=[self.errors], client_max_size=1024)
        app.router.add_get("/", self.page)
        app.router.add_static("/static/", STATIC, show_index=False, follow_symlinks=False)
        app.router.add_get("/ws", self.websocket)
        routes: dict[str, Handler] = {
            "status": self.api_status,
            "book": self.api_book,
            "trades": self.api_trades,
            "blocks": self.api_blocks,
            "proof": self.api_proof,
            "network": self.api_network,
            "clearing": self.api_clearing,
        }
        for name, handler in routes.items():
            app.router.add_get(f"/api/{name}", handler)
        return app

    # -- the node --------------------------------------------------------------------------------

    async def node(self) -> AsyncClient:
        """The read connection to the node, (re)opened when needed.

        Raises:
            NodeUnavailable: the node cannot be reached.
        """
        if self.client is None:
            try:
                self.client = await AsyncClient.connect(self.node_address, timeout=10.0)
            except NodeError as exc:
                msg = f"node {self.node_address} unreachable: {exc}"
                raise NodeUnavailable(msg) from exc
        return self.client

    async def call(self, command: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
        """One read of the node; its error replies as 400 / 404 / 502, a lost link as 503.

        A read whose connection turns out closed (the node drops clients
        idle for ``idle_timeout_s``) is sent once more on a new connection:
        reads change nothing, so a repeat is safe.
        """
        for attempt in (1, 2):
            client = await self.node()
            try:
                return await client.call(command, args)
            except RequestFailed as exc:
                error = WebError(f"the node refused {command}: {exc.message}")
                error.status = ERROR_STATUS.get(exc.code, 502)
                raise error from exc
            except (ConnectionLost, NodeTimeout, LocalError) as exc:
                self.client = None
                with contextlib.suppress(NodeError, OSError):
                    await client.close()
                if attempt == 1 and not isinstance(exc, NodeTimeout):
                    continue
                msg = f"node {self.node_address}: {exc}"
                raise NodeUnavailable(msg) from exc
        msg = "unreachable"
        raise AssertionError(msg)  # pragma: no cover

    async def follow(self) -> None:
        """Follow the node's chain forever: catch up, then push each block and trade."""
        while True:
            try:
                async with await AsyncClient.connect(self.node_address, timeout=10.0) as link:
                    await link.subscribe("blocks", "trades")
                    await self.catch_up(link, int((await link.status())["height"]))
                    await self.relay(link)
            except asyncio.CancelledError:
                raise
            except (NodeError, LedgerError, OSError) as exc:
                log.warning("web gateway lost its node %s: %s", self.node_address, exc)
            await asyncio.sleep(RECONNECT_S)

    async def catch_up(self, link: AsyncClient, height: int) -> None:
        """Read and ingest the blocks below ``height`` the view does not hold yet."""
        while self.view.height < height:
            batch = await link.blocks(self.view.height, BLOCKS_PER_READ)
            if not batch:
                return
            for data in batch:
                await self.ingest(bytes(data))

    async def ingest(self, data: bytes) -> None:
        """Add a block to the view and push it to the page.

        Decoding a block of 500 orders takes over 10 ms: it runs in a thread
        (which the interpreter preempts every few ms), so the node's own
        work on this loop is not held up for a whole block; only the small
        update of the view runs on the loop.
        """
        digest = await asyncio.to_thread(read_block, data)
        if self.view.apply(digest):
            self.hub.publish({"type": "block", "block": digest.summary})

    async def relay(self, link: AsyncClient) -> None:
        """Turn the node's pushed events into page pushes, until the link breaks."""
        while True:
            try:
                event = await link.next_event(KEEPALIVE_S)
            except NodeTimeout:
                await link.call("ping")  # keeps the subscribed connection from idling out
                continue
            if event.topic == "blocks":
                height = int(event.data["height"])
                if height > self.view.height:
                    await self.catch_up(link, height)
                await self.ingest(bytes(event.data["block"]))
            elif event.topic == "trades":
                self.hub.publish({"type": "trade", "trade": to_json(event.data)})

    # -- middleware and the page -----------------------------------------------------------------

    @web.middleware
    async def errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Security headers on everything; every failure of an API call as a JSON error."""
        try:
            response = await handler(request)
        except WebError as exc:
            response = web.json_response(
                {"error": str(exc), "status": exc.status}, status=exc.status
            )
        except web.HTTPException as exc:
            if not request.path.startswith("/api/"):
                raise
            response = web.json_response(
                {"error": exc.reason, "status": exc.status}, status=exc.status
            )
        except Exception as exc:
            log.exception("web gateway: %s failed", request.path)
            body = {"error": f"internal error: {type(exc).__name__}", "status": 500}
            response = web.json_response(body, status=500)
        if not response.prepared:
            response.headers.update(HEADERS)
            if request.path.startswith("/api/"):
                response.headers["Cache-Control"] = "no-store"
        return response

    async def page(self, request: web.Request) -> web.StreamResponse:
        """The page."""
        return web.FileResponse(STATIC / "index.html")

    async def websocket(self, request: web.Request) -> web.StreamResponse:
        """``/ws``: pushes ``{"type": "block" | "trade", ...}``; ignores what it receives."""
        if self.hub.full:
            msg = "too many open websockets"
            raise NodeUnavailable(msg)
        ws = web.WebSocketResponse(heartbeat=30.0, max_msg_size=1024)
        await ws.prepare(request)
        await self.hub.serve(ws, {"type": "hello", "height": self.view.height})
        return ws

    # -- the API ---------------------------------------------------------------------------------

    async def api_status(self, request: web.Request) -> web.StreamResponse:
        """``/api/status``: the node's status, plus the slots the chain names."""
        status = to_json(await self.call("status"))
        status["slots"] = [[p, s] for p, s in sorted(self.view.slots)]
        status["followed_height"] = self.view.height
        return web.json_response(status)

    def slot_params(self, request: web.Request) -> tuple[str, int]:
        query = request.query
        product = choice_param(query, "product", "electricity", PRODUCTS)
        return product, int_param(query, "slot")

    async def api_book(self, request: web.Request) -> web.StreamResponse:
        """``/api/book?slot=S[&product=P][&levels=N]``: L2 depth of one book."""
        product, slot = self.slot_params(request)
        levels = int_param(request.query, "levels", 10, low=1, high=100)
        if (product, slot) not in self.view.slots:
            msg = f"no transaction names {product} slot {slot}"
            raise NotFound(msg)
        book = await self.call("book", {"product": product, "slot": slot, "levels": levels})
        return web.json_response({"product": product, "slot": slot, **to_json(book)})

    async def api_trades(self, request: web.Request) -> web.StreamResponse:
        """``/api/trades[?slot=S][&product=P][&limit=N]``: the newest trades, oldest first."""
        query = request.query
        limit = int_param(query, "limit", 50, low=1, high=MAX_TRADES)
        product = choice_param(query, "product", "electricity", PRODUCTS)
        slot = int_param(query, "slot") if "slot" in query else None
        rows = (await self.call("trades", {"limit": 1000}))["trades"]
        if slot is not None:
            rows = [t for t in rows if t["slot"] == slot and t["product"] == product]
        return web.json_response({"trades": to_json(rows[-limit:])})

    async def api_blocks(self, request: web.Request) -> web.StreamResponse:
        """``/api/blocks[?limit=N]``: the newest block summaries, newest first."""
        limit = int_param(request.query, "limit", 20, low=1, high=self.view.blocks.maxlen or 50)
        return web.json_response({"height": self.view.height, "blocks": self.view.recent(limit)})

    async def api_proof(self, request: web.Request) -> web.StreamResponse:
        """``/api/proof?tx=ID`` or ``?height=H&index=I``: an inclusion proof, checked here."""
        query = request.query
        if "tx" in query:
            tx_id: bytes | None = hex_param(query, "tx", 32)
            args: dict[str, Any] = {"tx_id": tx_id}
        else:
            tx_id = None
            args = {"height": int_param(query, "height"), "index": int_param(query, "index")}
        reply = await self.call("prove", args)
        try:
            height = decode_header(bytes(reply["header"])).height
        except (KeyError, TypeError, LedgerError) as exc:
            msg = f"the node's proof does not decode: {exc}"
            raise WebError(msg) from exc
        data = await self.call("blocks", {"from": height, "limit": 1})
        if not data["blocks"]:
            msg = f"no block at height {height}"
            raise NotFound(msg)
        block_hash = decode_block(bytes(data["blocks"][0])).header.hash
        return web.json_response(check_proof(reply, block_hash=block_hash, tx_id=tx_id))

    async def api_network(self, request: web.Request) -> web.StreamResponse:
        """``/api/network``: the published network, laid out for drawing."""
        if self.view.network_json is None:
            msg = "no network published yet (SetNetwork)"
            raise NotFound(msg)
        try:
            view = network_view(self.view.network_json)
        except ValueError as exc:
            raise WebError(str(exc)) from exc
        return web.json_response({"height": self.view.network_height, **view})

    async def api_clearing(self, request: web.Request) -> web.StreamResponse:
        """``/api/clearing?slot=S[&product=P]``: the slot's published clearing on the feeder."""
        product, slot = self.slot_params(request)
        published = self.view.clearings.get((product, slot))
        if published is None:
            msg = f"no clearing published for {product} slot {slot}"
            raise NotFound(msg)
        network_json = self.view.network_of(product, slot)
        if network_json is None:
            msg = "no network published yet (SetNetwork)"
            raise NotFound(msg)
        key = (product, slot, published.height)
        if key not in self.clearing_cache:
            peers = (await self.call("peers"))["peers"]
            loop = asyncio.get_running_loop()
            try:  # clearing imports numpy and cvxpy: off the event loop
                self.clearing_cache[key] = await loop.run_in_executor(
                    None,
                    lambda: clearing_view(
                        network_json,
                        peers,
                        published,
                        tick=UNITS.tick,
                        slot_hours=UNITS.slot_hours,
                    ),
                )
            except ValueError as exc:
                raise WebError(str(exc)) from exc
        return web.json_response(self.clearing_cache[key])


async def start_gateway(listen: str, node_address: str) -> Gateway:
    """Start a gateway on ``listen`` (``HOST:PORT``) for the node at ``node_address``.

    Raises:
        ConfigError: ``listen`` is not ``HOST:PORT`` or cannot be bound.
    """
    from node.errors import ConfigError

    host, port = parse_address(listen)
    gateway = Gateway(node_address)
    try:
        await gateway.start(host, port)
    except OSError as exc:
        await gateway.close()
        msg = f"cannot serve the web view on {listen}: {exc.strerror or exc}"
        raise ConfigError(msg) from exc
    return gateway
