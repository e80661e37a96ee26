"""``p2pex chain verify | prove`` on damaged and foreign chains: typed failures, a pinned key.

Every damaged store must end in "FAILED at block N: reason" and exit code 1,
never a traceback or a "proof OK"; a chain is verified against the operator
key pinned in its data directory, and without a pin the user is warned.
"""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
from pathlib import Path

import msgpack
import pytest

from ledger.block import Block
from ledger.keys import SigningKey
from ledger.sqlite_store import SqliteBlockStore
from ledger.transactions import TX_DOMAIN_TAG
from market import transactions as txn
from market.state import ExchangeState
from node.cli.main import main
from node.errors import ConfigError, InvalidTransaction
from node.pipeline import chain

CHAIN = "p2pex-local"
OPERATOR = SigningKey.from_seed(b"\x17" * 32)
INTRUDER = SigningKey.from_seed(b"\x66" * 32)
PEERS = [SigningKey.from_seed(hashlib.sha256(b"peer %d" % i).digest()) for i in range(24)]


def build_chain(signer: SigningKey, *, price: int = 100) -> list[Block]:
    """Block 0: the peers register; block 1: one sells; block 2: another buys (a trade)."""
    state = ExchangeState(CHAIN, signer.public_key_bytes())
    seller, buyer = PEERS[0], PEERS[1]
    batches = [
        [
            txn.make(peer, CHAIN, 1, txn.RegisterPeer(f"peer {i}" * 4, f"B{i}", "prosumer"))
            for i, peer in enumerate(PEERS)
        ],
        [
            txn.make(
                seller,
                CHAIN,
                2,
                txn.PlaceOrder("electricity", 1, "ask", price, 500, "GTC", 0, False, "", 1),
            )
        ],
        [
            txn.make(
                buyer,
                CHAIN,
                2,
                txn.PlaceOrder("electricity", 1, "bid", 120, 200, "GTC", 0, False, "", 1),
            )
        ],
    ]
    blocks: list[Block] = []
    for i, batch in enumerate(batches):
        results = state.begin_block(1_000 + i)
        results += [r for signed in batch for r in state.apply(signed).results]
        blocks.append(
            chain.build(
                signer,
                chain_id=CHAIN,
                parent=blocks[-1].header if blocks else None,
                time_ns=1_000 + i,
                transactions=[s.to_bytes() for s in batch],
                results=results,
                state_digest=state.state_digest(),
            )
        )
    return blocks


def data_dir(path: Path, blocks: list[Block], *, pin: bytes | None) -> Path:
    with SqliteBlockStore(chain.store_file(path)) as store:
        for block in blocks:
            store.append(block)
    if pin is not None:
        assert chain.pin_operator_key(path, pin)
    return path


def sql(path: Path, statement: str, params: tuple[object, ...] = ()) -> None:
    conn = sqlite3.connect(path / "chain.sqlite3")
    conn.execute(statement, params)
    conn.commit()
    conn.close()


@pytest.fixture(scope="module")
def honest() -> list[Block]:
    return build_chain(OPERATOR)


@pytest.fixture
def pinned(tmp_path, honest) -> Path:
    return data_dir(tmp_path / "data", honest, pin=OPERATOR.public_key_bytes())


def verify(directory: Path, *flags: str) -> int:
    return main(["chain", "verify", "--data-dir", str(directory), "--workers", "1", *flags])


def test_a_pinned_chain_verifies_against_its_pin_without_a_warning(pinned, capsys):
    assert verify(pinned) == 0
    out, err = capsys.readouterr()
    assert "ledger audit: OK: 3 blocks" in out and "replay: OK" in out
    assert "indexes: OK: 3 block hashes, 26 transaction rows" in out
    assert "WARNING" not in err


def test_without_a_pin_the_genesis_signer_is_trusted_loudly(tmp_path, honest, capsys):
    directory = data_dir(tmp_path / "data", honest, pin=None)
    assert verify(directory) == 0
    err = capsys.readouterr().err
    assert "WARNING" in err and OPERATOR.public_key_bytes().hex() in err
    assert verify(directory, "--operator-public-key", OPERATOR.public_key_bytes().hex()) == 0
    assert "WARNING" not in capsys.readouterr().err


def test_a_chain_re_signed_by_another_key_fails_against_the_pin(tmp_path, capsys):
    # the intruder rebuilds the whole chain from genesis with a cheaper trade
    forged = build_chain(INTRUDER, price=1)
    directory = data_dir(tmp_path / "data", forged, pin=OPERATOR.public_key_bytes())
    assert verify(directory) == 1
    assert "ledger audit: FAILED at block 0: UnauthorisedProposer" in capsys.readouterr().out
    # what the issue saw: without a pin it passes, but now not silently
    unpinned = data_dir(tmp_path / "other", forged, pin=None)
    assert verify(unpinned) == 0
    assert "WARNING" in capsys.readouterr().err


def test_a_forged_tx_row_proves_nothing_and_fails_verify(pinned, capsys):
    forged = hashlib.sha256(b"in no block").digest().hex()
    sql(pinned, "INSERT INTO txs (tx_id, height, idx) VALUES (?, 1, 0)", (bytes.fromhex(forged),))
    assert main(["chain", "prove", "--data-dir", str(pinned), "--tx", forged]) == 1
    out = capsys.readouterr().out
    assert "proof OK" not in out and "proof: FAILED at block 1: StoreCorrupted" in out
    assert verify(pinned) == 1
    assert "ledger audit: FAILED at block 1: StoreCorrupted" in capsys.readouterr().out


def test_a_tx_row_past_the_block_is_a_typed_failure(pinned, honest, capsys):
    past = hashlib.sha256(b"past").digest()
    sql(pinned, "INSERT INTO txs (tx_id, height, idx) VALUES (?, 2, 40)", (past,))
    assert main(["chain", "prove", "--data-dir", str(pinned), "--tx", past.hex()]) == 1
    assert "proof: FAILED at block 2" in capsys.readouterr().out
    real = hashlib.sha256(honest[2].transactions[0]).hexdigest()
    assert main(["chain", "prove", "--data-dir", str(pinned), "--tx", real]) == 0
    assert "proof OK: the transaction is in the block" in capsys.readouterr().out


@pytest.mark.parametrize("height", [0, 1])
def test_a_bad_stored_hash_fails_at_its_block(pinned, height, capsys):
    sql(pinned, "UPDATE blocks SET hash = ? WHERE height = ?", (bytes(32), height))
    assert verify(pinned) == 1
    assert f"FAILED at block {height}: StoreCorrupted" in capsys.readouterr().out


def test_a_missing_block_is_named(pinned, capsys):
    sql(pinned, "DELETE FROM blocks WHERE height = 1")
    assert verify(pinned) == 1
    out = capsys.readouterr().out
    assert "FAILED at block 1: StoreCorrupted" in out and "block 1 is missing" in out


def test_corrupt_pages_end_in_failed_not_a_traceback(pinned, tmp_path, capsys):
    source = pinned / "chain.sqlite3"
    page = 4096
    named = 0
    for number in range(1, source.stat().st_size // page):
        copy = tmp_path / f"page{number}"
        copy.mkdir()
        shutil.copy(source, copy / "chain.sqlite3")
        shutil.copy(pinned / chain.OPERATOR_PIN, copy / chain.OPERATOR_PIN)
        with (copy / "chain.sqlite3").open("r+b") as f:
            f.seek(number * page)
            f.write(bytes([0x5A]) * page)
        code = verify(copy)  # an escaping sqlite3 error fails the test here
        out = capsys.readouterr().out
        assert code in (0, 1)
        if code == 1:
            assert "FAILED" in out, out
            named += "FAILED at block" in out
    assert named > 0


def test_the_pin_is_written_once_and_refuses_another_key(tmp_path):
    directory = tmp_path / "data"
    assert chain.pinned_operator_key(directory) is None
    assert chain.pin_operator_key(directory, OPERATOR.public_key_bytes()) is True
    assert chain.pin_operator_key(directory, OPERATOR.public_key_bytes()) is False
    assert chain.pinned_operator_key(directory) == OPERATOR.public_key_bytes()
    with pytest.raises(ConfigError, match="pinned to operator"):
        chain.pin_operator_key(directory, INTRUDER.public_key_bytes())
    with pytest.raises(ConfigError, match="pinned to operator"):
        chain.open_store(directory, INTRUDER.public_key_bytes())
    store = chain.open_store(directory, OPERATOR.public_key_bytes())
    store.close()
    (directory / chain.OPERATOR_PIN).write_text("not hex\n")
    with pytest.raises(ConfigError):
        chain.pinned_operator_key(directory)


def test_node_txn_decode_refuses_a_boolean_flag():
    key = PEERS[0]
    payload = txn.PlaceOrder("electricity", 1, "bid", 120, 200, "GTC", 0, True, "", 1)
    good = txn.make(key, CHAIN, 1, payload)
    body = msgpack.unpackb(good.body)
    assert body[5][7] == 1
    body[5][7] = True
    forged_body = msgpack.packb(body, use_bin_type=True)
    forged = msgpack.packb(
        [1, 1, forged_body, key.sign(TX_DOMAIN_TAG + forged_body)], use_bin_type=True
    )
    assert txn.decode(good.to_bytes()) == good
    with pytest.raises(InvalidTransaction, match="post_only"):
        txn.decode(forged)
