"""Sequencing: the one place that decides the total order of transactions.

The operator hands every signature-checked transaction to a ``Sequencer`` and
applies them to the state machine in the order the sequencer delivers them.
``EmbeddedSequencer`` is an in-process queue: the default single-operator set
up. A replicated log (e.g. a NATS JetStream stream: ``append`` publishes to the
stream, ``next_batch`` reads the durable consumer) is a second implementation
of this protocol, not a rewrite of the operator: the state machine already
filters invalid transactions deterministically, so the log may hold any bytes.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Protocol


class Sequencer(Protocol):
    """A totally ordered log of transaction bytes."""

    def append(self, tx: bytes) -> int:
        """Add ``tx`` at the end of the log and return its sequence number.

        Returns at once: the order is fixed by the order of the calls, and a
        transaction takes effect when ``next_batch`` delivers it (a remote
        log acknowledges in the background). The operator calls it once per
        submission on its event loop, so it must not block.
        """
        ...

    async def next_batch(self, max_count: int, timeout: float | None) -> list[tuple[int, bytes]]:
        """Return up to ``max_count`` entries after the last ones returned, in order.

        Waits up to ``timeout`` seconds (``None``: forever) for the first one
        and returns an empty list if none arrives.
        """
        ...

    async def close(self) -> None:
        """Release the log's resources."""
        ...


class EmbeddedSequencer:
    """An in-memory, in-process ``Sequencer`` (entries live until they are read).

    Durability is the block store's job: an entry that never made it into a
    stored block was never reported committed, so losing it in a crash is fine.
    """

    __slots__ = ("_entries", "_next", "_wakeup")

    def __init__(self) -> None:
        self._entries: deque[tuple[int, bytes]] = deque()
        self._next = 0
        self._wakeup = asyncio.Event()

    def __len__(self) -> int:
        return len(self._entries)

    def append(self, tx: bytes) -> int:
        """Queue ``tx`` and return its sequence number."""
        seq = self._next
        self._next += 1
        self._entries.append((seq, tx))
        self._wakeup.set()
        return seq

    async def next_batch(self, max_count: int, timeout: float | None) -> list[tuple[int, bytes]]:
        """Return up to ``max_count`` queued entries (see ``Sequencer.next_batch``)."""
        if not self._entries:
            self._wakeup.clear()
            try:
                async with asyncio.timeout(timeout):  # no task per wait, unlike wait_for
                    await self._wakeup.wait()
            except TimeoutError:
                return []
        batch: list[tuple[int, bytes]] = []
        while self._entries and len(batch) < max_count:
            batch.append(self._entries.popleft())
        return batch

    async def close(self) -> None:
        """Drop every unread entry."""
        self._entries.clear()
