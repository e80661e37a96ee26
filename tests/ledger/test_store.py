"""The BlockStore contract, run against every implementation; SQLite specifics after it."""

from __future__ import annotations

import hashlib
import sqlite3

import pytest

from ledger import (
    BlockNotFound,
    DecodeError,
    DuplicateTransaction,
    MemoryBlockStore,
    NotExtendingHead,
    SettlementRecord,
    SqliteBlockStore,
    StoreCorrupted,
    StoreError,
    TradeRecord,
    build_block,
    decode_transaction,
    encode,
)
from tests.ledger.chainkit import CHAIN_ID, OPERATOR, PEERS, T0, make_chain, order


@pytest.fixture(scope="module")
def chain():
    return make_chain(6, 4)


@pytest.fixture(params=["memory", "sqlite"])
def store(request, tmp_path):
    if request.param == "memory":
        made = MemoryBlockStore()
    else:
        made = SqliteBlockStore(tmp_path / "chain.db")
    yield made
    made.close()


class TestBlockStoreContract:
    """Every BlockStore implementation must pass these."""

    def test_empty(self, store):
        assert store.height == 0
        assert store.head() is None
        with pytest.raises(BlockNotFound):
            store.block_at(0)
        with pytest.raises(BlockNotFound):
            store.block_bytes(0)
        assert store.block_by_hash(bytes(32)) is None
        assert store.transaction(bytes(32)) is None
        assert store.trades_by_account(PEERS[0].account_id) == []

    def test_append_and_lookups(self, store, chain):
        for count, block in enumerate(chain, start=1):
            store.append(block)
            store._check()
            assert store.height == count
            assert store.head() == block.header
        for block in chain:
            assert store.block_at(block.height) == block
            assert store.block_bytes(block.height) == block.to_bytes()
            assert store.block_by_hash(block.hash) == block
        for block in chain:
            for index, data in enumerate(block.transactions):
                located = store.transaction(hashlib.sha256(data).digest())
                assert located is not None
                assert (located.height, located.index) == (block.height, index)
                assert located.record == decode_transaction(data)
        with pytest.raises(BlockNotFound):
            store.block_at(len(chain))
        with pytest.raises(BlockNotFound):
            store.block_at(-1)

    def test_account_indexes(self, store, chain):
        for block in chain:
            store.append(block)
        for peer in PEERS:
            account = peer.account_id
            trades = store.trades_by_account(account)
            expected = [
                (block.height, index)
                for block in chain
                for index, data in enumerate(block.results)
                if index == 0  # chainkit puts the trade first
                and account
                in (PEERS[block.height % 4].account_id, PEERS[(block.height + 1) % 4].account_id)
            ]
            assert [(t.height, t.index) for t in trades] == expected
            assert all(isinstance(t.record, TradeRecord) for t in trades)
            settlements = store.settlements_by_account(account)
            assert all(isinstance(s.record, SettlementRecord) for s in settlements)
            assert [s.height for s in settlements] == [
                block.height for block in chain if PEERS[block.height % 4] is peer
            ]
            # events too, in chain order
            results = store.results_by_account(account)
            assert [(r.height, r.index) for r in results] == sorted(
                (r.height, r.index) for r in results
            )

    def test_refuses_a_block_that_does_not_extend_the_head(self, store, chain):
        with pytest.raises(NotExtendingHead) as info:
            store.append(chain[1])
        assert info.value.expected[0] == 0
        store.append(chain[0])
        store.append(chain[1])
        for bad in (chain[1], chain[3], chain[0]):
            with pytest.raises(NotExtendingHead):
                store.append(bad)
        # right height (2), wrong previous hash: a block on a fork of block 1
        fork = build_block(
            OPERATOR,
            chain_id=CHAIN_ID,
            parent=chain[0].header,
            time_ns=T0 + 77,
            transactions=[order(PEERS[3], 999)],
        )
        on_fork = build_block(
            OPERATOR, chain_id=CHAIN_ID, parent=fork.header, time_ns=T0, transactions=[]
        )
        assert on_fork.height == 2
        with pytest.raises(NotExtendingHead) as info:
            store.append(on_fork)
        assert info.value.expected == (2, chain[1].hash)
        assert info.value.found == (2, fork.hash)
        assert store.height == 2
        assert store.head() == chain[1].header
        store._check()

    def test_refuses_duplicate_transactions(self, store, chain):
        store.append(chain[0])
        replay = build_block(
            OPERATOR,
            chain_id=CHAIN_ID,
            parent=chain[0].header,
            time_ns=T0,
            transactions=[order(PEERS[3], 12345), chain[0].transactions[0]],
        )
        with pytest.raises(DuplicateTransaction):
            store.append(replay)
        twice = build_block(
            OPERATOR,
            chain_id=CHAIN_ID,
            parent=chain[0].header,
            time_ns=T0,
            transactions=[order(PEERS[3], 12345)] * 2,
        )
        with pytest.raises(DuplicateTransaction):
            store.append(twice)
        # nothing of the refused blocks was kept
        store._check()
        assert store.height == 1
        assert store.transaction(hashlib.sha256(order(PEERS[3], 12345)).digest()) is None
        store.append(chain[1])
        assert store.height == 2

    def test_refuses_undecodable_results(self, store):
        block = build_block(
            OPERATOR,
            chain_id=CHAIN_ID,
            parent=None,
            time_ns=T0,
            transactions=[order(PEERS[0], 1)],
            results=[encode([1, 99])],
        )
        with pytest.raises(DecodeError):
            store.append(block)
        store._check()
        assert store.height == 0
        assert store.transaction(hashlib.sha256(order(PEERS[0], 1)).digest()) is None

    def test_empty_blocks(self, store):
        block = build_block(OPERATOR, chain_id=CHAIN_ID, parent=None, time_ns=T0, transactions=[])
        store.append(block)
        assert store.block_at(0) == block


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_check_finds_index_damage(tmp_path, chain, kind):
    if kind == "memory":
        store = MemoryBlockStore()
        for block in chain:
            store.append(block)
        store._txs.popitem()
    else:
        store = SqliteBlockStore(tmp_path / "chain.db")
        for block in chain:
            store.append(block)
        store._conn.execute("DELETE FROM account_results WHERE height = 3")
    with pytest.raises(StoreCorrupted):
        store._check()
    store.close()


def test_sqlite_reopen_keeps_everything(tmp_path, chain):
    path = tmp_path / "chain.db"
    with SqliteBlockStore(path) as store:
        for block in chain:
            store.append(block)
    with SqliteBlockStore(path) as again:
        assert again.height == len(chain)
        assert again.head() == chain[-1].header
        assert again.block_at(2) == chain[2]
        again.append(make_chain(7, 4)[-1])
        assert again.height == 7


def test_sqlite_pragmas(tmp_path):
    path = tmp_path / "chain.db"
    with SqliteBlockStore(path) as store:
        conn = store._conn
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 16384
        assert conn.execute("PRAGMA cache_size").fetchone()[0] == -64 * 1024


def test_sqlite_readonly(tmp_path, chain):
    path = tmp_path / "chain.db"
    with SqliteBlockStore(path) as writer:
        writer.append(chain[0])
        with SqliteBlockStore(path, readonly=True) as reader:
            assert reader.height == 1
            with pytest.raises(StoreError):
                reader.append(chain[1])
            writer.append(chain[1])
            assert reader.block_at(1) == chain[1]  # a fresh read sees the new block


def test_sqlite_second_writer_sees_the_first(tmp_path, chain):
    path = tmp_path / "chain.db"
    first, second = SqliteBlockStore(path), SqliteBlockStore(path)
    try:
        first.append(chain[0])
        # the second connection's cached head is stale; the check under the lock is not
        with pytest.raises(NotExtendingHead):
            second.append(chain[0])
        second.append(chain[1])
        assert second.height == 2
    finally:
        first.close()
        second.close()


def test_sqlite_open_refuses_corruption(tmp_path, chain):
    path = tmp_path / "chain.db"
    with SqliteBlockStore(path) as store:
        for block in chain[:3]:
            store.append(block)
    conn = sqlite3.connect(path)
    conn.execute("DELETE FROM blocks WHERE height = 1")
    conn.commit()
    conn.close()
    with pytest.raises(StoreCorrupted, match="gaps"):
        SqliteBlockStore(path)

    other = tmp_path / "other.db"
    with SqliteBlockStore(other) as store:
        store.append(chain[0])
    conn = sqlite3.connect(other)
    conn.execute("UPDATE blocks SET data = ? WHERE height = 0", (b"\x01\x02",))
    conn.commit()
    conn.close()
    with pytest.raises(StoreCorrupted, match="does not decode"):
        SqliteBlockStore(other)

    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreCorrupted):
        SqliteBlockStore(junk)

    foreign = tmp_path / "foreign.db"
    conn = sqlite3.connect(foreign)
    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL)")
    conn.execute("INSERT INTO meta VALUES ('schema', x'00')")
    conn.commit()
    conn.close()
    with pytest.raises(StoreCorrupted, match="schema"):
        SqliteBlockStore(foreign)


def test_sqlite_readonly_missing_file(tmp_path):
    with pytest.raises(StoreError):
        SqliteBlockStore(tmp_path / "missing.db", readonly=True)
