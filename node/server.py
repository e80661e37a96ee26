"""The request server: many clients, one task each, never crashes on bad input.

``RpcServer`` reads frames from every connection, decodes requests and calls
the handler registered for the command. Every failure of one request becomes
an error reply on that connection; a frame that is too large or a connection
that stays idle too long closes that connection only. Nothing a client sends
can stop the server or delay other clients beyond its own requests.

Requests on one connection are handled in order (so a script's transactions
are sequenced in the order it sent them), except commands registered as
*concurrent* (long waits such as ``wait_committed``), which run in their own
task and reply when done, and *pipelined* commands (``submit``), which also
run in their own task, each starting its handler only once the previous
pipelined request of the connection called ``Session.release()`` (its
transaction is sequenced) or finished; later ordinary requests wait for that
too. So a client's transactions are still sequenced in the order it sent
them, while many of them wait for acceptance at once and their replies go
out as they are accepted (matched to requests by id, as every reply).

A pipelined command may have a *prepare* step, registered apart from its
handler: the work that does not depend on the order (decoding, checking a
signature) runs as soon as the request is read, concurrently with the
requests before it, and returns the rest of the work, which runs at the
request's turn. A prepare step that fails is answered at the request's turn
too, so the requests after it still wait for the ones before it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from node.errors import (
    ConnectionLost,
    FrameTooLarge,
    InvalidTransaction,
    MalformedMessage,
    RequestFailed,
)
from node.protocol import (
    DEFAULT_MAX_FRAME,
    E_BAD_ARGUMENTS,
    E_FRAME_TOO_LARGE,
    E_INTERNAL,
    E_MALFORMED,
    E_OVERLOADED,
    E_TIMEOUT,
    E_UNKNOWN_COMMAND,
    Request,
    Value,
    error_body,
    event_body,
    parse_message,
    reply_body,
)
from node.transport import Connection, StreamConnection

log = logging.getLogger("p2pex.server")

Args = dict[str, Value]
Result = dict[str, Value]
Handler = Callable[["Session", Args], Awaitable[Result]]
# A pipelined command's order-independent first step; returns the rest of the work.
Prepare = Callable[["Session", Args], Awaitable[Callable[[], Awaitable[Result]]]]

MAX_PENDING_EVENTS = 10_000  # a subscriber further behind than this is disconnected
MAX_CONCURRENT_PER_CONNECTION = 1_000


@dataclass(eq=False)
class Session:
    """One client connection as the handlers see it."""

    conn: Connection
    events: asyncio.Queue[bytes] = field(default_factory=lambda: asyncio.Queue(MAX_PENDING_EVENTS))
    subscriptions: dict[str, int] = field(default_factory=dict)  # topic -> subscription id
    closed: bool = False
    # Resolved once the last pipelined request read let the requests after it start.
    order_tail: asyncio.Future[None] | None = None
    # The release future of the pipelined request whose handler runs now.
    releasing: asyncio.Future[None] | None = None
    # Idle tracking (see ``RpcServer._check_idle``): loop time of the last frame
    # read, and whether the read loop is waiting for the next one.
    last_read: float = 0.0
    waiting: bool = False

    def release(self) -> None:
        """Let the requests after the running pipelined one start (see *pipelined*)."""
        releasing = self.releasing
        if releasing is not None and not releasing.done():
            releasing.set_result(None)

    def push(self, topic: str, data: Mapping[str, Value]) -> None:
        """Queue an event for this client if it subscribed to ``topic``.

        A client that lets ``MAX_PENDING_EVENTS`` events pile up is too slow:
        its connection is closed rather than letting memory grow.
        """
        sub = self.subscriptions.get(topic)
        if sub is None or self.closed:
            return
        try:
            self.events.put_nowait(event_body(sub, topic, data))
        except asyncio.QueueFull:
            log.warning("closing slow subscriber %s", self.conn.peer)
            self.closed = True  # the sender loop sees it at its next event and hangs up


class RpcServer:
    """Serve requests on any number of connections."""

    def __init__(
        self,
        handlers: Mapping[str, Handler],
        *,
        concurrent: frozenset[str] = frozenset(),
        pipelined: frozenset[str] = frozenset(),
        prepare: Mapping[str, Prepare] | None = None,
        max_frame: int = DEFAULT_MAX_FRAME,
        idle_timeout: float = 300.0,
    ) -> None:
        self.handlers = dict(handlers)
        self.concurrent = concurrent
        self.pipelined = pipelined
        self.prepare = dict(prepare or {})  # only for pipelined commands
        self.max_frame = max_frame
        self.idle_timeout = idle_timeout
        self.sessions: set[Session] = set()
        self._hang_ups: set[asyncio.Task[None]] = set()  # idle connections being closed
        self._tcp: asyncio.Server | None = None

    async def start_tcp(self, host: str, port: int) -> int:
        """Listen on ``host:port`` (0 = any free port) and return the actual port."""
        self._tcp = await asyncio.start_server(self._on_tcp, host, port, limit=2**16)
        sockets = self._tcp.sockets
        return int(sockets[0].getsockname()[1])

    async def close(self) -> None:
        """Stop listening and close every connection."""
        if self._tcp is not None:
            self._tcp.close()
        for session in list(self.sessions):
            await session.conn.close()
        if self._tcp is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._tcp.wait_closed(), 2.0)

    def has_subscribers(self, topic: str) -> bool:
        """True if some open session subscribed to ``topic``."""
        return any(topic in session.subscriptions for session in self.sessions)

    def broadcast(self, topic: str, data: Mapping[str, Value]) -> None:
        """Push an event to every session subscribed to ``topic``."""
        for session in self.sessions:
            session.push(topic, data)

    async def _on_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await self.serve(StreamConnection(reader, writer, max_frame=self.max_frame))

    async def serve(self, conn: Connection) -> None:
        """Serve one connection until it closes; never raises."""
        session = Session(conn)
        self.sessions.add(session)
        sender = asyncio.create_task(self._send_events(session))
        tasks: set[asyncio.Task[None]] = set()
        loop = asyncio.get_running_loop()
        session.last_read = loop.time()
        watchdog = loop.call_later(self.idle_timeout, self._check_idle, session)
        try:
            await self._read_loop(session, tasks)
        except Exception:  # a bug in the server must cost one connection, not the node
            log.exception("connection %s failed", conn.peer)
        finally:
            watchdog.cancel()
            session.closed = True
            self.sessions.discard(session)
            sender.cancel()
            for task in tasks:
                task.cancel()
            await conn.close()

    async def _read_loop(self, session: Session, tasks: set[asyncio.Task[None]]) -> None:
        conn = session.conn
        loop = asyncio.get_running_loop()
        while not session.closed:
            try:
                session.waiting = True
                body = await conn.read_frame()
            except FrameTooLarge as exc:
                # The body was not read, so the stream is out of step: reply and hang up.
                await self._send_error(conn, 0, E_FRAME_TOO_LARGE, str(exc))
                return
            except ConnectionLost:
                return
            finally:
                session.waiting = False
            session.last_read = loop.time()
            try:
                message = parse_message(body)
            except MalformedMessage as exc:
                await self._send_error(conn, 0, E_MALFORMED, str(exc))
                continue
            if not isinstance(message, Request):
                await self._send_error(conn, 0, E_MALFORMED, "expected a request")
                continue
            command = message.command
            if command in self.concurrent or command in self.pipelined:
                if len(tasks) >= MAX_CONCURRENT_PER_CONNECTION:
                    await self._send_error(
                        conn, message.request_id, E_OVERLOADED, "too many pending requests"
                    )
                    continue
                if command in self.pipelined:
                    after = session.order_tail
                    mine = session.order_tail = asyncio.get_running_loop().create_future()
                    task = asyncio.create_task(self._answer_in_order(session, message, after, mine))
                    # a handler that fails before release() must not block the others
                    task.add_done_callback(functools.partial(_resolve, mine))
                else:
                    task = asyncio.create_task(self._answer(session, message))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            else:
                tail = session.order_tail
                if tail is not None and not tail.done():
                    await tail  # handled after the pipelined requests before it are sequenced
                await self._answer(session, message)

    def _check_idle(self, session: Session) -> None:
        """Hang up on a client that sent nothing for ``idle_timeout`` while we waited for it.

        One timer per connection, re-armed from the last read when it fires,
        instead of a timeout around every read (which cost ~5% of the
        operator's time at 5,000 requests/s). A subscriber may listen silently
        for as long as it likes.
        """
        if session.closed:
            return
        loop = asyncio.get_running_loop()
        idle = loop.time() - session.last_read
        if session.waiting and not session.subscriptions and idle >= self.idle_timeout:
            session.closed = True
            task = loop.create_task(self._hang_up(session.conn))
            self._hang_ups.add(task)
            task.add_done_callback(self._hang_ups.discard)
            return
        delay = self.idle_timeout - idle if idle < self.idle_timeout else self.idle_timeout
        loop.call_later(delay, self._check_idle, session)

    async def _hang_up(self, conn: Connection) -> None:
        await self._send_error(conn, 0, E_TIMEOUT, "idle for too long")
        await conn.close()

    async def _answer_in_order(
        self,
        session: Session,
        request: Request,
        after: asyncio.Future[None] | None,
        mine: asyncio.Future[None],
    ) -> None:
        """Answer a pipelined request once the one before it released (see the module doc)."""
        run: Callable[[], Awaitable[Result]] | None = None
        failed: BaseException | None = None
        prepare = self.prepare.get(request.command)
        if prepare is not None:
            try:
                run = await prepare(session, request.args)
            except Exception as exc:  # answered at this request's turn, like the handler's
                failed = exc
        if after is not None:
            await after  # usually done already: awaiting a done future does not yield
        # No other pipelined handler of this session can run until ``mine`` is
        # resolved (the next one awaits it), so ``releasing`` stays ours until then.
        session.releasing = mine
        if failed is not None:
            await self._answer(session, request, _raise(failed))
        else:
            await self._answer(session, request, run)

    async def _answer(
        self,
        session: Session,
        request: Request,
        run: Callable[[], Awaitable[Result]] | None = None,
    ) -> None:
        """Run one request's handler (or its prepared rest) and send its reply or error reply."""
        conn = session.conn
        handler = self.handlers.get(request.command)
        if handler is None and run is None:
            await self._send_error(
                conn, request.request_id, E_UNKNOWN_COMMAND, f"unknown command {request.command!r}"
            )
            return
        try:
            if run is not None:
                result = await run()
            else:
                assert handler is not None
                result = await handler(session, request.args)
            body = reply_body(request.request_id, result)
        except RequestFailed as exc:
            await self._send_error(conn, request.request_id, exc.code, exc.message)
            return
        except InvalidTransaction as exc:
            await self._send_error(conn, request.request_id, exc.code, str(exc))
            return
        except (KeyError, TypeError, ValueError) as exc:
            await self._send_error(conn, request.request_id, E_BAD_ARGUMENTS, repr(exc))
            return
        except Exception as exc:
            log.exception("command %s failed", request.command)
            await self._send_error(conn, request.request_id, E_INTERNAL, type(exc).__name__)
            return
        try:
            await conn.write_frame(body)
        except FrameTooLarge as exc:
            await self._send_error(conn, request.request_id, E_FRAME_TOO_LARGE, f"reply: {exc}")
        except ConnectionLost:
            pass

    async def _send_error(self, conn: Connection, request_id: int, code: str, text: str) -> None:
        with contextlib.suppress(ConnectionLost, FrameTooLarge):
            await conn.write_frame(error_body(request_id, code, text[:1000]))

    async def _send_events(self, session: Session) -> None:
        """Write queued events to the client; close it when it is too slow."""
        while True:
            body = await session.events.get()
            if session.closed:
                await session.conn.close()
                return
            try:
                await session.conn.write_frame(body)
            except ConnectionLost:
                session.closed = True
                return


def _raise(exc: BaseException) -> Callable[[], Awaitable[Result]]:
    """A prepared rest of the work that raises ``exc`` (a failed prepare step)."""

    async def run() -> Result:
        raise exc

    return run


def _resolve(future: asyncio.Future[None], _task: object) -> None:
    """Done callback: resolve ``future`` unless it already is."""
    if not future.done():
        future.set_result(None)
