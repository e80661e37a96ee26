"""``p2pex demo``: a local p2pex network trading the chapter's community.

The demo starts an operator and two replicas as separate processes on
127.0.0.1, publishes the 11-bus feeder and the tariff, registers the 20 peers
of the reference case (11 consumers, 8 producers and the main grid G20),
and then, for each delivery slot:

1. every peer declares its cost or utility curve for the slot (the curves
   vary from slot to slot: PV output and demand move with a seeded factor);
2. scripted agents sign and submit truthful order ladders derived from those
   curves (``node.demo.agents``), spread over the three nodes, so replicas
   forward writes to the operator;
3. the operator closes the slot (gate closure), its worker process solves the
   chapter's basic model over the declared curves and publishes the rounded
   settlements with their optimality certificate, which every replica checks;
4. the demo prints the CDA's trades, the reference clearing (trade matrix as
   in table 12.1, prices, losses, congested lines) and the CDA's allocative
   efficiency against it.

It ends by checking that the three nodes hold the identical chain (same head
hash) and that a full audit of each node's stored chain passes, stops every
process it started, and exits 0.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from market.units import Units
from node.demo.agents import (
    OrderIntent,
    allocative_efficiency,
    cda_power,
    interleave,
    ladder,
)
from node.errors import NodeError

PRODUCT = "electricity"
EXIT_OK = 0
EXIT_FAILED = 1


def add_demo_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``p2pex demo``."""
    parser = commands.add_parser(
        "demo",
        help="run a local operator and two replicas trading the chapter's community",
        description=(
            "Start an operator and two replica nodes on 127.0.0.1, register the "
            "chapter's 20-peer community on the 11-bus feeder, trade a few delivery "
            "slots in the continuous double auction, clear each slot optimally at "
            "gate closure, and check that all nodes hold the same verified chain."
        ),
    )
    parser.add_argument("--slots", type=int, default=3, help="delivery slots to trade (default 3)")
    parser.add_argument(
        "--steps", type=int, default=4, help="orders in each agent's ladder per slot (default 4)"
    )
    parser.add_argument("--seed", type=int, default=7, help="seed of the agents (default 7)")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="keep the nodes' data and logs here (default: a temporary directory, removed)",
    )
    parser.add_argument(
        "--cluster",
        action="store_true",
        help="order on a replicated log: 3 NATS JetStream servers and 3 validators "
        "(see docs/cluster.md)",
    )
    parser.set_defaults(handler=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    """Handler of ``p2pex demo``."""
    if args.slots < 1 or args.steps < 1:
        msg = "--slots and --steps must be at least 1"
        raise NodeError(msg)
    if args.data_dir is not None:
        root = Path(args.data_dir)
        if root.exists() and any(root.iterdir()):
            msg = f"--data-dir {root} is not empty: give a new directory"
            raise NodeError(msg)
        return _run(Demo(root, slots=args.slots, steps=args.steps, seed=args.seed), args)
    root = Path(tempfile.mkdtemp(prefix="p2pex-demo-"))
    try:
        return _run(Demo(root, slots=args.slots, steps=args.steps, seed=args.seed), args)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _run(demo: Demo, args: argparse.Namespace) -> int:
    """The demo, or with ``--cluster`` the same scenario on a validator cluster."""
    if not getattr(args, "cluster", False):
        return demo.run()
    from node.cluster.demo import run_on_cluster

    ok = run_on_cluster(demo, audit_data_dir)
    demo.say("")
    demo.say("demo OK" if ok else "demo FAILED")
    return EXIT_OK if ok else EXIT_FAILED


class Demo:
    """One run of the demo under ``root``."""

    def __init__(
        self,
        root: Path,
        *,
        slots: int,
        steps: int,
        seed: int,
        out: Callable[[str], None] | None = None,
    ) -> None:
        from clearing import load_reference_case

        self.root = root
        self.slots = slots
        self.steps = steps
        self.seed = seed
        self.case = load_reference_case()
        self.started = time.monotonic()
        self._out = out or (lambda line: print(line, flush=True))

    # -- output ----------------------------------------------------------------------------------

    def say(self, line: str = "") -> None:
        """Print one line of the report."""
        self._out(line)

    def progress(self, what: str) -> None:
        """Print a progress line with the elapsed time."""
        self._out(f"[{time.monotonic() - self.started:5.1f}s] {what}")

    # -- the run ---------------------------------------------------------------------------------

    def run(self) -> int:
        """Run the whole demo; return the exit code."""
        from node.localnet import LocalNet

        self.progress(f"starting an operator and 2 replicas on 127.0.0.1 (data in {self.root})")
        net = LocalNet(self.root, replicas=2, operator_args=("--block-interval-ms", "20"))
        with net:
            assert net.operator is not None
            addresses = [n.address for n in net.nodes]
            self.progress("nodes ready: " + ", ".join(f"{n.name} {n.address}" for n in net.nodes))
            ok = self.trade(net.operator_key, addresses)
            ok = self.check_agreement(addresses) and ok
        self.progress("all node processes stopped")
        ok = self.audit_stores(net) and ok
        self.say("")
        self.say("demo OK" if ok else "demo FAILED")
        return EXIT_OK if ok else EXIT_FAILED

    def trade(self, operator_key: Path, addresses: Sequence[str]) -> bool:
        """Register the community, trade and clear every slot; True if all checks hold."""
        from ledger import generate_signing_key
        from market import transactions as txn
        from node.client.clients import Client
        from node.keys import load_key

        case = self.case
        admin = Client.connect(addresses[0], key=load_key(operator_key))
        network = case.network.to_dict()
        network.pop("peer_bus", None)
        last = admin.submit(txn.SetNetwork(json.dumps(network, sort_keys=True)))
        last = admin.submit(txn.SetTariff(round(case.alpha * 1000), round(case.beta * 1000)))
        admin.wait_committed(last.tx_id)
        self.progress("operator published the 11-bus feeder and the tariff")

        # One key and one connection per peer, spread over the three nodes.
        self.clients: dict[str, Client] = {}
        self.names: dict[bytes, str] = {}
        pending = []
        for i, peer in enumerate(case.peers):
            client = Client.connect(addresses[i % len(addresses)], key=generate_signing_key())
            self.clients[peer.name] = client
            self.names[client.account] = peer.name
            role = peer.role.value
            pending.append(
                (client, client.register(peer.name, bus=case.network.bus_of(peer.name), role=role))
            )
        for client, sub in pending:
            client.wait_committed(sub.tx_id)
        consumers = sum(not p.is_producer for p in case.peers)
        self.progress(
            f"registered {len(case.peers)} peers ({consumers} consumers, "
            f"{len(case.peers) - consumers} producers incl. the main grid G20), "
            f"clients spread over {len(addresses)} nodes"
        )

        rng = random.Random(self.seed)
        ok = True
        efficiencies = []
        for slot in range(1, self.slots + 1):
            eff, slot_ok = self.trade_slot(admin, slot, rng)
            efficiencies.append(eff)
            ok = ok and slot_ok
        self.say("")
        self.say(
            "CDA allocative efficiency per slot: "
            + ", ".join(f"slot {s}: {e:.1%}" for s, e in enumerate(efficiencies, 1))
        )
        for client in self.clients.values():
            client.close()
        admin.close()
        return ok

    def slot_case(self, slot: int, rng: random.Random) -> Any:
        """The reference case with this slot's PV output and demand (seeded variation)."""
        peers = []
        for peer in self.case.peers:
            if peer.role.value == "grid":
                peers.append(peer)
                continue
            factor = rng.uniform(0.75, 1.25)
            peers.append(replace(peer, p_min=peer.p_min * factor, p_max=peer.p_max * factor))
        return replace(self.case, name=f"{self.case.name}, slot {slot}", peers=tuple(peers))

    def trade_slot(self, admin: Any, slot: int, rng: random.Random) -> tuple[float, bool]:
        """Declare curves, trade, close and clear one slot; print its report."""
        from clearing import clear
        from clearing.report import format_trade_matrix
        from market import transactions as txn

        case = self.slot_case(slot, rng)
        tick = case.tick
        self.say("")
        self.say(f"=== delivery slot {slot} ===")
        last: dict[str, Any] = {}
        for peer in case.peers:
            a, b, c, q_min, q_max = Units(tick, case.slot_hours).curve_to_ledger(
                peer.a, peer.b, peer.c, peer.p_min, peer.p_max
            )
            client = self.clients[peer.name]
            last[peer.name] = client.declare_curve(PRODUCT, slot, a, b, c, q_min, q_max)
        self.progress(f"slot {slot}: {len(case.peers)} peers declared their curves")

        ladders = [
            ladder(p, tick=tick, slot_hours=case.slot_hours, steps=self.steps) for p in case.peers
        ]
        orders = interleave(ladders, seed=rng.randrange(2**32))
        for order in orders:
            last[order.peer] = self.place(order, slot)
        for name, sub in last.items():
            self.clients[name].wait_committed(sub.tx_id)
        self.progress(f"slot {slot}: {len(orders)} signed orders placed and committed")

        closing = admin.submit(txn.CloseSlot(PRODUCT, slot))
        admin.wait_committed(closing.tx_id)
        self.progress(f"slot {slot}: gate closed; the operator's worker is clearing it")
        settlements = self.wait_settlements(admin, slot)
        self.progress(
            f"slot {slot}: clearing published with its certificate ({len(settlements)} settlements)"
        )

        # The CDA's outcome, from the committed trades.
        trades = [t for t in admin.trades() if t["product"] == PRODUCT and t["slot"] == slot]
        flows = self.cda_flows(case, trades)
        volume = sum(t["quantity"] for t in trades)
        self.say(f"CDA: {len(trades)} trades, {volume / 1000:.1f} kWh")
        if trades:
            prices = [t["price"] * tick for t in trades]
            vwap = sum(t["price"] * t["quantity"] for t in trades) * tick / volume
            self.say(
                f"CDA prices {case.currency}/kWh: min {min(prices):.4f}  "
                f"vwap {vwap:.4f}  max {max(prices):.4f}"
            )
        self.say(format_trade_matrix(case, flows, "CDA trades (kWh per producer and consumer)"))

        # The reference outcome: the same basic model the operator solved.
        reference = clear(case, "basic")
        self.say("")
        self.say(format_trade_matrix(case, reference.trades, "Reference clearing (table 12.1, kW)"))
        peer_prices = "  ".join(
            f"{n} {reference.peer_price[i]:.4f}" for i, n in enumerate(case.names)
        )
        self.say(f"reference prices {case.currency}/kWh: {peer_prices}")
        congested = ", ".join(reference.congested) or "none"
        self.say(f"reference losses {reference.losses_kw:.3f} kW; congested lines: {congested}")

        ok = self.check_settlements(case, reference, settlements)
        achieved = cda_power(
            ((self.seller(t), self.buyer(t), t["quantity"]) for t in trades),
            slot_hours=case.slot_hours,
            case=case,
        )
        optimal = {n: float(reference.injection[i]) for i, n in enumerate(case.names)}
        efficiency = allocative_efficiency(case, achieved, optimal)
        self.say(f"CDA allocative efficiency against the reference: {efficiency:.1%}")
        return efficiency, ok

    def place(self, order: OrderIntent, slot: int) -> Any:
        return self.clients[order.peer].place_order(
            PRODUCT, slot, order.side, order.price, order.quantity
        )

    def seller(self, trade: dict[str, Any]) -> str:
        maker = self.names[trade["maker_account"]]
        taker = self.names[trade["taker_account"]]
        return maker if self.case.peers[self.case.index(maker)].is_producer else taker

    def buyer(self, trade: dict[str, Any]) -> str:
        maker = self.names[trade["maker_account"]]
        taker = self.names[trade["taker_account"]]
        return taker if self.case.peers[self.case.index(maker)].is_producer else maker

    def cda_flows(self, case: Any, trades: list[dict[str, Any]]) -> Any:
        """CDA trades as a P_ij matrix in kW (chapter signs), like the reference's."""
        import numpy as np

        n = len(case.names)
        matrix = np.zeros((n, n))
        for t in trades:
            s, d = case.index(self.seller(t)), case.index(self.buyer(t))
            kw = t["quantity"] / 1000 / case.slot_hours
            matrix[s, d] += kw
            matrix[d, s] -= kw
        return matrix

    def wait_settlements(
        self, admin: Any, slot: int, timeout: float = 45.0
    ) -> dict[str, dict[str, Any]]:
        """Wait until the operator's chain holds the slot's clearing; its rows per peer.

        Asked of the operator, not of each peer's own node (a replica may not
        have stored the clearing's block yet), and only once the operator says
        the slot is cleared, so no row is read before its block is stored.
        """
        deadline = time.monotonic() + timeout
        while [PRODUCT, slot] not in admin.status()["cleared"]:
            if time.monotonic() > deadline:
                msg = f"no clearing published for slot {slot} within {timeout:.0f} s"
                raise NodeError(msg)
            time.sleep(0.1)
        rows: dict[str, dict[str, Any]] = {}
        for name, client in self.clients.items():
            for s in admin.settlements(client.account):
                if s["product"] == PRODUCT and s["slot"] == slot:
                    rows[name] = s
        return rows

    def check_settlements(
        self, case: Any, reference: Any, settlements: dict[str, dict[str, Any]]
    ) -> bool:
        """The on-chain settlements match the local re-solve, and energy balances exactly."""
        worst = 0.0
        for i, name in enumerate(case.names):
            row = settlements.get(name)
            chain_wh = row["energy_wh"] if row else 0
            local_wh = reference.injection[i] * case.slot_hours * 1000
            worst = max(worst, abs(chain_wh - local_wh))
        balance = sum(r["energy_wh"] for r in settlements.values())
        ok = worst <= 50 and balance == 0
        self.say(
            f"on-chain settlements: energy balance {balance} Wh, largest difference to the "
            f"local re-solve {worst:.1f} Wh -> {'OK' if ok else 'MISMATCH'}"
        )
        return ok

    def check_agreement(self, addresses: Sequence[str]) -> bool:
        """Wait until every node stores the operator's head; compare head hashes."""
        from node.client.clients import Client

        with Client.connect(addresses[0]) as op:
            head = op.status()
        height = int(head["height"])  # blocks stored: the head is at height - 1
        heads = []
        for address in addresses:
            with Client.connect(address) as client:
                client.wait_height(height - 1, timeout=30)
                status = client.status()
                heads.append((address, status))
        self.say("")
        same = True
        for address, status in heads:
            head_hex = status["head"].hex()
            self.say(f"{status['role']:>8} {address}: {status['height']} blocks, head {head_hex}")
        same = len({(s["height"], s["head"]) for _, s in heads}) == 1
        self.progress(
            "all three nodes hold the identical chain" if same else "the nodes' chains DIFFER"
        )
        return same

    def audit_stores(self, net: Any) -> bool:
        """Audit every node's stored chain from disk: ledger rules, then a full replay."""
        ok = True
        for node in net.nodes:
            passed, summary = audit_data_dir(node.data_dir, net.operator_key)
            self.progress(f"audit of {node.name}'s stored chain: {summary}")
            ok = ok and passed
        return ok


def audit_data_dir(data_dir: Path, operator_key: Path) -> tuple[bool, str]:
    """Audit a node's stored chain (as ``p2pex chain verify --data-dir``) and summarise it."""
    from ledger.audit import audit_chain
    from ledger.sqlite_store import SqliteBlockStore
    from market import replay
    from market.state import ExchangeState
    from node.errors import BlockRefused
    from node.keys import load_key

    store = SqliteBlockStore(data_dir / "chain.sqlite3", readonly=True)
    try:
        operator = load_key(operator_key).public_key_bytes()
        chain_id = store.block_at(0).header.chain_id
        report = audit_chain(store, chain_id=chain_id, authorised_proposers=[operator])
        if not report.ok:
            return False, report.describe()
        try:
            replay.replay_store(store, lambda: ExchangeState(chain_id, operator))
        except BlockRefused as exc:
            return False, f"replay FAILED at block {exc.height}: {exc.reason}"
        return True, f"{report.describe()}; replay OK"
    finally:
        store.close()
