"""``p2pex simulate SCENARIO``: a community of active buildings through a day.

See docs/simulate.md. Runs an operator node, one HEMS agent per building
trading its net position in the CDA slot by slot, settles every slot with
meter readings, clears the operator's multi-period reference offline, and
writes tables, plots and the three designs' summary.
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from node.errors import NodeError
from node.simulate.day import Day, FloatArray, load_day
from node.simulate.designs import (
    Outcome,
    Summary,
    format_summary,
    grid_only_outcome,
    pool_outcome,
    summarise,
)
from node.simulate.hems import schedule_day
from node.simulate.runner import NodeDay, P2PRun, decisions_array, p2p_outcome

EXIT_OK = 0
EXIT_FAILED = 1


@dataclass(frozen=True, slots=True, eq=False)
class Simulation:
    """Everything one run produced."""

    day: Day
    run: P2PRun
    designs: tuple[Outcome, Outcome, Outcome]
    summary: tuple[Summary, ...]
    pool_grid_price: FloatArray  # ticks per kWh per slot


def add_simulate_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``p2pex simulate``."""
    parser = commands.add_parser(
        "simulate",
        help="run a community of active buildings through a day on a local node",
        description=(
            "Run an operator node and one home-energy-management agent per building; "
            "the agents schedule their batteries and EVs, trade their net energy in the "
            "CDA slot by slot, and every slot is settled on chain with meter readings. "
            "Compares the P2P market with no P2P and with the pool (multi-period clearing)."
        ),
    )
    parser.add_argument("scenario", metavar="SCENARIO", help="'chapter' or a SimBench code")
    parser.add_argument("--slots", type=int, default=24, help="hourly slots (default 24)")
    parser.add_argument("--seed", type=int, default=7, help="seed (default 7)")
    parser.add_argument("--out", type=Path, default=Path("simulate-out"), help="output directory")
    parser.add_argument("--plot", action="store_true", help="write day.png (matplotlib)")
    parser.set_defaults(handler=run_simulate)


def simulate(
    scenario: str, *, slots: int, seed: int, root: Path, say: Callable[[str], None]
) -> Simulation:
    """Run the whole simulation with the node's data under ``root``.

    Raises:
        NodeError: Bad ``slots``, an unknown scenario, a failed agent LP, or
            a node that does not answer.
    """
    from clearing.errors import ClearingError

    started = time.monotonic()
    say(f"[{0.0:6.1f}s] building the {scenario} scenario ({slots} hourly slots, seed {seed})")
    try:
        day = load_day(scenario, slots, seed)
    except ClearingError as exc:  # an unknown SimBench code, simbench missing, ...
        msg = f"scenario {scenario!r}: {exc}"
        raise NodeError(msg) from exc
    say(f"[{time.monotonic() - started:6.1f}s] {len(day.buildings)} buildings on {day.name}")
    node_day = NodeDay(day, root, seed=seed, say=say)
    node_day.started = started
    run = node_day.run()
    p2p = p2p_outcome(day, run)
    no = {b.name: schedule_day(b, day.import_price, day.export_price) for b in day.buildings}
    net, soc = decisions_array(day, no)
    nop2p = grid_only_outcome(day, net, soc, "no P2P")
    pool, result = pool_outcome(day)
    say(f"[{time.monotonic() - started:6.1f}s] pool cleared (clear_horizon, loss model)")
    grid_price = result.peer_price[:, result.names.index(day.grid)] / day.tick
    designs = (p2p, nop2p, pool)
    summary = tuple(summarise(day, d) for d in designs)
    return Simulation(day, run, designs, summary, grid_price)


def run_simulate(args: argparse.Namespace) -> int:
    """Handler of ``p2pex simulate``."""
    from node.simulate.output import plot_day, write_tables

    def say(line: str) -> None:
        print(line, flush=True)

    if args.plot and importlib.util.find_spec("matplotlib") is None:
        # said before the day runs, not after it
        msg = "--plot needs matplotlib: pip install 'p2pex[plot]' (or leave out --plot)"
        raise NodeError(msg)
    root = Path(tempfile.mkdtemp(prefix="p2pex-simulate-"))
    try:
        sim = simulate(args.scenario, slots=args.slots, seed=args.seed, root=root, say=say)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    out = Path(args.out)
    for note in write_tables(out, sim.day, sim.run, sim.designs, sim.summary, sim.pool_grid_price):
        say(note)
    if args.plot:
        say(f"plot: {plot_day(out, sim.day, sim.run, sim.designs, sim.pool_grid_price)}")
    say("")
    say(f"{sim.day.name}: {len(sim.day.buildings)} buildings, {sim.day.slots} slots")
    say(format_summary(sim.summary, sim.day.currency))
    say(f"tables in {out}")
    ok = sim.run.ok
    say("money conserved in every settled slot" if ok else "money NOT conserved")
    return EXIT_OK if ok else EXIT_FAILED
