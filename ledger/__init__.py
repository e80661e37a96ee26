"""The p2pex ledger: canonical encoding, keys, Merkle trees, blocks, chain rules, block store.

Modules: ``codec`` (canonical msgpack), ``keys`` (Ed25519, key files,
account ids), ``payloads`` and ``transactions`` (signed transactions),
``results`` (trade, rejection, settlement and event records), ``merkle``
(RFC 6962 trees and proofs), ``block`` (headers, blocks), ``chain`` (the
validation rules), ``store`` and ``sqlite_store`` (block stores), ``audit``
(whole-chain audit, inclusion proofs), ``integrity`` (a stored chain checked
against a pinned operator key, its index rows, proofs that trust no index),
``errors`` (the exception tree).
Everything but ``sqlite_store`` is pure: no clock, no randomness but key
generation, no I/O but key files.
"""

from ledger.audit import AuditReport as AuditReport
from ledger.audit import InclusionProof as InclusionProof
from ledger.audit import SegmentAudit as SegmentAudit
from ledger.audit import audit_chain as audit_chain
from ledger.audit import audit_segment as audit_segment
from ledger.audit import decode_inclusion_proof as decode_inclusion_proof
from ledger.audit import merge_segments as merge_segments
from ledger.audit import prove_result as prove_result
from ledger.audit import prove_transaction as prove_transaction
from ledger.audit import split_heights as split_heights
from ledger.audit import verify_inclusion_proof as verify_inclusion_proof
from ledger.block import Block as Block
from ledger.block import BlockHeader as BlockHeader
from ledger.block import build_block as build_block
from ledger.block import decode_block as decode_block
from ledger.block import decode_header as decode_header
from ledger.block import make_header as make_header
from ledger.block import sign_block as sign_block
from ledger.chain import BlockCheck as BlockCheck
from ledger.chain import validate_block as validate_block
from ledger.chain import validate_header as validate_header
from ledger.codec import Value as Value
from ledger.codec import decode as decode
from ledger.codec import encode as encode
from ledger.errors import BadBlockSignature as BadBlockSignature
from ledger.errors import BadHeight as BadHeight
from ledger.errors import BadMerkleRoot as BadMerkleRoot
from ledger.errors import BadNonce as BadNonce
from ledger.errors import BadParentHash as BadParentHash
from ledger.errors import BadRecord as BadRecord
from ledger.errors import BadResultRoot as BadResultRoot
from ledger.errors import BadTransactionRoot as BadTransactionRoot
from ledger.errors import BadTransactionSignature as BadTransactionSignature
from ledger.errors import BlockNotFound as BlockNotFound
from ledger.errors import DecodeError as DecodeError
from ledger.errors import DuplicateTransaction as DuplicateTransaction
from ledger.errors import EncodeError as EncodeError
from ledger.errors import InvalidBlock as InvalidBlock
from ledger.errors import InvalidTransaction as InvalidTransaction
from ledger.errors import KeyFileError as KeyFileError
from ledger.errors import LedgerError as LedgerError
from ledger.errors import MalformedBlockContent as MalformedBlockContent
from ledger.errors import MalformedData as MalformedData
from ledger.errors import NonCanonicalEncoding as NonCanonicalEncoding
from ledger.errors import NotExtendingHead as NotExtendingHead
from ledger.errors import OversizedData as OversizedData
from ledger.errors import ProofError as ProofError
from ledger.errors import ProofIndexError as ProofIndexError
from ledger.errors import ProofLengthError as ProofLengthError
from ledger.errors import RootMismatch as RootMismatch
from ledger.errors import StoreCorrupted as StoreCorrupted
from ledger.errors import StoreError as StoreError
from ledger.errors import TrailingBytes as TrailingBytes
from ledger.errors import TransactionChainMismatch as TransactionChainMismatch
from ledger.errors import TransactionNotFound as TransactionNotFound
from ledger.errors import UnauthorisedProposer as UnauthorisedProposer
from ledger.errors import UnauthorisedSender as UnauthorisedSender
from ledger.errors import UnexpectedType as UnexpectedType
from ledger.errors import UnsupportedVersion as UnsupportedVersion
from ledger.errors import ValidationError as ValidationError
from ledger.errors import WrongChainId as WrongChainId
from ledger.integrity import IndexCheck as IndexCheck
from ledger.integrity import StoreVerification as StoreVerification
from ledger.integrity import TransactionProof as TransactionProof
from ledger.integrity import check_store_indexes as check_store_indexes
from ledger.integrity import prove_stored_transaction as prove_stored_transaction
from ledger.integrity import verify_store as verify_store
from ledger.keys import SigningKey as SigningKey
from ledger.keys import account_id as account_id
from ledger.keys import generate_signing_key as generate_signing_key
from ledger.keys import load_public_key as load_public_key
from ledger.keys import load_signing_key as load_signing_key
from ledger.keys import save_signing_key as save_signing_key
from ledger.keys import verify_signature as verify_signature
from ledger.merkle import consistency_proof as consistency_proof
from ledger.merkle import hash_children as hash_children
from ledger.merkle import hash_leaf as hash_leaf
from ledger.merkle import inclusion_proof as inclusion_proof
from ledger.merkle import merkle_root as merkle_root
from ledger.merkle import root_from_inclusion_proof as root_from_inclusion_proof
from ledger.merkle import root_from_leaf_hashes as root_from_leaf_hashes
from ledger.merkle import verify_consistency as verify_consistency
from ledger.merkle import verify_inclusion as verify_inclusion
from ledger.results import EventRecord as EventRecord
from ledger.results import RejectionRecord as RejectionRecord
from ledger.results import ResultRecord as ResultRecord
from ledger.results import SettlementRecord as SettlementRecord
from ledger.results import TradeRecord as TradeRecord
from ledger.results import decode_result as decode_result
from ledger.sqlite_store import SqliteBlockStore as SqliteBlockStore
from ledger.store import BlockStore as BlockStore
from ledger.store import IndexedBlockStore as IndexedBlockStore
from ledger.store import Located as Located
from ledger.store import MemoryBlockStore as MemoryBlockStore
from ledger.transactions import AmendOrder as AmendOrder
from ledger.transactions import CancelOrder as CancelOrder
from ledger.transactions import CloseSlot as CloseSlot
from ledger.transactions import DeclareChp as DeclareChp
from ledger.transactions import DeclareCurve as DeclareCurve
from ledger.transactions import Payload as Payload
from ledger.transactions import PlaceOrder as PlaceOrder
from ledger.transactions import PublishClearing as PublishClearing
from ledger.transactions import RegisterPeer as RegisterPeer
from ledger.transactions import SetNetwork as SetNetwork
from ledger.transactions import SetTariff as SetTariff
from ledger.transactions import SignedTransaction as SignedTransaction
from ledger.transactions import Transaction as Transaction
from ledger.transactions import TxKind as TxKind
from ledger.transactions import decode_transaction as decode_transaction
from ledger.transactions import sign_transaction as sign_transaction
from ledger.transactions import verify_transaction as verify_transaction
from ledger.types import Hash32 as Hash32
from ledger.types import RecordKind as RecordKind

__all__ = [
    "AmendOrder",
    "AuditReport",
    "BadBlockSignature",
    "BadHeight",
    "BadMerkleRoot",
    "BadNonce",
    "BadParentHash",
    "BadRecord",
    "BadResultRoot",
    "BadTransactionRoot",
    "BadTransactionSignature",
    "Block",
    "BlockCheck",
    "BlockHeader",
    "BlockNotFound",
    "BlockStore",
    "CancelOrder",
    "CloseSlot",
    "DeclareChp",
    "DeclareCurve",
    "DecodeError",
    "DuplicateTransaction",
    "EncodeError",
    "EventRecord",
    "Hash32",
    "InclusionProof",
    "IndexCheck",
    "IndexedBlockStore",
    "InvalidBlock",
    "InvalidTransaction",
    "KeyFileError",
    "LedgerError",
    "Located",
    "MalformedBlockContent",
    "MalformedData",
    "MemoryBlockStore",
    "NonCanonicalEncoding",
    "NotExtendingHead",
    "OversizedData",
    "Payload",
    "PlaceOrder",
    "ProofError",
    "ProofIndexError",
    "ProofLengthError",
    "PublishClearing",
    "RecordKind",
    "RegisterPeer",
    "RejectionRecord",
    "ResultRecord",
    "RootMismatch",
    "SegmentAudit",
    "SetNetwork",
    "SetTariff",
    "SettlementRecord",
    "SignedTransaction",
    "SigningKey",
    "SqliteBlockStore",
    "StoreCorrupted",
    "StoreError",
    "StoreVerification",
    "TradeRecord",
    "TrailingBytes",
    "Transaction",
    "TransactionChainMismatch",
    "TransactionNotFound",
    "TransactionProof",
    "TxKind",
    "UnauthorisedProposer",
    "UnauthorisedSender",
    "UnexpectedType",
    "UnsupportedVersion",
    "ValidationError",
    "Value",
    "WrongChainId",
    "account_id",
    "audit_chain",
    "audit_segment",
    "build_block",
    "check_store_indexes",
    "consistency_proof",
    "decode",
    "decode_block",
    "decode_header",
    "decode_inclusion_proof",
    "decode_result",
    "decode_transaction",
    "encode",
    "generate_signing_key",
    "hash_children",
    "hash_leaf",
    "inclusion_proof",
    "load_public_key",
    "load_signing_key",
    "make_header",
    "merge_segments",
    "merkle_root",
    "prove_result",
    "prove_stored_transaction",
    "prove_transaction",
    "root_from_inclusion_proof",
    "root_from_leaf_hashes",
    "save_signing_key",
    "sign_block",
    "sign_transaction",
    "split_heights",
    "validate_block",
    "validate_header",
    "verify_consistency",
    "verify_inclusion",
    "verify_inclusion_proof",
    "verify_signature",
    "verify_store",
    "verify_transaction",
]
