"""The node's one doorway to ledger blocks and the block store.

``build`` makes and signs the operator's next block; ``open_store`` opens a
data directory's chain. Replaying blocks through the state machine is
``market.replay``'s job.

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
from pathlib import Path

from ledger.block import Block, BlockHeader, build_block, decode_block
from ledger.errors import LedgerError
from ledger.keys import SigningKey
from ledger.sqlite_store import SqliteBlockStore
from ledger.store import BlockStore
from node.errors import BlockRefused, ConfigError, NodeError

log = logging.getLogger("p2pex.chain")


CHAIN_FILE = "chain.sqlite3"
"""The SQLite file of a data directory's chain."""


def store_file(data_dir: Path) -> Path:
    """The SQLite file of a node's data directory (the directory is created if missing)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    return data_dir / CHAIN_FILE


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
