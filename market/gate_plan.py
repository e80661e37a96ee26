"""Which clearing a closed slot gets: electricity alone, or electricity and heat together.

Pure rules on the state, with no solver import, so the node can plan its
clearings (and its gate closures) without loading the solver stack.

Heat and electricity of one slot index are the same delivery period. The
chapter's heat model (12.6.4, 12.27-12.38) couples them: a CHP unit's power
and heat must lie in one polygon (12.24-12.26), so they are cleared in one
QP. The rules:

- A slot **has heat** when some peer declared a heat curve
  (``DeclareCurve`` with product ``"heat"``) or a CHP region
  (``DeclareChp``) for it. Heat data close with the slot's first gate (the
  state machine refuses them once either product's gate is closed), so
  whether a slot has heat is fixed before any of its clearings is built.
- A slot with heat is cleared **jointly**: once both its electricity and
  heat gates are closed, one certified clearing covers both products; it is
  published as two ``PublishClearing`` transactions, one per product (the
  ledger keeps settlements per (product, slot)), carrying the same
  certificate and each its product's settlements.
- A slot is cleared in the **horizon form** (the multi-period clearing at
  T = 1, ``market.gate_horizon``) when it has heat or when a peer's net
  injection may take either sign: a prosumer whose curve spans zero
  (``q_min < 0 < q_max``) or a grid that may buy (``q_min < 0``). Every
  other slot keeps the single-slot clearing (``market.gate_clearing``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from market.state import ExchangeState

ELECTRICITY = "electricity"
HEAT = "heat"


def has_heat(state: ExchangeState, slot: int) -> bool:
    """True when a heat curve or a CHP region was declared for ``slot``."""
    return bool(state.curves.get((HEAT, slot))) or bool(state.chp.get(slot))


def spans_zero(role: str, q_min: int, q_max: int) -> bool:
    """True for a curve whose net injection may take either sign in the clearing.

    >>> spans_zero("prosumer", -5, 5), spans_zero("prosumer", 0, 5), spans_zero("grid", -5, 0)
    (True, False, True)
    """
    if role == "prosumer":
        return q_min < 0 < q_max
    return role == "grid" and q_min < 0


def needs_horizon(state: ExchangeState, product: str, slot: int) -> bool:
    """True when (product, slot) is cleared in the horizon form (see the module docstring)."""
    if product == HEAT or has_heat(state, slot):
        return True
    curves = state.curves.get((product, slot), {})
    return any(
        spans_zero(state.peers[account].role, q_min, q_max)
        for account, (_a, _b, _c, q_min, q_max) in curves.items()
    )


def products_cleared_with(state: ExchangeState, product: str, slot: int) -> tuple[str, ...]:
    """The products one clearing of (product, slot) settles, in publication order."""
    if product == HEAT or (product == ELECTRICITY and has_heat(state, slot)):
        return (ELECTRICITY, HEAT)
    return (product,)


def ready_to_clear(state: ExchangeState, product: str, slot: int) -> bool:
    """True when every gate the clearing of (product, slot) depends on is closed."""
    return all((p, slot) in state.closed for p in products_cleared_with(state, product, slot))


def has_inputs(state: ExchangeState, product: str, slot: int) -> bool:
    """True when the clearing of (product, slot) has anything to clear."""
    products = products_cleared_with(state, product, slot)
    if HEAT in products and state.chp.get(slot):
        return True
    return any(state.curves.get((p, slot)) for p in products)


def valid_chp_points(points: tuple[int, ...]) -> bool:
    """True when ``(A_p, A_h, B_p, B_h, C_p, C_h, D_p, D_h)`` is a CHP region the clearing takes.

    Eight non-negative integers (Wh per slot) whose corners A, B, C, D form
    a strictly convex quadrilateral in this order (12.24-12.26, figure
    12.9): checked with exact integer cross products, so every replica
    agrees.

    >>> valid_chp_points((247, 0, 215, 180, 81, 104, 98, 0))
    True
    >>> valid_chp_points((0, 0, 10, 10, 10, 0, 0, 10))  # the edges cross
    False
    """
    if len(points) != 8 or any(v < 0 for v in points):
        return False
    corners = [(points[2 * k], points[2 * k + 1]) for k in range(4)]
    turns = []
    for k in range(4):
        (p0, h0), (p1, h1), (p2, h2) = corners[k], corners[(k + 1) % 4], corners[(k + 2) % 4]
        turns.append((p1 - p0) * (h2 - h1) - (h1 - h0) * (p2 - p1))
    return all(t > 0 for t in turns) or all(t < 0 for t in turns)
