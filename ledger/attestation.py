"""Validator attestations: a validator's signature over a block it derived itself.

On a shared log every validator derives the same blocks. Each one signs the
hash of each block's header it derived; a block is **final** when a quorum
of the configured validators (2 of 3 by default) has signed that hash. The
attestations live beside the chain (a separate table of the store), so a
chain written before attestations existed still verifies as it did.

Record (canonical msgpack)::

    attestation = [1, "p2pex/attestation", chain_id, height, block_hash,
                   validator, signature]

The signature is Ed25519 by ``validator`` (raw 32-byte public key) over
``ATTESTATION_TAG || canonical [chain_id, height, block_hash]``, a tag of
its own: an attestation can stand neither for a block signature nor for a
transaction signature.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

from ledger.codec import as_array, as_bytes, as_int, as_str, decode_record
from ledger.codec import encode_trusted as _encode
from ledger.errors import BadRecord, ValidationError
from ledger.keys import PUBLIC_KEY_SIZE, SIGNATURE_SIZE, SigningKey, verify_signature
from ledger.types import HASH_SIZE, I64_MAX, MAX_CHAIN_ID_LEN

ATTESTATION_VERSION = 1
ATTESTATION_KIND = "p2pex/attestation"
ATTESTATION_TAG = b"p2pex/attestation/v1\x00"
MAX_ATTESTATION_SIZE = 512


class BadAttestation(ValidationError):
    """Raised when an attestation's signature does not verify or its signer is not a validator."""


class QuorumNotReached(ValidationError):
    """Raised when fewer than the quorum of validators signed a block's hash."""


@dataclass(frozen=True, slots=True)
class Attestation:
    """One validator's signature over one block hash at one height."""

    chain_id: str
    height: int
    block_hash: bytes  # 32 bytes: the header hash
    validator: bytes  # raw 32-byte Ed25519 public key
    signature: bytes  # 64 bytes over signing_message(chain_id, height, block_hash)

    def to_bytes(self) -> bytes:
        """The canonical record bytes."""
        return _encode(
            [
                ATTESTATION_VERSION,
                ATTESTATION_KIND,
                self.chain_id,
                self.height,
                self.block_hash,
                self.validator,
                self.signature,
            ]
        )

    def verifies(self) -> bool:
        """The signature is the validator's over this height and hash."""
        message = signing_message(self.chain_id, self.height, self.block_hash)
        return verify_signature(self.validator, self.signature, message)


def signing_message(chain_id: str, height: int, block_hash: bytes) -> bytes:
    """The bytes a validator signs for a block."""
    return ATTESTATION_TAG + _encode([chain_id, height, block_hash])


def sign_attestation(key: SigningKey, chain_id: str, height: int, block_hash: bytes) -> Attestation:
    """Sign ``block_hash`` at ``height`` with a validator key."""
    signature = key.sign(signing_message(chain_id, height, block_hash))
    return Attestation(chain_id, height, block_hash, key.public_key_bytes(), signature)


def decode_attestation(data: bytes) -> Attestation:
    """Decode an attestation record (the signature is not checked here).

    Raises:
        DecodeError: malformed or non-canonical bytes, or a record of the wrong shape.
    """
    fields = as_array(decode_record(data, max_size=MAX_ATTESTATION_SIZE), 7, "attestation")
    as_int(fields[0], "attestation version", ATTESTATION_VERSION, ATTESTATION_VERSION)
    kind = as_str(fields[1], "attestation kind", 64)
    if kind != ATTESTATION_KIND:
        msg = f"attestation kind {kind!r}, want {ATTESTATION_KIND!r}"
        raise BadRecord(msg, expected=ATTESTATION_KIND, found=kind)
    return Attestation(
        as_str(fields[2], "attestation chain id", MAX_CHAIN_ID_LEN),
        as_int(fields[3], "attestation height", 0, I64_MAX),
        as_bytes(fields[4], "attestation block hash", HASH_SIZE),
        as_bytes(fields[5], "attestation validator", PUBLIC_KEY_SIZE),
        as_bytes(fields[6], "attestation signature", SIGNATURE_SIZE),
    )


def validate_attestation(
    attestation: Attestation, chain_id: str, validators: Collection[bytes]
) -> None:
    """Check an attestation's chain, signer and signature.

    Raises:
        BadAttestation: another chain, a key that is not a validator, or a bad signature.
    """
    height = attestation.height
    if attestation.chain_id != chain_id:
        msg = f"attestation for chain {attestation.chain_id!r}, want {chain_id!r}"
        raise BadAttestation(msg, expected=chain_id, found=attestation.chain_id, height=height)
    if attestation.validator not in validators:
        msg = f"attestation by {attestation.validator.hex()}, not a configured validator"
        raise BadAttestation(msg, expected="a validator key", found=attestation.validator.hex())
    if not attestation.verifies():
        msg = f"attestation by {attestation.validator.hex()} at height {height} does not verify"
        raise BadAttestation(msg, expected="a valid signature", found="invalid", height=height)


def count_quorum(
    height: int,
    block_hash: bytes,
    attestations: Iterable[Attestation],
    *,
    chain_id: str,
    validators: Collection[bytes],
) -> set[bytes]:
    """The validators with a valid attestation of ``block_hash`` at ``height``.

    Attestations of another height or hash, of another chain, by a key that is
    not a validator, or that do not verify, count for nothing.
    """
    signers: set[bytes] = set()
    for attestation in attestations:
        if attestation.height != height or attestation.block_hash != block_hash:
            continue
        try:
            validate_attestation(attestation, chain_id, validators)
        except BadAttestation:
            continue
        signers.add(attestation.validator)
    return signers


def validate_quorum(
    height: int,
    block_hash: bytes,
    attestations: Iterable[Attestation],
    *,
    chain_id: str,
    validators: Collection[bytes],
    quorum: int,
) -> set[bytes]:
    """Return the signers of a final block.

    Raises:
        QuorumNotReached: fewer than ``quorum`` validators signed ``block_hash``.
    """
    signers = count_quorum(
        height, block_hash, attestations, chain_id=chain_id, validators=validators
    )
    if len(signers) < quorum:
        msg = f"block {height} has {len(signers)} of the {quorum} attestations it needs"
        raise QuorumNotReached(msg, expected=quorum, found=len(signers), height=height)
    return signers


def default_quorum(validators: int) -> int:
    """A majority of ``validators`` (2 of 3, 3 of 4, 4 of 7): see docs/cluster.md."""
    return validators // 2 + 1
