"""Signed transactions: kinds, payloads, signing, canonical bytes, ids.

Wire format (all canonical msgpack, see ``ledger.codec``)::

    body  = [1, kind, chain_id, sender, nonce, [payload fields...]]
    tx    = [1, RecordKind.SIGNED_TRANSACTION (1), body as bin, signature as bin]

* ``kind`` is a ``TxKind``; ``chain_id`` a str (at most 64 characters);
  ``sender`` the raw 32-byte Ed25519 public key; ``nonce`` an int in
  [0, 2**64 - 1]; the payload fields are those of the kind's dataclass, in
  declaration order (bools as 0 / 1).
* **Signature**: Ed25519 by ``sender`` over ``TX_DOMAIN_TAG || body``, where
  ``TX_DOMAIN_TAG = b"p2pex/tx/v1\\x00"``. The body holds the chain id, the
  sender and the nonce, so a signature is valid on one chain only and a
  replayed transaction is caught by the nonce rule. The tag keeps
  transaction signatures apart from block signatures (``ledger.block``).
* **Transaction id**: ``SHA-256(tx)``, the hash of the exact bytes including
  the signature. The body travels as a byte string inside ``tx`` so that the
  signed bytes are exactly the received ones, never a re-encoding.
* **Nonces** are strictly increasing per sender; gaps are allowed (a client
  may skip nonces, e.g. after a transaction it abandoned), so the rule is
  ``nonce > last nonce of that sender``, with the last nonce of a sender
  that has sent nothing taken as 0: an account's first transaction may use
  any nonce >= 1 (a transaction with nonce 0 is well-formed but can never
  enter the chain). The check across blocks lives in ``ledger.chain``.

The payload classes live in ``ledger.payloads`` and are re-exported here.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import NoReturn

from ledger.codec import (
    Value,
    as_array,
    as_bytes,
    as_int,
    as_list,
    as_str,
    decode_record,
    expect_header,
    is_utf8,
)
from ledger.codec import encode_trusted as _encode
from ledger.errors import BadRecord, BadTransactionSignature, TransactionChainMismatch
from ledger.fields import build_checked, check_values, compile_checker, fields_to_values
from ledger.keys import PUBLIC_KEY_SIZE, SIGNATURE_SIZE, SigningKey, verify_signature
from ledger.payloads import OPERATOR_KINDS as OPERATOR_KINDS
from ledger.payloads import PAYLOAD_TYPES as PAYLOAD_TYPES
from ledger.payloads import PRODUCTS as PRODUCTS
from ledger.payloads import ROLES as ROLES
from ledger.payloads import SIDES as SIDES
from ledger.payloads import TIME_IN_FORCE as TIME_IN_FORCE
from ledger.payloads import AmendOrder as AmendOrder
from ledger.payloads import CancelOrder as CancelOrder
from ledger.payloads import CloseSlot as CloseSlot
from ledger.payloads import DeclareChp as DeclareChp
from ledger.payloads import DeclareCurve as DeclareCurve
from ledger.payloads import Payload as Payload
from ledger.payloads import PlaceOrder as PlaceOrder
from ledger.payloads import PublishClearing as PublishClearing
from ledger.payloads import RegisterPeer as RegisterPeer
from ledger.payloads import SetNetwork as SetNetwork
from ledger.payloads import SetTariff as SetTariff
from ledger.payloads import TxKind as TxKind
from ledger.types import MAX_CHAIN_ID_LEN, MAX_TRANSACTION_SIZE, U64_MAX, RecordKind

TX_VERSION = 1
TX_DOMAIN_TAG = b"p2pex/tx/v1\x00"


@dataclass(frozen=True, slots=True)
class Transaction:
    """An unsigned transaction: who sends what, on which chain, with which nonce.

    Raises:
        BadRecord: on construction, if a field has the wrong type or range or
            ``kind`` does not match the payload.
    """

    kind: TxKind
    chain_id: str
    sender: bytes  # raw 32-byte Ed25519 public key
    nonce: int  # strictly increasing per sender, gaps allowed
    payload: Payload

    def __post_init__(self) -> None:
        if PAYLOAD_TYPES.get(self.kind) is not type(self.payload):
            msg = f"kind {self.kind!r} does not match payload {type(self.payload).__name__}"
            raise BadRecord(msg, expected=self.kind, found=type(self.payload).__name__)
        if (
            type(self.chain_id) is not str
            or not 0 < len(self.chain_id) <= MAX_CHAIN_ID_LEN
            or not (self.chain_id.isascii() or is_utf8(self.chain_id))
        ):
            msg = f"chain id must be a non-empty str of at most {MAX_CHAIN_ID_LEN} characters"
            raise BadRecord(msg, expected="chain id", found=self.chain_id)
        if type(self.sender) is not bytes or len(self.sender) != PUBLIC_KEY_SIZE:
            msg = f"sender must be a {PUBLIC_KEY_SIZE}-byte public key"
            raise BadRecord(msg, expected=PUBLIC_KEY_SIZE, found=self.sender)
        if type(self.nonce) is not int or not 0 <= self.nonce <= U64_MAX:
            msg = f"nonce must be an int in [0, 2**64 - 1], found {self.nonce!r}"
            raise BadRecord(msg, expected=(0, U64_MAX), found=self.nonce)

    def body_bytes(self) -> bytes:
        """Return the canonical body bytes (what is signed, after the domain tag)."""
        payload = fields_to_values(self.payload, self.payload.SPECS)
        return _encode(
            [TX_VERSION, int(self.kind), self.chain_id, self.sender, self.nonce, payload]
        )


@dataclass(frozen=True, slots=True)
class SignedTransaction:
    """A transaction with its signature and exact bytes.

    Build one with ``sign_transaction`` or ``decode_transaction``; the
    signature is not checked until ``verify_transaction``.

    Attributes:
        transaction: the decoded transaction.
        signature: 64-byte Ed25519 signature over ``TX_DOMAIN_TAG || body``.
        body: the exact signed body bytes.
        data: the exact transaction bytes (what is stored and hashed).
        tx_id: SHA-256 of ``data``.
    """

    transaction: Transaction
    signature: bytes
    body: bytes = field(repr=False)
    data: bytes = field(repr=False)
    tx_id: bytes

    def to_bytes(self) -> bytes:
        """Return the exact transaction bytes."""
        return self.data


def signing_message(body: bytes) -> bytes:
    """Return the bytes a sender signs for a transaction body."""
    return TX_DOMAIN_TAG + body


def _envelope(body: bytes, signature: bytes) -> bytes:
    return _encode([TX_VERSION, int(RecordKind.SIGNED_TRANSACTION), body, signature])


def sign_transaction(key: SigningKey, tx: Transaction) -> SignedTransaction:
    """Sign ``tx`` with ``key``.

    Raises:
        BadRecord: ``tx.sender`` is not ``key``'s public key.
    """
    if tx.sender != key.public_key_bytes():
        msg = "the transaction's sender is not the signing key's public key"
        raise BadRecord(msg, expected=key.public_key_bytes(), found=tx.sender)
    body = tx.body_bytes()
    signature = key.sign(signing_message(body))
    data = _envelope(body, signature)
    return SignedTransaction(tx, signature, body, data, hashlib.sha256(data).digest())


_ENVELOPE_PREFIX = b"\x94\x01\x01"  # fixarray(4), version 1, kind SIGNED_TRANSACTION (1)
_SIGNATURE_PREFIX = b"\xc4\x40"  # bin8 of 64 bytes
_MIN_ENVELOPE = len(_ENVELOPE_PREFIX) + 2 + len(_SIGNATURE_PREFIX) + SIGNATURE_SIZE


def _split_envelope(data: bytes) -> tuple[bytes, bytes] | None:
    """Return (body, signature) if ``data`` is exactly a canonical envelope, else None.

    The audit's fast path: reading the fixed envelope layout directly costs a
    fraction of a generic decode plus re-encode. It accepts only the bytes
    ``encode`` writes: the body as the shortest bin form for its length
    (bin8 < 256 bytes <= bin16 < 65536 bytes <= bin32), then a bin8 of 64
    bytes, then the end. Anything else goes to the general path.
    """
    size = len(data)
    if size < _MIN_ENVELOPE or data[:3] != _ENVELOPE_PREFIX:
        return None
    tag = data[3]
    if tag == 0xC4:
        start, length = 5, data[4]
    elif tag == 0xC5:
        start, length = 6, int.from_bytes(data[4:6], "big")
        if length < 0x100:
            return None
    elif tag == 0xC6:
        start, length = 8, int.from_bytes(data[4:8], "big")
        if length < 0x10000:
            return None
    else:
        return None
    end = start + length
    if size != end + 2 + SIGNATURE_SIZE or data[end : end + 2] != _SIGNATURE_PREFIX:
        return None
    return data[start:end], data[end + 2 :]


ParsedTransaction = tuple[TxKind, str, bytes, int, bytes, bytes, list[Value]]
"""(kind, chain_id, sender, nonce, body, signature, payload values) from ``parse_transaction``."""

_FAST_CHECKS = {cls: compile_checker(cls.SPECS) for cls in PAYLOAD_TYPES.values()}


def parse_transaction(data: bytes, *, max_size: int = MAX_TRANSACTION_SIZE) -> ParsedTransaction:
    """Check a transaction's bytes completely, without building its objects.

    The chain validator's fast path: everything ``decode_transaction`` checks
    (canonical bytes, shape, every field's type and range) at about half the
    cost. The signature is not checked.

    Returns:
        ``(kind, chain_id, sender, nonce, body, signature, payload_values)``;
        the payload values are as decoded (flags as 0 / 1, lists as lists).

    Raises:
        DecodeError: as ``decode_transaction``.
    """
    split = _split_envelope(data) if type(data) is bytes and len(data) <= max_size else None
    if split is None:
        # The general path: it gives the precise error for anything the
        # fast path does not accept. decode_record skips the generic type
        # walk: every field is type-checked below.
        outer = as_array(decode_record(data, max_size=max_size), 4, "transaction")
        expect_header(outer, TX_VERSION, RecordKind.SIGNED_TRANSACTION, "transaction")
        body = as_bytes(outer[2], "transaction body", max_len=max_size)
        signature = as_bytes(outer[3], "signature", SIGNATURE_SIZE)
    else:
        body, signature = split
    fields = decode_record(body, max_size=max_size)
    # One combined test for the valid case (the audit's hot path); on failure
    # the field readers below name the first bad field.
    if type(fields) is list and len(fields) == 6:
        version, kind_number, chain_id, sender, nonce, payload = fields
        cls = PAYLOAD_TYPES.get(kind_number) if type(kind_number) is int else None  # type: ignore[call-overload]
        if (
            cls is not None
            and type(version) is int
            and version == TX_VERSION
            and type(chain_id) is str
            and 0 < len(chain_id) <= MAX_CHAIN_ID_LEN
            and type(sender) is bytes
            and len(sender) == PUBLIC_KEY_SIZE
            and type(nonce) is int
            and 0 <= nonce <= U64_MAX
            and type(payload) is list
        ):
            if not _FAST_CHECKS[cls](payload):
                check_values(cls.SPECS, payload, cls.__name__)  # raises, or the fields are fine
            return cls.KIND, chain_id, sender, nonce, body, signature, payload
    _raise_body_error(fields)


def _raise_body_error(value: Value) -> NoReturn:
    """Raise the BadRecord that names the first bad field of a transaction body."""
    fields = as_array(value, 6, "transaction body")
    kind_number = fields[1]
    cls = PAYLOAD_TYPES.get(kind_number) if type(kind_number) is int else None  # type: ignore[call-overload]
    if cls is None:
        msg = f"unknown transaction kind {kind_number!r}"
        raise BadRecord(msg, expected=sorted(PAYLOAD_TYPES), found=kind_number)
    expect_header(fields, TX_VERSION, cls.KIND, "transaction body")
    chain_id = as_str(fields[2], "chain id", MAX_CHAIN_ID_LEN)
    if not chain_id:
        msg = "transaction body: empty chain id"
        raise BadRecord(msg, expected="a non-empty chain id", found=chain_id)
    as_bytes(fields[3], "sender", PUBLIC_KEY_SIZE)
    as_int(fields[4], "nonce", 0, U64_MAX)
    as_list(fields[5], "payload", 64)
    msg = "transaction body: invalid"  # pragma: no cover - the checks above cover every case
    raise BadRecord(msg, expected="a transaction body", found=fields)


def decode_transaction(data: bytes, *, max_size: int = MAX_TRANSACTION_SIZE) -> SignedTransaction:
    """Decode a signed transaction from its exact bytes (the signature is not checked).

    Raises:
        DecodeError: malformed, oversized or non-canonical bytes, or a record
            of the wrong shape (``BadRecord``).
    """
    kind, chain_id, sender, nonce, body, signature, values = parse_transaction(
        data, max_size=max_size
    )
    cls = PAYLOAD_TYPES[kind]
    payload = build_checked(cls, cls.SPECS, check_values(cls.SPECS, values, cls.__name__))
    tx = Transaction(kind, chain_id, sender, nonce, payload)
    return SignedTransaction(tx, signature, body, data, hashlib.sha256(data).digest())


def verify_transaction(signed: SignedTransaction, *, chain_id: str | None = None) -> None:
    """Check a transaction's signature (and its chain id when given).

    Raises:
        TransactionChainMismatch: ``chain_id`` is given and differs.
        BadTransactionSignature: the signature does not verify under the sender key.
    """
    tx = signed.transaction
    if chain_id is not None and tx.chain_id != chain_id:
        msg = f"transaction for chain {tx.chain_id!r}, expected {chain_id!r}"
        raise TransactionChainMismatch(msg, expected=chain_id, found=tx.chain_id)
    if not verify_signature(tx.sender, signed.signature, signing_message(signed.body)):
        msg = f"bad signature on transaction {signed.tx_id.hex()} from {tx.sender.hex()}"
        raise BadTransactionSignature(msg, expected=tx.sender, found=signed.signature)
