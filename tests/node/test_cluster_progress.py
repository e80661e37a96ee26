"""A validator's progress table: log points by height, and tables of the older log format."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from node.cluster.progress import Progress
from node.pipeline.jetstream import LogPoint, decode_batch, encode_batch


def test_the_point_after_the_stored_head_is_where_a_restart_resumes(tmp_path: Path):
    progress = Progress(tmp_path)
    assert progress.resume(0) == (LogPoint(), 0)
    progress.record(0, LogPoint(3, 2, 1), 111)
    progress.record(1, LogPoint(9, 4, 0), 222)
    progress.close()
    reopened = Progress(tmp_path)
    assert reopened.resume(2) == (LogPoint(9, 4, 0), 222)
    assert reopened.resume(1) == (LogPoint(3, 2, 1), 111)
    reopened.prune(1)
    with pytest.raises(LookupError, match="block 0"):
        reopened.resume(1)
    reopened.close()


def test_a_table_of_the_one_entry_per_message_log_resumes_at_position_plus_one(tmp_path: Path):
    conn = sqlite3.connect(tmp_path / "cluster.sqlite3")
    conn.execute(
        "CREATE TABLE progress (height INTEGER PRIMARY KEY, position INTEGER NOT NULL, "
        "log_time INTEGER NOT NULL)"
    )
    conn.execute("INSERT INTO progress VALUES (0, 7, 555)")
    conn.commit()
    conn.close()
    progress = Progress(tmp_path)
    assert progress.resume(1) == (LogPoint(7, 8, 0), 555)
    progress.record(1, LogPoint(12, 10, 2), 600)
    assert progress.resume(2) == (LogPoint(12, 10, 2), 600)
    progress.close()


def test_a_message_that_is_not_a_batch_holds_no_entries():
    assert decode_batch(encode_batch([b"\xc1tick", b"tx"])) == [b"\xc1tick", b"tx"]
    for junk in (b"", b"\xc1", encode_batch([])[:0], b"\x92\xa1a\xa1b", b"\x81\xc4\x01a\xc4\x01b"):
        assert decode_batch(junk) == []
    assert decode_batch(encode_batch([b"a"]) + b"trailing") == []
