"""Shared constants, unit types and record kinds of the ledger.

Every record of the ledger is a canonical array ``[version, kind, ...]``;
``RecordKind`` numbers the records that are not transaction bodies (those
use ``TxKind``), so no two kinds of record ever share a prefix.
"""

from __future__ import annotations

from enum import IntEnum
from typing import NewType

Hash32 = NewType("Hash32", bytes)
"""A 32-byte SHA-256 digest."""

HASH_SIZE = 32
ZERO_HASH = bytes(HASH_SIZE)
"""The previous-hash of the genesis block (height 0)."""

MAX_CHAIN_ID_LEN = 64
MAX_TRANSACTION_SIZE = 1 << 20
"""Largest encoded transaction, in bytes (1 MiB)."""
MAX_RESULT_SIZE = 1 << 20
"""Largest encoded result record, in bytes (1 MiB)."""
MAX_BLOCK_SIZE = 256 << 20
"""Largest encoded block, in bytes (256 MiB)."""
MAX_BLOCK_ITEMS = 1_000_000
"""Most transactions (or results) in one block."""

U64_MAX = 2**64 - 1
I64_MIN = -(2**63)
I64_MAX = 2**63 - 1


class RecordKind(IntEnum):
    """Kind numbers of the ledger's non-transaction records (field 1 of the array)."""

    SIGNED_TRANSACTION = 1
    BLOCK_HEADER = 2
    BLOCK = 3
    INCLUSION_PROOF = 4
    TRADE = 16
    REJECTION = 17
    SETTLEMENT = 18
    EVENT = 19
    STATEMENT = 20
    GRID_TRADE = 21
