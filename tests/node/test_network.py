"""Real node processes on 127.0.0.1: replication, crashes and restarts."""

from __future__ import annotations

import asyncio
import random
import time

import pytest

from node.client.clients import AsyncClient, Client
from node.errors import RequestFailed
from tests.node.conftest import peer_key

pytestmark = pytest.mark.slow

ROLES = ["producer", "consumer", "prosumer"]


def wait_level(net, timeout: float = 30.0) -> list[dict]:
    """Wait until every node has the operator's height; return their statuses."""
    deadline = time.monotonic() + timeout
    with Client.connect(net.operator.address) as op:
        target = op.status()["height"]
    statuses = []
    for node in net.nodes:
        with Client.connect(node.address) as c:
            if target:
                c.wait_height(target - 1, timeout=max(1.0, deadline - time.monotonic()))
            statuses.append(c.status())
    return statuses


async def trader(address: str, n: int, orders: int, seed: int) -> list[bytes]:
    """Register, then place (and sometimes cancel) orders; return the tx ids."""
    rng = random.Random(seed)
    role = ROLES[n % 3]
    async with await AsyncClient.connect(address, key=peer_key(n)) as client:
        await client.register(f"p{n}", bus=f"B{n % 5}", role=role)
        tx_ids = []
        for i in range(orders):
            if role == "producer":
                side = "ask"
            elif role == "consumer":
                side = "bid"
            else:
                side = rng.choice(["bid", "ask"])
            price = rng.randint(95, 105)
            placed = await client.place_order(
                "electricity", 1 + i % 3, side, price, 100 * rng.randint(1, 20)
            )
            tx_ids.append(placed.tx_id)
            if rng.random() < 0.1:
                cancelled = await client.cancel_order(placed.client_order_id)
                tx_ids.append(cancelled.tx_id)
        await client.wait_committed(tx_ids[-1])
        return tx_ids


def test_three_nodes_agree_after_concurrent_clients(make_net):
    # replica2 follows replica1, so blocks and forwarded writes cross two hops
    net = make_net(replicas=2, chain=True)
    seed = 6061
    print("seed", seed)
    addresses = [node.address for node in net.nodes]
    clients, per_client = 12, 200

    async def main():
        return await asyncio.gather(
            *(trader(addresses[n % 3], n, per_client, seed + n) for n in range(clients))
        )

    started = time.monotonic()
    tx_lists = asyncio.run(main())
    print(f"{sum(map(len, tx_lists))} transactions in {time.monotonic() - started:.1f} s")
    statuses = wait_level(net)
    assert len({s["head"] for s in statuses}) == 1
    assert len({s["state_digest"] for s in statuses}) == 1
    assert all(s["refused"] == [] for s in statuses)
    with Client.connect(net.replicas[1].address) as reader:
        for tx_id in tx_lists[0][:20]:
            assert reader.call("tx", {"tx_id": tx_id})["height"] >= 0
        assert reader.trades()  # the random prices cross


def test_replica_killed_and_restarted_catches_up(make_net):
    net = make_net(replicas=1)
    replica = net.replicas[0]
    addr = net.operator.address
    asyncio.run(trader(addr, 1, 30, 1))
    before = wait_level(net)[1]["height"]
    replica.kill()
    asyncio.run(trader(addr, 2, 60, 2))  # blocks the replica misses
    replica.start()
    statuses = wait_level(net)
    assert statuses[0]["head"] == statuses[1]["head"]
    assert statuses[1]["refused"] == []
    assert statuses[1]["height"] > before


def test_operator_killed_loses_no_committed_transaction(make_net):
    net = make_net(replicas=1)
    operator = net.operator
    committed: dict[bytes, int] = {}

    async def submitter(n: int) -> None:
        async with await AsyncClient.connect(operator.address, key=peer_key(n)) as client:
            try:
                reg = await client.register(f"p{n}", bus="B1", role="prosumer")
                committed[reg.tx_id] = await client.wait_committed(reg.tx_id)
                for i in range(10_000):
                    placed = await client.place_order("electricity", 1, "bid", 100 + i % 7, 100)
                    committed[placed.tx_id] = await client.wait_committed(placed.tx_id)
            except Exception:
                return  # the operator died under us

    async def main():
        tasks = [asyncio.create_task(submitter(n)) for n in range(4)]
        while len(committed) < 40:
            await asyncio.sleep(0.05)
        operator.kill()  # SIGKILL in the middle of the stream
        await asyncio.gather(*tasks)

    asyncio.run(main())
    assert len(committed) >= 40
    operator.start()  # same data dir, same port
    with Client.connect(operator.address) as op:
        for tx_id, height in committed.items():
            assert op.call("tx", {"tx_id": tx_id})["height"] == height
        # the restarted operator refuses the old nonces: a replay is still a replay
        first = next(iter(committed))
        raw = op.call("tx", {"tx_id": first})["tx"]
        with pytest.raises(RequestFailed) as exc:
            op.call("submit", {"tx": raw})
        assert exc.value.code == "bad_nonce"
    # and it keeps working, with the replica following
    with Client.connect(operator.address, key=peer_key(99)) as late:
        done = late.register("late", bus="B1", role="consumer")
        late.wait_committed(done.tx_id)
    statuses = wait_level(net)
    assert statuses[0]["head"] == statuses[1]["head"]
