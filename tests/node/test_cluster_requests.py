"""Validators' own transactions are requested with their own keys and signed at their log position.

Two validators request gate closures from the same state (with the shared
chain key signing them directly, they would pick the same nonce and one
closure would be refused): every reader of the log derives the same
chain-key transactions, with consecutive nonces, and skips a repeated
request. Requests not signed by a validator, with a broken signature, or of
a kind validators do not request, derive nothing.
"""

from __future__ import annotations

import asyncio

import pytest

from ledger.block import decode_block
from ledger.keys import SigningKey
from market import transactions as txn
from market.errors import BadNonce
from market.state import ExchangeState
from node.clock import FakeClock
from node.cluster.requests import (
    REQUEST_TAG,
    AlreadyDone,
    RequestingProducer,
    RequestPolicy,
    decode_request,
    encode_request,
)
from node.pipeline.blocks import BlockLimits
from node.pipeline.intake import Intake
from node.pipeline.log_time import encode_tick
from node.pipeline.sequencer import EmbeddedLog

CHAIN = "p2pex-local"
CHAIN_KEY = SigningKey.from_seed(b"\x01" * 32)
VALIDATORS = [SigningKey.from_seed(bytes([0x10 + i]) * 32) for i in range(3)]
VALIDATOR_KEYS = [v.public_key_bytes() for v in VALIDATORS]
PEER = SigningKey.from_seed(b"\x05" * 32)
START = 1_700_000_000_000_000_000


def opening_entries() -> list[bytes]:
    """A peer registers and places one order in slots 1 and 2 (their books open)."""
    payloads: list[txn.Payload] = [
        txn.RegisterPeer("p", "B1", "prosumer"),
        txn.PlaceOrder("electricity", 1, "bid", 100, 1_000, "GTC", 0, False, "", 1),
        txn.PlaceOrder("electricity", 2, "bid", 100, 1_000, "GTC", 0, False, "", 2),
    ]
    entries = [encode_tick(START)]
    entries += [txn.make(PEER, CHAIN, n + 1, p).to_bytes() for n, p in enumerate(payloads)]
    return entries


async def produce(entries: list[bytes], mine: set[bytes] = frozenset()) -> tuple:
    """Feed ``entries`` to a validator's producer; return (blocks, state, producer, waiters)."""
    log = EmbeddedLog()
    state = ExchangeState(CHAIN, CHAIN_KEY.public_key_bytes())
    blocks: list[bytes] = []
    producer = RequestingProducer(
        validators=VALIDATOR_KEYS,
        chain_id=CHAIN,
        signer=CHAIN_KEY,
        state=state,
        log=log,
        intake=Intake(log),
        clock=FakeClock(0),
        limits=BlockLimits(interval=3600.0, max_txs=100),
        parent=None,
        emit=lambda block, built: blocks.append(block.to_bytes()),
        policy=RequestPolicy(50),
    )
    loop = asyncio.get_running_loop()
    waiters = {}
    for entry in mine:
        waiters[entry] = producer.requests[entry] = loop.create_future()
    task = asyncio.create_task(producer.run())
    for entry in [*entries, encode_tick(START + 1_000)]:  # the last tick cuts the block
        log.append(entry)
    for _ in range(20):
        await asyncio.sleep(0)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    outcomes = {}
    for entry, waiter in waiters.items():
        outcomes[entry] = waiter.exception() or waiter.result()
    return blocks, state, producer, outcomes


def block_transactions(blocks: list[bytes]) -> list[txn.SignedTransaction]:
    return [txn.decode(t) for b in blocks for t in decode_block(b).transactions]


def test_chain_key_transactions_signed_from_one_state_collide():
    # the reason for requests: two validators signing closures from the same state
    state = ExchangeState(CHAIN, CHAIN_KEY.public_key_bytes())
    nonce = state.next_nonce(CHAIN_KEY.public_key_bytes())
    first = txn.make(CHAIN_KEY, CHAIN, nonce, txn.CloseSlot("electricity", 1))
    second = txn.make(CHAIN_KEY, CHAIN, nonce, txn.CloseSlot("electricity", 2))
    state.apply(first)
    with pytest.raises(BadNonce):
        state.apply(second)


def test_requests_from_two_validators_become_consecutive_chain_key_transactions():
    close1 = encode_request(VALIDATORS[0], CHAIN, 7, txn.CloseSlot("electricity", 1))
    close2 = encode_request(VALIDATORS[1], CHAIN, 7, txn.CloseSlot("electricity", 2))
    again = encode_request(VALIDATORS[2], CHAIN, 9, txn.CloseSlot("electricity", 1))
    entries = [*opening_entries(), close1, close2, again]

    mine_a = {close1}
    blocks_a, state_a, producer_a, outcomes = asyncio.run(produce(entries, mine_a))
    blocks_b, state_b, _, outcomes_b = asyncio.run(produce(entries, {again}))

    assert blocks_a == blocks_b  # every reader derives the same bytes
    assert state_a.closed == state_b.closed == {("electricity", 1), ("electricity", 2)}
    own = [
        t
        for t in block_transactions(blocks_a)
        if t.transaction.sender == CHAIN_KEY.public_key_bytes()
    ]
    assert [(t.transaction.nonce, t.transaction.payload.slot) for t in own] == [(1, 1), (2, 2)]
    assert not any(t.data.startswith(REQUEST_TAG) for t in block_transactions(blocks_a))
    assert (producer_a.derived, producer_a.skipped) == (2, 1)
    assert outcomes[close1].rejected is None  # its requester learns the closure's outcome
    assert isinstance(outcomes_b[again], AlreadyDone)


@pytest.mark.parametrize(
    "forge",
    ["not a validator", "broken signature", "kind not requested", "another chain", "garbage"],
)
def test_a_request_validators_did_not_make_derives_nothing(forge):
    close = txn.CloseSlot("electricity", 1)
    if forge == "not a validator":
        entry = REQUEST_TAG + txn.make(PEER, CHAIN, 1, close).data
    elif forge == "broken signature":
        good = bytearray(encode_request(VALIDATORS[0], CHAIN, 1, close))
        good[-5] ^= 1
        entry = bytes(good)
    elif forge == "kind not requested":
        entry = REQUEST_TAG + txn.make(VALIDATORS[0], CHAIN, 1, txn.SetTariff(0, 0)).data
    elif forge == "another chain":
        entry = encode_request(VALIDATORS[0], "other-chain", 1, close)
    else:
        entry = REQUEST_TAG + b"\x93\x01"
    assert decode_request(entry, CHAIN, VALIDATOR_KEYS) is None
    blocks, state, producer, _ = asyncio.run(produce([*opening_entries(), entry]))
    honest, _, _, _ = asyncio.run(produce(opening_entries()))
    assert blocks == honest
    assert state.closed == set()
    assert producer.derived == 0


def test_validators_request_only_what_they_do_on_their_own():
    with pytest.raises(ValueError, match="SetTariff"):
        encode_request(VALIDATORS[0], CHAIN, 1, txn.SetTariff(0, 0))
