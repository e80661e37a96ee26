"""The request server: error replies for bad input, other clients undisturbed."""

from __future__ import annotations

import asyncio
import functools
import socket

import pytest

from node.errors import ClientClosed, ConnectionLost, NodeTimeout, RequestFailed
from node.wire.protocol import HEADER, ErrorReply, Reply, frame, parse_message, request_body
from node.wire.rpc import AsyncRpc, SyncRpc
from node.wire.server import Pipeline, RpcServer
from node.wire.transport import memory_pair


async def echo(session, args):
    return {"echo": args}


async def boom(session, args):
    raise RuntimeError("bug")


async def slow(session, args):
    await asyncio.sleep(args["ms"] / 1000)
    return {"slept": args["ms"]}


async def subscribe(session, args):
    session.subscriptions["tick"] = 5
    return {}


def make_server(**kw):
    handlers = {"echo": echo, "boom": boom, "slow": slow, "subscribe": subscribe}
    return RpcServer(handlers, concurrent=frozenset({"slow"}), **kw)


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 10))


def serve_in_memory(server):
    """A client on an in-memory connection to ``server``, and the task serving it."""
    client_end, server_end = memory_pair()
    return AsyncRpc(client_end), asyncio.create_task(server.serve(server_end))


def test_memory_transport_request_reply_and_errors():
    async def main():
        server = make_server(max_frame=1000)
        client_end, server_end = memory_pair(1000)
        task = asyncio.create_task(server.serve(server_end))
        rpc = AsyncRpc(client_end)
        assert await rpc.call("echo", {"a": 1}) == {"echo": {"a": 1}}
        with pytest.raises(RequestFailed) as exc:
            await rpc.call("nope")
        assert exc.value.code == "unknown_command"
        with pytest.raises(RequestFailed) as exc:
            await rpc.call("boom")
        assert exc.value.code == "internal"
        with pytest.raises(RequestFailed) as exc:
            await rpc.call("slow", {})
        assert exc.value.code == "bad_arguments"
        # a concurrent command does not hold up the next request
        slow_call = asyncio.create_task(rpc.call("slow", {"ms": 200}))
        await asyncio.sleep(0.01)
        assert await rpc.call("echo", {}) == {"echo": {}}
        assert not slow_call.done()
        assert await slow_call == {"slept": 200}
        await rpc.close()
        await task

    run(main())


def test_memory_transport_oversized_frame_gets_error_and_hangup():
    async def main():
        server = make_server(max_frame=128)
        client_end, server_end = memory_pair(128)
        task = asyncio.create_task(server.serve(server_end))
        await client_end.write_raw(HEADER.pack(10_000) + b"x" * 10)
        reply = parse_message(await client_end.read_frame())
        assert reply == ErrorReply(0, "frame_too_large", reply.message)
        with pytest.raises(ConnectionLost):
            await client_end.read_frame()
        await task

    run(main())


def test_idle_connection_is_closed():
    async def main():
        server = make_server(idle_timeout=0.05)
        client_end, server_end = memory_pair()
        await server.serve(server_end)  # returns once the idle timeout fired
        assert parse_message(await client_end.read_frame()).code == "timeout"

    run(main())


def test_a_client_that_keeps_talking_or_listening_is_not_idle():
    """The idle timer re-arms from the last request; subscribers are never idle.

    Driven by hand (the idle timeout is far off, the check is called with
    each connection's last read set back): no race with the machine's speed.
    """

    async def main():
        server = make_server(idle_timeout=1000.0)
        talker_end, talker_server = memory_pair()
        listener_end, listener_server = memory_pair()
        tasks = [
            asyncio.create_task(server.serve(talker_server)),
            asyncio.create_task(server.serve(listener_server)),
        ]
        talker, listener = AsyncRpc(talker_end), AsyncRpc(listener_end)
        await listener.call("subscribe")
        assert await talker.call("echo", {"i": 1}) == {"echo": {"i": 1}}
        now = asyncio.get_running_loop().time()
        by_role = {bool(s.subscriptions): s for s in server.sessions}
        quiet_talker, quiet_listener = by_role[False], by_role[True]
        # the talker read 999 s ago: not idle yet, the check re-arms
        quiet_talker.last_read = now - 999
        server._check_idle(quiet_talker)
        assert len(server.sessions) == 2
        # a subscriber may listen silently for as long as it likes
        quiet_listener.last_read = now - 10_000
        server._check_idle(quiet_listener)
        assert len(server.sessions) == 2
        # the talker quiet for longer than the timeout: it alone is hung up on
        quiet_talker.last_read = now - 1001
        server._check_idle(quiet_talker)
        with pytest.raises(ConnectionLost):
            await talker.call("echo", {"i": 2})
        await tasks[0]
        assert server.sessions == {quiet_listener}
        await listener.close()
        await talker.close()
        await asyncio.gather(*tasks)

    run(main())


@pytest.fixture
def tcp_server():
    """A server on a background event loop thread, on an ephemeral port."""
    import threading

    loop = asyncio.new_event_loop()
    server = make_server(max_frame=4096)
    port = loop.run_until_complete(server.start_tcp("127.0.0.1", 0))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield port
    asyncio.run_coroutine_threadsafe(server.close(), loop).result(5)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()


def test_tcp_bad_clients_do_not_disturb_a_good_one(tcp_server):
    good = SyncRpc("127.0.0.1", tcp_server)
    assert good.call("echo", {"n": 1}) == {"echo": {"n": 1}}

    garbage = SyncRpc("127.0.0.1", tcp_server)
    garbage.send_raw(HEADER.pack(3) + b"\xc1\xc1\xc1")  # malformed msgpack
    message = garbage.read_message()
    assert isinstance(message, ErrorReply) and message.code == "malformed"
    assert garbage.call("echo", {}) == {"echo": {}}  # same connection keeps working

    huge = SyncRpc("127.0.0.1", tcp_server)
    huge.send_raw(HEADER.pack(1 << 30))
    message = huge.read_message()
    assert isinstance(message, ErrorReply) and message.code == "frame_too_large"
    with pytest.raises(ConnectionLost):
        huge.read_message()

    half = SyncRpc("127.0.0.1", tcp_server)
    half.send_raw(HEADER.pack(100) + b"abc")  # then silence; the server must not block on it
    assert good.call("echo", {"n": 2}) == {"echo": {"n": 2}}
    half.close()

    wrong_kind = SyncRpc("127.0.0.1", tcp_server)
    wrong_kind.send_raw(HEADER.pack(3) + b"\x93\x01\x01\x80")  # a reply sent to the server
    assert wrong_kind.read_message().code == "malformed"

    for client in (good, garbage, huge, wrong_kind):
        client.close()


def test_tcp_pipelined_requests_answer_in_order(tcp_server):
    with SyncRpc("127.0.0.1", tcp_server) as rpc:
        from node.wire.protocol import frame

        rpc.send_raw(b"".join(frame(request_body(i, "echo", {"i": i})) for i in range(1, 51)))
        got = [rpc.read_message() for _ in range(50)]
        assert all(isinstance(m, Reply) for m in got)
        assert [m.request_id for m in got] == list(range(1, 51))


def test_a_subscriber_that_falls_too_far_behind_is_dropped(monkeypatch):
    import node.wire.server as server_module

    async def main():
        monkeypatch.setattr(server_module, "MAX_PENDING_FRAMES", 3)
        server = make_server()
        slow_end, server_end = memory_pair()
        task = asyncio.create_task(server.serve(server_end))
        rpc = AsyncRpc(slow_end)
        await rpc.call("subscribe")
        session = next(iter(server.sessions))
        # the writer task cannot run while we push: the queue fills up
        for i in range(10):
            server.broadcast("tick", {"i": i})
        assert session.closed
        with pytest.raises(ConnectionLost):
            while True:
                await rpc.next_event(timeout=2)
        await task
        assert server.sessions == set()
        await rpc.close()

    run(main())


def test_pipeline_prepares_out_of_order_but_runs_in_order():
    """A pipelined command's prepare step runs at once; its run waits for its turn.

    Request 1's prepare is slow and request 2's fails at once: the runs still
    happen in request order, and 2's error reply comes only after 1 ran (a
    failed prepare must not let the requests after it jump the queue). Once
    a request ran, the next starts without waiting for the first one's
    outcome (request 4's outcome comes last, after the echo sent after it).
    """

    async def main():
        loop = asyncio.get_running_loop()
        ran: list[int] = []
        prepared: list[int] = []
        outcomes: dict[int, asyncio.Future] = {}

        def prepare(session, args):
            i = args["i"]
            if i == 2:
                raise ValueError("bad request 2")
            future = loop.create_future()
            prepared_now = functools.partial(_resolve_with, future, prepared, i)
            if i == 1:
                loop.call_later(0.05, prepared_now)
            else:
                prepared_now()
            return future

        def run_at_turn(session, i):
            ran.append(i)
            outcome = outcomes[i] = loop.create_future()
            if i == 4:
                loop.call_later(0.05, outcome.set_result, i)
            else:
                outcome.set_result(i)
            return outcome

        server = RpcServer(
            {"echo": echo},
            pipelined={"submit": Pipeline(prepare, run_at_turn, lambda i: {"i": i})},
        )
        rpc, task = serve_in_memory(server)
        replies: list[object] = []

        async def call(command, args):
            try:
                result = await rpc.call(command, args)
            except RequestFailed as exc:
                result = exc.code
            replies.append((command, args, result))

        await asyncio.gather(
            *(call("submit", {"i": i}) for i in (1, 2, 3)),
            call("submit", {"i": 4}),
            call("echo", {"after": 4}),
        )
        assert prepared == [3, 4, 1]  # 3 and 4 were prepared while 1 still waited
        assert ran == [1, 3, 4]
        assert replies == [
            ("submit", {"i": 1}, {"i": 1}),
            ("submit", {"i": 2}, "bad_arguments"),
            ("submit", {"i": 3}, {"i": 3}),
            ("echo", {"after": 4}, {"echo": {"after": 4}}),
            ("submit", {"i": 4}, {"i": 4}),
        ]
        await rpc.close()
        await task

    run(main())


def test_an_ordinary_request_holds_the_pipelined_ones_after_it():
    """Requests are taken in order: a pipelined submit waits for the slow echo before it."""

    async def main():
        loop = asyncio.get_running_loop()
        ran: list[str] = []

        async def slow_echo(session, args):
            await asyncio.sleep(0.05)
            ran.append("echo")
            return {}

        def run_at_turn(session, value):
            ran.append("submit")
            future = loop.create_future()
            future.set_result(value)
            return future

        def prepare(session, args):
            future = loop.create_future()
            future.set_result(1)
            return future

        server = RpcServer(
            {"echo": slow_echo},
            pipelined={"submit": Pipeline(prepare, run_at_turn, lambda v: {"v": v})},
        )
        rpc, task = serve_in_memory(server)
        await asyncio.gather(rpc.call("echo"), rpc.call("submit"))
        assert ran == ["echo", "submit"]
        await rpc.close()
        await task

    run(main())


def _resolve_with(future, log, value):
    log.append(value)
    future.set_result(value)


def test_async_client_times_out_each_request_on_its_own():
    """A late answer fails only its request, at about its own deadline; the rest go on."""

    async def main():
        from node.errors import NodeTimeout

        server = make_server()
        client_end, server_end = memory_pair()
        task = asyncio.create_task(server.serve(server_end))
        rpc = AsyncRpc(client_end, timeout=5.0)
        loop = asyncio.get_running_loop()
        long_wait = asyncio.create_task(rpc.call("slow", {"ms": 400}))  # the default 5 s
        start = loop.time()
        with pytest.raises(NodeTimeout, match="'slow'"):
            await rpc.call("slow", {"ms": 2000}, timeout=0.1)
        assert 0.09 <= loop.time() - start < 0.5
        with pytest.raises(NodeTimeout):
            await rpc.call("slow", {"ms": 2000}, timeout=0.05)
        assert await rpc.call("echo", {"b": 2}) == {"echo": {"b": 2}}
        assert await long_wait == {"slept": 400}
        assert rpc._waiting == {} and rpc._deadlines == {}
        await rpc.close()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    run(main())


@pytest.mark.parametrize("transport", ["memory", "tcp"])
def test_a_full_queue_stops_reading_until_it_shrinks(monkeypatch, transport):
    """With the queue limit at 3, 40 pipelined requests are all answered, in order."""
    import node.wire.server as server_module

    async def main():
        monkeypatch.setattr(server_module, "MAX_QUEUED_PER_CONNECTION", 3)
        queued_at_most = 0

        async def slow_echo(session, args):
            nonlocal queued_at_most
            queued_at_most = max(queued_at_most, len(session.queue))
            await asyncio.sleep(0.001)
            return {"i": args["i"]}

        server = RpcServer({"echo": slow_echo})
        if transport == "memory":
            client_end, server_end = memory_pair()
            task = asyncio.create_task(server.serve(server_end))
            rpc = AsyncRpc(client_end)
        else:
            port = await server.start_tcp("127.0.0.1", 0)
            rpc = await AsyncRpc.connect("127.0.0.1", port)
        replies = await asyncio.gather(*(rpc.call("echo", {"i": i}) for i in range(40)))
        assert replies == [{"i": i} for i in range(40)]
        assert queued_at_most == 3
        await rpc.close()
        if transport == "memory":
            await task
        await server.close()

    run(main())


def test_a_tcp_client_that_reads_nothing_is_cut_off(monkeypatch):
    """Frames a client does not read pile up in the server only up to the limit."""
    import socket

    import node.wire.server as server_module

    async def main():
        monkeypatch.setattr(server_module, "MAX_PENDING_FRAMES", 50)
        server = make_server()
        port = await server.start_tcp("127.0.0.1", 0)
        deaf = socket.create_connection(("127.0.0.1", port))
        deaf.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        good = await AsyncRpc.connect("127.0.0.1", port)
        deaf.sendall(frame(request_body(1, "subscribe", {})))
        for _ in range(100):
            if any(session.subscriptions for session in server.sessions):
                break
            await asyncio.sleep(0.01)
        for i in range(2000):  # ~2 MB of events: far more than the socket buffers hold
            server.broadcast("tick", {"i": i, "pad": b"x" * 1000})
            if i % 100 == 0:
                await asyncio.sleep(0)  # let the transport write and pause
        for _ in range(100):
            if len(server.sessions) == 1:
                break
            await asyncio.sleep(0.01)
        assert len(server.sessions) == 1  # the deaf client is gone
        assert await good.call("echo", {"still": "here"}) == {"echo": {"still": "here"}}
        deaf.close()
        await good.close()
        await server.close()

    run(main())


def test_async_client_requests_without_a_task_each():
    """``request`` sends at once and returns a future; replies find their future by id."""

    async def main():
        server = make_server()
        rpc, task = serve_in_memory(server)
        slow = rpc.request("slow", {"ms": 100})
        quick = [rpc.request("echo", {"i": i}) for i in range(20)]
        late = rpc.request("slow", {"ms": 2000}, timeout=0.05)
        assert await asyncio.gather(*quick) == [{"echo": {"i": i}} for i in range(20)]
        assert not slow.done()  # a concurrent command, answered when done
        with pytest.raises(NodeTimeout):
            await late
        assert await slow == {"slept": 100}
        assert rpc._waiting == {} and rpc._deadlines == {}
        await rpc.close()
        with pytest.raises(ClientClosed):
            rpc.request("echo")
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    run(main())


def test_async_client_call_waits_while_the_node_does_not_read():
    """``call`` stops sending once the socket and transport buffers are full."""

    async def main():
        accepted: list[asyncio.StreamWriter] = []

        async def never_read(reader, writer):
            accepted.append(writer)
            await asyncio.sleep(3600)

        deaf = await asyncio.start_server(never_read, "127.0.0.1", 0)
        port = deaf.sockets[0].getsockname()[1]
        rpc = await AsyncRpc.connect("127.0.0.1", port, timeout=5)
        payload = b"x" * 200_000
        calls = [asyncio.create_task(rpc.call("echo", {"pad": payload})) for _ in range(60)]
        await asyncio.sleep(0.3)
        sent = len(rpc._waiting)
        assert 0 < sent < 60  # the rest wait to be written: ~12 MB would be buffered otherwise
        for writer in accepted:
            writer.transport.abort()
        results = await asyncio.gather(*calls, return_exceptions=True)
        assert all(isinstance(r, ConnectionLost) for r in results)
        await rpc.close()
        deaf.close()

    run(main())


@pytest.mark.parametrize("transport", ["memory", "tcp"])
def test_a_flood_of_frames_on_one_connection_lets_another_in(transport):
    """10,000 frames in one write are handled 64 at a time, with the others' reads between.

    Before, one read callback handled every frame it held: another client's
    request waited for all 10,000.
    """
    from node.wire.transport import FRAMES_PER_TURN

    flood = 10_000

    class Counting(RpcServer):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.read: dict[object, int] = {}

        def on_frame(self, session, body):
            self.read[session] = self.read.get(session, 0) + 1
            super().on_frame(session, body)

    async def main():
        async def probe(session, args):
            others = [n for s, n in server.read.items() if s is not session]
            return {"others": max(others, default=0)}

        server = Counting({"probe": probe})
        tasks = []
        if transport == "memory":
            flood_end, flood_server = memory_pair()
            probe_end, probe_server = memory_pair()
            tasks.append(asyncio.create_task(server.serve(flood_server)))
            tasks.append(asyncio.create_task(server.serve(probe_server)))
            rpc = AsyncRpc(probe_end)
            assert await rpc.call("probe") == {"others": 0}
            for _ in range(flood):  # frame by frame: they arrive together all the same
                await flood_end.write_raw(HEADER.pack(1) + b"\xc1")
        else:
            port = await server.start_tcp("127.0.0.1", 0)
            rpc = await AsyncRpc.connect("127.0.0.1", port)
            assert await rpc.call("probe") == {"others": 0}
            flooder = socket.create_connection(("127.0.0.1", port))
            flooder.sendall((HEADER.pack(1) + b"\xc1") * flood)
        for _ in range(100_000):  # loop turns, not time: until the flood is being read
            if len(server.read) == 2:
                break
            await asyncio.sleep(0)
        answered = (await rpc.call("probe"))["others"]
        assert answered < flood
        assert answered <= 8 * FRAMES_PER_TURN
        if transport == "memory":
            await flood_end.close()
        else:
            flooder.close()
        await rpc.close()
        await server.close()
        for task in tasks:
            await task

    run(main())


def test_a_negative_request_id_is_refused_not_answered(tcp_server):
    """Ids are unsigned: ``[0, -5, "ping", {}]`` was answered ``[1, -5, {}]``."""
    import msgpack

    with SyncRpc("127.0.0.1", tcp_server) as rpc:
        body = msgpack.packb([0, -5, "echo", {}])
        rpc.send_raw(HEADER.pack(len(body)) + body)
        message = rpc.read_message()
        assert isinstance(message, ErrorReply)
        assert (message.request_id, message.code) == (0, "malformed")
        assert "negative" in message.message
        assert rpc.call("echo", {"after": 1}) == {"echo": {"after": 1}}
