"""Reads of trades and settlements: newest first, bounded, and never holding other clients up."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

import pytest

from node.clock import FakeClock
from node.errors import RequestFailed
from node.roles import service
from tests.node.conftest import peer_key
from tests.node.test_operator import START_NS, attach, make_operator, run

BLOCKS = 6  # blocks with trades, two trades each


async def market_with_trades(tmp_path):
    """An operator whose chain holds BLOCKS blocks with two trades each (and the registrations)."""
    # The block deadline is the fake clock's: each block holds exactly the
    # three orders placed before the clock moves, however slow the machine.
    clock = FakeClock(START_NS)
    node, _ = make_operator(tmp_path, clock, block_interval_ms=5)
    await node.start("127.0.0.1", 0)
    seller, buyer = await attach(node, peer_key(1)), await attach(node, peer_key(2))
    await seller.register("s", bus="B1", role="producer")
    await buyer.register("b", bus="B1", role="consumer")
    for n in range(BLOCKS):
        await seller.place_order("electricity", 4, "ask", 100 + n, 300)
        await buyer.place_order("electricity", 4, "bid", 100 + n, 100)
        bid2 = await buyer.place_order("electricity", 4, "bid", 100 + n, 200)
        clock.advance(5_000_000)
        await buyer.wait_committed(bid2.tx_id)
    return node, seller, buyer


async def finishing_order(read: Awaitable[object], status: Awaitable[object]) -> list[str]:
    """Which finishes first: a long ``read``, or a ``status`` asked once the read has started."""
    order: list[str] = []

    async def first() -> None:
        await read
        order.append("read")

    async def second() -> None:
        await asyncio.sleep(0)  # the read's request goes out first
        await status
        order.append("status")

    await asyncio.gather(first(), second())
    return order


def test_trades_are_the_newest_in_chain_order_or_pages_from_a_height(tmp_path):
    async def main():
        node, seller, buyer = await market_with_trades(tmp_path)
        everything = await buyer.trades(start=0, limit=10_000)
        assert [t["quantity"] for t in everything] == [100, 200] * BLOCKS
        heights = [t["height"] for t in everything]
        assert heights == sorted(heights)
        # sent as CanonicalMaps, unchecked: the keys must arrive sorted
        assert all(list(t) == sorted(t) for t in everything)
        # the newest, of everyone and of one account
        assert await buyer.trades(limit=3) == everything[-3:]
        assert await buyer.trades(peer_key(2).account_id, limit=3) == everything[-3:]
        assert await buyer.trades() == everything  # the default limit is 1,000
        # a page from a height holds whole blocks until at least `limit`
        first = everything[0]["height"]
        page = await buyer.trades(start=first, limit=3)
        assert page == [t for t in everything if t["height"] <= first + 1]
        assert len(page) == 4
        after = await buyer.trades(start=page[-1]["height"] + 1, limit=10_000)
        assert page + after == everything
        for bad in (0, -5, 10_001):
            with pytest.raises(RequestFailed, match="limit must be 1 to 10000"):
                await buyer.trades(limit=bad)
        assert await buyer.trades(limit=10_000) == everything
        for client in (seller, buyer):
            await client.close()
        await node.close()

    run(main())


def test_a_long_trades_read_lets_other_clients_in_between_blocks(tmp_path):
    async def main():
        node, seller, buyer = await market_with_trades(tmp_path)
        # the scan of the whole chain hands the loop back after each block
        read = buyer.trades(start=0, limit=10_000)
        assert await finishing_order(read, seller.call("status")) == ["status", "read"]
        for client in (seller, buyer):
            await client.close()
        await node.close()

    run(main())


def test_reads_in_pages_give_the_newest_in_chain_order():
    located = [(h, i) for h in range(5) for i in range(3)]  # 15 positions

    def read(count, before):
        earlier = [p for p in located if before is None or p < before]
        return [_Located(h, i) for h, i in earlier[max(0, len(earlier) - count) :]]

    async def main(limit):
        return [(x.height, x.index) for x in await service.newest_in_pages(read, limit)]

    for page in (1, 2, 4, 15, 200):
        service_page, service.READ_PAGE = service.READ_PAGE, page
        try:
            for limit in (1, 2, 3, 14, 15, 16, 1000):
                assert asyncio.run(main(limit)) == located[-limit:], (page, limit)
        finally:
            service.READ_PAGE = service_page


class _Located:
    def __init__(self, height: int, index: int) -> None:
        self.height, self.index = height, index


def test_an_account_history_is_read_in_pages_that_let_other_clients_in(tmp_path, monkeypatch):
    monkeypatch.setattr(service, "READ_PAGE", 2)

    async def main():
        node, seller, buyer = await market_with_trades(tmp_path)
        everything = await buyer.trades(start=0, limit=10_000)
        account = peer_key(2).account_id
        assert await buyer.trades(account, limit=5) == everything[-5:]
        assert await buyer.trades(account) == everything
        read = buyer.trades(account)
        assert await finishing_order(read, seller.call("status")) == ["status", "read"]
        for client in (seller, buyer):
            await client.close()
        await node.close()

    run(main())
