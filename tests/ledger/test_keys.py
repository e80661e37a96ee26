"""Keys: generation, PEM files with mode 0600 and passphrases, account ids, signatures."""

from __future__ import annotations

import hashlib
import os
import stat

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key

from ledger import (
    KeyFileError,
    SigningKey,
    account_id,
    generate_signing_key,
    load_signing_key,
    save_signing_key,
    verify_signature,
)


def test_rfc8032_test_1():
    # RFC 8032 section 7.1, TEST 1 (empty message).
    seed = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
    key = SigningKey.from_seed(seed)
    assert key.public_key_bytes().hex() == (
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    )
    assert key.sign(b"").hex() == (
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
        "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
    )


def test_account_id_rule():
    public = bytes(range(32))
    assert account_id(public) == hashlib.sha256(b"p2pex/account/v1\x00" + public).digest()
    key = SigningKey.from_seed(bytes(32))
    assert key.account_id == account_id(key.public_key_bytes())
    assert len(key.account_id) == 32


def test_seed_must_be_32_bytes():
    with pytest.raises(KeyFileError):
        SigningKey.from_seed(bytes(31))


def test_generated_keys_differ_and_sign():
    first, second = generate_signing_key(), generate_signing_key()
    assert first.public_key_bytes() != second.public_key_bytes()
    signature = first.sign(b"message")
    assert verify_signature(first.public_key_bytes(), signature, b"message")
    assert not verify_signature(second.public_key_bytes(), signature, b"message")
    assert not verify_signature(first.public_key_bytes(), signature, b"messagE")


@pytest.mark.parametrize(
    ("public", "signature"),
    [(bytes(31), bytes(64)), (bytes(32), bytes(63)), (b"\xff" * 32, bytes(64))],
    ids=["short-key", "short-signature", "bad-point"],
)
def test_verify_signature_never_raises(public, signature):
    assert verify_signature(public, signature, b"x") is False


def test_repr_hides_private_material():
    key = SigningKey.from_seed(bytes(32))
    assert "SigningKey(public=" in repr(key)


@pytest.mark.parametrize("passphrase", [None, "correct horse", b"bytes pass"])
def test_save_and_load(tmp_path, passphrase):
    key = generate_signing_key()
    path = tmp_path / "node.key"
    save_signing_key(key, path, passphrase)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    text = path.read_bytes()
    assert text.startswith(b"-----BEGIN ")
    assert (b"ENCRYPTED" in text) == (passphrase is not None)
    loaded = load_signing_key(path, passphrase)
    assert loaded.public_key_bytes() == key.public_key_bytes()
    assert loaded.sign(b"x") == key.sign(b"x")


def test_save_refuses_to_overwrite(tmp_path):
    path = tmp_path / "node.key"
    first = generate_signing_key()
    save_signing_key(first, path)
    with pytest.raises(KeyFileError):
        save_signing_key(generate_signing_key(), path)
    assert load_signing_key(path).public_key_bytes() == first.public_key_bytes()
    second = generate_signing_key()
    save_signing_key(second, path, overwrite=True)
    assert load_signing_key(path).public_key_bytes() == second.public_key_bytes()


def test_empty_passphrase_refused(tmp_path):
    with pytest.raises(KeyFileError):
        save_signing_key(generate_signing_key(), tmp_path / "k", "")


def test_wrong_or_missing_passphrase(tmp_path):
    path = tmp_path / "node.key"
    save_signing_key(generate_signing_key(), path, "secret")
    with pytest.raises(KeyFileError):
        load_signing_key(path, "wrong")
    with pytest.raises(KeyFileError):
        load_signing_key(path)
    unencrypted = tmp_path / "plain.key"
    save_signing_key(generate_signing_key(), unencrypted)
    with pytest.raises(KeyFileError):
        load_signing_key(unencrypted, "unexpected")


def test_load_refuses_open_permissions(tmp_path):
    path = tmp_path / "node.key"
    save_signing_key(generate_signing_key(), path)
    path.chmod(0o644)
    with pytest.raises(KeyFileError, match="0600"):
        load_signing_key(path)


def test_load_refuses_missing_garbage_and_other_key_types(tmp_path):
    with pytest.raises(KeyFileError):
        load_signing_key(tmp_path / "missing.key")
    garbage = tmp_path / "garbage.key"
    garbage.write_bytes(b"not a key")
    garbage.chmod(0o600)
    with pytest.raises(KeyFileError):
        load_signing_key(garbage)
    ec = tmp_path / "ec.key"
    ec.write_bytes(
        generate_private_key(SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    ec.chmod(0o600)
    with pytest.raises(KeyFileError, match="not an Ed25519"):
        load_signing_key(ec)
