"""From the chain's state to a clearing case, and back to ledger settlements.

The operator builds a ``ClearingJob`` (plain data, picklable) from the state
when a slot's gate has closed and runs ``run_job`` in a worker process; the
result is a ``PublishClearing`` payload: one settlement per participant and
the certificate. A replica, replaying that ``PublishClearing``, rebuilds the
same case from its own state and checks the certificate with
``clearing.check_certificate`` (``check_published``): no solver.

Mapping of the ledger's integer data onto the chapter's units (the case uses
``slot_hours = 1``, so a slot's kWh are read as kW):

- network: the ``SetNetwork`` JSON (``voltage_kv``, ``root``, ``buses``,
  ``lines``); each participant sits at the bus it registered with;
- peers: every account that declared a curve for (product, slot), named by
  its registered name (made unique with the account id when needed); the
  role is the registered one, a prosumer is a producer if its curve's
  ``q_min >= 0`` and a consumer if its ``q_max <= 0`` (a prosumer whose range
  spans zero is left out: the chapter fixes a peer's role per slot);
- curve: ``a`` milli-ticks/kWh² -> ``a / 1000 * tick``, ``b`` ticks/kWh ->
  ``b * tick``, ``c`` tick*Wh -> ``c * tick / 1000``, ``q`` Wh -> kW / 1000;
- tariff: ``SetTariff`` alpha_milli / 1000 and beta_milli / 1000; tariff and
  network are those in force at the slot's ``CloseSlot`` (kept in the state);
- settlement: energy in Wh as rounded by ``clearing.round_settlement``
  (+ injected), payment = money received minus money paid minus penalties,
  in tick*Wh (the ledger's sign: received >= 0).

A slot with a spanning prosumer, or with heat curves or CHP regions, is
cleared in the horizon form instead (``market.gate_plan`` says which,
``market.gate_horizon`` builds, runs and checks it): ``job_from_state``,
``run_job``, ``clear_job`` and ``check_published`` take either kind.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ledger.codec import decode, encode
from market import gate_plan
from market import transactions as txn
from market.gate_horizon import (
    HorizonJob,
    Rows,
    check_horizon_published,
    horizon_job_from_state,
    run_horizon_job,
)
from market.preference_reference import add_preferences
from market.state import ExchangeState
from market.units import Units

# The chain's cases: the default tick, one-hour slots (a slot's kWh read as kW).
CHAIN_UNITS = Units()


@dataclass(frozen=True, slots=True)
class ClearingJob:
    """Everything a worker process needs to clear one slot."""

    product: str
    slot: int
    model: str
    case: dict[str, Any]  # clearing's JSON case form
    accounts: dict[str, bytes]  # peer name in the case -> account id
    line_limits: bool = False  # hard line limits (a slot the DSO runs in mode 4)


def slot_reference(state: ExchangeState, product: str, slot: int, model: str) -> tuple[str, bool]:
    """The reference clearing a slot's mode asks for: (model, hard line limits).

    The reference follows the DSO's mode (12.2.2): a slot run with price
    signals (mode 3) is measured against the loss- and congestion-penalised
    model at the published alpha and beta; a slot run with line validation
    (mode 4) against ``model`` with the lines' capacities as hard limits;
    any other slot against ``model`` (the node's configured default). A
    slot run with preferences (mode 1) is cleared with ``model`` too, on a
    case that carries the orders' partner sets and pair penalties
    (``market.preference_reference``, written into the case by
    ``job_from_state``, so ``check_published`` checks them as well).
    """
    mode = state.slot_modes.get((product, slot))
    if mode is None:
        return model, False
    if mode.mode == 3:
        return "loss+congestion", False
    if mode.mode == 4:
        return model, True
    return model, False


def horizon_reference(
    state: ExchangeState, product: str, slot: int, model: str
) -> tuple[str, bool]:
    """The reference of a slot cleared in the horizon form: (model, hard line limits).

    A slot with heat is cleared with the heat model (it carries the loss
    and congestion terms at the chain's tariff); its line limits follow
    the electricity slot's mode. Any other slot: ``slot_reference``.
    """
    if gate_plan.HEAT in gate_plan.products_cleared_with(state, product, slot):
        return "heat", slot_reference(state, gate_plan.ELECTRICITY, slot, model)[1]
    return slot_reference(state, product, slot, model)


def job_from_state(
    state: ExchangeState, product: str, slot: int, model: str
) -> ClearingJob | HorizonJob:
    """Build the clearing job of (product, slot) from the state machine.

    A slot ``gate_plan.needs_horizon`` names gets a ``HorizonJob``.

    Raises:
        ValueError: no network, or fewer than one producer and one consumer.
    """
    if gate_plan.needs_horizon(state, product, slot):
        return horizon_job_from_state(
            state, product, slot, *horizon_reference(state, product, slot, model)
        )
    # The terms in force when the gate closed, so a later SetTariff or
    # SetNetwork cannot change a closed slot's clearing.
    (alpha, beta), network_json = state.gate_terms.get(
        (product, slot), (state.tariff, state.network_json)
    )
    if not network_json:
        msg = "no network published (SetNetwork)"
        raise ValueError(msg)
    network = json.loads(network_json)
    curves = state.curves.get((product, slot), {})
    names: dict[bytes, str] = {}
    taken: set[str] = set()
    peers: list[dict[str, Any]] = []
    peer_bus: dict[str, str] = {}
    for account, (a, b, c, q_min, q_max) in sorted(curves.items()):
        peer = state.peers[account]
        role = peer.role
        if role == "prosumer":
            if q_min >= 0:
                role = "producer"
            elif q_max <= 0:
                role = "consumer"
            else:
                continue
        name = peer.name if peer.name not in taken else f"{peer.name}#{account.hex()[:8]}"
        taken.add(name)
        names[account] = name
        peer_bus[name] = peer.bus
        peers.append(
            {"name": name, "role": role, **CHAIN_UNITS.curve_to_clearing(a, b, c, q_min, q_max)}
        )
    add_preferences(state, product, slot, peers, names, CHAIN_UNITS.tick)  # mode 1 only
    network = {**network, "peer_bus": peer_bus}
    case = {
        "name": f"{product} slot {slot}",
        "tick": CHAIN_UNITS.tick,
        "slot_hours": CHAIN_UNITS.slot_hours,
        "tariff": {"alpha": alpha / 1000, "beta": beta / 1000},
        "network": network,
        "peers": peers,
    }
    model, line_limits = slot_reference(state, product, slot, model)
    return ClearingJob(product, slot, model, case, {n: a for a, n in names.items()}, line_limits)


def warm_up() -> None:
    """Import the solver stack (run once in a fresh worker process)."""
    import clearing  # noqa: F401


def settlement_rows(case: Any, certificate: Any, accounts: dict[str, bytes], product: str) -> Rows:
    """The ledger settlements a certified solution gives, rounded by ``round_settlement``.

    Both the operator and the replicas derive the rows from the certificate
    as it is on the ledger (fixed point, decoded), so the same floats are
    rounded on both sides and the published rows can be checked exactly.

    Raises:
        ClearingError: the options do not fit the case, or the rounding does not balance.
    """
    from clearing import settle_certificate

    settlement = settle_certificate(case, certificate)
    return tuple(
        (accounts[p.peer], p.energy_wh, -p.payment - p.penalty)
        for p in settlement.peers
        if p.product == product
    )


def clear_job(job: ClearingJob | HorizonJob) -> tuple[dict[str, Rows], bytes]:
    """Solve one job (in a worker process); return (settlements per product, certificate bytes).

    A single-slot job settles its own product; a horizon job with heat
    settles electricity and heat, each published with the same certificate.

    Raises:
        ClearingError: the case cannot be cleared, or its own certificate fails.
    """
    if isinstance(job, HorizonJob):
        return run_horizon_job(job)
    rows, certificate = run_job(job)
    return {job.product: rows}, certificate


def run_job(job: ClearingJob | HorizonJob) -> tuple[Rows, bytes]:
    """Solve one slot (in a worker process); return (settlements, certificate bytes).

    The settlements are those of ``job.product`` (``clear_job`` gives every product's).

    Raises:
        ClearingError: the case cannot be cleared, or its own certificate fails.
    """
    if isinstance(job, HorizonJob):
        rows, certificate_bytes = run_horizon_job(job)
        return rows[job.product], certificate_bytes
    from clearing import (
        Case,
        ClearingError,
        certificate_from_plain,
        certificate_to_plain,
        check_certificate,
        clear,
    )

    case = Case.from_dict(job.case)
    result = clear(case, job.model, line_limits=job.line_limits)
    certificate_bytes = encode(certificate_to_plain(result.certificate))
    # from here on, exactly what a replica will decode from the ledger
    certificate = certificate_from_plain(decode(certificate_bytes, max_size=len(certificate_bytes)))  # type: ignore[arg-type]
    report = check_certificate(case, certificate, model=job.model)
    if not report.ok:
        msg = f"the clearing's own certificate fails: {report.failures}"
        raise ClearingError(msg)
    return settlement_rows(case, certificate, job.accounts, job.product), certificate_bytes


def check_published(state: ExchangeState, payload: txn.PublishClearing) -> str | None:
    """Check a published clearing against the replica's state; None if it is valid.

    The certificate must be optimal for the slot's case under the chain's
    tariff (``clearing.check_certificate``, no solver), and the settlements
    must be exactly the ones its solution rounds to.
    """
    from clearing import Case, ClearingError, certificate_from_plain, check_certificate
    from ledger.errors import LedgerError

    if gate_plan.needs_horizon(state, payload.product, payload.slot):
        return _check_horizon(state, payload)
    try:
        job = job_from_state(state, payload.product, payload.slot, "basic")
        assert isinstance(job, ClearingJob)
        case = Case.from_dict(job.case)
        plain = decode(payload.certificate, max_size=len(payload.certificate))
        certificate = certificate_from_plain(plain)  # type: ignore[arg-type]
        # model=: the options (alpha, beta per peer) must be the chain's tariff
        if (payload.product, payload.slot) in state.slot_modes:
            # a slot the DSO ran in a mode: its reference is fixed by the mode
            want, limits = slot_reference(state, payload.product, payload.slot, certificate.model)
            if certificate.model != want or certificate.spec.line_limits != limits:
                return f"the slot's mode asks for the {want} model (line limits {limits})"
        report = check_certificate(case, certificate, model=certificate.model)
        if not report.ok:
            return "; ".join(report.failures) or "residuals above tolerance"
        rows = settlement_rows(case, certificate, job.accounts, payload.product)
    except (ClearingError, LedgerError, ValueError, KeyError) as exc:
        return f"{type(exc).__name__}: {exc}"
    if tuple(payload.settlements) != rows:
        return "settlements differ from the certified solution's rounding"
    return None


def _check_horizon(state: ExchangeState, payload: txn.PublishClearing) -> str | None:
    """``check_published`` for a slot cleared in the horizon form."""
    from ledger.errors import LedgerError

    product, slot = payload.product, payload.slot
    key = (gate_plan.ELECTRICITY, slot) if product == gate_plan.HEAT else (product, slot)
    try:
        plain = decode(payload.certificate, max_size=len(payload.certificate))
    except LedgerError as exc:
        return f"{type(exc).__name__}: {exc}"
    # the model the operator chose (the certificate's third item) unless the slot fixes it
    model = plain[2] if isinstance(plain, list) and len(plain) > 2 else ""
    want, limits = horizon_reference(state, product, slot, model if isinstance(model, str) else "")
    return check_horizon_published(
        state, payload, (want, limits if key in state.slot_modes else None)
    )


def curve_for_peer(peer: Any, slot: int, *, product: str = "electricity") -> txn.DeclareCurve:
    """The ``DeclareCurve`` that ``job_from_state`` maps back onto ``peer`` (a ``clearing.Peer``).

    The inverse of the unit mapping above, for scripts (and the demo) that
    start from a clearing case: a, b, c rounded to milli-ticks/kWh², ticks/kWh
    and tick*Wh, the bounds to Wh.
    """
    curve = CHAIN_UNITS.curve_to_ledger(peer.a, peer.b, peer.c, peer.p_min, peer.p_max)
    return txn.DeclareCurve(product, slot, *curve)


def network_for_case(case: Any) -> txn.SetNetwork:
    """The ``SetNetwork`` of a ``clearing.Case``'s feeder (peers' buses come from registration)."""
    network = dict(case.network.to_dict())
    network.pop("peer_bus", None)
    return txn.SetNetwork(json.dumps(network, sort_keys=True))
