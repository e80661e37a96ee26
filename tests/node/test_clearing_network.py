"""Gate closure and clearing on real nodes: the operator closes the slot on time, clears it
in a worker process, publishes settlements with a certificate; the replica checks it."""

from __future__ import annotations

import json
import time

import pytest

from clearing import reference_case_path
from ledger.keys import SigningKey
from node.client.clients import Client
from node.keys import load_key
from tests.node.test_network import wait_level

pytestmark = pytest.mark.slow

SLOT_MS = 1000


def test_gate_closure_clears_the_slot_and_replicas_verify_it(make_net, capsys):
    net = make_net(replicas=1, operator_args=("--slot-length-ms", str(SLOT_MS)))
    ref = json.loads(reference_case_path().read_text(encoding="utf-8"))
    network = {k: v for k, v in ref["network"].items() if k != "peer_bus"}
    with Client.connect(net.operator.address, key=load_key(net.operator_key)) as operator:
        from market import transactions as txn

        operator.submit(txn.SetNetwork(json.dumps(network)))
        operator.submit(txn.SetTariff(5, 5))
    slot = time.time_ns() // 1_000_000 // SLOT_MS + 5  # its gate closes in 4-5 s
    accounts = {}
    for i, p in enumerate(ref["peers"]):
        key = SigningKey.from_seed(bytes([i + 1]) * 32)
        address = net.nodes[i % 2].address  # half of the peers talk to the replica
        with Client.connect(address, key=key) as peer:
            peer.register(p["name"], bus=ref["network"]["peer_bus"][p["name"]], role=p["role"])
            a, b = round(p["a"] / 0.0001 * 1000), round(p["b"] / 0.0001)
            lo, hi = round(p["p_min"] * 1000), round(p["p_max"] * 1000)
            done = peer.declare_curve("electricity", slot, a, b, 0, lo, hi)
            assert done.events == []
            accounts[p["name"]] = key.account_id
    assert time.time_ns() // 1_000_000 < slot * SLOT_MS, "the set-up took too long"
    deadline = time.monotonic() + 60
    with Client.connect(net.replicas[0].address) as reader:
        while True:
            rows = reader.settlements(accounts["G20"])
            if rows:
                break
            assert time.monotonic() < deadline, net.operator.log_tail()
            time.sleep(0.2)
        assert rows[0]["slot"] == slot and rows[0]["energy_wh"] > 0  # the grid sells
        total = sum(reader.settlements(acct)[0]["energy_wh"] for acct in accounts.values())
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
    slot = time.time_ns() // 1_000_000 // SLOT_MS + 8  # its gates close in 7-8 s
    peers = [*ref["peers"], {"name": "P21", "role": "prosumer", "a": 0.002, "b": 0.2}]
    accounts = {}
    for i, p in enumerate(peers):
        key = SigningKey.from_seed(bytes([i + 1]) * 32)
        bus = ref["network"]["peer_bus"].get(p["name"], "6")
        with Client.connect(net.nodes[i % 2].address, key=key) as peer:
            peer.register(p["name"], bus=bus, role=p["role"])
            a, b = round(p["a"] / 0.0001 * 1000), round(p["b"] / 0.0001)
            lo, hi = round(p.get("p_min", -30) * 1000), round(p.get("p_max", 30) * 1000)
            assert peer.declare_curve("electricity", slot, a, b, 0, lo, hi).events == []
            if p.get("heat"):
                h = p["heat"]
                curve = (round(h["a"] / 0.0001 * 1000), round(h["b"] / 0.0001), 0)
                bounds = (round(h["h_min"] * 1000), round(h["h_max"] * 1000))
                peer.declare_curve("heat", slot, *curve, *bounds)
            if p.get("chp"):
                points = tuple(round(v * 1000) for k in "ABCD" for v in p["chp"][k])
                peer.submit(txn.DeclareChp(slot, points))
            accounts[p["name"]] = key.account_id
    assert time.time_ns() // 1_000_000 < slot * SLOT_MS, "the set-up took too long"
    deadline = time.monotonic() + 90
    with Client.connect(net.replicas[0].address) as reader:
        while True:
            rows = reader.settlements(accounts["G12"])  # a CHP unit: power and heat
            if {r["product"] for r in rows} == {"electricity", "heat"}:
                break
            assert time.monotonic() < deadline, net.operator.log_tail()
            time.sleep(0.2)
        assert all(r["slot"] == slot and r["energy_wh"] > 0 for r in rows)  # sells both
        for product in ("electricity", "heat"):
            total = sum(
                r["energy_wh"]
                for acct in accounts.values()
                for r in reader.settlements(acct)
                if r["product"] == product
            )
            assert total == 0, product
        prosumer = reader.settlements(accounts["P21"])
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
    slot = time.time_ns() // 1_000_000 // SLOT_MS + 6  # its gate closes in 5-6 s
    with Client.connect(net.operator.address, key=load_key(net.operator_key)) as operator:
        operator.submit(txn.SetNetwork(json.dumps(network)))
        operator.submit(txn.SetTariff(5, 5))
        names, empty = ",".join(buses), ()
        mode = txn.SetSlotMode("electricity", slot, 1, names, *[empty] * 6, False)
        operator.submit(mode)
    labels = {f"G{i}": "pv" for i in range(12, 16)} | {f"G{i}": "chp" for i in range(16, 20)}
    accounts = {}
    for i, p in enumerate(ref["peers"]):
        key = SigningKey.from_seed(bytes([i + 1]) * 32)
        address = net.nodes[i % 2].address  # half of the peers talk to the replica
        with Client.connect(address, key=key) as peer:
            peer.register(p["name"], bus=ref["network"]["peer_bus"][p["name"]], role=p["role"])
            label = labels.get(p["name"], "grid" if p["role"] == "grid" else "load")
            peer.submit(txn.DeclareTechnology(label))
            a, b = round(p["a"] / 0.0001 * 1000), round(p["b"] / 0.0001)
            lo, hi = round(p["p_min"] * 1000), round(p["p_max"] * 1000)
            peer.declare_curve("electricity", slot, a, b, 0, lo, hi)
            if p["name"] in ("C1", "C2"):  # green only: a bid at 1 tick, resting until the gate
                order = ("electricity", slot, "bid", 1, 1_000, "GTC", 0, False, "", 1)
                green = txn.PlacePreferredOrder(*order, "pv", b"", b"", -1)
                assert peer.submit(green).order_id is not None
            accounts[p["name"]] = key.account_id
    assert time.time_ns() // 1_000_000 < slot * SLOT_MS, "the set-up took too long"
    deadline = time.monotonic() + 60
    with Client.connect(net.replicas[0].address) as reader:
        while not reader.settlements(accounts["C1"]):
            assert time.monotonic() < deadline, net.operator.log_tail()
            time.sleep(0.2)
        total = sum(sum(r["energy_wh"] for r in reader.settlements(a)) for a in accounts.values())
        assert total == 0
    statuses = wait_level(net)
    assert statuses[0]["head"] == statuses[1]["head"]
    assert statuses[1]["refused"] == []  # the replica accepted the clearing with the preferences
