"""Exceptions of the order book.

Expected market outcomes (an IOC that does not fill, a cancel of an unknown
id, a malformed order) are events (``Rejected``), not exceptions; exceptions
are for misuse of the API, corrupt snapshots and broken invariants.

    OrderBookError
    ├── ConfigError          bad MarketConfig
    ├── GridError            bad grid data or preferences (orderbook.grid)
    ├── UnknownInstrument    a query names an instrument the market does not have
    ├── SnapshotError        bytes given to restore are not a valid snapshot
    └── InvariantError       _check() found a broken internal invariant
"""

from __future__ import annotations


class OrderBookError(Exception):
    """Raised when the order book is misused or an invariant is broken."""


class ConfigError(OrderBookError):
    """Raised when a MarketConfig has a non-positive or inconsistent bound."""


class GridError(OrderBookError):
    """Raised when grid data or order preferences have a wrong type, shape or range."""


class UnknownInstrument(OrderBookError):
    """Raised when a query names an instrument that was never opened."""


class SnapshotError(OrderBookError):
    """Raised when bytes given to restore are not a canonical, consistent snapshot."""


class InvariantError(OrderBookError):
    """Raised when ``_check()`` finds a broken internal invariant (a bug)."""
