"""Fan pushed events out to the page's websockets, never waiting on a slow browser.

Each websocket gets a bounded queue and a writer task; a browser that lets
its queue fill up is disconnected (it reloads and reads afresh), so one
stalled tab cannot hold up the gateway's chain follower.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from aiohttp import web

log = logging.getLogger("p2pex.web")

QUEUE_LIMIT = 256  # pushes a websocket may fall behind before it is dropped
MAX_SOCKETS = 64  # open websockets at once (more are refused with 503)


class Hub:
    """The open websockets and their send queues."""

    __slots__ = ("queues", "writers")

    def __init__(self) -> None:
        self.queues: dict[web.WebSocketResponse, asyncio.Queue[str | None]] = {}
        self.writers: set[asyncio.Task[None]] = set()

    @property
    def full(self) -> bool:
        """True when no more websockets are taken."""
        return len(self.queues) >= MAX_SOCKETS

    def publish(self, message: dict[str, Any]) -> None:
        """Queue ``message`` (JSON) for every open websocket."""
        text = json.dumps(message, separators=(",", ":"))
        for ws, queue in list(self.queues.items()):
            try:
                queue.put_nowait(text)
            except asyncio.QueueFull:
                log.warning("dropping a websocket that does not keep up")
                self.queues.pop(ws, None)
                with contextlib.suppress(asyncio.QueueFull):
                    queue.put_nowait(None)

    async def serve(self, ws: web.WebSocketResponse, hello: dict[str, Any]) -> None:
        """Serve one websocket until it closes: pushes out, anything sent in ignored."""
        queue: asyncio.Queue[str | None] = asyncio.Queue(QUEUE_LIMIT)
        queue.put_nowait(json.dumps(hello, separators=(",", ":")))
        self.queues[ws] = queue
        writer = asyncio.create_task(self._write(ws, queue))
        self.writers.add(writer)
        try:
            async for _ in ws:  # read-only: a browser's messages change nothing
                pass
        finally:
            self.queues.pop(ws, None)
            writer.cancel()
            self.writers.discard(writer)
            await ws.close()

    async def _write(self, ws: web.WebSocketResponse, queue: asyncio.Queue[str | None]) -> None:
        while True:
            text = await queue.get()
            if text is None or ws.closed:
                await ws.close()
                return
            try:
                await ws.send_str(text)
            except (ConnectionError, RuntimeError):
                return

    async def close(self) -> None:
        """Close every websocket."""
        for ws in list(self.queues):
            await ws.close()
        self.queues.clear()
        for writer in list(self.writers):
            writer.cancel()
