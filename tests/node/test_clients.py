"""The client library: one set of methods, run blocking or on asyncio."""

from __future__ import annotations

import asyncio

from node.client.clients import AsyncClient, BaseClient, Client
from tests.node.conftest import peer_key
from tests.node.test_operator import attach, make_operator, run


def test_concurrent_orders_on_a_fresh_client_all_succeed_with_nonces_in_order(tmp_path):
    """Six ``place_order`` at once on a client that has not fetched its nonce yet.

    Before, each fetched the nonce and all but one were refused ``bad_nonce``.
    """

    async def main():
        node, _ = make_operator(tmp_path, block_interval_ms=5)
        await node.start("127.0.0.1", 0)
        clients = []
        try:
            first = await attach(node, peer_key(1))
            clients.append(first)
            await first.register("p", bus="B1", role="prosumer")  # nonce 1
            fresh = await attach(node, peer_key(1))
            clients.append(fresh)
            placed = await asyncio.gather(
                *(fresh.place_order("electricity", 3, "bid", 100 + i, 100) for i in range(6))
            )
            assert [p.nonce for p in placed] == [2, 3, 4, 5, 6, 7]
            assert [p.client_order_id for p in placed] == [2, 3, 4, 5, 6, 7]
            heights = [await fresh.wait_committed(p.tx_id) for p in placed]
            assert heights == sorted(heights)
            book = await fresh.book("electricity", 3)
            assert [price for price, _ in book["bids"]] == [105, 104, 103, 102, 101, 100]
            # and later ones go on from there, concurrently with reads
            more = await asyncio.gather(
                fresh.cancel_order(2),
                fresh.status(),
                fresh.place_order("electricity", 3, "bid", 90, 1),
            )
            assert (more[0].nonce, more[2].nonce) == (8, 9)
        finally:
            for client in clients:
                await client.close()
            await node.close()

    run(main())


def test_both_clients_have_every_method_written_once():
    """Client and AsyncClient add only how they wait: no method of their own but I/O."""
    shared = {name for name in vars(BaseClient) if not name.startswith("_")}
    assert {"place_order", "wait_height", "trades", "submit", "book", "subscribe"} <= shared
    for cls, own in (
        (Client, {"connect", "close", "events"}),
        (AsyncClient, {"connect", "close", "next_event"}),
    ):
        assert {name for name in vars(cls) if not name.startswith("_")} == own
    assert Client.place_order.__doc__ == AsyncClient.place_order.__doc__
