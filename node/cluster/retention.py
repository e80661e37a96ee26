"""Bounded streams: the log and the attestations are purged below what every validator made final.

Each validator publishes a **mark** in a replicated key-value bucket
(``PROGRESS_BUCKET``, key: its public key in hex): its final height (the
last block it stored with its quorum of attestations) and the log message
it would resume reading at after that block. When every configured
validator has a mark, the lowest one is a point every validator is past
for good: a restarted validator resumes after its stored head, which is at
or above its final block. So the log stream is purged below the lowest
mark's message, and the attestation stream below the first record of a
height above the lowest final height (every validator stored the quorum
of the heights below). A validator that is down holds purging back at its
mark; to bound the streams even then, JetStream's own limits apply
(``StreamLimits``: ``--log-max-msgs``, ``--log-max-age-s``), and a
validator that falls behind what the stream retains stops with
``LogTruncated`` (see docs/cluster.md: it is restored from a peer's data
directory).

A mark is no secret and needs no signature: anyone who may publish on the
cluster may purge streams anyway, so marks only affect availability (a
false high mark can make a lagging validator need a peer's copy), never
which blocks are final.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import msgpack
from nats.js import api

from node.pipeline.jetstream import LogPoint

if TYPE_CHECKING:
    from nats.js.kv import KeyValue

    from node.cluster.attestations import AttestationBus
    from node.pipeline.jetstream import JetStreamLog

log = logging.getLogger("p2pex.cluster.retention")

PROGRESS_BUCKET = "P2PEX_PROGRESS"
MARK_INTERVAL = 1.0  # seconds between two marks of a validator (and purge checks)


@dataclass(frozen=True, slots=True)
class Mark:
    """A validator's final height and the log message it resumes at after it."""

    final_height: int
    log_seq: int


def encode_mark(mark: Mark) -> bytes:
    """The bucket value of a mark."""
    return msgpack.packb([1, mark.final_height, mark.log_seq])


def decode_mark(data: bytes) -> Mark | None:
    """A mark, or None if ``data`` is not one.

    >>> decode_mark(encode_mark(Mark(5, 42)))
    Mark(final_height=5, log_seq=42)
    >>> decode_mark(b"junk") is None
    True
    """
    try:
        value = msgpack.unpackb(data)
    except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError):
        return None
    if (
        not isinstance(value, list)
        or len(value) != 3
        or value[0] != 1
        or not all(type(v) is int and v >= 0 for v in value[1:])
    ):
        return None
    return Mark(value[1], value[2])


def lowest_mark(marks: Mapping[bytes, Mark], validators: Collection[bytes]) -> Mark | None:
    """What every validator is past: the lowest height and message, if each has a mark.

    >>> lowest_mark({b"a": Mark(3, 9), b"b": Mark(5, 7)}, [b"a", b"b"])
    Mark(final_height=3, log_seq=7)
    >>> lowest_mark({b"a": Mark(3, 9)}, [b"a", b"b"]) is None
    True
    """
    if not validators or any(v not in marks for v in validators):
        return None
    return Mark(
        min(marks[v].final_height for v in validators), min(marks[v].log_seq for v in validators)
    )


class Retention:
    """Publishes this validator's mark; purges both streams below everyone's."""

    def __init__(
        self,
        kv: KeyValue,
        me: bytes,
        validators: Collection[bytes],
        log_: JetStreamLog,
        bus: AttestationBus,
        step: int,
    ) -> None:
        self.kv = kv
        self.me = me
        self.validators = list(validators)
        self.log = log_
        self.bus = bus
        self.step = step  # purge once the lowest mark moved this many log messages
        self.mark: Mark | None = None  # this validator's, not yet published if changed
        self.published: Mark | None = None
        self.purged_below = 0  # log sequence
        self.lowest: Mark | None = None

    @classmethod
    async def open(
        cls,
        log_: JetStreamLog,
        bus: AttestationBus,
        me: bytes,
        validators: Collection[bytes],
        *,
        step: int,
        replicas: int,
    ) -> Retention:
        """Create the bucket if needed."""
        config = api.KeyValueConfig(bucket=PROGRESS_BUCKET, history=1, replicas=replicas)
        kv = await log_.js.create_key_value(config)
        return cls(kv, me, validators, log_, bus, step)

    def final(self, height: int, point: LogPoint) -> None:
        """This validator made the block at ``height`` final; it resumes at ``point`` after it."""
        self.mark = Mark(height, point.seq)

    async def run(self) -> None:
        """Publish the mark and purge, every ``MARK_INTERVAL`` seconds. Runs until cancelled."""
        while True:
            await asyncio.sleep(MARK_INTERVAL)
            try:
                await self.round()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the cluster is electing a leader: next round
                log.warning("retention round failed: %r", exc)

    async def round(self) -> None:
        """One round: publish a changed mark, read everyone's, purge if they moved enough."""
        mark = self.mark
        if mark is not None and mark != self.published:
            await self.kv.put(self.me.hex(), encode_mark(mark))
            self.published = mark
        if self.step <= 0:
            return
        marks: dict[bytes, Mark] = {}
        for validator in self.validators:
            with contextlib.suppress(Exception):  # no key yet: that validator never marked
                entry = await self.kv.get(validator.hex())
                found = decode_mark(entry.value or b"")
                if found is not None:
                    marks[validator] = found
        lowest = lowest_mark(marks, self.validators)
        self.lowest = lowest
        if lowest is None or lowest.log_seq - self.purged_below < self.step:
            return
        await self.log.purge_below(lowest.log_seq)
        attest_seq = self.bus.purge_seq(lowest.final_height + 1)
        await self.log.js.purge_stream(self.bus.stream, seq=attest_seq)
        self.bus.forget_below(lowest.final_height + 1)
        self.purged_below = lowest.log_seq
        log.info(
            "purged the log below message %d, attestations below record %d (final height %d)",
            lowest.log_seq,
            attest_seq,
            lowest.final_height,
        )
