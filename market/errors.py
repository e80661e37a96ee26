"""Exceptions of the market state machine.

A transaction the state machine refuses never enters a block and changes
nothing; a block whose transactions do not replay to its own results is
refused whole. The node maps these onto its wire error codes (``code``).

MarketError
├── InvalidTransaction
│   ├── BadSignature
│   ├── BadNonce
│   │   └── DuplicateTransaction
│   └── NotPermitted
└── BlockRefused
"""

from __future__ import annotations


class MarketError(Exception):
    """Raised when the state machine refuses a transaction or a block."""


class InvalidTransaction(MarketError):
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


class DuplicateTransaction(BadNonce):
    """Raised when the very same transaction is sent again while the first is on its way.

    A replay like any reused nonce (code ``bad_nonce``), but said as what it is.
    """

    def __init__(self, tx_id: bytes, nonce: int) -> None:
        self.tx_id = tx_id
        InvalidTransaction.__init__(
            self, f"transaction {tx_id.hex()} (nonce {nonce}) is already on its way: a replay"
        )
        self.expected = nonce + 1
        self.got = nonce


class NotPermitted(InvalidTransaction):
    """Raised when the sender may not send this kind of transaction (e.g. operator-only)."""

    code = "not_permitted"


class BlockRefused(MarketError):
    """Raised when a block fails verification or replay (it is never stored)."""

    def __init__(self, height: int, reason: str) -> None:
        self.height = height
        self.reason = reason
        super().__init__(f"block {height} refused: {reason}")
