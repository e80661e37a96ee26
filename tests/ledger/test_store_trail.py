"""The SQLite store's trailing index: blocks committed first, index rows after.

``append(block, index_later=True)`` commits a block without its index rows;
``index_trail()`` writes them. Reads must not tell the difference, a crash in
between must lose nothing, and the duplicate-transaction rule must hold
across the trail. A hypothesis property test runs random interleavings
against ``MemoryBlockStore``, which indexes as it appends.
"""

from __future__ import annotations

import hashlib
import sqlite3

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger import (
    DecodeError,
    DuplicateTransaction,
    MemoryBlockStore,
    SqliteBlockStore,
    build_block,
    encode,
)
from ledger.results import RESULT_TYPES
from tests.ledger.chainkit import CHAIN_ID, OPERATOR, PEERS, T0, make_chain, order


@pytest.fixture(scope="module")
def chain():
    return make_chain(6, 4)


RESULT_KINDS = sorted(RESULT_TYPES)


def tx_id(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def row_counts(path) -> tuple[int, int, int]:
    """(txs rows, account rows, the 'indexed' mark) read by a separate connection."""
    conn = sqlite3.connect(path)
    try:
        txs = conn.execute("SELECT COUNT(*) FROM txs").fetchone()[0]
        rows = conn.execute("SELECT COUNT(*) FROM account_results").fetchone()[0]
        mark = conn.execute("SELECT value FROM meta WHERE key = 'indexed'").fetchone()[0]
    finally:
        conn.close()
    return txs, rows, mark


def same_reads(store, reference, chain) -> None:
    """``store`` answers every lookup as ``reference`` does."""
    assert store.height == reference.height
    for block in chain:
        for data in block.transactions:
            assert store.transaction(tx_id(data)) == reference.transaction(tx_id(data))
    for peer in [*PEERS, OPERATOR]:
        account = peer.account_id
        everything = reference.results_by_account(account)
        assert store.results_by_account(account) == everything
        assert store.trades_by_account(account) == reference.trades_by_account(account)
        # of one kind, the newest few: the naive filter and slice of the whole history
        for kind in (None, *RESULT_KINDS):
            of_kind = [r for r in everything if kind is None or kind == r.record.KIND]
            for limit in (None, 0, 1, 3, 1000):
                want = of_kind if limit is None else of_kind[max(0, len(of_kind) - limit) :]
                assert store.results_by_account(account, kind, limit) == want, (kind, limit)
                assert reference.results_by_account(account, kind, limit) == want
        trades = reference.trades_by_account(account)
        assert store.trades_by_account(account, 2) == trades[-2:]
        # pages: only what lies before a (height, index)
        for cut in {(0, 0), *((r.height, r.index) for r in everything[::3]), (10**6, 0)}:
            earlier = [r for r in everything if (r.height, r.index) < cut]
            for limit in (None, 2):
                want = earlier if limit is None else earlier[max(0, len(earlier) - limit) :]
                assert store.results_by_account(account, None, limit, cut) == want, cut
                assert reference.results_by_account(account, None, limit, cut) == want


def test_reads_see_a_block_before_its_index_rows(tmp_path, chain):
    path = tmp_path / "chain.db"
    reference = MemoryBlockStore()
    with SqliteBlockStore(path) as store:
        for block in chain[:3]:
            store.append(block)
            reference.append(block)
        store.append(chain[3], index_later=True)
        reference.append(chain[3])
        assert row_counts(path)[2] == 3  # block 3 is stored, not indexed
        same_reads(store, reference, chain)
        store._check()
        store.index_trail()
        assert row_counts(path)[2] == 4
        same_reads(store, reference, chain)
        store._check()


def test_another_connection_reads_the_trail(tmp_path, chain):
    path = tmp_path / "chain.db"
    reference = MemoryBlockStore()
    writer = SqliteBlockStore(path)
    reader = SqliteBlockStore(path, readonly=True)
    try:
        for block in chain:
            writer.append(block, index_later=True)
            reference.append(block)
        # the reader's own height is from when it opened; its lookups see every commit
        located = reader.transaction(tx_id(chain[-1].transactions[0]))
        assert located is not None
        assert located.height == chain[-1].height
        for peer in PEERS:
            account = peer.account_id
            assert reader.results_by_account(account) == reference.results_by_account(account)
        writer.index_trail()
        for peer in PEERS:
            account = peer.account_id
            assert reader.results_by_account(account) == reference.results_by_account(account)
    finally:
        reader.close()
        writer.close()


def test_opening_for_writing_indexes_a_trail_left_by_a_crash(tmp_path, chain):
    path = tmp_path / "chain.db"
    store = SqliteBlockStore(path)
    for block in chain:
        store.append(block, index_later=True)
    store._conn.close()  # as if the process died before index_trail
    assert row_counts(path) == (0, 0, 0)
    reference = MemoryBlockStore()
    for block in chain:
        reference.append(block)
    with SqliteBlockStore(path, readonly=True) as reader:  # read-only: reads scan the trail
        same_reads(reader, reference, chain)
    assert row_counts(path)[2] == 0
    with SqliteBlockStore(path) as again:
        assert row_counts(path)[2] == len(chain)
        same_reads(again, reference, chain)
        again._check()


def test_duplicates_are_refused_across_the_trail(tmp_path, chain):
    with SqliteBlockStore(tmp_path / "chain.db") as store:
        store.append(chain[0], index_later=True)  # in the trail, not in the index
        replay = build_block(
            OPERATOR,
            chain_id=CHAIN_ID,
            parent=chain[0].header,
            time_ns=T0,
            transactions=[order(PEERS[3], 12345), chain[0].transactions[0]],
        )
        for index_later in (True, False):
            with pytest.raises(DuplicateTransaction):
                store.append(replay, index_later=index_later)
        store.index_trail()  # now in the index
        with pytest.raises(DuplicateTransaction):
            store.append(replay, index_later=True)
        assert store.height == 1
        assert store.transaction(tx_id(order(PEERS[3], 12345))) is None
        store._check()


def test_an_undecodable_result_is_found_when_indexing(tmp_path):
    good = order(PEERS[0], 1)
    block = build_block(
        OPERATOR,
        chain_id=CHAIN_ID,
        parent=None,
        time_ns=T0,
        transactions=[good],
        results=[encode([1, 99])],
    )
    path = tmp_path / "chain.db"
    with SqliteBlockStore(path) as store:
        store.append(block, index_later=True)  # the caller vouched for its results
        with pytest.raises(DecodeError, match="block 0, result 0"):
            store.index_trail()
        store.index_trail()  # counted as indexed: not raised again
        assert store.height == 1
        assert store.transaction(tx_id(good)) is not None
    assert row_counts(path) == (1, 0, 1)


def test_a_store_from_before_the_mark_counts_as_indexed(tmp_path, chain):
    path = tmp_path / "chain.db"
    with SqliteBlockStore(path) as store:
        for block in chain:
            store.append(block)
    conn = sqlite3.connect(path)
    conn.execute("DELETE FROM meta WHERE key = 'indexed'")
    conn.commit()
    conn.close()
    with SqliteBlockStore(path, readonly=True) as reader:
        assert reader.transaction(tx_id(chain[2].transactions[0])) is not None
        reader._check()
    with SqliteBlockStore(path) as store:  # a writer adds the mark
        assert row_counts(path)[2] == len(chain)
        store._check()


# One step of the property test: append the next block (index now or later),
# index the trail, or close and reopen (dropping an unindexed trail, as a crash would).
STEP = st.sampled_from(["append", "append_later", "index", "reopen"])


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=st.lists(STEP, min_size=1, max_size=20))
def test_any_interleaving_reads_like_the_memory_store(tmp_path_factory, chain, steps):
    path = tmp_path_factory.mktemp("trail") / "chain.db"
    reference = MemoryBlockStore()
    store = SqliteBlockStore(path)
    try:
        for step in steps:
            if step.startswith("append") and reference.height < len(chain):
                block = chain[reference.height]
                store.append(block, index_later=step == "append_later")
                reference.append(block)
            elif step == "index":
                store.index_trail()
            elif step == "reopen":
                store._conn.close()
                store = SqliteBlockStore(path)
                assert row_counts(path)[2] == reference.height  # indexed on opening
            same_reads(store, reference, chain)
        store._check()
    finally:
        store._conn.close()
