"""Chain rules: what makes a block valid after its parent.

``validate_block`` checks, in this order, and raises the first failure:

1. header version (``UnsupportedVersion``) and chain id (``WrongChainId``);
2. height = parent height + 1, or 0 without a parent (``BadHeight``);
3. previous hash = parent's block hash, or 32 zero bytes (``BadParentHash``);
4. proposer is an authorised key (``UnauthorisedProposer``);
5. the proposer's signature over the header (``BadBlockSignature``);
6. the transaction and result Merkle roots (``BadTransactionRoot``,
   ``BadResultRoot``): any change to the body is caught here;
7. each transaction in order: it decodes canonically
   (``MalformedBlockContent``), names this chain (``TransactionChainMismatch``),
   its signature verifies (``BadTransactionSignature``), an operator-only kind
   comes from an operator key (``UnauthorisedSender``), and its nonce is above
   the sender's previous one in the chain (``BadNonce``);
8. each result record decodes canonically (``MalformedBlockContent``).

Every error carries ``expected``, ``found``, ``height`` and ``index``.

Nonces are tracked per sender public key. ``validate_block`` reads the last
nonce of each sender from a mapping the caller keeps (the audit carries one
along the chain) and returns the block's updates without changing it, so a
refused block leaves the caller's state as it was.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from ledger.block import BLOCK_VERSION, Block, BlockHeader
from ledger.errors import (
    BadBlockSignature,
    BadHeight,
    BadNonce,
    BadParentHash,
    BadResultRoot,
    BadTransactionRoot,
    BadTransactionSignature,
    DecodeError,
    MalformedBlockContent,
    TransactionChainMismatch,
    UnauthorisedProposer,
    UnauthorisedSender,
    UnsupportedVersion,
    WrongChainId,
)
from ledger.keys import verify_signature
from ledger.merkle import LEAF_PREFIX, root_from_leaf_hashes
from ledger.results import check_result
from ledger.transactions import OPERATOR_KINDS, TX_DOMAIN_TAG, parse_transaction
from ledger.types import ZERO_HASH


@dataclass(frozen=True, slots=True)
class BlockCheck:
    """What ``validate_block`` learnt from a valid block.

    Attributes:
        first_nonces: sender -> (transaction index, nonce) of its first
            transaction in the block.
        last_nonces: sender -> its last nonce in the block (merge these into
            the caller's nonce map to validate the next block).
        transactions: number of transactions checked.
    """

    first_nonces: dict[bytes, tuple[int, int]]
    last_nonces: dict[bytes, int]
    transactions: int


def validate_header(
    header: BlockHeader,
    signature: bytes,
    parent: BlockHeader | None,
    *,
    chain_id: str,
    authorised_proposers: Collection[bytes],
) -> None:
    """Check rules 1-5 (everything but the body) of a header.

    Raises:
        InvalidBlock: the subclass of the first rule broken.
    """
    height = header.height
    if header.version != BLOCK_VERSION:
        msg = f"block {height}: version {header.version}, expected {BLOCK_VERSION}"
        raise UnsupportedVersion(msg, expected=BLOCK_VERSION, found=header.version, height=height)
    if header.chain_id != chain_id:
        msg = f"block {height}: chain id {header.chain_id!r}, expected {chain_id!r}"
        raise WrongChainId(msg, expected=chain_id, found=header.chain_id, height=height)
    want_height = 0 if parent is None else parent.height + 1
    if height != want_height:
        msg = f"block height {height}, expected {want_height}"
        raise BadHeight(msg, expected=want_height, found=height, height=height)
    want_prev = ZERO_HASH if parent is None else parent.hash
    if header.prev_hash != want_prev:
        msg = f"block {height}: previous hash {header.prev_hash.hex()}, expected {want_prev.hex()}"
        raise BadParentHash(msg, expected=want_prev, found=header.prev_hash, height=height)
    if header.proposer not in authorised_proposers:
        msg = f"block {height}: proposer {header.proposer.hex()} is not authorised"
        raise UnauthorisedProposer(
            msg,
            expected=tuple(sorted(authorised_proposers)),
            found=header.proposer,
            height=height,
        )
    if not verify_signature(header.proposer, signature, header.signing_message()):
        msg = f"block {height}: header signature does not verify under the proposer key"
        raise BadBlockSignature(msg, expected=header.proposer, found=signature, height=height)


def validate_block(
    block: Block,
    parent: BlockHeader | None,
    *,
    chain_id: str,
    authorised_proposers: Collection[bytes],
    nonces: Mapping[bytes, int] | None = None,
    operators: Collection[bytes] | None = None,
) -> BlockCheck:
    """Check every rule for ``block`` following ``parent`` (see the module docstring).

    Args:
        block: the block to check.
        parent: the header of the block before it; None for the genesis block.
        chain_id: the chain id every header and transaction must name.
        authorised_proposers: public keys allowed to propose (sign) blocks.
        nonces: the last nonce of each sender in the chain before this block
            (a sender not in it has sent nothing yet: its first nonce must be
            at least 1). Not modified.
        operators: public keys allowed to send operator-only transaction
            kinds; defaults to ``authorised_proposers``.

    Returns:
        The block's nonce updates and transaction count.

    Raises:
        InvalidBlock: a header rule, a Merkle root or an undecodable body item.
        InvalidTransaction: a transaction rule (with ``height`` and ``index``).
    """
    header = block.header
    height = header.height
    validate_header(
        header,
        block.signature,
        parent,
        chain_id=chain_id,
        authorised_proposers=authorised_proposers,
    )
    transactions = block.transactions
    sha = hashlib.sha256
    calculated = root_from_leaf_hashes([sha(LEAF_PREFIX + tx).digest() for tx in transactions])
    if calculated != header.tx_root:
        msg = (
            f"block {height}: transaction root {calculated.hex()}, "
            f"header says {header.tx_root.hex()}"
        )
        raise BadTransactionRoot(msg, expected=header.tx_root, found=calculated, height=height)
    calculated = root_from_leaf_hashes([sha(LEAF_PREFIX + r).digest() for r in block.results])
    if calculated != header.result_root:
        msg = (
            f"block {height}: result root {calculated.hex()}, "
            f"header says {header.result_root.hex()}"
        )
        raise BadResultRoot(msg, expected=header.result_root, found=calculated, height=height)

    known: Mapping[bytes, int] = nonces if nonces is not None else {}
    allowed = authorised_proposers if operators is None else operators
    first: dict[bytes, tuple[int, int]] = {}
    last: dict[bytes, int] = {}
    for index, data in enumerate(transactions):
        try:
            kind, tx_chain, sender, nonce, body, signature, _ = parse_transaction(data)
        except DecodeError as exc:
            msg = f"block {height}: transaction {index} does not decode: {exc}"
            raise MalformedBlockContent(
                msg, expected="a canonical transaction", found=data[:64], height=height, index=index
            ) from exc
        if tx_chain != chain_id:
            msg = f"block {height}: transaction {index} is for chain {tx_chain!r}, not {chain_id!r}"
            raise TransactionChainMismatch(
                msg, expected=chain_id, found=tx_chain, height=height, index=index
            )
        if not verify_signature(sender, signature, TX_DOMAIN_TAG + body):
            msg = f"block {height}: transaction {index} has a bad signature"
            raise BadTransactionSignature(
                msg, expected=sender, found=signature, height=height, index=index
            ) from None
        if kind in OPERATOR_KINDS and sender not in allowed:
            msg = f"block {height}: transaction {index} ({kind.name}) from a non-operator key"
            raise UnauthorisedSender(
                msg, expected=tuple(sorted(allowed)), found=sender, height=height, index=index
            )
        previous = last.get(sender)
        if previous is None:
            previous = known.get(sender, 0)  # nothing sent yet: nonces start at 1
            first[sender] = (index, nonce)
        if nonce <= previous:
            msg = (
                f"block {height}: transaction {index} from {sender.hex()[:16]} has nonce "
                f"{nonce}, expected more than {previous}"
            )
            raise BadNonce(msg, expected=previous + 1, found=nonce, height=height, index=index)
        last[sender] = nonce

    offset = len(transactions)
    for position, data in enumerate(block.results):
        try:
            check_result(data)
        except DecodeError as exc:
            index = offset + position
            msg = f"block {height}: result {position} does not decode: {exc}"
            raise MalformedBlockContent(
                msg, expected="a canonical result", found=data[:64], height=height, index=index
            ) from exc
    return BlockCheck(first, last, len(transactions))
