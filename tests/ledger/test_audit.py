"""The audit finds the first bad block and why; segments merge like a serial audit; proofs."""

from __future__ import annotations

import dataclasses
import hashlib
import pickle
import random
import sqlite3

import pytest

from ledger import (
    BadBlockSignature,
    BadHeight,
    BadNonce,
    BadParentHash,
    BadRecord,
    BadResultRoot,
    BadTransactionRoot,
    Block,
    DecodeError,
    MemoryBlockStore,
    ProofIndexError,
    ProofLengthError,
    RootMismatch,
    SqliteBlockStore,
    UnauthorisedProposer,
    UnsupportedVersion,
    WrongChainId,
    audit_chain,
    audit_segment,
    build_block,
    decode_block,
    decode_inclusion_proof,
    encode,
    merge_segments,
    prove_result,
    prove_transaction,
    sign_block,
    split_heights,
    verify_inclusion_proof,
)
from ledger.codec import decode
from tests.ledger.chainkit import (
    AUDIT_ARGS,
    CHAIN_ID,
    OPERATOR,
    PEERS,
    T0,
    fill,
    make_chain,
    order,
)

SEED = 4242

HEADER_FIELD_ERRORS = {
    "version": UnsupportedVersion,
    "chain_id": WrongChainId,
    "height": BadHeight,
    "prev_hash": BadParentHash,
    "proposer": UnauthorisedProposer,
    "time_ns": BadBlockSignature,
    "tx_root": BadBlockSignature,
    "result_root": BadBlockSignature,
    "state_digest": BadBlockSignature,
}


def expected_error(original: Block, tampered: bytes) -> type[Exception]:
    """What a correct audit must report for the tampered bytes of ``original``."""
    try:
        block = decode_block(tampered)
    except DecodeError:
        return DecodeError
    if block.header != original.header:
        changed = [
            name
            for name in HEADER_FIELD_ERRORS
            if getattr(block.header, name) != getattr(original.header, name)
        ]
        assert len(changed) == 1
        return HEADER_FIELD_ERRORS[changed[0]]
    if block.signature != original.signature:
        return BadBlockSignature
    if block.transactions != original.transactions:
        return BadTransactionRoot
    assert block.results != original.results
    return BadResultRoot


class SqliteTamper:
    """Rewrite a block's stored bytes in the database, behind the store's back."""

    def __init__(self, store: SqliteBlockStore):
        self.path = store.path

    def __call__(self, height: int, data: bytes) -> None:
        conn = sqlite3.connect(self.path)
        conn.execute("UPDATE blocks SET data = ? WHERE height = ?", (data, height))
        conn.commit()
        conn.close()


@pytest.fixture(scope="module")
def chain():
    return make_chain(4, 2)


@pytest.fixture(params=["memory", "sqlite"])
def stored(request, tmp_path, chain):
    if request.param == "memory":
        store = fill(MemoryBlockStore(), chain)
        tamper = store.tamper
    else:
        store = fill(SqliteBlockStore(tmp_path / "chain.db"), chain)
        tamper = SqliteTamper(store)
    yield request.param, store, tamper
    store.close()


def test_clean_chain_passes(stored, chain):
    _, store, _ = stored
    report = audit_chain(store, **AUDIT_ARGS)
    assert report.ok, report.describe()
    assert (report.blocks, report.transactions) == (4, 8)
    assert report.head_hash == chain[-1].hash
    assert report.first_bad_height is None and report.error is None
    assert report.describe().startswith("OK: 4 blocks, 8 transactions")


def test_empty_chain_passes():
    report = audit_chain(MemoryBlockStore(), **AUDIT_ARGS)
    assert report.ok and report.blocks == 0 and report.head_hash is None


def test_wrong_audit_parameters_fail_at_genesis(stored):
    _, store, _ = stored
    report = audit_chain(
        store, chain_id="other", authorised_proposers=AUDIT_ARGS["authorised_proposers"]
    )
    assert (report.ok, report.first_bad_height, type(report.error)) == (False, 0, WrongChainId)
    report = audit_chain(store, chain_id=CHAIN_ID, authorised_proposers={bytes(32)})
    assert type(report.error) is UnauthorisedProposer


def test_every_single_byte_flip_is_found_in_the_right_block(stored, chain):
    kind, store, tamper = stored
    target = chain[2]
    original = target.to_bytes()
    rng = random.Random(SEED)
    print(f"byte-flip seed {SEED}")
    # every byte in memory; a seeded sample (still hundreds) through the database
    positions = range(len(original)) if kind == "memory" else rng.sample(range(len(original)), 200)
    seen: set[type[Exception]] = set()
    for position in positions:
        tampered = bytearray(original)
        tampered[position] ^= 1 << rng.randrange(8)
        tamper(2, bytes(tampered))
        report = audit_chain(store, **AUDIT_ARGS)
        want = expected_error(target, bytes(tampered))
        assert not report.ok
        assert report.first_bad_height == 2, (position, report.describe())
        assert isinstance(report.error, want), (position, want, report.describe())
        assert (report.blocks, report.head_hash) == (2, chain[1].hash)
        seen.add(want)
    tamper(2, original)
    assert audit_chain(store, **AUDIT_ARGS).ok
    # the sample reached every region of the block
    assert {DecodeError, BadBlockSignature, BadTransactionRoot, BadResultRoot} <= seen


VALUES = {
    "version": 2,
    "chain_id": "p2pex-forged",
    "height": 7,
    "prev_hash": hashlib.sha256(b"x").digest(),
    "proposer": PEERS[0].public_key_bytes(),
    "time_ns": T0 + 10**9,
    "tx_root": hashlib.sha256(b"tx").digest(),
    "result_root": hashlib.sha256(b"r").digest(),
    "state_digest": hashlib.sha256(b"state").digest(),
}


@pytest.mark.parametrize("field", sorted(HEADER_FIELD_ERRORS))
def test_changing_any_header_field_is_found(stored, chain, field):
    _, store, tamper = stored
    target = chain[1]
    header = dataclasses.replace(target.header, **{field: VALUES[field]})
    forged = dataclasses.replace(target, header=header)  # the old signature stays
    tamper(1, forged.to_bytes())
    report = audit_chain(store, **AUDIT_ARGS)
    assert report.first_bad_height == 1
    assert type(report.error) is HEADER_FIELD_ERRORS[field]
    name = HEADER_FIELD_ERRORS[field].__name__
    assert report.describe().startswith(f"FAILED at block 1: {name}: ")
    assert report.error.found == (
        forged.signature
        if field in {"time_ns", "tx_root", "result_root", "state_digest"}
        else VALUES[field]
    )


def test_a_rewritten_and_resigned_block_breaks_its_roots_or_the_next_link(stored, chain):
    # Even the operator's key cannot rewrite history unnoticed.
    _, store, tamper = stored
    target = chain[1]
    other_txs = (order(PEERS[3], 777),)
    resigned = sign_block(OPERATOR, target.header, other_txs, target.results)
    tamper(1, resigned.to_bytes())
    report = audit_chain(store, **AUDIT_ARGS)
    assert (report.first_bad_height, type(report.error)) == (1, BadTransactionRoot)
    # consistent roots, new header: block 1 is valid, block 2's link is not
    rebuilt = build_block(
        OPERATOR,
        chain_id=CHAIN_ID,
        parent=chain[0].header,
        time_ns=T0,
        transactions=other_txs,
        results=target.results,
    )
    tamper(1, rebuilt.to_bytes())
    report = audit_chain(store, **AUDIT_ARGS)
    assert (report.first_bad_height, type(report.error)) == (2, BadParentHash)
    assert report.error.expected == rebuilt.hash
    assert report.error.found == chain[1].hash


def _chain_with_replays(blocks: int, replays: dict[int, int]) -> list[Block]:
    """A chain where block h re-uses PEERS[0]'s nonce replays[h] (an old, lower one)."""
    chain: list[Block] = []
    parent = None
    for height in range(blocks):
        txs = [order(PEERS[1], 10 * height + 1)]
        nonce = replays.get(height, 10 * height + 2)
        txs.append(order(PEERS[0], nonce, price=100 + height))
        block = build_block(
            OPERATOR, chain_id=CHAIN_ID, parent=parent, time_ns=T0 + height, transactions=txs
        )
        chain.append(block)
        parent = block.header
    return chain


@pytest.mark.parametrize(
    ("replays", "flip"),
    [({}, None), ({6: 12}, None), ({6: 12, 3: 2}, None), ({}, 4), ({7: 2}, 5), ({5: 22}, 6)],
    ids=["clean", "replay-6", "two-replays", "flip-4", "flip-before-replay", "replay-before-flip"],
)
def test_segments_merge_like_a_serial_audit(replays, flip):
    chain = _chain_with_replays(9, replays)
    store = fill(MemoryBlockStore(), chain)
    if flip is not None:
        data = bytearray(store.block_bytes(flip))
        data[-5] ^= 0xFF
        store.tamper(flip, bytes(data))
    serial = audit_chain(store, **AUDIT_ARGS)
    for parts in range(1, 6):
        segments = [audit_segment(store, a, b, **AUDIT_ARGS) for a, b in split_heights(9, parts)]
        merged = merge_segments(segments)
        assert merged.ok == serial.ok
        assert merged.first_bad_height == serial.first_bad_height, parts
        assert type(merged.error) is type(serial.error)
        assert (merged.blocks, merged.transactions, merged.head_hash) == (
            serial.blocks,
            serial.transactions,
            serial.head_hash,
        )
        if isinstance(serial.error, BadNonce):
            assert (merged.error.found, merged.error.index) == (
                serial.error.found,
                serial.error.index,
            )
    bad = set(replays) | ({flip} if flip is not None else set())
    assert serial.first_bad_height == (min(bad) if bad else None)
    if bad:
        assert isinstance(serial.error, BadNonce) == (min(bad) in replays)


def test_audit_range_start(stored):
    _, store, _ = stored
    report = audit_chain(store, start=2, **AUDIT_ARGS)
    assert report.ok and report.blocks == 2


def test_errors_survive_pickling():
    error = BadNonce("msg", expected=5, found=3, height=7, index=2)
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is BadNonce
    assert (str(again), again.expected, again.found, again.height, again.index) == (
        "msg",
        5,
        3,
        7,
        2,
    )
    segment = audit_segment(fill(MemoryBlockStore(), make_chain(2, 1)), 0, 2, **AUDIT_ARGS)
    assert pickle.loads(pickle.dumps(segment)) == segment


def test_transaction_and_result_proofs(stored, chain):
    _, store, _ = stored
    for block in chain:
        header = block.header
        for index, data in enumerate(block.transactions):
            proof = prove_transaction(store, hashlib.sha256(data).digest())
            assert proof is not None and (proof.height, proof.index) == (block.height, index)
            verify_inclusion_proof(header, proof, data)
            again = decode_inclusion_proof(proof.to_bytes())
            assert again == proof
        for index, data in enumerate(block.results):
            proof = prove_result(store, block.height, index)
            verify_inclusion_proof(header, proof, data)
    assert prove_transaction(store, bytes(32)) is None


def test_proof_mutations(stored, chain):
    _, store, _ = stored
    block = chain[2]
    data = block.results[1]
    proof = prove_result(store, 2, 1)
    with pytest.raises(RootMismatch):
        verify_inclusion_proof(block.header, proof, block.results[0])  # wrong leaf
    with pytest.raises(RootMismatch):
        verify_inclusion_proof(block.header, dataclasses.replace(proof, tree=0), data)
    with pytest.raises(ProofIndexError):
        verify_inclusion_proof(chain[1].header, proof, data)  # another block's header
    with pytest.raises(ProofLengthError):
        verify_inclusion_proof(block.header, dataclasses.replace(proof, path=proof.path[:-1]), data)
    with pytest.raises(ProofIndexError):
        verify_inclusion_proof(block.header, dataclasses.replace(proof, index=proof.size), data)
    with pytest.raises(BadRecord):
        verify_inclusion_proof(block.header, dataclasses.replace(proof, tree=2), data)
    flipped = (bytes([proof.path[0][0] ^ 1]) + proof.path[0][1:], *proof.path[1:])
    with pytest.raises(RootMismatch):
        verify_inclusion_proof(block.header, dataclasses.replace(proof, path=flipped), data)
    with pytest.raises(ProofIndexError):
        prove_result(store, 2, len(block.results))
    with pytest.raises(DecodeError):
        decode_inclusion_proof(proof.to_bytes() + b"\x00")


def test_merge_prefers_an_earlier_nonce_failure_inside_a_failing_block():
    first = build_block(
        OPERATOR, chain_id=CHAIN_ID, parent=None, time_ns=T0, transactions=[order(PEERS[0], 5)]
    )
    forged = decode(order(PEERS[2], 1))
    forged[3] = bytes(64)  # a bad signature
    second = build_block(
        OPERATOR,
        chain_id=CHAIN_ID,
        parent=first.header,
        time_ns=T0,
        transactions=[order(PEERS[1], 1), order(PEERS[0], 5, price=1), encode(forged)],
    )
    store = fill(MemoryBlockStore(), [first, second])
    serial = audit_chain(store, **AUDIT_ARGS)
    assert (type(serial.error), serial.error.index) == (BadNonce, 1)
    # block 1 starts the second segment: on its own it fails later, at the signature
    segments = [audit_segment(store, a, b, **AUDIT_ARGS) for a, b in [(0, 1), (1, 2)]]
    assert segments[1].error_index == 2
    merged = merge_segments(segments)
    assert (type(merged.error), merged.error.index, merged.first_bad_height) == (BadNonce, 1, 1)
