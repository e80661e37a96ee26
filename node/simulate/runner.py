"""Run a day on a local operator node: agents schedule, trade in the CDA, meters settle.

Per slot ``t`` (chain slot ``t + 1``):

1. every building's agent re-plans the rest of the day (:mod:`node.simulate.hems`)
   and carries out slot ``t``: its net energy is known;
2. it places one signed limit order for that energy: an ask for a surplus
   at ``export + u (import - export)`` with a seeded ``u`` in [0.2, 0.5],
   a bid for a deficit with ``u`` in [0.5, 0.8] (orders in a seeded order);
3. the operator sets the slot's terms (the tariffs, market ``cda``) and
   closes the gate; every meter reports its building's net energy; the
   operator settles the slot: CDA contracts bind, imbalances go to the
   grid at the tariffs (docs/settlement.md);
4. the statements are read back and checked: the slot's payments add up to 0.

The operator's multi-period reference (the pool) is cleared offline in this
process (:func:`node.simulate.designs.pool_outcome`).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from node.simulate.day import SLOT_HOURS, Day, FloatArray
from node.simulate.designs import Outcome, feeder_losses
from node.simulate.hems import (
    SlotDecision,
    decide,
    expected_sell,
    initial_state,
    price_share,
    state_after,
)

PRODUCT = "electricity"
OPENING_BALANCE = 10_000_000_000  # tick*Wh per building (100 USD at the chapter's tick)


@dataclass(slots=True)
class SlotRecord:
    """What happened in one slot on the chain."""

    slot: int
    trades: int = 0
    volume_wh: int = 0
    vwap: float | None = None  # ticks per kWh
    payments_sum: int = 0  # tick*Wh over every account's statement: 0 when conserved
    peers: dict[str, dict[str, int]] = field(default_factory=dict)  # name -> statement fields
    orders: dict[str, tuple[str, int, int]] = field(default_factory=dict)  # side, price, Wh


@dataclass(slots=True)
class P2PRun:
    """The P2P design's day: decisions per building and slot, chain records per slot."""

    decisions: dict[str, list[SlotDecision]]
    slots: list[SlotRecord]
    ok: bool


class NodeDay:
    """One run of the agents against a local operator under ``root``."""

    def __init__(
        self, day: Day, root: Path, *, seed: int, say: Callable[[str], None] | None = None
    ) -> None:
        self.day = day
        self.root = root
        self.seed = seed
        self.started = time.monotonic()
        self._say = say or (lambda line: print(line, flush=True))

    def progress(self, what: str) -> None:
        """One progress line with the elapsed time."""
        self._say(f"[{time.monotonic() - self.started:6.1f}s] {what}")

    def run(self) -> P2PRun:
        """Start the operator, trade and settle every slot, stop the operator."""
        from node.localnet import LocalNet

        net = LocalNet(self.root, replicas=0, operator_args=("--block-interval-ms", "20"))
        self.progress("starting an operator node on 127.0.0.1")
        with net:
            assert net.operator is not None
            result = self._trade(net.operator_key, net.operator.address)
        self.progress("operator stopped")
        return result

    def _trade(self, operator_key: Path, address: str) -> P2PRun:
        from ledger import generate_signing_key
        from market import transactions as txn
        from node.client.clients import Client
        from node.keys import load_key

        day = self.day
        admin = Client.connect(address, key=load_key(operator_key))
        network = day.network.to_dict()
        network.pop("peer_bus", None)
        admin.wait_committed(
            admin.submit(txn.SetNetwork(json.dumps(network, sort_keys=True))).tx_id
        )
        clients: dict[str, Client] = {}
        meters: dict[str, Client] = {}
        self.names: dict[bytes, str] = {}
        pending = []
        for b in day.buildings:
            c = Client.connect(address, key=generate_signing_key())
            clients[b.name] = c
            self.names[c.account] = b.name
            pending.append((c, c.register(b.name, bus=b.bus, role=b.role)))
        for c, sub in pending:
            c.wait_committed(sub.tx_id)
        last = None
        for b in day.buildings:
            key = generate_signing_key()
            meters[b.name] = Client.connect(address, key=key)
            account = clients[b.name].account
            admin.submit(txn.RegisterMeter(account, key.public_key_bytes()))
            last = admin.submit(txn.Deposit(account, OPENING_BALANCE))
        if last is not None:
            admin.wait_committed(last.tx_id)
        self.progress(f"registered {len(day.buildings)} buildings with a meter each")
        accounts = [(n, c.account) for n, c in clients.items()]
        accounts += [
            (n, admin.call("balance", {"account": n})["account"])
            for n in ("grid", "dso", "treasury")
        ]
        rng = random.Random(self.seed)
        states = {b.name: initial_state(b) for b in day.buildings}
        decisions: dict[str, list[SlotDecision]] = {b.name: [] for b in day.buildings}
        records = []
        share: float | None = None
        ok = True
        buy = [float(i) for i in day.import_price]
        for t in range(day.slots):
            slot = t + 1
            record = SlotRecord(slot)
            sell = expected_sell(day.export_price, day.import_price, share)
            imp, exp = day.import_price[t], day.export_price[t]
            intents = []
            for b in day.buildings:
                dec = decide(b, t, states[b.name], buy, sell)
                decisions[b.name].append(dec)
                states[b.name] = state_after(dec)
                wh = round(dec.net_kw * SLOT_HOURS * 1000)
                if wh > 0:
                    price = exp + round(rng.uniform(0.2, 0.5) * (imp - exp))
                    intents.append((b.name, "ask", price, wh))
                elif wh < 0:
                    price = exp + round(rng.uniform(0.5, 0.8) * (imp - exp))
                    intents.append((b.name, "bid", price, -wh))
            rng.shuffle(intents)
            subs = []
            for name, side, price, qty in intents:
                record.orders[name] = (side, price, qty)
                subs.append(
                    (clients[name], clients[name].place_order(PRODUCT, slot, side, price, qty))
                )
            for c, sub in subs:
                c.wait_committed(sub.tx_id)
            admin.submit(txn.SetSlotTerms(PRODUCT, slot, imp, exp, "cda"))
            admin.wait_committed(admin.submit(txn.CloseSlot(PRODUCT, slot)).tx_id)
            readings = []
            for b in day.buildings:
                wh = round(decisions[b.name][t].net_kw * SLOT_HOURS * 1000)
                if wh != 0:
                    m = meters[b.name]
                    readings.append((m, m.submit(txn.MeterReading(PRODUCT, slot, wh))))
            for m, sub in readings:
                m.wait_committed(sub.tx_id)
            admin.wait_committed(admin.submit(txn.SettleSlot(PRODUCT, slot)).tx_id)
            trades = [
                x
                for x in admin.trades(limit=10_000)
                if x["product"] == PRODUCT and x["slot"] == slot
            ]
            record.trades = len(trades)
            record.volume_wh = sum(x["quantity"] for x in trades)
            if record.volume_wh:
                vwap = sum(x["price"] * x["quantity"] for x in trades) / record.volume_wh
                record.vwap = vwap
                share = price_share(vwap, exp, imp)
            for name, account in accounts:
                rows = admin.call("statements", {"account": account, "limit": 1})["statements"]
                for s in rows:
                    if (s["product"], s["slot"]) != (PRODUCT, slot):
                        continue
                    record.payments_sum += s["payment"]
                    record.peers[name] = {
                        k: int(s[k])
                        for k in (
                            "contracted_wh",
                            "metered_wh",
                            "imbalance_wh",
                            "payment",
                            "balance_after",
                        )
                    }
            books = sum(admin.call("balance", {"account": a})["balance"] for _, a in accounts)
            conserved = record.payments_sum == 0 and books == OPENING_BALANCE * len(clients)
            ok = ok and conserved
            records.append(record)
            shown = f"{record.vwap * day.tick:.4f}" if record.vwap is not None else "-"
            self.progress(
                f"slot {slot:2d}/{day.slots}: {len(intents)} orders, {record.trades} trades, "
                f"{record.volume_wh / 1000:.1f} kWh at vwap {shown} {day.currency}/kWh; "
                f"settled, money {'conserved' if conserved else 'NOT CONSERVED'}"
            )
        for c in (*clients.values(), *meters.values(), admin):
            c.close()
        return P2PRun(decisions, records, ok)


def p2p_outcome(day: Day, run: P2PRun) -> Outcome:
    """The P2P design's figures from the chain's statements."""
    net, soc = decisions_array(day, run.decisions)
    T = day.slots
    names = {b.name for b in day.buildings}
    imp = np.zeros(T)
    exp = np.zeros(T)
    cost = np.zeros(T)
    for t, rec in enumerate(run.slots):
        for name, s in rec.peers.items():
            if name not in names:
                continue
            imb = s["imbalance_wh"]
            imp[t] += max(-imb, 0) / 1000 / SLOT_HOURS
            exp[t] += max(imb, 0) / 1000 / SLOT_HOURS
            cost[t] -= s["payment"] * day.tick / 1000
    return Outcome("P2P market", net, imp, exp, cost, feeder_losses(day, net), soc)


def decisions_array(
    day: Day, decisions: dict[str, list[SlotDecision]]
) -> tuple[FloatArray, FloatArray]:
    """(net kW, SoC kWh) arrays (T, buildings) from the agents' decisions."""
    T, B = day.slots, len(day.buildings)
    net = np.zeros((T, B))
    soc = np.full((T, B), np.nan)
    for k, b in enumerate(day.buildings):
        for t, dec in enumerate(decisions[b.name]):
            net[t, k] = dec.net_kw
            if b.battery is not None:
                soc[t, k] = dec.soc_kwh
    return net, soc
