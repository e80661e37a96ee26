"""Gate closure's choice of due slots (``node.pipeline.gate.due_slots``), on a bare state."""

from __future__ import annotations

from ledger.keys import SigningKey
from market import transactions as txn
from market.state import ExchangeState
from node.pipeline.gate import due_slots

OPERATOR = SigningKey.from_seed(b"g" * 32)
CHP = (41000, 0, 35700, 29900, 13400, 17400, 16400, 0)


def state_with(*declarations: tuple[str, txn.Payload]) -> ExchangeState:
    state = ExchangeState("c", OPERATOR.public_key_bytes())
    state.begin_block(1)
    keys: dict[str, SigningKey] = {}
    nonces: dict[str, int] = {}
    for name, payload in declarations:
        if name not in keys:
            keys[name] = SigningKey.from_seed(name.encode().ljust(32, b"-"))
            role = "consumer" if name.startswith("C") else "producer"
            state.apply(txn.make(keys[name], "c", 1, txn.RegisterPeer(name, "B1", role)))
            nonces[name] = 1
        nonces[name] += 1
        assert state.apply(txn.make(keys[name], "c", nonces[name], payload)).rejected is None
    return state


def test_electricity_curves_make_only_their_gate_due():
    state = state_with(("G", txn.DeclareCurve("electricity", 3, 0, 100, 0, 0, 5000)))
    assert due_slots(state, 10, 1) == [("electricity", 3)]
    assert due_slots(state, 2, 1) == []  # delivery has not started


def test_a_slot_with_heat_data_has_both_gates_due():
    chp_only = state_with(("G", txn.DeclareChp(4, CHP)))
    assert due_slots(chp_only, 10, 1) == [("electricity", 4), ("heat", 4)]
    heat_curve = state_with(("C", txn.DeclareCurve("heat", 5, 0, 100, 0, -5000, 0)))
    assert due_slots(heat_curve, 10, 1) == [("electricity", 5), ("heat", 5)]
    heat_curve.apply(txn.make(OPERATOR, "c", 1, txn.CloseSlot("heat", 5)))
    assert due_slots(heat_curve, 10, 1) == [("electricity", 5)]
