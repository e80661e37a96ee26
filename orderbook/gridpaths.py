"""Paths between the buses of one radial feeder, as index arrays for mode 4's headroom.

Mode 4 (``orderbook.gridmatch``) checks each match against the lines on the
radial path from the seller's bus to the buyer's. The book keeps the
headroom of every line in both directions in one list (``GridState.rooms``,
``2 * n`` entries for ``n`` buses): ``rooms[x]`` is what line ``x`` (the line
from bus ``x`` to its parent) may still carry towards the root, ``rooms[n +
x]`` what it may still carry away from it. A trade's path is then one tuple
of indices into that list (``Lane.fwd``), so its headroom is the minimum of a
few list reads and moving ``q`` Wh along it is ``rooms[i] -= q`` on ``fwd``
and ``rooms[i] += q`` on the mirrored indices (``Lane.rev``): no per-match
tuples of (line, direction), no capacities looked up.

Lanes depend on the tree only (``parent``), so they are built once per
ordered bus pair, on first use, and shared by every book on the same feeder
(``feeder_paths`` memoises on the ``parent`` tuple): the books of the next
delivery slots do not rebuild them. Memoising a pure function changes no
result, so replay stays deterministic.
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

# A path between two buses: (line, direction) pairs from the seller's bus to
# the buyer's, direction +1 where the energy runs towards the root.
Path = tuple[tuple[int, int], ...]


class Lane(NamedTuple):
    """One ordered bus pair's path as index arrays (see the module docstring).

    Attributes:
        fwd: indices into ``rooms`` of the path's lines in the trade's
            direction, from the seller's bus to the buyer's (``x`` up, ``n + x`` down).
        rev: the same lines in the opposite direction (``n + x`` up, ``x`` down).
        ups: the lines the energy runs up (towards the root), seller side.
        downs: the lines the energy runs down, buyer side.
    """

    fwd: tuple[int, ...]
    rev: tuple[int, ...]
    ups: tuple[int, ...]
    downs: tuple[int, ...]


class FeederPaths:
    """Paths and lanes of one feeder, built per bus pair on first use.

    A cache of a pure function of ``parent``: mutable, but what it returns
    for a pair never changes.
    """

    __slots__ = ("lanes", "n", "parent", "paths")

    def __init__(self, parent: tuple[int, ...]) -> None:
        self.parent = parent
        self.n = len(parent)
        self.paths: dict[tuple[int, int], Path] = {}
        self.lanes: dict[tuple[int, int], Lane] = {}

    def path(self, seller_bus: int, buyer_bus: int) -> Path:
        """The lines from ``seller_bus`` to ``buyer_bus`` with directions (cached). O(depth)."""
        key = (seller_bus, buyer_bus)
        path = self.paths.get(key)
        if path is None:
            parent = self.parent
            up: list[int] = []
            ancestors: dict[int, int] = {}
            x = seller_bus
            while x >= 0:
                ancestors[x] = len(up)
                up.append(x)
                x = parent[x]
            down: list[int] = []
            x = buyer_bus
            while x not in ancestors:
                down.append(x)
                x = parent[x]
            lca = ancestors[x]
            path = self.paths[key] = tuple(
                [(line, 1) for line in up[:lca]] + [(line, -1) for line in reversed(down)]
            )
        return path

    def lane(self, pair: tuple[int, int]) -> Lane:
        """``path(*pair)`` as index arrays into ``rooms`` (cached). O(depth)."""
        lane = self.lanes.get(pair)
        if lane is None:
            n = self.n
            path = self.path(*pair)
            lane = self.lanes[pair] = Lane(
                tuple(x if d > 0 else n + x for x, d in path),
                tuple(n + x if d > 0 else x for x, d in path),
                tuple(x for x, d in path if d > 0),
                tuple(x for x, d in path if d < 0),
            )
        return lane


@lru_cache(maxsize=16)
def feeder_paths(parent: tuple[int, ...]) -> FeederPaths:
    """The shared ``FeederPaths`` of the feeder with this ``parent`` tuple (memoised)."""
    return FeederPaths(parent)


def line_of(index: int, n: int) -> int:
    """The line (its child bus) that index ``index`` of a ``rooms`` list of ``2 * n`` names."""
    return index if index < n else index - n
