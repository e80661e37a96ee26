"""Errors of the web gateway, each with the HTTP status it is answered with.

WebError (node.errors.NodeError)
├── BadParameter   400: a query parameter is missing, malformed or out of range
├── NotFound       404: no such slot, block, result or transaction
└── NodeUnavailable 503: the gateway cannot reach its node right now
"""

from __future__ import annotations

from node.errors import NodeError


class WebError(NodeError):
    """Raised when a gateway request cannot be answered; ``status`` is its HTTP status."""

    status = 500


class BadParameter(WebError):
    """Raised when a query parameter is missing, malformed or out of range."""

    status = 400

    def __init__(self, name: str, got: str | None, want: str) -> None:
        super().__init__(f"parameter {name!r}: got {got!r}, want {want}")
        self.name = name
        self.got = got
        self.want = want


class NotFound(WebError):
    """Raised when the thing asked for does not exist (yet) on the node."""

    status = 404


class NodeUnavailable(WebError):
    """Raised when the gateway's connection to its node is down."""

    status = 503
