"""The integer <-> clearing mapping, written once (market.units)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clearing.case import Peer, Role
from market.units import Units

CONSUMER = Peer("C", Role.CONSUMER, 0.01, 0.4, 0.0, -20.0, -5.0)


def test_a_case_curve_in_ledger_units():
    # a: milli-ticks/kWh^2, b: ticks/kWh, c: tick*Wh, bounds in Wh
    curve = Units(0.0001, 1.0).curve_to_ledger(
        CONSUMER.a, CONSUMER.b, CONSUMER.c, CONSUMER.p_min, CONSUMER.p_max
    )
    assert curve == (100_000, 4000, 0, -20_000, -5_000)
    # a quarter-hour slot holds a quarter of the energy
    assert Units(0.0001, 0.25).curve_to_ledger(0.0, 0.0, 0.0, -20.0, -5.0)[3:] == (-5000, -1250)


def test_units_refuse_a_zero_scale():
    with pytest.raises(ValueError, match="positive"):
        Units(tick=0.0)
    with pytest.raises(ValueError, match="positive"):
        Units(slot_hours=-1.0)


ints = st.integers(-(10**9), 10**9)


@given(a=ints, b=ints, c=ints, q_min=ints, q_max=ints, slot=st.sampled_from([0.25, 0.5, 1.0]))
def test_ledger_curves_survive_the_round_trip(a, b, c, q_min, q_max, slot):
    units = Units(0.0001, slot)
    floats = units.curve_to_clearing(a, b, c, q_min, q_max)
    back = units.curve_to_ledger(
        floats["a"], floats["b"], floats["c"], floats["p_min"], floats["p_max"]
    )
    assert back == (a, b, c, q_min, q_max)


@given(wh=ints, ticks=ints)
def test_energy_and_prices_survive_the_round_trip(wh, ticks):
    units = Units()
    assert units.wh(units.kw(wh)) == wh
    assert units.ticks(units.price(ticks)) == ticks


@given(a=ints, b=ints, c=ints, q_min=ints, q_max=ints)
def test_the_floats_are_bit_for_bit_those_chains_were_cleared_with(a, b, c, q_min, q_max):
    # The expressions the gate clearing used before this mapping was written
    # once: a replica rebuilding an old slot's case must get the very same
    # floats, or its certificate check and rounding could differ.
    got = Units().curve_to_clearing(a, b, c, q_min, q_max)
    assert got["a"] == a / 1000 * 0.0001
    assert got["b"] == b * 0.0001
    assert got["c"] == c * 0.0001 / 1000
    assert (got["p_min"], got["p_max"]) == (q_min / 1000, q_max / 1000)
