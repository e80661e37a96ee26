"""Ed25519 signing keys, key files and account ids.

Key files are PKCS#8 PEM, written with file mode 0600 (and refused on load if
the group or others can read them), optionally encrypted with a passphrase
(``BestAvailableEncryption`` of ``cryptography``).

**Account id rule.** An account is named by
``SHA-256(b"p2pex/account/v1\\x00" || public_key)``, 32 bytes, where
``public_key`` is the raw 32-byte Ed25519 public key. The tag separates the
account id from every other hash of the ledger. Transactions carry the raw
public key (``sender``) so that they can be verified; results (trades,
settlements) name accounts by this id.

Ed25519 signatures are deterministic (RFC 8032): the same key and message
always give the same 64 bytes, which is what the golden vectors rely on.

**Signature validity rule.** Signing and key files use ``cryptography``;
verification uses libsodium (PyNaCl's ``crypto_sign_open``), which checks a
signature in about half the time of ``cryptography``'s (``bench_ledger``)
and is the node's largest single cost per transaction.
A signature is valid exactly when libsodium accepts it: RFC 8032
cofactorless verification that also rejects a non-canonical S, a
non-canonical or small-order public key and a small-order R. Every node uses
this one rule, so validity cannot differ between replicas; signatures made by
any RFC 8032 signer with an ordinary key pass it.

>>> key = SigningKey.from_seed(bytes(32))
>>> key.public_key_bytes().hex()
'3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29'
>>> verify_signature(key.public_key_bytes(), key.sign(b"hi"), b"hi")
True
"""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from nacl.bindings import crypto_sign_open
from nacl.exceptions import BadSignatureError

from ledger.errors import KeyFileError

ACCOUNT_TAG = b"p2pex/account/v1\x00"
PUBLIC_KEY_SIZE = 32
SIGNATURE_SIZE = 64
SEED_SIZE = 32


def account_id(public_key: bytes) -> bytes:
    """Return the 32-byte account id of a raw Ed25519 public key (see module docstring).

    >>> account_id(bytes(32)).hex()[:16]
    '5a95ed0d0fa23b9a'
    """
    return hashlib.sha256(ACCOUNT_TAG + public_key).digest()


class SigningKey:
    """An Ed25519 private key with its public key bytes and account id.

    Attributes:
        account_id: ``account_id(self.public_key_bytes())``.
    """

    __slots__ = ("_private", "_public", "account_id")

    def __init__(self, private: Ed25519PrivateKey) -> None:
        """Wrap a ``cryptography`` Ed25519 private key."""
        self._private = private
        self._public = private.public_key().public_bytes_raw()
        self.account_id = account_id(self._public)

    @classmethod
    def from_seed(cls, seed: bytes) -> SigningKey:
        """Return the key for a 32-byte RFC 8032 seed (test keys, vectors).

        Raises:
            KeyFileError: the seed is not 32 bytes.
        """
        if len(seed) != SEED_SIZE:
            msg = f"an Ed25519 seed has {SEED_SIZE} bytes, got {len(seed)}"
            raise KeyFileError(msg)
        return cls(Ed25519PrivateKey.from_private_bytes(seed))

    def public_key_bytes(self) -> bytes:
        """Return the raw 32-byte public key."""
        return self._public

    def sign(self, data: bytes) -> bytes:
        """Return the 64-byte Ed25519 signature of ``data``."""
        return self._private.sign(data)

    def private_key(self) -> Ed25519PrivateKey:
        """Return the wrapped ``cryptography`` key (for serialisation)."""
        return self._private

    def __repr__(self) -> str:
        # Never print private material.
        return f"SigningKey(public={self._public.hex()})"


def generate_signing_key() -> SigningKey:
    """Return a new random key (randomness from the OS through ``cryptography``)."""
    return SigningKey(Ed25519PrivateKey.generate())


def _passphrase_bytes(passphrase: str | bytes | None) -> bytes | None:
    if passphrase is None or isinstance(passphrase, bytes):
        return passphrase
    return passphrase.encode("utf-8")


def save_signing_key(
    key: SigningKey,
    path: str | os.PathLike[str],
    passphrase: str | bytes | None = None,
    *,
    overwrite: bool = False,
) -> None:
    """Write ``key`` to ``path`` as PKCS#8 PEM with file mode 0600.

    The file is written to a temporary name in the same directory, flushed to
    disk and renamed, so a crash never leaves a half-written key.

    Args:
        key: the key to save.
        path: destination file.
        passphrase: encrypt the file with it when given (must not be empty).
        overwrite: replace an existing file; refused by default so that a key
            (an identity on the chain) is never lost by accident.

    Raises:
        KeyFileError: the file exists (and not ``overwrite``), the passphrase
            is empty, or the file cannot be written.
    """
    target = Path(path)
    secret = _passphrase_bytes(passphrase)
    if secret is not None and not secret:
        msg = "an empty passphrase would not protect the key: pass None instead"
        raise KeyFileError(msg)
    if target.exists() and not overwrite:
        msg = f"{target} exists: refusing to overwrite a key file"
        raise KeyFileError(msg)
    algorithm: serialization.KeySerializationEncryption = (
        serialization.NoEncryption()
        if secret is None
        else serialization.BestAvailableEncryption(secret)
    )
    pem = key.private_key().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, algorithm
    )
    temporary = target.with_name(f".{target.name}.tmp")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.fchmod(fd, 0o600)  # the umask cannot widen it, but an old file could be wider
            os.write(fd, pem)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, target)
    except OSError as exc:
        msg = f"cannot write key file {target}: {exc}"
        raise KeyFileError(msg) from exc


def load_signing_key(
    path: str | os.PathLike[str], passphrase: str | bytes | None = None
) -> SigningKey:
    """Read an Ed25519 key saved by ``save_signing_key``.

    Raises:
        KeyFileError: the file is missing or unreadable, readable by group or
            others, encrypted and the passphrase is missing or wrong, or it
            holds something other than an Ed25519 private key.
    """
    source = Path(path)
    try:
        mode = source.stat().st_mode
        if mode & 0o077:
            msg = f"{source} has mode {mode & 0o777:o}: a key file must be 0600 (chmod 600)"
            raise KeyFileError(msg)
        pem = source.read_bytes()
    except OSError as exc:
        msg = f"cannot read key file {source}: {exc}"
        raise KeyFileError(msg) from exc
    try:
        private = serialization.load_pem_private_key(pem, _passphrase_bytes(passphrase))
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        msg = f"cannot load key from {source} (wrong passphrase or not a PEM key): {exc}"
        raise KeyFileError(msg) from exc
    if not isinstance(private, Ed25519PrivateKey):
        msg = f"{source} holds a {type(private).__name__}, not an Ed25519 private key"
        raise KeyFileError(msg)
    return SigningKey(private)


@lru_cache(maxsize=65536)
def load_public_key(public_key: bytes) -> Ed25519PublicKey | None:
    """Return the ``cryptography`` key for raw public key bytes, or None if invalid.

    Cached: loading costs about 1 microsecond, ~1% of a verification, and
    the audit sees the same few thousand senders again and again.
    """
    if type(public_key) is not bytes or len(public_key) != PUBLIC_KEY_SIZE:
        return None
    try:
        return Ed25519PublicKey.from_public_bytes(public_key)
    except ValueError:
        return None


def verify_signature(public_key: bytes, signature: bytes, data: bytes) -> bool:
    """Return whether ``signature`` is a valid Ed25519 signature of ``data``.

    The validity rule is libsodium's (see the module docstring). Never raises
    for bad keys or signatures: they give False.
    """
    if (
        type(public_key) is not bytes
        or len(public_key) != PUBLIC_KEY_SIZE
        or type(signature) is not bytes
        or len(signature) != SIGNATURE_SIZE
    ):
        return False
    try:
        # libsodium's combined form: the signature followed by the message
        crypto_sign_open(signature + bytes(data), public_key)
    except BadSignatureError:
        return False
    return True
