"""Deterministic keys, transactions and chains for the ledger tests."""

from __future__ import annotations

import hashlib

from ledger import (
    Block,
    BlockStore,
    CancelOrder,
    EventRecord,
    PlaceOrder,
    RejectionRecord,
    SettlementRecord,
    SigningKey,
    TradeRecord,
    Transaction,
    TxKind,
    build_block,
    sign_transaction,
)

CHAIN_ID = "p2pex-test"
T0 = 1_700_000_000_000_000_000  # a fixed block time, ns


def key(n: int) -> SigningKey:
    """The test key number n (seed = SHA-256 of "p2pex-test-key-<n>")."""
    return SigningKey.from_seed(hashlib.sha256(f"p2pex-test-key-{n}".encode()).digest())


OPERATOR = key(0)
PEERS = [key(i) for i in range(1, 5)]


def order(signer: SigningKey, nonce: int, *, chain_id: str = CHAIN_ID, price: int = 120) -> bytes:
    """A signed PlaceOrder transaction's bytes."""
    payload = PlaceOrder("electricity", 7, "bid", price, 1000 + nonce, "GTC", 0, False, "", nonce)
    tx = Transaction(TxKind.PLACE_ORDER, chain_id, signer.public_key_bytes(), nonce, payload)
    return sign_transaction(signer, tx).to_bytes()


def cancel(signer: SigningKey, nonce: int) -> bytes:
    """A signed CancelOrder transaction's bytes."""
    tx = Transaction(
        TxKind.CANCEL_ORDER, CHAIN_ID, signer.public_key_bytes(), nonce, CancelOrder(1)
    )
    return sign_transaction(signer, tx).to_bytes()


def results_for(transactions: list[bytes], height: int) -> list[bytes]:
    """A few result records naming the peers' accounts."""
    if not transactions:
        return []
    tx_id = hashlib.sha256(transactions[0]).digest()
    maker, taker = PEERS[height % 4], PEERS[(height + 1) % 4]
    return [
        TradeRecord(
            tx_id, "electricity", 7, 120, 500, maker.account_id, taker.account_id, 1, 2
        ).to_bytes(),
        SettlementRecord("heat", height, maker.account_id, 250, -30_000).to_bytes(),
        RejectionRecord(tx_id, "price_off_grid").to_bytes(),
        EventRecord(tx_id, "accepted", taker.account_id, (height,)).to_bytes(),
    ]


def make_chain(blocks: int, per_block: int = 3, *, first_nonce: int = 1) -> list[Block]:
    """A valid chain: each block has per_block orders from the peers in turn, and results."""
    chain: list[Block] = []
    nonce = first_nonce
    parent = None
    for height in range(blocks):
        txs = []
        for i in range(per_block):
            txs.append(order(PEERS[i % len(PEERS)], nonce))
            if i % len(PEERS) == len(PEERS) - 1:
                nonce += 1
        nonce += 1
        block = build_block(
            OPERATOR,
            chain_id=CHAIN_ID,
            parent=parent,
            time_ns=T0 + height,
            transactions=txs,
            results=results_for(txs, height),
            state_digest=hashlib.sha256(b"state %d" % height).digest(),
        )
        chain.append(block)
        parent = block.header
    return chain


def fill(store: BlockStore, chain: list[Block]) -> BlockStore:
    """Append every block of chain to store and return it."""
    for block in chain:
        store.append(block)
    return store


AUDIT_ARGS = {"chain_id": CHAIN_ID, "authorised_proposers": {OPERATOR.public_key_bytes()}}
