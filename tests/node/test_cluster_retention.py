"""Bounded streams: purged below every validator's final block; catch-up after a purge.

Real NATS servers and validator processes on 127.0.0.1. A restarted
validator resumes from its own store plus the stream's retained tail; a
validator whose store was lost is behind that tail and catches up from a
peer validator over the network (``node.cluster.catchup``); without peers
it stops with a clear error, and a snapshot of a peer's store brings it back.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

import nats
import pytest

from ledger.keys import generate_signing_key
from market import transactions as txn
from node.client.clients import Client
from node.cluster.attestations import ATTEST_STREAM
from node.cluster.failover import FailoverClient
from node.cluster.localcluster import LocalCluster
from node.cluster.restore import restore_from_peer
from node.cluster.retention import Mark, decode_mark, encode_mark, lowest_mark
from node.errors import NodeTimeout
from node.pipeline.jetstream import DEFAULT_STREAM


def test_the_lowest_mark_needs_every_validator():
    marks = {b"a": Mark(4, 40), b"b": Mark(6, 35), b"c": Mark(9, 90)}
    assert lowest_mark(marks, [b"a", b"b", b"c"]) == Mark(4, 35)
    assert lowest_mark(marks, [b"a", b"b", b"c", b"d"]) is None  # d never marked
    assert decode_mark(encode_mark(Mark(4, 40))) == Mark(4, 40)
    for junk in (b"", b"\x93\x02\x01\x01", b"\x93\x01\xff\x01", b"\x92\x01\x01"):
        assert decode_mark(junk) is None


def _status(address: str) -> dict:
    with Client.connect(address, timeout=5) as client:
        return client.status()


def _wait(what, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = what()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"not reached in {timeout} s: {what.__doc__}")


def _same_head(addresses: list[str]) -> bytes | None:
    """every validator holds the same final head"""
    states = [_status(a) for a in addresses]
    heads = {(s["height"], s["head"]) for s in states}
    if len(heads) == 1 and all(s["final_height"] == s["height"] - 1 for s in states):
        return states[0]["head"]
    return None


def _removed(directory: Path) -> bool:
    """the directory is gone"""
    shutil.rmtree(directory, ignore_errors=True)
    return not directory.exists()


def _first_seqs(urls: list[str]) -> tuple[int, int]:
    """The first message each stream (log, attestations) still holds."""

    async def main() -> tuple[int, int]:
        nc = await nats.connect(servers=urls)
        try:
            js = nc.jetstream()
            found = [
                (await js.stream_info(s)).state.first_seq for s in (DEFAULT_STREAM, ATTEST_STREAM)
            ]
        finally:
            await nc.close()
        return int(found[0]), int(found[1])

    return asyncio.run(main())


def _trade(addresses: list[str], key, first: int, count: int) -> None:
    with FailoverClient(addresses, key, commit_timeout=90) as client:
        if first == 1:
            client.submit_committed(txn.RegisterPeer("retained", "B1", "prosumer"))
        for n in range(first, first + count):
            order = txn.PlaceOrder("electricity", 1, "bid", 100, 1_000, "GTC", 0, False, "", n)
            client.submit_committed(order)


@pytest.mark.slow
def test_streams_are_purged_and_validators_catch_up_after_a_purge(tmp_path: Path):
    with LocalCluster(tmp_path, validator_args=("--purge-step", "1")) as cluster:
        assert cluster.nats is not None
        urls = cluster.nats.urls
        key = generate_signing_key()
        _trade(cluster.addresses, key, 1, 12)

        def purged() -> tuple[int, int] | None:
            """both streams were purged"""
            seqs = _first_seqs(urls)
            return seqs if min(seqs) > 1 else None

        log_first, _ = _wait(purged)

        # a restart: the validator resumes from its store and the stream's tail
        cluster.validators[2].kill()
        _trade(cluster.addresses[:2], key, 13, 6)
        cluster.validators[2].start()
        _trade(cluster.addresses, key, 19, 6)
        head = _wait(lambda: _same_head(cluster.addresses))
        head_height = _status(cluster.addresses[0])["height"]

        def moved_on() -> int | None:
            """the purge passed the point it had reached before the restart"""
            first = _first_seqs(urls)[0]
            return first if first > log_first else None

        _wait(moved_on)
        assert all(_status(a)["divergent"] == [] for a in cluster.addresses)

        # a lost store: behind the retained tail, it catches up from a peer by itself
        lagging = cluster.validators[2]
        lagging.kill()
        _wait(lambda: _removed(lagging.data_dir))  # its worker processes may still be closing
        assert "--peers" in lagging.command()
        lagging.start()
        status = _status(lagging.address)
        assert status["height"] >= head_height  # before any new block
        assert status["caught_up"]["from"] == 0
        assert status["caught_up"]["peer"] in cluster.addresses[:2]
        _trade(cluster.addresses, key, 25, 3)
        head = _wait(lambda: _same_head(cluster.addresses))
        assert all(_status(a)["divergent"] == [] for a in cluster.addresses)

        # without peers to catch up from, it stops with a clear error ...
        lagging.kill()
        _wait(lambda: _removed(lagging.data_dir))
        peers, lagging.peers = lagging.peers, list
        with pytest.raises(NodeTimeout, match="no longer holds message 1") as failed:
            lagging.start()
        assert "copy a stopped or idle peer validator's data directory" in str(failed.value)

        # ... and a snapshot of a peer's store brings it back
        restore_from_peer(cluster.validators[1].data_dir, lagging.data_dir)
        lagging.start()
        lagging.peers = peers
        _trade(cluster.addresses, key, 28, 3)
        assert _wait(lambda: _same_head(cluster.addresses)) != head
