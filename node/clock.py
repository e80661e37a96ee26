"""Clocks: where the node gets time from, and its timers.

The state machine never reads a clock; the operator stamps each block header
with its clock's time and the state machine receives that time as data.
Timers (a block's deadline, the gate closure's rounds) are the clock's too,
so a test that drives a ``FakeClock`` decides when they fire instead of
sleeping on the event loop's real timers.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable
from typing import Protocol


class Timer(Protocol):
    """A scheduled callback that can be cancelled."""

    def cancel(self) -> None:
        """Do not run the callback (nothing happens if it ran already)."""
        ...


class Clock(Protocol):
    """A source of time for the node shell."""

    def time_ns(self) -> int:
        """Return wall-clock time in nanoseconds since the Unix epoch."""
        ...

    def monotonic(self) -> float:
        """Return seconds from an arbitrary start that never goes backwards."""
        ...

    def call_at(self, when: float, callback: Callable[[], None]) -> Timer:
        """Run ``callback`` on the event loop once ``monotonic()`` reaches ``when``."""
        ...


async def sleep(clock: Clock, seconds: float) -> None:
    """Wait until ``clock.monotonic()`` has moved ``seconds`` on (a timer of the clock)."""
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def wake() -> None:
        if not future.done():
            future.set_result(None)

    timer = clock.call_at(clock.monotonic() + seconds, wake)
    try:
        await future
    finally:
        timer.cancel()


class SystemClock:
    """The machine's clocks (``time.time_ns`` and ``time.monotonic``).

    Timers are the running event loop's: asyncio's loop time is
    ``time.monotonic()``, so ``call_at`` hands ``when`` over unchanged.
    """

    __slots__ = ()

    def time_ns(self) -> int:
        """Return ``time.time_ns()``."""
        return time.time_ns()

    def monotonic(self) -> float:
        """Return ``time.monotonic()``."""
        return time.monotonic()

    def call_at(self, when: float, callback: Callable[[], None]) -> Timer:
        """Schedule ``callback`` with the running loop's ``call_at``."""
        return asyncio.get_running_loop().call_at(when, callback)


class _FakeTimer:
    __slots__ = ("callback", "cancelled")

    def __init__(self, callback: Callable[[], None]) -> None:
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeClock:
    """A clock that moves only when told to; its timers fire as it passes them.

    >>> clock = FakeClock(1_000)
    >>> fired = []
    >>> _ = clock.call_at(1e-6, lambda: fired.append(clock.time_ns()))
    >>> clock.advance(500)
    >>> fired
    []
    >>> clock.advance(500)
    >>> clock.time_ns(), fired
    (2000, [2000])
    """

    __slots__ = ("_now_ns", "_order", "_start_ns", "_timers")

    def __init__(self, start_ns: int = 0) -> None:
        self._now_ns = start_ns
        self._start_ns = start_ns
        self._timers: list[tuple[int, int, _FakeTimer]] = []  # (due ns, order, timer)
        self._order = itertools.count()  # timers due at the same time run in order

    def time_ns(self) -> int:
        """Return the current fake time in nanoseconds."""
        return self._now_ns

    def monotonic(self) -> float:
        """Return the seconds since the clock's start.

        From its start, not from the epoch: a float holds nanoseconds exactly
        for about 100 days, but only to ~0.5 us at today's Unix time.
        """
        return (self._now_ns - self._start_ns) / 1e9

    def call_at(self, when: float, callback: Callable[[], None]) -> Timer:
        """Run ``callback`` when ``advance`` or ``set`` moves the clock to ``when`` or past it.

        ``when`` is rounded to the clock's nanosecond: sums of float seconds
        (an arrival plus an interval) must not miss their tick by an ulp.
        """
        timer = _FakeTimer(callback)
        due_ns = self._start_ns + round(when * 1e9)
        heapq.heappush(self._timers, (due_ns, next(self._order), timer))
        return timer

    def pending_timers(self) -> int:
        """How many timers wait to fire (cancelled ones excluded)."""
        return sum(not timer.cancelled for _, _, timer in self._timers)

    def advance(self, ns: int) -> None:
        """Move the clock forward by ``ns`` nanoseconds (``ns >= 0``), firing due timers."""
        if ns < 0:
            msg = f"a clock cannot go backwards (advance by {ns} ns)"
            raise ValueError(msg)
        self._now_ns += ns
        now = self._now_ns
        while self._timers and self._timers[0][0] <= now:
            _, _, timer = heapq.heappop(self._timers)
            if not timer.cancelled:
                timer.callback()

    def set(self, now_ns: int) -> None:
        """Set the clock to ``now_ns`` (never earlier than the current time)."""
        self.advance(now_ns - self._now_ns)
