"""Periodic optimal clearing: radial network, QP models, prices, flows, losses, certificates."""

from clearing.errors import ClearingError as ClearingError

__all__ = ["ClearingError"]
