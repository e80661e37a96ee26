"""Gate closure and clearing on real nodes: the operator closes the slot on time, clears it
in a worker process, publishes settlements with a certificate; the replica checks it."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest

from clearing import reference_case_path
from ledger.keys import SigningKey
from node.client.clients import Client
from node.keys import load_key
from tests.node.test_network import wait_level

pytestmark = pytest.mark.slow

SLOT_MS = 1000


def before_the_gate(declare: Callable[[int], None], lead: int) -> int:
    """Run ``declare(slot)`` for a slot whose gate is ``lead`` slots ahead; return that slot.

    Under load the declarations may take longer than ``lead`` slots, and some
    then land after the gate: the slot is abandoned and everything is
    declared again for a slot twice as far ahead (a bounded number of times),
    so the test does not depend on how fast the machine is.
    """
    for _attempt in range(4):
        slot = time.time_ns() // 1_000_000 // SLOT_MS + lead
        declare(slot)
        if time.time_ns() // 1_000_000 < slot * SLOT_MS:
            return slot
        lead *= 2
    pytest.fail("the declarations never finished before a gate")


def test_gate_closure_clears_the_slot_and_replicas_verify_it(make_net, capsys):
    net = make_net(replicas=1, operator_args=("--slot-length-ms", str(SLOT_MS)))
    ref = json.loads(reference_case_path().read_text(encoding="utf-8"))
    network = {k: v for k, v in ref["network"].items() if k != "peer_bus"}
    with Client.connect(net.operator.address, key=load_key(net.operator_key)) as operator:
        from market import transactions as txn

        operator.submit(txn.SetNetwork(json.dumps(network)))
        operator.submit(txn.SetTariff(5, 5))
    accounts, keys = {}, {}
    for i, p in enumerate(ref["peers"]):
        key = keys[p["name"]] = SigningKey.from_seed(bytes([i + 1]) * 32)
        address = net.nodes[i % 2].address  # half of the peers talk to the replica
        with Client.connect(address, key=key) as peer:
            peer.register(p["name"], bus=ref["network"]["peer_bus"][p["name"]], role=p["role"])
            accounts[p["name"]] = key.account_id

    def declare(slot: int) -> None:
        for i, p in enumerate(ref["peers"]):
            with Client.connect(net.nodes[i % 2].address, key=keys[p["name"]]) as peer:
                a, b = round(p["a"] / 0.0001 * 1000), round(p["b"] / 0.0001)
                lo, hi = round(p["p_min"] * 1000), round(p["p_max"] * 1000)
                peer.declare_curve("electricity", slot, a, b, 0, lo, hi)

    slot = before_the_gate(declare, lead=4)
    deadline = time.monotonic() + 60
    with Client.connect(net.replicas[0].address) as reader:
        while True:
            rows = [r for r in reader.settlements(accounts["G20"]) if r["slot"] == slot]
            if rows:
                break
            assert time.monotonic() < deadline, net.operator.log_tail()
            time.sleep(0.2)
        assert rows[0]["energy_wh"] > 0  # the grid sells
        total = sum(
            r["energy_wh"]
            for acct in accounts.values()
            for r in reader.settlements(acct)
            if r["slot"] == slot
        )
        assert total == 0
    statuses = wait_level(net)
    assert statuses[0]["head"] == statuses[1]["head"]
    assert statuses[1]["refused"] == []
    from node.cli.main import main

    key = ["--operator-key", str(net.operator_key)]
    assert main(["chain", "verify", "--node", net.replicas[0].address, *key]) == 0
    assert "replay: OK" in capsys.readouterr().out


def test_a_slot_with_heat_chp_and_a_prosumer_clears_jointly_and_replicas_verify_it(
    make_net, capsys
):
    """The chapter's community with heat curves, CHP regions and one prosumer whose curve
    spans zero: the gate closer closes both products, the operator clears them jointly
    (horizon form), publishes both, and the replica verifies both without a solver."""
    net = make_net(replicas=1, operator_args=("--slot-length-ms", str(SLOT_MS)))
    ref = json.loads(reference_case_path().read_text(encoding="utf-8"))
    network = {k: v for k, v in ref["network"].items() if k != "peer_bus"}
    from market import transactions as txn

    with Client.connect(net.operator.address, key=load_key(net.operator_key)) as operator:
        operator.submit(txn.SetNetwork(json.dumps(network)))
    peers = [*ref["peers"], {"name": "P21", "role": "prosumer", "a": 0.002, "b": 0.2}]
    accounts, keys = {}, {}
    for i, p in enumerate(peers):
        key = keys[p["name"]] = SigningKey.from_seed(bytes([i + 1]) * 32)
        bus = ref["network"]["peer_bus"].get(p["name"], "6")
        with Client.connect(net.nodes[i % 2].address, key=key) as peer:
            peer.register(p["name"], bus=bus, role=p["role"])
            accounts[p["name"]] = key.account_id

    def declare(slot: int) -> None:
        for i, p in enumerate(peers):
            with Client.connect(net.nodes[i % 2].address, key=keys[p["name"]]) as peer:
                a, b = round(p["a"] / 0.0001 * 1000), round(p["b"] / 0.0001)
                lo, hi = round(p.get("p_min", -30) * 1000), round(p.get("p_max", 30) * 1000)
                peer.declare_curve("electricity", slot, a, b, 0, lo, hi)
                if p.get("heat"):
                    h = p["heat"]
                    curve = (round(h["a"] / 0.0001 * 1000), round(h["b"] / 0.0001), 0)
                    bounds = (round(h["h_min"] * 1000), round(h["h_max"] * 1000))
                    peer.declare_curve("heat", slot, *curve, *bounds)
                if p.get("chp"):
                    points = tuple(round(v * 1000) for k in "ABCD" for v in p["chp"][k])
                    peer.submit(txn.DeclareChp(slot, points))

    slot = before_the_gate(declare, lead=6)
    deadline = time.monotonic() + 90
    with Client.connect(net.replicas[0].address) as reader:
        while True:
            rows = [r for r in reader.settlements(accounts["G12"]) if r["slot"] == slot]
            if {r["product"] for r in rows} == {"electricity", "heat"}:
                break
            assert time.monotonic() < deadline, net.operator.log_tail()
            time.sleep(0.2)
        assert all(r["energy_wh"] > 0 for r in rows)  # a CHP unit: sells power and heat
        for product in ("electricity", "heat"):
            total = sum(
                r["energy_wh"]
                for acct in accounts.values()
                for r in reader.settlements(acct)
                if r["product"] == product and r["slot"] == slot
            )
            assert total == 0, product
        prosumer = [r for r in reader.settlements(accounts["P21"]) if r["slot"] == slot]
        assert [r["product"] for r in prosumer] == ["electricity"]
        assert prosumer[0]["energy_wh"] != 0  # the prosumer is in the clearing and trades
    statuses = wait_level(net)
    assert statuses[0]["head"] == statuses[1]["head"]
    assert statuses[1]["refused"] == []  # the replica checked both PublishClearings
    from node.cli.main import main

    key = ["--operator-key", str(net.operator_key)]
    assert main(["chain", "verify", "--node", net.replicas[0].address, *key]) == 0
    assert "replay: OK" in capsys.readouterr().out


def test_a_mode_1_slot_is_cleared_with_the_orders_preferences_and_replicas_agree(make_net):
    """The operator's reference of a mode-1 slot carries the preferences; a replica derives
    the same case from its own replay and accepts the published clearing."""
    from market import transactions as txn

    net = make_net(replicas=1, operator_args=("--slot-length-ms", str(SLOT_MS)))
    ref = json.loads(reference_case_path().read_text(encoding="utf-8"))
    network = {k: v for k, v in ref["network"].items() if k != "peer_bus"}
    buses = ref["network"]["buses"]
    with Client.connect(net.operator.address, key=load_key(net.operator_key)) as operator:
        operator.submit(txn.SetNetwork(json.dumps(network)))
        operator.submit(txn.SetTariff(5, 5))
    labels = {f"G{i}": "pv" for i in range(12, 16)} | {f"G{i}": "chp" for i in range(16, 20)}
    accounts, keys = {}, {}
    for i, p in enumerate(ref["peers"]):
        key = keys[p["name"]] = SigningKey.from_seed(bytes([i + 1]) * 32)
        address = net.nodes[i % 2].address  # half of the peers talk to the replica
        with Client.connect(address, key=key) as peer:
            peer.register(p["name"], bus=ref["network"]["peer_bus"][p["name"]], role=p["role"])
            label = labels.get(p["name"], "grid" if p["role"] == "grid" else "load")
            peer.submit(txn.DeclareTechnology(label))
            accounts[p["name"]] = key.account_id

    def declare(slot: int) -> None:
        with Client.connect(net.operator.address, key=load_key(net.operator_key)) as operator:
            names, empty = ",".join(buses), ()
            operator.submit(txn.SetSlotMode("electricity", slot, 1, names, *[empty] * 6, False))
        for i, p in enumerate(ref["peers"]):
            with Client.connect(net.nodes[i % 2].address, key=keys[p["name"]]) as peer:
                a, b = round(p["a"] / 0.0001 * 1000), round(p["b"] / 0.0001)
                lo, hi = round(p["p_min"] * 1000), round(p["p_max"] * 1000)
                peer.declare_curve("electricity", slot, a, b, 0, lo, hi)
                if p["name"] in ("C1", "C2"):  # green only: a bid at 1 tick, resting to the gate
                    order = ("electricity", slot, "bid", 1, 1_000, "GTC", 0, False, "", 1)
                    peer.submit(txn.PlacePreferredOrder(*order, "pv", b"", b"", -1))

    slot = before_the_gate(declare, lead=5)
    deadline = time.monotonic() + 60
    with Client.connect(net.replicas[0].address) as reader:
        while not [r for r in reader.settlements(accounts["C1"]) if r["slot"] == slot]:
            assert time.monotonic() < deadline, net.operator.log_tail()
            time.sleep(0.2)
        total = sum(
            r["energy_wh"]
            for acct in accounts.values()
            for r in reader.settlements(acct)
            if r["slot"] == slot
        )
        assert total == 0
    statuses = wait_level(net)
    assert statuses[0]["head"] == statuses[1]["head"]
    assert statuses[1]["refused"] == []  # the replica accepted the clearing with the preferences
