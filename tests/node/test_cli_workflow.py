"""The command line from a new key to a cleared slot, its outputs, and its error messages."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from ledger.keys import save_signing_key
from node.cli.main import hint, main
from node.cli.output import csv_text, plain, table
from node.clock import FakeClock
from node.config import CLEARING_MODELS, NodeConfig, load_config
from node.errors import ConfigError, ConnectionLost, RequestFailed
from node.roles.replica import Replica
from tests.node.conftest import peer_key
from tests.node.test_operator import OPERATOR, START_NS, attach, make_operator, run
from tests.node.test_replica import MemoryUpstream

ROOT = Path(__file__).resolve().parents[2]

PRICE_MARKET = ["--price", "5", "--market"]
GTD = ["--price", "5", "--tif", "GTD"]
NEW_COMMANDS = [
    ["register"],
    ["peers"],
    ["status"],
    ["curve"],
    ["settlements"],
    ["operator"],
    ["operator", "network"],
    ["operator", "tariff"],
    ["operator", "close"],
    ["clearing"],
]


@pytest.mark.parametrize("command", NEW_COMMANDS, ids=" ".join)
def test_every_new_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([*command, "--help"])
    assert exc.value.code == 0
    assert f"usage: p2pex {' '.join(command)}" in capsys.readouterr().out


def test_help_shows_defaults_and_allowed_values(capsys):
    with pytest.raises(SystemExit):
        main(["order", "place", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "(default: electricity)" in out
    assert "(default: GTC)" in out
    assert "{cancel_newest,cancel_oldest,cancel_both,decrement}" in out
    assert "--market" in out
    with pytest.raises(SystemExit):
        main(["register", "--help"])
    assert "{producer,consumer,prosumer,grid}" in capsys.readouterr().out


def test_operator_help_says_how_a_slot_opens(capsys):
    with pytest.raises(SystemExit):
        main(["operator", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "opens with its first accepted order or curve" in out


def test_read_commands_take_json(capsys):
    for command in (
        ["peers"],
        ["status"],
        ["book", "--slot", "1"],
        ["trades"],
        ["settlements"],
        ["clearing", "--slot", "1"],
        ["chain", "verify"],
        ["chain", "show"],
        ["chain", "prove", "--tx", "00"],
    ):
        with pytest.raises(SystemExit):
            main([*command, "--help"])
        assert "--json" in capsys.readouterr().out, command


# -- errors that say what to do (no node needed) -------------------------------------------------


def test_an_order_without_price_is_refused_before_signing(capsys):
    code = main(["order", "place", "--slot", "1", "--side", "bid", "--quantity", "10"])
    assert code == 1
    err = capsys.readouterr().err
    assert "--price" in err and "--market" in err
    assert "Traceback" not in err


def test_price_and_market_together_are_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(
            [
                *[
                    "order",
                    "place",
                    "--slot",
                    "1",
                    "--side",
                    "bid",
                    "--quantity",
                    "10",
                    "--price",
                    "5",
                    "--market",
                ]
            ]
        )
    assert exc.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flags", "want"),
    [
        (["--quantity", "-10", "--price", "5"], "--quantity: expected a whole number"),
        (["--quantity", "10", "--price", "5", "--stp", "bad"], "--stp: invalid choice: 'bad'"),
        (["--quantity", "10", "--price", "0"], "--price: expected a whole number"),
    ],
)
def test_bad_order_flags_are_usage_errors(flags, want, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["order", "place", "--slot", "1", "--side", "ask", *flags])
    assert exc.value.code == 2
    assert want in capsys.readouterr().err


def test_gtd_without_expiry_is_refused(capsys):
    code = main(
        [
            "order",
            "place",
            "--slot",
            "1",
            "--side",
            "ask",
            "--quantity",
            "10",
            "--price",
            "5",
            "--tif",
            "GTD",
        ]
    )
    assert code == 1
    assert "a GTD order needs --expires-at" in capsys.readouterr().err


def test_trades_of_a_malformed_account_is_an_error_not_a_traceback(capsys):
    assert main(["trades", "--account", "bob"]) == 1
    err = capsys.readouterr().err
    assert "--account 'bob' is not an account id (64 hex digits" in err
    assert "Traceback" not in err


def test_clear_plot_into_an_unwritable_directory_is_an_error(capsys):
    assert main(["clear", "reference", "--plot", "/proc/nope"]) == 1
    captured = capsys.readouterr()
    assert "cannot write plots into '/proc/nope'" in captured.err
    assert "Traceback" not in captured.err
    assert captured.out == ""  # refused before the solve, nothing half printed


def test_a_missing_node_says_to_start_one(capsys):
    assert main(["peers", "--node", "127.0.0.1:1"]) == 1
    assert "is a node running there?" in capsys.readouterr().err


def test_hints_for_refused_requests():
    assert "p2pex register" in hint(RequestFailed("not_permitted", "sender is not registered"))
    assert "operator's key" in hint(RequestFailed("not_permitted", "SetTariff may only be sent"))
    assert hint(RequestFailed("bad_nonce", "nonce 3, want 4")) == ""
    assert "node running" in hint(ConnectionLost("cannot connect to 127.0.0.1:1: refused"))


def test_unknown_clearing_model_is_refused_by_the_configuration():
    with pytest.raises(ConfigError, match="clearing_model 'foo' is not a model; want one of"):
        load_config(None, {"clearing_model": "foo", "operator_key": "op.pem"})
    for model in CLEARING_MODELS:
        assert load_config(None, {"clearing_model": model, "operator_key": "op.pem"})


def test_the_configured_models_are_the_clearing_models():
    from clearing.spec import Model

    assert tuple(m.value for m in Model) == CLEARING_MODELS


def test_no_file_cites_the_design_document_that_is_not_in_the_repository():
    for path in ("docs/clearing.md", "ledger/payloads.py"):
        assert "DESIGN.md" not in (ROOT / path).read_text(encoding="utf-8"), path


def test_the_demo_trade_matrix_title_names_its_unit():
    text = (ROOT / "node/demo/scenario.py").read_text(encoding="utf-8")
    assert "CDA trades (kWh" not in text  # the matrix is in kW, as its header says
    assert "CDA trades (kW per producer and consumer)" in text


# -- output helpers ---------------------------------------------------------------------------


def test_plain_turns_bytes_into_hex_recursively():
    assert plain({"a": [b"\x00\x01", (1, {"b": b"\xff"})]}) == {"a": ["0001", [1, {"b": "ff"}]]}


def test_csv_has_a_header_and_one_row_per_record():
    rows = [{"slot": 1, "account": b"\x01", "extra": 9}, {"slot": 2, "account": b"\x02"}]
    parsed = list(csv.DictReader(io.StringIO(csv_text(rows, ["slot", "account"]))))
    assert parsed == [{"slot": "1", "account": "01"}, {"slot": "2", "account": "02"}]


def test_table_is_one_line_per_row_however_many_rows():
    rows = [[f"peer{i}", i * 1000, "x" * 64] for i in range(101)]
    lines = table(["name", "Wh", "account"], rows).splitlines()
    assert len(lines) == 102
    assert max(len(line) for line in lines) < 100


# -- replicas that can never follow stop with what to fix --------------------------------------


def _replica_against_operator(tmp_path, *, key: bytes, chain_id: str = "p2pex-local"):
    async def main():
        operator, _clock = make_operator(tmp_path)
        await operator.start("127.0.0.1", 0)
        client = await attach(operator, peer_key(1))
        done = await client.register("p", bus="B1", role="producer")
        await client.wait_committed(done.tx_id)
        config = NodeConfig(
            role="replica", data_dir=tmp_path / "rep", upstream="127.0.0.1:1", chain_id=chain_id
        )
        replica = Replica(config, key, FakeClock(START_NS), MemoryUpstream(operator))
        await replica.start("127.0.0.1", 0)
        try:
            await asyncio.wait_for(replica.fatal.wait(), 15)
            return replica.store.height, [r["reason"] for r in replica.refused]
        finally:
            await client.close()
            await replica.close()
            await operator.close()

    return run(main())


def test_a_replica_with_another_operator_key_stops(tmp_path):
    height, reasons = _replica_against_operator(tmp_path, key=peer_key(9).public_key_bytes())
    assert height == 0
    assert reasons[0].startswith("UnauthorisedProposer")
    assert "--operator-key" in reasons[-1] and "p2pex status --node UPSTREAM" in reasons[-1]


def test_a_replica_of_another_chain_id_stops(tmp_path):
    height, reasons = _replica_against_operator(
        tmp_path, key=OPERATOR.public_key_bytes(), chain_id="other"
    )
    assert height == 0
    assert reasons[0].startswith("WrongChainId")
    assert "--chain-id" in reasons[-1]


class DownUpstream:
    """An upstream nobody answers at."""

    async def connect(self, timeout: float, max_frame: int | None = None):
        raise ConnectionLost("cannot connect to 127.0.0.1:1: refused")

    def __str__(self) -> str:
        return "127.0.0.1:1"


def test_a_new_replica_whose_upstream_never_answers_stops(tmp_path):
    async def main():
        clock = FakeClock(START_NS)
        config = NodeConfig(
            role="replica", data_dir=tmp_path / "rep", upstream="127.0.0.1:1", upstream_wait_s=2.0
        )
        replica = Replica(config, OPERATOR.public_key_bytes(), clock, DownUpstream())
        await replica.start("127.0.0.1", 0)
        try:
            steps = 0
            while not replica.fatal.is_set() and steps < 100:
                clock.advance(500_000_000)  # the retry timer: 0.5 s of the fake clock
                await asyncio.sleep(0.01)
                steps += 1
            return replica.fatal.is_set(), [r["reason"] for r in replica.refused], clock
        finally:
            await replica.close()

    fatal, reasons, clock = run(main())
    assert fatal
    assert "unreachable for 2 s since start-up" in reasons[-1]
    assert "start the operator first" in reasons[-1]
    assert clock.monotonic() >= 2.0  # not before the configured wait


# -- the whole workflow against a real node ---------------------------------------------------


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def wait_for_clearing(capsys, node: str, slot: int) -> dict:
    """Ask until the operator's worker has published the slot's clearing (bounded)."""
    for _ in range(300):
        code, out, _err = cli(capsys, "clearing", "--node", node, "--slot", str(slot), "--json")
        if code == 0:
            return json.loads(out)
        asyncio.run(asyncio.sleep(0.2))
    pytest.fail("the slot was not cleared within a minute")


@pytest.mark.slow  # a real operator process
def test_from_keys_to_a_cleared_slot_with_the_cli_alone(make_net, tmp_path, capsys):
    # the basic model, whose payments balance exactly (the default reference is penalised)
    net = make_net(replicas=0, operator_args=("--clearing-model", "basic"))
    node = net.operator.address
    operator_key = str(net.operator_key)
    keys = {}
    for n, name in enumerate(("g12", "c1")):
        keys[name] = str(tmp_path / f"{name}.pem")
        save_signing_key(peer_key(n + 1), Path(keys[name]))
    g, c = ["--node", node, "--key", keys["g12"]], ["--node", node, "--key", keys["c1"]]

    assert cli(capsys, "register", *g, "--case", "reference", "--name", "G12", "--wait")[0] == 0
    code, out, _ = cli(capsys, "register", *c, "--name", "C1", "--bus", "1", "--role", "consumer")
    assert code == 0 and "register C1: accepted tx" in out
    code, out, _ = cli(capsys, "peers", "--node", node, "--json")
    peers = json.loads(out)["peers"]
    assert sorted((p["name"], p["role"], p["bus"]) for p in peers) == [
        ("C1", "consumer", "1"),
        ("G12", "producer", "4"),
    ]

    # a rejected order: exit 3, the reason once, on stderr, with what to do
    code, out, err = cli(
        capsys,
        "order",
        "place",
        *g,
        "--slot",
        "7",
        "--side",
        "bid",
        "--quantity",
        "10",
        "--price",
        "900",
    )
    assert code == 3
    assert out == ""
    assert err.count("role_not_permitted") == 1 and "a producer may only sell" in err

    assert (
        cli(
            capsys,
            "order",
            "place",
            *g,
            "--slot",
            "7",
            "--side",
            "ask",
            "--quantity",
            "2000",
            "--price",
            "1000",
            "--wait",
        )[0]
        == 0
    )
    code, out, _ = cli(
        capsys,
        "order",
        "place",
        *c,
        "--slot",
        "7",
        "--side",
        "bid",
        "--quantity",
        "1500",
        "--market",
        "--wait",
    )
    assert code == 0 and "trade: 1500 Wh @ 1000" in out

    assert cli(capsys, "curve", *g, "--slot", "7", "--case", "reference", "--peer", "G12")[0] == 0
    assert (
        cli(
            capsys,
            "curve",
            *c,
            "--slot",
            "7",
            "--a",
            "1000",
            "--b",
            "3840",
            "--q-min",
            "-42000",
            "--q-max",
            "-21000",
            "--wait",
        )[0]
        == 0
    )
    op = ["--node", node, "--key", operator_key]
    code, _, err = cli(
        capsys,
        "operator",
        "tariff",
        "--node",
        node,
        "--key",
        keys["g12"],
        "--alpha",
        "5",
        "--beta",
        "5",
    )
    assert code == 1 and "sign with the operator's key file" in err
    assert cli(capsys, "operator", "network", *op, "--case", "reference", "--wait")[0] == 0
    assert cli(capsys, "operator", "tariff", *op, "--alpha", "5", "--beta", "5", "--wait")[0] == 0
    code, out, _ = cli(capsys, "status", "--node", node, "--json")
    assert {"product": "electricity", "slot": 7, "state": "open"} in json.loads(out)["slots"]
    assert cli(capsys, "operator", "close", *op, "--slot", "7", "--wait")[0] == 0

    cleared = wait_for_clearing(capsys, node, 7)
    rows = {r["name"]: r for r in cleared["settlements"]}
    assert rows["C1"]["energy_wh"] == -rows["G12"]["energy_wh"] < 0  # one bus apart, basic model
    assert rows["G12"]["payment"] == -rows["C1"]["payment"] > 0
    assert cleared["certificate"]["model"] == "basic"
    code, out, _ = cli(capsys, "status", "--node", node, "--json")
    assert {"product": "electricity", "slot": 7, "state": "cleared"} in json.loads(out)["slots"]

    code, out, _ = cli(capsys, "settlements", "--node", node, "--key", keys["g12"], "--json")
    assert [(s["slot"], s["energy_wh"]) for s in json.loads(out)["settlements"]] == [
        (7, rows["G12"]["energy_wh"])
    ]
    trades_csv = tmp_path / "trades.csv"
    code, out, _ = cli(capsys, "trades", "--node", node, "--csv", str(trades_csv))
    assert code == 0 and "1 trades" in out
    [trade] = list(csv.DictReader(io.StringIO(trades_csv.read_text(encoding="utf-8"))))
    assert (trade["slot"], trade["price"], trade["quantity"]) == ("7", "1000", "1500")
    code, out, _ = cli(capsys, "clearing", "--node", node, "--slot", "7", "--csv", "-")
    assert sorted(r["name"] for r in csv.DictReader(io.StringIO(out))) == ["C1", "G12"]
    code, out, _ = cli(capsys, "chain", "verify", "--node", node, "--json")
    assert code == 0 and json.loads(out)["ok"] is True


@pytest.mark.slow  # real node processes
def test_a_replica_process_with_the_wrong_key_exits_non_zero(make_net, tmp_path):
    net = make_net(replicas=0)
    wrong = tmp_path / "wrong.pem"
    save_signing_key(peer_key(5), wrong)
    main(
        [
            "register",
            "--node",
            net.operator.address,
            "--key",
            str(wrong),
            "--name",
            "x",
            "--bus",
            "1",
            "--role",
            "consumer",
            "--wait",
        ]
    )  # a genesis block to refuse
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "node",
            "node",
            "run",
            "--role",
            "replica",
            "--data-dir",
            str(tmp_path / "rep"),
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            net.operator.address,
            "--operator-key",
            str(wrong),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert "replica stops: the genesis block of upstream" in done.stderr
    assert done.stderr.count("REFUSED block 0") == 1


def test_async_client_operator_writes_reach_the_state(tmp_path):
    async def main():
        operator, _clock = make_operator(tmp_path)
        await operator.start("127.0.0.1", 0)
        admin = await attach(operator, OPERATOR)
        try:
            await admin.set_network('{"buses": ["1"], "lines": [], "root": "1", "voltage_kv": 11}')
            await admin.set_tariff(5, 7)
            done = await admin.close_slot("electricity", 4)
            await admin.wait_committed(done.tx_id)
            return operator.state.tariff, operator.state.closed, operator.state.network_json
        finally:
            await admin.close()
            await operator.close()

    tariff, closed, network = run(main())
    assert tariff == (5, 7)
    assert closed == {("electricity", 4)}
    assert '"root": "1"' in network


def test_clear_json_and_csv_give_the_clearing_as_data(tmp_path, capsys):
    assert main(["clear", "reference", "--model", "basic", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    [basic] = document["results"]
    assert basic["model"] == "basic"
    injection = {p["name"]: p["injection_kw"] for p in basic["peers"]}
    sold = {}
    for t in basic["trades"]:
        sold[t["seller"]] = sold.get(t["seller"], 0.0) + t["kw"]
    for seller, kw in sold.items():  # a seller's trades add up to its injection
        assert kw == pytest.approx(injection[seller], abs=1e-3)
    target = tmp_path / "trades.csv"
    assert main(["clear", "reference", "--model", "basic", "--csv", str(target)]) == 0
    assert capsys.readouterr().out == ""
    rows = list(csv.DictReader(io.StringIO(target.read_text(encoding="utf-8"))))
    assert len(rows) == len(basic["trades"])
    assert {r["model"] for r in rows} == {"basic"}
