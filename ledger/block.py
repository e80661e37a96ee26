"""Blocks: a signed header over the Merkle roots of a body of transactions and results.

Wire format (canonical msgpack)::

    header = [1, RecordKind.BLOCK_HEADER (2), chain_id, height, prev_hash, time_ns,
              tx_root, result_root, state_digest, proposer]
    block  = [1, RecordKind.BLOCK (3), header as bin, signature as bin,
              [transaction bytes as bin, ...], [result bytes as bin, ...]]

* ``height`` counts from 0 (the genesis block, whose ``prev_hash`` is 32 zero
  bytes); ``time_ns`` is the proposer's clock in nanoseconds (data, not
  checked against any clock here); ``state_digest`` is the market state
  digest after the block (32 bytes, from the node); ``proposer`` the raw
  32-byte Ed25519 public key of the signer.
* ``tx_root`` / ``result_root``: RFC 6962 Merkle roots (``ledger.merkle``)
  whose leaves are the exact transaction bytes and result record bytes.
* **Block hash** = ``SHA-256(HEADER_DOMAIN_TAG || header)`` with
  ``HEADER_DOMAIN_TAG = b"p2pex/block-header/v1\\x00"``; it is computed once
  per header object and cached.
* **Signature**: Ed25519 by ``proposer`` over
  ``BLOCK_SIGNATURE_TAG || block hash`` with
  ``BLOCK_SIGNATURE_TAG = b"p2pex/block-sig/v1\\x00"`` (a different tag from
  transaction signatures, so neither can stand for the other).

The header travels as a byte string inside the block, so the hash and the
signature cover exactly the received header bytes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from ledger.codec import as_array, as_bytes, as_int, as_list, as_str, decode_record, expect_header
from ledger.codec import encode_trusted as _encode
from ledger.errors import BadRecord
from ledger.keys import PUBLIC_KEY_SIZE, SIGNATURE_SIZE, SigningKey
from ledger.merkle import merkle_root
from ledger.results import ResultRecord
from ledger.transactions import SignedTransaction
from ledger.types import (
    HASH_SIZE,
    I64_MAX,
    MAX_BLOCK_ITEMS,
    MAX_BLOCK_SIZE,
    MAX_CHAIN_ID_LEN,
    ZERO_HASH,
    RecordKind,
)

BLOCK_VERSION = 1
HEADER_DOMAIN_TAG = b"p2pex/block-header/v1\x00"
BLOCK_SIGNATURE_TAG = b"p2pex/block-sig/v1\x00"
MAX_HEADER_SIZE = 1024


@dataclass(frozen=True, slots=True)
class BlockHeader:
    """A block header. ``hash`` and ``to_bytes()`` are computed once, on construction.

    Raises:
        BadRecord: on construction, a field of the wrong type, size or range.
    """

    version: int
    chain_id: str
    height: int
    prev_hash: bytes  # 32 bytes; ZERO_HASH for the genesis block
    time_ns: int  # proposer's clock, ns since the Unix epoch
    tx_root: bytes  # RFC 6962 root of the transaction bytes
    result_root: bytes  # RFC 6962 root of the result record bytes
    state_digest: bytes  # 32-byte market state digest after the block
    proposer: bytes  # raw 32-byte Ed25519 public key
    _bytes: bytes = field(init=False, repr=False, compare=False)
    hash: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        as_int(self.version, "header version", 0, 255)
        as_str(self.chain_id, "header chain id", MAX_CHAIN_ID_LEN)
        as_int(self.height, "header height", 0, I64_MAX)
        as_int(self.time_ns, "header time_ns", 0, I64_MAX)
        for name in ("prev_hash", "tx_root", "result_root", "state_digest"):
            as_bytes(getattr(self, name), f"header {name}", HASH_SIZE)
        as_bytes(self.proposer, "header proposer", PUBLIC_KEY_SIZE)
        data = _encode(
            [
                self.version,
                int(RecordKind.BLOCK_HEADER),
                self.chain_id,
                self.height,
                self.prev_hash,
                self.time_ns,
                self.tx_root,
                self.result_root,
                self.state_digest,
                self.proposer,
            ]
        )
        object.__setattr__(self, "_bytes", data)
        object.__setattr__(self, "hash", hashlib.sha256(HEADER_DOMAIN_TAG + data).digest())

    def to_bytes(self) -> bytes:
        """Return the canonical header bytes."""
        return self._bytes

    def signing_message(self) -> bytes:
        """Return the bytes the proposer signs."""
        return BLOCK_SIGNATURE_TAG + self.hash


def decode_header(data: bytes) -> BlockHeader:
    """Decode a block header from its exact bytes.

    Raises:
        DecodeError: malformed, oversized or non-canonical bytes, or fields of
            the wrong type or size (``BadRecord``).
    """
    fields = as_array(decode_record(data, max_size=MAX_HEADER_SIZE), 10, "block header")
    version = as_int(fields[0], "header version", 0, 255)
    expect_header(fields, version, RecordKind.BLOCK_HEADER, "block header")
    return BlockHeader(
        version,
        as_str(fields[2], "header chain id", MAX_CHAIN_ID_LEN),
        as_int(fields[3], "header height", 0, I64_MAX),
        as_bytes(fields[4], "header prev_hash", HASH_SIZE),
        as_int(fields[5], "header time_ns", 0, I64_MAX),
        as_bytes(fields[6], "header tx_root", HASH_SIZE),
        as_bytes(fields[7], "header result_root", HASH_SIZE),
        as_bytes(fields[8], "header state_digest", HASH_SIZE),
        as_bytes(fields[9], "header proposer", PUBLIC_KEY_SIZE),
    )


@dataclass(frozen=True, slots=True)
class Block:
    """A signed header and its body: transactions' and results' exact bytes.

    Build with ``build_block`` / ``sign_block`` or ``decode_block``; nothing
    here checks the signature or the roots (that is ``ledger.chain``).
    """

    header: BlockHeader
    signature: bytes  # 64-byte Ed25519 signature over header.signing_message()
    transactions: tuple[bytes, ...]
    results: tuple[bytes, ...]

    @property
    def hash(self) -> bytes:
        """The block hash (= the header hash)."""
        return self.header.hash

    @property
    def height(self) -> int:
        """The block height."""
        return self.header.height

    def to_bytes(self) -> bytes:
        """Return the canonical block bytes."""
        return _encode(
            [
                BLOCK_VERSION,
                int(RecordKind.BLOCK),
                self.header.to_bytes(),
                self.signature,
                list(self.transactions),
                list(self.results),
            ]
        )


def decode_block(data: bytes, *, max_size: int = MAX_BLOCK_SIZE) -> Block:
    """Decode a block from its exact bytes (transactions and results stay as bytes).

    Raises:
        DecodeError: malformed, oversized or non-canonical bytes, or a record
            of the wrong shape (``BadRecord``).
    """
    fields = as_array(decode_record(data, max_size=max_size), 6, "block")
    expect_header(fields, BLOCK_VERSION, RecordKind.BLOCK, "block")
    header = decode_header(as_bytes(fields[2], "block header", max_len=MAX_HEADER_SIZE))
    signature = as_bytes(fields[3], "block signature", SIGNATURE_SIZE)
    transactions = as_list(fields[4], "block transactions", MAX_BLOCK_ITEMS)
    results = as_list(fields[5], "block results", MAX_BLOCK_ITEMS)
    for what, items in (("transaction", transactions), ("result", results)):
        for item in items:
            if type(item) is not bytes:
                msg = f"block {what}: expected bytes, found {type(item).__name__}"
                raise BadRecord(msg, expected="bytes", found=type(item).__name__)
    return Block(header, signature, tuple(transactions), tuple(results))  # type: ignore[arg-type]


def _as_bytes_list(items: Sequence[bytes | SignedTransaction | ResultRecord]) -> tuple[bytes, ...]:
    return tuple(item if isinstance(item, bytes) else item.to_bytes() for item in items)


def make_header(
    *,
    chain_id: str,
    parent: BlockHeader | None,
    time_ns: int,
    transactions: Sequence[bytes],
    results: Sequence[bytes],
    state_digest: bytes,
    proposer: bytes,
    version: int = BLOCK_VERSION,
) -> BlockHeader:
    """Return the header of the block that follows ``parent`` (None: the genesis block)."""
    return BlockHeader(
        version=version,
        chain_id=chain_id,
        height=0 if parent is None else parent.height + 1,
        prev_hash=ZERO_HASH if parent is None else parent.hash,
        time_ns=time_ns,
        tx_root=merkle_root(transactions),
        result_root=merkle_root(results),
        state_digest=state_digest,
        proposer=proposer,
    )


def sign_block(
    key: SigningKey,
    header: BlockHeader,
    transactions: Sequence[bytes],
    results: Sequence[bytes],
) -> Block:
    """Sign ``header`` with ``key`` and return the block.

    Raises:
        BadRecord: ``header.proposer`` is not ``key``'s public key.
    """
    if header.proposer != key.public_key_bytes():
        msg = "the header's proposer is not the signing key's public key"
        raise BadRecord(msg, expected=key.public_key_bytes(), found=header.proposer)
    return Block(header, key.sign(header.signing_message()), tuple(transactions), tuple(results))


def build_block(
    key: SigningKey,
    *,
    chain_id: str,
    parent: BlockHeader | None,
    time_ns: int,
    transactions: Sequence[bytes | SignedTransaction],
    results: Sequence[bytes | ResultRecord] = (),
    state_digest: bytes = ZERO_HASH,
) -> Block:
    """Build and sign the block that follows ``parent`` (None: the genesis block).

    Args:
        key: the proposer's key (its public key goes in the header).
        chain_id: the chain id.
        parent: the header of the current head, or None for height 0.
        time_ns: the proposer's clock in ns (passed in: the ledger reads no clock).
        transactions: signed transactions or their exact bytes, in order.
        results: result records or their exact bytes, in order.
        state_digest: the 32-byte market state digest after the block.

    Returns:
        The signed block.
    """
    tx_bytes = _as_bytes_list(transactions)
    result_bytes = _as_bytes_list(results)
    header = make_header(
        chain_id=chain_id,
        parent=parent,
        time_ns=time_ns,
        transactions=tx_bytes,
        results=result_bytes,
        state_digest=state_digest,
        proposer=key.public_key_bytes(),
    )
    return sign_block(key, header, tx_bytes, result_bytes)
