"""``p2pex operator mode``: the SetSlotMode it computes from a case (--print: no node)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from clearing import load_reference_case
from ledger.keys import save_signing_key
from market.grid_terms import slot_mode
from market.units import Units
from node.cli.main import main
from tests.node.conftest import peer_key


def printed(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    assert main(["operator", "mode", "--case", "reference", "--print", *argv]) == 0
    data: dict[str, Any] = json.loads(capsys.readouterr().out)
    return data


def test_mode_3_prints_the_grid_terms_of_the_case(capsys: pytest.CaptureFixture[str]) -> None:
    got = printed(capsys, "--slot", "3", "--mode", "3", "--penalised", "L6")
    case = load_reference_case()
    want = slot_mode(
        case.network,
        product="electricity",
        slot=3,
        mode=3,
        alpha=case.alpha,
        beta=case.beta,
        penalised=["L6"],
        units=Units(case.tick, case.slot_hours),
    )
    assert got["seller_charge"] == list(want.seller_charge)
    assert got["buyer_charge"] == list(want.seller_charge)
    assert got["seller_charge"][6] == 214  # bus 1 -> bus 7 across L6 (see test_grid_terms)
    assert (got["slot"], got["mode"], got["parent"]) == (3, 3, [])


def test_mode_4_prints_parents_and_capacities(capsys: pytest.CaptureFixture[str]) -> None:
    got = printed(capsys, "--slot", "1", "--mode", "4", "--approval")
    assert got["parent"] == [-1, 0, 1, 2, 3, 4, 2, 6, 7, 1, 9]
    assert got["capacity"][6] == 110_000  # L6 (bus 3 -> 7): 110 kW over a 1-hour slot
    assert got["approval"] is True
    assert got["seller_charge"] == []


def test_bad_line_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["operator", "mode", "--case", "reference", "--print", "--slot", "1", "--mode", "3"]
    assert main([*argv, "--penalised", "L99"]) != 0
    assert "unknown line 'L99'" in capsys.readouterr().err


@pytest.mark.slow  # a real operator process
def test_a_mode_3_slot_set_from_the_cli_prices_in_the_charges(
    make_net: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    net = make_net(replicas=0)
    node = net.operator.address
    keys = {}
    for n, name in enumerate(("seller", "buyer")):
        keys[name] = str(tmp_path / f"{name}.pem")
        save_signing_key(peer_key(n + 40), Path(keys[name]))
    s, b = ["--node", node, "--key", keys["seller"]], ["--node", node, "--key", keys["buyer"]]
    assert main(["register", *s, "--name", "S", "--bus", "4", "--role", "producer"]) == 0
    assert main(["register", *b, "--name", "B", "--bus", "9", "--role", "consumer"]) == 0
    op = ["--node", node, "--key", str(net.operator_key)]
    mode = ["--slot", "3", "--mode", "3", "--case", "reference", "--penalised", "L6", "--wait"]
    assert main(["operator", "mode", *op, *mode]) == 0
    # bus 4 -> bus 9: R = 13.142 ohm (x 0.005 USD = 657 ticks) + beta across L6 (50): 707 each
    order = ["order", "place", "--slot", "3", "--quantity", "2000"]
    assert main([*order, *s, "--side", "ask", "--price", "1000"]) == 0
    # 1500 - 707 < 1000 + 707: a plain CDA would trade, mode 3 does not
    assert main([*order, *b, "--side", "bid", "--price", "1500", "--wait"]) == 0
    capsys.readouterr()

    def book() -> dict[str, Any]:
        assert main(["book", "--node", node, "--slot", "3", "--json"]) == 0
        depth: dict[str, Any] = json.loads(capsys.readouterr().out)
        return depth

    assert book()["asks"] == [[1000, 2000]]
    assert book()["bids"] == [[1500, 2000]]
    # 2500 - 707 >= 1000 + 707: it trades
    bid = ["order", "place", "--slot", "3", "--quantity", "1000", "--price", "2500", "--wait"]
    assert main([*bid, *b, "--side", "bid"]) == 0
    capsys.readouterr()
    assert book()["asks"] == [[1000, 1000]]
