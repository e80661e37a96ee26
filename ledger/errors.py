"""Exceptions of the ledger.

LedgerError
"""

from __future__ import annotations


class LedgerError(Exception):
    """Raised when ledger data is malformed, invalid or cannot be stored."""
