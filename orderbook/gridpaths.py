"""Paths between the buses of one radial feeder, as line lists for mode 4's headroom.

Mode 4 (``orderbook.gridmatch``) checks each match against the lines on the
radial path from the seller's bus to the buyer's: on the lines from the
seller up to the common ancestor the energy runs towards the root, on those
from there down to the buyer away from it. A ``Lane`` holds the two lists,
so a match's headroom is ``up_limit[x] - flow[x]`` over the first and
``down_limit[x] + flow[x]`` over the second (``GridState``), and moving ``q``
Wh along it is ``flow[x] += q`` / ``flow[x] -= q``: no per-match tuples of
(line, direction), no capacities looked up.

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
    """One ordered bus pair's path split by direction, each list in path order.

    Attributes:
        ups: the lines (child buses) the energy runs up, from the seller's bus.
        downs: the lines it runs down, to the buyer's bus.
    """

    ups: tuple[int, ...]
    downs: tuple[int, ...]


class FeederPaths:
    """Paths and lanes of one feeder, built per bus pair on first use.

    A cache of a pure function of ``parent``: mutable, but what it returns
    for a pair never changes.
    """

    __slots__ = ("from_bus", "lanes", "parent", "paths", "to_bus")

    def __init__(self, parent: tuple[int, ...]) -> None:
        self.parent = parent
        self.paths: dict[tuple[int, int], Path] = {}
        self.lanes: dict[tuple[int, int], Lane] = {}
        # Per bus, its lanes as lists indexed by the other bus, filled on
        # first use: to_bus[b][s] = lane((s, b)) for a buyer at b (its makers
        # sell), from_bus[b][s] = lane((b, s)) for a seller at b. A match
        # then reads its lane with one list index instead of hashing a pair.
        n = len(parent)
        self.to_bus: list[list[Lane | None] | None] = [None] * n
        self.from_bus: list[list[Lane | None] | None] = [None] * n

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
        """``path(*pair)`` split by direction (cached). O(depth)."""
        lane = self.lanes.get(pair)
        if lane is None:
            path = self.path(*pair)
            lane = self.lanes[pair] = Lane(
                tuple(x for x, d in path if d > 0), tuple(x for x, d in path if d < 0)
            )
        return lane

    def row(self, buys: bool, bus: int) -> list[Lane | None]:
        """The lanes of an incoming order at ``bus`` by its makers' bus (``to_bus`` / ``from_bus``).

        Entries are None until ``lane`` fills them. O(n) on first use.
        """
        rows = self.to_bus if buys else self.from_bus
        row = rows[bus]
        if row is None:
            row = rows[bus] = [None] * len(self.parent)
        return row


@lru_cache(maxsize=16)
def feeder_paths(parent: tuple[int, ...]) -> FeederPaths:
    """The shared ``FeederPaths`` of the feeder with this ``parent`` tuple (memoised)."""
    return FeederPaths(parent)
