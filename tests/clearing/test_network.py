"""Radial network: paths, R_ij, θ_ij, flows, losses, and bad networks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from clearing import InvalidNetwork, NonRadialNetwork, UnknownBus, network_from_dict
from tests.clearing.helpers import feeder


def three_bus():
    # root 0 -- L1 (0.5 ohm) -- 1 ; root 0 -- L2 (1.5 ohm) -- 2
    return network_from_dict(
        feeder([("L1", "0", "1", 0.5, 100.0), ("L2", "2", "0", 1.5, None)], {"A": "1", "B": "2"})
    )


def chain():
    # 0 - 1 - 2 - 3 with a branch 1 - 4
    return network_from_dict(
        feeder(
            [
                ("a", "0", "1", 1.0, None),
                ("b", "1", "2", 2.0, None),
                ("c", "2", "3", 4.0, None),
                ("d", "4", "1", 8.0, None),
            ],
            {},
        )
    )


def test_path_and_resistance_on_a_three_bus_feeder():
    net = three_bus()
    assert net.path("1", "2") == ("L1", "L2")
    assert net.path("2", "1") == ("L2", "L1")
    assert net.path("0", "2") == ("L2",)
    assert net.path("1", "1") == ()
    idx = net.bus_indices(["1", "1", "0", "2"])
    other = net.bus_indices(["2", "1", "1", "0"])
    np.testing.assert_allclose(net.pair_resistance(idx, other), [2.0, 0.0, 0.5, 1.5])


def test_path_climbs_to_the_common_ancestor_only():
    net = chain()
    assert net.path("3", "4") == ("c", "b", "d")
    assert net.path("0", "3") == ("a", "b", "c")
    r = net.pair_resistance(net.bus_indices(["3", "4", "2"]), net.bus_indices(["4", "0", "3"]))
    np.testing.assert_allclose(r, [14.0, 9.0, 4.0])


def test_theta_is_one_when_the_path_crosses_any_congested_line():
    net = chain()
    src, dst = net.bus_indices(["3", "0", "4", "2"]), net.bus_indices(["4", "4", "0", "3"])
    # sigma = {c, d}: no path holds both lines except 3 -> 4; we read σ ∩ Λ ≠ ∅
    theta = net.pair_crosses(src, dst, net.line_indices(["c", "d"]))
    assert theta.tolist() == [True, True, True, True]
    theta = net.pair_crosses(src, dst, net.line_indices(["b"]))
    assert theta.tolist() == [True, False, False, False]
    assert not net.pair_crosses(src, dst, net.line_indices([])).any()


def test_flows_and_losses_from_injections():
    net = three_bus()
    # grid at root injects 20, A at bus 1 injects 30, B at bus 2 withdraws 50
    flows = net.peer_flows(net.bus_indices(["0", "1", "2"]), np.array([20.0, 30.0, -50.0]))
    np.testing.assert_allclose(flows, [-30.0, 50.0])  # downstream positive
    # r (P/V)^2 / 1000 at 1 kV: 0.5 * 900 / 1000 + 1.5 * 2500 / 1000
    assert net.losses_kw(flows) == pytest.approx(4.2)
    f = net.flow_matrix(net.bus_indices(["0", "1", "2"]))
    np.testing.assert_allclose(f @ np.array([20.0, 30.0, -50.0]), flows)
    assert net.capacities()[0] == 100.0 and math.isinf(net.capacities()[1])


def test_line_orientation_follows_the_root():
    net = three_bus()
    assert (net.parent_bus(1), net.child_bus(1)) == ("0", "2")  # given as 2 -> 0


def test_round_trip_through_dict():
    net = chain()
    again = network_from_dict(net.to_dict())
    assert again == net


@pytest.mark.parametrize(
    ("lines", "peer_bus", "error", "text"),
    [
        ([("L1", "0", "1", 1.0, None)], {"P": "7"}, UnknownBus, "peer 'P'"),
        (
            [("L1", "0", "1", 1.0, None), ("L2", "1", "2", 1.0, None), ("L3", "2", "0", 1.0, None)],
            {},
            NonRadialNetwork,
            "loop",
        ),
        ([("L1", "0", "1", 1.0, None), ("L2", "0", "1", 1.0, None)], {}, NonRadialNetwork, "loop"),
        ([("L1", "0", "0", 1.0, None)], {}, NonRadialNetwork, "itself"),
        ([("L1", "0", "1", -1.0, None)], {}, InvalidNetwork, "r_ohm"),
        ([("L1", "0", "1", 1.0, 0.0)], {}, InvalidNetwork, "capacity"),
        ([("L1", "0", "1", float("nan"), None)], {}, InvalidNetwork, "finite"),
    ],
)
def test_bad_networks_are_refused(lines, peer_bus, error, text):
    with pytest.raises(error, match=text):
        network_from_dict(feeder(lines, peer_bus))


def test_line_to_an_unknown_bus_is_refused():
    data = feeder([("L1", "0", "1", 1.0, None), ("L2", "1", "9", 1.0, None)], {})
    data["buses"].remove("9")
    with pytest.raises(UnknownBus, match="line 'L2' refers to unknown bus '9'"):
        network_from_dict(data)


def test_disconnected_bus_is_refused():
    data = feeder([("L1", "0", "1", 1.0, None)], {})
    data["buses"].append("island")
    with pytest.raises(NonRadialNetwork, match="not connected"):
        network_from_dict(data)


def test_missing_field_and_bad_voltage():
    data = feeder([("L1", "0", "1", 1.0, None)], {})
    del data["root"]
    with pytest.raises(InvalidNetwork, match="root"):
        network_from_dict(data)
    data = feeder([("L1", "0", "1", 1.0, None)], {}, voltage_kv=0.0)
    with pytest.raises(InvalidNetwork, match="voltage"):
        network_from_dict(data)
    with pytest.raises(InvalidNetwork, match="unknown line"):
        chain().line_indices(["zz"])
