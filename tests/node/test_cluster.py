"""Ordering on a replicated JetStream log: markers, attestations, and real processes.

The slow tests run NATS servers and validators as processes on 127.0.0.1;
``LocalCluster`` stops every one of them when the test ends, whatever happened.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ledger.attestation import (
    QuorumNotReached,
    count_quorum,
    decode_attestation,
    default_quorum,
    sign_attestation,
    validate_quorum,
)
from ledger.keys import generate_signing_key
from market import transactions as txn
from node.client.clients import Client
from node.cluster.failover import FailoverClient
from node.cluster.localcluster import LocalCluster
from node.pipeline.log_time import LogTimePolicy, decode_tick, encode_tick, is_marker

CHAIN = "p2pex-local"


# -- markers and the boundary policy (pure) -------------------------------------------------------


def test_tick_round_trips_and_is_never_a_transaction():
    entry = encode_tick(1_700_000_000_000_000_000)
    assert decode_tick(entry) == 1_700_000_000_000_000_000
    assert is_marker(entry)
    key = generate_signing_key()
    tx = txn.make(key, CHAIN, 1, txn.RegisterPeer("alice", "B1", "prosumer")).to_bytes()
    assert not is_marker(tx)
    assert decode_tick(entry[:-1]) is None
    assert decode_tick(b"\xc1junk") is None


def test_policy_cuts_at_the_first_tick_an_interval_after_the_block_time():
    policy = LogTimePolicy(interval_ns=50, log_time=0)
    assert not policy.read_marker(encode_tick(1_000), None)  # no block open
    opened = policy.open_time(state_time=0)
    assert opened == 1_000
    assert not policy.read_marker(encode_tick(1_049), opened)
    assert not policy.read_marker(encode_tick(900), opened)  # an older tick: log time stays
    assert policy.log_time == 1_049
    assert policy.read_marker(encode_tick(1_050), opened)
    assert policy.open_time(state_time=5_000) == 5_000  # never before the state's time


def test_clearing_ranks_are_a_permutation_that_changes_with_the_slot():
    from node.cluster.clearing import clearing_rank

    keys = [bytes([i]) * 32 for i in range(3)]
    firsts = set()
    for slot in range(30):
        ranks = [clearing_rank("electricity", slot, key, keys) for key in keys]
        assert sorted(ranks) == [0, 1, 2]
        assert ranks == [clearing_rank("electricity", slot, k, keys[::-1]) for k in keys]
        firsts.add(ranks.index(0))
    assert firsts == {0, 1, 2}  # the work is spread over the validators


# -- attestations (pure) ---------------------------------------------------------------------------


def test_quorum_counts_valid_signatures_of_the_same_hash_by_distinct_validators():
    keys = [generate_signing_key() for _ in range(3)]
    validators = [k.public_key_bytes() for k in keys]
    block = b"\x11" * 32
    other = b"\x22" * 32
    outsider = generate_signing_key()
    attestations = [
        sign_attestation(keys[0], CHAIN, 5, block),
        sign_attestation(keys[0], CHAIN, 5, block),  # the same validator twice counts once
        sign_attestation(keys[1], CHAIN, 5, other),  # another block
        sign_attestation(outsider, CHAIN, 5, block),  # not a validator
        sign_attestation(keys[2], "other-chain", 5, block),
    ]
    assert count_quorum(5, block, attestations, chain_id=CHAIN, validators=validators) == {
        validators[0]
    }
    with pytest.raises(QuorumNotReached):
        validate_quorum(5, block, attestations, chain_id=CHAIN, validators=validators, quorum=2)
    attestations.append(sign_attestation(keys[2], CHAIN, 5, block))
    signers = validate_quorum(
        5, block, attestations, chain_id=CHAIN, validators=validators, quorum=2
    )
    assert signers == {validators[0], validators[2]}
    assert default_quorum(3) == 2 and default_quorum(4) == 3 and default_quorum(7) == 4


def test_a_forged_attestation_does_not_count():
    key = generate_signing_key()
    good = sign_attestation(key, CHAIN, 1, b"\x33" * 32)
    assert decode_attestation(good.to_bytes()) == good
    forged = decode_attestation(good.to_bytes().replace(b"\x33" * 32, b"\x44" * 32))
    assert not forged.verifies()
    assert not count_quorum(
        1, b"\x44" * 32, [forged], chain_id=CHAIN, validators=[key.public_key_bytes()]
    )


# -- real processes --------------------------------------------------------------------------


def _status(address: str) -> dict:
    with Client.connect(address, timeout=5) as client:
        return client.status()


def _wait_same_head(addresses: list[str], timeout: float = 60.0) -> bytes:
    """Wait until every address reports the same final head; return its hash."""
    deadline = time.monotonic() + timeout
    last: list = []
    while time.monotonic() < deadline:
        last = [_status(a) for a in addresses]
        heads = {(s["height"], s["head"]) for s in last}
        if len(heads) == 1 and all(s["final_height"] == s["height"] - 1 for s in last):
            return last[0]["head"]
        time.sleep(0.2)
    raise AssertionError(f"heads differ: {[(s['height'], s['head'].hex()[:12]) for s in last]}")


def _verify(cluster: LocalCluster, name: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "node",
            "chain",
            "verify",
            "--data-dir",
            str(cluster.root / name),
            "--operator-key",
            str(cluster.chain_key),
            "--validators",
            ",".join(cluster.public_keys),
            "--workers",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.slow
def test_clients_fail_over_when_their_validator_and_a_nats_server_are_killed(tmp_path: Path):
    clients = 4
    orders = 30  # per client
    committed: dict[bytes, int] = {}
    errors: list[BaseException] = []
    progress = threading.Semaphore(0)
    lock = threading.Lock()

    with LocalCluster(tmp_path) as cluster:
        first = cluster.addresses[0]
        rotation = [*cluster.addresses]

        def trade(i: int) -> None:
            key = generate_signing_key()
            try:
                with FailoverClient(rotation, key, commit_timeout=90) as client:
                    assert client.address == first
                    client.submit_committed(txn.RegisterPeer(f"peer{i}", "B1", "prosumer"))
                    for n in range(orders):
                        side, price = ("bid", 100 + n % 5) if i % 2 else ("ask", 120 + n % 5)
                        order = txn.PlaceOrder(
                            "electricity", 1, side, price, 1_000, "GTC", 0, False, "", n + 1
                        )
                        tx_id, height = client.submit_committed(order)
                        with lock:
                            committed[tx_id] = height
                        progress.release()
            except BaseException as exc:  # reported by the main thread
                errors.append(exc)

        threads = [threading.Thread(target=trade, args=(i,), daemon=True) for i in range(clients)]
        for thread in threads:
            thread.start()
        for _ in range(clients * 5):  # every client is trading
            assert progress.acquire(timeout=90), errors
        cluster.validators[0].kill()  # the validator every client uses
        assert cluster.nats is not None
        cluster.nats.servers[0].kill()  # and a NATS server
        for thread in threads:
            thread.join(timeout=240)
        assert not errors, errors
        assert not any(t.is_alive() for t in threads)
        assert len(committed) == clients * orders

        survivors = cluster.addresses[1:]
        head = _wait_same_head(survivors)
        with Client.connect(survivors[0], timeout=10) as reader:
            for tx_id, height in committed.items():
                assert reader.transaction(tx_id)["height"] == height

        # the crashed validator comes back: it catches up from its store and the stream
        cluster.nats.servers[0].start()
        cluster.validators[0].start()
        assert _wait_same_head(cluster.addresses) == head
        for status in (_status(a) for a in cluster.addresses):
            assert status["divergent"] == []

    for name in ("validator1", "validator2", "validator3"):
        result = _verify(cluster, name)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "quorum: OK" in result.stdout


@pytest.mark.slow
def test_a_validator_reading_another_order_is_reported(tmp_path: Path):
    # validator 3 reads a stream of its own: the same transactions, in the other order
    own = {2: ("--log-stream", "P2PEX_ROGUE")}
    with LocalCluster(tmp_path, own_args=own) as cluster:
        honest, rogue = cluster.addresses[:2], cluster.addresses[2]
        alice, bob = generate_signing_key(), generate_signing_key()
        for key, name in ((alice, "alice"), (bob, "bob")):
            with FailoverClient(honest, key) as client:
                client.submit_committed(txn.RegisterPeer(name, "B1", "prosumer"))
        sent = []
        for key, name in ((bob, "bob"), (alice, "alice")):  # the same bytes: nonce 1 each
            with Client.connect(rogue, key=key, timeout=10) as client:
                sent.append(client.register(name, bus="B1", role="prosumer").tx_id)
        with Client.connect(honest[0], timeout=10) as reader:  # the honest chain holds both
            positions = [
                (reader.transaction(t)["height"], reader.transaction(t)["index"]) for t in sent
            ]
        assert positions != sorted(positions)  # bob's registration came second there
        deadline = time.monotonic() + 60
        reports: list = []
        while time.monotonic() < deadline:
            reports = [_status(a)["divergent"] for a in honest]
            if all(reports):
                break
            time.sleep(0.2)
        rogue_key = bytes.fromhex(cluster.public_keys[2])
        for report in reports:
            assert report, "the divergent validator was not reported"
            height, validator, _theirs, _ours = report[0]
            assert (height, validator) == (0, rogue_key)
        assert _status(rogue)["final_height"] == -1  # its blocks never reach a quorum


@pytest.mark.slow
def test_demo_on_a_cluster_ends_with_identical_heads_and_a_passing_audit():
    result = subprocess.run(
        [sys.executable, "-m", "node", "demo", "--cluster", "--slots", "1"],
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "all three nodes hold the identical chain" in result.stdout
    assert result.stdout.count("quorum OK") == 3
    assert result.stdout.rstrip().endswith("demo OK")
