"""The request server: many clients, never crashes on bad input.

``RpcServer`` reads frames from every connection, decodes requests and calls
the handler registered for the command. Every failure of one request becomes
an error reply on that connection; a frame that is too large or a connection
that stays idle too long closes that connection only. Nothing a client sends
can stop the server or delay other clients beyond its own requests.

Order. The requests of one connection are taken in the order they were
sent, through a per-connection queue, except commands registered as
*concurrent* (long waits such as ``wait_committed``), which run at once and
reply when done. Two kinds of command go through the queue:

- ordinary commands run in a task when they reach the head of the queue,
  and the requests after them wait until they finished;
- *pipelined* commands (``submit`` on the operator) are a ``Pipeline`` of
  two plain functions. ``prepare`` runs as soon as the request is read,
  concurrently with the requests before it, and does the work that does not
  depend on the order (decoding, checking the signature): it returns a
  future. ``run`` is called at the request's turn, once that future is
  resolved, gives the request its place in the sequence at once and returns
  a future of the result; the requests after it start right away. So a
  client's transactions are sequenced in the order it sent them, while many
  of them wait for acceptance at once and their replies go out as they are
  accepted (matched to requests by id, as every reply). A prepare step that
  fails is answered at the request's turn, so the requests after it still
  wait for the ones before it. No task and no coroutine is made for such a
  request: at 5,000 submits/s a task per request, its futures and handler
  coroutines were about a quarter of the operator's event loop.

Writes. Replies and events are queued on the connection and written once
per loop iteration (one system call for all the frames of an iteration). A
client that lets ``MAX_PENDING_FRAMES`` frames pile up unread is too slow:
its connection is closed rather than letting memory grow. A client whose
queue holds ``MAX_QUEUED_PER_CONNECTION`` requests is not read from until
it shrinks (backpressure through TCP).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from node.errors import (
    FrameTooLarge,
    InvalidTransaction,
    MalformedMessage,
    RequestFailed,
)
from node.wire.protocol import (
    DEFAULT_MAX_FRAME,
    E_BAD_ARGUMENTS,
    E_FRAME_TOO_LARGE,
    E_INTERNAL,
    E_MALFORMED,
    E_OVERLOADED,
    E_TIMEOUT,
    E_UNKNOWN_COMMAND,
    MAX_REQUEST_VALUES,
    Request,
    Value,
    error_body,
    event_body,
    parse_message,
    reply_body,
)
from node.wire.transport import FRAMES_PER_TURN, FrameProtocol, MemoryConnection

log = logging.getLogger("p2pex.server")

Args = dict[str, Value]
Result = dict[str, Value]
Handler = Callable[["Session", Args], Awaitable[Result]]

MAX_PENDING_FRAMES = 10_000  # unwritten frames of a client before it is disconnected
MAX_QUEUED_PER_CONNECTION = 1_000  # queued requests before a client is no longer read
MAX_CONCURRENT_PER_CONNECTION = 1_000  # concurrent commands in flight per client


@dataclass(frozen=True, slots=True)
class Pipeline:
    """A pipelined command (see the module doc): plain functions, no coroutines.

    ``prepare(session, args)`` runs when the request is read; it returns a
    future of whatever ``run`` needs, or raises. ``run(session, prepared)``
    runs at the request's turn and returns a future of its outcome; the
    requests after it start at once. ``reply(outcome)`` makes the result map.
    Any of them may raise (or fail its future) with the errors a handler
    raises; they become the request's error reply.
    """

    prepare: Callable[[Session, Args], asyncio.Future[Any]]
    run: Callable[[Session, Any], asyncio.Future[Any]]
    reply: Callable[[Any], Result]


@dataclass(eq=False, slots=True)
class _Queued:
    """A request waiting in its connection's queue."""

    request: Request
    # What a pipelined command's prepare step gave (a future until it resolves).
    prepared: asyncio.Future[Any] | None = None


@dataclass(eq=False)
class Session:
    """One client connection as the handlers see it."""

    sink: FrameProtocol  # its connection: TCP or in memory, the same code
    subscriptions: dict[str, int] = field(default_factory=dict)  # topic -> subscription id
    closed: bool = False
    queue: deque[_Queued] = field(default_factory=deque)  # answered in order, head first
    # True while an ordinary request at the head of the queue runs.
    busy: bool = False
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    # Loop time of the last frame read (see ``RpcServer._check_idle``; while a
    # pipelined command's prepare step runs, it is when that request arrived).
    last_read: float = 0.0

    def send(self, body: bytes) -> None:
        """Queue one frame for this client; close it if it does not keep up."""
        if self.closed:
            return
        self.sink.send(body)
        if self.sink.pending > MAX_PENDING_FRAMES:
            log.warning("closing slow client %s", self.sink.peer)
            self.closed = True
            self.sink.close(abort=True)

    def push(self, topic: str, data: Mapping[str, Value]) -> None:
        """Send an event to this client if it subscribed to ``topic``."""
        sub = self.subscriptions.get(topic)
        if sub is not None and not self.closed:
            self.send(event_body(sub, topic, data))

    def close(self) -> None:
        """Hang up (after writing what is queued)."""
        self.closed = True
        self.sink.close()


class RpcServer:
    """Serve requests on any number of connections."""

    def __init__(
        self,
        handlers: Mapping[str, Handler],
        *,
        concurrent: frozenset[str] = frozenset(),
        pipelined: Mapping[str, Pipeline] | None = None,
        max_frame: int = DEFAULT_MAX_FRAME,
        idle_timeout: float = 300.0,
    ) -> None:
        self.handlers = dict(handlers)
        self.concurrent = concurrent
        self.pipelined = dict(pipelined or {})  # these take precedence over handlers
        self.max_frame = max_frame
        self.idle_timeout = idle_timeout
        self.sessions: set[Session] = set()
        self._tcp: asyncio.Server | None = None

    async def start_tcp(self, host: str, port: int) -> int:
        """Listen on ``host:port`` (0 = any free port) and return the actual port."""
        loop = asyncio.get_running_loop()
        self._tcp = await loop.create_server(lambda: _ServerProtocol(self), host, port)
        sockets = self._tcp.sockets
        return int(sockets[0].getsockname()[1])

    async def close(self) -> None:
        """Stop listening and close every connection."""
        if self._tcp is not None:
            self._tcp.close()
        for session in list(self.sessions):
            session.close()
            await session.sink.wait_closed()
        if self._tcp is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._tcp.wait_closed(), 2.0)

    def has_subscribers(self, topic: str) -> bool:
        """True if some open session subscribed to ``topic``."""
        return any(topic in session.subscriptions for session in self.sessions)

    def broadcast(self, topic: str, data: Mapping[str, Value]) -> None:
        """Push an event to every session subscribed to ``topic``."""
        for session in list(self.sessions):
            session.push(topic, data)

    # -- connections -----------------------------------------------------------------------------

    def open_session(self, sink: FrameProtocol) -> Session:
        """Register a new connection and start its idle timer."""
        loop = asyncio.get_running_loop()
        session = Session(sink, last_read=loop.time())
        self.sessions.add(session)
        loop.call_later(self.idle_timeout, self._check_idle, session)
        return session

    def end_session(self, session: Session) -> None:
        """Forget a connection that ended; cancel what it still had running."""
        session.closed = True
        self.sessions.discard(session)
        for task in list(session.tasks):
            task.cancel()
        for queued in session.queue:
            if queued.prepared is not None:
                queued.prepared.cancel()
        session.queue.clear()

    async def serve(self, conn: MemoryConnection) -> None:
        """Serve one in-memory connection end until it closes; never raises.

        The connection is read by the same protocol as a TCP connection
        (``_ServerProtocol``): an in-memory client exercises the production
        read path, only the bytes travel differently.
        """
        protocol = _ServerProtocol(self)
        conn.attach(protocol)
        await protocol.closed()

    # -- requests --------------------------------------------------------------------------------

    def on_frame(self, session: Session, body: bytes) -> None:
        """Handle one frame body read from ``session``'s connection."""
        session.last_read = asyncio.get_running_loop().time()
        try:
            message = parse_message(body, max_values=MAX_REQUEST_VALUES)
        except MalformedMessage as exc:
            self._send_error(session, 0, E_MALFORMED, str(exc))
            return
        if not isinstance(message, Request):
            self._send_error(session, 0, E_MALFORMED, "expected a request")
            return
        command = message.command
        if command in self.concurrent:
            if len(session.tasks) >= MAX_CONCURRENT_PER_CONNECTION:
                self._send_error(
                    session, message.request_id, E_OVERLOADED, "too many pending requests"
                )
                return
            self._start(session, self._answer(session, message))
            return
        queued = _Queued(message)
        pipeline = self.pipelined.get(command)
        try:
            if pipeline is not None:
                queued.prepared = pipeline.prepare(session, message.args)
        except Exception as exc:  # answered at the request's turn
            queued.prepared = asyncio.get_running_loop().create_future()
            queued.prepared.set_exception(exc)
        session.queue.append(queued)
        if queued.prepared is not None and not queued.prepared.done():
            queued.prepared.add_done_callback(functools.partial(self._prepared, session))
        if len(session.queue) == 1:
            self._advance(session)

    def refuse_oversized(self, session: Session, error: FrameTooLarge) -> None:
        """Answer an oversized length prefix with ``frame_too_large`` and hang up.

        Its body is not read, so the stream is out of step: nothing after it
        can be parsed.
        """
        session.send(error_body(0, E_FRAME_TOO_LARGE, str(error)))
        session.close()

    def queue_full(self, session: Session) -> bool:
        """True when ``session`` should not be read from until its queue shrinks."""
        return len(session.queue) >= MAX_QUEUED_PER_CONNECTION

    def _prepared(self, session: Session, _future: object) -> None:
        if session.queue and session.queue[0].prepared is _future:
            self._advance(session)

    def _advance(self, session: Session) -> None:
        """Start the requests at the head of the queue whose turn it is."""
        self._take_turns(session)
        if not self.queue_full(session):
            session.sink.resume()  # reading stopped at a full queue: it has room again

    def _take_turns(self, session: Session) -> None:
        queue = session.queue
        while queue and not session.busy and not session.closed:
            queued = queue[0]
            prepared = queued.prepared
            if prepared is not None and not prepared.done():
                return  # _prepared calls again when it is
            request = queued.request
            pipeline = self.pipelined.get(request.command)
            if pipeline is None:
                session.busy = True
                self._start(session, self._answer_queued(session, queued))
                return
            queue.popleft()
            if prepared is None or prepared.cancelled():
                continue  # the connection ended (a pipelined command always has a prepare step)
            try:
                outcome = pipeline.run(session, prepared.result())
            except Exception as exc:  # a failed prepare step or run: its error reply, in turn
                self._reply_error(session, request.request_id, request.command, exc)
                continue
            answer = functools.partial(
                self._reply_with, session, request.request_id, request.command, pipeline.reply
            )
            if outcome.done():
                answer(outcome)
            else:
                outcome.add_done_callback(answer)

    def _start(self, session: Session, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        session.tasks.add(task)
        task.add_done_callback(session.tasks.discard)

    async def _answer_queued(self, session: Session, queued: _Queued) -> None:
        """Answer the ordinary request at the head of the queue, then start the next."""
        try:
            await self._answer(session, queued.request)
        finally:
            if session.queue and session.queue[0] is queued:
                session.queue.popleft()
            session.busy = False
            self._advance(session)

    async def _answer(self, session: Session, request: Request) -> None:
        """Run one request's handler and send its reply or error reply."""
        handler = self.handlers.get(request.command)
        if handler is None:
            self._send_error(
                session,
                request.request_id,
                E_UNKNOWN_COMMAND,
                f"unknown command {request.command!r}",
            )
            return
        try:
            result = await handler(session, request.args)
        except Exception as exc:
            self._reply_error(session, request.request_id, request.command, exc)
            return
        self._reply(session, request.request_id, result)

    def _reply_with(
        self,
        session: Session,
        request_id: int,
        command: str,
        reply: Callable[[Any], Result],
        outcome: asyncio.Future[Any],
    ) -> None:
        """Done callback of a pipelined command's outcome: send its reply or error reply."""
        if outcome.cancelled():
            return
        error = outcome.exception()
        if error is not None:
            self._reply_error(session, request_id, command, error)
            return
        try:
            result = reply(outcome.result())
        except Exception as exc:
            self._reply_error(session, request_id, command, exc)
            return
        self._reply(session, request_id, result)

    def _reply(self, session: Session, request_id: int, result: Result) -> None:
        try:
            body = reply_body(request_id, result)
        except Exception as exc:  # a handler returned something the protocol cannot carry
            log.exception("reply to request %d cannot be encoded", request_id)
            self._send_error(session, request_id, E_INTERNAL, type(exc).__name__)
            return
        if len(body) > self.max_frame:
            too_large = FrameTooLarge(len(body), self.max_frame)
            self._send_error(session, request_id, E_FRAME_TOO_LARGE, f"reply: {too_large}")
            return
        session.send(body)

    def _reply_error(
        self, session: Session, request_id: int, command: str, exc: BaseException
    ) -> None:
        """The error reply for a handler's exception (a bug is logged and answered ``internal``)."""
        if isinstance(exc, RequestFailed):
            self._send_error(session, request_id, exc.code, exc.message)
        elif isinstance(exc, InvalidTransaction):
            self._send_error(session, request_id, exc.code, str(exc))
        elif isinstance(exc, KeyError | TypeError | ValueError):
            self._send_error(session, request_id, E_BAD_ARGUMENTS, repr(exc))
        else:
            log.error("command %s failed", command, exc_info=exc)
            self._send_error(session, request_id, E_INTERNAL, type(exc).__name__)

    def _send_error(self, session: Session, request_id: int, code: str, text: str) -> None:
        session.send(error_body(request_id, code, text[:1000]))

    # -- idle connections ------------------------------------------------------------------------

    def _check_idle(self, session: Session) -> None:
        """Hang up on a client that sent nothing for ``idle_timeout`` and waits for nothing.

        One timer per connection, re-armed from the last read when it fires,
        instead of a timeout around every read (which cost ~5% of the
        operator's time at 5,000 requests/s). A subscriber may listen silently
        for as long as it likes, and a client waiting for an answer is not idle.
        """
        if session.closed:
            return
        loop = asyncio.get_running_loop()
        idle = loop.time() - session.last_read
        waiting_for_us = bool(session.queue or session.tasks)
        if not waiting_for_us and not session.subscriptions and idle >= self.idle_timeout:
            self._send_error(session, 0, E_TIMEOUT, "idle for too long")
            session.close()
            return
        delay = self.idle_timeout - idle if idle < self.idle_timeout else self.idle_timeout
        loop.call_later(delay, self._check_idle, session)


class _ServerProtocol(FrameProtocol):
    """One TCP client connection: its frames go to ``RpcServer.on_frame``; it is the sink."""

    frames_per_turn = FRAMES_PER_TURN  # one client's burst never holds the others up

    def __init__(self, server: RpcServer) -> None:
        super().__init__(server.max_frame)
        self.server = server
        self.session: Session | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.session = self.server.open_session(self)

    def reading_allowed(self) -> bool:
        return self.session is not None and not self.server.queue_full(self.session)

    def frame_received(self, body: bytes) -> None:
        assert self.session is not None
        self.server.on_frame(self.session, body)

    def frame_too_large(self, error: FrameTooLarge) -> None:
        assert self.session is not None
        self.server.refuse_oversized(self.session, error)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self.session is not None:
            self.server.end_session(self.session)
