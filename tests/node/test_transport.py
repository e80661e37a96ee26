"""Frames over TCP (FrameProtocol) and over the in-memory Connection pair."""

from __future__ import annotations

import asyncio
import contextlib
import socket

import pytest

from node.errors import ConnectionLost, FrameTooLarge
from node.wire.protocol import HEADER
from node.wire.rpc import AsyncRpc
from node.wire.transport import FrameProtocol, memory_pair

LIMIT = 1024


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 10))


class Recorder(FrameProtocol):
    """A FrameProtocol that keeps what it receives."""

    def __init__(self) -> None:
        super().__init__(LIMIT)
        self.frames: list[bytes] = []
        self.too_large: list[int] = []
        self.lost = asyncio.get_running_loop().create_future()

    def frame_received(self, body: bytes) -> None:
        self.frames.append(body)

    def frame_too_large(self, error: FrameTooLarge) -> None:
        self.too_large.append(error.size)
        super().frame_too_large(error)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if not self.lost.done():
            self.lost.set_result(None)


async def recorder_server() -> tuple[asyncio.Server, list[Recorder], int]:
    made: list[Recorder] = []

    def factory() -> Recorder:
        made.append(Recorder())
        return made[-1]

    server = await asyncio.get_running_loop().create_server(factory, "127.0.0.1", 0)
    return server, made, server.sockets[0].getsockname()[1]


async def wait_for(condition, timeout: float = 2.0) -> None:
    for _ in range(int(timeout / 0.005)):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition not met in time")


def test_frame_protocol_reassembles_frames_from_any_split_of_the_stream():
    """Frames split across reads, and several frames in one read, arrive whole and in order."""

    async def main():
        server, made, port = await recorder_server()
        bodies = [b"", b"x", bytes(range(256)) * 3, b"last"]
        stream = b"".join(HEADER.pack(len(b)) + b for b in bodies)
        loop = asyncio.get_running_loop()
        with socket.create_connection(("127.0.0.1", port)) as raw:
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for cut in (1, 3, 5, 700, len(stream)):  # byte by byte at first, then in chunks
                piece, stream = stream[:cut], stream[cut:]
                await loop.run_in_executor(None, raw.sendall, piece)
                await asyncio.sleep(0.01)
            await wait_for(lambda: made and len(made[0].frames) == len(bodies))
        assert made[0].frames == bodies
        server.close()

    run(main())


def test_frame_protocol_stops_at_an_oversized_length_prefix():
    async def main():
        server, made, port = await recorder_server()
        with socket.create_connection(("127.0.0.1", port)) as raw:
            raw.sendall(HEADER.pack(3) + b"abc" + HEADER.pack(LIMIT + 1) + b"never read")
            await wait_for(lambda: made and made[0].lost.done())
        assert made[0].frames == [b"abc"]
        assert made[0].too_large == [LIMIT + 1]
        server.close()

    run(main())


def test_frame_protocol_writes_the_frames_of_one_iteration_in_order():
    async def main():
        server, made, port = await recorder_server()
        loop = asyncio.get_running_loop()
        _, sender = await loop.create_connection(lambda: FrameProtocol(LIMIT), "127.0.0.1", port)
        for i in range(50):
            sender.send(str(i).encode())
        sender.send_now(b"now")  # writes what was queued before it too
        await wait_for(lambda: made and len(made[0].frames) == 51)
        assert made[0].frames == [str(i).encode() for i in range(50)] + [b"now"]
        sender.close()
        await made[0].lost
        sender.send(b"late")  # after closing: dropped, no error
        server.close()

    run(main())


def test_connecting_to_nothing_is_connection_lost():
    async def main():
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        with pytest.raises(ConnectionLost):
            await AsyncRpc.connect("127.0.0.1", port, timeout=2)

    run(main())


def test_memory_frames_arrive_whole_and_in_order():
    async def main():
        a, b = memory_pair(LIMIT)
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


def test_memory_oversized_frames_are_refused_on_both_sides():
    async def main():
        a, b = memory_pair(LIMIT)
        with pytest.raises(FrameTooLarge):
            await a.write_frame(b"x" * (LIMIT + 1))
        await a.write_raw(HEADER.pack(LIMIT + 1))
        with pytest.raises(FrameTooLarge) as exc:
            await b.read_frame()
        assert exc.value.size == LIMIT + 1
        await a.close()
        await b.close()

    run(main())


def test_memory_closing_ends_the_stream_for_the_other_side():
    async def main():
        a, b = memory_pair(LIMIT)
        await a.close()
        await a.close()  # idempotent
        with pytest.raises(ConnectionLost):
            await b.read_frame()
        with pytest.raises(ConnectionLost):
            await a.write_frame(b"late")
        with contextlib.suppress(ConnectionLost):
            await b.close()

    run(main())
