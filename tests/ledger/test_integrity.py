"""Whole-store verification: indexes are checked, proofs prove, damage is typed, keys are pinned."""

from __future__ import annotations

import hashlib
import shutil
import sqlite3

import pytest

from ledger import (
    EventRecord,
    MemoryBlockStore,
    SqliteBlockStore,
    StoreCorrupted,
    TradeRecord,
    UnauthorisedProposer,
    audit_chain,
    build_block,
    prove_transaction,
    verify_inclusion_proof,
)
from ledger.errors import LedgerError, TransactionNotFound
from ledger.integrity import (
    check_store_indexes,
    prove_stored_transaction,
    verify_store,
)
from ledger.types import RecordKind
from tests.ledger.chainkit import AUDIT_ARGS, CHAIN_ID, OPERATOR, PEERS, T0, fill, key, make_chain

BLOCKS = 5


@pytest.fixture(scope="module")
def chain():
    return make_chain(BLOCKS, 3)


@pytest.fixture
def db(tmp_path, chain):
    """A closed SQLite chain file (WAL checkpointed into it)."""
    path = tmp_path / "chain.sqlite3"
    with SqliteBlockStore(path) as store:
        fill(store, chain)
    return path


def sql(path, statement, params=()):
    conn = sqlite3.connect(path)
    conn.execute(statement, params)
    conn.commit()
    conn.close()


def test_a_clean_store_passes_every_check(db, chain):
    with SqliteBlockStore(db, readonly=True) as store:
        check = check_store_indexes(store)
        assert (check.blocks, check.tx_rows) == (BLOCKS, 3 * BLOCKS)
        assert check.account_rows > 0
        result = verify_store(store, operator=OPERATOR.public_key_bytes())
        assert result.ok, result.describe()
        assert result.operator_pinned and result.warnings == ()
        assert result.indexes == check
        tx_id = hashlib.sha256(chain[2].transactions[1]).digest()
        proven = prove_stored_transaction(store, tx_id)
        assert (proven.header, proven.proof.index) == (chain[2].header, 1)
        assert proven.leaf == chain[2].transactions[1]
        verify_inclusion_proof(proven.header, proven.proof, proven.leaf)
    memory = fill(MemoryBlockStore(), chain)
    assert check_store_indexes(memory) == check


# -- item 8: a proof that proves nothing ------------------------------------------------------


def test_an_index_row_for_a_transaction_in_no_block_proves_nothing(db):
    forged = hashlib.sha256(b"in no block").digest()
    sql(db, "INSERT INTO txs (tx_id, height, idx) VALUES (?, 1, 0)", (forged,))
    with SqliteBlockStore(db, readonly=True) as store:
        with pytest.raises(StoreCorrupted) as info:
            prove_stored_transaction(store, forged)
        assert info.value.height == 1
        with pytest.raises(StoreCorrupted):
            prove_transaction(store, forged)  # the old entry point no longer trusts the row
        with pytest.raises(StoreCorrupted) as info:
            store.transaction(forged)
        assert info.value.height == 1
        with pytest.raises(StoreCorrupted, match="block 1") as info:
            check_store_indexes(store)
        assert info.value.height == 1
        result = verify_store(store, operator=OPERATOR.public_key_bytes())
        assert not result.ok
        assert result.describe().startswith("FAILED at block 1: StoreCorrupted")


def test_an_index_row_past_the_transactions_is_a_typed_error_not_an_index_error(db):
    forged = hashlib.sha256(b"past the end").digest()
    sql(db, "INSERT INTO txs (tx_id, height, idx) VALUES (?, 2, 99)", (forged,))
    with SqliteBlockStore(db, readonly=True) as store:
        for read in (store.transaction, lambda t: prove_stored_transaction(store, t)):
            with pytest.raises(StoreCorrupted, match="holds 3 transactions") as info:
                read(forged)
            assert (info.value.height, info.value.expected, info.value.found) == (2, 3, 99)
        with pytest.raises(StoreCorrupted):
            check_store_indexes(store)


def test_a_row_for_a_block_that_is_not_stored_is_found(db):
    forged = hashlib.sha256(b"far").digest()
    sql(db, "INSERT INTO txs (tx_id, height, idx) VALUES (?, 999, 0)", (forged,))
    with SqliteBlockStore(db, readonly=True) as store:
        with pytest.raises(StoreCorrupted, match="block 999") as info:
            check_store_indexes(store)
        assert info.value.height == 999


def test_a_moved_or_missing_transaction_row_is_found(db, chain):
    tx_id = hashlib.sha256(chain[3].transactions[0]).digest()
    sql(db, "UPDATE txs SET idx = 1 WHERE tx_id = ?", (tx_id,))
    with SqliteBlockStore(db, readonly=True) as store:
        with pytest.raises(StoreCorrupted) as info:
            store.transaction(tx_id)  # the row points at another transaction
        assert info.value.height == 3
        with pytest.raises(StoreCorrupted) as info:
            check_store_indexes(store)
        assert info.value.height == 3
    sql(db, "DELETE FROM txs WHERE tx_id = ?", (tx_id,))
    with SqliteBlockStore(db, readonly=True) as store:
        with pytest.raises(TransactionNotFound):
            prove_stored_transaction(store, tx_id)
        with pytest.raises(StoreCorrupted, match="row missing") as info:
            check_store_indexes(store)
        assert info.value.height == 3


def test_account_rows_are_checked_against_the_records(db, chain):
    account = PEERS[0].account_id
    with SqliteBlockStore(db, readonly=True) as store:
        assert store.results_by_account(account)
    # a row pointing past the results, and one at a record of another account
    sql(db, "INSERT INTO account_results VALUES (?, ?, 1, 50)", (account, int(RecordKind.TRADE)))
    with SqliteBlockStore(db, readonly=True) as store:
        with pytest.raises(StoreCorrupted, match="holds 4 results"):
            store.results_by_account(account)
        with pytest.raises(StoreCorrupted) as info:
            check_store_indexes(store)
        assert info.value.height == 1
    sql(db, "DELETE FROM account_results WHERE idx = 50")
    stranger = key(77).account_id
    sql(db, "INSERT INTO account_results VALUES (?, ?, 2, 0)", (stranger, int(RecordKind.TRADE)))
    with SqliteBlockStore(db, readonly=True) as store:
        with pytest.raises(StoreCorrupted, match="TradeRecord"):
            store.trades_by_account(stranger)
        with pytest.raises(StoreCorrupted) as info:
            check_store_indexes(store)
        assert info.value.height == 2


def test_memory_store_indexes_are_checked_too(chain):
    store = fill(MemoryBlockStore(), chain)
    forged = hashlib.sha256(b"memory").digest()
    store.tamper_index(tx=(forged, (1, 7)))
    with pytest.raises(StoreCorrupted):
        store.transaction(forged)
    with pytest.raises(StoreCorrupted):
        check_store_indexes(store)
    store = fill(MemoryBlockStore(), chain)
    store.tamper_index(block_hash=(hashlib.sha256(b"h").digest(), 2))
    with pytest.raises(StoreCorrupted) as info:
        check_store_indexes(store)
    assert info.value.height == 2
    with pytest.raises(StoreCorrupted):
        store.block_by_hash(hashlib.sha256(b"h").digest())
    store = fill(MemoryBlockStore(), chain)
    store.tamper_index(account=(PEERS[0].account_id, (int(RecordKind.TRADE), 0, 9)))
    with pytest.raises(StoreCorrupted):
        store.results_by_account(PEERS[0].account_id)
    with pytest.raises(StoreCorrupted):
        check_store_indexes(store)


# -- item 9: corrupt files --------------------------------------------------------------------


def test_every_stored_hash_is_checked_not_only_the_head(db, chain):
    for height in range(BLOCKS):
        copy = db.with_name(f"copy{height}.sqlite3")
        shutil.copy(db, copy)
        sql(copy, "UPDATE blocks SET hash = ? WHERE height = ?", (bytes(32), height))
        try:
            with SqliteBlockStore(copy, readonly=True) as store:
                assert store.block_by_hash(chain[height].hash) is None  # what the issue saw
                with pytest.raises(StoreCorrupted) as info:
                    check_store_indexes(store)
                assert info.value.height == height
                with pytest.raises(StoreCorrupted):
                    store.block_by_hash(bytes(32))
                result = verify_store(store, operator=OPERATOR.public_key_bytes())
                assert result.describe().startswith(f"FAILED at block {height}:")
        except StoreCorrupted as exc:  # the head's hash is checked when the store opens
            assert height == BLOCKS - 1 and exc.height == height


def test_a_missing_block_is_named(db):
    sql(db, "DELETE FROM blocks WHERE height = 2")
    for readonly in (True, False):
        with pytest.raises(StoreCorrupted, match="block 2 is missing") as info:
            SqliteBlockStore(db, readonly=readonly)
        assert info.value.height == 2
    sql(db, "DELETE FROM blocks WHERE height = 0")
    with pytest.raises(StoreCorrupted, match="block 0 is missing"):
        SqliteBlockStore(db, readonly=True)


def test_corrupt_pages_give_typed_errors_naming_a_block(tmp_path):
    # bigger blocks so the blocks table spans many pages; every page is
    # overwritten in turn: nothing may escape as a bare sqlite3 error
    path = tmp_path / "big.sqlite3"
    with SqliteBlockStore(path) as store:
        fill(store, make_chain(8, 12))
    page = 4096
    pages = path.stat().st_size // page
    named = 0
    for number in range(1, pages):
        copy = tmp_path / "copy.sqlite3"
        shutil.copy(path, copy)
        with copy.open("r+b") as f:
            f.seek(number * page)
            f.write(bytes([0xA5]) * page)
        try:
            store = SqliteBlockStore(copy, readonly=True)
        except LedgerError:
            continue
        with store:
            try:
                report = audit_chain(store, **AUDIT_ARGS)
                result = verify_store(store, operator=OPERATOR.public_key_bytes())
            except sqlite3.Error as exc:  # pragma: no cover - the defect
                pytest.fail(f"page {number}: {exc!r} escaped")
            if not report.ok:
                assert report.first_bad_height is not None
                named += 1
            if not result.ok:
                assert result.describe().startswith("FAILED at block")
    assert named > 0


def test_a_read_write_open_says_what_it_indexes_and_a_read_only_one_writes_nothing(db):
    sql(db, "UPDATE meta SET value = 2 WHERE key = 'indexed'")
    sql(db, "DELETE FROM txs WHERE height >= 2")

    def count():
        conn = sqlite3.connect(db)
        n = conn.execute("SELECT COUNT(*) FROM txs").fetchone()[0]
        conn.close()
        return n

    with SqliteBlockStore(db, readonly=True) as store:
        assert store.indexed_on_open == range(0)
        check_store_indexes(store)  # blocks above the mark may lack rows
    assert count() == 6
    with SqliteBlockStore(db) as store:
        assert store.indexed_on_open == range(2, BLOCKS)
        check_store_indexes(store)
    assert count() == 3 * BLOCKS
    with SqliteBlockStore(db) as store:
        assert store.indexed_on_open == range(BLOCKS, BLOCKS)


# -- item 10: whose chain is it ---------------------------------------------------------------


def resigned(chain, signer):
    """The chain rebuilt from genesis and signed by ``signer``, one trade altered."""
    out, parent = [], None
    for block in chain:
        results = list(block.results)
        if block.height == 1:
            tx_id = hashlib.sha256(block.transactions[0]).digest()
            maker, taker = PEERS[0].account_id, PEERS[1].account_id
            results[0] = TradeRecord(
                tx_id, "electricity", 7, 1, 500_000, maker, taker, 1, 2
            ).to_bytes()
        new = build_block(
            signer,
            chain_id=CHAIN_ID,
            parent=parent,
            time_ns=T0 + block.height,
            transactions=block.transactions,
            results=results,
            state_digest=block.header.state_digest,
        )
        out.append(new)
        parent = new.header
    return out


def test_a_chain_re_signed_by_another_key_fails_against_the_pinned_key(chain):
    forged = fill(MemoryBlockStore(), resigned(chain, key(9)))
    result = verify_store(forged, operator=OPERATOR.public_key_bytes())
    assert not result.ok
    assert result.report.first_bad_height == 0
    assert isinstance(result.report.error, UnauthorisedProposer)
    assert result.describe().startswith("FAILED at block 0: UnauthorisedProposer")


def test_without_a_key_the_genesis_signer_is_trusted_loudly(chain):
    forged = fill(MemoryBlockStore(), resigned(chain, key(9)))
    result = verify_store(forged, operator=None)
    assert result.ok  # nothing in the chain says whose it is ...
    assert not result.operator_pinned
    assert result.operator == key(9).public_key_bytes()
    (warning,) = result.warnings  # ... so the caller is told, loudly
    assert warning.startswith("WARNING") and key(9).public_key_bytes().hex() in warning
    honest = verify_store(fill(MemoryBlockStore(), chain), operator=None)
    assert honest.ok and honest.warnings


def test_verify_store_reports_an_unreadable_genesis(db):
    sql(db, "UPDATE blocks SET data = ? WHERE height = 0", (b"\x00",))
    with SqliteBlockStore(db, readonly=True) as store:
        result = verify_store(store, operator=None)
    assert result.describe().startswith("FAILED at block 0: StoreCorrupted")


def test_an_empty_store_verifies(tmp_path):
    with SqliteBlockStore(tmp_path / "empty.sqlite3") as store:
        result = verify_store(store, operator=None)
    assert result.ok and result.report.blocks == 0


def test_events_with_no_account_need_no_row(chain):
    # a record naming no account gives no index row: the check must not want one
    block = build_block(
        OPERATOR,
        chain_id=CHAIN_ID,
        parent=chain[-1].header,
        time_ns=T0 + 99,
        transactions=[],
        results=[EventRecord(bytes(32), "expired", b"", (1,))],
    )
    store = fill(MemoryBlockStore(), [*chain, block])
    assert check_store_indexes(store).blocks == BLOCKS + 1


def test_an_auditor_that_raises_gives_a_failed_report(chain):
    store = fill(MemoryBlockStore(), chain)

    def auditor(chain_id, proposers):
        assert (chain_id, tuple(proposers)) == (CHAIN_ID, (OPERATOR.public_key_bytes(),))
        raise StoreCorrupted("a worker cannot open the file")

    result = verify_store(store, operator=OPERATOR.public_key_bytes(), auditor=auditor)
    assert not result.ok
    assert result.describe() == "FAILED: StoreCorrupted: a worker cannot open the file"
    result = verify_store(
        store,
        operator=OPERATOR.public_key_bytes(),
        auditor=lambda c, p: (_ for _ in ()).throw(StoreCorrupted("page", height=3)),
    )
    assert result.describe() == "FAILED at block 3: StoreCorrupted: page"
