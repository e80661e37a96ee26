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
│   ├── ConnectionLost
│   └── BlockRefused
├── RequestFailed
├── InvalidTransaction
│   ├── BadSignature
│   ├── BadNonce
│   └── NotPermitted
└── NodeTimeout
"""

from __future__ import annotations


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


class BlockRefused(RemotePeerError):
    """Raised when a block from upstream fails verification (it is never stored)."""

    def __init__(self, height: int, reason: str) -> None:
        self.height = height
        self.reason = reason
        super().__init__(f"block {height} refused: {reason}")


class RequestFailed(NodeError):
    """Raised when a node answers a request with an error reply.

    ``code`` is one of the stable error codes of ``docs/protocol.md``.
    """

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")


class InvalidTransaction(NodeError):
    """Raised when a transaction cannot be sequenced (signature, chain, form)."""

    code = "bad_transaction"


class BadSignature(InvalidTransaction):
    """Raised when a transaction's signature does not verify under its sender key."""

    code = "bad_signature"


class BadNonce(InvalidTransaction):
    """Raised when a transaction's nonce is not the sender's next nonce (replay or gap)."""

    code = "bad_nonce"

    def __init__(self, expected: int, got: int) -> None:
        self.expected = expected
        self.got = got
        super().__init__(f"nonce {got}, want {expected}")


class NotPermitted(InvalidTransaction):
    """Raised when the sender may not send this kind of transaction (e.g. operator-only)."""

    code = "not_permitted"


class NodeTimeout(NodeError):
    """Raised when a node does not answer or become ready in time."""
