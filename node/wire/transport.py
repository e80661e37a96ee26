"""Connections that carry frames: TCP as an asyncio protocol, and an in-memory pair.

``FrameProtocol`` is a TCP connection's frames: the node's server, its
asyncio client and its worker processes all use it. ``Connection`` is the
awaitable interface (``read_frame``/``write_frame``) that the in-memory pair
implements, for tests. Both check the frame size limit before reading a
body: an oversized length prefix is ``FrameTooLarge``, and the other side
going away is ``ConnectionLost``.

A ``FrameSink`` is the server's side of writing: ``send`` queues a frame and
returns at once (no await per reply). ``ConnectionSink`` puts one over any
``Connection``; the server's TCP protocol is its own sink (``node.wire.server``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from typing import Protocol

from node.errors import ConnectionLost, FrameTooLarge
from node.wire.protocol import DEFAULT_MAX_FRAME, HEADER, frame, frame_length

log = logging.getLogger("p2pex.transport")

OUT_LIMIT = 1 << 20  # bytes queued for writing before FrameProtocol.wait_writable waits


class Connection(Protocol):
    """A bidirectional stream of frames."""

    @property
    def peer(self) -> str:
        """A printable name of the other side (for logs)."""
        ...

    async def read_frame(self) -> bytes:
        """Return the next frame body.

        Raises:
            FrameTooLarge: the length prefix exceeds the limit (the body is not read).
            ConnectionLost: the stream ended, cleanly between frames or mid-frame.
        """
        ...

    async def write_frame(self, body: bytes) -> None:
        """Send one frame (length prefix + ``body``)."""
        ...

    async def close(self) -> None:
        """Close the connection; idempotent."""
        ...


class FrameSink(Protocol):
    """Where a server session writes its frames (replies and events)."""

    @property
    def peer(self) -> str:
        """A printable name of the other side (for logs)."""
        ...

    @property
    def pending(self) -> int:
        """Frames queued and not written yet."""
        ...

    def send(self, body: bytes) -> None:
        """Queue one frame (the body; the sink adds the length prefix). Never blocks."""
        ...

    def pause(self) -> None:
        """Stop reading from the other side (the session has too much queued)."""
        ...

    def resume(self) -> None:
        """Read again."""
        ...

    async def wait_resumed(self) -> None:
        """Return once reading may go on (after ``pause``)."""
        ...

    def close(self, *, abort: bool = False) -> None:
        """Write what is queued, then close (``abort``: drop it); idempotent."""
        ...

    async def wait_closed(self) -> None:
        """Return once the connection is closed."""
        ...


class ConnectionSink:
    """A ``FrameSink`` over a ``Connection``: one task writes the queued frames in order."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._frames: deque[bytes] = deque()
        self._wakeup = asyncio.Event()
        self._readable = asyncio.Event()
        self._readable.set()
        self._closing = False
        self._writer = asyncio.ensure_future(self._write_loop())

    @property
    def peer(self) -> str:
        """The connection's peer."""
        return self.conn.peer

    @property
    def pending(self) -> int:
        """Frames queued and not written yet."""
        return len(self._frames)

    def send(self, body: bytes) -> None:
        """Queue one frame for the writer task."""
        if not self._closing:
            self._frames.append(body)
            self._wakeup.set()

    async def _write_loop(self) -> None:
        try:
            while True:
                while not self._frames:
                    if self._closing:
                        return
                    self._wakeup.clear()
                    await self._wakeup.wait()
                await self.conn.write_frame(self._frames.popleft())
        except (ConnectionLost, FrameTooLarge):
            pass
        finally:
            await self.conn.close()

    def pause(self) -> None:
        """Let ``wait_resumed`` wait."""
        self._readable.clear()

    def resume(self) -> None:
        """Wake ``wait_resumed``."""
        self._readable.set()

    async def wait_resumed(self) -> None:
        """Return once ``resume`` was called (or the sink closes)."""
        await self._readable.wait()

    def close(self, *, abort: bool = False) -> None:
        """Let the writer finish the queued frames (``abort``: drop them), then close."""
        if abort:
            self._frames.clear()
        self._closing = True
        self._wakeup.set()
        self._readable.set()

    async def wait_closed(self) -> None:
        """Return once the writer task finished (or after 2 s)."""
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(self._writer), 2.0)


class FrameProtocol(asyncio.Protocol):
    """A TCP connection as frames: parsed as bytes arrive, written once per loop iteration.

    Subclasses say what to do with a frame (``frame_received``) and with an
    oversized length prefix (``frame_too_large``), and may hold reading back
    (``reading_allowed``; call ``resume`` when it may go on). ``send`` is the
    ``FrameSink`` side: every frame sent in one loop iteration goes out in one
    ``transport.write``. Compared with asyncio streams this saves, per frame,
    the two ``readexactly`` waits, a lock and a ``drain`` (at thousands of
    frames per second they were a large share of a node's event loop).
    """

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        self.max_frame = max_frame
        self.transport: asyncio.Transport | None = None
        self.peer = "?"
        self._buffer = bytearray()
        self._out: list[bytes] = []  # framed bytes not yet handed to the transport
        self._out_bytes = 0
        self._flush_soon = False
        self._write_paused = False  # the transport's buffer is above its high-water mark
        self._writable: asyncio.Event | None = None  # made when someone waits for it
        self._read_paused = False
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
        self._buffer += data
        self._parse()

    def _parse(self) -> None:
        """Hand every complete frame in the buffer on, while reading is allowed."""
        buffer = self._buffer
        start = 0
        try:
            while len(buffer) - start >= HEADER.size and not self._closing:
                if not self.reading_allowed():
                    self.pause()
                    break
                (size,) = HEADER.unpack_from(buffer, start)
                if size > self.max_frame:
                    self.frame_too_large(FrameTooLarge(size, self.max_frame))
                    self._closing = True
                    return
                end = start + HEADER.size + size
                if len(buffer) < end:
                    break
                body = bytes(buffer[start + HEADER.size : end])
                start = end
                self.frame_received(body)
        except Exception:  # a bug must cost this connection, not the process
            log.exception("connection %s failed", self.peer)
            self.close(abort=True)
        finally:
            del buffer[:start]

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

    # -- FrameSink ---------------------------------------------------------------------------

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

    async def wait_closed(self) -> None:
        """Return once the connection is closed (or after 2 s)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._closed), 2.0)


_EOF = b"\x00eof"  # sentinel object identity, never compared by value


class MemoryConnection:
    """One end of an in-memory connection pair (a test double for TCP).

    Frames are bytes including the length prefix, so size checks behave as on TCP.
    """

    __slots__ = ("_closed", "_inbox", "_max_frame", "_name", "_other")

    def __init__(self, name: str, max_frame: int) -> None:
        self._name = name
        self._max_frame = max_frame
        self._inbox: asyncio.Queue[bytes] = asyncio.Queue()
        self._other: MemoryConnection | None = None
        self._closed = False

    @property
    def peer(self) -> str:
        """The name given to the other end."""
        return self._other._name if self._other else "?"

    async def read_frame(self) -> bytes:
        """Return the next frame body the other end wrote."""
        data = await self._inbox.get()
        if data is _EOF:
            self._inbox.put_nowait(_EOF)  # every later read also sees the end
            msg = "memory connection closed"
            raise ConnectionLost(msg)
        size = frame_length(data[: HEADER.size], self._max_frame)
        return data[HEADER.size : HEADER.size + size]

    async def write_frame(self, body: bytes) -> None:
        """Queue one frame for the other end."""
        if self._closed or self._other is None:
            msg = "memory connection closed"
            raise ConnectionLost(msg)
        self._other._inbox.put_nowait(frame(body, self._max_frame))

    async def write_raw(self, data: bytes) -> None:
        """Queue raw bytes as one 'frame' (tests: forge a length prefix)."""
        assert self._other is not None
        self._other._inbox.put_nowait(data)

    async def close(self) -> None:
        """Close both directions."""
        if self._closed:
            return
        self._closed = True
        self._inbox.put_nowait(_EOF)
        if self._other is not None:
            self._other._inbox.put_nowait(_EOF)


def memory_pair(max_frame: int = DEFAULT_MAX_FRAME) -> tuple[MemoryConnection, MemoryConnection]:
    """Return two connected in-memory ends (client, server)."""
    client = MemoryConnection("client", max_frame)
    server = MemoryConnection("server", max_frame)
    client._other = server
    server._other = client
    return client, server
