"""Exceptions of the node.

NodeError
"""

from __future__ import annotations


class NodeError(Exception):
    """Raised when a node, client or command line operation fails."""
