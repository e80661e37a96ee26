"""market.grid_terms against a slow reference that walks the radial paths by hand."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clearing import load_reference_case
from clearing.network import Line, Network
from ledger.payloads import SetSlotMode
from market.grid_terms import (
    UNLIMITED_WH,
    InvalidGridTerms,
    charges,
    slot_mode,
)
from market.modes import build_grid
from market.units import Units


def _root_path(lines: list[Line], root: str, bus: str) -> list[Line]:
    """Lines from ``bus`` up to ``root``, found by repeated search (slow, obvious)."""
    path: list[Line] = []
    seen = {root}
    # breadth-first from the root, remembering the line that reached each bus
    reached: dict[str, Line | None] = {root: None}
    frontier = [root]
    while frontier:
        nxt = []
        for here in frontier:
            for ln in lines:
                for a, b in ((ln.from_bus, ln.to_bus), (ln.to_bus, ln.from_bus)):
                    if a == here and b not in seen:
                        seen.add(b)
                        reached[b] = ln
                        nxt.append(b)
        frontier = nxt
    while bus != root:
        step = reached[bus]
        assert step is not None
        path.append(step)
        bus = step.from_bus if step.to_bus == bus else step.to_bus
    return path


def _slow_path(net: Network, a: str, b: str) -> list[Line]:
    """Lines on the a-b path: those on exactly one of the two root paths."""
    up_a = _root_path(list(net.lines), net.root, a)
    up_b = _root_path(list(net.lines), net.root, b)
    names_a = {ln.name for ln in up_a}
    names_b = {ln.name for ln in up_b}
    return [ln for ln in up_a + up_b if (ln.name in names_a) != (ln.name in names_b)]


@st.composite
def feeders(draw: st.DrawFn) -> tuple[Network, list[str]]:
    """A random radial feeder (bus k hangs off a bus before it) and penalised lines."""
    n = draw(st.integers(1, 9))
    buses = [f"b{k}" for k in range(n)]
    lines = []
    for k in range(1, n):
        parent = draw(st.integers(0, k - 1))
        r = draw(st.floats(0.0, 8.0, allow_nan=False))
        cap = draw(st.one_of(st.just(math.inf), st.floats(1.0, 900.0)))
        ends = (buses[parent], buses[k]) if draw(st.booleans()) else (buses[k], buses[parent])
        lines.append(Line(f"L{k}", *ends, r_ohm=r, x_ohm=0.0, capacity_kw=cap))
    root = buses[draw(st.integers(0, n - 1))]  # any bus of a tree can be its root
    net = Network(11.0, root, tuple(buses), tuple(lines), {})
    penalised = (
        draw(st.lists(st.sampled_from([ln.name for ln in lines]), unique=True)) if lines else []
    )
    return net, penalised


@settings(max_examples=60, deadline=None)
@given(
    feeders(),
    st.floats(0.0, 0.05),
    st.floats(0.0, 0.05),
    st.sampled_from([0.0001, 0.001]),
)
def test_charges_match_a_hand_walked_path(
    feeder: tuple[Network, list[str]], alpha: float, beta: float, tick: float
) -> None:
    net, penalised = feeder
    units = Units(tick=tick)
    got = charges(net, alpha=alpha, beta=beta, penalised=penalised, units=units)
    n = len(net.buses)
    for s, bs in enumerate(net.buses):
        for b, bb in enumerate(net.buses):
            path = _slow_path(net, bs, bb)
            r = sum(ln.r_ohm for ln in path)
            theta = 1.0 if any(ln.name in penalised for ln in path) else 0.0
            want = (alpha * r + beta * theta) / tick
            # one rounding to nearest, from the float sum (tolerance: the vectorised R sum)
            assert abs(got[s * n + b] - want) <= 0.5 + 1e-6 * (1 + want)
            assert got[s * n + b] == got[b * n + s]


@settings(max_examples=60, deadline=None)
@given(feeders(), st.sampled_from([1.0, 0.25]))
def test_modes_4_and_1_match_the_hand_walked_feeder(
    feeder: tuple[Network, list[str]], hours: float
) -> None:
    net, _ = feeder
    n = len(net.buses)
    four = slot_mode(net, product="electricity", slot=3, mode=4, units=Units(slot_hours=hours))
    one = slot_mode(net, product="electricity", slot=3, mode=1)
    assert four.buses.split(",") == list(net.buses)
    assert four.base_flow == (0,) * n
    root = net.buses.index(net.root)
    assert four.parent[root] == -1
    assert four.capacity[root] == UNLIMITED_WH
    for k, bus in enumerate(net.buses):
        if bus == net.root:
            continue
        (up,) = _root_path(list(net.lines), net.root, bus)[:1]
        other = up.from_bus if up.to_bus == bus else up.to_bus
        assert four.parent[k] == net.buses.index(other)
        want = UNLIMITED_WH if math.isinf(up.capacity_kw) else round(up.capacity_kw * hours * 1000)
        assert four.capacity[k] == want
    for i, a in enumerate(net.buses):
        for j, b in enumerate(net.buses):
            r = sum(ln.r_ohm for ln in _slow_path(net, a, b))
            assert abs(one.distance[i * n + j] - r * 1000) <= 0.5 + 1e-6
    assert (one.parent, one.seller_charge, four.distance, four.seller_charge) == ((), (), (), ())


def test_reference_case_mode_3_charges_by_hand() -> None:
    case = load_reference_case()
    got = slot_mode(
        case.network,
        product="electricity",
        slot=1,
        mode=3,
        alpha=case.alpha,
        beta=case.beta,
        penalised=["L6"],
    )
    n = 11
    # bus 1 -> bus 2: L1 (1.093 ohm): 0.005 x 1.093 = 0.005465 USD/kWh = 54.65 ticks -> 55
    assert got.seller_charge[0 * n + 1] == 55
    # bus 1 -> bus 7: L1 + L2 + L6 = 3.279 ohm -> 163.95, and L6 is penalised: + 50
    assert got.seller_charge[0 * n + 6] == 214
    assert got.buyer_charge == got.seller_charge
    assert got.seller_charge[5 * n + 5] == 0  # no path, no charge


def test_the_terms_build_the_order_books_grid_in_every_mode() -> None:
    case = load_reference_case()
    network_json = json.dumps(case.network.to_dict())
    for mode in (1, 2, 3, 4):
        payload = slot_mode(
            network_json, product="electricity", slot=1, mode=mode, alpha=0.005, beta=0.005
        )
        assert isinstance(payload, SetSlotMode)
        grid = build_grid(payload, {b"\x01" * 32: "7"}, {b"\x01" * 32: "pv"})
        assert grid.n_buses == 11


def test_bad_input_is_a_typed_error() -> None:
    case = load_reference_case()
    with pytest.raises(InvalidGridTerms, match="mode"):
        slot_mode(case.network, product="electricity", slot=1, mode=5)
    with pytest.raises(InvalidGridTerms, match="L99"):
        slot_mode(case.network, product="electricity", slot=1, mode=3, penalised=["L99"])
    with pytest.raises(InvalidGridTerms, match="alpha"):
        slot_mode(case.network, product="electricity", slot=1, mode=3, alpha=-1.0)
    with pytest.raises(InvalidGridTerms, match="not a network"):
        slot_mode("{not json", product="electricity", slot=1, mode=4)
    with pytest.raises(InvalidGridTerms, match="product"):
        slot_mode(case.network, product="x" * 40, slot=1, mode=2)
