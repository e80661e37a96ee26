"""The ordering hint of the horizon QP: which stored quantities separate the slots.

Clarabel orders the KKT system with approximate minimum degree (AMD) before
factoring it. The horizon's graph is a mesh of peers x slots (peers trade
within a slot; each peer's stores link its slots), and AMD, a local rule,
leaves a separator along the peers that spans every slot, so the factor's
fill and work grow faster than T. :func:`ordering_hint` names pairs of
variables to declare as explicit zeros in the Hessian, which steers AMD to
a nested dissection in time without changing the QP (docs/assets-and-horizon.md).
"""

from __future__ import annotations

import numpy as np

from clearing.horizon_problem import HorizonProblem, IntArray

_STORES = ("soc", "temperature", "gas")


def state_columns(problem: HorizonProblem, t: int) -> IntArray:
    """The stored quantities at the end of slot ``t``: what carries a slot into the next.

    Batteries' and EVs' state of charge (an EV only while plugged in), rooms'
    temperatures and gas stores. Every coupling between slots runs through
    them except ramp limits, which tie a peer's own power to its previous slot.
    """
    cols: list[int] = []
    for ix in problem.assets.values():
        for var in _STORES:
            if var not in ix:
                continue
            stay = ix.get("slots")
            if stay is None:
                cols.append(int(ix[var][t]))
            else:
                at = np.flatnonzero(stay == t)
                if at.size:
                    cols.append(int(ix[var][at[0]]))
    return np.array(sorted(cols), dtype=np.int64)


def stores_are_meshed(problem: HorizonProblem) -> bool:
    """Whether more than half of the peers with stores (and at least two) trade with another one."""
    index = {name: i for i, name in enumerate(problem.names)}
    holders = np.zeros(len(problem.names), dtype=np.bool_)
    for (peer, _asset), ix in problem.assets.items():
        if any(var in ix for var in _STORES):
            holders[index[peer]] = True
    both = holders[problem.e_src] & holders[problem.e_dst]
    linked = np.zeros(len(problem.names), dtype=np.bool_)
    linked[problem.e_src[both]] = True
    linked[problem.e_dst[both]] = True
    count = int(linked.sum())
    return count >= 2 and 2 * count > int(holders.sum())


def ordering_hint(problem: HorizonProblem, every: int | None) -> tuple[IntArray, IntArray]:
    """Pairs ``(row, col)``, ``row < col``, to declare as explicit zeros in the Hessian.

    Why: Clarabel orders the KKT system with approximate minimum degree before
    factoring it, and the horizon's graph is a mesh (peers trading within a
    slot, each peer's stores linking its slots). Minimum degree, a local rule,
    leaves a separator along the peers that spans every slot, so the fill and
    the work per iteration grow faster than T. Declaring the stored quantities
    at the end of every ``every``-th slot as one dense block (explicit zeros:
    the QP and its optimum are unchanged, only the sparsity pattern the
    ordering sees) makes their degree high, so the ordering eliminates each
    block of slots first and these time separators last: a nested dissection
    in time, with fronts bounded by the stores of two separators whatever T.

    The mesh needs trades between the peers that hold the stores: when at most
    half of them (or fewer than two) trade with another store holder, as when
    every household trades with the grid alone, each peer's slots form a
    chain that minimum degree eliminates with little fill, and the hint would
    only add work, so it is left out (:func:`stores_are_meshed`).

    Returns empty arrays when ``every`` is ``None``, ``0`` or ``>= T``, or
    when the stores are not meshed.
    """
    T = problem.slots
    if not every or every < 1 or not stores_are_meshed(problem):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    rows: list[IntArray] = []
    cols: list[IntArray] = []
    for t in range(every - 1, T - 1, every):
        block = state_columns(problem, t)
        r, c = np.triu_indices(block.size, 1)
        rows.append(block[r])
        cols.append(block[c])
    if not rows:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(rows), np.concatenate(cols)
