"""Exceptions of the optimal clearing.

ClearingError
"""

from __future__ import annotations


class ClearingError(Exception):
    """Raised when clearing data is invalid or the clearing cannot be solved."""
