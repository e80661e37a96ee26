"""A replica in process: what it forwards never costs another client its answer."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager

import pytest

from node.client.clients import AsyncClient
from node.clock import FakeClock
from node.config import NodeConfig
from node.errors import RequestFailed
from node.roles.replica import Replica
from node.wire.protocol import request_body
from node.wire.rpc import AsyncRpc
from node.wire.transport import memory_pair
from tests.node.conftest import peer_key
from tests.node.test_operator import OPERATOR, START_NS, make_operator, run

LIMIT = 4096  # both nodes' frame limit: small, so a frame at the limit is cheap


@asynccontextmanager
async def operator_and_replica(tmp_path):
    """An operator on TCP and a replica following it, both in this process."""
    operator, _ = make_operator(tmp_path, block_interval_ms=2, max_frame=LIMIT)
    port = await operator.start("127.0.0.1", 0)
    config = NodeConfig(
        role="replica",
        data_dir=tmp_path / "replica",
        upstream=f"127.0.0.1:{port}",
        max_frame=LIMIT,
    )
    replica = Replica(config, OPERATOR.public_key_bytes(), FakeClock(START_NS))
    clients: list[AsyncClient] = []
    try:
        await replica.start("127.0.0.1", 0)

        def attach(key=None) -> AsyncClient:
            client_end, server_end = memory_pair(LIMIT)
            asyncio.get_running_loop().create_task(replica.server.serve(server_end))
            clients.append(AsyncClient(AsyncRpc(client_end), key))
            return clients[-1]

        yield operator, replica, attach
    finally:
        for client in clients:
            await client.close()
        await replica.close()
        await operator.close()


def exactly(limit: int, request_id: int) -> bytes:
    """The body of a ``submit`` request of exactly ``limit`` bytes."""
    pad = limit - len(request_body(request_id, "submit", {"tx": b""}))
    body = request_body(request_id, "submit", {"tx": b"x" * pad})
    while len(body) > limit:  # the bin's length prefix grew
        pad -= 1
        body = request_body(request_id, "submit", {"tx": b"x" * pad})
    assert len(body) == limit
    return body


def test_a_frame_at_the_limit_is_refused_by_the_replica_not_forwarded(tmp_path):
    """The replica's own request id can be longer than the client's: re-framed, the
    request exceeds the limit. It is answered ``frame_too_large`` there, and the
    shared upstream connection (with another client's wait on it) stays up."""

    async def main():
        async with operator_and_replica(tmp_path) as (_, _, attach):
            good, bad = attach(peer_key(1)), attach()
            placed = await good.register("good", bus="B1", role="prosumer")
            for _ in range(130):  # the replica's upstream ids now take two bytes
                await good.call("nonce", {"sender": peer_key(1).public_key_bytes()})
            waiting = asyncio.ensure_future(good.wait_committed(placed.tx_id, timeout=10))
            with pytest.raises(RequestFailed) as exc:
                await _send_raw(bad, exactly(LIMIT, 1))
            assert exc.value.code == "frame_too_large"
            assert await waiting >= 0
            assert await bad.call("ping") == {}  # the client's own connection stays up too
            again = await good.place_order("electricity", 1, "bid", 100, 100)
            assert await good.wait_committed(again.tx_id) >= 0

    run(main())


async def _send_raw(client: AsyncClient, body: bytes) -> dict:
    """Send a request body as it is (its id must be 1) and await its answer."""
    rpc = client.rpc
    future = asyncio.get_running_loop().create_future()
    rpc._core.pending[1] = future
    rpc._link.send(body)
    return await asyncio.wait_for(future, 10)
