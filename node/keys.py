"""Key files for nodes and scripts (thin helpers over ``ledger``'s keys)."""

from __future__ import annotations

from pathlib import Path

from ledger.errors import LedgerError
from ledger.keys import SigningKey, generate_signing_key, load_signing_key, save_signing_key
from node.errors import ConfigError


def ensure_key_file(path: Path) -> SigningKey:
    """Load the key at ``path``, creating a new one (mode 0600) if the file is missing."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        save_signing_key(generate_signing_key(), path)
    return load_key(path)


def load_key(path: Path, passphrase: str | None = None) -> SigningKey:
    """Load a signing key.

    Raises:
        ConfigError: the file is missing, unreadable, too widely readable or not a key.
    """
    try:
        return load_signing_key(path, passphrase)
    except LedgerError as exc:
        raise ConfigError(str(exc)) from exc


def parse_public_key(text: str) -> bytes:
    """Parse a 64-hex-digit Ed25519 public key.

    >>> len(parse_public_key("ab" * 32))
    32

    Raises:
        ConfigError: not 32 bytes of hex.
    """
    try:
        data = bytes.fromhex(text)
    except ValueError as exc:
        msg = f"public key {text!r} is not hex"
        raise ConfigError(msg) from exc
    if len(data) != 32:
        msg = f"public key has {len(data)} bytes, want 32"
        raise ConfigError(msg)
    return data
