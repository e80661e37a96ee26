"""Scripted trading agents of the demo, and the CDA's allocative efficiency.

Each agent turns its peer's quadratic curve from the clearing case into a
ladder of limit orders: the peer's range of power is cut into ``steps``
equal tranches, and each tranche is offered (producers) or bid (consumers)
at the curve's marginal price at the tranche's midpoint. A truthful ladder
is the textbook zero-intelligence-free benchmark: if the CDA were perfectly
efficient, its trades would reproduce the optimal (basic model) allocation
up to the tranche granularity, so the efficiency figure measures what the
continuous auction loses by matching in arrival order.

Units: the case gives power in kW over a slot of ``slot_hours``, money in
currency per kWh; orders carry energy in Wh and prices in integer ticks per
kWh (``tick`` currency units each).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from market.units import Units

if TYPE_CHECKING:  # importing clearing loads cvxpy: keep `p2pex --help` fast
    from clearing.case import Case, Peer

BID = "bid"
ASK = "ask"


@dataclass(frozen=True, slots=True)
class OrderIntent:
    """One limit order an agent wants to place: side, price (ticks/kWh), quantity (Wh)."""

    peer: str
    side: str
    price: int  # ticks per kWh
    quantity: int  # Wh
    technologies: str = ""  # mode 1: the counterparty labels it accepts ("": any)


def marginal_price(peer: Peer, power_kw: float) -> float:
    """Marginal cost (producer) or willingness to pay (consumer) at |power|, currency/kWh.

    With the clearing's convention ``½ a P² + b P + c`` for every peer, a
    producer's marginal cost is ``a P + b`` and a consumer (P <= 0) bids
    ``-(d/dP)`` evaluated at ``P = -x``, i.e. ``b - a x``.

    >>> from clearing.case import Peer, Role
    >>> marginal_price(Peer("G", Role.PRODUCER, 0.02, 0.10, 0.0, 0.0, 10.0), 5.0)
    0.2
    """
    if peer.is_producer:
        return peer.a * power_kw + peer.b
    return peer.b - peer.a * power_kw


def ladder(peer: Peer, *, tick: float, slot_hours: float, steps: int) -> list[OrderIntent]:
    """The truthful order ladder of one peer for one slot.

    Args:
        peer: the peer's curve and bounds (kW).
        tick: currency per price tick.
        slot_hours: length of the delivery slot in hours (Wh = kW x h x 1000).
        steps: number of tranches the peer's range is cut into.

    Returns:
        ``steps`` orders or fewer (tranches that round to 0 Wh or a non-positive
        price are dropped: a peer never pays to produce or asks to be paid to
        consume in this demo).
    """
    if steps <= 0:
        msg = f"steps must be positive, got {steps}"
        raise ValueError(msg)
    span = peer.p_max if peer.is_producer else -peer.p_min  # kW the peer can trade
    side = ASK if peer.is_producer else BID
    orders: list[OrderIntent] = []
    if span <= 0:
        return orders
    width = span / steps
    units = Units(tick, slot_hours)
    for k in range(steps):
        mid = (k + 0.5) * width
        price = units.ticks(marginal_price(peer, mid))
        quantity = units.wh(width)
        if price > 0 and quantity > 0:
            orders.append(OrderIntent(peer.name, side, price, quantity))
    return orders


def interleave(ladders: Iterable[Sequence[OrderIntent]], seed: int) -> list[OrderIntent]:
    """All agents' orders in a seeded random arrival order (each ladder keeps its own order).

    Producers send their cheapest tranche first and consumers their most
    valuable one first, as a real agent would; the shuffle only decides which
    agent speaks next.
    """
    rng = random.Random(seed)
    queues = [list(reversed(q)) for q in ladders if q]
    out: list[OrderIntent] = []
    while queues:
        i = rng.randrange(len(queues))
        out.append(queues[i].pop())
        if not queues[i]:
            queues.pop(i)
    return out


GREEN = "pv,wind,battery"  # what a green-only order accepts (mode 1)


def technologies(case: Case) -> dict[str, str]:
    """The technology label each peer of the case declares (mode 1).

    The chapter's case has no labels: the main grid is ``grid``, consumers
    are ``load``, and of the producers the cheaper half (by marginal cost
    ``b``) is PV and the rest CHP, as in the chapter's community.
    """
    producers = sorted((p for p in case.peers if p.role.value == "producer"), key=lambda p: p.b)
    pv = {p.name for p in producers[: len(producers) // 2]}
    labels = {}
    for peer in case.peers:
        if peer.role.value == "grid":
            labels[peer.name] = "grid"
        elif not peer.is_producer:
            labels[peer.name] = "load"
        else:
            labels[peer.name] = "pv" if peer.name in pv else "chp"
    return labels


def green_tail(orders: Sequence[OrderIntent], share: float) -> list[OrderIntent]:
    """The ladder with its last (least valuable) ``share`` of bids green-only (mode 1)."""
    keep = len(orders) - round(len(orders) * share)
    return [
        o if k < keep or o.side != BID else replace(o, technologies=GREEN)
        for k, o in enumerate(orders)
    ]


def line_overloads(case: Case, power_kw: Mapping[str, float]) -> list[tuple[str, float, float]]:
    """Lines whose flow (recomputed from the peers' net power) exceeds capacity.

    Returns ``(line, |flow| kW, capacity kW)`` for each overloaded line.
    """
    import numpy as np

    net = case.network
    buses = net.bus_indices(net.bus_of(p.name) for p in case.peers)
    injection = np.array([power_kw.get(p.name, 0.0) for p in case.peers])
    flows = net.peer_flows(buses, injection)
    caps = net.capacities()
    return [
        (line.name, float(abs(f)), float(c))
        for line, f, c in zip(net.lines, flows, caps, strict=True)
        if abs(f) > c + 1e-6
    ]


def losses_kw(case: Case, power_kw: Mapping[str, float]) -> float:
    """Line losses (kW) of the flows the peers' net power gives."""
    import numpy as np

    net = case.network
    buses = net.bus_indices(net.bus_of(p.name) for p in case.peers)
    injection = np.array([power_kw.get(p.name, 0.0) for p in case.peers])
    return net.losses_kw(net.peer_flows(buses, injection))


def surplus(case: Case, power_kw: Mapping[str, float]) -> float:
    """Social welfare of an allocation: minus the chapter's objective without the constants c.

    ``power_kw`` maps a peer to its net power P_i (producers >= 0, consumers
    <= 0); peers not in it are at 0. Dropping ``c`` makes the no-trade
    allocation worth exactly 0, so a ratio of two surpluses is meaningful.
    """
    total = 0.0
    for peer in case.peers:
        p = power_kw.get(peer.name, 0.0)
        total -= 0.5 * peer.a * p * p + peer.b * p
    return total


def cda_power(
    trades: Iterable[tuple[str, str, int]], *, slot_hours: float, case: Case
) -> dict[str, float]:
    """Net power per peer (kW, chapter signs) from CDA trades ``(seller, buyer, Wh)``."""
    power = dict.fromkeys(case.names, 0.0)
    for seller, buyer, wh in trades:
        kw = wh / 1000.0 / slot_hours
        power[seller] = power.get(seller, 0.0) + kw
        power[buyer] = power.get(buyer, 0.0) - kw
    return power


def grid_penalty(
    case: Case,
    trades: Iterable[tuple[str, str, int]],
    *,
    slot_hours: float,
    penalised: Sequence[str],
) -> float:
    """The chapter's grid penalty of bilateral trades (12.12, 12.16), currency per hour.

    ``sum_ij (alpha R_ij + beta theta_ij) |P_ij|`` over both sides of every
    trade ``(seller, buyer, Wh)``, at the case's alpha and beta, theta on the
    ``penalised`` lines: the term the penalised reference clearing minimises
    besides the peers' costs.
    """
    import numpy as np

    net = case.network
    lines = net.line_indices(penalised)
    total = 0.0
    for seller, buyer, wh in trades:
        s, b = net.bus_indices([net.bus_of(seller), net.bus_of(buyer)])
        pair_a, pair_b = np.array([s]), np.array([b])
        weight = case.alpha * float(net.pair_resistance(pair_a, pair_b)[0])
        weight += case.beta * float(net.pair_crosses(pair_a, pair_b, lines)[0])
        total += 2 * weight * wh / 1000.0 / slot_hours
    return total


def net_efficiency(
    case: Case,
    achieved: Mapping[str, float],
    achieved_penalty: float,
    optimal: Mapping[str, float],
    optimal_penalty: float,
) -> float:
    """Welfare net of the grid penalties as a share of the reference's (1.0 = efficient).

    The measure the penalised reference is optimal for, so a CDA that
    ignores the grid cannot beat it by overloading lines or wasting power.
    """
    best = surplus(case, optimal) - optimal_penalty
    if best <= 0:
        return 1.0
    return (surplus(case, achieved) - achieved_penalty) / best


def allocative_efficiency(
    case: Case, achieved: Mapping[str, float], optimal: Mapping[str, float]
) -> float:
    """Surplus of the achieved allocation as a share of the optimal one (1.0 = efficient)."""
    best = surplus(case, optimal)
    if best <= 0:
        return 1.0
    return surplus(case, achieved) / best
