"""The quorum audit: a block signed by the chain key alone is not final."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ledger.attestation import sign_attestation
from ledger.attestation_store import AttestationStore
from ledger.block import build_block
from ledger.keys import SigningKey, save_signing_key
from ledger.sqlite_store import SqliteBlockStore
from market import transactions as txn
from market.state import ExchangeState
from node.cluster.quorum_audit import check_quorum

CHAIN = "p2pex-local"
CHAIN_KEY = SigningKey.from_seed(b"\x07" * 32)
VALIDATORS = [SigningKey.from_seed(bytes([i + 10]) * 32) for i in range(3)]
PUBLIC = [k.public_key_bytes() for k in VALIDATORS]


def write_chain(path: Path, *, names: list[str], attest_by: list[list[int]]) -> SqliteBlockStore:
    """One block per name (a registration), attested by the given validators."""
    store = SqliteBlockStore(path)
    attestations = AttestationStore(path)
    state = ExchangeState(CHAIN, CHAIN_KEY.public_key_bytes())
    parent = None
    for height, name in enumerate(names):
        peer = SigningKey.from_seed(bytes([height + 100]) * 32)
        signed = txn.make(peer, CHAIN, 1, txn.RegisterPeer(name, "B1", "prosumer"))
        time_ns = 1_000 * (height + 1)
        results = list(state.begin_block(time_ns))
        results.extend(state.apply(signed).results)
        block = build_block(
            CHAIN_KEY,
            chain_id=CHAIN,
            parent=parent,
            time_ns=time_ns,
            transactions=[signed.to_bytes()],
            results=results,
            state_digest=state.state_digest(),
        )
        store.append(block)
        attestations.add(
            [sign_attestation(VALIDATORS[i], CHAIN, height, block.hash) for i in attest_by[height]]
        )
        parent = block.header
    attestations.close()
    return store


def test_every_block_with_a_majority_is_final(tmp_path: Path):
    path = tmp_path / "chain.sqlite3"
    store = write_chain(path, names=["a", "b", "c"], attest_by=[[0, 1], [1, 2], [0, 1, 2]])
    report = check_quorum(path, store, chain_id=CHAIN, validators=PUBLIC, quorum=2)
    store.close()
    assert report.ok and report.blocks == 3


def test_a_block_signed_by_the_chain_key_alone_is_not_final(tmp_path: Path):
    # the last block: a rogue validator (it holds the chain key) attests its own forgery
    path = tmp_path / "chain.sqlite3"
    store = write_chain(path, names=["a", "b", "forged"], attest_by=[[0, 1], [0, 1], [2]])
    report = check_quorum(path, store, chain_id=CHAIN, validators=PUBLIC, quorum=2)
    store.close()
    assert not report.ok
    assert (report.failed_height, report.found) == (2, 1)


def test_an_old_chain_without_the_table_fails_only_the_quorum_check(tmp_path: Path):
    path = tmp_path / "chain.sqlite3"
    store = SqliteBlockStore(path)
    block = build_block(CHAIN_KEY, chain_id=CHAIN, parent=None, time_ns=1, transactions=[])
    store.append(block)
    report = check_quorum(path, store, chain_id=CHAIN, validators=PUBLIC, quorum=2)
    store.close()
    assert (report.failed_height, report.found) == (0, 0)


@pytest.mark.slow
def test_chain_verify_checks_the_quorum(tmp_path: Path):
    data_dir = tmp_path / "node"
    data_dir.mkdir()
    store = write_chain(data_dir / "chain.sqlite3", names=["a", "b"], attest_by=[[0, 1], [2]])
    store.close()
    key_file = tmp_path / "chain.pem"
    save_signing_key(CHAIN_KEY, key_file)
    command = [sys.executable, "-m", "node", "chain", "verify", "--data-dir", str(data_dir)]
    command += ["--operator-key", str(key_file), "--workers", "1"]
    plain = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert plain.returncode == 0, plain.stdout + plain.stderr  # the ledger audit alone passes
    quorum = subprocess.run(
        [*command, "--validators", ",".join(p.hex() for p in PUBLIC)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert quorum.returncode == 1
    assert "quorum: FAILED at block 1: 1 of the 2 attestations" in quorum.stdout
