"""A replica in-process: it follows an operator over in-memory connections, no sockets."""

from __future__ import annotations

import asyncio

from node.clock import FakeClock
from node.config import NodeConfig
from node.roles.operator import Operator
from node.roles.replica import Replica
from node.wire.rpc import AsyncRpc
from node.wire.transport import memory_pair
from tests.node.conftest import peer_key
from tests.node.test_operator import OPERATOR, START_NS, JumpingClock, attach, run


class MemoryUpstream:
    """An upstream that is a node object in this process, reached over memory connections."""

    def __init__(self, node: Operator) -> None:
        self.node = node
        self.connections = 0

    async def connect(self, timeout: float, max_frame: int | None = None) -> AsyncRpc:
        client_end, server_end = memory_pair()
        asyncio.get_running_loop().create_task(self.node.server.serve(server_end))
        self.connections += 1
        return AsyncRpc(client_end, max_frame=max_frame)


def test_a_replica_follows_forwards_writes_and_replays_to_the_same_state(tmp_path):
    async def main():
        op_cfg = NodeConfig(
            data_dir=tmp_path / "op", operator_key=tmp_path / "unused.pem", block_interval_ms=5
        )
        operator = Operator(op_cfg, OPERATOR, JumpingClock(START_NS))
        await operator.start("127.0.0.1", 0)
        rep_cfg = NodeConfig(role="replica", data_dir=tmp_path / "rep", upstream="127.0.0.1:1")
        upstream = MemoryUpstream(operator)
        replica = Replica(rep_cfg, OPERATOR.public_key_bytes(), FakeClock(START_NS), upstream)
        await replica.start("127.0.0.1", 0)
        # every write goes to the replica, which forwards it to the operator
        seller, buyer = await attach(replica, peer_key(1)), await attach(replica, peer_key(2))
        await seller.register("s", bus="B1", role="producer")
        await buyer.register("b", bus="B1", role="consumer")
        await seller.place_order("electricity", 3, "ask", 100, 500)
        bid = await buyer.place_order("electricity", 3, "bid", 100, 200)
        height = await buyer.wait_committed(bid.tx_id)
        assert height >= 0
        await asyncio.wait_for(replica.synced.wait(), 10)
        while replica.store.height < operator.store.height:
            await asyncio.sleep(0.01)  # the replica's appends run in its writer process
        assert replica.store.head() == operator.store.head()
        assert replica.state.state_digest() == operator.state.state_digest()
        trades = await buyer.trades()
        assert [(t["price"], t["quantity"]) for t in trades] == [(100, 200)]
        assert upstream.connections >= 2  # one to follow, one to forward writes
        for client in (seller, buyer):
            await client.close()
        await replica.close()
        await operator.close()

    run(main())


def test_many_clients_waiting_on_a_replica_never_overload_its_upstream(tmp_path):
    """More waits than one upstream connection may hold: each is answered, none `overloaded`."""
    from node.wire.server import MAX_CONCURRENT_PER_CONNECTION

    async def main():
        clock = FakeClock(START_NS)  # the operator cuts the block only when the test says
        op_cfg = NodeConfig(
            data_dir=tmp_path / "op", operator_key=tmp_path / "unused.pem", block_interval_ms=5
        )
        operator = Operator(op_cfg, OPERATOR, clock)
        await operator.start("127.0.0.1", 0)
        rep_cfg = NodeConfig(role="replica", data_dir=tmp_path / "rep", upstream="127.0.0.1:1")
        replica = Replica(
            rep_cfg, OPERATOR.public_key_bytes(), FakeClock(START_NS), MemoryUpstream(operator)
        )
        await replica.start("127.0.0.1", 0)
        await asyncio.wait_for(replica.synced.wait(), 10)
        writer = await attach(replica, peer_key(1))
        pending = await writer.register("w", bus="B1", role="prosumer")  # accepted, not stored
        waiters = [await attach(replica) for _ in range(4)]
        per_client = MAX_CONCURRENT_PER_CONNECTION // 3  # 4 x 333 > one connection's limit
        waits = [
            asyncio.ensure_future(client.wait_committed(pending.tx_id))
            for client in waiters
            for _ in range(per_client)
        ]
        await asyncio.sleep(0.2)  # a pause for the waits to go out; none may have ended

        assert not any(w.done() for w in waits)
        clock.advance(5_000_000)  # the block is cut, stored, pushed to the replica
        heights = await asyncio.wait_for(asyncio.gather(*waits), 30)
        assert heights == [0] * len(waits)
        for client in [writer, *waiters]:
            await client.close()
        await replica.close()
        await operator.close()

    run(main())
