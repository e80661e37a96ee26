"""The sequencing log: the one place that decides the total order of transactions.

Every transaction an operator applies comes out of a ``SequencerLog``, in the
log's order, and the operator applies nothing else. The contract is a log,
not a queue, so that a replicated log (a NATS JetStream stream) can stand in
for the embedded one without a change to the operator:

- ``append(entry)`` is called in the order the node decided (its submit
  pipeline's order) and returns at once a future of the entry's position;
  the future fails with ``SequencerUnavailable`` if the log cannot take it
  (then nothing was appended).
- ``read(start, max_count)`` returns the entries from a position on that the
  log holds now, without waiting; ``on_append(callback)`` says when more may
  have arrived. Positions start at 0 and have no gaps.
- ``committed`` is the position below which the log will never lose or
  reorder an entry. For the embedded log that is everything appended: it
  lives in the operator's memory, and durability is the block store's job
  (a transaction is reported committed only once its block is stored, so an
  entry lost in a crash was never reported committed).
- ``release(position)`` says the reader no longer needs the entries below
  ``position`` (they are in stored blocks): the log may drop them.

A log may hold entries this node did not check (other writers of a shared
log): the reader must treat every entry as untrusted bytes. The state
machine refuses invalid ones deterministically, and the operator checks the
signature of every entry that did not pass through its own signature check.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Protocol


class SequencerLog(Protocol):
    """A totally ordered log of transaction bytes (see the module docstring)."""

    def append(self, entry: bytes) -> asyncio.Future[int]:
        """Append ``entry``; the future gives its position, or fails: ``SequencerUnavailable``."""
        ...

    def read(self, start: int, max_count: int) -> list[bytes]:
        """Return up to ``max_count`` entries from position ``start`` on, as far as held now.

        Requires: ``start`` is at least the last ``release`` position.
        """
        ...

    def on_append(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (on the event loop) whenever entries may have arrived."""
        ...

    @property
    def committed(self) -> int:
        """The position below which no entry will ever be lost or reordered by the log."""
        ...

    def release(self, position: int) -> None:
        """The reader is done with the entries below ``position``."""
        ...

    async def close(self) -> None:
        """Release the log's resources."""
        ...


class LogBuffer:
    """The entries a log holds locally, from a position on: what ``read`` serves.

    A log implementation receives entries in order (``_receive``) and its
    reader reads and releases them; ``committed`` is the end of what was
    received. ``EmbeddedLog`` receives what it is given; a replicated log
    receives what its stream delivers.
    """

    __slots__ = ("_base", "_entries", "_listeners")

    def __init__(self, start: int = 0) -> None:
        self._entries: deque[bytes] = deque()
        self._base = start  # position of _entries[0]
        self._listeners: list[Callable[[], None]] = []

    def __len__(self) -> int:
        """Entries held (received and not yet released)."""
        return len(self._entries)

    def _receive(self, entry: bytes) -> int:
        """Hold ``entry`` at the next position, tell the listeners; return its position."""
        position = self._base + len(self._entries)
        self._entries.append(entry)
        for listener in self._listeners:
            listener()
        return position

    def read(self, start: int, max_count: int) -> list[bytes]:
        """Return up to ``max_count`` entries from ``start`` on."""
        offset = start - self._base
        if offset < 0:
            msg = f"position {start} was released (the log starts at {self._base})"
            raise ValueError(msg)
        entries = self._entries
        end = min(len(entries), offset + max_count)
        if offset == 0 and end == len(entries):
            return list(entries)
        return [entries[i] for i in range(offset, end)]

    def on_append(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` after every entry received."""
        self._listeners.append(callback)

    @property
    def committed(self) -> int:
        """The end of what was received (see each log for what that guarantees)."""
        return self._base + len(self._entries)

    def release(self, position: int) -> None:
        """Drop the entries below ``position``."""
        entries = self._entries
        while self._base < position and entries:
            entries.popleft()
            self._base += 1


class EmbeddedLog(LogBuffer):
    """An in-memory, in-process ``SequencerLog``: the single-operator default.

    Entries live until the reader releases them. Appends never fail, and
    every appended entry is committed: the log is the process's memory (see
    the module docstring).
    """

    __slots__ = ("_loop",)

    def __init__(self) -> None:
        super().__init__()
        self._loop: asyncio.AbstractEventLoop | None = None

    def append(self, entry: bytes) -> asyncio.Future[int]:
        """Append ``entry`` at once; the future is already resolved with its position."""
        position = self._receive(entry)
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        future = self._loop.create_future()
        future.set_result(position)
        return future

    async def close(self) -> None:
        """Drop every entry."""
        self.release(self.committed)
