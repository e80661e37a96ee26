"""Attestations beside the chain: a table of their own in the chain's SQLite file.

The blocks' tables and their schema version are untouched: a chain file
without this table is an old chain, and reads as one with no attestations.
The table is written through its own connection (the block store's writer
owns the blocks); in WAL mode the two do not block each other's readers.
"""

from __future__ import annotations

import os
import sqlite3

from ledger.attestation import Attestation, decode_attestation
from ledger.errors import StoreError

SCHEMA = """
CREATE TABLE IF NOT EXISTS attestations (
    height INTEGER NOT NULL,
    validator BLOB NOT NULL,
    block_hash BLOB NOT NULL,
    record BLOB NOT NULL,
    PRIMARY KEY (height, validator, block_hash)
)
"""


class AttestationStore:
    """Stores attestation records by height (idempotent: the same record twice is one)."""

    def __init__(self, path: str | os.PathLike[str], *, readonly: bool = False) -> None:
        try:
            if readonly:
                uri = f"file:{os.fspath(path)}?mode=ro"
                self._conn = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=30)
            else:
                self._conn = sqlite3.connect(os.fspath(path), isolation_level=None, timeout=30)
                self._conn.execute("PRAGMA journal_mode=WAL")
                self._conn.execute(SCHEMA)
        except sqlite3.Error as exc:
            msg = f"cannot open the attestations of {path}: {exc}"
            raise StoreError(msg) from exc
        self.readonly = readonly

    def add(self, attestations: list[Attestation]) -> None:
        """Store attestations (checked by the caller), in one transaction."""
        rows = [(a.height, a.validator, a.block_hash, a.to_bytes()) for a in attestations]
        with self._conn:
            self._conn.execute("BEGIN")
            self._conn.executemany("INSERT OR IGNORE INTO attestations VALUES (?, ?, ?, ?)", rows)

    def at(self, height: int) -> list[Attestation]:
        """The stored attestations of one height."""
        return [decode_attestation(row[0]) for row in self._rows(height, height)]

    def by_height(self) -> dict[int, list[Attestation]]:
        """Every stored attestation, by height (an old chain: none)."""
        found: dict[int, list[Attestation]] = {}
        for (record,) in self._rows(0, (1 << 63) - 1):
            attestation = decode_attestation(record)
            found.setdefault(attestation.height, []).append(attestation)
        return found

    def heights(self) -> set[int]:
        """The heights with at least one stored attestation."""
        try:
            rows = self._conn.execute("SELECT DISTINCT height FROM attestations").fetchall()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return set()
            raise
        return {int(row[0]) for row in rows}

    def last_height(self) -> int:
        """The highest height with a stored attestation, or -1."""
        try:
            row = self._conn.execute("SELECT MAX(height) FROM attestations").fetchone()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return -1
            raise
        return -1 if row is None or row[0] is None else int(row[0])

    def _rows(self, low: int, high: int) -> list[tuple[bytes]]:
        try:
            rows: list[tuple[bytes]] = self._conn.execute(
                "SELECT record FROM attestations WHERE height BETWEEN ? AND ? "
                "ORDER BY height, validator",
                (low, high),
            ).fetchall()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return []  # a chain written before attestations
            raise
        return rows

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()
