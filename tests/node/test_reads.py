"""Reads of trades and settlements: newest first, bounded, and never holding other clients up."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable

import pytest

from node.errors import RequestFailed
from node.roles import service
from tests.node.conftest import peer_key
from tests.node.test_operator import attach, make_operator, run

BLOCKS = 6  # blocks with trades, two trades each


@contextlib.asynccontextmanager
async def market_with_trades(tmp_path) -> AsyncIterator[tuple]:
    """An operator whose chain holds BLOCKS rounds of two trades (and the registrations).

    How the rounds' transactions fall into blocks depends on the machine's
    speed; the tests compare with what the chain holds, never assume it.
    The node and its clients are closed however the test ends.
    """
    node, _ = make_operator(tmp_path, block_interval_ms=5)
    clients = []
    try:
        await node.start("127.0.0.1", 0)
        seller, buyer = await attach(node, peer_key(1)), await attach(node, peer_key(2))
        clients += [seller, buyer]
        await seller.register("s", bus="B1", role="producer")
        await buyer.register("b", bus="B1", role="consumer")
        for n in range(BLOCKS):
            await seller.place_order("electricity", 4, "ask", 100 + n, 300)
            bid = await buyer.place_order("electricity", 4, "bid", 100 + n, 100)
            bid2 = await buyer.place_order("electricity", 4, "bid", 100 + n, 200)
            await buyer.wait_committed(bid.tx_id)
            await buyer.wait_committed(bid2.tx_id)
        yield node, seller, buyer
    finally:
        for client in clients:
            await client.close()
        await node.close()


def whole_blocks_from(trades: list[dict], start: int, limit: int) -> list[dict]:
    """A page's reference: the trades of whole blocks from ``start`` until at least ``limit``."""
    page: list[dict] = []
    for height in sorted({t["height"] for t in trades if t["height"] >= start}):
        if len(page) >= limit:
            break
        page += [t for t in trades if t["height"] == height]
    return page


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
        async with market_with_trades(tmp_path) as (_, _, buyer):
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
            # a page from a height holds whole blocks until at least `limit` (fewer
            # only at the end), and the next page starts after its last block,
            # however the machine's speed cut the blocks
            for limit in (1, 2, 3, 5):
                pages, start = [], 0
                while page := await buyer.trades(start=start, limit=limit):
                    assert page == whole_blocks_from(everything, start, limit)
                    assert len(page) >= limit or page == everything[-len(page) :]
                    pages += page
                    start = page[-1]["height"] + 1
                assert pages == everything
            for bad in (0, -5, 10_001):
                with pytest.raises(RequestFailed, match="limit must be 1 to 10000"):
                    await buyer.trades(limit=bad)
            assert await buyer.trades(limit=10_000) == everything

    run(main())


def test_a_long_trades_read_lets_other_clients_in_between_blocks(tmp_path):
    async def main():
        async with market_with_trades(tmp_path) as (_, seller, buyer):
            # the scan of the whole chain hands the loop back after each block
            read = buyer.trades(start=0, limit=10_000)
            assert await finishing_order(read, seller.call("status")) == ["status", "read"]

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
        async with market_with_trades(tmp_path) as (_, seller, buyer):
            everything = await buyer.trades(start=0, limit=10_000)
            account = peer_key(2).account_id
            assert await buyer.trades(account, limit=5) == everything[-5:]
            assert await buyer.trades(account) == everything
            read = buyer.trades(account)
            assert await finishing_order(read, seller.call("status")) == ["status", "read"]

    run(main())
