"""The ledger audit of a stored chain on several processes reports what the serial one does."""

from __future__ import annotations

import os
import sqlite3

import pytest

from ledger import SqliteBlockStore, audit_chain
from node.pipeline.parallel_audit import MIN_BLOCKS_PER_WORKER, audit_file, default_workers
from tests.ledger.chainkit import AUDIT_ARGS, fill, make_chain

pytestmark = pytest.mark.slow  # worker processes


@pytest.fixture(scope="module")
def chain_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("audit") / "chain.sqlite3"
    with SqliteBlockStore(path) as store:
        fill(store, make_chain(12, 3))
    return path


def serial(path):
    with SqliteBlockStore(path, readonly=True) as store:
        return audit_chain(store, **AUDIT_ARGS)


def test_a_clean_chain_passes_on_two_processes(chain_file):
    report = audit_file(chain_file, workers=2, **AUDIT_ARGS)
    want = serial(chain_file)
    assert report.ok and want.ok
    assert (report.blocks, report.transactions, report.head_hash) == (
        want.blocks,
        want.transactions,
        want.head_hash,
    )


@pytest.mark.parametrize("height", [1, 7, 11])
def test_a_tampered_block_is_reported_like_the_serial_audit(chain_file, tmp_path, height):
    path = tmp_path / "chain.sqlite3"
    path.write_bytes(chain_file.read_bytes())
    conn = sqlite3.connect(path)
    (data,) = conn.execute("SELECT data FROM blocks WHERE height = ?", (height,)).fetchone()
    flipped = bytearray(data)
    flipped[-3] ^= 0x10  # inside the last result record
    conn.execute("UPDATE blocks SET data = ? WHERE height = ?", (bytes(flipped), height))
    conn.commit()
    conn.close()
    report = audit_file(path, workers=2, **AUDIT_ARGS)
    want = serial(path)
    assert not report.ok
    assert report.describe() == want.describe()
    assert report.first_bad_height == height
    assert type(report.error) is type(want.error)


def test_default_workers_leaves_small_chains_serial():
    cores = os.cpu_count() or 1
    assert default_workers(MIN_BLOCKS_PER_WORKER - 1) == 1
    assert default_workers(2 * MIN_BLOCKS_PER_WORKER) == min(2, cores)
    assert default_workers(10_000) == cores
