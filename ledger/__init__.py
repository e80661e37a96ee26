"""The p2pex ledger: canonical encoding, keys, Merkle trees, blocks, chain rules, block store."""

from ledger.errors import LedgerError as LedgerError

__all__ = ["LedgerError"]
