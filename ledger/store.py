"""The block store interface and its in-memory implementation.

A store keeps a chain of blocks as their exact bytes, and indexes them by
height, block hash, transaction id and account (trades, settlements and
events that name an account). It only accepts a block that extends its head
(height = head height + 1 and previous hash = head hash) and holds no
transaction id twice; it does not check signatures or Merkle roots (that is
``ledger.chain``: validate, then append). An append either stores the block
and all its index entries or changes nothing.

``height`` is the number of blocks stored, which is also the height the next
block must have; the head block has height ``height - 1``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar, runtime_checkable

from ledger.block import Block, BlockHeader, decode_block
from ledger.errors import (
    BlockNotFound,
    DecodeError,
    DuplicateTransaction,
    NotExtendingHead,
    StoreCorrupted,
    TransactionNotFound,
)
from ledger.results import (
    ResultRecord,
    SettlementRecord,
    TradeRecord,
    decode_result,
    result_accounts,
)
from ledger.transactions import SignedTransaction, decode_transaction
from ledger.types import ZERO_HASH, RecordKind

R = TypeVar("R")
T = TypeVar("T")
Position = tuple[int, int]  # (height, index) of a result in the chain


@dataclass(frozen=True, slots=True)
class Located(Generic[R]):
    """A record with where it is in the chain: block height and index in that block."""

    height: int
    index: int
    record: R


@dataclass(frozen=True, slots=True)
class BlockIndex:
    """The index entries of one block, computed before anything is written.

    Attributes:
        tx_ids: SHA-256 of each transaction's bytes, in order.
        account_rows: (account, record kind, result index) per account a result names.
    """

    tx_ids: tuple[bytes, ...]
    account_rows: tuple[tuple[bytes, int, int], ...]


def block_tx_ids(block: Block) -> tuple[bytes, ...]:
    """The ids (SHA-256) of ``block``'s transactions, in order.

    Raises:
        DuplicateTransaction: the block holds the same transaction twice.
    """
    sha = hashlib.sha256
    tx_ids = tuple(sha(tx).digest() for tx in block.transactions)
    if len(set(tx_ids)) != len(tx_ids):
        msg = f"block {block.height} holds the same transaction twice"
        raise DuplicateTransaction(msg)
    return tx_ids


def account_rows(
    block: Block,
) -> tuple[tuple[tuple[bytes, int, int], ...], tuple[int, DecodeError] | None]:
    """(account, record kind, result index) per account a result of ``block`` names.

    A result that does not decode gives no rows. Also returns the index and
    error of the first such result (None if every result decoded).
    """
    rows: list[tuple[bytes, int, int]] = []
    failed: tuple[int, DecodeError] | None = None
    for index, data in enumerate(block.results):
        try:
            kind, accounts = result_accounts(data)
        except DecodeError as exc:
            failed = failed or (index, exc)
            continue
        rows.extend((account, int(kind), index) for account in accounts)
    return tuple(rows), failed


def index_block(block: Block) -> BlockIndex:
    """Compute the index entries of ``block``.

    Raises:
        DecodeError: a result record does not decode.
        DuplicateTransaction: the block holds the same transaction twice.
    """
    tx_ids = block_tx_ids(block)
    rows, failed = account_rows(block)
    if failed is not None:
        raise failed[1]
    return BlockIndex(tx_ids, rows)


def check_extends(head: BlockHeader | None, block: Block) -> None:
    """Raise NotExtendingHead unless ``block`` directly follows ``head`` (None: empty store)."""
    want_height = 0 if head is None else head.height + 1
    want_prev = ZERO_HASH if head is None else head.hash
    header = block.header
    if header.height != want_height or header.prev_hash != want_prev:
        msg = (
            f"block (height {header.height}, previous {header.prev_hash.hex()[:16]}) does not "
            f"extend the head: expected height {want_height}, previous {want_prev.hex()[:16]}"
        )
        raise NotExtendingHead(
            msg,
            expected=(want_height, want_prev),
            found=(header.height, header.prev_hash),
        )


def indexed_transaction(block: Block, index: int, tx_id: bytes) -> SignedTransaction:
    """The transaction an index row puts at ``index`` of ``block``, checked against ``tx_id``.

    An index is derived data and never trusted: a row that points past the
    block's transactions, or at a transaction with another id, is a corrupt
    store (not an ``IndexError``, and never a wrong answer).

    Raises:
        StoreCorrupted: the row points nowhere or at another transaction.
        DecodeError: the transaction's bytes do not decode.
    """
    height = block.height
    count = len(block.transactions)
    if not 0 <= index < count:
        msg = (
            f"the transaction index puts {tx_id.hex()} at block {height} index {index}, "
            f"but that block holds {count} transactions"
        )
        raise StoreCorrupted(msg, height=height, expected=count, found=index)
    data = block.transactions[index]
    found = hashlib.sha256(data).digest()
    if found != tx_id:
        msg = (
            f"the transaction index puts {tx_id.hex()} at block {height} index {index}, "
            f"but the transaction there has id {found.hex()}"
        )
        raise StoreCorrupted(msg, height=height, expected=tx_id, found=found)
    return decode_transaction(data)


def indexed_result(
    block: Block, index: int, account: bytes, kind: int | None = None
) -> ResultRecord:
    """The result an account index row puts at ``index`` of ``block``, checked against the row.

    Raises:
        StoreCorrupted: the row points past the results, or at a record that
            does not name ``account`` (or is not of ``kind``).
        DecodeError: the record's bytes do not decode.
    """
    height = block.height
    count = len(block.results)
    if not 0 <= index < count:
        msg = (
            f"the account index puts a result at block {height} index {index}, "
            f"but that block holds {count} results"
        )
        raise StoreCorrupted(msg, height=height, expected=count, found=index)
    record = decode_result(block.results[index])
    if account not in record.accounts() or (kind is not None and kind != record.KIND):
        msg = (
            f"the account index puts a result of {account.hex()[:16]} (kind {kind}) at block "
            f"{height} index {index}, but that record is a {type(record).__name__} "
            f"of {[a.hex()[:16] for a in record.accounts()]}"
        )
        raise StoreCorrupted(msg, height=height, expected=(account, kind), found=record)
    return record


def block_with_hash(block: Block, block_hash: bytes) -> Block:
    """``block``, found by the hash lookup under ``block_hash``, if that is its hash.

    Raises:
        StoreCorrupted: the lookup holds the block under another hash.
    """
    if block.hash != block_hash:
        msg = (
            f"the hash index holds block {block.height} under {block_hash.hex()}, "
            f"but its hash is {block.hash.hex()}"
        )
        raise StoreCorrupted(msg, height=block.height, expected=block.hash, found=block_hash)
    return block


def transaction_not_found(tx_id: bytes) -> TransactionNotFound:
    """The error for a transaction id no stored block holds."""
    return TransactionNotFound(f"no stored block holds transaction {tx_id.hex()}")


class BlockStore(Protocol):
    """What the node and the audit need from a block store."""

    @property
    def height(self) -> int:
        """The number of blocks stored (= the height the next block must have)."""
        ...

    def head(self) -> BlockHeader | None:
        """Return the header of the last block, or None when empty."""
        ...

    def append(self, block: Block) -> None:
        """Store ``block`` durably with its index entries, or raise and change nothing.

        Raises:
            NotExtendingHead: the block does not follow the head.
            DuplicateTransaction: one of its transaction ids is already stored.
            DecodeError: one of its results does not decode.
            StoreError: the storage failed.
        """
        ...

    def block_at(self, height: int) -> Block:
        """Return the block at ``height`` (decoded from the stored bytes).

        Raises:
            BlockNotFound: no block at that height.
            DecodeError: the stored bytes do not decode (corruption).
        """
        ...

    def block_bytes(self, height: int) -> bytes:
        """Return the exact stored bytes of the block at ``height``.

        Raises:
            BlockNotFound: no block at that height.
        """
        ...

    def block_by_hash(self, block_hash: bytes) -> Block | None:
        """Return the block with that hash, or None."""
        ...

    def transaction(self, tx_id: bytes) -> Located[SignedTransaction] | None:
        """Return the transaction with that id and where it is, or None."""
        ...

    def results_by_account(
        self,
        account: bytes,
        kind: RecordKind | None = None,
        limit: int | None = None,
        before: Position | None = None,
    ) -> list[Located[ResultRecord]]:
        """Return the results naming ``account`` (of ``kind`` only, if given), in chain order.

        With ``limit``, only the newest ``limit`` of them; with ``before``, only
        those at a (height, index) before it. A node answers reads on its
        event loop, and decoding an account's whole history there at once
        held every other client up (``bench_reads``, docs/performance.md): it
        reads a long history in pages, newest first, each page ``before`` the
        last.
        """
        ...

    def trades_by_account(
        self, account: bytes, limit: int | None = None, before: Position | None = None
    ) -> list[Located[TradeRecord]]:
        """Return the trades where ``account`` is maker or taker (the newest ``limit``)."""
        ...

    def settlements_by_account(
        self, account: bytes, limit: int | None = None, before: Position | None = None
    ) -> list[Located[SettlementRecord]]:
        """Return the settlements of ``account`` (the newest ``limit``), in chain order."""
        ...

    def close(self) -> None:
        """Release the store's resources."""
        ...


@runtime_checkable
class IndexedBlockStore(BlockStore, Protocol):
    """A block store that shows its index rows, for ``ledger.integrity.check_store_indexes``.

    Every iterator is in (height, index) order; rows may name heights past
    the chain (that is what the check looks for).
    """

    def indexed_height(self) -> int:
        """The height below which every block's index rows are written."""
        ...

    def stored_hashes(self) -> Iterator[tuple[int, bytes]]:
        """(height, block hash) as stored for each block (the hash lookup's key)."""
        ...

    def stored_tx_rows(self) -> Iterator[tuple[int, int, bytes]]:
        """(height, index, transaction id) of every transaction index row."""
        ...

    def stored_account_rows(self) -> Iterator[tuple[int, int, bytes, int]]:
        """(height, index, account, record kind) of every account index row."""
        ...

    def check_pages(self) -> str | None:
        """None if the storage itself is sound, else what is wrong with it."""
        ...


def newest(items: Sequence[T], limit: int | None) -> Sequence[T]:
    """The last ``limit`` of ``items`` (all of them for None; none for 0 or less)."""
    if limit is None:
        return items
    return items[max(0, len(items) - limit) :] if limit > 0 else items[:0]


def trades_of(results: Sequence[Located[ResultRecord]]) -> list[Located[TradeRecord]]:
    """Keep the trades of a list of located results."""
    return [
        Located(item.height, item.index, item.record)
        for item in results
        if isinstance(item.record, TradeRecord)
    ]


def settlements_of(results: Sequence[Located[ResultRecord]]) -> list[Located[SettlementRecord]]:
    """Keep the settlements of a list of located results."""
    return [
        Located(item.height, item.index, item.record)
        for item in results
        if isinstance(item.record, SettlementRecord)
    ]


class AccountReads:
    """A store's ``trades_by_account`` and ``settlements_by_account``, from its
    ``results_by_account`` (see ``BlockStore``)."""

    __slots__ = ()

    def results_by_account(
        self,
        account: bytes,
        kind: RecordKind | None = None,
        limit: int | None = None,
        before: Position | None = None,
    ) -> list[Located[ResultRecord]]:
        raise NotImplementedError

    def trades_by_account(
        self, account: bytes, limit: int | None = None, before: Position | None = None
    ) -> list[Located[TradeRecord]]:
        """Return the trades where ``account`` is maker or taker (the newest ``limit``)."""
        return trades_of(self.results_by_account(account, RecordKind.TRADE, limit, before))

    def settlements_by_account(
        self, account: bytes, limit: int | None = None, before: Position | None = None
    ) -> list[Located[SettlementRecord]]:
        """Return the settlements of ``account`` (the newest ``limit``), in chain order."""
        found = self.results_by_account(account, RecordKind.SETTLEMENT, limit, before)
        return settlements_of(found)


class MemoryBlockStore(AccountReads):
    """A ``BlockStore`` in memory (tests, replicas that do not persist).

    Blocks are kept as their exact bytes, as on disk, and decoded on read.
    """

    __slots__ = ("_accounts", "_by_hash", "_data", "_head", "_txs")

    def __init__(self) -> None:
        self._data: list[bytes] = []
        self._head: BlockHeader | None = None
        self._by_hash: dict[bytes, int] = {}
        self._txs: dict[bytes, tuple[int, int]] = {}
        self._accounts: dict[bytes, list[tuple[int, int, int]]] = {}

    @property
    def height(self) -> int:
        """The number of blocks stored (= the height the next block must have)."""
        return len(self._data)

    def head(self) -> BlockHeader | None:
        """Return the header of the last block, or None when empty."""
        return self._head

    def append(self, block: Block) -> None:
        """Store ``block`` with its index entries, or raise and change nothing."""
        check_extends(self._head, block)
        entries = index_block(block)
        for tx_id in entries.tx_ids:
            if tx_id in self._txs:
                msg = f"transaction {tx_id.hex()} is already stored"
                raise DuplicateTransaction(msg)
        data = block.to_bytes()
        # Everything that can fail has been checked: now mutate.
        height = block.height
        self._data.append(data)
        self._head = block.header
        self._by_hash[block.hash] = height
        for index, tx_id in enumerate(entries.tx_ids):
            self._txs[tx_id] = (height, index)
        for account, kind, index in entries.account_rows:
            self._accounts.setdefault(account, []).append((kind, height, index))

    def block_bytes(self, height: int) -> bytes:
        """Return the exact stored bytes of the block at ``height``."""
        if not 0 <= height < len(self._data):
            msg = f"no block at height {height} (store holds {len(self._data)})"
            raise BlockNotFound(msg)
        return self._data[height]

    def block_at(self, height: int) -> Block:
        """Return the block at ``height``."""
        return decode_block(self.block_bytes(height))

    def block_by_hash(self, block_hash: bytes) -> Block | None:
        """Return the block with that hash, or None."""
        height = self._by_hash.get(block_hash)
        return None if height is None else block_with_hash(self.block_at(height), block_hash)

    def transaction(self, tx_id: bytes) -> Located[SignedTransaction] | None:
        """Return the transaction with that id and where it is, or None."""
        where = self._txs.get(tx_id)
        if where is None:
            return None
        height, index = where
        return Located(height, index, indexed_transaction(self.block_at(height), index, tx_id))

    def results_by_account(
        self,
        account: bytes,
        kind: RecordKind | None = None,
        limit: int | None = None,
        before: Position | None = None,
    ) -> list[Located[ResultRecord]]:
        """Return the results naming ``account`` (see ``BlockStore.results_by_account``)."""
        found: list[Located[ResultRecord]] = []
        for row_kind, height, index in reversed(self._accounts.get(account, [])):
            if limit is not None and len(found) >= limit:
                break
            if (kind is None or row_kind == kind) and (before is None or (height, index) < before):
                record = indexed_result(self.block_at(height), index, account, row_kind)
                found.append(Located(height, index, record))
        found.reverse()
        return found

    def close(self) -> None:
        """Nothing to release."""

    def indexed_height(self) -> int:
        """Every block is indexed as it is appended."""
        return len(self._data)

    def stored_hashes(self) -> Iterator[tuple[int, bytes]]:
        """(height, block hash) of the hash lookup, by height."""
        return iter(sorted((height, block_hash) for block_hash, height in self._by_hash.items()))

    def stored_tx_rows(self) -> Iterator[tuple[int, int, bytes]]:
        """(height, index, transaction id) of every transaction index entry, in order."""
        return iter(sorted((h, i, tx_id) for tx_id, (h, i) in self._txs.items()))

    def stored_account_rows(self) -> Iterator[tuple[int, int, bytes, int]]:
        """(height, index, account, kind) of every account index entry, in order."""
        rows = (
            (height, index, account, kind)
            for account, entries in self._accounts.items()
            for kind, height, index in entries
        )
        return iter(sorted(rows))

    def check_pages(self) -> str | None:
        """Memory has no pages to check."""
        return None

    def tamper_index(
        self,
        *,
        tx: tuple[bytes, tuple[int, int]] | None = None,
        block_hash: tuple[bytes, int] | None = None,
        account: tuple[bytes, tuple[int, int, int]] | None = None,
    ) -> None:
        """Add an index entry without any check (tests of the integrity check only)."""
        if tx is not None:
            self._txs[tx[0]] = tx[1]
        if block_hash is not None:
            self._by_hash[block_hash[0]] = block_hash[1]
        if account is not None:
            self._accounts.setdefault(account[0], []).append(account[1])

    def _check(self) -> None:
        """Check every internal invariant, O(total size); for tests.

        Raises:
            StoreCorrupted: the indexes do not match the stored blocks.
        """
        txs: dict[bytes, tuple[int, int]] = {}
        accounts: dict[bytes, list[tuple[int, int, int]]] = {}
        header = None
        for height, data in enumerate(self._data):
            block = decode_block(data)
            entries = index_block(block)
            if block.height != height or self._by_hash.get(block.hash) != height:
                msg = f"block {height} is not indexed at its height and hash"
                raise StoreCorrupted(msg)
            check_extends(header, block)
            header = block.header
            txs.update((tx_id, (height, i)) for i, tx_id in enumerate(entries.tx_ids))
            for account, kind, index in entries.account_rows:
                accounts.setdefault(account, []).append((kind, height, index))
        if (header, txs, accounts) != (self._head, self._txs, self._accounts):
            msg = "head, transaction index or account index does not match the blocks"
            raise StoreCorrupted(msg)
        if len(self._by_hash) != len(self._data):
            msg = "the hash index holds blocks that are not stored"
            raise StoreCorrupted(msg)

    def tamper(self, height: int, data: bytes) -> None:
        """Replace a stored block's bytes without any check (tests of the audit only)."""
        self._data[height] = data
