"""Block validation: each rule fails with its own error carrying expected and found."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest

from ledger import (
    BadBlockSignature,
    BadHeight,
    BadNonce,
    BadParentHash,
    BadRecord,
    BadResultRoot,
    BadTransactionRoot,
    BadTransactionSignature,
    Block,
    BlockHeader,
    MalformedBlockContent,
    SetTariff,
    Transaction,
    TransactionChainMismatch,
    TxKind,
    UnauthorisedProposer,
    UnauthorisedSender,
    UnsupportedVersion,
    WrongChainId,
    build_block,
    decode_block,
    decode_header,
    encode,
    make_header,
    sign_block,
    sign_transaction,
    validate_block,
)
from ledger.codec import decode
from ledger.merkle import merkle_root
from ledger.types import ZERO_HASH
from tests.ledger.chainkit import CHAIN_ID, OPERATOR, PEERS, T0, make_chain, order

PROPOSERS = {OPERATOR.public_key_bytes()}


def check(block, parent, **kwargs):
    kwargs.setdefault("chain_id", CHAIN_ID)
    kwargs.setdefault("authorised_proposers", PROPOSERS)
    return validate_block(block, parent, **kwargs)


def resign(header: BlockHeader, block: Block, key=OPERATOR) -> Block:
    return sign_block(key, header, block.transactions, block.results)


@pytest.fixture(scope="module")
def chain():
    return make_chain(3, 5)


def test_valid_chain(chain):
    nonces: dict[bytes, int] = {}
    parent = None
    for block in chain:
        result = check(block, parent, nonces=nonces)
        assert result.transactions == 5
        nonces.update(result.last_nonces)
        parent = block.header
    assert nonces[PEERS[0].public_key_bytes()] > 0


def test_block_round_trip(chain):
    block = chain[1]
    again = decode_block(block.to_bytes())
    assert again == block
    assert again.hash == block.hash == block.header.hash
    assert decode_header(block.header.to_bytes()) == block.header
    domain = b"p2pex/block-header/v1\x00"
    assert block.hash == hashlib.sha256(domain + block.header.to_bytes()).digest()


def test_genesis_links_to_zero(chain):
    assert chain[0].header.prev_hash == ZERO_HASH
    assert chain[0].header.height == 0
    assert chain[1].header.prev_hash == chain[0].hash


def _with(block: Block, **changes) -> Block:
    return resign(dataclasses.replace(block.header, **changes), block)


def test_unsupported_version(chain):
    with pytest.raises(UnsupportedVersion) as info:
        check(_with(chain[0], version=2), None)
    assert (info.value.expected, info.value.found, info.value.height) == (1, 2, 0)


def test_wrong_chain_id(chain):
    with pytest.raises(WrongChainId) as info:
        check(_with(chain[1], chain_id="elsewhere"), chain[0].header)
    assert (info.value.expected, info.value.found) == (CHAIN_ID, "elsewhere")


def test_bad_height(chain):
    with pytest.raises(BadHeight) as info:
        check(_with(chain[1], height=5), chain[0].header)
    assert (info.value.expected, info.value.found) == (1, 5)
    with pytest.raises(BadHeight):
        check(chain[1], None)  # no parent: height must be 0


def test_bad_parent_hash(chain):
    wrong = hashlib.sha256(b"wrong").digest()
    with pytest.raises(BadParentHash) as info:
        check(_with(chain[1], prev_hash=wrong), chain[0].header)
    assert (info.value.expected, info.value.found) == (chain[0].hash, wrong)
    # a parent that differs from the real one in its time only
    with pytest.raises(BadParentHash):
        check(chain[2], dataclasses.replace(chain[1].header, time_ns=T0 + 99))


def test_unauthorised_proposer(chain):
    stranger = PEERS[0]
    header = dataclasses.replace(chain[0].header, proposer=stranger.public_key_bytes())
    block = resign(header, chain[0], stranger)
    with pytest.raises(UnauthorisedProposer) as info:
        check(block, None)
    assert info.value.found == stranger.public_key_bytes()
    assert info.value.expected == (OPERATOR.public_key_bytes(),)
    check(block, None, authorised_proposers={stranger.public_key_bytes()})


def test_bad_block_signature(chain):
    block = chain[1]
    for forged in (chain[2].signature, bytes(64), OPERATOR.sign(block.hash)):
        with pytest.raises(BadBlockSignature) as info:
            check(dataclasses.replace(block, signature=forged), chain[0].header)
        assert info.value.found == forged


def test_body_swaps_break_the_roots(chain):
    block = chain[1]
    swapped = dataclasses.replace(block, transactions=chain[2].transactions)
    with pytest.raises(BadTransactionRoot) as info:
        check(swapped, chain[0].header)
    assert info.value.expected == block.header.tx_root
    assert info.value.found == merkle_root(chain[2].transactions)
    dropped = dataclasses.replace(block, results=block.results[:-1])
    with pytest.raises(BadResultRoot):
        check(dropped, chain[0].header)
    reordered = dataclasses.replace(block, transactions=block.transactions[::-1])
    with pytest.raises(BadTransactionRoot):
        check(reordered, chain[0].header)


def _block_with(transactions, results=(), parent=None) -> Block:
    return build_block(
        OPERATOR,
        chain_id=CHAIN_ID,
        parent=parent,
        time_ns=T0,
        transactions=list(transactions),
        results=list(results),
    )


def test_malformed_transaction_in_a_signed_block():
    good = order(PEERS[0], 1)
    block = _block_with([good, good[:-1]])
    with pytest.raises(MalformedBlockContent) as info:
        check(block, None)
    assert (info.value.height, info.value.index) == (0, 1)


def test_malformed_result_in_a_signed_block():
    block = _block_with([order(PEERS[0], 1)], [encode([1, 99])])
    with pytest.raises(MalformedBlockContent) as info:
        check(block, None)
    assert info.value.index == 1  # results count after the transactions


def test_transaction_for_another_chain():
    block = _block_with([order(PEERS[0], 1), order(PEERS[1], 1, chain_id="other")])
    with pytest.raises(TransactionChainMismatch) as info:
        check(block, None)
    assert (info.value.expected, info.value.found, info.value.index) == (CHAIN_ID, "other", 1)


def test_transaction_with_a_bad_signature():
    fields = decode(order(PEERS[0], 1))
    fields[3] = bytes([fields[3][0] ^ 1]) + fields[3][1:]
    block = _block_with([order(PEERS[1], 1), encode(fields)])
    with pytest.raises(BadTransactionSignature) as info:
        check(block, None)
    assert (info.value.index, info.value.expected) == (1, PEERS[0].public_key_bytes())


def test_operator_only_kinds():
    def tariff(signer):
        public = signer.public_key_bytes()
        tx = Transaction(TxKind.SET_TARIFF, CHAIN_ID, public, 1, SetTariff(35_000, 0))
        return sign_transaction(signer, tx).to_bytes()

    check(_block_with([tariff(OPERATOR)]), None)
    with pytest.raises(UnauthorisedSender) as info:
        check(_block_with([tariff(PEERS[2])]), None)
    assert info.value.found == PEERS[2].public_key_bytes()
    # a separate operator set
    check(_block_with([tariff(PEERS[2])]), None, operators={PEERS[2].public_key_bytes()})


def test_nonces_strictly_increase_gaps_allowed():
    peer = PEERS[0]
    public = peer.public_key_bytes()
    result = check(_block_with([order(peer, 3), order(peer, 10), order(PEERS[1], 1)]), None)
    assert result.first_nonces[public] == (0, 3)
    assert result.last_nonces == {public: 10, PEERS[1].public_key_bytes(): 1}
    with pytest.raises(BadNonce) as info:  # nonces start at 1
        check(_block_with([order(peer, 0)]), None)
    assert (info.value.expected, info.value.found) == (1, 0)
    with pytest.raises(BadNonce) as info:
        check(_block_with([order(peer, 3), order(peer, 3)]), None)
    assert (info.value.expected, info.value.found, info.value.index) == (4, 3, 1)
    with pytest.raises(BadNonce):
        check(_block_with([order(peer, 5), order(peer, 4)]), None)
    # across blocks, through the caller's nonce map, which is left unchanged
    nonces = {public: 10}
    with pytest.raises(BadNonce) as info:
        check(_block_with([order(peer, 10)]), None, nonces=nonces)
    assert (info.value.expected, info.value.found) == (11, 10)
    assert nonces == {public: 10}
    check(_block_with([order(peer, 11)]), None, nonces=nonces)


def test_header_fields_are_checked_on_construction(chain):
    header = chain[0].header
    for name, value in [
        ("prev_hash", b"short"),
        ("height", -1),
        ("time_ns", 1.5),
        ("proposer", bytes(31)),
        ("chain_id", b"bytes"),
    ]:
        with pytest.raises(BadRecord):
            dataclasses.replace(header, **{name: value})


def test_sign_block_refuses_a_foreign_header(chain):
    with pytest.raises(BadRecord):
        resign(chain[0].header, chain[0], PEERS[0])


def test_make_header_roots():
    txs = [order(PEERS[0], 1)]
    header = make_header(
        chain_id=CHAIN_ID,
        parent=None,
        time_ns=T0,
        transactions=txs,
        results=[],
        state_digest=ZERO_HASH,
        proposer=OPERATOR.public_key_bytes(),
    )
    assert header.tx_root == merkle_root(txs)
    assert header.result_root == hashlib.sha256(b"").digest()
