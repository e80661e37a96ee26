"""Whole-store verification: whose chain it is, its indexes, and proofs that prove something.

Three checks a verifier of a stored chain needs beyond ``audit_chain``:

* **Whose chain is it.** ``audit_chain`` checks every block against the
  proposer keys it is given; a verifier that takes the key from the genesis
  block accepts any chain re-signed from genesis by anyone.
  ``verify_store`` takes the expected operator key; without one it still
  audits against the genesis signer but says so in ``warnings`` (and
  ``operator_pinned`` is False), for the caller to print loudly.
* **The indexes.** The store answers "which block holds transaction X",
  "the block with hash H" and "the results of account A" from index rows
  derived from the blocks. ``check_store_indexes`` recomputes every row
  from the blocks and compares: the ``blocks.hash`` column of every block,
  every ``txs`` row, every account row, plus the storage's own page check.
* **Proofs.** ``prove_stored_transaction`` finds a transaction through the
  index but trusts nothing there: the leaf must hash to the id asked for,
  and the proof must lead to the header's transaction root.

Everything reports a failure as a ``LedgerError`` carrying the height it
concerns (``AuditReport.first_bad_height`` or ``StoreCorrupted.height``), so
a command line prints "FAILED at block N: reason", never a traceback.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from typing import TypeVar

from ledger.audit import (
    TRANSACTIONS,
    AuditReport,
    InclusionProof,
    audit_chain,
    verify_inclusion_proof,
)
from ledger.block import Block, BlockHeader
from ledger.errors import (
    DecodeError,
    LedgerError,
    ProofError,
    StoreCorrupted,
    StoreError,
)
from ledger.merkle import LEAF_PREFIX, inclusion_proof
from ledger.store import (
    BlockStore,
    IndexedBlockStore,
    account_rows,
    indexed_transaction,
    transaction_not_found,
)

Row = TypeVar("Row", bound=tuple[object, ...])

Auditor = Callable[[str, Collection[bytes]], AuditReport]
"""``(chain_id, authorised_proposers) -> AuditReport``: the audit ``verify_store`` runs
(default: ``audit_chain`` on the store; a caller may pass a parallel one)."""


@dataclass(frozen=True, slots=True)
class TransactionProof:
    """A stored transaction, its block header and its checked inclusion proof.

    Attributes:
        tx_id: the id asked for (= SHA-256 of ``leaf``, checked).
        leaf: the transaction's exact bytes.
        header: the header of the block that holds it.
        proof: the inclusion proof against ``header.tx_root`` (checked).
    """

    tx_id: bytes
    leaf: bytes
    header: BlockHeader
    proof: InclusionProof


def prove_stored_transaction(store: BlockStore, tx_id: bytes) -> TransactionProof:
    """Prove that a transaction is in the chain, trusting no index.

    The index only says where to look: the transaction at that place must
    hash to ``tx_id``, and the proof, built from the block's transactions,
    is verified against the header's ``tx_root`` before it is returned.

    Raises:
        TransactionNotFound: no index row names ``tx_id``.
        StoreCorrupted: the row points past the block's transactions or at
            another transaction, the block is unreadable, or the proof fails
            against the block's own header (``height`` names the block).
    """
    tx_id = bytes(tx_id)
    located = store.transaction(tx_id)
    if located is None:
        raise transaction_not_found(tx_id)
    height, index = located.height, located.index
    try:
        block = store.block_at(height)
        leaf = block.transactions[index] if 0 <= index < len(block.transactions) else b""
        indexed_transaction(block, index, tx_id)  # the row is checked again, here
        leaves = [hashlib.sha256(LEAF_PREFIX + tx).digest() for tx in block.transactions]
        path = tuple(inclusion_proof(leaves, index))
        proof = InclusionProof(height, TRANSACTIONS, index, len(leaves), path)
        verify_inclusion_proof(block.header, proof, leaf)
    except StoreCorrupted:
        raise
    except (ProofError, DecodeError, StoreError) as exc:
        msg = f"block {height} cannot prove transaction {tx_id.hex()}: {exc}"
        raise StoreCorrupted(msg, height=height) from exc
    return TransactionProof(tx_id, leaf, block.header, proof)


@dataclass(frozen=True, slots=True)
class IndexCheck:
    """What ``check_store_indexes`` checked (it raises on the first bad row).

    Attributes:
        blocks: blocks whose stored hash was checked.
        tx_rows: transaction index rows checked.
        account_rows: account index rows checked.
    """

    blocks: int
    tx_rows: int
    account_rows: int


class _Rows(Iterator[Row]):
    """An iterator of (height, ...) rows that can hand back the rows of one height."""

    __slots__ = ("_it", "_next")

    def __init__(self, rows: Iterator[Row]) -> None:
        self._it = rows
        self._next: Row | None = next(rows, None)

    def __next__(self) -> Row:
        if self._next is None:
            raise StopIteration
        row, self._next = self._next, next(self._it, None)
        return row

    def close(self) -> None:
        """Close the underlying generator (its database statement) now, not at collection."""
        close = getattr(self._it, "close", None)
        if close is not None:
            close()

    def peek_height(self) -> int | None:
        return None if self._next is None else int(self._next[0])  # type: ignore[call-overload]

    def take(self, height: int) -> list[Row]:
        """The rows of ``height``; rows of a lower height left before it are an error."""
        taken: list[Row] = []
        while (at := self.peek_height()) is not None and at <= height:
            row = next(self)
            if at < height:
                msg = f"an index row names block {at} index {row[1]}, which holds no such entry"
                raise StoreCorrupted(msg, height=at, found=row)
            taken.append(row)
        return taken


def _compare(what: str, height: int, have: list[Row], want: list[Row], *, complete: bool) -> None:
    """Raise StoreCorrupted unless ``have`` is ``want`` (or, not ``complete``, part of it)."""
    if have == want or (not complete and set(have) <= set(want)):
        return
    extra = sorted(set(have) - set(want))
    missing = sorted(set(want) - set(have)) if complete else []
    msg = f"block {height}: the {what} index does not match the block"
    if extra:
        msg += f"; row not in the block: {_show(extra[0])}"
    if missing:
        msg += f"; row missing: {_show(missing[0])}"
    raise StoreCorrupted(msg, height=height, expected=want, found=have)


def _show(row: tuple[object, ...]) -> str:
    return ", ".join(item.hex()[:16] if isinstance(item, bytes) else str(item) for item in row)


def check_store_indexes(store: IndexedBlockStore) -> IndexCheck:
    """Check every index row of ``store`` against its blocks, one block at a time.

    * the stored hash of every block (the key of ``block_by_hash``) is the
      hash of its header;
    * every block below the ``indexed`` mark has exactly its transaction
      rows (id = SHA-256 of the transaction at that index) and account rows
      (one per account each result names, with the result's kind); blocks
      above it have none or some of them (an index being written);
    * no row names a block that is not stored or an index it does not hold;
    * the storage's own check (``check_pages``: SQLite's ``integrity_check``).

    Results that do not decode give no rows (the audit reports them). Reads
    the whole store once, in height order; the rows are streamed in order.

    Raises:
        StoreCorrupted: the first bad row or block (``height`` names it;
            None for a page check failure that names no block).
    """
    problem = store.check_pages()
    if problem is not None:
        msg = f"the storage check fails: {problem}"
        raise StoreCorrupted(msg)
    height_limit = store.height
    mark = min(store.indexed_height(), height_limit)
    hashes: _Rows[tuple[int, bytes]] = _Rows(store.stored_hashes())
    txs: _Rows[tuple[int, int, bytes]] = _Rows(store.stored_tx_rows())
    accounts: _Rows[tuple[int, int, bytes, int]] = _Rows(store.stored_account_rows())
    try:
        return _check_rows(store, hashes, txs, accounts, height_limit, mark)
    finally:
        for rows in (hashes, txs, accounts):
            rows.close()


def _check_rows(
    store: BlockStore,
    hashes: _Rows[tuple[int, bytes]],
    txs: _Rows[tuple[int, int, bytes]],
    accounts: _Rows[tuple[int, int, bytes, int]],
    height_limit: int,
    mark: int,
) -> IndexCheck:
    tx_count = account_count = 0
    sha = hashlib.sha256
    for height in range(height_limit):
        block = _read_block(store, height)
        stored_hash = hashes.take(height)
        if stored_hash != [(height, block.hash)]:
            found = stored_hash[0][1].hex() if stored_hash else "nothing"
            msg = f"block {height}: stored hash {found}, the header hashes to {block.hash.hex()}"
            raise StoreCorrupted(msg, height=height, expected=block.hash, found=stored_hash)
        complete = height < mark
        want_txs = [(height, i, sha(tx).digest()) for i, tx in enumerate(block.transactions)]
        have_txs = txs.take(height)
        _compare("transaction", height, have_txs, want_txs, complete=complete)
        rows, _ = account_rows(block)
        want_accounts = sorted({(height, index, a, kind) for a, kind, index in rows})
        have_accounts = accounts.take(height)
        _compare("account", height, have_accounts, want_accounts, complete=complete)
        tx_count += len(have_txs)
        account_count += len(have_accounts)
    for rows_left, what in ((txs, "transaction"), (accounts, "account")):
        for row in rows_left:
            at = int(row[0])
            if _stored_since(store, at):
                continue  # a block appended after this check began, with its rows
            msg = f"a {what} index row names block {at}, which is not stored: {_show(row)}"
            raise StoreCorrupted(msg, height=at, found=row)
    return IndexCheck(height_limit, tx_count, account_count)


def _read_block(store: BlockStore, height: int) -> Block:
    try:
        return store.block_at(height)
    except StoreCorrupted:
        raise
    except (DecodeError, StoreError) as exc:
        msg = f"block {height} cannot be read: {exc}"
        raise StoreCorrupted(msg, height=height) from exc


def _stored_since(store: BlockStore, height: int) -> bool:
    """Whether a block at ``height`` (at or past the height the check began with) is stored now."""
    try:
        store.block_bytes(height)
    except LedgerError:
        return False
    return True


UNPINNED_WARNING = (
    "WARNING: no operator key is pinned or given: trusting the key that signed the "
    "genesis block ({key}). A chain re-signed from genesis by anyone would pass; "
    "give the operator's public key to check whose chain this is."
)


@dataclass(frozen=True, slots=True)
class StoreVerification:
    """The outcome of ``verify_store``.

    Attributes:
        report: the ledger audit (and, when it passed, the index check:
            a bad index row fails the report at its block).
        operator: the key the blocks were checked against.
        operator_pinned: the key was given by the caller; False means the
            genesis signer was trusted (see ``warnings``).
        warnings: what the caller must show the user, loudly.
        indexes: what the index check covered, or None if it did not run.
    """

    report: AuditReport
    operator: bytes | None
    operator_pinned: bool
    warnings: tuple[str, ...]
    indexes: IndexCheck | None

    @property
    def ok(self) -> bool:
        """Every block and every index row checked out."""
        return self.report.ok

    def describe(self) -> str:
        """One line: "OK: ..." or "FAILED at block N: Error: reason"."""
        return self.report.describe()


def verify_store(
    store: BlockStore,
    *,
    operator: bytes | None,
    chain_id: str | None = None,
    operators: Collection[bytes] | None = None,
    check_indexes: bool = True,
    auditor: Auditor | None = None,
) -> StoreVerification:
    """Audit a stored chain against an expected operator key, then check its indexes.

    Args:
        store: the chain (open it read-only: verifying writes nothing).
        operator: the operator's public key, the only authorised proposer.
            None: trust the genesis block's signer, and say so in ``warnings``.
        chain_id: the expected chain id (default: the genesis block's).
        operators: keys allowed to send operator-only transactions
            (default: ``operator``).
        check_indexes: also run ``check_store_indexes`` when the audit passes
            and the store shows its index rows (``IndexedBlockStore``).
        auditor: the audit to run (default: ``audit_chain`` on ``store``).

    Returns:
        A ``StoreVerification``; it never raises for bad data: an unreadable
        genesis block, a block signed by another key, a corrupt page or a
        bad index row all give a failed report naming the block.
    """
    warnings: list[str] = []
    if store.height == 0:
        empty = AuditReport(True, 0, 0, None, None, None)
        return StoreVerification(empty, operator, operator is not None, (), None)
    try:
        genesis = _read_block(store, 0).header
    except StoreCorrupted as exc:
        failed = AuditReport(False, 0, 0, 0, exc, None)
        return StoreVerification(failed, operator, operator is not None, (), None)
    pinned = operator is not None
    if operator is None:
        operator = genesis.proposer
        warnings.append(UNPINNED_WARNING.format(key=operator.hex()))
    chain = genesis.chain_id if chain_id is None else chain_id
    allowed = (operator,)
    if auditor is None:
        report = audit_chain(
            store, chain_id=chain, authorised_proposers=allowed, operators=operators
        )
    else:
        try:
            report = auditor(chain, allowed)
        except LedgerError as exc:  # e.g. a worker of a parallel audit could not open the store
            height = getattr(exc, "height", None)
            report = AuditReport(False, 0, 0, height, exc, None)
    indexes = None
    if report.ok and check_indexes and isinstance(store, IndexedBlockStore):
        try:
            indexes = check_store_indexes(store)
        except StoreCorrupted as exc:
            at = exc.height if exc.height is not None else report.blocks
            blocks, txs = report.blocks, report.transactions  # every block passed the audit
            report = AuditReport(False, blocks, txs, at, exc, report.head_hash)
    return StoreVerification(report, operator, pinned, tuple(warnings), indexes)
