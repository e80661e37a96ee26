"""A load generator's client: pre-encoded ``submit`` frames over one connection.

The node's benchmark runs its clients on the same 2 cores as the node. The
library client (``node.client.AsyncClient``) costs ~60 us per order there
(encoding each request, checking each reply's shape, its timers and
bookkeeping), CPU the node then lacks. In real use clients run on their own
machines, as their signing does (the benchmark signs before the clock
starts). This client does the least a client can: its request frames are
encoded before the clock starts, and a reply is read only as far as its
kind and id.
"""

from __future__ import annotations

import asyncio
import itertools

import msgpack

from node.config import parse_address
from node.wire.frames import DEFAULT_MAX_FRAME, FrameDecoder
from node.wire.protocol import KIND_ERROR, KIND_REPLY, frame, request_body


class RawSubmitter(asyncio.Protocol):
    """One connection that submits pre-signed transactions; ``prepare`` then ``send``."""

    def __init__(self) -> None:
        self.transport: asyncio.WriteTransport | None = None
        self._frames = FrameDecoder(DEFAULT_MAX_FRAME)
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[None]] = {}
        self._lost: Exception | None = None

    @classmethod
    async def connect(cls, address: str) -> RawSubmitter:
        """Connect to a node at ``HOST:PORT``."""
        host, port = parse_address(address)
        _, protocol = await asyncio.get_running_loop().create_connection(cls, host, port)
        return protocol

    def prepare(self, transactions: list[bytes]) -> list[tuple[int, bytes]]:
        """The (request id, frame) of a ``submit`` of each transaction, in order."""
        prepared = []
        for data in transactions:
            request_id = next(self._ids)
            prepared.append((request_id, frame(request_body(request_id, "submit", {"tx": data}))))
        return prepared

    def send(self, prepared: tuple[int, bytes]) -> asyncio.Future[None]:
        """Write one prepared frame; the future resolves at its reply (fails at an error)."""
        request_id, data = prepared
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._lost is not None or self.transport is None:
            future.set_exception(self._lost or ConnectionError("not connected"))
            return future
        self._waiting[request_id] = future
        self.transport.write(data)
        return future

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        frames = self._frames
        frames.feed(data)
        while (body := frames.next_frame()) is not None:
            message = msgpack.unpackb(body)
            future = self._waiting.pop(message[1], None)
            if future is None or future.done():
                continue
            if message[0] == KIND_REPLY:
                future.set_result(None)
            elif message[0] == KIND_ERROR:
                future.set_exception(RuntimeError(f"{message[2]}: {message[3]}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = exc or ConnectionError("the node closed the connection")
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(self._lost)
        self._waiting.clear()

    def close(self) -> None:
        """Close the connection."""
        if self.transport is not None:
            self.transport.close()
