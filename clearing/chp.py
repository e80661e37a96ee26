"""The feasible operating region of a CHP unit (figure 12.9, equations 12.24-12.26)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from clearing.errors import InvalidPeer


@dataclass(frozen=True, slots=True)
class ChpRegion:
    """The feasible (P, H) polygon A-B-C-D of a CHP unit, in kW and kW_th.

    Each point is ``(P, H)``. The region is the convex quadrilateral with
    vertices A, B, C, D in this order. For the figure's shape its edges are
    12.25 (A-B, upper), 12.26 (B-C), 12.24 (C-D, lower) and D-A on the
    ``H = 0`` axis, which is the sign constraint ``H >= 0`` of 12.35.
    """

    a: tuple[float, float]
    b: tuple[float, float]
    c: tuple[float, float]
    d: tuple[float, float]

    def points(self) -> tuple[tuple[float, float], ...]:
        """Return the vertices A, B, C, D as ``(P, H)``."""
        return (self.a, self.b, self.c, self.d)

    def halfplanes(self) -> tuple[tuple[float, float, float], ...]:
        """Return the four edges as ``(gp, gh, g)`` with ``gp P + gh H <= g`` inside.

        Derived from the points rather than from the slopes written in
        12.24-12.26, so that a vertical edge does not divide by zero; each row
        has unit norm, so a residual is a distance in kW.

        >>> region = ChpRegion(a=(10.0, 0.0), b=(10.0, 5.0), c=(0.0, 5.0), d=(0.0, 0.0))
        >>> [tuple(round(x, 3) + 0.0 for x in row) for row in region.halfplanes()]
        [(1.0, 0.0, 10.0), (0.0, 1.0, 5.0), (-1.0, 0.0, 0.0), (0.0, -1.0, 0.0)]
        """
        pts = self.points()
        cp = sum(p for p, _ in pts) / 4.0
        ch = sum(h for _, h in pts) / 4.0
        rows = []
        for (p1, h1), (p2, h2) in zip(pts, pts[1:] + pts[:1], strict=True):
            gp, gh = h2 - h1, -(p2 - p1)  # a normal of the edge
            norm = math.hypot(gp, gh)
            gp, gh = gp / norm, gh / norm
            g = gp * p1 + gh * h1
            if gp * cp + gh * ch > g:  # orient it so that the centroid is inside
                gp, gh, g = -gp, -gh, -g
            rows.append((gp, gh, g))
        return tuple(rows)

    def contains(self, p: float, h: float, tol: float = 1e-6) -> bool:
        """Return True when ``(p, h)`` lies in the region, within ``tol`` kW.

        >>> ChpRegion(a=(247, 0), b=(215, 180), c=(81, 104.8), d=(98.8, 0)).contains(150, 50)
        True
        """
        return all(gp * p + gh * h <= g + tol for gp, gh, g in self.halfplanes())


def check_chp(region: ChpRegion, peer: str) -> None:
    """Check that A, B, C, D are finite, non-negative and form a convex quadrilateral in order.

    Raises:
        InvalidPeer: Otherwise.
    """
    pts = region.points()
    for p, h in pts:
        for value in (p, h):
            if isinstance(value, bool) or not isinstance(value, int | float):
                msg = f"peer {peer!r}: CHP points must be numbers, got {value!r}"
                raise InvalidPeer(msg, peer=peer)
            if not math.isfinite(value) or value < 0:
                msg = f"peer {peer!r}: CHP points must be finite with P >= 0 and H >= 0"
                raise InvalidPeer(msg, peer=peer)
    turns = []
    for i in range(4):
        (p0, h0), (p1, h1), (p2, h2) = pts[i], pts[(i + 1) % 4], pts[(i + 2) % 4]
        turns.append((p1 - p0) * (h2 - h1) - (h1 - h0) * (p2 - p1))
    if not (all(t > 0 for t in turns) or all(t < 0 for t in turns)):
        msg = f"peer {peer!r}: CHP points A, B, C, D must form a convex quadrilateral, in order"
        raise InvalidPeer(msg, peer=peer)
