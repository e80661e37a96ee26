"""Request/reply clients of the wire protocol, blocking and asyncio.

Both are one ``node.wire.connection.ClientConnection`` (request ids,
encoding, matching answers to requests) plus how they wait. ``SyncRpc``
uses a blocking socket (no event loop, no threads: safe to use from any
script). ``AsyncRpc`` is an asyncio protocol: replies are matched to their
request as frames arrive and pushed events go to a queue, so many requests
can be in flight at once. Both raise ``RequestFailed(code, message)`` for an
error reply.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import socket
from collections import deque
from collections.abc import Callable, Mapping

from node.errors import (
    ClientClosed,
    ConnectionLost,
    FrameTooLarge,
    MalformedMessage,
    NodeTimeout,
    RequestFailed,
)
from node.wire.connection import ClientConnection
from node.wire.frames import DEFAULT_MAX_FRAME, FrameDecoder, frame
from node.wire.protocol import ErrorReply, Event, Reply, Value, parse_message
from node.wire.transport import FrameProtocol, MemoryConnection, recv_frame

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
        self._core: ClientConnection[str] = ClientConnection(max_frame)
        self._frames = FrameDecoder(max_frame)
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

    def _read_body(self, timeout: float | None) -> bytes:
        sock = self._socket()
        sock.settimeout(self.timeout if timeout is None else timeout)
        try:
            return recv_frame(sock, self._frames, read_ahead=True)
        except TimeoutError as exc:
            msg = f"no answer from {self.address} in {sock.gettimeout()} s"
            raise NodeTimeout(msg) from exc
        except EOFError as exc:
            msg = f"connection to {self.address} closed"
            raise ConnectionLost(msg) from exc
        except OSError as exc:
            msg = f"connection to {self.address} failed: {exc}"
            raise ConnectionLost(msg) from exc

    def read_message(self, timeout: float | None = None) -> Reply | ErrorReply | Event:
        """Read the next message (reply, error reply or event) as it is, unmatched (tests)."""
        message = parse_message(self._read_body(timeout), canonical=False)
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
            FrameTooLarge: the request exceeds the frame limit (not sent).
        """
        request_id, body = self._core.request(command, args or {}, command)
        try:
            self._socket().sendall(frame(body, self.max_frame))
            while True:
                try:
                    got = self._core.receive(self._read_body(timeout))
                except MalformedMessage as exc:
                    self.close()
                    msg = f"node sent a malformed message: {exc}"
                    raise ConnectionLost(msg) from exc
                if got is None:
                    continue  # the answer to a request given up on
                if type(got) is Event:
                    self.events.append(got)
                    continue
                assert isinstance(got, tuple)
                _, message = got
                # an error with id 0 is about the frame just sent
                if isinstance(message, ErrorReply):
                    raise RequestFailed(message.code, message.message)
                return message.result
        finally:
            self._core.forget(request_id)

    def next_event(self, timeout: float | None = None) -> Event:
        """Return the next pushed event (after ``call("subscribe", ...)``)."""
        if self.events:
            return self.events.popleft()
        while True:
            got = self._core.receive(self._read_body(timeout))
            if type(got) is Event:
                return got


class _ClientProtocol(FrameProtocol):
    """The connection of an ``AsyncRpc`` (TCP or in memory): frames go to its callbacks."""

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


def _ignore(_value: object) -> None:
    return None


class AsyncRpc:
    """An asyncio client connection to one node, with requests in flight concurrently.

    The connection is an ``asyncio.Protocol``, over TCP (``connect``) or
    over an in-memory end (``AsyncRpc(end)``, tests): replies are matched
    to their request as they arrive, pushed events go to a queue, and
    every request of one loop iteration goes out in one write.
    """

    def __init__(
        self,
        conn: MemoryConnection | None = None,
        *,
        timeout: float = 30.0,
        max_frame: int | None = None,
    ) -> None:
        self.timeout = timeout
        limit = max_frame or (conn.max_frame if conn is not None else DEFAULT_MAX_FRAME)
        self._core: ClientConnection[asyncio.Future[Result]] = ClientConnection(limit)
        # Request id -> (loop time it times out at, command). One timer for all of
        # them (``_expire``), not one per call: ``asyncio.wait_for`` (an extra
        # future, a callback and a timer heap entry per request) was ~15% of a
        # client's time at thousands of requests per second.
        self._deadlines: dict[int, tuple[float, str]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf
        self.events: asyncio.Queue[Event] = asyncio.Queue()
        self._closed: BaseException | None = None
        self._link: _ClientProtocol | None = None
        if conn is not None:
            protocol = _ClientProtocol(limit)
            self._attach(protocol)
            conn.attach(protocol)

    def _attach(self, protocol: _ClientProtocol) -> None:
        protocol.on_frame = self._on_frame
        protocol.on_lost = self._fail_all
        self._link = protocol

    @property
    def _waiting(self) -> dict[int, asyncio.Future[Result]]:
        """The futures of the requests in flight, by id."""
        return self._core.pending

    @classmethod
    async def connect(
        cls, host: str, port: int, *, timeout: float = 30.0, max_frame: int = DEFAULT_MAX_FRAME
    ) -> AsyncRpc:
        """Open a TCP connection to ``host:port``.

        Raises:
            ConnectionLost: the connection could not be made in ``timeout`` seconds.
        """
        rpc = cls(timeout=timeout, max_frame=max_frame)
        loop = asyncio.get_running_loop()
        try:
            _, protocol = await asyncio.wait_for(
                loop.create_connection(lambda: _ClientProtocol(max_frame), host, port), timeout
            )
        except (OSError, TimeoutError) as exc:
            msg = f"cannot connect to {host}:{port}: {exc or type(exc).__name__}"
            raise ConnectionLost(msg) from exc
        rpc._attach(protocol)
        return rpc

    @property
    def closed(self) -> bool:
        """True once the connection ended (every later request fails)."""
        return self._closed is not None

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
        for future in self._core.forget_all():
            if not future.done():
                future.set_exception(error)
        self._deadlines.clear()

    def _on_frame(self, body: bytes) -> None:
        """Route one frame from the node: a reply to its request, an event to the queue."""
        try:
            got = self._core.receive(body)
        except MalformedMessage as exc:
            error = ConnectionLost(f"node sent a malformed message: {exc}")
            if self._link is not None:
                self._link.close(abort=True)
            self._fail_all(error)
            return
        if got is None:
            return
        if type(got) is Event:
            self.events.put_nowait(got)
            return
        assert isinstance(got, tuple)
        future, message = got
        if future is None:
            return  # id 0: about no request of ours; a hang-up follows if it is fatal
        self._deadlines.pop(message.request_id, None)
        if future.done():
            return
        if isinstance(message, ErrorReply):
            future.set_exception(RequestFailed(message.code, message.message))
        else:
            future.set_result(message.result)

    async def wait_writable(self) -> None:
        """Return once the node reads fast enough for more requests to be sent."""
        if self._closed is None and self._link is not None:
            await self._link.wait_writable()

    async def call(
        self, command: str, args: Mapping[str, Value] | None = None, *, timeout: float | None = None
    ) -> Result:
        """Send one request and await its result (see ``SyncRpc.call``)."""
        await self.wait_writable()  # the node reads too slowly: do not pile up here
        return await self.request(command, args, timeout=timeout)

    def request(
        self, command: str, args: Mapping[str, Value] | None = None, *, timeout: float | None = None
    ) -> asyncio.Future[Result]:
        """Send one request now and return the future of its result.

        For scripts that keep many requests in flight: no coroutine or task
        per request (add a done callback instead). The future fails as
        ``call`` raises; it fails with ``NodeTimeout`` after ``timeout``
        seconds (default: the client's).

        Raises:
            FrameTooLarge: the request exceeds the frame limit (not sent).
            MalformedMessage: ``args`` is not a protocol value, or too large a one.
        """
        if self._closed is not None:
            raise self._closed
        link = self._link
        assert link is not None
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Result] = loop.create_future()
        request_id, body = self._core.request(command, args or {}, future)
        deadline = loop.time() + (self.timeout if timeout is None else timeout)
        self._deadlines[request_id] = (deadline, command)
        if deadline < self._timer_at:
            self._arm(loop, deadline)
        link.send(body)
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
                future = self._core.forget(request_id)
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
