"""The quorum check of ``p2pex chain verify --validators ...``: every block is final.

A block is final when at least ``quorum`` of the given validators signed
its header hash (``ledger.attestation``). The attestations are read from
the chain file's own table; a chain without that table has none, and fails
this check (and only this one) when a quorum is asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ledger.attestation import QuorumNotReached, validate_quorum
from ledger.attestation_store import AttestationStore
from ledger.store import BlockStore


@dataclass(frozen=True, slots=True)
class QuorumReport:
    """The outcome of the quorum check."""

    blocks: int  # blocks checked
    quorum: int
    validators: int
    failed_height: int | None  # the first block short of its quorum
    found: int  # attestations it has, if one failed

    @property
    def ok(self) -> bool:
        """Every block has its quorum."""
        return self.failed_height is None

    def describe(self) -> str:
        """One line for the command line."""
        if self.ok:
            return (
                f"OK: each of {self.blocks} blocks signed by at least {self.quorum} "
                f"of {self.validators} validators"
            )
        return (
            f"FAILED at block {self.failed_height}: {self.found} of the {self.quorum} "
            "attestations it needs"
        )


def check_quorum(
    chain_file: Path,
    store: BlockStore,
    *,
    chain_id: str,
    validators: list[bytes],
    quorum: int,
) -> QuorumReport:
    """Check that every block of ``store`` has ``quorum`` valid attestations in ``chain_file``."""
    attestations = AttestationStore(chain_file, readonly=True)
    try:
        by_height = attestations.by_height()
    finally:
        attestations.close()
    for height in range(store.height):
        block_hash = store.block_at(height).hash
        try:
            validate_quorum(
                height,
                block_hash,
                by_height.get(height, []),
                chain_id=chain_id,
                validators=validators,
                quorum=quorum,
            )
        except QuorumNotReached as exc:
            found = exc.found if isinstance(exc.found, int) else 0
            return QuorumReport(height, quorum, len(validators), height, found)
    return QuorumReport(store.height, quorum, len(validators), None, 0)
