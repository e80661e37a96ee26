"""Time carried in the log: tick markers and the block boundaries they give.

On a shared log, a block boundary must be a function of the log alone, or
validators reading the same entries would cut different blocks. So time is
data in the log: any validator appends a **tick** now and then, carrying its
clock's reading; every reader keeps the **log time**, the largest tick time
read so far (ticks from several validators interleave; taking the maximum
keeps log time from going back).

``LogTimePolicy`` is the ``BlockProducer``'s boundary policy for a shared
log: a block opens at the log time when its first transaction is read
(never earlier than the state's time), and is cut at the first tick whose
time is at least ``interval_ns`` past the block's time, or as soon as it
holds ``max_txs`` transactions (the producer's count rule). No node's local
clock enters a block.

A tick is ``TICK_TAG || time_ns (8 bytes, big-endian)``. ``TICK_TAG``
starts with 0xc1, a byte msgpack never uses, so a tick can never be read
as a transaction (and a transaction never as a tick).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from node.clock import Clock, sleep
from node.pipeline.sequencer import SequencerLog

log = logging.getLogger("p2pex.log_time")

TICK_TAG = b"\xc1p2pex/tick/v1\x00"
TICK_SIZE = len(TICK_TAG) + 8
I64_MAX = (1 << 63) - 1


def encode_tick(time_ns: int) -> bytes:
    """The log entry of a tick at ``time_ns`` (ns since the Unix epoch)."""
    if not 0 <= time_ns <= I64_MAX:
        msg = f"tick time {time_ns} is outside 0..2**63-1"
        raise ValueError(msg)
    return TICK_TAG + time_ns.to_bytes(8, "big")


def decode_tick(entry: bytes) -> int | None:
    """The time of a tick entry, or None if ``entry`` is not a well-formed tick."""
    if len(entry) != TICK_SIZE or not entry.startswith(TICK_TAG):
        return None
    value = int.from_bytes(entry[len(TICK_TAG) :], "big")
    return value if value <= I64_MAX else None


def is_marker(entry: bytes) -> bool:
    """The entry is in the marker space (starts with 0xc1): never a transaction."""
    return entry[:1] == b"\xc1"


class LogTimePolicy:
    """Block boundaries and block times from tick markers in the log.

    ``log_time`` must be restored on restart together with the reader's
    position (both are a function of the log prefix read so far).
    """

    __slots__ = ("interval_ns", "log_time")

    def __init__(self, interval_ns: int, log_time: int = 0) -> None:
        if interval_ns < 1:
            msg = f"interval_ns must be at least 1, got {interval_ns}"
            raise ValueError(msg)
        self.interval_ns = interval_ns
        self.log_time = log_time

    def is_marker(self, entry: bytes) -> bool:
        """The entry is a marker for the policy, not a transaction."""
        return is_marker(entry)

    def read_marker(self, entry: bytes, open_time: int | None) -> bool:
        """Take a marker into account; True if the open block (of ``open_time``) is due.

        A malformed marker is ignored (it is untrusted bytes like any entry).
        """
        time_ns = decode_tick(entry)
        if time_ns is None:
            log.warning("ignored a malformed marker entry of %d bytes", len(entry))
            return False
        self.log_time = max(self.log_time, time_ns)
        return open_time is not None and self.log_time >= open_time + self.interval_ns

    def open_time(self, state_time: int) -> int:
        """The time of a block that opens now."""
        return max(self.log_time, state_time)


class Ticker:
    """Appends a tick with the node clock's time every ``interval`` seconds.

    Any number of validators may tick: the log time is the maximum. A
    validator skips its tick when the log time it has read is already
    within ``interval`` of its own clock (another validator ticked), so a
    set of validators appends about one tick per interval, not one each.
    A failed append is dropped and the next tick tried (the stream may be
    electing a leader).
    """

    def __init__(
        self,
        log: SequencerLog,
        clock: Clock,
        interval: float,
        active: Callable[[], bool],
        idle_interval: float = 1.0,
        log_time: Callable[[], int] | None = None,
    ) -> None:
        self.log = log
        self.clock = clock
        self.interval = interval
        self.active = active  # tick every interval while this says so (e.g. a block is open)
        self.idle_interval = idle_interval  # ... and this often otherwise
        self.log_time = log_time  # the log time read so far (None: always tick)

    async def run(self) -> None:
        """Tick until cancelled."""
        last = self.clock.monotonic()
        while True:
            await sleep(self.clock, self.interval)
            now = self.clock.monotonic()
            if not self.active() and now - last < self.idle_interval:
                continue
            time_ns = self.clock.time_ns()
            recent = time_ns - round(self.interval * 1e9)  # ints: a float loses ns at 1.7e18
            if self.log_time is not None and self.log_time() > recent:
                continue  # another validator's tick is recent enough
            last = now
            future = self.log.append(encode_tick(time_ns))
            future.add_done_callback(_drop_outcome)  # a lost tick is no error: the next one comes
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(future), self.interval * 10)


def _drop_outcome(future: asyncio.Future[int]) -> None:
    if not future.cancelled():
        future.exception()  # retrieved: asyncio does not report it as never retrieved
