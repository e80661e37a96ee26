"""The node's one doorway to ledger blocks, the block store and block verification.

``build`` makes and signs the operator's next block; ``verify_and_replay``
checks a received block completely (ledger rules: height, parent hash, chain
id, proposer, signature, Merkle roots; then a replay through the state
machine: the same results and the same state digest; then the clearing
certificates) before a replica stores it. ``replay_store`` rebuilds the
state machine from a stored chain at start-up.

**The operator key is pinned** in the data directory: ``operator.pub``, next
to the chain file, holds the operator's public key in hex, written when the
directory's chain is created (``pin_operator_key``) and checked on every
later start; ``p2pex chain verify --data-dir`` verifies against it by
default. Nothing in the chain itself says whose it is: without a pin, a
chain re-signed from genesis by another key passes a verification that
trusts the genesis signer.
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
from node.errors import BlockRefused, ConfigError, InvalidTransaction, NodeError
from node.state import MarketState

log = logging.getLogger("p2pex.chain")

CertificateCheck = Callable[[MarketState, txn.PublishClearing], str | None]
"""Returns None if a published clearing's certificate checks out, else why not."""


def store_file(data_dir: Path) -> Path:
    """The SQLite file of a node's data directory (the directory is created if missing)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    return data_dir / "chain.sqlite3"


OPERATOR_PIN = "operator.pub"
"""The file, next to the chain, that pins the operator's public key (hex, one line)."""


def operator_pin_file(data_dir: Path) -> Path:
    """The operator pin of a data directory (it may not exist)."""
    return data_dir / OPERATOR_PIN


def pinned_operator_key(data_dir: Path) -> bytes | None:
    """The operator public key pinned in ``data_dir``, or None if nothing is pinned.

    Raises:
        ConfigError: the pin file is unreadable or not a 32-byte key in hex.
    """
    path = operator_pin_file(data_dir)
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeError) as exc:
        msg = f"cannot read the operator pin {path}: {exc}"
        raise ConfigError(msg) from exc
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) != 32:
        msg = f"{path} does not hold a 32-byte public key in hex"
        raise ConfigError(msg)
    return key


def pin_operator_key(data_dir: Path, public_key: bytes) -> bool:
    """Pin ``public_key`` as the operator of ``data_dir``'s chain, or check the pin.

    Returns:
        True if this call wrote the pin (a new data directory), False if the
        same key was already pinned.

    Raises:
        ConfigError: another key is pinned (this is another operator's chain),
            or the pin cannot be written.
    """
    pinned = pinned_operator_key(data_dir)
    if pinned is not None:
        if pinned != public_key:
            msg = (
                f"{data_dir} is pinned to operator {pinned.hex()}, "
                f"not to the configured key {public_key.hex()}"
            )
            raise ConfigError(msg)
        return False
    path = operator_pin_file(data_dir)
    partial = path.with_name(path.name + ".new")
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        partial.write_text(public_key.hex() + "\n", encoding="ascii")
        partial.replace(path)
    except OSError as exc:
        msg = f"cannot pin the operator key in {path}: {exc}"
        raise ConfigError(msg) from exc
    log.info("pinned operator key %s in %s", public_key.hex(), path)
    return True


def open_store(data_dir: Path, operator: bytes | None = None) -> BlockStore:
    """Open (or create) the SQLite block store of a data directory.

    ``height`` of a store is the number of blocks it holds, which is also the
    height of the next block (the genesis block has height 0). With
    ``operator``, its key is pinned in the directory (or checked against the
    pin: ``pin_operator_key``). A read-write open indexes the blocks a crash
    left unindexed; it is logged.

    Raises:
        ConfigError: another operator key is pinned.
        NodeError: the store cannot be opened.
    """
    if operator is not None:
        pin_operator_key(data_dir, operator)
    try:
        store = SqliteBlockStore(store_file(data_dir))
    except LedgerError as exc:
        msg = f"cannot open the block store in {data_dir}: {exc}"
        raise NodeError(msg) from exc
    if store.indexed_on_open:
        done = store.indexed_on_open
        log.info("indexed blocks %d to %d of %s on open", done.start, done.stop - 1, data_dir)
    return store


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
