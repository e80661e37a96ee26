"""Connections that carry frames: an asyncio protocol over TCP or over memory.

``FrameProtocol`` is a connection's frames on an event loop: the node's
server, its asyncio client and its worker processes all use it, and it cuts
the byte stream into frames with ``node.wire.frames.FrameDecoder`` (the one
frame decoder). An oversized length prefix is ``FrameTooLarge``; the other
side going away is ``connection_lost``.

``memory_pair`` is the in-memory test double of a TCP connection (httpx's
``MockTransport`` idea): two ends whose asyncio transports hand the bytes
one side writes to the other side's protocol. A server or client attached
to an end runs exactly the code it runs over TCP; only the bytes travel
differently. ``recv_frame`` reads frames from a blocking socket (the
blocking client, the worker processes) with the same decoder.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections import deque
from typing import Any, Final

from node.errors import ConnectionLost, FrameTooLarge
from node.wire.frames import DEFAULT_MAX_FRAME, HEADER, FrameDecoder, frame

log = logging.getLogger("p2pex.transport")

OUT_LIMIT = 1 << 20  # bytes queued for writing before FrameProtocol.wait_writable waits
# Frames of one client handled in one read callback of a server before the
# loop is handed back: a client pipelining thousands of frames in one read
# must not hold the other connections' callbacks up for all of them.
FRAMES_PER_TURN: Final = 64
READ_SIZE: Final = 256 * 1024  # bytes an in-memory end delivers per loop turn (asyncio's recv size)


def recv_frame(sock: socket.socket, decoder: FrameDecoder, *, read_ahead: bool = False) -> bytes:
    """Read the next frame body from a blocking socket.

    Without ``read_ahead`` no byte past the frame is read (the socket may
    be handed to an event loop afterwards); with it, reads are larger and
    the surplus stays in ``decoder`` for the next call.

    Raises:
        EOFError: the other end closed (cleanly, or in the middle of a frame).
        FrameTooLarge: a length prefix exceeds the decoder's limit.
        OSError: the socket failed (``TimeoutError`` after its timeout).
    """
    while (body := decoder.next_frame()) is None:
        want = decoder.needed
        chunk = sock.recv(max(want, 1 << 16) if read_ahead else min(want, 1 << 20))
        if not chunk:
            raise EOFError
        decoder.feed(chunk)
    return body


class FrameProtocol(asyncio.Protocol):
    """A TCP connection as frames: parsed as bytes arrive, written once per loop iteration.

    Subclasses say what to do with a frame (``frame_received``) and with an
    oversized length prefix (``frame_too_large``), and may hold reading back
    (``reading_allowed``; call ``resume`` when it may go on). ``send`` is the
    writing side: every frame sent in one loop iteration goes out in one
    ``transport.write``. Compared with asyncio streams this saves, per frame,
    the two ``readexactly`` waits, a lock and a ``drain`` (at thousands of
    frames per second they were a large share of a node's event loop).
    """

    # Frames handled per read callback before the rest waits for the loop's next
    # turn (None: no limit). A server sets ``FRAMES_PER_TURN``; a client or a
    # worker link reads its own peer and takes each burst whole (the limit cost
    # a benchmark client, whose replies arrive in bursts, throughput).
    frames_per_turn: int | None = None

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        self.max_frame = max_frame
        self.transport: asyncio.Transport | None = None
        self.peer = "?"
        self._frames = FrameDecoder(max_frame)
        self._out: list[bytes] = []  # framed bytes not yet handed to the transport
        self._out_bytes = 0
        self._flush_soon = False
        self._write_paused = False  # the transport's buffer is above its high-water mark
        self._writable: asyncio.Event | None = None  # made when someone waits for it
        self._read_paused = False
        self._parse_soon = False  # a _parse_next_turn is scheduled
        self._closing = False
        self._closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    # -- what subclasses decide --------------------------------------------------------------

    def frame_received(self, body: bytes) -> None:
        """One complete frame body arrived."""
        raise NotImplementedError

    def frame_too_large(self, error: FrameTooLarge) -> None:
        """A length prefix above ``max_frame`` arrived (nothing after it is read)."""
        self.close()

    def reading_allowed(self) -> bool:
        """False holds the frames that arrive back until ``resume`` (default: always read)."""
        return True

    # -- asyncio.Protocol --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        name = transport.get_extra_info("peername")
        self.peer = f"{name[0]}:{name[1]}" if isinstance(name, tuple) else str(name)

    def data_received(self, data: bytes) -> None:
        if self._closing:
            return
        self._frames.feed(data)
        self._parse()

    def _parse(self) -> None:
        """Hand the complete frames received on, while reading is allowed."""
        frames = self._frames
        handled = 0
        try:
            while not self._closing:
                if not self.reading_allowed():
                    self.pause()
                    return
                if handled == self.frames_per_turn and frames.buffered:
                    self._parse_later()
                    return
                try:
                    body = frames.next_frame()
                except FrameTooLarge as exc:
                    self.frame_too_large(exc)
                    self._closing = True
                    return
                if body is None:
                    return
                handled += 1
                self.frame_received(body)
        except Exception:  # a bug must cost this connection, not the process
            log.exception("connection %s failed", self.peer)
            self.close(abort=True)

    def _parse_later(self) -> None:
        """Parse the rest at the loop's next turn, after the other connections' reads.

        Reading goes on meanwhile (pausing and resuming a socket costs two
        system calls) unless a read's worth of bytes is already waiting.
        """
        if self._frames.buffered >= READ_SIZE:
            self.pause()
        if not self._parse_soon:
            self._parse_soon = True
            asyncio.get_running_loop().call_soon(self._parse_next_turn)

    def _parse_next_turn(self) -> None:
        self._parse_soon = False
        if self._read_paused:
            self.resume()  # parses, at the turn after
        else:
            self._parse()

    def eof_received(self) -> bool | None:
        return None  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing = True
        if self._writable is not None:
            self._writable.set()
        if not self._closed.done():
            self._closed.set_result(None)

    def pause_writing(self) -> None:
        self._write_paused = True
        if self._writable is not None:
            self._writable.clear()

    def resume_writing(self) -> None:
        self._write_paused = False
        if self._writable is not None:
            self._writable.set()
        self._flush()

    # -- writing ------------------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Frames queued and not handed to the transport."""
        return len(self._out) // 2

    def send(self, body: bytes) -> None:
        """Queue a frame; all frames of one loop iteration go out in one write."""
        if self._queue(body) and not self._flush_soon:
            self._flush_soon = True
            asyncio.get_running_loop().call_soon(self._flush)

    def send_now(self, body: bytes) -> None:
        """Queue a frame and write everything queued now (for callers that batch already)."""
        if self._queue(body):
            self._flush()

    def _queue(self, body: bytes) -> bool:
        if self._closing:
            return False
        self._out.append(HEADER.pack(len(body)))
        self._out.append(body)
        self._out_bytes += HEADER.size + len(body)
        return True

    def _flush(self) -> None:
        self._flush_soon = False
        if self._write_paused or not self._out or self.transport is None:
            return
        data = b"".join(self._out)
        self._out.clear()
        self._out_bytes = 0
        if not self.transport.is_closing():
            self.transport.write(data)  # may call pause_writing
        if self._writable is not None and not self._write_paused:
            self._writable.set()

    async def wait_writable(self) -> None:
        """Return once more may be sent: at once unless ``OUT_LIMIT`` bytes wait to be written.

        They wait in this iteration's frames or in the transport's buffer
        above its high-water mark (the other side does not read). Senders
        that await this keep memory bounded; ``send`` itself never waits.
        """
        while not self._closing and (self._write_paused or self._out_bytes >= OUT_LIMIT):
            if self._writable is None:
                self._writable = asyncio.Event()
            self._writable.clear()
            await self._writable.wait()

    def pause(self) -> None:
        """Stop reading."""
        if not self._read_paused and self.transport is not None:
            self._read_paused = True
            self.transport.pause_reading()

    def resume(self) -> None:
        """Read again (and parse what is buffered)."""
        if self._read_paused and self.transport is not None and not self._closing:
            self._read_paused = False
            self.transport.resume_reading()
            asyncio.get_running_loop().call_soon(self._parse)

    async def wait_resumed(self) -> None:
        """Not needed over TCP: reading resumes through the transport."""

    def close(self, *, abort: bool = False) -> None:
        """Write what is queued, then close (``abort``: drop it and close at once)."""
        if self.transport is None or self.transport.is_closing():
            self._closing = True
            return
        self._flush_soon = False
        self._closing = True
        if abort:
            self._out.clear()
            self._out_bytes = 0
            self.transport.abort()
            return
        if self._out:
            self.transport.write(b"".join(self._out))  # even when paused: it is the last
        self._out.clear()
        self._out_bytes = 0
        self.transport.close()

    async def closed(self) -> None:
        """Return once the connection is closed (``connection_lost``)."""
        await asyncio.shield(self._closed)

    async def wait_closed(self) -> None:
        """Return once the connection is closed (or after 2 s)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._closed), 2.0)


class _MemoryTransport(asyncio.Transport):
    """One end's asyncio transport: what is written reaches the other end's protocol."""

    def __init__(self, end: MemoryConnection) -> None:
        super().__init__()
        self._end = end

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """``peername``: the other end's name; nothing else."""
        return self._end.peer if name == "peername" else default

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Hand ``data`` to the other end (delivered at the loop's next turn)."""
        self._end._send(bytes(data))

    def is_closing(self) -> bool:
        """True once either end closed."""
        return self._end._closed

    def close(self) -> None:
        """Close after what was written (the other end reads it, then its end)."""
        self._end._shutdown()

    def abort(self) -> None:
        """Close at once: this end reads nothing more."""
        self._end._shutdown()

    def pause_reading(self) -> None:
        """Hold the received bytes back until ``resume_reading``."""
        self._end._paused = True

    def resume_reading(self) -> None:
        """Deliver the held bytes again."""
        self._end._paused = False
        self._end._deliver_soon()

    def is_reading(self) -> bool:
        """False while paused."""
        return not self._end._paused

    def get_write_buffer_size(self) -> int:
        """Nothing is buffered here: writes go to the other end's inbox at once."""
        return 0


class _FrameQueue(FrameProtocol):
    """What an end's ``read_frame`` reads from: the frames received, then the end."""

    def __init__(self, max_frame: int) -> None:
        super().__init__(max_frame)
        self.received: asyncio.Queue[bytes | Exception] = asyncio.Queue()

    def frame_received(self, body: bytes) -> None:
        self.received.put_nowait(body)

    def frame_too_large(self, error: FrameTooLarge) -> None:
        self.received.put_nowait(error)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self.received.put_nowait(ConnectionLost("memory connection closed"))


class MemoryConnection:
    """One end of an in-memory connection pair (the test double of a TCP connection).

    ``attach(protocol)`` runs any asyncio protocol on this end, as the event
    loop does for a socket: the node's server (``RpcServer.serve``) and
    client (``AsyncRpc(end)``) run their TCP code unchanged. Bytes the other
    end writes reach the protocol at the loop's next turn, in order; a close
    reaches it after them. Without a protocol of its own, an end reads and
    writes frames directly (``read_frame``, ``write_frame``, ``write_raw``):
    for tests that play the other side by hand.
    """

    def __init__(self, name: str, max_frame: int) -> None:
        self.name = name
        self.max_frame = max_frame
        self._other: MemoryConnection | None = None
        self._protocol: asyncio.Protocol | None = None
        self._transport: _MemoryTransport | None = None
        self._inbox: deque[bytes] = deque()
        self._peer_closed = False  # the other end closed: deliver the end after the bytes
        self._closed = False  # this end closed (or saw the other end close)
        self._lost = False  # connection_lost was called
        self._paused = False
        self._scheduled = False
        self._queue: _FrameQueue | None = None

    @property
    def peer(self) -> str:
        """The name of the other end."""
        return self._other.name if self._other is not None else "?"

    def attach(self, protocol: asyncio.Protocol) -> asyncio.Transport:
        """Run ``protocol`` on this end (``connection_made`` now); return its transport."""
        if self._protocol is not None:
            msg = f"memory connection end {self.name} already has a protocol"
            raise RuntimeError(msg)
        transport = self._transport = _MemoryTransport(self)
        self._protocol = protocol
        protocol.connection_made(transport)
        self._deliver_soon()
        return transport

    # -- the transport's side -------------------------------------------------------------------

    def _send(self, data: bytes) -> None:
        other = self._other
        if self._closed or other is None or other._closed:
            return
        other._inbox.append(data)
        other._deliver_soon()

    def _shutdown(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._inbox.clear()
        if self._other is not None and not self._other._closed:
            self._other._peer_closed = True
            self._other._deliver_soon()
        self._deliver_soon()  # connection_lost for this end's protocol

    def _deliver_soon(self) -> None:
        if self._protocol is not None and not self._scheduled and not self._lost:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._deliver)

    def _deliver(self) -> None:
        self._scheduled = False
        protocol = self._protocol
        if protocol is None or self._lost:
            return
        inbox = self._inbox
        if inbox and not self._paused and not self._closed:
            # as a socket's reader does: what is there, up to READ_SIZE, in one call
            # per loop turn (the rest at the next turn)
            chunks, size = [], 0
            while inbox and size < READ_SIZE:
                chunks.append(inbox.popleft())
                size += len(chunks[-1])
            protocol.data_received(b"".join(chunks))
            if inbox:
                self._deliver_soon()
                return
        if self._peer_closed and not self._inbox and not self._closed:
            self._closed = True
            protocol.eof_received()
        if self._closed and not self._lost:
            self._lost = True
            protocol.connection_lost(None)

    # -- frames by hand (tests) -----------------------------------------------------------------

    def _frames(self) -> _FrameQueue:
        if self._queue is None:
            self._queue = _FrameQueue(self.max_frame)
            self.attach(self._queue)
        return self._queue

    async def read_frame(self) -> bytes:
        """Return the next frame body the other end wrote.

        Raises:
            FrameTooLarge: the length prefix exceeds the limit (the body is not read).
            ConnectionLost: the stream ended.
        """
        received = self._frames().received
        item = await received.get()
        if isinstance(item, Exception):
            received.put_nowait(item)  # every later read fails the same way
            raise item
        return item

    async def write_frame(self, body: bytes) -> None:
        """Send one frame (length prefix + ``body``).

        Raises:
            FrameTooLarge: ``body`` is longer than the limit.
            ConnectionLost: this end is closed.
        """
        await self.write_raw(frame(body, self.max_frame))

    async def write_raw(self, data: bytes) -> None:
        """Send bytes as they are (tests: forge a length prefix)."""
        queue = self._frames()
        if self._closed or queue.transport is None:
            msg = "memory connection closed"
            raise ConnectionLost(msg)
        queue.transport.write(data)

    async def close(self) -> None:
        """Close this end (the other end reads what was sent, then the end); idempotent."""
        self._shutdown()


def memory_pair(max_frame: int = DEFAULT_MAX_FRAME) -> tuple[MemoryConnection, MemoryConnection]:
    """Return two connected in-memory ends (client, server)."""
    client = MemoryConnection("client", max_frame)
    server = MemoryConnection("server", max_frame)
    client._other = server
    server._other = client
    return client, server
