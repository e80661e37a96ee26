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

The index may trail the chain. ``append(block, index_later=True)`` commits
the block alone (link and transaction-id checks made, results not decoded)
and its index rows follow in ``index_trail()``, a second transaction the
caller runs once it has reported the block stored: the operator's writer
process does this, because the index rows are most of an append's cost
(random transaction-id keys touch ~100 pages per block, each written to the
WAL in full) and a block is reported committed only after its append. The
index is derived data: the ``indexed`` meta row says up to which height it
is complete, every read also looks at the blocks above it (at most a block
or two, scanned), and opening the store for writing indexes them, so a crash
between the two transactions loses nothing. The trail's index transaction
commits without its own fsync (``synchronous=NORMAL``): the next block's
commit syncs the WAL, and a crash before that only leaves a trail to index.

Schema (version ``SCHEMA_VERSION``)::

    meta(key TEXT PRIMARY KEY, value BLOB)        'schema', 'indexed' (height)
    blocks(height INTEGER PRIMARY KEY, hash BLOB UNIQUE, data BLOB)
    txs(tx_id BLOB PRIMARY KEY, height, idx)                      WITHOUT ROWID
    account_results(account BLOB, kind, height, idx, PRIMARY KEY (all))  WITHOUT ROWID

A store written before the ``indexed`` row existed is fully indexed (every
append indexed its block in the same transaction): opening it for writing
adds the row.

Appending slows down as the chain grows: transaction ids are random keys,
so every block's 1,000 index rows touch up to 1,000 different index pages,
and each touched page is written to the WAL in full once the index is much
larger than the page cache's reach (docs/performance.md). A larger page
cache and less frequent checkpoints soften this; a log-structured index
would remove it.

On open the store checks the schema version and that the head row is
consistent (heights contiguous from 0, the head's bytes decode and hash to
its stored hash) and raises ``StoreCorrupted`` otherwise (naming the first
missing height when heights have gaps); the full audit (``ledger.audit``)
and the index check (``ledger.integrity``) check everything else.

What an open writes: a read-write open creates the schema if missing and
writes the index rows of the blocks above the ``indexed`` mark (a crash
between a block's commit and its index transaction); it adds rows and
never changes or deletes one (``INSERT OR IGNORE``), and says which heights
it indexed in ``indexed_on_open``. A read-only open writes nothing: verify
a chain read-only.

A read that meets a damaged database (a corrupt page: SQLite's
``DatabaseError``) raises ``StoreCorrupted`` naming the block it was
reading, never a bare ``sqlite3`` error; an index row that points past a
block's transactions or results, or at a record with another id or
account, raises ``StoreCorrupted`` too (``ledger.store.indexed_transaction``).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

from ledger.block import Block, BlockHeader, decode_block
from ledger.errors import (
    BlockNotFound,
    DecodeError,
    DuplicateTransaction,
    StoreCorrupted,
    StoreError,
)
from ledger.results import (
    ResultRecord,
    decode_result,
    result_accounts,
)
from ledger.store import (
    AccountReads,
    BlockIndex,
    Located,
    Position,
    account_rows,
    block_tx_ids,
    block_with_hash,
    check_extends,
    index_block,
    indexed_result,
    indexed_transaction,
    newest,
)
from ledger.transactions import SignedTransaction, decode_transaction
from ledger.types import RecordKind

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


class SqliteBlockStore(AccountReads):
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

    __slots__ = ("_conn", "_head", "_height", "_trail", "indexed_on_open", "path", "readonly")

    def __init__(self, path: str | os.PathLike[str], *, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        # Blocks this connection committed with index_later and not indexed yet,
        # with their transaction ids (checked against every later block).
        self._trail: list[tuple[Block, tuple[bytes, ...]]] = []
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
        self.indexed_on_open = range(0)
        """Heights whose index rows this open wrote (blocks above the mark; see the module doc)."""
        if not readonly:
            try:
                start = self._indexed_height()
            except sqlite3.Error as exc:
                self._conn.close()
                self._raise_read_error(exc, "the index mark", None)
            self._index_from(start, self._height)
            self.indexed_on_open = range(start, self._height)

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
                # Stores from before the 'indexed' row indexed every block as
                # they appended it (and a new store has no block yet).
                conn.execute(
                    "INSERT OR IGNORE INTO meta (key, value) SELECT 'indexed', COUNT(*) FROM blocks"
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        if version != SCHEMA_VERSION:
            msg = f"{self.path} has schema {version!r}, expected {SCHEMA_VERSION!r}"
            raise StoreCorrupted(msg)

    def _indexed_height(self) -> int:
        """The height below which every block is indexed (the ``indexed`` meta row)."""
        row = self._conn.execute("SELECT value FROM meta WHERE key = 'indexed'").fetchone()
        if row is None:  # an older store opened read-only: it indexed as it appended
            return self._stored_count()
        return int(row[0])

    def _stored_count(self) -> int:
        """The number of blocks in the file (heights are contiguous: O(log n), not a scan)."""
        return int(
            self._conn.execute("SELECT COALESCE(MAX(height) + 1, 0) FROM blocks").fetchone()[0]
        )

    def _meta_version(self) -> bytes | None:
        row = self._conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        return None if row is None else bytes(row[0])

    def _load_head(self) -> tuple[int, BlockHeader | None]:
        count, top = self._conn.execute("SELECT COUNT(*), MAX(height) FROM blocks").fetchone()
        if count == 0:
            return 0, None
        if top != count - 1:
            missing = self._first_missing_height()
            msg = (
                f"{self.path}: block {missing} is missing ({count} blocks stored, "
                f"the highest is {top}: heights have gaps)"
            )
            raise StoreCorrupted(msg, height=missing, expected=top + 1, found=count)
        try:
            block_hash, data = self._conn.execute(
                "SELECT hash, data FROM blocks WHERE height = ?", (top,)
            ).fetchone()
        except sqlite3.Error as exc:
            self._raise_read_error(exc, f"the head block {top}", top)
        try:
            block = decode_block(bytes(data))
        except DecodeError as exc:
            msg = f"{self.path}: the head block {top} does not decode: {exc}"
            raise StoreCorrupted(msg, height=top) from exc
        if block.height != top or block.hash != bytes(block_hash):
            msg = f"{self.path}: the head block {top} does not match its stored height and hash"
            raise StoreCorrupted(msg, height=top, expected=block.hash, found=bytes(block_hash))
        return count, block.header

    def _first_missing_height(self) -> int:
        """The lowest height with no block below the highest stored one (heights have gaps)."""
        row = self._conn.execute(
            "SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM blocks WHERE height = 0) THEN 0 ELSE"
            " (SELECT MIN(b.height) + 1 FROM blocks AS b WHERE NOT EXISTS"
            " (SELECT 1 FROM blocks AS c WHERE c.height = b.height + 1)) END"
        ).fetchone()
        return int(row[0])

    def _raise_read_error(self, exc: sqlite3.Error, what: str, height: int | None) -> NoReturn:
        """Raise the ledger error for an SQLite error met reading ``what``.

        A damaged database (a corrupt page, not a database file) is
        ``StoreCorrupted``; anything else (locked, I/O) ``StoreError``.
        """
        msg = f"cannot read {what} from {self.path}: {exc}"
        if isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError):
            raise StoreCorrupted(msg, height=height) from exc
        raise StoreError(msg) from exc

    @property
    def height(self) -> int:
        """The number of blocks stored (= the height the next block must have)."""
        return self._height

    def head(self) -> BlockHeader | None:
        """Return the header of the last block, or None when empty."""
        return self._head

    def append(self, block: Block, *, index_later: bool = False) -> None:
        """Store ``block`` with its index rows in one durable transaction, or change nothing.

        ``index_later``: commit the block without its index rows and without
        decoding its results; ``index_trail()`` writes them (reads see the
        block at once either way). Only for blocks whose results are known to
        decode, such as those this node's own state machine produced: a
        result that does not decode is then found by ``index_trail``, after
        the block is stored.

        Raises:
            NotExtendingHead: the block does not follow the head.
            DuplicateTransaction: one of its transaction ids is already stored.
            DecodeError: one of its results does not decode (not with ``index_later``).
            StoreError: read-only store, or SQLite failed.
        """
        if self.readonly:
            msg = f"{self.path} is open read-only"
            raise StoreError(msg)
        if self._trail and not index_later:
            self.index_trail()  # the index is written in chain order
        # decode and hash before the write lock
        entries = None if index_later else index_block(block)
        tx_ids = block_tx_ids(block) if entries is None else entries.tx_ids
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
            self._refuse_stored(tx_ids)
            if entries is not None:
                self._insert_index(height, entries)
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
        if entries is None:
            self._trail.append((block, tx_ids))

    def _refuse_stored(self, tx_ids: tuple[bytes, ...]) -> None:
        """Raise DuplicateTransaction if one of ``tx_ids`` is in the index or the trail.

        Point lookups: they read index pages and write none.
        """
        trail = {tx_id for _, ids in self._trail for tx_id in ids}
        for start in range(0, len(tx_ids), ROWS_PER_INSERT):
            chunk = tx_ids[start : start + ROWS_PER_INSERT]
            marks = ", ".join("?" * len(chunk))
            found = self._conn.execute(
                f"SELECT tx_id FROM txs WHERE tx_id IN ({marks}) LIMIT 1", chunk
            ).fetchone()
            if found is None:
                found = next(((t,) for t in chunk if t in trail), None)
            if found is not None:
                msg = f"transaction {bytes(found[0]).hex()} is already stored"
                raise DuplicateTransaction(msg)

    def _insert_index(self, height: int, entries: BlockIndex) -> None:
        """Write one block's index rows and move the ``indexed`` mark past it (in a transaction).

        ``OR IGNORE``: indexing a block again (an older version appended it
        without moving the mark) changes nothing; duplicates across blocks
        were refused before the block was stored.
        """
        conn = self._conn
        _insert_rows(
            conn,
            "INSERT OR IGNORE INTO txs (tx_id, height, idx) VALUES ",
            [(tx_id, height, index) for index, tx_id in enumerate(entries.tx_ids)],
        )
        _insert_rows(
            conn,
            "INSERT OR IGNORE INTO account_results (account, kind, height, idx) VALUES ",
            [(account, kind, height, index) for account, kind, index in entries.account_rows],
        )
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('indexed', ?)"
            " ON CONFLICT (key) DO UPDATE SET value = MAX(value, excluded.value)",
            (height + 1,),
        )

    def index_trail(self) -> None:
        """Write the index rows of the blocks appended with ``index_later``, oldest first.

        Each block is indexed in its own transaction, committed without an
        fsync of its own (see the module docstring).

        Raises:
            DecodeError: a block's result does not decode. The rows that do
                decode are written and the block counts as indexed.
            StoreError: SQLite failed (the block stays in the trail).
        """
        while self._trail:
            block, tx_ids = self._trail[0]
            entries, error = _index_leniently(block, tx_ids)
            self._write_index(block.height, entries)
            self._trail.pop(0)
            if error is not None:
                raise error

    def _index_from(self, start: int, stop: int) -> None:
        """Index the stored blocks ``start`` <= height < ``stop`` (opening after a crash)."""
        for height in range(start, stop):
            block = self.block_at(height)
            entries, _ = _index_leniently(block, block_tx_ids(block))
            self._write_index(height, entries)

    def _write_index(self, height: int, entries: BlockIndex) -> None:
        conn = self._conn
        try:
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("BEGIN IMMEDIATE")
            try:
                self._insert_index(height, entries)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            finally:
                conn.execute("PRAGMA synchronous=FULL")
        except sqlite3.Error as exc:
            msg = f"cannot index block {height} of {self.path}: {exc}"
            raise StoreError(msg) from exc

    def block_bytes(self, height: int) -> bytes:
        """Return the exact stored bytes of the block at ``height``.

        Raises:
            BlockNotFound: no block at that height.
            StoreCorrupted: its page of the database is damaged.
        """
        try:
            row = self._conn.execute(
                "SELECT data FROM blocks WHERE height = ?", (height,)
            ).fetchone()
        except sqlite3.Error as exc:
            self._raise_read_error(exc, f"block {height}", height)
        if row is None:
            msg = f"no block at height {height} (store holds {self._height})"
            raise BlockNotFound(msg)
        return bytes(row[0])

    def block_at(self, height: int) -> Block:
        """Return the block at ``height`` (decoded from the stored bytes)."""
        return decode_block(self.block_bytes(height))

    def block_by_hash(self, block_hash: bytes) -> Block | None:
        """Return the block with that hash, or None.

        Raises:
            StoreCorrupted: the block found under that hash has another one,
                or the database is damaged.
        """
        block_hash = bytes(block_hash)
        try:
            row = self._conn.execute(
                "SELECT data FROM blocks WHERE hash = ?", (block_hash,)
            ).fetchone()
        except sqlite3.Error as exc:
            self._raise_read_error(exc, f"the block with hash {block_hash.hex()}", None)
        return None if row is None else block_with_hash(decode_block(bytes(row[0])), block_hash)

    def _trail_blocks(self) -> list[Block]:
        """The stored blocks above the ``indexed`` mark (call inside a read transaction)."""
        try:
            stop = self._stored_count()
            start = self._indexed_height()
        except sqlite3.Error as exc:
            self._raise_read_error(exc, "the height of the index mark", None)
        return [self.block_at(height) for height in range(start, stop)]

    def transaction(self, tx_id: bytes) -> Located[SignedTransaction] | None:
        """Return the transaction with that id and where it is, or None.

        Raises:
            StoreCorrupted: the index row points nowhere or at another
                transaction (``indexed_transaction``), or the database is damaged.
        """
        tx_id = bytes(tx_id)
        with self._snapshot():
            try:
                row = self._conn.execute(
                    "SELECT height, idx FROM txs WHERE tx_id = ?", (tx_id,)
                ).fetchone()
            except sqlite3.Error as exc:
                self._raise_read_error(exc, f"the index row of transaction {tx_id.hex()}", None)
            if row is not None:
                height, index = row
                return Located(
                    height, index, indexed_transaction(self.block_at(height), index, tx_id)
                )
            for block in self._trail_blocks():
                for index, data in enumerate(block.transactions):
                    if hashlib.sha256(data).digest() == tx_id:
                        return Located(block.height, index, decode_transaction(data))
        return None

    def results_by_account(
        self,
        account: bytes,
        kind: RecordKind | None = None,
        limit: int | None = None,
        before: Position | None = None,
    ) -> list[Located[ResultRecord]]:
        """Return the results naming ``account`` (see ``BlockStore.results_by_account``).

        Only the results returned are decoded: the index rows are read newest
        first, at most ``limit`` of them.
        """
        account = bytes(account)
        query = "SELECT height, idx, kind FROM account_results WHERE account = ?"
        params: list[object] = [account]
        if kind is not None:
            query += " AND kind = ?"
            params.append(int(kind))
        if before is not None:
            query += " AND (height, idx) < (?, ?)"
            params.extend(before)
        query += " ORDER BY height DESC, idx DESC"
        if limit is not None:
            query += " LIMIT ?"
            params.append(max(0, limit))
        with self._snapshot():
            try:
                rows = self._conn.execute(query, params).fetchall()
            except sqlite3.Error as exc:
                self._raise_read_error(exc, f"the index rows of account {account.hex()}", None)
            rows.reverse()
            indexed = {(h, i) for h, i, _ in rows}
            kinds = {(h, i): k for h, i, k in rows}
            # The blocks above the mark (a block or two) are newer than every indexed row.
            located: list[tuple[int, int, bytes | None]] = [(h, i, None) for h, i, _ in rows]
            for trail_block in self._trail_blocks():
                for index, data in enumerate(trail_block.results):
                    position = (trail_block.height, index)
                    if position in indexed or (before is not None and position >= before):
                        continue  # indexed by a writer since the mark was read, or not asked for
                    found_kind, accounts = result_accounts(data)
                    if account in accounts and (kind is None or found_kind == kind):
                        located.append((trail_block.height, index, data))
            found: list[Located[ResultRecord]] = []
            block: Block | None = None
            for height, index, stored in newest(located, limit):
                if stored is None:  # an indexed row: read its block, check the row against it
                    if block is None or block.height != height:
                        block = self.block_at(height)
                    record = indexed_result(block, index, account, kinds[height, index])
                else:
                    record = decode_result(stored)
                found.append(Located(height, index, record))
        return found

    @contextlib.contextmanager
    def _snapshot(self) -> Iterator[None]:
        """Run several reads on one snapshot of the database (a read transaction).

        A read that combines the index with the blocks above its mark must
        not see a writer index those blocks in between. Inside a write
        transaction (nothing to do) it runs as it is.
        """
        conn = self._conn
        if conn.in_transaction:
            yield
            return
        try:
            conn.execute("BEGIN")
        except sqlite3.Error as exc:
            self._raise_read_error(exc, "a snapshot", None)
        try:
            yield
        finally:
            conn.execute("COMMIT")

    def _check(self) -> None:
        """Check that the index tables match the stored blocks, O(total size); for tests.

        The blocks below the ``indexed`` mark must have exactly their rows,
        those above it (the trail) none.

        Raises:
            StoreCorrupted: an index row is missing, extra or wrong.
        """
        conn = self._conn
        count = conn.execute("SELECT COUNT(*) FROM blocks").fetchone()[0]
        if count != self._height:
            msg = f"{count} blocks stored, the store believes {self._height}"
            raise StoreCorrupted(msg)
        indexed = self._indexed_height()
        if not 0 <= indexed <= count:
            msg = f"the index is marked complete up to {indexed}, but {count} blocks are stored"
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
            if height >= indexed:
                continue
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

    def indexed_height(self) -> int:
        """The height below which every block's index rows are written (the ``indexed`` mark)."""
        try:
            return self._indexed_height()
        except sqlite3.Error as exc:
            self._raise_read_error(exc, "the index mark", None)

    def _rows(self, what: str, query: str) -> Iterator[tuple[object, ...]]:
        """The rows of ``query``, read in batches (an SQLite error is a ledger error)."""
        try:
            cursor = self._conn.execute(query)
        except sqlite3.Error as exc:
            self._raise_read_error(exc, what, None)
        try:
            while True:
                try:
                    batch = cursor.fetchmany(1024)
                except sqlite3.Error as exc:
                    self._raise_read_error(exc, what, None)
                if not batch:
                    return
                yield from batch
        finally:
            with contextlib.suppress(sqlite3.Error):
                cursor.close()  # an abandoned read must not hold its snapshot open

    def stored_hashes(self) -> Iterator[tuple[int, bytes]]:
        """(height, hash) of the ``blocks`` table's hash column, by height."""
        for height, block_hash in self._rows(
            "the block hashes", "SELECT height, hash FROM blocks ORDER BY height"
        ):
            yield int(height), bytes(block_hash)  # type: ignore[call-overload]

    def stored_tx_rows(self) -> Iterator[tuple[int, int, bytes]]:
        """(height, index, transaction id) of every ``txs`` row, in (height, index) order."""
        for height, index, tx_id in self._rows(
            "the transaction index", "SELECT height, idx, tx_id FROM txs ORDER BY height, idx"
        ):
            yield int(height), int(index), bytes(tx_id)  # type: ignore[call-overload]

    def stored_account_rows(self) -> Iterator[tuple[int, int, bytes, int]]:
        """(height, index, account, kind) of every ``account_results`` row, in that order."""
        for height, index, account, kind in self._rows(
            "the account index",
            "SELECT height, idx, account, kind FROM account_results"
            " ORDER BY height, idx, account, kind",
        ):
            yield int(height), int(index), bytes(account), int(kind)  # type: ignore[call-overload]

    def check_pages(self) -> str | None:
        """Run SQLite's ``integrity_check`` (pages, b-trees, indexes); None if it finds nothing.

        Not ``quick_check``: SQLite 3.40's reports "NULL value in
        account_results.kind" on a sound database (a WITHOUT ROWID table whose
        key order differs from its column order).
        """
        try:
            rows = [str(row[0]) for row in self._conn.execute("PRAGMA integrity_check(20)")]
        except sqlite3.Error as exc:
            return f"the database cannot be checked: {exc}"
        return None if rows == ["ok"] else "; ".join(rows)

    def close(self) -> None:
        """Close the database connection (idempotent)."""
        self._conn.close()

    def __enter__(self) -> SqliteBlockStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _index_leniently(
    block: Block, tx_ids: tuple[bytes, ...]
) -> tuple[BlockIndex, DecodeError | None]:
    """``block``'s index entries without the results that do not decode, and the first error."""
    rows, failed = account_rows(block)
    if failed is None:
        return BlockIndex(tx_ids, rows), None
    index, exc = failed
    return BlockIndex(tx_ids, rows), DecodeError(f"block {block.height}, result {index}: {exc}")


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
