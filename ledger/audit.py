"""Audit a stored chain, and prove single transactions and results to third parties.

``audit_chain`` walks the stored blocks from genesis (or a start height),
checks every rule of ``ledger.chain`` on each, and reports the first bad
block and why (``p2pex chain verify``). It is pure apart from reading the
store.

**Auditing on all cores.** Every rule but the nonce rule is local to a block
and its parent, so the chain can be cut into height ranges audited
independently (``audit_segment``, in separate processes, each opening the
store read-only) and the results combined with ``merge_segments``, which
checks the nonce rule across ranges and returns the same report a serial
audit gives (the same first bad height and error)::

    ranges = split_heights(store.height, workers)
    with ProcessPoolExecutor(workers) as pool:
        parts = pool.map(audit_file_segment, [path] * len(ranges), ranges, ...)
    report = merge_segments(list(parts))

(``bench/bench_ledger.py`` does exactly this.)

**Proofs.** ``prove_transaction`` / ``prove_result`` return an
``InclusionProof``; ``verify_inclusion_proof(header, proof, leaf_bytes)``
checks it with nothing but the block header (whose signature and place in
the chain the third party checks as it sees fit).
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from ledger.block import BlockHeader
from ledger.chain import validate_block
from ledger.codec import as_array, as_bytes, as_int, as_list, decode_record, expect_header
from ledger.codec import encode_trusted as _encode
from ledger.errors import (
    BadNonce,
    BadRecord,
    LedgerError,
    ProofIndexError,
    ValidationError,
)
from ledger.merkle import hash_leaf, inclusion_proof, verify_inclusion
from ledger.store import BlockStore
from ledger.transactions import parse_transaction
from ledger.types import HASH_SIZE, I64_MAX, MAX_BLOCK_ITEMS, RecordKind

PROOF_VERSION = 1
TRANSACTIONS = 0
"""``InclusionProof.tree``: the proof is against the header's ``tx_root``."""
RESULTS = 1
"""``InclusionProof.tree``: the proof is against the header's ``result_root``."""


@dataclass(frozen=True, slots=True)
class AuditReport:
    """The outcome of an audit.

    Attributes:
        ok: no block failed.
        blocks: blocks checked and found valid.
        transactions: transactions in those blocks.
        first_bad_height: the first block that failed, or None.
        error: why it failed (a ``LedgerError``), or None.
        head_hash: the hash of the last valid block, or None if there is none.
    """

    ok: bool
    blocks: int
    transactions: int
    first_bad_height: int | None
    error: LedgerError | None
    head_hash: bytes | None

    def describe(self) -> str:
        """Return a one-line human summary (for ``p2pex chain verify``)."""
        if self.ok:
            head = "empty chain" if self.head_hash is None else f"head {self.head_hash.hex()}"
            return f"OK: {self.blocks} blocks, {self.transactions} transactions, {head}"
        assert self.error is not None
        name = type(self.error).__name__
        where = "" if self.first_bad_height is None else f" at block {self.first_bad_height}"
        return f"FAILED{where}: {name}: {self.error}"


@dataclass(frozen=True, slots=True)
class SegmentAudit:
    """The audit of the heights [start, stop), for ``merge_segments``.

    Attributes:
        start, stop: the heights audited.
        valid_blocks: (transaction count, block hash) of each valid block, in order.
        first_nonces: sender -> (height, index, nonce) of its first
            transaction in the segment (before the first error).
        last_nonces: sender -> its last nonce in the valid blocks.
        error: the first failure, or None.
        error_height, error_index: where it failed (index None: block level).
    """

    start: int
    stop: int
    valid_blocks: tuple[tuple[int, bytes], ...]
    first_nonces: dict[bytes, tuple[int, int, int]]
    last_nonces: dict[bytes, int]
    error: LedgerError | None
    error_height: int | None
    error_index: int | None


def split_heights(height: int, parts: int) -> list[tuple[int, int]]:
    """Cut [0, height) into at most ``parts`` contiguous ranges of near-equal size.

    >>> split_heights(10, 3)
    [(0, 3), (3, 6), (6, 10)]
    >>> split_heights(0, 4)
    []
    """
    parts = max(1, min(parts, height))
    if height == 0:
        return []
    bounds = [height * i // parts for i in range(parts + 1)]
    return list(itertools.pairwise(bounds))


def audit_segment(
    store: BlockStore,
    start: int,
    stop: int,
    *,
    chain_id: str,
    authorised_proposers: Collection[bytes],
    operators: Collection[bytes] | None = None,
) -> SegmentAudit:
    """Audit the blocks at heights [start, stop), including the link to block start - 1.

    The nonce rule is checked only within the segment; ``merge_segments``
    checks it across segments. Stops at the first failure.
    """
    parent: BlockHeader | None = None
    first: dict[bytes, tuple[int, int, int]] = {}
    last: dict[bytes, int] = {}
    valid: list[tuple[int, bytes]] = []
    height = start
    try:
        if start > 0:
            height = start - 1
            parent = store.block_at(height).header
            height = start
        for height in range(start, stop):
            block = store.block_at(height)
            try:
                check = validate_block(
                    block,
                    parent,
                    chain_id=chain_id,
                    authorised_proposers=authorised_proposers,
                    nonces=last,
                    operators=operators,
                )
            except ValidationError as exc:
                # Record the first nonces of the transactions before the failing
                # one, so merge_segments can find an earlier cross-segment nonce
                # failure in this block, as a serial audit would.
                _note_first_nonces(block.transactions, exc.index, height, first)
                raise
            for sender, (index, nonce) in check.first_nonces.items():
                if sender not in first:
                    first[sender] = (height, index, nonce)
            last.update(check.last_nonces)
            parent = block.header
            valid.append((check.transactions, parent.hash))
    except LedgerError as exc:
        where = exc.index if isinstance(exc, ValidationError) else None
        return SegmentAudit(start, stop, tuple(valid), first, last, exc, height, where)
    return SegmentAudit(start, stop, tuple(valid), first, last, None, None, None)


def _note_first_nonces(
    transactions: Sequence[bytes],
    failed_index: int | None,
    height: int,
    first: dict[bytes, tuple[int, int, int]],
) -> None:
    """Record first nonces of the transactions that passed before a failure in a block."""
    # A block-level failure (index None) comes before any transaction is checked.
    end = 0 if failed_index is None else min(failed_index, len(transactions))
    for index in range(end):
        parsed = parse_transaction(transactions[index])
        sender, nonce = parsed[2], parsed[3]
        if sender not in first:
            first[sender] = (height, index, nonce)


def merge_segments(segments: Sequence[SegmentAudit]) -> AuditReport:
    """Combine segment audits, in height order, into the report a serial audit gives."""
    last: dict[bytes, int] = {}
    blocks = transactions = 0
    head_hash: bytes | None = None
    for segment in segments:
        # The earliest failure wins: the segment's own, or a nonce that is not
        # above the sender's last nonce in the segments before it.
        failure: tuple[int, int, LedgerError] | None = None
        if segment.error is not None:
            assert segment.error_height is not None
            index = -1 if segment.error_index is None else segment.error_index
            failure = (segment.error_height, index, segment.error)
        for sender, (height, index, nonce) in segment.first_nonces.items():
            previous = last.get(sender)
            if (
                previous is not None
                and nonce <= previous
                and (failure is None or (height, index) < failure[:2])
            ):
                msg = (
                    f"block {height}: transaction {index} from {sender.hex()[:16]} has "
                    f"nonce {nonce}, expected more than {previous}"
                )
                error = BadNonce(
                    msg, expected=previous + 1, found=nonce, height=height, index=index
                )
                failure = (height, index, error)
        # On failure, only the segment's blocks before it count as valid.
        cut = len(segment.valid_blocks) if failure is None else max(0, failure[0] - segment.start)
        for count, block_hash in segment.valid_blocks[:cut]:
            blocks += 1
            transactions += count
            head_hash = block_hash
        if failure is not None:
            return AuditReport(False, blocks, transactions, failure[0], failure[2], head_hash)
        last.update(segment.last_nonces)
    return AuditReport(True, blocks, transactions, None, None, head_hash)


def audit_chain(
    store: BlockStore,
    *,
    chain_id: str,
    authorised_proposers: Collection[bytes],
    operators: Collection[bytes] | None = None,
    start: int = 0,
    stop: int | None = None,
) -> AuditReport:
    """Verify every block of ``store`` in [start, stop) (default: the whole chain).

    With ``start > 0`` the first block is checked against the stored block
    before it, and the nonce rule only against the blocks audited.

    Returns:
        An ``AuditReport``; it never raises for bad data (that is the report).
    """
    end = store.height if stop is None else stop
    segment = audit_segment(
        store,
        start,
        end,
        chain_id=chain_id,
        authorised_proposers=authorised_proposers,
        operators=operators,
    )
    return merge_segments([segment])


@dataclass(frozen=True, slots=True)
class InclusionProof:
    """Proof that one leaf is in a block's transaction or result tree.

    Attributes:
        height: the block height.
        tree: ``TRANSACTIONS`` (0) or ``RESULTS`` (1).
        index: the leaf index in that tree.
        size: the number of leaves in that tree.
        path: the RFC 6962 audit path, bottom first.
    """

    height: int
    tree: int
    index: int
    size: int
    path: tuple[bytes, ...]

    def to_bytes(self) -> bytes:
        """Return the canonical encoding ``[1, 4, height, tree, index, size, [path]]``."""
        return _encode(
            [
                PROOF_VERSION,
                int(RecordKind.INCLUSION_PROOF),
                self.height,
                self.tree,
                self.index,
                self.size,
                list(self.path),
            ]
        )


def decode_inclusion_proof(data: bytes) -> InclusionProof:
    """Decode an ``InclusionProof`` from its canonical bytes.

    Raises:
        DecodeError: malformed, non-canonical or wrongly shaped bytes.
    """
    fields = as_array(decode_record(data, max_size=64 * 1024), 7, "inclusion proof")
    expect_header(fields, PROOF_VERSION, RecordKind.INCLUSION_PROOF, "inclusion proof")
    path = as_list(fields[6], "proof path", 64)
    return InclusionProof(
        as_int(fields[2], "proof height", 0, I64_MAX),
        as_int(fields[3], "proof tree", TRANSACTIONS, RESULTS),
        as_int(fields[4], "proof index", 0, MAX_BLOCK_ITEMS),
        as_int(fields[5], "proof size", 0, MAX_BLOCK_ITEMS),
        tuple(as_bytes(node, "proof node", HASH_SIZE) for node in path),
    )


def _prove(store: BlockStore, height: int, tree: int, index: int) -> InclusionProof:
    block = store.block_at(height)
    leaves = block.transactions if tree == TRANSACTIONS else block.results
    if not 0 <= index < len(leaves):
        msg = f"block {height} has {len(leaves)} leaves in that tree, no index {index}"
        raise ProofIndexError(msg, expected=len(leaves), found=index)
    sha = hashlib.sha256
    hashes = [sha(b"\x00" + leaf).digest() for leaf in leaves]
    return InclusionProof(height, tree, index, len(leaves), tuple(inclusion_proof(hashes, index)))


def prove_transaction(store: BlockStore, tx_id: bytes) -> InclusionProof | None:
    """Return the inclusion proof of a stored transaction, or None if unknown.

    The store checks its index row against the block (``store.transaction``);
    ``ledger.integrity.prove_stored_transaction`` also returns the leaf and
    header and verifies the proof before handing it out.

    Raises:
        StoreCorrupted: the index row points nowhere or at another transaction.
    """
    located = store.transaction(tx_id)
    if located is None:
        return None
    return _prove(store, located.height, TRANSACTIONS, located.index)


def prove_result(store: BlockStore, height: int, index: int) -> InclusionProof:
    """Return the inclusion proof of result ``index`` of the block at ``height``.

    Raises:
        BlockNotFound: no block at that height.
        ProofIndexError: the block has no such result.
    """
    return _prove(store, height, RESULTS, index)


def verify_inclusion_proof(header: BlockHeader, proof: InclusionProof, leaf: bytes) -> None:
    """Check that ``leaf`` (a transaction's or result's exact bytes) is in the block of ``header``.

    Raises:
        ProofIndexError: the proof is for another height, or its index is out of range.
        ProofLengthError: the path has the wrong length.
        RootMismatch: the path does not lead to the header's root.
        BadRecord: ``proof.tree`` is neither TRANSACTIONS nor RESULTS.
    """
    if proof.height != header.height:
        msg = f"proof is for block {proof.height}, header is block {header.height}"
        raise ProofIndexError(msg, expected=header.height, found=proof.height)
    if proof.tree == TRANSACTIONS:
        root = header.tx_root
    elif proof.tree == RESULTS:
        root = header.result_root
    else:
        msg = f"proof tree {proof.tree}, expected {TRANSACTIONS} or {RESULTS}"
        raise BadRecord(msg, expected=(TRANSACTIONS, RESULTS), found=proof.tree)
    verify_inclusion(proof.index, proof.size, hash_leaf(leaf), proof.path, root)
