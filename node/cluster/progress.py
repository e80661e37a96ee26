"""Where a validator is in the shared log: the log point and log time after each block.

Written when a block is cut, before it is stored, so that after a crash
the entry for the stored head is always there. On restart the validator
replays its stored chain and reads the log again from the point after
its head block (position, and the stream message and index it is at),
with the log time it had there: the blocks it derives next are the ones
it would have derived without the crash.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from node.pipeline.jetstream import LogPoint

SCHEMA = """
CREATE TABLE IF NOT EXISTS progress (
    height INTEGER PRIMARY KEY,
    position INTEGER NOT NULL,
    log_time INTEGER NOT NULL,
    seq INTEGER,
    offset INTEGER
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
        columns = {row[1] for row in self._conn.execute("PRAGMA table_info(progress)")}
        for column in ("seq", "offset"):  # a table of a version with one entry per message
            if column not in columns:
                self._conn.execute(f"ALTER TABLE progress ADD COLUMN {column} INTEGER")

    def record(self, height: int, point: LogPoint, log_time: int) -> None:
        """The block at ``height`` ends before log ``point``, at ``log_time``."""
        self._conn.execute(
            "INSERT OR REPLACE INTO progress VALUES (?, ?, ?, ?, ?)",
            (height, point.position, log_time, point.seq, point.offset),
        )

    def resume(self, stored_height: int) -> tuple[LogPoint, int]:
        """(log point, log time) to resume at with ``stored_height`` blocks stored."""
        if stored_height == 0:
            return LogPoint(), 0
        found = self.point(stored_height - 1)
        if found is None:
            msg = f"no log position recorded for block {stored_height - 1}"
            raise LookupError(msg)
        return found

    def point(self, height: int) -> tuple[LogPoint, int] | None:
        """(log point, log time) after the block at ``height``, if recorded (and not pruned).

        Every validator derives the same points, so a peer serves this to a
        validator that catches up (``node.cluster.catchup``).
        """
        row = self._conn.execute(
            "SELECT position, log_time, seq, offset FROM progress WHERE height = ?",
            (height,),
        ).fetchone()
        if row is None:
            return None
        position = int(row[0])
        seq = position + 1 if row[2] is None else int(row[2])  # one entry per message before
        return LogPoint(position, seq, int(row[3] or 0)), int(row[1])

    def prune(self, below_height: int) -> None:
        """Forget the points of blocks below ``below_height`` (only the head's is ever read)."""
        self._conn.execute("DELETE FROM progress WHERE height < ?", (below_height,))

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()
