"""The integer grid terms the operator publishes for a slot's mode (``SetSlotMode``).

The DSO's view of the feeder is the clearing's ``Network`` (floats: ohm, kW);
the order book needs integers (12.2.2, ``orderbook.grid``). This module is the
one place that maps the first onto the second, so the CLI, the demo and the
benchmarks publish the same terms for the same feeder and tariff:

- bus names in the network's order (index ``i`` of every list is bus ``i``);
- mode 3: ``seller_charge[s * n + b] = ticks(alpha * R_sb + beta * theta_sb)``
  (12.12 and 12.16: ``alpha`` in currency per kWh and ohm, ``beta`` in
  currency per kWh, ``R_sb`` the summed resistance of the radial path (12.11),
  ``theta_sb = 1`` when the path crosses a penalised line (12.15)); the buyer
  pays the same per kWh (one tariff for every peer, the chapter's sign
  convention: each side pays a positive amount per kWh of its own trades);
- mode 4: ``parent`` (-1 at the root), ``capacity`` in Wh per slot
  (``capacity_kw x slot hours x 1000``) of the line from each bus to its
  parent, ``base_flow`` all zero (no non-market load is forecast);
- mode 1: ``distance[i * n + j] = R_ij`` in whole milliohm.

Rounding: every float goes to the nearest integer (``market.units.Units``:
Python's ``round``, ties to even); a charge is rounded once, from the sum
``alpha * R + beta * theta`` in currency per kWh, so the seller's and the
buyer's charges of a pair are always equal. An unlimited line (and the root,
which has no line to a parent) gets ``UNLIMITED_WH``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ledger.errors import LedgerError
from ledger.payloads import MAX_GRID_BUSES, SetSlotMode
from market.units import Units

if TYPE_CHECKING:  # importing clearing loads numpy and the solver stack
    from clearing.network import Network

UNLIMITED_WH = 2**50  # the largest capacity a SetSlotMode carries: no limit in practice
MILLIOHM_PER_OHM = 1000
MODES = (1, 2, 3, 4)


class InvalidGridTerms(ValueError):
    """Raised when grid terms cannot be computed: unknown line, bad mode, too many buses."""


def as_network(network: Network | Mapping[str, Any] | str) -> Network:
    """A ``clearing`` network from a ``Network``, its JSON form or the JSON text.

    Raises:
        InvalidGridTerms: text that is not JSON, or data that is not a network.
    """
    from clearing.errors import ClearingError
    from clearing.network import Network, network_from_dict

    if isinstance(network, Network):
        return network
    try:
        data = json.loads(network) if isinstance(network, str) else dict(network)
        return network_from_dict({**data, "peer_bus": data.get("peer_bus", {})})
    except (ValueError, TypeError, ClearingError) as exc:
        msg = f"not a network: {exc}"
        raise InvalidGridTerms(msg) from exc


def _check_size(net: Network) -> int:
    n = len(net.buses)
    if n > MAX_GRID_BUSES:
        msg = f"the feeder has {n} buses, a SetSlotMode carries at most {MAX_GRID_BUSES}"
        raise InvalidGridTerms(msg)
    return n


def parent_list(network: Network) -> tuple[int, ...]:
    """Each bus's parent bus index (towards the root), -1 at the root."""
    index = {bus: i for i, bus in enumerate(network.buses)}
    parent = [-1] * len(network.buses)
    for line in range(len(network.lines)):
        parent[index[network.child_bus(line)]] = index[network.parent_bus(line)]
    return tuple(parent)


def capacities_wh(network: Network, units: Units) -> tuple[int, ...]:
    """Wh per slot the line from each bus to its parent may carry (``UNLIMITED_WH``: none)."""
    index = {bus: i for i, bus in enumerate(network.buses)}
    capacity = [UNLIMITED_WH] * len(network.buses)
    for line, data in enumerate(network.lines):
        if data.capacity_kw != float("inf"):
            capacity[index[network.child_bus(line)]] = min(units.wh(data.capacity_kw), UNLIMITED_WH)
    return tuple(capacity)


def _pairs(network: Network) -> tuple[Any, Any]:
    import numpy as np

    n = len(network.buses)
    a = np.repeat(np.arange(n, dtype=np.int64), n)
    b = np.tile(np.arange(n, dtype=np.int64), n)
    return a, b


def distances_milliohm(network: Network) -> tuple[int, ...]:
    """R_ij (12.11) of every bus pair in whole milliohm, flat ``[i * n + j]``."""
    a, b = _pairs(network)
    r = network.pair_resistance(a, b)
    return tuple(round(float(x) * MILLIOHM_PER_OHM) for x in r)


def charges(
    network: Network, *, alpha: float, beta: float, penalised: Iterable[str], units: Units
) -> tuple[int, ...]:
    """Ticks per kWh each side pays on a trade from bus ``s`` to bus ``b``, flat ``[s * n + b]``.

    ``alpha * R_sb + beta * theta_sb`` (12.12, 12.16) in currency per kWh,
    rounded to the nearest tick once.

    Raises:
        InvalidGridTerms: a negative alpha or beta, or a penalised line the
            network does not have.
    """
    from clearing.errors import ClearingError

    if not (alpha >= 0 and beta >= 0):
        msg = f"alpha and beta must be >= 0, got {alpha}, {beta}"
        raise InvalidGridTerms(msg)
    a, b = _pairs(network)
    try:
        lines = network.line_indices(penalised)
    except ClearingError as exc:
        raise InvalidGridTerms(str(exc)) from exc
    r = network.pair_resistance(a, b)
    theta = network.pair_crosses(a, b, lines)
    return tuple(
        units.ticks(alpha * float(x) + beta * float(t)) for x, t in zip(r, theta, strict=True)
    )


def slot_mode(
    network: Network | Mapping[str, Any] | str,
    *,
    product: str,
    slot: int,
    mode: int,
    alpha: float = 0.0,
    beta: float = 0.0,
    penalised: Iterable[str] = (),
    units: Units | None = None,
    approval: bool = False,
) -> SetSlotMode:
    """The ``SetSlotMode`` the operator publishes for ``(product, slot)`` in ``mode``.

    Args:
        network: the feeder (a ``Network``, its JSON form or text).
        product: the product traded.
        slot: the delivery slot.
        mode: 1 preferences, 2 bids and offers, 3 DSO price signals, 4 line validation.
        alpha: loss penalty, currency per kWh and ohm (mode 3).
        beta: congestion penalty, currency per kWh (mode 3).
        penalised: names of the congested lines theta looks at (mode 3).
        units: tick and slot length (default: the chain's, ``Units()``).
        approval: mode 4: every match waits for the DSO's ``DecideTrade``.

    Raises:
        InvalidGridTerms: bad mode, network or tariff, or more buses than a
            ``SetSlotMode`` carries.
    """
    if mode not in MODES:
        msg = f"mode must be one of {MODES}, got {mode!r}"
        raise InvalidGridTerms(msg)
    net = as_network(network)
    n = _check_size(net)
    units = units or Units()
    buses = ",".join(net.buses)
    if any("," in bus for bus in net.buses):
        msg = f"bus names must not contain ',': {net.buses}"
        raise InvalidGridTerms(msg)
    parent: tuple[int, ...] = ()
    capacity: tuple[int, ...] = ()
    base_flow: tuple[int, ...] = ()
    charge: tuple[int, ...] = ()
    distance: tuple[int, ...] = ()
    if mode == 1:
        distance = distances_milliohm(net)
    elif mode == 3:
        charge = charges(net, alpha=alpha, beta=beta, penalised=penalised, units=units)
    elif mode == 4:
        parent, capacity, base_flow = parent_list(net), capacities_wh(net, units), (0,) * n
    try:
        return SetSlotMode(
            product,
            slot,
            mode,
            buses,
            parent,
            capacity,
            base_flow,
            charge,
            charge,
            distance,
            approval and mode == 4,
        )
    except (LedgerError, ValueError) as exc:
        raise InvalidGridTerms(str(exc)) from exc
