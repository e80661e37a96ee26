"""Grid data of one book: the operation mode and the plain integer data it needs.

The chapter (section 12.2.2) lists four ways to run a P2P market; a book
runs in one of them, set by ``Market.set_mode`` before or while it trades:

1. ``PREFERENCES``: matching never violates a peer's preferences (accepted
   counterparty technologies, excluded partners, a maximum electrical
   distance); preferred partners are matched first.
2. ``BIDS_OFFERS``: the plain continuous double auction (no grid data).
3. ``PRICE_SIGNALS``: every trade pays the DSO's per-kWh charges (12.12 and
   12.16: alpha * R_ij and beta * theta_ij, each side its own, plus any
   congestion or time-of-use adder), and matching ranks by price net of them.
4. ``LINE_VALIDATION``: every match is checked against the line capacities of
   the radial feeder, with the slot's live flows.

Everything here is given by the caller as integers (the order book never
imports ``clearing``): buses are indices ``0 .. n_buses - 1``; a line is named
by its child bus (the line from bus ``b`` to ``parent[b]``); charges are ticks
per kWh; capacities and flows are Wh per slot, a flow positive when it runs
from the child bus towards its parent (towards the root).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import cast

from orderbook.errors import GridError
from orderbook.types import PRICE_LIMIT


class GridMode(IntEnum):
    """The chapter's four P2P operation modes (12.2.2), by their number."""

    PREFERENCES = 1
    BIDS_OFFERS = 2
    PRICE_SIGNALS = 3
    LINE_VALIDATION = 4


Matrix = tuple[tuple[int, ...], ...]
_Json = object


def _int(value: object, name: str, low: int = 0, high: int = PRICE_LIMIT) -> int:
    if type(value) is not int or not low <= value <= high:
        msg = f"{name} must be an int in [{low}, {high}], got {value!r:.80}"
        raise GridError(msg)
    return value


def _matrix(value: object, name: str, n: int) -> None:
    if not isinstance(value, tuple) or len(value) != n:
        msg = f"{name} must be a tuple of {n} rows, got {value!r:.80}"
        raise GridError(msg)
    for i, row in enumerate(cast("tuple[object, ...]", value)):
        if not isinstance(row, tuple) or len(row) != n:
            msg = f"{name}[{i}] must be a tuple of {n} ints, got {row!r:.80}"
            raise GridError(msg)
        for j, x in enumerate(cast("tuple[object, ...]", row)):
            _int(x, f"{name}[{i}][{j}]")


def _labels(value: object, name: str, kind: type) -> None:
    if not isinstance(value, tuple):
        msg = f"{name} must be a tuple of (owner, value) pairs, got {value!r:.80}"
        raise GridError(msg)
    last = None
    for pair in cast("tuple[object, ...]", value):
        if (
            not isinstance(pair, tuple)
            or len(pair) != 2
            or type(pair[0]) is not str
            or not pair[0]
            or type(pair[1]) is not kind
        ):
            msg = f"{name}: each entry must be (non-empty owner, {kind.__name__}), got {pair!r:.80}"
            raise GridError(msg)
        if last is not None and pair[0] <= last:
            msg = f"{name}: owners must be sorted and unique, got {pair[0]!r} after {last!r}"
            raise GridError(msg)
        last = pair[0]


@dataclass(frozen=True, slots=True)
class Grid:
    """The grid data a mode needs, as plain integers (what a mode does not use stays empty).

    Attributes:
        n_buses: number of buses of the feeder (>= 1).
        buses: ``(owner, bus)`` for every owner that may place orders, sorted by owner.
        seller_charge: mode 3: ``[seller_bus][buyer_bus]`` ticks per kWh the seller
            pays the DSO (its alpha * R_ij + beta * theta_ij, plus adders), >= 0.
        buyer_charge: mode 3: ``[seller_bus][buyer_bus]`` ticks per kWh the buyer pays.
        parent: mode 4: the parent bus of each bus, -1 for the root (one root, a tree).
        capacity: mode 4: Wh per slot each line (child bus -> parent) may carry, either way.
        base_flow: mode 4: Wh already flowing on each line before any trade (empty: 0);
            ``|base_flow[b]| <= capacity[b]``.
        distance: mode 1: ``[bus_i][bus_j]`` electrical distance (e.g. R_ij in
            milliohm) that ``Preferences.max_distance`` is compared with (empty: 0).
        technologies: mode 1: ``(owner, label)`` such as pv, battery, chp, grid, sorted.
        approval: mode 4: every match waits for the DSO's decision
            (``DecideTrade``); the instrument's close refuses what is still pending.

    Raises:
        GridError: a field of the wrong type or shape, a bus out of range, or
            a ``parent`` that is not one tree.
    """

    n_buses: int
    buses: tuple[tuple[str, int], ...]
    seller_charge: Matrix = ()
    buyer_charge: Matrix = ()
    parent: tuple[int, ...] = ()
    capacity: tuple[int, ...] = ()
    base_flow: tuple[int, ...] = ()
    distance: Matrix = ()
    technologies: tuple[tuple[str, str], ...] = ()
    approval: bool = False

    def __post_init__(self) -> None:
        n = _int(self.n_buses, "Grid.n_buses", 1, 1_000_000)
        _labels(self.buses, "Grid.buses", int)
        for owner, bus in self.buses:
            _int(bus, f"Grid.buses[{owner!r}]", 0, n - 1)
        for name in ("seller_charge", "buyer_charge", "distance"):
            value = getattr(self, name)
            if value != ():
                _matrix(value, f"Grid.{name}", n)
        if (self.seller_charge == ()) != (self.buyer_charge == ()):
            msg = "Grid.seller_charge and Grid.buyer_charge must be given together"
            raise GridError(msg)
        _labels(self.technologies, "Grid.technologies", str)
        if type(cast("object", self.approval)) is not bool:
            msg = f"Grid.approval must be a bool, got {self.approval!r:.80}"
            raise GridError(msg)
        for name in ("parent", "capacity", "base_flow"):
            value = getattr(self, name)
            if value != () and (not isinstance(value, tuple) or len(value) != n):
                msg = f"Grid.{name} must be a tuple of {n} ints, got {value!r:.80}"
                raise GridError(msg)
        if self.parent != ():
            self._check_tree()
        elif self.capacity != () or self.base_flow != ():
            msg = "Grid.capacity and Grid.base_flow need Grid.parent"
            raise GridError(msg)

    def _check_tree(self) -> None:
        n = self.n_buses
        roots = [b for b in range(n) if _int(self.parent[b], f"Grid.parent[{b}]", -1, n - 1) < 0]
        if len(roots) != 1:
            msg = f"Grid.parent must have exactly one root (-1), got {len(roots)}"
            raise GridError(msg)
        for b in range(n):
            seen = 0
            x = b
            while x >= 0:
                x = self.parent[x]
                seen += 1
                if seen > n:
                    msg = f"Grid.parent is not a tree: bus {b} never reaches the root"
                    raise GridError(msg)
        if len(self.capacity) != n:
            msg = f"Grid.capacity must be a tuple of {n} ints, got {self.capacity!r:.80}"
            raise GridError(msg)
        for b in range(n):
            cap = _int(self.capacity[b], f"Grid.capacity[{b}]")
            if self.base_flow:
                _int(self.base_flow[b], f"Grid.base_flow[{b}]", -cap, cap)

    def missing(self, mode: GridMode) -> str | None:
        """What ``mode`` needs that this grid lacks (None: nothing)."""
        if mode is GridMode.PRICE_SIGNALS and self.seller_charge == ():
            return "mode 3 needs seller_charge and buyer_charge"
        if mode is GridMode.LINE_VALIDATION and self.parent == ():
            return "mode 4 needs parent and capacity"
        return None

    def value(self) -> list[_Json]:
        """The grid as a JSON value (lists of ints and strings), for snapshots and digests."""
        return [
            self.n_buses,
            [list(p) for p in self.buses],
            [list(r) for r in self.seller_charge],
            [list(r) for r in self.buyer_charge],
            list(self.parent),
            list(self.capacity),
            list(self.base_flow),
            [list(r) for r in self.distance],
            [list(p) for p in self.technologies],
            self.approval,
        ]

    @classmethod
    def from_value(cls, value: _Json) -> Grid:
        """Inverse of ``value()``.

        Raises:
            GridError: if ``value`` does not describe a valid grid.
        """
        if not isinstance(value, list) or len(value) != 10:
            msg = f"grid value must be a list of 10 items, got {value!r:.80}"
            raise GridError(msg)
        v = cast("list[list[list[object]]]", value)

        def rows(x: object) -> tuple[tuple[int, ...], ...]:
            if not isinstance(x, list):
                msg = f"grid value: expected a list, got {x!r:.80}"
                raise GridError(msg)
            return tuple(tuple(r) if isinstance(r, list) else r for r in x)

        def flat(x: object) -> tuple[int, ...]:
            if not isinstance(x, list):
                msg = f"grid value: expected a list, got {x!r:.80}"
                raise GridError(msg)
            return tuple(x)

        return cls(
            value[0],
            rows(v[1]),  # type: ignore[arg-type]
            rows(v[2]),
            rows(v[3]),
            flat(v[4]),
            flat(v[5]),
            flat(v[6]),
            rows(v[7]),
            rows(v[8]),  # type: ignore[arg-type]
            value[9],
        )


@dataclass(frozen=True, slots=True)
class Preferences:
    """What an order accepts of its counterparty (mode 1). Binding in both directions.

    Attributes:
        technologies: technology labels the counterparty must have (None: any).
            A buyer's ``{"pv"}`` is "green only"; a seller may name buyer labels too.
        preferred: owners matched first (before better prices), when acceptable.
        excluded: owners never matched.
        max_distance: largest electrical distance (``Grid.distance``) to the
            counterparty's bus (None: any).

    Raises:
        GridError: a field of the wrong type.
    """

    technologies: frozenset[str] | None = None
    preferred: frozenset[str] = frozenset()
    excluded: frozenset[str] = frozenset()
    max_distance: int | None = None

    def __post_init__(self) -> None:
        for name in ("technologies", "preferred", "excluded"):
            value = getattr(self, name)
            if value is None and name == "technologies":
                continue
            if type(value) is not frozenset or not all(
                type(x) is str and x for x in cast("frozenset[object]", value)
            ):
                msg = f"Preferences.{name} must be a frozenset of non-empty str, got {value!r:.80}"
                raise GridError(msg)
        if self.max_distance is not None:
            _int(self.max_distance, "Preferences.max_distance")

    def value(self) -> list[_Json]:
        """The preferences as a JSON value (sorted lists), for snapshots and digests."""
        techs = self.technologies
        return [
            None if techs is None else sorted(techs),
            sorted(self.preferred),
            sorted(self.excluded),
            self.max_distance,
        ]

    @classmethod
    def from_value(cls, value: _Json) -> Preferences:
        """Inverse of ``value()``.

        Raises:
            GridError: if ``value`` does not describe valid preferences.
        """
        if not isinstance(value, list) or len(value) != 4:
            msg = f"preferences value must be a list of 4 items, got {value!r:.80}"
            raise GridError(msg)
        techs, preferred, excluded, distance = value
        for x in (preferred, excluded, *(() if techs is None else (techs,))):
            if not isinstance(x, list):
                msg = f"preferences value: expected a list, got {x!r:.80}"
                raise GridError(msg)
        return cls(
            None if techs is None else frozenset(cast("list[str]", techs)),
            frozenset(cast("list[str]", preferred)),
            frozenset(cast("list[str]", excluded)),
            cast("int | None", distance),
        )
