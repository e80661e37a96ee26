"""Exceptions of the ledger.

Every error the ledger raises is a ``LedgerError``. Errors that say a rule was
broken carry what was expected and what was found (``expected`` / ``found``),
and, when they concern a block, its ``height`` and the ``index`` of the
transaction or result inside it (``None`` for header-level failures).

    LedgerError
    ├── EncodeError                  a value cannot be canonically encoded
    ├── DecodeError                  bytes are not one valid canonical record
    │   ├── MalformedData            not msgpack, truncated, bad UTF-8
    │   │   └── TrailingBytes        a valid record followed by more bytes
    │   ├── OversizedData            longer than the size limit
    │   ├── UnexpectedType           a map, float, nil, bool or ext value
    │   ├── NonCanonicalEncoding     re-encoding gives other bytes
    │   └── BadRecord                wrong shape: version, kind, arity, field type or range
    ├── KeyFileError                 a key cannot be saved or loaded
    ├── ValidationError              a chain rule is broken
    │   ├── InvalidTransaction
    │   │   ├── BadTransactionSignature
    │   │   ├── TransactionChainMismatch
    │   │   ├── UnauthorisedSender   operator-only kind from another key
    │   │   └── BadNonce             nonce not above the sender's last one
    │   └── InvalidBlock
    │       ├── BadHeight
    │       ├── BadParentHash
    │       ├── WrongChainId
    │       ├── UnsupportedVersion
    │       ├── UnauthorisedProposer
    │       ├── BadBlockSignature
    │       ├── BadMerkleRoot
    │       │   ├── BadTransactionRoot
    │       │   └── BadResultRoot
    │       └── MalformedBlockContent  a transaction or result does not decode
    ├── ProofError                   a Merkle proof does not check out
    │   ├── ProofIndexError          index or tree sizes out of range
    │   ├── ProofLengthError         wrong number of proof nodes
    │   └── RootMismatch             the proof leads to another root
    └── StoreError
        ├── NotExtendingHead         append of a block that does not follow the head
        ├── DuplicateTransaction     a transaction id already stored
        ├── BlockNotFound
        ├── TransactionNotFound      no stored block holds that transaction id
        └── StoreCorrupted           the database is not a consistent chain

Errors survive pickling with their fields (the parallel audit sends them
between processes).
"""

from __future__ import annotations


def _restore_error(
    cls: type[LedgerError], args: tuple[object, ...], state: dict[str, object]
) -> LedgerError:
    """Rebuild a pickled ``LedgerError`` without calling its ``__init__``."""
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


class LedgerError(Exception):
    """Raised when ledger data is malformed, invalid or cannot be stored."""

    def __reduce__(self) -> tuple[object, ...]:
        # Subclasses take keyword fields, so the default (cls(*args)) would fail.
        return (_restore_error, (type(self), self.args, dict(self.__dict__)))


class EncodeError(LedgerError):
    """Raised when a value cannot be canonically encoded (float, bool, int out of range)."""


class DecodeError(LedgerError):
    """Raised when bytes are not exactly one valid canonical record."""


class MalformedData(DecodeError):
    """Raised when bytes are not msgpack at all, are truncated or hold invalid UTF-8."""


class TrailingBytes(MalformedData):
    """Raised when a complete record is followed by further bytes."""


class OversizedData(DecodeError):
    """Raised when the input is longer than the size limit (checked before parsing)."""

    def __init__(self, message: str, *, expected: int, found: int) -> None:
        super().__init__(message)
        self.expected = expected
        self.found = found


class UnexpectedType(DecodeError):
    """Raised when the input holds a map, float, nil, boolean or extension value."""


class NonCanonicalEncoding(DecodeError):
    """Raised when re-encoding the decoded value does not give the received bytes."""


class BadRecord(DecodeError):
    """Raised when a record has the wrong version, kind, arity, field type or range."""

    def __init__(self, message: str, *, expected: object = None, found: object = None) -> None:
        super().__init__(message)
        self.expected = expected
        self.found = found


class KeyFileError(LedgerError):
    """Raised when a key file cannot be written or read, or holds no Ed25519 key."""


class ValidationError(LedgerError):
    """Raised when a transaction or block breaks a rule of the chain.

    Attributes:
        expected: what the rule wants.
        found: what the block or transaction holds.
        height: the block height, when the failure is inside a block.
        index: the transaction (or result) index inside the block, else None.
    """

    def __init__(
        self,
        message: str,
        *,
        expected: object = None,
        found: object = None,
        height: int | None = None,
        index: int | None = None,
    ) -> None:
        super().__init__(message)
        self.expected = expected
        self.found = found
        self.height = height
        self.index = index


class InvalidTransaction(ValidationError):
    """Raised when a signed transaction breaks a rule."""


class BadTransactionSignature(InvalidTransaction):
    """Raised when a transaction's signature does not verify under its sender key."""


class TransactionChainMismatch(InvalidTransaction):
    """Raised when a transaction was signed for another chain id."""


class UnauthorisedSender(InvalidTransaction):
    """Raised when an operator-only transaction kind is sent by a non-operator key."""


class BadNonce(InvalidTransaction):
    """Raised when a nonce is not strictly above the sender's previous nonce."""


class InvalidBlock(ValidationError):
    """Raised when a block breaks a rule of the chain."""


class BadHeight(InvalidBlock):
    """Raised when a block's height is not its parent's height plus one."""


class BadParentHash(InvalidBlock):
    """Raised when a block's previous hash is not its parent's header hash."""


class WrongChainId(InvalidBlock):
    """Raised when a block header names another chain id."""


class UnsupportedVersion(InvalidBlock):
    """Raised when a block header has a version this code does not validate."""


class UnauthorisedProposer(InvalidBlock):
    """Raised when a block's proposer key is not an authorised proposer."""


class BadBlockSignature(InvalidBlock):
    """Raised when a block header's signature does not verify under its proposer key."""


class BadMerkleRoot(InvalidBlock):
    """Raised when a Merkle root in the header does not match the block body."""


class BadTransactionRoot(BadMerkleRoot):
    """Raised when the header's transaction root does not match the transactions."""


class BadResultRoot(BadMerkleRoot):
    """Raised when the header's result root does not match the results."""


class MalformedBlockContent(InvalidBlock):
    """Raised when a transaction or result in a block body does not decode.

    ``index`` counts transactions first, then results (result i has index
    ``len(transactions) + i``); ``__cause__`` holds the ``DecodeError``.
    """


class ProofError(LedgerError):
    """Raised when a Merkle inclusion or consistency proof does not check out."""

    def __init__(self, message: str, *, expected: object = None, found: object = None) -> None:
        super().__init__(message)
        self.expected = expected
        self.found = found


class ProofIndexError(ProofError):
    """Raised when a leaf index or tree size is out of range for the proof asked."""


class ProofLengthError(ProofError):
    """Raised when a proof has the wrong number of nodes for its index and tree size."""


class RootMismatch(ProofError):
    """Raised when a proof leads to a root other than the expected one."""


class StoreError(LedgerError):
    """Raised when the block store refuses an operation or finds itself inconsistent."""


class NotExtendingHead(StoreError):
    """Raised when an appended block does not extend the store's head."""

    def __init__(self, message: str, *, expected: object, found: object) -> None:
        super().__init__(message)
        self.expected = expected
        self.found = found


class DuplicateTransaction(StoreError):
    """Raised when an appended block holds a transaction id that is already stored."""


class BlockNotFound(StoreError):
    """Raised when a block height is outside the stored chain."""


class TransactionNotFound(StoreError):
    """Raised when no stored block holds a transaction with the id asked for."""


class StoreCorrupted(StoreError):
    """Raised when the database does not hold a consistent chain, or cannot be read.

    Attributes:
        height: the first block concerned (a missing height, a block whose
            page or index row is bad), or None when no block is named.
        expected, found: what the blocks say and what the store holds.
    """

    def __init__(
        self,
        message: str,
        *,
        height: int | None = None,
        expected: object = None,
        found: object = None,
    ) -> None:
        super().__init__(message)
        self.height = height
        self.expected = expected
        self.found = found
