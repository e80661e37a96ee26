"""Waiters for a height, woken when the store reaches it: no lock, nothing to unwind.

``wait_height`` once waited on an ``asyncio.Condition`` inside
``asyncio.wait_for``. On Python 3.11 a wait cancelled while ``wait_for`` was
cancelling its inner condition wait (a client resetting a connection with
100 waits timing out) released the condition's lock without holding it
(``RuntimeError: Lock is not acquired``), or left it held for good, and the
next stored block then hung the commit loop on that lock. Here a waiter
holds a future shared by every waiter of its height; timing out or being
cancelled only stops watching it, and waking is a plain call.
"""

from __future__ import annotations

import asyncio

from sortedcontainers import SortedDict


class HeightWaiters:
    """Futures that resolve once the block at their height is stored."""

    __slots__ = ("_waiting",)

    def __init__(self) -> None:
        # height -> (the future its waiters share, how many wait on it); by height,
        # so a stored block wakes the lowest heights without a scan of the rest
        self._waiting: SortedDict = SortedDict()

    def __len__(self) -> int:
        """The number of heights waited for."""
        return len(self._waiting)

    async def wait(self, height: int, timeout: float) -> None:
        """Return once ``reached`` passed ``height``.

        Raises:
            TimeoutError: not in ``timeout`` seconds.
        """
        entry = self._waiting.get(height)
        if entry is None:
            entry = [asyncio.get_running_loop().create_future(), 0]
            self._waiting[height] = entry
        entry[1] += 1
        try:
            # shielded: one waiter's timeout or cancellation never cancels the others'
            await asyncio.wait_for(asyncio.shield(entry[0]), timeout)
        finally:
            entry[1] -= 1
            if entry[1] == 0 and self._waiting.get(height) is entry:
                del self._waiting[height]

    def reached(self, stored: int) -> None:
        """Wake every waiter of a height below ``stored`` (the number of blocks stored)."""
        waiting = self._waiting
        while waiting and waiting.peekitem(0)[0] < stored:
            _, (future, _) = waiting.popitem(0)
            if not future.done():
                future.set_result(None)
