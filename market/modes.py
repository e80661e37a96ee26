"""A slot's operation mode (12.2.2) as the order book needs it, from ledger data.

The operator (for the DSO) publishes a slot's mode and its grid data as
integers in a ``SetSlotMode``; the peers' buses come from their
registration and their technology labels from ``DeclareTechnology``. This
module turns the three into the order book's ``Grid``, and an order's
ledger preferences into ``Preferences``. The system ``GRID`` account (the
main grid's standing orders) sits at the feeder's root bus.

Whenever a peer registers or declares its technology, every slot still
trading in a grid mode gets its grid again (``Market.set_mode`` keeps the
resting orders and the live flows), so a peer that joins late can trade.
"""

from __future__ import annotations

from ledger.payloads import PlacePreferredOrder, SetSlotMode
from market.accounts import GRID
from orderbook.errors import GridError
from orderbook.grid import Grid, GridMode, Preferences

ACCOUNT_BYTES = 32


class InvalidGridData(ValueError):
    """Raised when a ``SetSlotMode``'s lists do not fit its buses or its mode."""


def bus_names(payload: SetSlotMode) -> list[str]:
    """The feeder's bus names in index order ("" names no bus)."""
    return payload.buses.split(",") if payload.buses else []


def _matrix(flat: tuple[int, ...], n: int, name: str) -> tuple[tuple[int, ...], ...]:
    if not flat:
        return ()
    if len(flat) != n * n:
        msg = f"{name} holds {len(flat)} values, want {n} x {n} = {n * n}"
        raise InvalidGridData(msg)
    return tuple(flat[i * n : (i + 1) * n] for i in range(n))


def build_grid(
    payload: SetSlotMode,
    peer_buses: dict[bytes, str],
    technologies: dict[bytes, str],
) -> Grid:
    """The order book's grid of a slot.

    Args:
        payload: the slot's ``SetSlotMode``.
        peer_buses: account id -> the bus name it registered at.
        technologies: account id -> its declared label.

    Raises:
        InvalidGridData: lists that do not fit the buses, or the order book's
            ``GridError`` (a parent list that is not one tree, ...).
    """
    names = bus_names(payload)
    n = len(names)
    if n == 0:
        msg = "a grid mode needs the feeder's buses"
        raise InvalidGridData(msg)
    index = {name: i for i, name in enumerate(names)}
    for name, values in (
        ("parent", payload.parent),
        ("capacity", payload.capacity),
        ("base_flow", payload.base_flow),
    ):
        if values and len(values) != n:
            msg = f"{name} holds {len(values)} values, want one per bus ({n})"
            raise InvalidGridData(msg)
    root = payload.parent.index(-1) if -1 in payload.parent else 0
    buses = [(account.hex(), index[bus]) for account, bus in peer_buses.items() if bus in index]
    buses.append((GRID.hex(), root))
    labels = [(account.hex(), label) for account, label in technologies.items()]
    labels.append((GRID.hex(), "grid"))
    try:
        return Grid(
            n_buses=n,
            buses=tuple(sorted(buses)),
            seller_charge=_matrix(payload.seller_charge, n, "seller_charge"),
            buyer_charge=_matrix(payload.buyer_charge, n, "buyer_charge"),
            parent=payload.parent,
            capacity=payload.capacity,
            base_flow=payload.base_flow,
            distance=_matrix(payload.distance, n, "distance"),
            technologies=tuple(sorted(labels)),
            approval=payload.approval,
        )
    except GridError as exc:
        raise InvalidGridData(str(exc)) from exc


def grid_mode(payload: SetSlotMode) -> GridMode:
    """The order book's mode of a ``SetSlotMode``."""
    return GridMode(payload.mode)


def _accounts(blob: bytes) -> frozenset[str] | None:
    if len(blob) % ACCOUNT_BYTES:
        return None
    return frozenset(blob[i : i + ACCOUNT_BYTES].hex() for i in range(0, len(blob), ACCOUNT_BYTES))


def preferences(payload: PlacePreferredOrder) -> Preferences | None:
    """An order's preferences for the order book, or None if the ledger data are malformed."""
    preferred, excluded = _accounts(payload.preferred), _accounts(payload.excluded)
    if preferred is None or excluded is None:
        return None
    labels = frozenset(payload.technologies.split(",")) if payload.technologies else None
    distance = None if payload.max_distance < 0 else payload.max_distance
    return Preferences(labels, preferred, excluded, distance)
