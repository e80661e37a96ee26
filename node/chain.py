"""The node's one doorway to ledger blocks, the block store and block verification.

``build`` makes and signs the operator's next block; ``verify_and_replay``
checks a received block completely (ledger rules: height, parent hash, chain
id, proposer, signature, Merkle roots; then a replay through the state
machine: the same results and the same state digest; then the clearing
certificates) before a replica stores it. ``replay_store`` rebuilds the
state machine from a stored chain at start-up.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from ledger.block import Block, BlockHeader, build_block, decode_block
from ledger.chain import validate_block
from ledger.errors import LedgerError
from ledger.keys import SigningKey
from ledger.sqlite_store import SqliteBlockStore
from ledger.store import BlockStore
from node import txn
from node.errors import BlockRefused, InvalidTransaction, NodeError
from node.state import MarketState

log = logging.getLogger("p2pex.chain")

CertificateCheck = Callable[[MarketState, txn.PublishClearing], str | None]
"""Returns None if a published clearing's certificate checks out, else why not."""


def store_file(data_dir: Path) -> Path:
    """The SQLite file of a node's data directory (the directory is created if missing)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    return data_dir / "chain.sqlite3"


def open_store(data_dir: Path) -> BlockStore:
    """Open (or create) the SQLite block store of a data directory.

    ``height`` of a store is the number of blocks it holds, which is also the
    height of the next block (the genesis block has height 0).
    """
    try:
        return SqliteBlockStore(store_file(data_dir))
    except LedgerError as exc:
        msg = f"cannot open the block store in {data_dir}: {exc}"
        raise NodeError(msg) from exc


def head_header(store: BlockStore) -> BlockHeader | None:
    """The stored head block's header, or None for an empty chain."""
    return store.head()


def build(
    key: SigningKey,
    *,
    chain_id: str,
    parent: BlockHeader | None,
    time_ns: int,
    transactions: list[bytes],
    results: list[bytes],
    state_digest: bytes,
) -> Block:
    """Build and sign the block that follows ``parent`` (None: the genesis block, height 0)."""
    return build_block(
        key,
        chain_id=chain_id,
        parent=parent,
        time_ns=time_ns,
        transactions=transactions,
        results=results,
        state_digest=state_digest,
    )


def decode(data: bytes) -> Block:
    """Decode block bytes.

    Raises:
        BlockRefused: the bytes are not one canonical block (height -1: unknown).
    """
    try:
        return decode_block(data)
    except LedgerError as exc:
        raise BlockRefused(-1, f"does not decode: {exc}") from exc


def replay(state: MarketState, block: Block) -> list[bytes]:
    """Apply a block's transactions to ``state``; return the results it gives.

    Signatures are not checked again: the caller has validated the block
    (``ledger.validate_block`` or ``audit_chain``), or it comes from our own
    store, where only verified blocks are written.

    Raises:
        BlockRefused: a transaction in the block is refused by the state machine.
    """
    header = block.header
    try:
        results = state.begin_block(header.time_ns)
        for index, data in enumerate(block.transactions):
            try:
                outcome = state.apply(txn.decode(data), verify_signature=False)
            except InvalidTransaction as exc:
                msg = f"transaction {index} is invalid: {exc}"
                raise BlockRefused(header.height, msg) from exc
            results.extend(outcome.results)
    except InvalidTransaction as exc:
        raise BlockRefused(header.height, str(exc)) from exc
    return results


def verify_and_replay(
    state: MarketState,
    block: Block,
    parent: BlockHeader | None,
    *,
    check_certificate: CertificateCheck | None = None,
) -> None:
    """Verify ``block`` fully, leaving ``state`` advanced past it.

    On failure ``state`` may be partly advanced: the caller rebuilds it (see
    ``replay_store``) before using it again.

    Raises:
        BlockRefused: any check fails; ``reason`` says which.
    """
    header = block.header
    try:
        validate_block(
            block,
            parent,
            chain_id=state.chain_id,
            authorised_proposers=frozenset({state.operator}),
            nonces=state.nonces,
        )
    except LedgerError as exc:
        raise BlockRefused(header.height, f"{type(exc).__name__}: {exc}") from exc
    if check_certificate is not None:
        for data in block.transactions:
            payload = txn.decode(data).transaction.payload
            if isinstance(payload, txn.PublishClearing):
                why = check_certificate(state, payload)
                if why is not None:
                    raise BlockRefused(header.height, f"clearing certificate: {why}")
    results = replay(state, block)
    if results != list(block.results):
        first = next(
            (i for i, (a, b) in enumerate(zip(results, block.results, strict=False)) if a != b),
            min(len(results), len(block.results)),
        )
        msg = f"replay gives other results (first difference at result {first})"
        raise BlockRefused(header.height, msg)
    digest = state.state_digest()
    if digest != header.state_digest:
        msg = f"state digest {header.state_digest.hex()}, replay gives {digest.hex()}"
        raise BlockRefused(header.height, msg)


def replay_store(store: BlockStore, new_state: Callable[[], MarketState]) -> MarketState:
    """Rebuild the state machine by replaying every stored block (checking each digest).

    Raises:
        BlockRefused: a stored block does not replay to its own digest (a corrupt store).
    """
    state = new_state()
    for height in range(store.height):
        block = store.block_at(height)
        results = replay(state, block)
        if results != list(block.results) or state.state_digest() != block.header.state_digest:
            raise BlockRefused(height, "stored block does not replay to its results and digest")
    return state


def default_certificate_check() -> CertificateCheck | None:
    """The replica's check of published clearings (``clearing``'s certificate check)."""
    from node.clearing_job import check_published

    return check_published
