"""The node's one doorway to ledger blocks and the block store.

``build`` makes and signs the operator's next block; ``open_store`` opens a
data directory's chain. Replaying blocks through the state machine is
``market.replay``'s job.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ledger.block import Block, BlockHeader, build_block, decode_block
from ledger.errors import LedgerError
from ledger.keys import SigningKey
from ledger.sqlite_store import SqliteBlockStore
from ledger.store import BlockStore
from node.errors import BlockRefused, NodeError

log = logging.getLogger("p2pex.chain")


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
