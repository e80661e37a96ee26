"""A ``SequencerLog`` on a replicated NATS JetStream stream.

Every validator appends to, and reads, the same stream (``num_replicas``
3 by default: Raft-replicated over three servers, so it survives the loss
of one). The stream's sequence numbers are the log's positions (position =
sequence - 1), so every reader sees the same entries at the same positions.

- A stream message is a **batch** of entries (``encode_batch``): the
  entries appended in one turn of the event loop go out in one publish,
  so under load the per-message costs (a publish and its acknowledgement,
  Raft replication, one delivery to every reader, the client library's
  per-message work) are shared by many entries, and with one entry per
  turn nothing waits for a batch to fill. A message that is not a
  well-formed batch holds no entries, for every reader alike.
- Positions count entries, not messages: an entry's position is the number
  of entries in the messages before its own plus its index in its message.
  ``append``'s future gives it once the reader has received the message
  (the acknowledgement gives only the message's sequence). A failed or
  timed-out publish fails the futures of the whole batch with
  ``SequencerUnavailable``; a timed-out one may still have been stored:
  its entries then simply turn up in the log (the state machine refuses a
  second copy of a transaction as a replay).
- A reader resumes at a ``LogPoint`` (position, message sequence, index in
  that message): ``locate(position)`` gives it for a position read.
- ``read`` serves a local buffer that an ordered push consumer fills from
  the stream (starting at the reader's resume point); the consumer is
  recreated by the client library if it misses a message or its server
  goes away, so the buffer only ever grows by the next position.
- ``committed``: the stream delivers only messages it has stored on a
  quorum of its replicas, so every entry read is committed.
- Retention: the stream can be bounded by limits (``StreamLimits``: the
  oldest messages go first) and purged below a sequence every reader is
  done with (``purge_below``); a reader whose resume point was dropped
  gets ``LogTruncated`` (``first_seq`` says where the stream starts).

Entries are untrusted bytes: anyone who can publish on the subject can
append (the producer checks every entry it did not check itself).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import msgpack
import nats
from nats.js import api
from nats.js.errors import BadRequestError

from node.errors import NodeError, NodeTimeout, SequencerUnavailable
from node.pipeline.sequencer import LogBuffer

if TYPE_CHECKING:
    from nats.aio.client import Client as NatsClient
    from nats.aio.msg import Msg
    from nats.aio.subscription import Subscription
    from nats.js import JetStreamContext

log = logging.getLogger("p2pex.jetstream")
T = TypeVar("T")

DEFAULT_STREAM = "P2PEX_LOG"
ACK_TIMEOUT = 5.0  # seconds a publish waits for the stream's acknowledgement
HEARTBEAT = 0.5  # seconds: the consumer's idle heartbeat (a silent server is noticed after ~2)
WATCH_INTERVAL = 1.0  # seconds between two checks that delivery is not stalled
SETUP_TIMEOUT = 30.0  # seconds to create the stream while the cluster elects its leaders
MAX_BATCH_BYTES = 512 * 1024  # below the servers' default 1 MiB message limit
BOUNDS_KEPT = 1 << 16  # message boundaries kept for ``locate`` when nobody asks


class LogTruncated(NodeError):
    """Raised when a reader's resume point is older than the stream's first message."""

    def __init__(self, want_seq: int, first_seq: int, hint: str = "") -> None:
        self.want_seq = want_seq
        self.first_seq = first_seq
        text = f"the log no longer holds message {want_seq}: it starts at message {first_seq}"
        super().__init__(f"{text}; {hint}" if hint else text)


@dataclass(frozen=True, slots=True)
class LogPoint:
    """Where a reader resumes: an entry's position, its message's sequence, its index there."""

    position: int = 0
    seq: int = 1
    offset: int = 0


@dataclass(frozen=True, slots=True)
class StreamLimits:
    """JetStream's own bounds on the stream (0: none): the oldest messages are dropped first."""

    max_msgs: int = 0
    max_bytes: int = 0
    max_age_s: float = 0.0


def encode_batch(entries: Sequence[bytes]) -> bytes:
    """One stream message holding ``entries`` (a msgpack array of byte strings)."""
    return msgpack.packb(list(entries), use_bin_type=True)


def decode_batch(data: bytes) -> list[bytes]:
    """The entries of a stream message; none if it is not a well-formed batch.

    >>> decode_batch(encode_batch([b"a", b"bc"]))
    [b'a', b'bc']
    >>> decode_batch(b"not msgpack"), decode_batch(encode_batch([])), decode_batch(b"\\x91\\x01")
    ([], [], [])
    """
    try:
        value = msgpack.unpackb(data, raw=False, strict_map_key=True, use_list=True)
    except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError):
        return []
    if not isinstance(value, list) or not all(type(entry) is bytes for entry in value):
        return []
    return value


async def connect(urls: Sequence[str], name: str) -> NatsClient:
    """Connect to any of ``urls``; reconnect (to any of them) for ever."""
    return await nats.connect(
        servers=list(urls),
        name=name,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.2,  # type: ignore[arg-type,unused-ignore]  # annotated int
        connect_timeout=2,
        allow_reconnect=True,
    )


async def ensure_stream(
    js: JetStreamContext,
    name: str,
    subject: str,
    replicas: int,
    timeout: float = SETUP_TIMEOUT,
    limits: StreamLimits | None = None,
) -> None:
    """Create the stream (or update its limits if it exists), retrying while the
    cluster is still electing its leaders.

    Raises:
        NodeTimeout: not created within ``timeout`` seconds.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    limits = limits or StreamLimits()
    config = api.StreamConfig(
        name=name,
        subjects=[subject],
        num_replicas=replicas,
        storage=api.StorageType.FILE,
        retention=api.RetentionPolicy.LIMITS,
        discard=api.DiscardPolicy.OLD,
        max_msgs=limits.max_msgs or None,
        max_bytes=limits.max_bytes or None,
        max_age=limits.max_age_s or None,
    )
    while True:
        try:
            try:
                await js.add_stream(config)
            except BadRequestError as exc:
                if exc.err_code != 10058:  # not "name already in use" (other limits)
                    raise
                await js.update_stream(config)
            return
        except BadRequestError:
            raise
        except (TypeError, ValueError):
            raise
        except Exception as exc:  # timeouts, no responders, "JetStream not ready" ...
            if loop.time() >= deadline:
                msg = f"cannot create stream {name}: {exc!r}"
                raise NodeTimeout(msg) from exc
            await asyncio.sleep(0.2)


async def retry_until(call: Callable[[], Awaitable[T]], what: str, timeout: float) -> T:
    """``await call()``, again after each failure (timeouts, no responders, a leader
    being elected) until ``timeout`` seconds have passed.

    Raises:
        NodeTimeout: every attempt failed.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            return await call()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if loop.time() >= deadline:
                msg = f"cannot {what}: {exc!r}"
                raise NodeTimeout(msg) from exc
            log.warning("%s failed, retrying: %r", what, exc)
            await asyncio.sleep(0.2)


class StreamReader:
    """Reads a stream in order from a sequence on, through every server loss.

    An ordered push consumer does the reading; the client library recreates
    it when it misses a message, but a recreation that fails while the
    cluster elects a new leader is not retried. So a watchdog compares the
    stream's last sequence with the last one delivered, and subscribes
    again from where delivery stopped when it made no progress.
    """

    def __init__(
        self,
        js: JetStreamContext,
        stream: str,
        subject: str,
        next_seq: int,
        deliver: Callable[[int, bytes], None],
    ) -> None:
        self.js = js
        self.stream = stream
        self.subject = subject
        self.next_seq = next_seq  # the next stream sequence to deliver
        self.deliver = deliver
        self.resubscribed = 0
        self.truncated: LogTruncated | None = None  # the stream dropped what we need
        self._sub: Subscription | None = None
        self._watch: asyncio.Task[None] | None = None

    async def start(self, timeout: float = SETUP_TIMEOUT) -> None:
        """Subscribe (retrying while the cluster is slow to answer), and watch the subscription.

        Raises:
            NodeTimeout: not subscribed within ``timeout`` seconds.
        """
        await retry_until(self._subscribe, f"subscribe to {self.stream}", timeout)
        self._watch = asyncio.ensure_future(self._watchdog())

    async def _subscribe(self) -> None:
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            self._sub = None
        config = api.ConsumerConfig(
            deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=self.next_seq
        )
        self._sub = await self.js.subscribe(
            self.subject,
            cb=self._received,
            ordered_consumer=True,
            idle_heartbeat=HEARTBEAT,
            config=config,
            stream=self.stream,
        )

    async def _received(self, msg: Msg) -> None:
        seq = msg.metadata.sequence.stream
        if seq < self.next_seq:
            return  # a redelivery after the consumer was recreated
        if seq > self.next_seq:  # the consumer restarts itself at the gap (or the watchdog)
            log.warning("stream %s: got sequence %d, want %d", self.stream, seq, self.next_seq)
            return
        self.next_seq = seq + 1
        self.deliver(seq, msg.data)

    async def _watchdog(self) -> None:
        seen = self.next_seq
        while True:
            await asyncio.sleep(WATCH_INTERVAL)
            try:
                info = await self.js.stream_info(self.stream)
                last = int(info.state.last_seq)
            except asyncio.CancelledError:
                raise
            except Exception:
                continue  # the cluster is electing a leader: ask again
            first = int(info.state.first_seq)
            if first > self.next_seq and last >= first:
                self.truncated = LogTruncated(self.next_seq, first)
                log.error("stream %s: %s", self.stream, self.truncated)
                return
            if last >= self.next_seq and self.next_seq == seen:
                log.warning("stream %s: delivery stalled at %d, resubscribing", self.stream, seen)
                try:
                    await self._subscribe()
                    self.resubscribed += 1
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning("resubscribing to %s failed: %r", self.stream, exc)
            seen = self.next_seq

    async def close(self) -> None:
        """Stop watching and reading."""
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()


class JetStreamLog(LogBuffer):
    """A ``SequencerLog`` on one JetStream stream (see the module docstring).

    Create with ``await JetStreamLog.open(urls, start=...)``.
    """

    def __init__(self, nc: NatsClient, stream: str, subject: str, start: LogPoint) -> None:
        self.nc = nc
        self.js = nc.jetstream()
        self.stream = stream
        self.subject = subject
        super().__init__(start.position)
        self._reader: StreamReader | None = None
        self._skip = start.offset  # entries of the first message read that precede ``start``
        self._skip_seq = start.seq
        self._appends: set[asyncio.Task[None]] = set()
        self._batch: list[bytes] = []  # entries appended in this turn of the loop
        self._batch_futures: list[asyncio.Future[int]] = []
        self._batch_bytes = 0
        self._flush_soon = False
        self._acked: dict[int, list[asyncio.Future[int]]] = {}  # seq -> its entries' futures
        self._arrived: dict[int, int] = {}  # seq -> position of its first entry (recent)
        # message boundaries, for ``locate``: first positions and their sequences
        self._bound_pos: deque[int] = deque()
        self._bound_seq: deque[int] = deque()
        self.ack_timeout = ACK_TIMEOUT
        self.messages = 0  # stream messages received (entries / messages = batch size)
        # seconds from publishing a batch to reading it back, recent ones (where time goes)
        self.round_trips: deque[float] = deque(maxlen=4096)
        self._sent_at: dict[int, float] = {}  # seq -> when its batch was published

    @classmethod
    async def open(
        cls,
        urls: Sequence[str],
        *,
        start: LogPoint | None = None,
        stream: str = DEFAULT_STREAM,
        replicas: int = 3,
        name: str = "p2pex",
        limits: StreamLimits | None = None,
    ) -> JetStreamLog:
        """Connect, create the stream if needed, and read it from ``start`` on.

        Raises:
            LogTruncated: the stream no longer holds the message of ``start``.
        """
        start = start or LogPoint()
        nc = await connect(urls, name)
        try:
            subject = f"{stream.lower()}.entries"
            await ensure_stream(nc.jetstream(), stream, subject, replicas, limits=limits)
            self = cls(nc, stream, subject, start)
            first = await retry_until(self.first_seq, f"read {stream}'s state", SETUP_TIMEOUT)
            if start.seq < first:
                raise LogTruncated(start.seq, first)
            self._reader = StreamReader(self.js, stream, subject, start.seq, self._received)
            await self._reader.start()
        except BaseException:
            await nc.close()
            raise
        return self

    async def first_seq(self) -> int:
        """The sequence of the oldest message the stream holds (last + 1 if it is empty)."""
        info = await self.js.stream_info(self.stream)
        return max(1, int(info.state.first_seq))

    @property
    def truncated(self) -> LogTruncated | None:
        """Set if the stream dropped messages this reader had not read yet."""
        return self._reader.truncated if self._reader is not None else None

    def _received(self, seq: int, data: bytes) -> None:
        entries = decode_batch(data)
        skipped = 0
        if seq == self._skip_seq and self._skip:  # the resume point is inside this message
            skipped, self._skip = self._skip, 0
            entries = entries[skipped:]
        self.messages += 1
        first = self.committed
        waiting = self._acked.pop(seq, None)
        sent = self._sent_at.pop(seq, None)
        if sent is not None:
            self.round_trips.append(asyncio.get_running_loop().time() - sent)
        if waiting is not None:
            for index, future in enumerate(waiting):
                if not future.done():
                    future.set_result(first + index)
        else:
            arrived = self._arrived
            arrived[seq] = first
            if len(arrived) > 4096:  # an append whose ack never came (timed out): forget it
                del arrived[next(iter(arrived))]
        if not entries:
            return
        self._bound_pos.append(first - skipped)
        self._bound_seq.append(seq)
        if len(self._bound_pos) > BOUNDS_KEPT:
            self._bound_pos.popleft()
            self._bound_seq.popleft()
        for entry in entries:
            self._receive(entry)

    def locate(self, position: int) -> LogPoint:
        """Where a reader resumes to read ``position`` next; requires it was received or is next.

        Boundaries before the one found are forgotten: ask in increasing order.
        """
        if position >= self.committed:
            assert self._reader is not None
            return LogPoint(position, self._reader.next_seq, position - self.committed)
        index = bisect.bisect_right(self._bound_pos, position) - 1
        if index < 0:
            msg = f"position {position} is older than the boundaries kept"
            raise ValueError(msg)
        for _ in range(index):
            self._bound_pos.popleft()
            self._bound_seq.popleft()
        first, seq = self._bound_pos[0], self._bound_seq[0]
        return LogPoint(position, seq, position - first)

    def append(self, entry: bytes) -> asyncio.Future[int]:
        """Add ``entry`` to this turn's batch; the future gives its position once read back."""
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        if self._batch_bytes + len(entry) > MAX_BATCH_BYTES and self._batch:
            self._flush()
        self._batch.append(entry)
        self._batch_futures.append(future)
        self._batch_bytes += len(entry) + 5
        if not self._flush_soon:
            self._flush_soon = True
            asyncio.get_running_loop().call_soon(self._flush)
        return future

    def _flush(self) -> None:
        self._flush_soon = False
        if not self._batch:
            return
        entries, futures = self._batch, self._batch_futures
        self._batch, self._batch_futures, self._batch_bytes = [], [], 0
        task = asyncio.ensure_future(self._publish(encode_batch(entries), futures))
        self._appends.add(task)
        task.add_done_callback(self._appends.discard)

    async def _publish(self, data: bytes, futures: list[asyncio.Future[int]]) -> None:
        sent = asyncio.get_running_loop().time()
        try:
            ack = await self.js.publish(self.subject, data, timeout=self.ack_timeout)
        except asyncio.CancelledError:
            for future in futures:
                future.cancel()
            raise
        except Exception as exc:
            msg = f"the stream did not take the entry: {exc!r}"
            for future in futures:
                if not future.done():
                    future.set_exception(SequencerUnavailable(msg))
            return
        seq = int(ack.seq)
        first = self._arrived.pop(seq, None)
        if first is None:  # not read back yet: resolved when it is
            self._acked[seq] = futures
            self._sent_at[seq] = sent
            if len(self._sent_at) > 4096:  # never read back (the reader is gone): forget it
                del self._sent_at[next(iter(self._sent_at))]
            return
        self.round_trips.append(asyncio.get_running_loop().time() - sent)  # read back first
        for index, future in enumerate(futures):
            if not future.done():
                future.set_result(first + index)

    async def purge_below(self, seq: int) -> None:
        """Drop the stream's messages before sequence ``seq`` (every reader is past them)."""
        await self.js.purge_stream(self.stream, seq=seq)

    @property
    def committed(self) -> int:
        """Every received position: the stream delivers only quorum-stored entries."""
        return super().committed

    async def close(self) -> None:
        """Stop reading, cancel pending appends, close the connection."""
        for future in self._batch_futures:
            future.cancel()
        self._batch, self._batch_futures = [], []
        for task in list(self._appends):
            task.cancel()
        for waiting in self._acked.values():
            for future in waiting:
                future.cancel()
        if self._reader is not None:
            await self._reader.close()
        with contextlib.suppress(Exception):
            await self.nc.close()
