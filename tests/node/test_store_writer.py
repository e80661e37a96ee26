"""The threaded block store: appends on a writer thread, reads on the caller's connection."""

from __future__ import annotations

import threading

import pytest

from ledger.block import build_block
from ledger.errors import NotExtendingHead
from ledger.keys import SigningKey
from ledger.sqlite_store import SqliteBlockStore
from node.store_writer import ThreadedBlockStore

KEY = SigningKey.from_seed(b"\x07" * 32)


def make_chain(n: int):
    blocks, parent = [], None
    for h in range(n):
        block = build_block(KEY, chain_id="t", parent=parent, time_ns=h, transactions=[])
        blocks.append(block)
        parent = block.header
    return blocks


def test_appends_run_on_the_writer_thread_and_reads_see_them(tmp_path):
    blocks = make_chain(3)
    store = ThreadedBlockStore(tmp_path / "chain.sqlite3")
    seen_threads = []

    def append(block):
        seen_threads.append(threading.get_ident())
        store.append(block)

    futures = [store.submit(append, b) for b in blocks]
    for future in futures:
        future.result(timeout=10)
    assert set(seen_threads) != {threading.get_ident()} and len(set(seen_threads)) == 1
    assert store.height == 3
    assert store.head() == blocks[-1].header
    assert [store.block_bytes(h) for h in range(3)] == [b.to_bytes() for b in blocks]
    assert store.block_by_hash(blocks[1].hash) == blocks[1]
    store.close()
    store.close()  # idempotent
    with SqliteBlockStore(tmp_path / "chain.sqlite3") as reopened:
        assert reopened.height == 3


def test_append_from_the_caller_thread_and_a_refused_append_change_nothing(tmp_path):
    blocks = make_chain(3)
    store = ThreadedBlockStore(tmp_path / "chain.sqlite3")
    store.append(blocks[0])  # handed to the writer thread and waited for
    with pytest.raises(NotExtendingHead):
        store.append(blocks[2])
    with pytest.raises(NotExtendingHead):
        store.submit(store.append, blocks[2]).result(timeout=10)
    assert store.height == 1
    assert store.head() == blocks[0].header
    store.close()
    reopened = ThreadedBlockStore(tmp_path / "chain.sqlite3")
    assert (reopened.height, reopened.head()) == (1, blocks[0].header)
    reopened.close()
