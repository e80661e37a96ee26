"""One contract for every Connection: in-memory and TCP behave the same."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from node.errors import ConnectionLost, FrameTooLarge
from node.protocol import HEADER
from node.transport import StreamConnection, memory_pair, open_connection

LIMIT = 1024


async def tcp_pair():
    """A connected (client, server) pair of StreamConnections over 127.0.0.1."""
    accepted: asyncio.Queue[StreamConnection] = asyncio.Queue()

    async def on_client(reader, writer):
        await accepted.put(StreamConnection(reader, writer, max_frame=LIMIT))

    server = await asyncio.start_server(on_client, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = await open_connection("127.0.0.1", port, max_frame=LIMIT)
    other = await accepted.get()
    server.close()
    return client, other


async def mem_pair():
    return memory_pair(LIMIT)


@pytest.fixture(params=["memory", "tcp"])
def make_pair(request):
    return {"memory": mem_pair, "tcp": tcp_pair}[request.param]


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 10))


def test_frames_arrive_whole_and_in_order(make_pair):
    async def main():
        a, b = await make_pair()
        bodies = [b"", b"x", bytes(range(256)) * 4]
        for body in bodies:
            await a.write_frame(body)
        assert [await b.read_frame() for _ in bodies] == bodies
        await b.write_frame(b"back")
        assert await a.read_frame() == b"back"
        assert a.peer and b.peer
        await a.close()
        await b.close()

    run(main())


def test_oversized_frames_are_refused_on_both_sides(make_pair):
    async def main():
        a, b = await make_pair()
        with pytest.raises(FrameTooLarge):
            await a.write_frame(b"x" * (LIMIT + 1))
        if hasattr(a, "write_raw"):
            await a.write_raw(HEADER.pack(LIMIT + 1))
        else:
            a._writer.write(HEADER.pack(LIMIT + 1))
        with pytest.raises(FrameTooLarge) as exc:
            await b.read_frame()
        assert exc.value.size == LIMIT + 1
        await a.close()
        await b.close()

    run(main())


def test_closing_ends_the_stream_for_the_other_side(make_pair):
    async def main():
        a, b = await make_pair()
        await a.close()
        await a.close()  # idempotent
        with pytest.raises(ConnectionLost):
            await b.read_frame()
        with pytest.raises(ConnectionLost):
            await a.write_frame(b"late")
        with contextlib.suppress(ConnectionLost):
            await b.close()

    run(main())


def test_connecting_to_nothing_is_connection_lost():
    async def main():
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        with pytest.raises(ConnectionLost):
            await open_connection("127.0.0.1", port, timeout=2)

    run(main())
