"""Small hand-solvable markets shared by the clearing tests."""

from __future__ import annotations

from typing import Any

from clearing import Case


def feeder(lines: list[tuple[str, str, str, float, float | None]], peer_bus: dict[str, str],
           voltage_kv: float = 1.0, root: str = "0") -> dict[str, Any]:  # fmt: skip
    """A network dict: lines as (name, from, to, r_ohm, capacity_kw or None)."""
    buses = sorted({root} | {b for _, f, t, _, _ in lines for b in (f, t)})
    return {
        "voltage_kv": voltage_kv,
        "root": root,
        "buses": buses,
        "lines": [
            {"name": n, "from": f, "to": t, "r_ohm": r, "x_ohm": 0.0, "capacity_kw": c}
            for n, f, t, r, c in lines
        ],
        "peer_bus": peer_bus,
    }


def peer(
    name: str, role: str, a: float, b: float, lo: float, hi: float, **kw: Any
) -> dict[str, Any]:
    """A peer dict with c = 0."""
    return {"name": name, "role": role, "a": a, "b": b, "c": 0.0, "p_min": lo, "p_max": hi, **kw}


def two_peer_case(*, r: float = 1.0, cap: float | None = None, eps: float = 0.0,
                  **case_kw: Any) -> Case:  # fmt: skip
    """G (cost ½ 0.04 P² + P) at bus 1 sells to C (WTP 5x - ½ 0.04 x²) at the root bus 0.

    Basic optimum: P_G = 50 kW, price 3.0, welfare 100 per hour.
    """
    data = {
        "name": "two",
        "regularisation": eps,
        "network": feeder([("L1", "0", "1", r, cap)], {"G": "1", "C": "0"}),
        "peers": [
            peer("G", "producer", 0.04, 1.0, 0.0, 100.0),
            peer("C", "consumer", 0.04, 5.0, -100.0, 0.0),
        ],
        **case_kw,
    }
    return Case.from_dict(data)


def three_peer_case(*, eps: float = 0.0) -> Case:
    """G1 (b=1) and G2 (b=2), a = 0.02, sell to C (b=6, a=0.02) on one bus.

    Optimum: price 3, G1 = 100, G2 = 50, C = -150, welfare 350 per hour.
    """
    return Case.from_dict(
        {
            "name": "three",
            "regularisation": eps,
            "network": feeder([("L1", "0", "1", 1.0, None)], {"G1": "0", "G2": "0", "C": "0"}),
            "peers": [
                peer("G1", "producer", 0.02, 1.0, 0.0, 500.0),
                peer("G2", "producer", 0.02, 2.0, 0.0, 500.0),
                peer("C", "consumer", 0.02, 6.0, -200.0, 0.0),
            ],
        }
    )


def y_feeder_case(**case_kw: Any) -> Case:
    """Three buses: root 0 (grid), L1 0-1 (r 0.5) with producer G, L2 0-2 (r 1.5) with C."""
    return Case.from_dict(
        {
            "name": "y",
            "network": feeder(
                [("L1", "0", "1", 0.5, 100.0), ("L2", "0", "2", 1.5, 100.0)],
                {"grid": "0", "G": "1", "C": "2"},
            ),
            "peers": [
                peer("grid", "grid", 0.01, 2.0, 0.0, 1000.0),
                peer("G", "producer", 0.02, 1.0, 0.0, 30.0),
                peer("C", "consumer", 0.01, 6.0, -50.0, -50.0),
            ],
            **case_kw,
        }
    )
