"""The clearing QP as plain arrays: what the solver model and the certificate share.

:func:`build_problem` turns a :class:`~clearing.case.Case` and a
:class:`ModelSpec` into :class:`ProblemData`. Only producer-consumer pairs are
variables: a producer-producer pair has ``P_ij >= 0`` and ``P_ji = -P_ij >= 0``
(12.8, 12.10), so it is zero anyway, and the same holds for consumers.

The QP (electricity; heat has the same shape without penalties)::

    min  Σ_i ½ a_i P_i² + b_i P_i + c_i                          (12.6)
       + Σ_k wp_k p_k - wc_k q_k                                 (12.12, 12.16)
       + Σ_k dp_k p_k - dc_k q_k                                 (pair penalties)
       + ε/2 Σ_k (p_k² + q_k²)                                   (tie-break)
    s.t. P_i = Σ_{k: s_k = i} p_k + Σ_{k: d_k = i} q_k   : π_i   (12.1)
         p_k + q_k = 0                                   : τ_k   (12.10)
         p_min <= P <= p_max                             : lo, up (12.7)
         p >= 0, q <= 0                                  : sp, sq (12.8, 12.9)
         -cap <= F P <= cap  (optional hard limits)      : fl, fu
         G_p P_u + G_h H_u <= g  (CHP units u)           : κ     (12.24-12.26)

where pair ``k`` is producer ``s_k`` selling ``p_k = P_{s_k d_k}`` to consumer
``d_k`` whose side is ``q_k = P_{d_k s_k}``; ``wp_k = α_s R_k + β_s θ_k`` and
``wc_k = α_d R_k + β_d θ_k`` (S^R = S^C = +1 for producers, -1 for consumers,
so both sides pay ``w |P_ij|``). ``dp_k = c_{s_k d_k}`` and ``dc_k = c_{d_k
s_k}`` are the two sides' pair penalties (product differentiation,
``Peer.pair_penalties``): the same shape as the grid terms, but a preference,
not a charge, so they are kept apart from ``wp, wc`` (which settlement pays
to the grid operator) and enter the QP, its KKT check and the trade prices
τ only, through ``kp = wp + dp`` and ``kc = wc + dc``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from clearing.case import Case, Peer
from clearing.errors import EmptyMarket
from clearing.spec import ModelSpec

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True, eq=False)
class ProblemData:
    """The QP of one clearing as arrays (see the module docstring).

    Electricity pairs are ``(e_src[k], e_dst[k])`` = (producer, consumer)
    peer indices; heat pairs ``(h_src, h_dst)`` likewise. CHP rows: unit
    ``chp_peer[r]`` has ``chp_gp[r] P + chp_gh[r] H <= chp_g[r]``.
    """

    names: tuple[str, ...]
    a: FloatArray
    b: FloatArray
    c: FloatArray
    p_min: FloatArray
    p_max: FloatArray
    e_src: IntArray
    e_dst: IntArray
    r_pair: FloatArray  # R_ij of each pair, ohm
    theta: BoolArray  # θ_ij of each pair
    wp: FloatArray  # producer-side penalty per kW
    wc: FloatArray  # consumer-side penalty per kW
    heat: bool
    ah: FloatArray
    bh: FloatArray
    ch: FloatArray
    h_min: FloatArray
    h_max: FloatArray
    h_src: IntArray
    h_dst: IntArray
    chp_peer: IntArray
    chp_gp: FloatArray
    chp_gh: FloatArray
    chp_g: FloatArray
    flow: FloatArray  # F, lines x peers: flows = F @ P
    peer_line: IntArray  # line feeding each peer's bus (-1 at the root)
    line_parent: IntArray  # line feeding each line's upstream bus (-1 below the root)
    limited: IntArray  # indices of lines with hard limits (finite capacity, line_limits on)
    cap: FloatArray  # capacities of the limited lines
    eps: float
    dp: FloatArray  # producer-side pair penalty per kW (product differentiation)
    dc: FloatArray  # consumer-side pair penalty per kW

    @property
    def n(self) -> int:
        """Number of peers."""
        return len(self.names)

    @property
    def kp(self) -> FloatArray:
        """Producer-side linear cost per kW of each pair in the objective: ``wp + dp``."""
        return np.asarray(self.wp + self.dp, dtype=np.float64)

    @property
    def kc(self) -> FloatArray:
        """Consumer-side linear cost per kW of each pair in the objective: ``wc + dc``."""
        return np.asarray(self.wc + self.dc, dtype=np.float64)


def _consent(
    case: Case, sellers: BoolArray, buyers: BoolArray
) -> tuple[IntArray, IntArray, IntArray, IntArray]:
    """Split the allowed (seller, buyer) pairs into a product and a list.

    Returns ``(open_sellers, open_buyers, src, dst)``: every open seller (no
    trading set) with every open buyer, plus the pairs ``(src[k], dst[k])``
    with at least one side restricted whose two sets consent. Time and
    memory are linear in peers plus the trading sets' lengths, never peers²
    (a market of 100,000 peers with 20 partners each stays small).
    """
    peers = case.peers
    restricted = np.array([p.partners is not None for p in peers], dtype=np.bool_)
    open_s = np.flatnonzero(sellers & ~restricted).astype(np.int64)
    open_b = np.flatnonzero(buyers & ~restricted).astype(np.int64)
    partner_ix = {
        i: {case.index(x) for x in p.partners}
        for i, p in enumerate(peers)
        if p.partners is not None and (sellers[i] or buyers[i])
    }
    src: list[int] = []
    dst: list[int] = []
    for i, allowed in partner_ix.items():
        if buyers[i]:  # open sellers this restricted buyer lists
            for j in sorted(allowed):
                if sellers[j] and not restricted[j]:
                    src.append(j)
                    dst.append(i)
        if sellers[i]:  # buyers this restricted seller lists, if they consent
            for j in sorted(allowed):
                if buyers[j] and (not restricted[j] or i in partner_ix[j]):
                    src.append(i)
                    dst.append(j)
    return open_s, open_b, np.array(src, dtype=np.int64), np.array(dst, dtype=np.int64)


def _pairs(case: Case, sellers: BoolArray, buyers: BoolArray) -> tuple[IntArray, IntArray]:
    """Return (seller, buyer) index pairs allowed by both trading sets, sorted."""
    open_s, open_b, src, dst = _consent(case, sellers, buyers)
    all_src = np.concatenate([np.repeat(open_s, open_b.size), src])
    all_dst = np.concatenate([np.tile(open_b, open_s.size), dst])
    order = np.lexsort((all_dst, all_src))  # by seller, then buyer (case order)
    return all_src[order].astype(np.int64), all_dst[order].astype(np.int64)


def count_pairs(case: Case, spec: ModelSpec) -> tuple[int, int]:
    """Return how many electricity and heat pair variables ``build_problem`` would make.

    Linear in peers plus trading sets: it runs before anything of the
    problem's size is allocated (see :mod:`clearing.memory`).
    """
    peers = case.peers
    producer = np.array([p.is_producer for p in peers], dtype=np.bool_)
    open_s, open_b, src, _ = _consent(case, producer, ~producer)
    electricity = open_s.size * open_b.size + src.size
    heat = 0
    if spec.heat:
        has_heat = np.array([p.heat is not None for p in peers], dtype=np.bool_)
        h_max = np.array([p.heat.h_max if p.heat is not None else 0.0 for p in peers])
        sellers = producer & has_heat & (h_max > 0)
        open_s, open_b, src, _ = _consent(case, sellers, ~producer & has_heat)
        heat = open_s.size * open_b.size + src.size
    return int(electricity), int(heat)


def chp_halfplanes(
    peers: Sequence[Peer],
) -> tuple[np.ndarray, FloatArray, FloatArray, FloatArray]:
    """Every CHP region's half-planes ``gp P + gh H <= g`` (12.24-12.26), with their peer."""
    rows = [(i, row) for i, p in enumerate(peers) if p.chp for row in p.chp.halfplanes()]
    return (
        np.array([i for i, _ in rows], dtype=np.int64),
        np.array([r[0] for _, r in rows], dtype=np.float64),
        np.array([r[1] for _, r in rows], dtype=np.float64),
        np.array([r[2] for _, r in rows], dtype=np.float64),
    )


def pair_penalties(case: Case, src: IntArray, dst: IntArray) -> tuple[FloatArray, FloatArray]:
    """Each pair's penalties ``(dp, dc)``: c_{src,dst} for the seller, c_{dst,src} for the buyer.

    Pairs must be sorted by (src, dst) (as :func:`_pairs` returns them). A
    penalty towards a peer the pair list does not hold (same role, or
    outside a trading set) has no trade to weigh and is skipped. Linear in
    pairs plus penalties (one binary search per penalty).
    """
    m = src.size
    dp = np.zeros(m, dtype=np.float64)
    dc = np.zeros(m, dtype=np.float64)
    if m == 0 or not case.has_pair_penalties:
        return dp, dc
    n = len(case.peers)
    keys = src * n + dst  # sorted: pairs are ordered by seller, then buyer
    for i, peer in enumerate(case.peers):
        for other, cost in peer.pair_penalties:
            j = case.index(other)
            key = i * n + j if peer.is_producer else j * n + i
            k = int(np.searchsorted(keys, key))
            if k < m and keys[k] == key:
                (dp if peer.is_producer else dc)[k] += cost
    return dp, dc


def build_problem(case: Case, spec: ModelSpec) -> ProblemData:
    """Build the QP arrays of ``case`` under ``spec``.

    Raises:
        EmptyMarket: If no trade is allowed.
        InvalidNetwork: If ``spec.penalised`` names an unknown line.
    """
    peers = case.peers
    net = case.network
    n = len(peers)
    producer = np.array([p.is_producer for p in peers], dtype=np.bool_)
    e_src, e_dst = _pairs(case, producer, ~producer)
    if e_src.size == 0:
        msg = "empty market: no producer-consumer pair is allowed by the trading sets"
        raise EmptyMarket(msg)
    bus = net.bus_indices(net.bus_of(p.name) for p in peers)
    r_pair = net.pair_resistance(bus[e_src], bus[e_dst])
    theta = net.pair_crosses(bus[e_src], bus[e_dst], net.line_indices(spec.penalised))
    alpha = np.asarray(spec.alpha, dtype=np.float64)
    beta = np.asarray(spec.beta, dtype=np.float64)
    wp = alpha[e_src] * r_pair + beta[e_src] * theta
    wc = alpha[e_dst] * r_pair + beta[e_dst] * theta
    dp, dc = pair_penalties(case, e_src, e_dst)

    zeros = np.zeros(n, dtype=np.float64)
    ah, bh, ch, h_min, h_max = zeros.copy(), zeros.copy(), zeros.copy(), zeros.copy(), zeros.copy()
    h_src = h_dst = chp_peer = np.zeros(0, dtype=np.int64)
    gp = gh = g = np.zeros(0, dtype=np.float64)
    if spec.heat:
        for i, p in enumerate(peers):
            if p.heat is not None:
                ah[i], bh[i], ch[i] = p.heat.a, p.heat.b, p.heat.c
                h_min[i], h_max[i] = p.heat.h_min, p.heat.h_max
        has_heat = np.array([p.heat is not None for p in peers], dtype=np.bool_)
        h_src, h_dst = _pairs(case, producer & has_heat & (h_max > 0), ~producer & has_heat)
        chp_peer, gp, gh, g = chp_halfplanes(peers)
    caps = net.capacities()
    limited = np.flatnonzero(np.isfinite(caps)) if spec.line_limits else np.zeros(0, np.int64)
    return ProblemData(
        names=case.names,
        a=np.array([p.a for p in peers], dtype=np.float64),
        b=np.array([p.b for p in peers], dtype=np.float64),
        c=np.array([p.c for p in peers], dtype=np.float64),
        p_min=np.array([p.p_min for p in peers], dtype=np.float64),
        p_max=np.array([p.p_max for p in peers], dtype=np.float64),
        e_src=e_src,
        e_dst=e_dst,
        r_pair=r_pair,
        theta=theta,
        wp=np.asarray(wp, dtype=np.float64),
        wc=np.asarray(wc, dtype=np.float64),
        heat=spec.heat,
        ah=ah,
        bh=bh,
        ch=ch,
        h_min=h_min,
        h_max=h_max,
        h_src=h_src,
        h_dst=h_dst,
        chp_peer=chp_peer,
        chp_gp=gp,
        chp_gh=gh,
        chp_g=g,
        flow=net.flow_matrix(bus),
        peer_line=net.lines_above(bus),
        line_parent=net.lines_above_lines(),
        limited=limited.astype(np.int64),
        cap=caps[limited],
        eps=float(spec.regularisation),
        dp=dp,
        dc=dc,
    )


def structure_key(data: ProblemData) -> tuple[object, ...]:
    """Return what a compiled solver model depends on (sizes and index arrays).

    Two problems with equal keys differ only in numbers, so one compiled
    model (cvxpy Parameters) serves both.
    """
    return (
        data.n,
        data.e_src.tobytes(),
        data.e_dst.tobytes(),
        data.heat,
        data.h_src.tobytes(),
        data.h_dst.tobytes(),
        data.chp_peer.tobytes(),
        data.limited.tobytes(),
        data.flow.tobytes(),
        data.peer_line.tobytes(),
        data.line_parent.tobytes(),
    )
