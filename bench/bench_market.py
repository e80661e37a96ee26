"""Market outcomes of the four operation modes (12.2.2), seeded arrival orders.

For each case (the chapter's 20-peer community on its 11-bus feeder, and a
larger community on the IEEE 33-bus feeder) and each mode, the state
machine runs in-process: one ``ExchangeState`` per (case, mode), every peer
registered and its technology declared once, then one delivery slot per
seed. Each slot gets its ``SetSlotMode`` from ``market.grid_terms`` and the
peers' truthful order ladders (``node.demo.agents``) as signed
transactions in the seed's arrival order; the trades are read from the
outcomes' result records.

Per mode it reports, as min / median / max over the seeds:

- the CDA's allocative efficiency against the mode's reference clearing
  (``market.gate_clearing.slot_reference``: the loss- and congestion-
  penalised model, with hard line limits in mode 4), measured as welfare
  net of the grid's penalties (12.12, 12.16, the objective the reference is
  optimal for) and before them;
- the charges paid to the DSO (mode 3), the losses of the CDA's flows, and
  the number of overloaded lines of the CDA's outcome (flows recomputed
  from the trades with ``clearing.network``).

Mode 1: consumers bid green-only (PV) for half their ladder. Its reference
is the one the chain derives (``market.preference_reference``): the
ladders' preferences as partner sets and pair penalties (a premium on
partners accepted only in part), read from a scratch state machine that
places the ladders in a mode-1 slot and closes its gate. Its efficiency is
measured with that reference's objective: net of the premiums too, on both
sides.

Run: ``python -m bench.bench_market [--seeds 200] [--first-seed 1] [--write]``
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

from bench.machine import describe, write_results
from clearing import clear, load_reference_case
from clearing.case import Case
from clearing.ieee33 import community_case
from ledger.keys import SigningKey
from ledger.results import GridTradeRecord, TradeRecord, decode_result
from market import transactions as txn
from market.gate_clearing import curve_for_peer, job_from_state, network_for_case
from market.grid_terms import slot_mode
from market.state import ExchangeState
from market.units import Units
from node.demo.agents import (
    OrderIntent,
    cda_power,
    green_tail,
    grid_penalty,
    interleave,
    ladder,
    line_overloads,
    losses_kw,
    net_efficiency,
    surplus,
    technologies,
)

CHAIN = "bench-market"
PRODUCT = "electricity"
MODEL = "loss+congestion"  # the node's default reference
STEPS = 4  # tranches per ladder
GREEN_SHARE = 0.5
MODES = (1, 2, 3, 4)
BLOCK = 500  # transactions per begin_block


@dataclass(frozen=True, slots=True)
class Reference:
    """A mode's reference clearing: net power per peer and its grid penalty."""

    power: dict[str, float]
    penalty: float
    penalised: tuple[str, ...]
    welfare_net: float


class Sender:
    """A key and its nonces."""

    def __init__(self, key: SigningKey) -> None:
        self.key = key
        self.nonce = 0

    def tx(self, payload: txn.Payload) -> txn.SignedTransaction:
        self.nonce += 1
        return txn.make(self.key, CHAIN, self.nonce, payload)


class Runner:
    """One state machine for one (case, mode), one slot per seed."""

    def __init__(self, case: Case, mode: int, reference: Reference, congested: Sequence[str]):
        self.case, self.mode, self.reference = case, mode, reference
        self.operator = Sender(SigningKey.from_seed(b"\x07" * 32))
        self.state = ExchangeState(CHAIN, self.operator.key.public_key_bytes())
        self.units = Units(case.tick, case.slot_hours)
        self.congested = tuple(congested)
        self.time = 0
        self.count = 0
        self.premiums: dict[tuple[str, str], float] = {}  # mode 1: (seller, buyer) -> c/kWh
        self.peers: dict[str, Sender] = {}
        self.names: dict[bytes, str] = {}
        self.begin()
        labels = technologies(case)
        for i, peer in enumerate(case.peers):
            sender = Sender(SigningKey.from_seed(i.to_bytes(4, "big") * 8))
            self.peers[peer.name] = sender
            self.names[sender.key.account_id] = peer.name
            role = peer.role.value
            bus = case.network.bus_of(peer.name)
            self.send(sender.tx(txn.RegisterPeer(peer.name, bus, role)))
            self.send(sender.tx(txn.DeclareTechnology(labels[peer.name])))

    def begin(self) -> None:
        self.time += 1_000
        self.state.begin_block(self.time)

    def send(self, signed: txn.SignedTransaction) -> list[bytes]:
        if self.count and self.count % BLOCK == 0:
            self.begin()
        self.count += 1
        out = self.state.apply(signed)
        if out.rejected is not None:
            msg = f"refused: {out.rejected} ({signed.transaction.payload!r:.120})"
            raise RuntimeError(msg)
        return out.results

    def order(self, o: OrderIntent, slot: int) -> txn.SignedTransaction:
        sender = self.peers[o.peer]
        coid = sender.nonce + 1
        if o.technologies:
            return sender.tx(
                txn.PlacePreferredOrder(
                    PRODUCT,
                    slot,
                    o.side,
                    o.price,
                    o.quantity,
                    "GTC",
                    0,
                    False,
                    "",
                    coid,
                    o.technologies,
                    b"",
                    b"",
                    -1,
                )
            )
        return sender.tx(
            txn.PlaceOrder(PRODUCT, slot, o.side, o.price, o.quantity, "GTC", 0, False, "", coid)
        )

    def run(self, slot: int, orders: Sequence[OrderIntent]) -> dict[str, float]:
        """Trade one slot; its outcome figures."""
        case = self.case
        terms = slot_mode(
            case.network,
            product=PRODUCT,
            slot=slot,
            mode=self.mode,
            alpha=case.alpha,
            beta=case.beta,
            penalised=self.congested,
            units=self.units,
        )
        self.send(self.operator.tx(terms))
        legs: list[tuple[str, str, int]] = []
        charges = 0
        for o in orders:
            for raw in self.send(self.order(o, slot)):
                record = decode_result(raw)
                if not isinstance(record, TradeRecord | GridTradeRecord):
                    continue
                maker = self.names[record.maker_account]
                taker = self.names[record.taker_account]
                seller, buyer = (taker, maker) if o.side == "ask" else (maker, taker)
                legs.append((seller, buyer, record.quantity))
                if isinstance(record, GridTradeRecord):
                    charges += (record.seller_charge + record.buyer_charge) * record.quantity
        power = cda_power(legs, slot_hours=case.slot_hours, case=case)
        ref = self.reference
        penalty = grid_penalty(case, legs, slot_hours=case.slot_hours, penalised=ref.penalised)
        penalty += sum(self.premiums.get((s, b), 0.0) * wh / 1000 for s, b, wh in legs)
        gross_best = surplus(case, ref.power)
        return {
            "net": net_efficiency(case, power, penalty, ref.power, ref.penalty),
            "gross": surplus(case, power) / gross_best if gross_best > 0 else 1.0,
            "charges": charges * case.tick / 1000,  # tick*Wh -> currency
            "losses": losses_kw(case, power),
            "overloads": float(len(line_overloads(case, power))),
            "volume": sum(wh for _, _, wh in legs) / 1000,
        }


def reference_of(case: Case, mode: int) -> Reference:
    result = clear(case, MODEL, line_limits=mode == 4)
    power = {n: float(result.injection[i]) for i, n in enumerate(case.names)}
    penalty = float(result.penalty.sum())
    return Reference(power, penalty, tuple(result.spec.penalised), surplus(case, power) - penalty)


def chain_reference(
    case: Case, orders: Sequence[OrderIntent], congested: Sequence[str]
) -> tuple[Reference, dict[tuple[str, str], float]]:
    """Mode 1's reference as the chain derives it, and the premiums per (seller, buyer).

    A scratch state machine places ``orders`` in a mode-1 slot and closes its
    gate; ``job_from_state`` gives the partner sets and pair penalties, which
    are copied onto the float case (the curves stay unrounded).
    """
    runner = Runner(case, 1, Reference({}, 0.0, (), 0.0), congested)
    op = runner.operator
    runner.send(op.tx(network_for_case(case)))
    runner.send(op.tx(txn.SetTariff(round(case.alpha * 1000), round(case.beta * 1000))))
    for peer in case.peers:
        runner.send(runner.peers[peer.name].tx(curve_for_peer(peer, 1)))
    runner.run(1, orders)
    runner.send(op.tx(txn.CloseSlot(PRODUCT, 1)))
    derived = {p["name"]: p for p in job_from_state(runner.state, PRODUCT, 1, MODEL).case["peers"]}
    peers = []
    for p in case.peers:
        d = derived.get(p.name, {})
        mu = None if d.get("partners") is None else tuple(d["partners"])
        pens = tuple(d.get("pair_penalties", {}).items())
        peers.append(replace(p, partners=mu, pair_penalties=pens))
    prefs = replace(case, peers=tuple(peers))
    result = clear(prefs, MODEL)
    power = {n: float(result.injection[i]) for i, n in enumerate(case.names)}
    premiums: dict[tuple[str, str], float] = {}
    for p in prefs.peers:
        for other, cost in p.pair_penalties:
            key = (p.name, other) if p.is_producer else (other, p.name)
            premiums[key] = premiums.get(key, 0.0) + cost
    paid = sum(
        cost * abs(float(result.trade(s, b))) * case.slot_hours for (s, b), cost in premiums.items()
    )
    penalty = float(result.penalty.sum()) + paid
    reference = Reference(
        power, penalty, tuple(result.spec.penalised), surplus(case, power) - penalty
    )
    return reference, premiums


def ladders(case: Case, mode: int) -> list[list[OrderIntent]]:
    out = [ladder(p, tick=case.tick, slot_hours=case.slot_hours, steps=STEPS) for p in case.peers]
    if mode == 1:
        out = [green_tail(o, GREEN_SHARE) for o in out]
    return out


def spread(values: Sequence[float], fmt: str) -> str:
    return " / ".join(format(v, fmt) for v in (min(values), statistics.median(values), max(values)))


def bench_case(case: Case, seeds: Sequence[int]) -> list[str]:
    lines = [f"== {case.name}: {len(case.peers)} peers, {len(case.network.buses)} buses"]
    congested = clear(case, "basic").overloaded  # the DSO's congestion forecast (mode 3's theta)
    lines.append(
        f"   mode 3 penalises {', '.join(congested) or 'no line'} "
        f"(lines the unpenalised clearing overloads); alpha {case.alpha}, beta {case.beta}"
    )
    base = {m: ladders(case, m) for m in MODES}
    references = {m: reference_of(case, m) for m in MODES}
    references[1], premiums = chain_reference(
        case, [o for ladder in base[1] for o in ladder], congested
    )
    for mode in MODES:
        ref = references[mode]
        lines.append(
            f"   mode {mode} reference ({MODEL}{' + line limits' if mode == 4 else ''}"
            f"{' + preferences' if mode == 1 else ''}): "
            f"welfare net of penalties {ref.welfare_net:.3f} {case.currency}/h, overloads "
            f"{len(line_overloads(case, ref.power))}"
        )
    runners = {m: Runner(case, m, references[m], congested) for m in MODES}
    runners[1].premiums = premiums
    rows: dict[int, list[dict[str, float]]] = {m: [] for m in MODES}
    started = time.perf_counter()
    for k, seed in enumerate(seeds):
        for mode in MODES:  # interleaved: every mode sees the same arrival order per seed
            rows[mode].append(runners[mode].run(k + 1, interleave(base[mode], seed=seed)))
    lines.append(
        f"   {len(seeds)} seeds x {len(MODES)} modes in {time.perf_counter() - started:.1f} s"
    )
    lines.append(
        "   mode  efficiency net of penalties  before penalties   charges to DSO"
        "       losses kW         overloads (runs with any)  volume kWh"
    )
    for mode in MODES:
        r = rows[mode]
        over = [x["overloads"] for x in r]
        lines.append(
            f"   {mode}     {spread([x['net'] for x in r], '.1%'):>26}  "
            f"{spread([x['gross'] for x in r], '.1%'):>22}  "
            f"{spread([x['charges'] for x in r], '.2f'):>22}  "
            f"{spread([x['losses'] for x in r], '.2f'):>18}  "
            f"{spread(over, '.0f'):>9} ({sum(o > 0 for o in over)}/{len(r)})  "
            f"{spread([x['volume'] for x in r], '.0f')}"
        )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seeds", type=int, default=200, help="arrival orders per mode")
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--consumers", type=int, default=40, help="IEEE 33 case consumers")
    parser.add_argument("--producers", type=int, default=20, help="IEEE 33 case producers")
    parser.add_argument("--capacity-kw", type=float, default=40.0, help="IEEE 33 line capacity")
    parser.add_argument("--case-seed", type=int, default=3, help="seed of the IEEE 33 community")
    parser.add_argument("--write", action="store_true", help="write bench/results/market-*.txt")
    args = parser.parse_args(argv)
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    big = community_case(
        args.consumers,
        args.producers,
        seed=args.case_seed,
        grid=True,
        capacity_kw=args.capacity_kw,
    )
    out = [
        "command: python -m bench.bench_market "
        f"--seeds {args.seeds} --first-seed {args.first_seed} --consumers {args.consumers} "
        f"--producers {args.producers} --capacity-kw {args.capacity_kw} "
        f"--case-seed {args.case_seed}",
        *describe(),
        "figures: min / median / max over the seeds; efficiency = the CDA's welfare against "
        "the mode's reference clearing",
    ]
    print("\n".join(out), flush=True)
    for case in (load_reference_case(), big):
        lines = bench_case(case, seeds)
        print("\n".join(lines), flush=True)
        out += lines
    if args.write:
        write_results("market", out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
