"""Attestations between validators: a replicated stream of signed block hashes.

Each validator publishes its attestation of every block it stores to a
second JetStream stream and reads every attestation from it (all of
history, so a restarted validator finds the attestations of the blocks it
re-derives). ``AttestationBus`` keeps the valid ones by height, answers
``wait_quorum(height, hash)`` once a quorum of validators signed that
hash, and reports every validator whose attestation names another hash
at a height this node has stored: its block differs (another order of
transactions, a forged block, another state machine).

This validator's own attestation counts at once (it signed it just now),
and when the stream delivers it back, the bytes are recognised and not
checked again. ``forget_below(height)`` drops what no block waits for any
more, and ``purge_seq(height)`` says below which stream sequence every
record is of a lower height (the records a purge may drop).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ledger.attestation import (
    Attestation,
    BadAttestation,
    decode_attestation,
    validate_attestation,
)
from ledger.errors import DecodeError
from node.pipeline.jetstream import (
    ACK_TIMEOUT,
    SETUP_TIMEOUT,
    StreamReader,
    connect,
    ensure_stream,
    retry_until,
)

if TYPE_CHECKING:
    from nats.aio.client import Client as NatsClient

log = logging.getLogger("p2pex.attestations")

ATTEST_STREAM = "P2PEX_ATTEST"


@dataclass(frozen=True, slots=True)
class Divergence:
    """A validator attested another block than this node's at a height."""

    height: int
    validator: bytes
    theirs: bytes  # the hash it signed
    ours: bytes  # this node's block hash


class AttestationBus:
    """Publishes this validator's attestations; collects everyone's."""

    def __init__(
        self, nc: NatsClient, subject: str, chain_id: str, validators: Collection[bytes]
    ) -> None:
        self.nc = nc
        self.js = nc.jetstream()
        self.subject = subject
        self.stream = ATTEST_STREAM
        self.chain_id = chain_id
        self.validators = frozenset(validators)
        self.seen: dict[int, dict[bytes, Attestation]] = {}  # height -> validator -> attestation
        self.ours: dict[int, bytes] = {}  # height -> this node's block hash
        self.divergent: list[Divergence] = []
        self._reported: set[tuple[int, bytes]] = set()
        self._changed = asyncio.Event()
        self._own: dict[bytes, int] = {}  # our records not read back yet -> height
        self._arrivals: deque[tuple[int, int]] = deque()  # (stream sequence, height) read
        self._reader: StreamReader | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @classmethod
    async def open(
        cls,
        urls: Sequence[str],
        chain_id: str,
        validators: Collection[bytes],
        *,
        stream: str = ATTEST_STREAM,
        replicas: int = 3,
        name: str = "p2pex-attest",
    ) -> AttestationBus:
        """Connect, create the stream if needed, read it from its start."""
        nc = await connect(urls, name)
        try:
            subject = f"{stream.lower()}.records"
            await ensure_stream(nc.jetstream(), stream, subject, replicas)
            self = cls(nc, subject, chain_id, validators)
            self.stream = stream
            # all of history the stream still holds
            info = await retry_until(
                lambda: self.js.stream_info(stream), f"read {stream}'s state", SETUP_TIMEOUT
            )
            first = max(1, int(info.state.first_seq))
            self._reader = StreamReader(self.js, stream, subject, first, self._received)
            await self._reader.start()
        except BaseException:
            await nc.close()
            raise
        return self

    def _received(self, seq: int, data: bytes) -> None:
        own = self._own.pop(data, None)
        if own is not None:  # our own record, counted when published
            self._arrivals.append((seq, own))
            return
        try:
            attestation = decode_attestation(data)
            validate_attestation(attestation, self.chain_id, self.validators)
        except (DecodeError, BadAttestation) as exc:
            log.warning("ignored an attestation: %s", exc)
            return
        self._arrivals.append((seq, attestation.height))
        self.add(attestation)

    def add(self, attestation: Attestation) -> None:
        """Take a valid attestation into account; wake the waiters."""
        by_validator = self.seen.setdefault(attestation.height, {})
        by_validator.setdefault(attestation.validator, attestation)
        self._check(attestation)
        self._changed.set()

    def _check(self, attestation: Attestation) -> None:
        ours = self.ours.get(attestation.height)
        if ours is None or attestation.block_hash == ours:
            return
        key = (attestation.height, attestation.validator)
        if key in self._reported:
            return
        self._reported.add(key)
        divergence = Divergence(
            attestation.height, attestation.validator, attestation.block_hash, ours
        )
        self.divergent.append(divergence)
        log.error(
            "validator %s attested block %s at height %d; this node derived %s",
            attestation.validator.hex()[:16],
            attestation.block_hash.hex()[:16],
            attestation.height,
            ours.hex()[:16],
        )

    def publish(self, attestation: Attestation) -> None:
        """Publish our attestation (retried in the background until the stream takes it)."""
        self.ours[attestation.height] = attestation.block_hash
        for other in list(self.seen.get(attestation.height, {}).values()):
            self._check(other)
        data = attestation.to_bytes()
        self._own[data] = attestation.height
        self.add(attestation)
        task = asyncio.ensure_future(self._publish(data))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _publish(self, data: bytes) -> None:
        while True:
            try:
                await self.js.publish(self.subject, data, timeout=ACK_TIMEOUT)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("publishing an attestation failed, retrying: %r", exc)
                await asyncio.sleep(0.2)

    def signers(self, height: int, block_hash: bytes) -> list[Attestation]:
        """The valid attestations of ``block_hash`` at ``height`` seen so far."""
        found = self.seen.get(height, {}).values()
        return [a for a in found if a.block_hash == block_hash]

    async def wait_quorum(self, height: int, block_hash: bytes, quorum: int) -> list[Attestation]:
        """Wait until ``quorum`` validators signed ``block_hash`` at ``height``; their records."""
        while len(self.signers(height, block_hash)) < quorum:
            self._changed.clear()
            await self._changed.wait()
        return self.signers(height, block_hash)

    def forget_below(self, height: int) -> None:
        """Drop the attestations and hashes of heights below ``height`` (final everywhere)."""
        for table in (self.seen, self.ours):
            for old in [h for h in table if h < height]:
                del table[old]
        for data in [d for d, h in self._own.items() if h < height]:
            del self._own[data]

    def purge_seq(self, height: int) -> int:
        """The first stream sequence read whose record is of ``height`` or above.

        The records read before it are all of lower heights (forgotten here);
        if every record read is, the sequence after the last one read.
        """
        arrivals = self._arrivals
        while arrivals and arrivals[0][1] < height:
            arrivals.popleft()
        if arrivals:
            return arrivals[0][0]
        return self._reader.next_seq if self._reader is not None else 1

    async def close(self) -> None:
        """Stop publishing and reading; close the connection."""
        for task in list(self._tasks):
            task.cancel()
        if self._reader is not None:
            await self._reader.close()
        with contextlib.suppress(Exception):
            await self.nc.close()
