"""``p2pex demo``: a local p2pex network trading the chapter's community.

The demo starts an operator and two replicas as separate processes on
127.0.0.1, publishes the 11-bus feeder and the tariff, registers the 20 peers
of the reference case (11 consumers, 8 producers and the main grid G20),
each with its technology label, and then, for each delivery slot:

0. the operator sets the slot's operation mode (12.2.2; slot k in mode
   ``(k - 1) % 4 + 1``) with the grid terms of ``market.grid_terms``;
1. every peer declares its cost or utility curve for the slot (the curves
   vary from slot to slot: PV output and demand move with a seeded factor);
2. scripted agents sign and submit truthful order ladders derived from those
   curves (``node.demo.agents``; in mode 1 consumers bid green-only for the
   tail of their ladder), spread over the three nodes, so replicas forward
   writes to the operator;
3. the operator closes the slot (gate closure), its worker process solves the
   mode's reference clearing (the penalised model; with hard line limits in
   mode 4) over the declared curves and publishes the rounded settlements
   with their optimality certificate, which every replica checks;
4. the demo prints the CDA's trades, the reference clearing (trade matrix as
   in table 12.1, prices, losses, congested lines), the CDA's allocative
   efficiency against it, and one line saying what the mode changed: charges
   paid to the DSO, line overloads and losses of the CDA's outcome.

It ends by checking that the three nodes hold the identical chain (same head
hash) and that a full audit of each node's stored chain passes, stops every
process it started, and exits 0.
"""

from __future__ import annotations

import argparse
import itertools
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
    green_tail,
    grid_penalty,
    interleave,
    ladder,
    line_overloads,
    losses_kw,
    net_efficiency,
    technologies,
)
from node.errors import NodeError

PRODUCT = "electricity"
HEAT = "heat"
PREFERRED_IDS = 1 << 40  # client order ids of the demo's preferred orders start here
GRID_PEER = "G20"  # the main grid's peer in the chapter's case: it delivers what it sold
OPENING_BALANCE = 10_000_000_000  # tick*Wh deposited per peer (100 USD at the case's tick)
IMPORT_PRICE = 2_000  # ticks per kWh: the demo's grid import tariff (0.20 USD/kWh)
EXPORT_PRICE = 500  # ticks per kWh: the demo's grid export tariff (0.05 USD/kWh)
REFERENCE_MODEL = "loss+congestion"  # the operator's default reference (node config)
MODE_NAMES = {1: "preferences", 2: "bids and offers", 3: "DSO price signals", 4: "line validation"}
GREEN_SHARE = 0.5  # mode 1: the share of each consumer's ladder bid green-only
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
            "gate closure, then clear one slot of heat and power jointly (CHP units, "
            "12.6.4), and check that all nodes hold the same verified chain."
        ),
    )
    parser.add_argument(
        "--slots",
        type=int,
        default=4,
        help="delivery slots to trade; slot k runs in the DSO's operation mode (k - 1) %% 4 + 1 "
        "(default 4: one slot in each mode); a slot of heat and power follows them",
    )
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
        "--web",
        type=int,
        default=None,
        metavar="PORT",
        help="serve the operator's live web view on 127.0.0.1:PORT (0: any free port) and "
        "keep the nodes running after the demo until Ctrl-C (default: no web view)",
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
        demo = Demo(root, slots=args.slots, steps=args.steps, seed=args.seed)
        demo.web = getattr(args, "web", None)
        return _run(demo, args)
    root = Path(tempfile.mkdtemp(prefix="p2pex-demo-"))
    try:
        demo = Demo(root, slots=args.slots, steps=args.steps, seed=args.seed)
        demo.web = getattr(args, "web", None)
        return _run(demo, args)
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
        self.preferred_ids = itertools.count()
        self.web: int | None = None  # port of the operator's web view (None: off)

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
        if self.web is not None:
            net.operator_args += ("--web", f"127.0.0.1:{self.web}")
        with net:
            assert net.operator is not None
            addresses = [n.address for n in net.nodes]
            self.progress("nodes ready: " + ", ".join(f"{n.name} {n.address}" for n in net.nodes))
            if self.web is not None:
                self.progress(f"live web view: {net.operator.web_url}")
            ok = self.trade(net.operator_key, addresses)
            ok = self.check_agreement(addresses) and ok
            if self.web is not None:
                self.linger(str(net.operator.web_url))
        self.progress("all node processes stopped")
        ok = self.audit_stores(net) and ok
        self.say("")
        self.say("demo OK" if ok else "demo FAILED")
        return EXIT_OK if ok else EXIT_FAILED

    def linger(self, url: str) -> None:
        """Keep the nodes (and the web view at ``url``) up until Ctrl-C."""
        self.progress(f"the nodes keep running for the web view at {url}: Ctrl-C stops them")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            self.say("")

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
        labels = technologies(case)
        pending = [
            (client, client.submit(txn.DeclareTechnology(labels[name])))
            for name, client in self.clients.items()
        ]
        for client, sub in pending:
            client.wait_committed(sub.tx_id)
        self.open_accounts(admin, addresses)
        consumers = sum(not p.is_producer for p in case.peers)
        self.progress(
            f"registered {len(case.peers)} peers ({consumers} consumers, "
            f"{len(case.peers) - consumers} producers incl. the main grid G20), "
            f"clients spread over {len(addresses)} nodes; each declared its technology"
        )
        self.cursor = 0  # the next block height whose trades are not read yet
        self.mode_lines: list[str] = []

        rng = random.Random(self.seed)
        ok = True
        efficiencies = []
        for slot in range(1, self.slots + 1):
            eff, slot_ok = self.trade_slot(admin, slot, rng)
            efficiencies.append(eff)
            ok = ok and slot_ok
        ok = self.heat_slot(admin, self.slots + 1) and ok
        self.say("")
        self.say(
            "CDA allocative efficiency per slot: "
            + ", ".join(f"slot {s}: {e:.1%}" for s, e in enumerate(efficiencies, 1))
        )
        self.say("What each slot's operation mode changed:")
        for line in self.mode_lines:
            self.say(line)
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
        mode = (slot - 1) % 4 + 1
        self.say("")
        self.say(f"=== delivery slot {slot}: mode {mode}, {MODE_NAMES[mode]} ===")
        self.publish_mode(admin, case, slot, mode)
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
        if mode == 1:  # consumers bid green-only for the tail of their ladder
            ladders = [green_tail(orders, GREEN_SHARE) for orders in ladders]
        orders = interleave(ladders, seed=rng.randrange(2**32))
        for order in orders:
            last[order.peer] = self.place(order, slot)
        for name, sub in last.items():
            self.clients[name].wait_committed(sub.tx_id)
        self.progress(f"slot {slot}: {len(orders)} signed orders placed and committed")

        admin.submit(txn.SetSlotTerms(PRODUCT, slot, IMPORT_PRICE, EXPORT_PRICE, "cda"))
        closing = admin.submit(txn.CloseSlot(PRODUCT, slot))
        admin.wait_committed(closing.tx_id)
        self.progress(f"slot {slot}: gate closed; the operator's worker is clearing it")
        settlements = self.wait_settlements(admin, slot)
        self.progress(
            f"slot {slot}: clearing published with its certificate ({len(settlements)} settlements)"
        )

        # The CDA's outcome, from the committed trades.
        trades = [
            t for t in self.read_trades(admin) if t["product"] == PRODUCT and t["slot"] == slot
        ]
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
        self.say(format_trade_matrix(case, flows, "CDA trades (kW per producer and consumer)"))

        # The reference outcome: the model the operator solved (its default, the penalised QP).
        # what the operator solved: its default, with hard line limits in mode 4
        solved = case
        if mode == 1:  # ... on the case with the orders' preferences (docs/modes.md)
            from market.preference_reference import case_with_preferences
            from orderbook.grid import Preferences

            prefs: dict[str, list[Preferences]] = {}
            for o in orders:
                techs = frozenset(o.technologies.split(",")) if o.technologies else None
                prefs.setdefault(o.peer, []).append(Preferences(techs))
            solved = case_with_preferences(case, prefs, technologies(case))
        reference = clear(solved, REFERENCE_MODEL, line_limits=mode == 4)
        self.say("")
        self.say(format_trade_matrix(case, reference.trades, "Reference clearing (table 12.1, kW)"))
        peer_prices = "  ".join(
            f"{n} {reference.peer_price[i]:.4f}" for i, n in enumerate(case.names)
        )
        self.say(f"reference prices {case.currency}/kWh: {peer_prices}")
        congested = ", ".join(reference.overloaded) or "none"
        self.say(f"reference losses {reference.losses_kw:.3f} kW; overloaded lines: {congested}")

        ok = self.check_settlements(case, reference, settlements)
        legs = [(self.seller(t), self.buyer(t), t["quantity"]) for t in trades]
        achieved = cda_power(legs, slot_hours=case.slot_hours, case=case)
        optimal = {n: float(reference.injection[i]) for i, n in enumerate(case.names)}
        gross = allocative_efficiency(case, achieved, optimal)
        penalty = grid_penalty(
            case, legs, slot_hours=case.slot_hours, penalised=reference.spec.penalised
        )
        efficiency = net_efficiency(
            case, achieved, penalty, optimal, float(reference.penalty.sum())
        )
        self.say(
            f"CDA allocative efficiency against the reference: {efficiency:.1%} (welfare net of "
            f"the grid's loss and congestion penalties; before them {gross:.1%})"
        )
        self.mode_lines.append(
            self.mode_line(case, slot, mode, trades, achieved, (efficiency, gross))
        )
        self.say(self.mode_lines[-1])
        ok = self.settle(admin, case, slot, trades, rng) and ok
        return efficiency, ok

    def heat_slot(self, admin: Any, slot: int) -> bool:
        """Heat and power cleared jointly on the chain (12.6.4): CHP units in their region.

        Every peer declares its power curve, the peers with heat their heat
        curve, the CHP units their (P, H) region (``DeclareChp``); the operator
        closes both gates and its worker clears the slot in one problem and
        publishes both products' settlements with one certificate, which the
        replicas check. The demo re-solves the chapter's heat model locally.
        """
        from clearing import clear
        from market import transactions as txn

        case = self.case
        units = Units(case.tick, case.slot_hours)
        self.say("")
        self.say(f"=== delivery slot {slot}: heat and power, cleared jointly (12.6.4) ===")
        last = {}
        for peer in case.peers:
            client = self.clients[peer.name]
            curve = units.curve_to_ledger(peer.a, peer.b, peer.c, peer.p_min, peer.p_max)
            last[peer.name] = client.declare_curve(PRODUCT, slot, *curve)
            if peer.heat is not None:
                h = peer.heat
                heat = units.curve_to_ledger(h.a, h.b, h.c, h.h_min, h.h_max)
                last[peer.name] = client.declare_curve(HEAT, slot, *heat)
            if peer.chp is not None:
                corners = tuple(units.wh(v) for point in peer.chp.points() for v in point)
                last[peer.name] = client.submit(txn.DeclareChp(slot, corners))
        for name, sub in last.items():
            self.clients[name].wait_committed(sub.tx_id)
        chp_units = [p.name for p in case.peers if p.chp is not None]
        self.progress(
            f"slot {slot}: power and heat curves declared; CHP regions of {', '.join(chp_units)}"
        )
        for product in (PRODUCT, HEAT):
            closing = admin.submit(txn.CloseSlot(product, slot))
        admin.wait_committed(closing.tx_id)
        power = self.wait_settlements(admin, slot)
        heat_rows = self.wait_settlements(admin, slot, product=HEAT)
        self.progress(f"slot {slot}: both products cleared with one certificate")
        reference = clear(case, "heat")
        assert reference.heat is not None  # the heat model clears heat
        for name in chp_units:
            p_wh = power.get(name, {}).get("energy_wh", 0)
            h_wh = heat_rows.get(name, {}).get("energy_wh", 0)
            paid = heat_rows.get(name, {}).get("payment", 0)
            self.say(
                f"CHP {name}: {p_wh / 1000:.1f} kWh power and {h_wh / 1000:.1f} kWh heat; "
                f"received {money(paid, case)} {case.currency} for its heat"
            )
        worst = 0.0
        for i, name in enumerate(case.names):
            for rows, values in ((power, reference.injection), (heat_rows, reference.heat)):
                chain_wh = rows[name]["energy_wh"] if name in rows else 0
                worst = max(worst, abs(chain_wh - units.wh(float(values[i]))))
        balance = [sum(r["energy_wh"] for r in rows.values()) for rows in (power, heat_rows)]
        ok = worst <= 50 and balance == [0, 0]
        self.say(
            f"on-chain settlements: energy balance {balance[0]} Wh power, {balance[1]} Wh heat; "
            f"largest difference to the local re-solve of the heat model {worst:.1f} Wh -> "
            f"{'OK' if ok else 'MISMATCH'}"
        )
        self.mode_lines.append(
            f"slot {slot} heat and power: {len(chp_units)} CHP units sold power and heat from "
            "one joint clearing on the chain"
        )
        return ok

    # -- money ---------------------------------------------------------------------------------

    def open_accounts(self, admin: Any, addresses: Sequence[str]) -> None:
        """Deposit every peer's opening balance and register a meter for each."""
        from ledger import generate_signing_key
        from market import transactions as txn
        from node.client.clients import Client

        self.meters: dict[str, Client] = {}
        self.deposited = 0
        last = None
        for i, (name, client) in enumerate(self.clients.items()):
            meter_key = generate_signing_key()
            self.meters[name] = Client.connect(addresses[i % len(addresses)], key=meter_key)
            last = admin.submit(txn.RegisterMeter(client.account, meter_key.public_key_bytes()))
            last = admin.submit(txn.Deposit(client.account, OPENING_BALANCE))
            self.deposited += OPENING_BALANCE
        if last is not None:
            admin.wait_committed(last.tx_id)
        self.progress(
            f"operator deposited {money(OPENING_BALANCE, self.case)} {self.case.currency} "
            f"per peer and registered {len(self.meters)} meters"
        )

    def settle(
        self, admin: Any, case: Any, slot: int, trades: list[dict[str, Any]], rng: random.Random
    ) -> bool:
        """Meters report the slot, the operator settles it; print the statements and check them.

        Each meter reads its peer's contracted energy off by up to 10% (the
        grid's exactly); one seeded peer's meter stays silent, and the
        settlement counts it as 0 Wh.
        """
        from market import transactions as txn

        contracted: dict[str, int] = dict.fromkeys(self.clients, 0)
        for trade in trades:
            contracted[self.seller(trade)] += trade["quantity"]
            contracted[self.buyer(trade)] -= trade["quantity"]
        silent = rng.choice(sorted(n for n in contracted if n != GRID_PEER))
        last = []
        for name, wh in sorted(contracted.items()):
            if name == silent or wh == 0:
                continue
            metered = wh if name == GRID_PEER else round(wh * rng.uniform(0.9, 1.1))
            reading = txn.MeterReading(PRODUCT, slot, metered)
            last.append((self.meters[name], self.meters[name].submit(reading)))
        for meter, sub in last:
            meter.wait_committed(sub.tx_id)
        settled = admin.submit(txn.SettleSlot(PRODUCT, slot))
        admin.wait_committed(settled.tx_id)
        self.say("")
        self.say(
            f"Settlement of slot {slot} (import {IMPORT_PRICE * case.tick:.2f}, export "
            f"{EXPORT_PRICE * case.tick:.2f} {case.currency}/kWh; {silent}'s meter sent nothing):"
        )
        self.say(
            f"{'peer':>8} {'contracted kWh':>15} {'metered kWh':>12} {'imbalance kWh':>14} "
            f"{'payment ' + case.currency:>14} {'balance ' + case.currency:>14}"
        )
        total = 0
        accounts = [(name, c.account) for name, c in self.clients.items()]
        accounts += [
            (name, admin.call("balance", {"account": name})["account"])
            for name in ("grid", "dso", "treasury")
        ]
        for name, account in accounts:
            for s in admin.call("statements", {"account": account, "limit": 1})["statements"]:
                if (s["product"], s["slot"]) != (PRODUCT, slot):
                    continue  # this account had nothing to settle in this slot
                total += s["payment"]
                self.say(
                    f"{name:>8} {s['contracted_wh'] / 1000:15.2f} {s['metered_wh'] / 1000:12.2f} "
                    f"{s['imbalance_wh'] / 1000:14.2f} {money(s['payment'], case):>14} "
                    f"{money(s['balance_after'], case):>14}"
                )
        books = sum(admin.call("balance", {"account": a})["balance"] for _, a in accounts)
        ok = total == 0 and books == self.deposited
        self.say(
            f"money check: the slot's payments add up to {total} tick*Wh; all balances add up to "
            f"{books} tick*Wh against {self.deposited} deposited: "
            + ("conserved" if ok else "NOT CONSERVED")
        )
        return ok

    def place(self, order: OrderIntent, slot: int) -> Any:
        client = self.clients[order.peer]
        if not order.technologies:
            return client.place_order(PRODUCT, slot, order.side, order.price, order.quantity)
        from market import transactions as txn

        return client.submit(
            txn.PlacePreferredOrder(
                PRODUCT,
                slot,
                order.side,
                order.price,
                order.quantity,
                "GTC",
                0,
                False,
                "",
                PREFERRED_IDS + next(self.preferred_ids),  # apart from place_order's (its nonce)
                order.technologies,
                b"",
                b"",
                -1,
            )
        )

    # -- operation modes -----------------------------------------------------------------------

    def publish_mode(self, admin: Any, case: Any, slot: int, mode: int) -> Any:
        """The operator publishes the slot's mode with its grid terms (``market.grid_terms``).

        Mode 3 charges the case's alpha and beta, theta on the lines the
        unpenalised clearing of the slot overloads (the DSO's congestion
        forecast); mode 4 validates against the feeder's capacities.
        """
        from clearing import clear
        from market.grid_terms import slot_mode
        from market.units import Units

        penalised = clear(case, "basic").overloaded if mode == 3 else ()
        self.penalised = tuple(penalised)
        terms = slot_mode(
            case.network,
            product=PRODUCT,
            slot=slot,
            mode=mode,
            alpha=case.alpha,
            beta=case.beta,
            penalised=penalised,
            units=Units(case.tick, case.slot_hours),
        )
        admin.wait_committed(admin.submit(terms).tx_id)
        what = {
            1: "peers' technologies; consumers bid green-only for part of their ladder",
            2: "the plain CDA",
            3: f"charges alpha R_ij + beta theta_ij (alpha {case.alpha}, beta {case.beta}, "
            f"penalised lines: {', '.join(penalised) or 'none'})",
            4: "every match checked against the feeder's line capacities",
        }[mode]
        self.progress(f"slot {slot}: operator set mode {mode} ({what})")
        return terms

    def read_trades(self, admin: Any) -> list[dict[str, Any]]:
        """The trades (plain and grid) of the blocks stored since the last read.

        Read from the blocks themselves: they carry a grid trade's charges.
        """
        from ledger.block import decode_block
        from ledger.results import GridTradeRecord, TradeRecord, decode_result

        height = int(admin.status()["height"])
        out: list[dict[str, Any]] = []
        while self.cursor < height:
            blocks = admin.blocks(self.cursor, 64)
            if not blocks:
                break
            for data in blocks:
                for raw in decode_block(data).results:
                    record = decode_result(raw)
                    if isinstance(record, TradeRecord | GridTradeRecord):
                        out.append(
                            {
                                "product": record.product,
                                "slot": record.slot,
                                "price": record.price,
                                "quantity": record.quantity,
                                "maker_account": record.maker_account,
                                "taker_account": record.taker_account,
                                "seller_charge": getattr(record, "seller_charge", 0),
                                "buyer_charge": getattr(record, "buyer_charge", 0),
                            }
                        )
            self.cursor += len(blocks)
        return out

    def mode_line(
        self,
        case: Any,
        slot: int,
        mode: int,
        trades: list[dict[str, Any]],
        achieved: dict[str, float],
        efficiency: tuple[float, float],
    ) -> str:
        """One line saying what the slot's mode changed."""
        charges = sum((t["seller_charge"] + t["buyer_charge"]) * t["quantity"] for t in trades)
        over = line_overloads(case, achieved)
        overloads = (
            ", ".join(f"{name} {flow:.1f}/{cap:.0f} kW" for name, flow, cap in over) or "none"
        )
        reference = f"{REFERENCE_MODEL}{' with line limits' if mode == 4 else ''}"
        return (
            f"slot {slot} mode {mode} ({MODE_NAMES[mode]}): charges paid to the DSO "
            f"{money(charges, case)} {case.currency}; CDA line overloads: {overloads}; "
            f"CDA losses {losses_kw(case, achieved):.3f} kW; CDA efficiency against the "
            f"mode's reference ({reference}) {efficiency[0]:.1%} net of grid penalties, "
            f"{efficiency[1]:.1%} before them"
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
        self, admin: Any, slot: int, timeout: float = 45.0, *, product: str = PRODUCT
    ) -> dict[str, dict[str, Any]]:
        """Wait until the operator's chain holds the slot's clearing; its rows per peer.

        Asked of the operator, not of each peer's own node (a replica may not
        have stored the clearing's block yet), and only once the operator says
        the slot is cleared, so no row is read before its block is stored.
        """
        deadline = time.monotonic() + timeout
        while [product, slot] not in admin.status()["cleared"]:
            if time.monotonic() > deadline:
                msg = f"no clearing published for slot {slot} within {timeout:.0f} s"
                raise NodeError(msg)
            time.sleep(0.1)
        rows: dict[str, dict[str, Any]] = {}
        for name, client in self.clients.items():
            for s in admin.settlements(client.account):
                if s["product"] == product and s["slot"] == slot:
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
    from node.pipeline import chain

    store = SqliteBlockStore(data_dir / chain.CHAIN_FILE, readonly=True)
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


def money(amount: int, case: Any) -> str:
    """tick*Wh as currency with 4 decimals (x tick per kWh / 1000 Wh per kWh)."""
    return f"{amount * case.tick / 1000:.4f}"
