"""Settlement from the command line: deposits, meters, a settled slot, statements."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ledger.keys import save_signing_key
from node.cli.main import main
from tests.node.conftest import peer_key


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_money_commands_have_help(capsys):
    for command in (
        ["balance"],
        ["statements"],
        ["meter"],
        ["operator", "deposit"],
        ["operator", "withdraw"],
        ["operator", "meter"],
        ["operator", "terms"],
        ["operator", "settle"],
    ):
        with pytest.raises(SystemExit) as exc:
            main([*command, "--help"])
        assert exc.value.code == 0
        assert f"usage: p2pex {' '.join(command)}" in capsys.readouterr().out


@pytest.mark.slow  # a real operator process
def test_a_slot_settled_with_the_cli_alone_conserves_money(make_net, tmp_path, capsys):
    net = make_net(replicas=0)
    node = net.operator.address
    op = ["--node", node, "--key", str(net.operator_key)]
    files = {}
    for n, name in enumerate(("seller", "buyer", "meter_s", "meter_b")):
        files[name] = str(tmp_path / f"{name}.pem")
        save_signing_key(peer_key(n + 30), Path(files[name]))
    seller, buyer = peer_key(30).account_id.hex(), peer_key(31).account_id.hex()
    s, b = ["--node", node, "--key", files["seller"]], ["--node", node, "--key", files["buyer"]]
    assert cli(capsys, "register", *s, "--name", "S", "--bus", "1", "--role", "producer")[0] == 0
    assert cli(capsys, "register", *b, "--name", "B", "--bus", "1", "--role", "consumer")[0] == 0
    for who, meter in ((seller, "meter_s"), (buyer, "meter_b")):
        meter_args = ["--account", who, "--meter-key", files[meter]]
        assert cli(capsys, "operator", "meter", *op, *meter_args)[0] == 0
    assert (
        cli(capsys, "operator", "deposit", *op, "--account", buyer, "--amount", "5000000")[0] == 0
    )
    order = ["order", "place", "--slot", "3", "--quantity", "2000", "--price", "1000"]
    assert cli(capsys, *order, *s, "--side", "ask")[0] == 0
    assert cli(capsys, *order, *b, "--side", "bid", "--wait")[0] == 0
    terms = ["--slot", "3", "--import-price", "1500", "--export-price", "400"]
    assert cli(capsys, "operator", "terms", *op, *terms)[0] == 0
    # too early: the gate is open
    code, _, err = cli(
        capsys,
        "meter",
        "--node",
        node,
        "--key",
        files["meter_s"],
        "--slot",
        "3",
        "--energy-wh",
        "1800",
    )
    assert code == 3 and "slot_open" in err
    assert cli(capsys, "operator", "close", *op, "--slot", "3", "--wait")[0] == 0
    reading = ["--slot", "3", "--energy-wh", "1800"]
    assert cli(capsys, "meter", "--node", node, "--key", files["meter_s"], *reading)[0] == 0
    # the buyer's meter stays silent: it counts as 0 Wh
    assert cli(capsys, "operator", "settle", *op, "--slot", "3", "--wait")[0] == 0
    code, out, _ = cli(capsys, "statements", "--node", node, "--account", seller, "--json")
    (statement,) = json.loads(out)["statements"]
    # sold 2,000 Wh at 1,000, delivered 1,800: 200 Wh short bought at 1,500
    assert statement["payment"] == 2000 * 1000 - 200 * 1500
    code, out, _ = cli(capsys, "balance", "--node", node, "--account", buyer, "--json")
    balance = json.loads(out)
    # paid 2,000,000 for the contract; used nothing: 2,000 Wh sold back at 400
    assert balance["balance"] == 5_000_000 - 2_000_000 + 2000 * 400
    assert balance["total"] == balance["deposited"] == 5_000_000
    code, out, _ = cli(capsys, "balance", "--node", node, "--system", "grid")
    assert code == 0 and "conserved" in out
    # more than the balance cannot leave
    too_much = ["--account", buyer, "--amount", str(10**9)]
    code, _, err = cli(capsys, "operator", "withdraw", *op, *too_much)
    assert code == 3 and "insufficient_balance" in err
