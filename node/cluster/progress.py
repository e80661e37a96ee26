"""Where a validator is in the shared log: the log position and log time after each block.

Written when a block is cut, before it is stored, so that after a crash
the entry for the stored head is always there. On restart the validator
replays its stored chain and reads the log again from the position after
its head block, with the log time it had there: the blocks it derives
next are the ones it would have derived without the crash.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS progress (
    height INTEGER PRIMARY KEY,
    position INTEGER NOT NULL,
    log_time INTEGER NOT NULL
)
"""


class Progress:
    """The ``progress`` table of a validator's data directory (``cluster.sqlite3``)."""

    def __init__(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(data_dir / "cluster.sqlite3", isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")  # a process crash loses nothing
        self._conn.execute(SCHEMA)

    def record(self, height: int, position: int, log_time: int) -> None:
        """The block at ``height`` ends before log ``position``, at ``log_time``."""
        self._conn.execute(
            "INSERT OR REPLACE INTO progress VALUES (?, ?, ?)", (height, position, log_time)
        )

    def resume(self, stored_height: int) -> tuple[int, int]:
        """(position, log time) to resume at with ``stored_height`` blocks stored."""
        if stored_height == 0:
            return 0, 0
        row = self._conn.execute(
            "SELECT position, log_time FROM progress WHERE height = ?", (stored_height - 1,)
        ).fetchone()
        if row is None:
            msg = f"no log position recorded for block {stored_height - 1}"
            raise LookupError(msg)
        return int(row[0]), int(row[1])

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()
