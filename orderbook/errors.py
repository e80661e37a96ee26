"""Exceptions of the order book.

Expected market outcomes (an IOC that does not fill, a cancel of an unknown
id) are events, not exceptions; exceptions are for broken invariants and
misuse of the API.

    OrderBookError
"""

from __future__ import annotations


class OrderBookError(Exception):
    """Raised when the order book is misused or an invariant is broken."""
