"""Exceptions of the node.

A peer's fault (``RemotePeerError``: the other side broke the protocol or sent
a block that does not verify; drop or ban it) is kept apart from our own
misuse (``LocalError``: bad configuration, a closed client, a bad argument).
A node that answers a request with a typed error reply raises
``RequestFailed`` in the client: the request was understood and refused.

NodeError
├── LocalError
│   ├── ConfigError
│   └── ClientClosed
├── RemotePeerError
│   ├── FrameTooLarge
│   ├── MalformedMessage
│   └── ConnectionLost
├── RequestFailed
├── SequencerUnavailable
└── NodeTimeout

The state machine's refusals (``InvalidTransaction`` and its subclasses,
``BlockRefused``) are ``market.errors``: re-exported here because the node
reports them, but they are not I/O errors.
"""

from __future__ import annotations

from market.errors import (
    BadNonce as BadNonce,
)
from market.errors import (
    BadSignature as BadSignature,
)
from market.errors import (
    BlockRefused as BlockRefused,
)
from market.errors import (
    InvalidTransaction as InvalidTransaction,
)
from market.errors import (
    MarketError as MarketError,
)
from market.errors import (
    NotPermitted as NotPermitted,
)


class NodeError(Exception):
    """Raised when a node, client or command line operation fails."""


class LocalError(NodeError):
    """Raised when this process misuses the node API (our fault, not a peer's)."""


class ConfigError(LocalError):
    """Raised when a configuration file or flag is missing, malformed or out of range."""


class ClientClosed(LocalError):
    """Raised when a client is used after it was closed."""


class RemotePeerError(NodeError):
    """Raised when the other side of a connection breaks the protocol."""


class FrameTooLarge(RemotePeerError):
    """Raised when a frame's length prefix exceeds the frame size limit."""

    def __init__(self, size: int, limit: int) -> None:
        self.size = size
        self.limit = limit
        super().__init__(f"frame of {size} bytes exceeds the limit of {limit} bytes")


class MalformedMessage(RemotePeerError):
    """Raised when a frame body is not a canonical, well-formed protocol message."""


class ConnectionLost(RemotePeerError):
    """Raised when the connection closes in the middle of a frame or a request."""


class RequestFailed(NodeError):
    """Raised when a node answers a request with an error reply.

    ``code`` is one of the stable error codes of ``docs/protocol.md``.
    """

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")


class SequencerUnavailable(NodeError):
    """Raised when the sequencing log cannot take an entry (nothing was appended)."""


class NodeTimeout(NodeError):
    """Raised when a node does not answer or become ready in time."""
