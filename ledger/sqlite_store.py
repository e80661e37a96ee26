"""The embedded block store: SQLite in WAL mode with ``synchronous=FULL``.

Durability: each ``append`` is one SQLite transaction (``BEGIN IMMEDIATE``
... ``COMMIT``) holding the block's exact bytes and all its index rows; the
head is re-read inside that transaction, so the link check and the write are
atomic even with other connections. With WAL and ``synchronous=FULL`` the
WAL is fsynced at every commit, so once ``append`` returns the block survives
a crash or power loss, and SQLite's atomic commit means a crash before that
leaves no trace of it: after reopening, the store holds exactly the blocks
whose ``append`` returned (and possibly the one in flight, if the crash came
after its commit but before ``append`` returned), never a half-written one.

Schema (version ``SCHEMA_VERSION``)::

    meta(key TEXT PRIMARY KEY, value BLOB)
    blocks(height INTEGER PRIMARY KEY, hash BLOB UNIQUE, data BLOB)
    txs(tx_id BLOB PRIMARY KEY, height, idx)                      WITHOUT ROWID
    account_results(account BLOB, kind, height, idx, PRIMARY KEY (all))  WITHOUT ROWID

Appending slows down as the chain grows: transaction ids are random keys,
so every block's 1,000 index rows touch up to 1,000 different index pages,
and each touched page is written to the WAL in full (about 4 MB per block
once the index is much larger than the page cache's reach). A larger page
cache and less frequent checkpoints soften this; a log-structured index
would remove it.

On open the store checks the schema version and that the head row is
consistent (heights contiguous from 0, the head's bytes decode and hash to
its stored hash) and raises ``StoreCorrupted`` otherwise; the full audit
(``ledger.audit``) checks everything else.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from ledger.block import Block, BlockHeader, decode_block
from ledger.errors import (
    BlockNotFound,
    DecodeError,
    DuplicateTransaction,
    StoreCorrupted,
    StoreError,
)
from ledger.results import ResultRecord, SettlementRecord, TradeRecord, decode_result
from ledger.store import Located, check_extends, index_block, settlements_of, trades_of
from ledger.transactions import SignedTransaction, decode_transaction

SCHEMA_VERSION = b"p2pex-ledger-sqlite/1"
CACHE_KIB = 64 * 1024
"""SQLite page cache per connection, in KiB."""
WAL_CHECKPOINT_PAGES = 16384
"""WAL size (pages, 4 KiB each by default) that triggers an automatic checkpoint."""

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL)",
    "CREATE TABLE IF NOT EXISTS blocks ("
    " height INTEGER PRIMARY KEY, hash BLOB NOT NULL UNIQUE, data BLOB NOT NULL)",
    "CREATE TABLE IF NOT EXISTS txs ("
    " tx_id BLOB PRIMARY KEY, height INTEGER NOT NULL, idx INTEGER NOT NULL) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS account_results ("
    " account BLOB NOT NULL, kind INTEGER NOT NULL, height INTEGER NOT NULL,"
    " idx INTEGER NOT NULL, PRIMARY KEY (account, height, idx, kind)) WITHOUT ROWID",
)


class SqliteBlockStore:
    """A ``BlockStore`` in one SQLite database file.

    Args:
        path: the database file (created if missing, unless ``readonly``).
        readonly: open an existing database for reading only (e.g. the
            workers of a parallel audit while a writer appends).

    Raises:
        StoreCorrupted: the file is not a block store of this schema, or its
            head is inconsistent.
        StoreError: the database cannot be opened.
    """

    __slots__ = ("_conn", "_head", "_height", "path", "readonly")

    def __init__(self, path: str | os.PathLike[str], *, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        try:
            if readonly:
                uri = f"file:{self.path}?mode=ro"
                self._conn = sqlite3.connect(uri, uri=True, isolation_level=None)
            else:
                self._conn = sqlite3.connect(self.path, isolation_level=None)
        except sqlite3.Error as exc:
            msg = f"cannot open block store {self.path}: {exc}"
            raise StoreError(msg) from exc
        try:
            self._setup()
            self._height, self._head = self._load_head()
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            msg = f"{self.path} is not a usable block store: {exc}"
            raise StoreCorrupted(msg) from exc
        except StoreError:
            self._conn.close()
            raise

    def _setup(self) -> None:
        conn = self._conn
        if not self.readonly:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                msg = f"cannot switch {self.path} to WAL mode (got {mode})"
                raise StoreError(msg)
        conn.execute("PRAGMA synchronous=FULL")
        # Transaction ids are random keys, so each block's index rows land on
        # pages all over the index: a large page cache keeps them in memory,
        # and a large WAL lets one checkpoint write a page that many blocks
        # changed once instead of once per block (measured in bench_ledger).
        conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
        if not self.readonly:
            conn.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")
        if self.readonly:
            version = self._meta_version()
        else:
            conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in _SCHEMA:
                    conn.execute(statement)
                conn.execute(
                    "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema', ?)",
                    (SCHEMA_VERSION,),
                )
                version = self._meta_version()
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        if version != SCHEMA_VERSION:
            msg = f"{self.path} has schema {version!r}, expected {SCHEMA_VERSION!r}"
            raise StoreCorrupted(msg)

    def _meta_version(self) -> bytes | None:
        row = self._conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        return None if row is None else bytes(row[0])

    def _load_head(self) -> tuple[int, BlockHeader | None]:
        count, top = self._conn.execute("SELECT COUNT(*), MAX(height) FROM blocks").fetchone()
        if count == 0:
            return 0, None
        if top != count - 1:
            msg = f"{self.path}: {count} blocks but the highest is {top}: heights have gaps"
            raise StoreCorrupted(msg)
        block_hash, data = self._conn.execute(
            "SELECT hash, data FROM blocks WHERE height = ?", (top,)
        ).fetchone()
        try:
            block = decode_block(bytes(data))
        except DecodeError as exc:
            msg = f"{self.path}: the head block {top} does not decode: {exc}"
            raise StoreCorrupted(msg) from exc
        if block.height != top or block.hash != bytes(block_hash):
            msg = f"{self.path}: the head block {top} does not match its stored height and hash"
            raise StoreCorrupted(msg)
        return count, block.header

    @property
    def height(self) -> int:
        """The number of blocks stored (= the height the next block must have)."""
        return self._height

    def head(self) -> BlockHeader | None:
        """Return the header of the last block, or None when empty."""
        return self._head

    def append(self, block: Block) -> None:
        """Store ``block`` with its index rows in one durable transaction, or change nothing.

        Raises:
            NotExtendingHead: the block does not follow the head.
            DuplicateTransaction: one of its transaction ids is already stored.
            DecodeError: one of its results does not decode.
            StoreError: read-only store, or SQLite failed.
        """
        if self.readonly:
            msg = f"{self.path} is open read-only"
            raise StoreError(msg)
        entries = index_block(block)  # decode and hash before the write lock
        data = block.to_bytes()
        height = block.height
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            msg = f"cannot start a write on {self.path}: {exc}"
            raise StoreError(msg) from exc
        try:
            # The head is re-read under the write lock: another writer may have appended.
            row = conn.execute(
                "SELECT height, data FROM blocks ORDER BY height DESC LIMIT 1"
            ).fetchone()
            head = self._head
            if row is not None and (head is None or head.height != row[0]):
                head = decode_block(bytes(row[1])).header
            check_extends(head, block)
            conn.execute(
                "INSERT INTO blocks (height, hash, data) VALUES (?, ?, ?)",
                (height, block.hash, data),
            )
            _insert_rows(
                conn,
                "INSERT INTO txs (tx_id, height, idx) VALUES ",
                [(tx_id, height, index) for index, tx_id in enumerate(entries.tx_ids)],
            )
            _insert_rows(
                conn,
                "INSERT OR IGNORE INTO account_results (account, kind, height, idx) VALUES ",
                [(account, kind, height, index) for account, kind, index in entries.account_rows],
            )
            conn.execute("COMMIT")
        except sqlite3.IntegrityError as exc:
            conn.execute("ROLLBACK")
            msg = f"block {height} holds a transaction id that is already stored: {exc}"
            raise DuplicateTransaction(msg) from exc
        except sqlite3.Error as exc:
            conn.execute("ROLLBACK")
            msg = f"cannot append block {height} to {self.path}: {exc}"
            raise StoreError(msg) from exc
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        self._height = height + 1
        self._head = block.header

    def block_bytes(self, height: int) -> bytes:
        """Return the exact stored bytes of the block at ``height``."""
        row = self._conn.execute("SELECT data FROM blocks WHERE height = ?", (height,)).fetchone()
        if row is None:
            msg = f"no block at height {height} (store holds {self._height})"
            raise BlockNotFound(msg)
        return bytes(row[0])

    def block_at(self, height: int) -> Block:
        """Return the block at ``height`` (decoded from the stored bytes)."""
        return decode_block(self.block_bytes(height))

    def block_by_hash(self, block_hash: bytes) -> Block | None:
        """Return the block with that hash, or None."""
        row = self._conn.execute(
            "SELECT data FROM blocks WHERE hash = ?", (bytes(block_hash),)
        ).fetchone()
        return None if row is None else decode_block(bytes(row[0]))

    def transaction(self, tx_id: bytes) -> Located[SignedTransaction] | None:
        """Return the transaction with that id and where it is, or None."""
        row = self._conn.execute(
            "SELECT height, idx FROM txs WHERE tx_id = ?", (bytes(tx_id),)
        ).fetchone()
        if row is None:
            return None
        height, index = row
        signed = decode_transaction(self.block_at(height).transactions[index])
        return Located(height, index, signed)

    def results_by_account(self, account: bytes) -> list[Located[ResultRecord]]:
        """Return every result naming ``account``, in chain order."""
        rows = self._conn.execute(
            "SELECT height, idx FROM account_results WHERE account = ? ORDER BY height, idx",
            (bytes(account),),
        ).fetchall()
        found: list[Located[ResultRecord]] = []
        block: Block | None = None
        for height, index in rows:
            if block is None or block.height != height:
                block = self.block_at(height)
            found.append(Located(height, index, decode_result(block.results[index])))
        return found

    def trades_by_account(self, account: bytes) -> list[Located[TradeRecord]]:
        """Return the trades where ``account`` is maker or taker, in chain order."""
        return trades_of(self.results_by_account(account))

    def settlements_by_account(self, account: bytes) -> list[Located[SettlementRecord]]:
        """Return the settlements of ``account``, in chain order."""
        return settlements_of(self.results_by_account(account))

    def _check(self) -> None:
        """Check that the index tables match the stored blocks, O(total size); for tests.

        Raises:
            StoreCorrupted: an index row is missing, extra or wrong.
        """
        conn = self._conn
        count = conn.execute("SELECT COUNT(*) FROM blocks").fetchone()[0]
        if count != self._height:
            msg = f"{count} blocks stored, the store believes {self._height}"
            raise StoreCorrupted(msg)
        want_txs: set[tuple[bytes, int, int]] = set()
        want_rows: set[tuple[bytes, int, int, int]] = set()
        for height in range(count):
            block_hash, data = conn.execute(
                "SELECT hash, data FROM blocks WHERE height = ?", (height,)
            ).fetchone()
            block = decode_block(bytes(data))
            if block.hash != bytes(block_hash) or block.height != height:
                msg = f"block {height} is stored under another height or hash"
                raise StoreCorrupted(msg)
            entries = index_block(block)
            want_txs.update((t, height, i) for i, t in enumerate(entries.tx_ids))
            want_rows.update((a, k, height, i) for a, k, i in entries.account_rows)
        have_txs = {(bytes(t), h, i) for t, h, i in conn.execute("SELECT * FROM txs")}
        have_rows = {
            (bytes(a), k, h, i)
            for a, k, h, i in conn.execute("SELECT account, kind, height, idx FROM account_results")
        }
        if have_txs != want_txs or have_rows != want_rows:
            msg = "the transaction or account index does not match the stored blocks"
            raise StoreCorrupted(msg)

    def close(self) -> None:
        """Close the database connection (idempotent)."""
        self._conn.close()

    def __enter__(self) -> SqliteBlockStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


ROWS_PER_INSERT = 256  # rows per multi-row INSERT (SQLite allows 250,000 parameters here)


def _insert_rows(conn: sqlite3.Connection, insert: str, rows: list[tuple[object, ...]]) -> None:
    """Insert ``rows`` with one multi-row statement per ``ROWS_PER_INSERT`` rows.

    Not ``executemany``: that runs one SQLite step per row, and each step
    releases and retakes the GIL. On the operator's writer thread, next to a
    busy event loop, every retake can wait for the loop's switch interval, so
    a block of a few hundred rows took tens of milliseconds to store under
    load; a statement per 256 rows retakes the GIL a few times per block.
    """
    for start in range(0, len(rows), ROWS_PER_INSERT):
        chunk = rows[start : start + ROWS_PER_INSERT]
        width = len(chunk[0])
        one = "(" + ", ".join("?" * width) + ")"
        params = [value for row in chunk for value in row]
        conn.execute(insert + ", ".join([one] * len(chunk)), params)
