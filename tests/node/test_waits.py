"""Long waits (``wait_height``, ``wait_committed``) cancelled from outside never wedge a node."""

from __future__ import annotations

import asyncio
import random
import socket
import struct

from node.wire.protocol import frame, request_body
from tests.node.conftest import peer_key
from tests.node.test_operator import attach, make_operator, run

FAR = 10**9  # a height no test reaches


def waits_then_reset(port: int, command: str, args: dict, count: int = 100) -> None:
    """Send ``count`` long waits with 1-5 ms timeouts on one connection, then reset it."""
    sock = socket.create_connection(("127.0.0.1", port))
    try:
        sock.sendall(
            b"".join(
                frame(request_body(i, command, {**args, "timeout_ms": 1 + i % 5}))
                for i in range(1, count + 1)
            )
        )
    finally:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()  # an RST: every wait of the connection is cancelled at once


def test_waits_cancelled_by_the_hundred_never_wedge_the_node(tmp_path):
    """Rounds of 100 timing-out waits reset at once, while blocks are stored.

    Before, a condition lock held around ``asyncio.wait_for`` broke
    (``RuntimeError: Lock is not acquired``): the node answered ``internal``,
    never again reported a block committed nor pushed one.
    """

    async def main():
        node, _ = make_operator(tmp_path, block_interval_ms=2)
        port = await node.start("127.0.0.1", 0)
        good = watcher = None
        try:
            good, watcher = await attach(node, peer_key(1)), await attach(node)
            await watcher.subscribe("blocks")
            await good.register("good", bus="B1", role="prosumer")
            loop = asyncio.get_running_loop()
            for n in range(6):
                placed = good.place_order("electricity", 1, "bid", 100, 100 + n)
                for command, args in (
                    ("wait_height", {"height": FAR}),
                    ("wait_committed", {"tx_id": bytes(32)}),
                    ("wait_height", {"height": node.store.height}),
                ):
                    await loop.run_in_executor(None, waits_then_reset, port, command, args)
                placed = await placed
                height = await good.wait_committed(placed.tx_id)
                reached = await good.call("wait_height", {"height": height, "timeout_ms": 10_000})
                assert reached["height"] > height
                while (await watcher.next_event(timeout=10)).data["height"] < height:
                    pass  # every stored block is still pushed
            # a waiter of the next height is still woken by the next block
            next_height = node.store.height
            args = {"height": next_height, "timeout_ms": 10_000}
            waiter = asyncio.ensure_future(good.call("wait_height", args))
            placed = await good.place_order("electricity", 1, "bid", 100, 999)
            assert await good.wait_committed(placed.tx_id) == next_height
            assert (await waiter)["height"] == next_height + 1
        finally:
            for client in (good, watcher):
                if client is not None:
                    await client.close()
            await node.close()

    run(main())


def test_waits_cancelled_around_their_timeouts_leave_no_lock_behind(tmp_path):
    """Waits cancelled at seeded moments around their own timeouts, then the node goes on.

    A wait cancelled while ``asyncio.wait_for`` was cancelling its inner
    condition wait released a lock it did not hold (``Lock is not
    acquired``) or left it held for good: the next stored block could then
    not wake anyone, and the commit loop hung on the lock.
    """
    from node.errors import RequestFailed

    async def main():
        node, _ = make_operator(tmp_path, block_interval_ms=2)
        await node.start("127.0.0.1", 0)
        good = None
        try:
            rng = random.Random(13)
            loop = asyncio.get_running_loop()
            for _ in range(5):
                waits = [
                    asyncio.ensure_future(
                        node.h_wait_height(None, {"height": FAR, "timeout_ms": rng.randint(1, 5)})
                    )
                    for _ in range(100)
                ]
                for wait in waits:
                    loop.call_later(rng.uniform(0, 0.006), wait.cancel)
                outcomes = await asyncio.gather(*waits, return_exceptions=True)
                unexpected = [
                    o for o in outcomes if not isinstance(o, asyncio.CancelledError | RequestFailed)
                ]
                assert unexpected == []
            good = await attach(node, peer_key(1))
            registered = await good.register("good", bus="B1", role="prosumer")
            height = await asyncio.wait_for(good.wait_committed(registered.tx_id), 10)
            reached = await good.call("wait_height", {"height": height, "timeout_ms": 10_000})
            assert reached["height"] == height + 1
        finally:
            if good is not None:
                await good.close()
            await node.close()

    run(main())
