"""Replaying blocks through the state machine, as every replica does.

``replay`` applies a block's transactions; ``verify_and_replay`` checks a
received block completely (ledger rules: height, parent hash, chain id,
proposer, signature, Merkle roots; then a replay through the state machine:
the same results and the same state digest; then the clearing certificates)
before a replica stores it. ``replay_store`` rebuilds the state machine from
a stored chain.
"""

from __future__ import annotations

from collections.abc import Callable

from ledger.block import Block, BlockHeader
from ledger.chain import validate_block
from ledger.errors import LedgerError
from ledger.store import BlockStore
from market import transactions as txn
from market.errors import BlockRefused, InvalidTransaction
from market.state import ExchangeState

CertificateCheck = Callable[[ExchangeState, txn.PublishClearing], str | None]
"""Returns None if a published clearing's certificate checks out, else why not."""


def replay(state: ExchangeState, block: Block) -> list[bytes]:
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
    state: ExchangeState,
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


def replay_store(store: BlockStore, new_state: Callable[[], ExchangeState]) -> ExchangeState:
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
