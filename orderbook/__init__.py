"""Continuous double-auction order books: orders, matching, events (pure, deterministic)."""

from orderbook.errors import OrderBookError as OrderBookError

__all__ = ["OrderBookError"]
