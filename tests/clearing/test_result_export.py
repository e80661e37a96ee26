"""A clearing for programs (to_dict, to_frames) and for people (folded tables, one sign)."""

from __future__ import annotations

import pytest

from clearing import clear, load_reference_case
from clearing.ieee33 import community_case
from clearing.report import MAX_COLUMNS, format_peer_summary, format_trade_matrix


def test_to_dict_is_the_clearing_with_the_ledgers_sign():
    case = load_reference_case()
    result = clear(case, "basic")
    plain = result.to_dict()
    peers = {p["name"]: p for p in plain["peers"]}
    for i, name in enumerate(case.names):
        # received > 0 when paid: the opposite of the solver's "paid" array
        assert peers[name]["received"] == -float(result.payment[i])
        sold = sum(t["kw"] for t in plain["trades"] if t["seller"] == name)
        if result.injection[i] > 0:
            assert sold == pytest.approx(float(result.injection[i]), abs=1e-3)
    assert set(plain["overloaded"]) == set(result.overloaded)
    assert [line["name"] for line in plain["lines"]] == list(result.line_names)


def test_to_frames_gives_dataframes_when_pandas_is_there():
    pytest.importorskip("pandas")
    result = clear(load_reference_case(), "basic")
    frames = result.to_frames()
    assert list(frames["peers"].index) == list(result.names)
    assert frames["trades"]["kw"].sum() == pytest.approx(
        sum(t["kw"] for t in result.to_dict()["trades"])
    )


def test_a_wide_trade_table_is_folded_into_narrow_blocks():
    case = community_case(40, 40, seed=3)
    text = format_trade_matrix(case, clear(case, "basic").trades, "trades")
    lines = text.splitlines()
    # 40 consumers + "sold": four blocks of at most MAX_COLUMNS data columns, each named
    assert max(len(line) for line in lines) < 8 * (MAX_COLUMNS + 2)
    assert sum(line.strip().startswith("kW") for line in lines) == 4
    assert "(columns 13-24 of 41)" in text


def test_the_peer_table_shows_money_received():
    case = load_reference_case()
    result = clear(case, "basic")
    text = format_peer_summary(case, result)
    assert "received USD" in text and "payment" not in text
    c1 = next(line for line in text.splitlines() if line.strip().startswith("C1 "))
    assert f"{-result.payment[0]:.3f}" in c1  # a consumer pays: negative received
