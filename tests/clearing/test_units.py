"""The ledger-integer <-> clearing-float mapping of a curve."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from clearing import Case, curve_to_floats, curve_to_ints, tariff_to_floats
from clearing.units import TICK

ints = st.integers(-(10**9), 10**9)


@given(ints, ints, ints, ints, ints)
def test_integers_survive_the_round_trip(a, b, c, lo, hi):
    assert curve_to_ints(curve_to_floats(a, b, c, lo, hi)) == (a, b, c, lo, hi)


@given(ints, ints, st.sampled_from([0.25, 0.5, 1.0, 2.0]))
def test_bounds_scale_with_the_slot_length(lo, hi, hours):
    curve = curve_to_floats(0, 0, 0, lo, hi, slot_hours=hours)
    # Wh over the slot -> kW averaged over it
    assert abs(curve.p_min * hours * 1000 - lo) <= 1e-6 * max(1, abs(lo))
    assert curve_to_ints(curve, slot_hours=hours)[3:] == (lo, hi)


def test_a_case_built_from_integers_has_the_peer_floats():
    producer = curve_to_floats(0, 1000, 0, 0, 50_000)
    consumer = curve_to_floats(100_000, 4000, 0, -20_000, -5_000)
    assert (consumer.a, consumer.b, consumer.p_min) == (100_000 / 1000 * TICK, 4000 * TICK, -20.0)
    case = Case.from_dict(
        {
            "name": "u",
            "tick": TICK,
            "network": {
                "voltage_kv": 1.0,
                "root": "0",
                "buses": ["0"],
                "lines": [],
                "peer_bus": {"G": "0", "C": "0"},
            },
            "peers": [
                {"name": "G", "role": "producer", **producer.as_dict()},
                {"name": "C", "role": "consumer", **consumer.as_dict()},
            ],
        }
    )
    assert curve_to_ints(case.peers[1]) == (100_000, 4000, 0, -20_000, -5_000)


def test_tariff_milli_units():
    assert tariff_to_floats(5, 35) == (0.005, 0.035)


@given(ints, ints, ints, ints, ints)
def test_the_floats_are_bit_for_bit_those_chains_were_cleared_with(a, b, c, lo, hi):
    # the expressions node/clearing_job.py used: a replica rebuilding an old
    # slot's case through this mapping must get the very same floats
    got = curve_to_floats(a, b, c, lo, hi)
    assert got.a == a / 1000 * 0.0001
    assert got.b == b * 0.0001
    assert got.c == c * 0.0001 / 1000
    assert (got.p_min, got.p_max) == (lo / 1000, hi / 1000)
