"""The operator's block store: appends in a child process, reads on the caller's connection."""

from __future__ import annotations

import asyncio
import hashlib
import os
import sqlite3

import pytest

from ledger.block import build_block
from ledger.errors import NotExtendingHead, StoreError
from ledger.keys import SigningKey
from ledger.sqlite_store import SqliteBlockStore
from node.errors import NodeError
from node.pipeline.store_writer import ProcessBlockStore

KEY = SigningKey.from_seed(b"\x07" * 32)


def make_chain(n: int):
    blocks, parent = [], None
    for h in range(n):
        block = build_block(KEY, chain_id="t", parent=parent, time_ns=h, transactions=[])
        blocks.append(block)
        parent = block.header
    return blocks


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


def test_appends_run_in_the_child_and_reads_see_them(tmp_path):
    blocks = make_chain(3)

    async def main():
        store = ProcessBlockStore(tmp_path / "chain.sqlite3")
        assert store.process.pid != os.getpid() and store.process.is_alive()
        await store.start()
        futures = [store.append_soon(b) for b in blocks]  # all in flight at once
        assert store.height == 0  # nothing is durable yet
        for future in futures:
            await future
        assert store.height == 3
        assert store.head() == blocks[-1].header
        assert [store.block_bytes(h) for h in range(3)] == [b.to_bytes() for b in blocks]
        assert store.block_by_hash(blocks[1].hash) == blocks[1]
        with pytest.raises(StoreError, match="append_soon"):
            store.append(blocks[0])
        store.close()
        store.close()  # idempotent
        assert not store.process.is_alive()

    run(main())
    with SqliteBlockStore(tmp_path / "chain.sqlite3") as reopened:
        assert reopened.height == 3


def test_a_refused_append_raises_its_typed_error_and_changes_nothing(tmp_path):
    blocks = make_chain(3)

    async def main():
        store = ProcessBlockStore(tmp_path / "chain.sqlite3")
        await store.start()
        await store.append_soon(blocks[0])
        with pytest.raises(NotExtendingHead):
            await store.append_soon(blocks[2])
        assert (store.height, store.head()) == (1, blocks[0].header)
        await store.append_soon(blocks[1])  # the writer goes on
        assert store.height == 2
        store.close()

    run(main())
    reopened = ProcessBlockStore(tmp_path / "chain.sqlite3")
    assert (reopened.height, reopened.head()) == (2, blocks[1].header)
    reopened.close()


def test_a_dead_writer_fails_every_append_and_reports_nothing_stored(tmp_path):
    blocks = make_chain(3)

    async def main():
        store = ProcessBlockStore(tmp_path / "chain.sqlite3")
        await store.start()
        await store.append_soon(blocks[0])
        store.process.kill()
        store.process.join()
        with pytest.raises(StoreError, match="gone"):
            await store.append_soon(blocks[1])
        with pytest.raises(StoreError):
            await store.append_soon(blocks[1])  # and every later one, at once
        assert store.height == 1
        store.close()

    run(main())


def test_an_unusable_file_is_a_clear_error(tmp_path):
    path = tmp_path / "chain.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(NodeError, match="block store"):
        ProcessBlockStore(path)


def test_blocks_sent_back_to_back_are_all_stored_and_indexed(tmp_path):
    from tests.ledger.chainkit import make_chain as make_trading_chain

    blocks = make_trading_chain(8, 4)  # transactions and results: index rows to write
    path = tmp_path / "chain.sqlite3"

    async def main():
        store = ProcessBlockStore(path)
        await store.start()
        for future in [store.append_soon(b) for b in blocks]:  # all queued at once
            await future
        assert store.height == len(blocks)
        for block in blocks:  # every transaction is found, indexed or in the trail
            for data in block.transactions:
                located = store.transaction(hashlib.sha256(data).digest())
                assert located is not None and located.height == block.height
        store.close()

    run(main())
    with sqlite3.connect(path) as conn:
        mark = conn.execute("SELECT value FROM meta WHERE key = 'indexed'").fetchone()[0]
    assert mark == len(blocks)
    with SqliteBlockStore(path, readonly=True) as reopened:
        reopened._check()
