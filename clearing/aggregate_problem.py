"""The aggregated form of an all-pairs clearing QP: peer groups and group-pair blocks.

On a radial feeder R_ij (12.11) and θ_ij (12.15) depend only on the buses of
i and j, so a trade's penalty per kW, ``wp_k + wc_k = (α_s + α_d) R_k +
(β_s + β_d) θ_k``, is the same for every pair whose ends share bus and
tariff. Peers are grouped by (side, bus, α, β); a **block** is one
(seller group, buyer group) pair and carries the total ``x_GH = Σ p_sd``
over its ``|G| |H|`` pairs. When every producer may trade with every
consumer (no partner set restricts a pair), the aggregated QP::

    min  Σ_i ½ a_i P_i² + b_i P_i  +  Σ_GH w_GH x_GH  +  ε Σ_GH x_GH² / (|G| |H|)
    s.t. Σ_{i ∈ G} P_i = Σ_H x_GH         (seller group G)      : π_G
         Σ_{i ∈ H} P_i = -Σ_G x_GH        (buyer group H)       : π_H
         p_min <= P <= p_max                                    : lo, up
         x >= 0                                                 : ρ
         -cap <= F P <= cap   (line_limits)                     : fl, fu
         gp P_u + gh H_u <= g (CHP units; heat blocks likewise) : κ

has the same optimal dispatch ``P`` and prices as the per-pair QP of
:mod:`clearing.problem` up to the tie-break: its ε term is the per-pair term
``ε Σ_k p_k²`` at the even split ``p = x / (|G| |H|)``, the smallest value
any split of ``x`` can give (Cauchy-Schwarz), so the aggregated optimum is a
lower bound of the per-pair one, and any split is an upper bound (see
:mod:`clearing.aggregate`). Heat trades carry no penalty: all heat sellers
form one group and all heat buyers another.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from clearing.case import Case
from clearing.errors import InvalidOption
from clearing.problem import BoolArray, FloatArray, IntArray, chp_halfplanes
from clearing.spec import ModelSpec


class NotAggregable(InvalidOption):
    """Raised when partner sets restrict pairs, so the aggregated form would not be exact."""

    def __init__(self, message: str, *, peers: tuple[str, ...]) -> None:
        super().__init__(message)
        self.peers = peers


def restricting_peers(case: Case) -> tuple[str, ...]:
    """Return the peers that keep the market from being all-pairs and uniform.

    A peer whose partner set leaves out some peer of the other role, or who
    puts a pair penalty on a peer of the other role. Such a set removes
    producer-consumer pairs (a pair needs consent from both sides), so the
    market is not all-pairs. A set that lists every
    peer of the other role restricts nothing. A pair penalty (product
    differentiation) makes the pairs between two groups of buses cost
    different amounts, which the aggregates cannot tell apart.
    """
    producers = {p.name for p in case.peers if p.is_producer}
    consumers = {p.name for p in case.peers if not p.is_producer}
    out = []
    for peer in case.peers:
        others = consumers if peer.is_producer else producers
        penalised = any(c > 0 and x in others for x, c in peer.pair_penalties)
        if penalised or (peer.partners is not None and not others <= set(peer.partners)):
            out.append(peer.name)
    return tuple(out)


def check_all_pairs(case: Case) -> None:
    """Raise :class:`NotAggregable` unless every producer may trade with every consumer."""
    peers = restricting_peers(case)
    if peers:
        shown = ", ".join(repr(p) for p in peers[:5]) + (" ..." if len(peers) > 5 else "")
        msg = (
            f"the aggregated form needs all producer-consumer pairs, but {len(peers)} "
            f"peer(s) restrict their partners or put pair penalties on them ({shown}); "
            "use the per-pair form"
        )
        raise NotAggregable(msg, peers=peers)


@dataclass(frozen=True, slots=True, eq=False)
class Grouping:
    """Peers grouped for one product: groups ``0..sellers-1`` sell, the rest buy.

    Blocks are every (seller group, buyer group), ordered seller-major:
    block ``k = g_s * buyers + (g_d - sellers)``.
    """

    group: IntArray  # (n,) group of each peer, -1 when the peer takes no part
    sellers: int  # number of seller groups
    size: IntArray  # (groups,) peers in each group

    @property
    def groups(self) -> int:
        """Number of groups."""
        return int(self.size.size)

    @property
    def buyers(self) -> int:
        """Number of buyer groups."""
        return self.groups - self.sellers

    @property
    def blocks(self) -> int:
        """Number of blocks (seller group x buyer group)."""
        return self.sellers * self.buyers

    def block_src(self) -> IntArray:
        """Seller group of each block."""
        return np.repeat(np.arange(self.sellers, dtype=np.int64), self.buyers)

    def block_dst(self) -> IntArray:
        """Buyer group of each block."""
        buyers = np.arange(self.sellers, self.groups, dtype=np.int64)
        return np.tile(buyers, self.sellers)

    def block_of(self, seller: IntArray, buyer: IntArray) -> IntArray:
        """Block of each (seller peer, buyer peer) pair."""
        return np.asarray(
            self.group[seller] * self.buyers + (self.group[buyer] - self.sellers), dtype=np.int64
        )

    def pairs(self) -> FloatArray:
        """Number of peer pairs in each block, ``|G| |H|``."""
        src, dst = self.block_src(), self.block_dst()
        return np.asarray(self.size[src] * self.size[dst], dtype=np.float64)


def make_grouping(keys: FloatArray, sell: BoolArray, buy: BoolArray) -> Grouping:
    """Group the peers of ``sell`` and of ``buy`` by equal rows of ``keys``.

    Groups are numbered sellers first, each side in ascending key order, so
    the grouping depends only on the data.
    """
    group = np.full(sell.size, -1, dtype=np.int64)
    sizes: list[IntArray] = [np.zeros(0, dtype=np.int64)]
    counts_per_side: list[int] = []
    for side in (sell, buy):
        members = np.flatnonzero(side)
        count = 0
        if members.size:
            _, inverse, counts = np.unique(
                keys[members], axis=0, return_inverse=True, return_counts=True
            )
            group[members] = sum(counts_per_side) + inverse.reshape(-1)
            sizes.append(counts.astype(np.int64))
            count = int(counts.size)
        counts_per_side.append(count)
    return Grouping(group=group, sellers=counts_per_side[0], size=np.concatenate(sizes))


@dataclass(frozen=True, slots=True, eq=False)
class AggregateProblem:
    """The aggregated QP as arrays (see the module docstring).

    Per-peer arrays are in case order; block arrays in the order of
    :class:`Grouping`. ``w = wp + wc`` is a block's penalty per kW.
    """

    names: tuple[str, ...]
    a: FloatArray
    b: FloatArray
    c: FloatArray
    p_min: FloatArray
    p_max: FloatArray
    elec: Grouping
    group_bus: IntArray  # (groups,) bus index of each electricity group
    wp: FloatArray  # (blocks,) seller-side penalty per kW
    wc: FloatArray  # (blocks,) buyer-side penalty per kW
    heat: bool
    ah: FloatArray
    bh: FloatArray
    ch: FloatArray
    h_min: FloatArray
    h_max: FloatArray
    hgroups: Grouping
    chp_peer: IntArray
    chp_gp: FloatArray
    chp_gh: FloatArray
    chp_g: FloatArray
    flow: FloatArray  # F of the limited lines only (limited x n)
    limited: IntArray
    cap: FloatArray
    eps: float

    @property
    def n(self) -> int:
        """Number of peers."""
        return len(self.names)


def build_aggregate(case: Case, spec: ModelSpec) -> AggregateProblem:
    """Build the aggregated QP of ``case`` under ``spec``.

    Memory and time are linear in the peers plus the blocks (at most
    buses² x tariff classes²), never in the pairs.

    Raises:
        NotAggregable: If partner sets restrict pairs.
        InvalidNetwork: If ``spec.penalised`` names an unknown line.
    """
    check_all_pairs(case)
    peers = case.peers
    net = case.network
    n = len(peers)
    producer = np.array([p.is_producer for p in peers], dtype=np.bool_)
    bus = net.bus_indices(net.bus_of(p.name) for p in peers)
    alpha = np.asarray(spec.alpha, dtype=np.float64)
    beta = np.asarray(spec.beta, dtype=np.float64)
    keys = np.column_stack([bus.astype(np.float64), alpha, beta])
    elec = make_grouping(keys, producer, ~producer)
    # every member of a group has the group's bus, α and β: take the first's
    _, first = np.unique(elec.group, return_index=True)
    group_bus = bus[first]
    src, dst = first[elec.block_src()], first[elec.block_dst()]
    r_blk = net.pair_resistance(bus[src], bus[dst])
    theta = net.pair_crosses(bus[src], bus[dst], net.line_indices(spec.penalised))
    wp = alpha[src] * r_blk + beta[src] * theta
    wc = alpha[dst] * r_blk + beta[dst] * theta

    zeros = np.zeros(n, dtype=np.float64)
    ah, bh, ch, h_min, h_max = zeros.copy(), zeros.copy(), zeros.copy(), zeros.copy(), zeros.copy()
    none = np.zeros(n, dtype=np.bool_)
    hgroups = make_grouping(np.zeros((n, 1)), none, none)
    chp_peer = np.zeros(0, dtype=np.int64)
    gp = gh = g = np.zeros(0, dtype=np.float64)
    if spec.heat:
        for i, p in enumerate(peers):
            if p.heat is not None:
                ah[i], bh[i], ch[i] = p.heat.a, p.heat.b, p.heat.c
                h_min[i], h_max[i] = p.heat.h_min, p.heat.h_max
        has_heat = np.array([p.heat is not None for p in peers], dtype=np.bool_)
        # the same heat pairs as clearing.problem.build_problem
        hgroups = make_grouping(
            np.zeros((n, 1)), producer & has_heat & (h_max > 0), ~producer & has_heat
        )
        chp_peer, gp, gh, g = chp_halfplanes(peers)
    caps = net.capacities()
    limited = np.flatnonzero(np.isfinite(caps)) if spec.line_limits else np.zeros(0, np.int64)
    return AggregateProblem(
        names=case.names,
        a=np.array([p.a for p in peers], dtype=np.float64),
        b=np.array([p.b for p in peers], dtype=np.float64),
        c=np.array([p.c for p in peers], dtype=np.float64),
        p_min=np.array([p.p_min for p in peers], dtype=np.float64),
        p_max=np.array([p.p_max for p in peers], dtype=np.float64),
        elec=elec,
        group_bus=group_bus,
        wp=np.asarray(wp, dtype=np.float64),
        wc=np.asarray(wc, dtype=np.float64),
        heat=spec.heat,
        ah=ah,
        bh=bh,
        ch=ch,
        h_min=h_min,
        h_max=h_max,
        hgroups=hgroups,
        chp_peer=chp_peer,
        chp_gp=gp,
        chp_gh=gh,
        chp_g=g,
        flow=net.flow_matrix(bus)[limited],
        limited=limited.astype(np.int64),
        cap=caps[limited],
        eps=float(spec.regularisation),
    )
