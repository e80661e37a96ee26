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
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import nats
from nats.js import api
from nats.js.errors import BadRequestError

from node.errors import NodeTimeout, SequencerUnavailable

if TYPE_CHECKING:
    from nats.aio.client import Client as NatsClient
    from nats.aio.msg import Msg
    from nats.aio.subscription import Subscription
    from nats.js import JetStreamContext

log = logging.getLogger("p2pex.jetstream")

DEFAULT_STREAM = "P2PEX_LOG"
ACK_TIMEOUT = 5.0  # seconds a publish waits for the stream's acknowledgement
HEARTBEAT = 0.5  # seconds: the consumer's idle heartbeat (a silent server is noticed after ~2)
SETUP_TIMEOUT = 30.0  # seconds to create the stream while the cluster elects its leaders


async def connect(urls: Sequence[str], name: str) -> NatsClient:
    """Connect to any of ``urls``; reconnect (to any of them) for ever."""
    return await nats.connect(
        servers=list(urls),
        name=name,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.2,  # type: ignore[arg-type]  # the library annotates int, takes float
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


class JetStreamLog:
    """A ``SequencerLog`` on one JetStream stream (see the module docstring).

    Create with ``await JetStreamLog.open(urls, start=...)``.
    """

    def __init__(self, nc: NatsClient, subject: str, start: int) -> None:
        self.nc = nc
        self.js = nc.jetstream()
        self.subject = subject
        self._entries: deque[bytes] = deque()
        self._base = start  # position of _entries[0]
        self._listeners: list[Callable[[], None]] = []
        self._sub: Subscription | None = None
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
            config = api.ConsumerConfig(
                deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE,
                opt_start_seq=start + 1,
            )
            self._sub = await self.js.subscribe(
                subject,
                cb=self._received,
                ordered_consumer=True,
                idle_heartbeat=HEARTBEAT,
                config=config,
            )
        except BaseException:
            await nc.close()
            raise
        return self

    async def _received(self, msg: Msg) -> None:
        position = msg.metadata.sequence.stream - 1
        expected = self._base + len(self._entries)
        if position < expected:
            return  # a redelivery after the consumer was recreated
        if position > expected:  # the ordered consumer restarts itself at the gap
            log.warning("log gap: got position %d, want %d", position, expected)
            return
        self._entries.append(msg.data)
        for listener in self._listeners:
            listener()

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

    def read(self, start: int, max_count: int) -> list[bytes]:
        """Return up to ``max_count`` entries from ``start`` on, as far as received."""
        offset = start - self._base
        if offset < 0:
            msg = f"position {start} was released (the buffer starts at {self._base})"
            raise ValueError(msg)
        entries = self._entries
        end = min(len(entries), offset + max_count)
        return [entries[i] for i in range(offset, end)]

    def on_append(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` whenever an entry was received."""
        self._listeners.append(callback)

    @property
    def committed(self) -> int:
        """Every received position: the stream delivers only quorum-stored entries."""
        return self._base + len(self._entries)

    def release(self, position: int) -> None:
        """Drop the buffered entries below ``position`` (the stream keeps them)."""
        entries = self._entries
        while self._base < position and entries:
            entries.popleft()
            self._base += 1

    async def close(self) -> None:
        """Stop reading, cancel pending appends, close the connection."""
        for task in list(self._appends):
            task.cancel()
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
        with contextlib.suppress(Exception):
            await self.nc.close()
