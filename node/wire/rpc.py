"""Request/reply clients of the wire protocol, blocking and asyncio.

``SyncRpc`` uses a blocking socket (no event loop, no threads: safe to use
from any script). ``AsyncRpc`` routes replies to their request by id and
pushed events to a queue as frames arrive, so many requests can be in flight
at once. Both raise ``RequestFailed(code, message)`` for an error reply.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import socket
from collections import deque
from collections.abc import Callable, Mapping
from typing import Protocol

from node.errors import (
    ClientClosed,
    ConnectionLost,
    FrameTooLarge,
    MalformedMessage,
    NodeTimeout,
    RequestFailed,
)
from node.wire.protocol import (
    DEFAULT_MAX_FRAME,
    HEADER,
    ErrorReply,
    Event,
    Reply,
    Value,
    frame,
    frame_length,
    parse_message,
    request_body,
)
from node.wire.transport import Connection, ConnectionSink, FrameProtocol

Result = dict[str, Value]
_CLOSED = Event(-1, "", {})  # sentinel queued when the connection ends


class SyncRpc:
    """A blocking client connection to one node."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        timeout: float = 30.0,
        max_frame: int = DEFAULT_MAX_FRAME,
    ) -> None:
        try:
            self._sock: socket.socket | None = socket.create_connection((host, port), timeout)
        except OSError as exc:
            msg = f"cannot connect to {host}:{port}: {exc}"
            raise ConnectionLost(msg) from exc
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        self.max_frame = max_frame
        self.address = f"{host}:{port}"
        self._ids = itertools.count(1)
        self.events: deque[Event] = deque()  # events that arrived while waiting for a reply

    def close(self) -> None:
        """Close the socket; idempotent."""
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
            self._sock = None

    def __enter__(self) -> SyncRpc:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _socket(self) -> socket.socket:
        if self._sock is None:
            msg = "client is closed"
            raise ClientClosed(msg)
        return self._sock

    def send_raw(self, data: bytes) -> None:
        """Send bytes as they are (tests: forge frames)."""
        self._socket().sendall(data)

    def _recv_exact(self, size: int, timeout: float | None) -> bytes:
        sock = self._socket()
        sock.settimeout(timeout)
        chunks = bytearray()
        while len(chunks) < size:
            try:
                chunk = sock.recv(min(size - len(chunks), 1 << 20))
            except TimeoutError as exc:
                msg = f"no answer from {self.address} in {timeout} s"
                raise NodeTimeout(msg) from exc
            except OSError as exc:
                msg = f"connection to {self.address} failed: {exc}"
                raise ConnectionLost(msg) from exc
            if not chunk:
                msg = f"connection to {self.address} closed"
                raise ConnectionLost(msg)
            chunks += chunk
        return bytes(chunks)

    def read_message(self, timeout: float | None = None) -> Reply | ErrorReply | Event:
        """Read the next message (reply, error reply or event) from the node."""
        wait = self.timeout if timeout is None else timeout
        size = frame_length(self._recv_exact(HEADER.size, wait), self.max_frame)
        message = parse_message(self._recv_exact(size, wait), canonical=False)
        if not isinstance(message, Reply | ErrorReply | Event):
            msg = "node sent a request"
            raise ConnectionLost(msg)
        return message

    def call(
        self, command: str, args: Mapping[str, Value] | None = None, *, timeout: float | None = None
    ) -> Result:
        """Send one request and return its result.

        Raises:
            RequestFailed: the node answered with an error reply.
            NodeTimeout: no answer in ``timeout`` seconds (default: the client's).
            ConnectionLost: the connection broke.
        """
        request_id = next(self._ids)
        self._socket().sendall(frame(request_body(request_id, command, args or {}), self.max_frame))
        while True:
            message = self.read_message(timeout)
            if isinstance(message, Event):
                self.events.append(message)
            elif message.request_id in (request_id, 0):
                if isinstance(message, ErrorReply):
                    raise RequestFailed(message.code, message.message)
                return message.result

    def next_event(self, timeout: float | None = None) -> Event:
        """Return the next pushed event (after ``call("subscribe", ...)``)."""
        if self.events:
            return self.events.popleft()
        while True:
            message = self.read_message(timeout)
            if isinstance(message, Event):
                return message


class _Link(Protocol):
    """How ``AsyncRpc`` sends frames (it is told of arriving ones by callback)."""

    def send(self, body: bytes) -> None: ...

    async def wait_writable(self) -> None: ...

    def close(self, *, abort: bool = False) -> None: ...

    async def wait_closed(self) -> None: ...


class _ClientProtocol(FrameProtocol):
    """A TCP connection of an ``AsyncRpc``: frames go to its callbacks."""

    def __init__(self, max_frame: int) -> None:
        super().__init__(max_frame)
        self.on_frame: Callable[[bytes], None] = _ignore
        self.on_lost: Callable[[BaseException], None] = _ignore

    def frame_received(self, body: bytes) -> None:
        self.on_frame(body)

    def frame_too_large(self, error: FrameTooLarge) -> None:
        self.close(abort=True)
        self.on_lost(ConnectionLost(f"node sent a frame too large: {error}"))

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self.on_lost(ConnectionLost(f"connection to {self.peer} closed: {exc or 'by the node'}"))


class _ConnectionLink:
    """An ``AsyncRpc`` link over any ``Connection``: a task reads, a ``ConnectionSink`` writes."""

    def __init__(
        self,
        conn: Connection,
        on_frame: Callable[[bytes], None],
        on_lost: Callable[[BaseException], None],
    ) -> None:
        self._conn = conn
        self._sink = ConnectionSink(conn)
        self._reader = asyncio.ensure_future(self._read_loop(on_frame, on_lost))

    async def _read_loop(
        self, on_frame: Callable[[bytes], None], on_lost: Callable[[BaseException], None]
    ) -> None:
        try:
            while True:
                on_frame(await self._conn.read_frame())
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            on_lost(exc if isinstance(exc, ConnectionLost) else ConnectionLost(str(exc)))

    def send(self, body: bytes) -> None:
        self._sink.send(body)

    async def wait_writable(self) -> None:
        return

    def close(self, *, abort: bool = False) -> None:
        self._reader.cancel()
        self._sink.close(abort=abort)

    async def wait_closed(self) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
        await self._sink.wait_closed()


def _ignore(_value: object) -> None:
    return None


class AsyncRpc:
    """An asyncio client connection to one node, with requests in flight concurrently.

    Over TCP (``connect``) the connection is an ``asyncio.Protocol``: replies
    are parsed as they arrive and routed to their request by id, pushed
    events go to a queue, and every request of one loop iteration goes out in
    one write. ``AsyncRpc(conn)`` runs over any ``Connection`` (tests: in memory).
    """

    def __init__(self, conn: Connection | None = None, *, timeout: float = 30.0) -> None:
        self.timeout = timeout
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[Result]] = {}
        # Request id -> (loop time it times out at, command). One timer for all of
        # them (``_expire``), not one per call: ``asyncio.wait_for`` (an extra
        # future, a callback and a timer heap entry per request) was ~15% of a
        # client's time at thousands of requests per second.
        self._deadlines: dict[int, tuple[float, str]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf
        self.events: asyncio.Queue[Event] = asyncio.Queue()
        self._closed: BaseException | None = None
        self._link: _Link | None = None
        if conn is not None:
            self._link = _ConnectionLink(conn, self._on_frame, self._fail_all)

    @classmethod
    async def connect(
        cls, host: str, port: int, *, timeout: float = 30.0, max_frame: int = DEFAULT_MAX_FRAME
    ) -> AsyncRpc:
        """Open a TCP connection to ``host:port``.

        Raises:
            ConnectionLost: the connection could not be made in ``timeout`` seconds.
        """
        rpc = cls(timeout=timeout)
        loop = asyncio.get_running_loop()
        try:
            _, protocol = await asyncio.wait_for(
                loop.create_connection(lambda: _ClientProtocol(max_frame), host, port), timeout
            )
        except (OSError, TimeoutError) as exc:
            msg = f"cannot connect to {host}:{port}: {exc or type(exc).__name__}"
            raise ConnectionLost(msg) from exc
        protocol.on_frame = rpc._on_frame
        protocol.on_lost = rpc._fail_all
        rpc._link = protocol
        return rpc

    async def close(self) -> None:
        """Close the connection and fail every pending request."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer, self._timer_at = None, math.inf
        self._fail_all(ClientClosed("client is closed"))  # first: what later calls raise
        if self._link is not None:
            self._link.close()
            await self._link.wait_closed()

    async def __aenter__(self) -> AsyncRpc:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _fail_all(self, error: BaseException) -> None:
        if self._closed is None:
            self._closed = error
            self.events.put_nowait(_CLOSED)  # wakes a ``next_event`` waiter
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(error)
        self._waiting.clear()
        self._deadlines.clear()

    def _on_frame(self, body: bytes) -> None:
        """Route one frame from the node: a reply to its request, an event to the queue."""
        try:
            message = parse_message(body, canonical=False)  # from the node: shape only
        except MalformedMessage as exc:
            error = ConnectionLost(f"node sent a malformed message: {exc}")
            if self._link is not None:
                self._link.close(abort=True)
            self._fail_all(error)
            return
        if isinstance(message, Event):
            self.events.put_nowait(message)
            return
        if not isinstance(message, Reply | ErrorReply):
            return
        future = self._waiting.pop(message.request_id, None)
        self._deadlines.pop(message.request_id, None)
        if future is None or future.done():
            return
        if isinstance(message, ErrorReply):
            future.set_exception(RequestFailed(message.code, message.message))
        else:
            future.set_result(message.result)

    async def call(
        self, command: str, args: Mapping[str, Value] | None = None, *, timeout: float | None = None
    ) -> Result:
        """Send one request and await its result (see ``SyncRpc.call``)."""
        if self._closed is None and self._link is not None:
            await self._link.wait_writable()  # the node reads too slowly: do not pile up here
        return await self.request(command, args, timeout=timeout)

    def request(
        self, command: str, args: Mapping[str, Value] | None = None, *, timeout: float | None = None
    ) -> asyncio.Future[Result]:
        """Send one request now and return the future of its result.

        For scripts that keep many requests in flight: no coroutine or task
        per request (add a done callback instead). The future fails as
        ``call`` raises; it fails with ``NodeTimeout`` after ``timeout``
        seconds (default: the client's).
        """
        if self._closed is not None:
            raise self._closed
        link = self._link
        assert link is not None
        request_id = next(self._ids)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Result] = loop.create_future()
        self._waiting[request_id] = future
        deadline = loop.time() + (self.timeout if timeout is None else timeout)
        self._deadlines[request_id] = (deadline, command)
        if deadline < self._timer_at:
            self._arm(loop, deadline)
        link.send(request_body(request_id, command, args or {}))
        return future

    def _arm(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = loop.call_at(when, self._expire)
        self._timer_at = when

    def _expire(self) -> None:
        """Fail the requests whose time is up; wake up again at the next deadline."""
        self._timer, self._timer_at = None, math.inf
        loop = asyncio.get_running_loop()
        now = loop.time()
        next_at = math.inf
        for request_id, (deadline, command) in list(self._deadlines.items()):
            if deadline <= now:
                del self._deadlines[request_id]
                future = self._waiting.pop(request_id, None)
                if future is not None and not future.done():
                    future.set_exception(NodeTimeout(f"no answer to {command!r} in time"))
            elif deadline < next_at:
                next_at = deadline
        if next_at < math.inf:
            self._arm(loop, next_at)

    async def next_event(self, timeout: float | None = None) -> Event:
        """Return the next pushed event.

        Raises:
            ConnectionLost: the connection closed (also when it closes while waiting).
            NodeTimeout: no event in ``timeout`` seconds.
        """
        try:
            event = await asyncio.wait_for(self.events.get(), timeout)
        except TimeoutError as exc:
            msg = "no event in time"
            raise NodeTimeout(msg) from exc
        if event is _CLOSED:
            self.events.put_nowait(_CLOSED)  # later calls fail too
            assert self._closed is not None
            raise self._closed
        return event
