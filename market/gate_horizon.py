"""Gate clearing in the horizon form: prosumers, and heat with CHP units, on the chain.

The single-slot clearing (``market.gate_clearing``) fixes every peer's role
per slot and clears electricity alone. A slot whose clearing needs more
(``market.gate_plan.needs_horizon``: a prosumer or grid whose net injection
may take either sign, or heat curves and CHP regions) is cleared by the
multi-period clearing at T = 1 (``clearing.clear_horizon``), which has
prosumers (chapter sign rules per direction: a trade i -> j is P_ij >= 0
with P_ji = -P_ij) and the heat model with the CHP polygon (12.24-12.38);
with T = 1 and no assets it is the single-slot QP.

Mapping of the ledger's data (the horizon case is in the ledger's integer
units, so the curves go in unchanged):

- slot: one slot of 3600 s (a slot's Wh read as W, as the single-slot case
  reads its kWh as kW), the chain's tick;
- signals: ``SetTariff``'s alpha_milli and beta_milli in force at the
  electricity gate's ``CloseSlot`` (the network too);
- peers: every account with an electricity or heat curve or a CHP region
  for the slot, in account order, named as in ``gate_clearing``; its kind
  is its registered role, a prosumer narrowed to a producer when all its
  curves have ``q_min >= 0`` and to a consumer when all have ``q_max <= 0``
  (and it has no CHP unit);
- curves: ``DeclareCurve`` as ``SlotCurve`` (electricity and heat); a peer
  without an electricity curve gets a zero one, bounds [0, 0], except a CHP
  unit's owner, whose power is free within [0, max P of its polygon] (as the
  clearing gives a CHP unit without a heat curve free heat within
  [0, max H]);
- CHP: ``DeclareChp``'s corners (Wh per slot = W) as a ``ChpUnit``;
- model: a slot with heat is cleared with the heat model (12.27-12.38, with
  the chain's alpha and beta terms); otherwise the slot's reference model
  (``gate_clearing.slot_reference``). With beta > 0 and no hard line limits
  the lines the clearing overloads are penalised round after round (12.6.3)
  until no new line is overloaded; beta itself is never scaled, so the
  certificate's options are exactly the chain's.

A slot the DSO runs with preferences (mode 1) carries the orders' partner
sets and pair penalties (``market.preference_reference.slot_terms``, the
same terms the single-slot reference gets) on its horizon peers, so a
spanning prosumer does not switch the preferences off. Preferences are per
product: in a joint heat and power slot the electricity slot's terms go on
the electricity trades only (``HorizonPeer.partners``, ``pair_penalties``)
and the heat slot's terms, when the heat slot is itself in mode 1, on the
heat trades (``HorizonPeer.heat_terms``); a peer with power terms and no
heat terms trades heat with anyone (a green-only power buyer has not
refused its CHP neighbour's heat). In either product the participants are
the accounts with a curve for it and the slot's CHP owners
(``preference_reference.slot_participants``; docs/modes.md).

The certificate on the ledger is the horizon's plain form
(``clearing.horizon_certificate_to_plain``); settlements are rounded from
it by ``clearing.horizon_settle`` (one rounding rule per trade, as for a
single slot). Each product's rows list the peers that declared something
for that product (a CHP unit counts for both).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from ledger.codec import decode, encode
from market import gate_plan
from market import transactions as txn
from market.preference_reference import slot_terms
from market.units import Units

if TYPE_CHECKING:
    from market.state import ExchangeState

Rows = tuple[tuple[bytes, int, int], ...]
SLOT_SECONDS = 3600
_BETA_MODELS = ("congestion", "loss+congestion", "heat")


@dataclass(frozen=True, slots=True)
class HorizonJob:
    """Everything a worker process needs to clear one slot in the horizon form (picklable)."""

    product: str  # the product whose gate closure asked for it
    slot: int
    products: tuple[str, ...]  # the products the clearing settles, in publication order
    model: str
    line_limits: bool
    case: Any  # a clearing.HorizonCase of one slot
    accounts: dict[str, bytes]  # peer name in the case -> account id
    members: dict[str, tuple[str, ...]]  # product -> the peers whose rows are published


def _kind(role: str, curves: list[tuple[int, int, int, int, int]], chp: bool) -> str:
    """A registered role as the horizon's peer kind (see the module docstring)."""
    if role != "prosumer":
        return role
    if all(c[3] >= 0 for c in curves):
        return "producer"
    if all(c[4] <= 0 for c in curves) and not chp:
        return "consumer"
    return "prosumer"


def horizon_job_from_state(
    state: ExchangeState, product: str, slot: int, model: str, line_limits: bool
) -> HorizonJob:
    """Build the horizon-form clearing job of (product, slot) from the state.

    Raises:
        ValueError: No network, nothing to clear, or data the clearing refuses
            (its ``ClearingError`` message, as ``job_from_state`` raises for
            a case it cannot build).
    """
    from clearing import ClearingError, HorizonCase, HorizonPeer, SlotCurve, SlotSignals
    from clearing.assets import ChpUnit
    from clearing.network import network_from_dict

    products = gate_plan.products_cleared_with(state, product, slot)
    joint = gate_plan.HEAT in products
    # the electricity gate's terms: the network and tariff the power flows see
    terms_key = (gate_plan.ELECTRICITY, slot) if joint else (product, slot)
    (alpha, beta), network_json = state.gate_terms.get(
        terms_key, (state.tariff, state.network_json)
    )
    if not network_json:
        msg = "no network published (SetNetwork)"
        raise ValueError(msg)
    power = state.curves.get((products[0], slot), {})
    heat = state.curves.get((gate_plan.HEAT, slot), {}) if joint else {}
    chps = state.chp.get(slot, {}) if joint else {}
    everyone = sorted(set(power) | set(heat) | set(chps))
    if not everyone:
        msg = f"nothing to clear in slot {slot}: no curve declared"
        raise ValueError(msg)
    taken: set[str] = set()
    names: dict[bytes, str] = {}
    peer_bus: dict[str, str] = {}
    peers = []
    members: dict[str, list[str]] = {p: [] for p in products}
    try:
        for account in everyone:
            peer = state.peers[account]
            name = peer.name if peer.name not in taken else f"{peer.name}#{account.hex()[:8]}"
            taken.add(name)
            names[account] = name
            peer_bus[name] = peer.bus
            points = chps.get(account)
            own = power.get(account)
            if own is None and points is not None:
                own = (0, 0, 0, 0, max(points[0::2]))
            elif own is None:
                own = (0, 0, 0, 0, 0)
            heat_curve = heat.get(account)
            declared = [own] if heat_curve is None else [own, heat_curve]
            assets: tuple[ChpUnit, ...] = ()
            if points is not None:
                a, b, c, d = ((points[2 * k], points[2 * k + 1]) for k in range(4))
                assets = (ChpUnit("chp", a, b, c, d),)
            if account in power or points is not None:
                members[products[0]].append(name)
            if joint and (heat_curve is not None or points is not None):
                members[gate_plan.HEAT].append(name)
            peers.append(
                HorizonPeer(
                    name,
                    _kind(peer.role, declared, points is not None),  # type: ignore[arg-type]
                    (SlotCurve(*own),),
                    heat=None if heat_curve is None else (SlotCurve(*heat_curve),),
                    assets=assets,
                )
            )
        peers = _with_preferences(state, products, slot, peers, names)
        network = network_from_dict({**json.loads(network_json), "peer_bus": peer_bus})
        case = HorizonCase(
            name=f"slot {slot}",
            network=network,
            peers=tuple(peers),
            slots=1,
            slot_seconds=SLOT_SECONDS,
            signals=(SlotSignals(alpha_milli=alpha, beta_milli=beta),),
            tick=Units().tick,
        )
    except ClearingError as exc:
        raise ValueError(str(exc)) from exc
    return HorizonJob(
        product,
        slot,
        products,
        model,
        line_limits,
        case,
        {n: a for a, n in names.items()},
        {p: tuple(m) for p, m in members.items()},
    )


def _with_preferences(
    state: ExchangeState,
    products: tuple[str, ...],
    slot: int,
    peers: list[Any],
    names: dict[bytes, str],
) -> list[Any]:
    """The horizon peers with mode 1's partner sets and premiums, each product its own.

    ``products[0]``'s terms (its slot's orders) go to ``partners`` and
    ``pair_penalties``; in a joint slot the heat slot's terms go to
    ``heat_terms``, and a peer with terms for either product gets heat terms
    (``TradeTerms()``, anyone at no premium, when the heat slot has none for
    it), so its power preferences never bar its heat trades.
    """
    from clearing.horizon_case import TradeTerms

    tick = Units().tick
    power = slot_terms(state, products[0], slot, names, tick)
    heat = slot_terms(state, gate_plan.HEAT, slot, names, tick) if len(products) > 1 else {}
    out = []
    for hp in peers:
        if hp.name in power:
            partners, penalties = power[hp.name]
            hp = replace(hp, partners=partners, pair_penalties=penalties)
        if hp.name in power or hp.name in heat:
            hp = replace(hp, heat_terms=TradeTerms(*heat.get(hp.name, (None, ()))))
        out.append(hp)
    return out


def horizon_settlement_rows(job: HorizonJob, certificate: Any) -> dict[str, Rows]:
    """Each product's ledger settlements of a certified horizon clearing (one slot).

    Raises:
        ClearingError: The certificate does not fit the case, a rounded slot
            does not balance, or a peer outside a product's members would be
            settled in it (a broken invariant: its bounds are zero there).
    """
    from clearing import ClearingError
    from clearing.horizon_settle import settle_horizon_certificate

    (settlement,) = settle_horizon_certificate(job.case, certificate)
    out: dict[str, Rows] = {}
    for product in job.products:
        members = set(job.members[product])
        rows = []
        for p in settlement.peers:
            if p.product != product:
                continue
            if p.peer in members:
                rows.append((job.accounts[p.peer], p.energy_wh, -p.payment - p.penalty))
            elif p.energy_wh or p.payment or p.penalty:
                msg = f"{p.peer!r} declared nothing for {product} but would be settled in it"
                raise ClearingError(msg)
        out[product] = tuple(rows)
    return out


def _solve(job: HorizonJob) -> Any:
    """Clear the job's case: with beta, penalise overloaded lines until none is new (12.6.3)."""
    from clearing import clear_horizon

    case = job.case
    result = clear_horizon(case, job.model, line_limits=job.line_limits, penalised=((),))
    if job.line_limits or job.model not in _BETA_MODELS or case.signal(0).beta_milli == 0:
        return result
    order = [line.name for line in case.network.lines]
    sigma: tuple[str, ...] = ()
    while result.overloaded[0]:
        grown = tuple(x for x in order if x in set(sigma) | set(result.overloaded[0]))
        if grown == sigma:
            break  # beta at the chain's value cannot relieve more: keep this clearing
        sigma = grown
        result = clear_horizon(case, job.model, penalised=(sigma,))
    return result


def run_horizon_job(job: HorizonJob) -> tuple[dict[str, Rows], bytes]:
    """Solve one slot in the horizon form; return (rows per product, certificate bytes).

    Raises:
        ClearingError: The case cannot be cleared, or its own certificate fails.
    """
    from clearing import (
        ClearingError,
        check_horizon_certificate,
        horizon_certificate_from_plain,
        horizon_certificate_to_plain,
    )

    result = _solve(job)
    certificate_bytes = encode(horizon_certificate_to_plain(result.certificate))
    # from here on, exactly what a replica will decode from the ledger
    plain = decode(certificate_bytes, max_size=len(certificate_bytes))
    certificate = horizon_certificate_from_plain(plain)  # type: ignore[arg-type]
    report = check_horizon_certificate(job.case, certificate)
    if not report.ok:
        msg = f"the clearing's own certificate fails: {report.failures}"
        raise ClearingError(msg)
    return horizon_settlement_rows(job, certificate), certificate_bytes


def check_horizon_published(
    state: ExchangeState,
    payload: txn.PublishClearing,
    reference: tuple[str, bool | None],
) -> str | None:
    """Check a published horizon-form clearing against the replica's state; None if valid.

    Args:
        state: The replica's state when the ``PublishClearing`` is applied.
        payload: The published clearing.
        reference: The model the slot must be cleared with and the hard line
            limits its mode asks for (``None``: the operator's choice).
    """
    from clearing import ClearingError, check_horizon_certificate, horizon_certificate_from_plain
    from ledger.errors import LedgerError

    product, slot = payload.product, payload.slot
    if not gate_plan.ready_to_clear(state, product, slot):
        products = " and ".join(gate_plan.products_cleared_with(state, product, slot))
        return f"slot {slot} is cleared once its {products} gates are all closed"
    want_model, want_limits = reference
    try:
        plain = decode(payload.certificate, max_size=len(payload.certificate))
        certificate = horizon_certificate_from_plain(plain)  # type: ignore[arg-type]
        spec = certificate.spec
        if spec.model.value != want_model:
            return f"slot {slot} is cleared with the {want_model} model, not {spec.model.value}"
        if want_limits is not None and spec.line_limits != want_limits:
            return f"the slot's mode asks for line limits {want_limits}"
        if spec.beta_scale != 1.0:
            return f"beta is the chain's tariff: beta_scale {spec.beta_scale}, want 1"
        job = horizon_job_from_state(state, product, slot, want_model, spec.line_limits)
        report = check_horizon_certificate(job.case, certificate)
        if not report.ok:
            return "; ".join(report.failures) or "residuals above tolerance"
        rows = horizon_settlement_rows(job, certificate)
    except (ClearingError, LedgerError, ValueError, KeyError) as exc:
        return f"{type(exc).__name__}: {exc}"
    if tuple(payload.settlements) != rows[product]:
        return "settlements differ from the certified solution's rounding"
    return None
