"""Clocks: where the node gets time from.

The state machine never reads a clock; the operator stamps each block header
with its clock's time and the state machine receives that time as data. Tests
use ``FakeClock`` to make time deterministic.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """A source of time for the node shell."""

    def time_ns(self) -> int:
        """Return wall-clock time in nanoseconds since the Unix epoch."""
        ...

    def monotonic(self) -> float:
        """Return seconds from an arbitrary start that never goes backwards."""
        ...


class SystemClock:
    """The machine's clocks (``time.time_ns`` and ``time.monotonic``)."""

    __slots__ = ()

    def time_ns(self) -> int:
        """Return ``time.time_ns()``."""
        return time.time_ns()

    def monotonic(self) -> float:
        """Return ``time.monotonic()``."""
        return time.monotonic()


class FakeClock:
    """A clock that moves only when told to.

    >>> clock = FakeClock(1_000)
    >>> clock.advance(500)
    >>> clock.time_ns(), clock.monotonic()
    (1500, 1.5e-06)
    """

    __slots__ = ("_now_ns",)

    def __init__(self, start_ns: int = 0) -> None:
        self._now_ns = start_ns

    def time_ns(self) -> int:
        """Return the current fake time in nanoseconds."""
        return self._now_ns

    def monotonic(self) -> float:
        """Return the current fake time in seconds."""
        return self._now_ns / 1e9

    def advance(self, ns: int) -> None:
        """Move the clock forward by ``ns`` nanoseconds (``ns >= 0``)."""
        if ns < 0:
            msg = f"a clock cannot go backwards (advance by {ns} ns)"
            raise ValueError(msg)
        self._now_ns += ns

    def set(self, now_ns: int) -> None:
        """Set the clock to ``now_ns`` (never earlier than the current time)."""
        self.advance(now_ns - self._now_ns)
