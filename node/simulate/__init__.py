"""``p2pex simulate``: a community of active buildings through a day (docs/simulate.md)."""

from node.simulate.command import Simulation, add_simulate_command, run_simulate, simulate

__all__ = ["Simulation", "add_simulate_command", "run_simulate", "simulate"]
