"""A ``SequencerLog`` on a replicated NATS JetStream stream.

Every validator appends to, and reads, the same stream (``num_replicas``
3 by default: Raft-replicated over three servers, so it survives the loss
of one). The stream's sequence numbers are the log's positions (position =
sequence - 1), so every reader sees the same entries at the same positions.

- ``append`` publishes and waits for the stream's acknowledgement: the
  acknowledged sequence is the position. Publishes from one connection
  reach the stream in the order they were made. A failed or timed-out
  publish fails the future with ``SequencerUnavailable``; a timed-out one
  may still have been stored: the entry then simply turns up in the log
  (the state machine refuses a second copy of a transaction as a replay).
- ``read`` serves a local buffer that an ordered push consumer fills from
  the stream (starting at the reader's resume position); the consumer is
  recreated by the client library if it misses a message or its server
  goes away, so the buffer only ever grows by the next position.
- ``committed``: the stream delivers only entries it has stored on a
  quorum of its replicas, so every entry read is committed.

Entries are untrusted bytes: anyone who can publish on the subject can
append (the producer checks every entry it did not check itself).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import nats
from nats.js import api
from nats.js.errors import BadRequestError

from node.errors import NodeTimeout, SequencerUnavailable
from node.pipeline.sequencer import LogBuffer

if TYPE_CHECKING:
    from nats.aio.client import Client as NatsClient
    from nats.aio.msg import Msg
    from nats.aio.subscription import Subscription
    from nats.js import JetStreamContext

log = logging.getLogger("p2pex.jetstream")

DEFAULT_STREAM = "P2PEX_LOG"
ACK_TIMEOUT = 5.0  # seconds a publish waits for the stream's acknowledgement
HEARTBEAT = 0.5  # seconds: the consumer's idle heartbeat (a silent server is noticed after ~2)
WATCH_INTERVAL = 1.0  # seconds between two checks that delivery is not stalled
SETUP_TIMEOUT = 30.0  # seconds to create the stream while the cluster elects its leaders


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
    js: JetStreamContext, name: str, subject: str, replicas: int, timeout: float = SETUP_TIMEOUT
) -> None:
    """Create the stream (a no-op if it exists with this configuration), retrying while the
    cluster is still electing its leaders.

    Raises:
        NodeTimeout: not created within ``timeout`` seconds.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    config = api.StreamConfig(
        name=name,
        subjects=[subject],
        num_replicas=replicas,
        storage=api.StorageType.FILE,
        retention=api.RetentionPolicy.LIMITS,
    )
    while True:
        try:
            await js.add_stream(config)
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
        self._sub: Subscription | None = None
        self._watch: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Subscribe, and watch the subscription."""
        await self._subscribe()
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

    def __init__(self, nc: NatsClient, subject: str, start: int) -> None:
        self.nc = nc
        self.js = nc.jetstream()
        self.subject = subject
        super().__init__(start)
        self._reader: StreamReader | None = None
        self._appends: set[asyncio.Task[int]] = set()
        self.ack_timeout = ACK_TIMEOUT

    @classmethod
    async def open(
        cls,
        urls: Sequence[str],
        *,
        start: int = 0,
        stream: str = DEFAULT_STREAM,
        replicas: int = 3,
        name: str = "p2pex",
    ) -> JetStreamLog:
        """Connect, create the stream if needed, and read it from position ``start`` on."""
        nc = await connect(urls, name)
        try:
            subject = f"{stream.lower()}.entries"
            await ensure_stream(nc.jetstream(), stream, subject, replicas)
            self = cls(nc, subject, start)
            self._reader = StreamReader(self.js, stream, subject, start + 1, self._received)
            await self._reader.start()
        except BaseException:
            await nc.close()
            raise
        return self

    def _received(self, seq: int, data: bytes) -> None:
        # StreamReader delivers each sequence once, in order: position = seq - 1
        self._receive(data)

    def append(self, entry: bytes) -> asyncio.Future[int]:
        """Publish ``entry``; the future gives its stream position."""
        task = asyncio.ensure_future(self._publish(entry))
        self._appends.add(task)
        task.add_done_callback(self._appends.discard)
        return task

    async def _publish(self, entry: bytes) -> int:
        try:
            ack = await self.js.publish(self.subject, entry, timeout=self.ack_timeout)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            msg = f"the stream did not take the entry: {exc!r}"
            raise SequencerUnavailable(msg) from exc
        return int(ack.seq) - 1

    @property
    def committed(self) -> int:
        """Every received position: the stream delivers only quorum-stored entries."""
        return super().committed

    async def close(self) -> None:
        """Stop reading, cancel pending appends, close the connection."""
        for task in list(self._appends):
            task.cancel()
        if self._reader is not None:
            await self._reader.close()
        with contextlib.suppress(Exception):
            await self.nc.close()
