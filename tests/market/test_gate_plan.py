"""Which clearing a slot gets, and the chain's CHP check, against slow references."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clearing.chp import ChpRegion, check_chp
from clearing.errors import InvalidPeer
from market import gate_plan
from market import transactions as txn
from market.gate_clearing import check_published, job_from_state, run_job
from market.gate_horizon import HorizonJob
from tests.market.test_gate_horizon import FEEDER, Chain


def float_reference(points: tuple[int, ...]) -> bool:
    """The clearing's own (float) check of a CHP region, as the reference."""
    corners = [(float(points[2 * k]), float(points[2 * k + 1])) for k in range(4)]
    try:
        check_chp(ChpRegion(*corners), "p")  # type: ignore[arg-type]
    except InvalidPeer:
        return False
    return True


@settings(max_examples=400, deadline=None)
@given(st.tuples(*[st.integers(-2, 60)] * 8))
def test_the_chain_accepts_exactly_the_chp_regions_the_clearing_takes(points):
    assert gate_plan.valid_chp_points(points) == float_reference(points)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["B1", "B2", "B3"]),
            st.integers(0, 40),  # a, milli-ticks/kWh²
            st.integers(500, 9_000),  # b, ticks/kWh
            st.integers(1_000, 30_000),  # how far below zero
            st.integers(1_000, 30_000),  # how far above zero
        ),
        min_size=1,
        max_size=3,
    ),
    st.integers(500, 9_000),
)
def test_random_prosumer_slots_clear_within_bounds_and_check(prosumers, grid_b):
    """Any slot with spanning prosumers: balanced rows, within every curve, accepted."""
    chain = Chain(FEEDER)
    chain.peer("G", "B1", "producer")
    chain.peer("C", "B3", "consumer")
    bounds = {"G": (0, 100_000), "C": (-40_000, -5_000)}
    assert chain.declare("G", txn.DeclareCurve("electricity", 1, 10, grid_b, 0, 0, 100_000)) is None
    assert (
        chain.declare("C", txn.DeclareCurve("electricity", 1, 10, 9_500, 0, -40_000, -5_000))
        is None
    )
    for k, (bus, a, b, below, above) in enumerate(prosumers):
        name = f"X{k}"
        chain.peer(name, bus, "prosumer")
        bounds[name] = (-below, above)
        assert (
            chain.declare(name, txn.DeclareCurve("electricity", 1, a, b, 0, -below, above)) is None
        )
    chain.close(1, "electricity")
    job = job_from_state(chain.state, "electricity", 1, "loss+congestion")
    assert isinstance(job, HorizonJob)
    rows, certificate = run_job(job)
    assert sum(energy for _, energy, _ in rows) == 0
    names = {chain.keys[n].account_id: n for n in bounds}
    for account, energy, _money in rows:
        lo, hi = bounds[names[account]]
        trades = len(bounds) - 1  # half a Wh of rounding per trade
        assert lo - trades <= energy <= hi + trades
    assert (
        check_published(chain.state, txn.PublishClearing("electricity", 1, rows, certificate))
        is None
    )
