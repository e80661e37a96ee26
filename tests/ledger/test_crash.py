"""Crash safety of the SQLite store: SIGKILL a writer at random moments, 50 times.

A forked child appends small blocks in a loop and writes each height to a
pipe once ``append`` has returned (the block is then reported committed);
every other block is appended with ``index_later`` and indexed after it is
reported, so some kills leave a trail that reopening must index.
The parent kills it with SIGKILL after a random 20-300 ms, reopens the store
and checks that it opens (its head is consistent), that every reported block
is there, that at most the one block in flight beyond them is there, and that
the audit passes. Each audit covers the blocks added since the previous one
and their link to the block before, so every block is audited once and the
whole hash chain is checked (a full audit at the end would double the
test's time). Seed: ``P2PEX_CRASH_SEED`` (printed).
"""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import sqlite3
import time

import pytest

from ledger import SqliteBlockStore, audit_chain, build_block
from tests.ledger.chainkit import AUDIT_ARGS, CHAIN_ID, OPERATOR, PEERS, T0, order, results_for

pytestmark = pytest.mark.slow  # 50 child processes, ~13 s

KILLS = 50
TABLES = ("txs", "account_results")


def _append_forever(path: str, write_fd: int) -> None:
    """Child: append one block after another, reporting each committed height."""
    store = SqliteBlockStore(path)
    parent = store.head()
    while True:
        height = 0 if parent is None else parent.height + 1
        txs = [order(PEERS[height % len(PEERS)], height + 1), order(OPERATOR, height + 1)]
        block = build_block(
            OPERATOR,
            chain_id=CHAIN_ID,
            parent=parent,
            time_ns=T0 + height,
            transactions=txs,
            results=results_for(txs, height),
        )
        # Odd heights as the operator's writer appends: the block, reported
        # committed, then its index rows (a kill can land in between).
        later = height % 2 == 1
        store.append(block, index_later=later)
        os.write(write_fd, b"%d\n" % height)
        if later:
            store.index_trail()
        parent = block.header


def _reported(read_fd: int) -> list[int]:
    chunks = []
    while True:
        chunk = os.read(read_fd, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    return [int(line) for line in b"".join(chunks).split()]


def test_sigkill_at_random_moments_loses_nothing_committed(tmp_path):
    seed = int(os.environ.get("P2PEX_CRASH_SEED", "20260604"))
    print(f"crash test seed {seed} (set P2PEX_CRASH_SEED to replay)")
    rng = random.Random(seed)
    path = str(tmp_path / "crash.db")
    SqliteBlockStore(path).close()  # create the schema once
    context = multiprocessing.get_context("fork")
    committed = -1  # highest height reported committed so far
    audited = 0  # blocks below this height have been audited
    mid_run_kills = 0
    for kill in range(KILLS):
        read_fd, write_fd = os.pipe()
        child = context.Process(target=_append_forever, args=(path, write_fd), daemon=True)
        child.start()
        os.close(write_fd)
        time.sleep(rng.uniform(0.020, 0.300))
        os.kill(child.pid, signal.SIGKILL)
        child.join()
        assert child.exitcode == -signal.SIGKILL
        heights = _reported(read_fd)
        os.close(read_fd)
        if heights:
            assert heights == list(range(committed + 1, heights[-1] + 1))
            committed = heights[-1]
            mid_run_kills += 1
        with SqliteBlockStore(path) as store:  # opening checks the head
            # every reported block is there, plus at most the one in flight
            assert committed + 1 <= store.height <= committed + 2, (kill, store.height, committed)
            committed = store.height - 1  # an unreported commit is still committed
            report = audit_chain(store, start=max(0, audited - 1), **AUDIT_ARGS)
            assert report.ok, f"kill {kill} (seed {seed}): {report.describe()}"
            audited = store.height
        # every stored block has all its index rows: 2 transactions and 4
        # account rows (trade maker + taker, settlement, event) per block
        conn = sqlite3.connect(path)
        txs, rows = (conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in TABLES)
        conn.close()
        assert (txs, rows) == (2 * audited, 4 * audited), kill
    print(f"{mid_run_kills} of {KILLS} kills landed after the child's first append")
    assert mid_run_kills >= KILLS * 9 // 10  # the children did get to append
    with SqliteBlockStore(path) as store:
        assert store.height == audited == committed + 1
        store._check()  # every index row matches the stored blocks
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
