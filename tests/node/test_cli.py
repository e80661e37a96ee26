"""The ``p2pex`` console script answers --help and --version."""

from __future__ import annotations

import subprocess
import sys

import pytest

from node import __version__
from node.cli.main import main


def test_version_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"p2pex {__version__}"


def test_help_lists_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "usage: p2pex" in out
    assert "demo" in out


def test_no_command_prints_usage_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage: p2pex" in capsys.readouterr().err


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["no-such-command"])
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


@pytest.mark.slow  # a subprocess
def test_console_script_runs_as_module() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "node", "--version"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0
    assert done.stdout.startswith("p2pex ")


COMMANDS = [
    ["keygen"],
    ["node"],
    ["node", "run"],
    ["order"],
    ["order", "place"],
    ["order", "cancel"],
    ["order", "amend"],
    ["book"],
    ["trades"],
    ["chain"],
    ["chain", "verify"],
    ["chain", "show"],
    ["chain", "prove"],
    ["clear"],
    ["demo"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_help(command, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main([*command, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert f"usage: p2pex {' '.join(command)}" in out


def test_keygen_writes_a_private_key_file(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    from ledger.keys import load_signing_key

    path = tmp_path / "alice.pem"
    assert main(["keygen", str(path)]) == 0
    out = capsys.readouterr().out
    key = load_signing_key(path)
    assert f"public_key {key.public_key_bytes().hex()}" in out
    assert f"account    {key.account_id.hex()}" in out
    assert path.stat().st_mode & 0o777 == 0o600
    assert main(["keygen", str(path)]) == 1  # never overwrites a key by accident
    assert "refusing to overwrite" in capsys.readouterr().err


def test_node_run_reports_bad_configuration(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["node", "run", "--role", "replica", "--data-dir", str(tmp_path)]) == 1
    assert "needs an upstream" in capsys.readouterr().err
    bad = tmp_path / "node.toml"
    bad.write_text("role = 'operator'\nblock_interval_ms = 'fast'\n", encoding="utf-8")
    assert main(["node", "run", "--config", str(bad)]) == 1
    assert "block_interval_ms must be an integer" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_trades_and_audits_against_real_nodes(make_net, tmp_path, capsys) -> None:
    net = make_net(replicas=1)
    seller, buyer = tmp_path / "seller.pem", tmp_path / "buyer.pem"
    assert main(["keygen", str(seller)]) == 0
    assert main(["keygen", str(buyer)]) == 0
    from node.client.clients import Client
    from node.keys import load_key

    for path, role in ((seller, "producer"), (buyer, "consumer")):
        with Client.connect(net.operator.address, key=load_key(path)) as client:
            client.register(path.stem, bus="B1", role=role)
    op, rep = net.operator.address, net.replicas[0].address
    base = ["--node", op]
    watcher = Client.connect(rep)  # a script following the replica's trades and blocks
    watcher.subscribe("trades", "blocks")
    assert (
        main(
            [
                "order",
                "place",
                *base,
                "--key",
                str(seller),
                "--slot",
                "3",
                "--side",
                "ask",
                "--price",
                "100",
                "--quantity",
                "5000",
                "--client-order-id",
                "1",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "order",
                "amend",
                *base,
                "--key",
                str(seller),
                "--client-order-id",
                "1",
                "--price",
                "95",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "order",
                "place",
                "--node",
                rep,
                "--key",
                str(buyer),
                "--slot",
                "3",
                "--side",
                "bid",
                "--price",
                "99",
                "--quantity",
                "2000",
                "--wait",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "trade: 2000 Wh @ 95" in out and "committed in block" in out
    tx_id = out.split("accepted tx ")[-1].split()[0]
    events = watcher.events(timeout=10)
    trade = next(e for e in events if e.topic == "trades").data
    assert (trade["price"], trade["quantity"], trade["tx_id"].hex()) == (95, 2000, tx_id)
    watcher.close()
    assert main(["book", *base, "--slot", "3"]) == 0
    assert "95       3000" in capsys.readouterr().out
    assert (
        main(["order", "cancel", *base, "--key", str(seller), "--client-order-id", "1", "--wait"])
        == 0
    )
    assert main(["trades", "--node", rep, "--key", str(buyer)]) == 0
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines() if "electricity" in line.split()]
    assert [row[3:5] for row in rows] == [["2000", "95"]] and "1 trades" in out
    assert main(["order", "cancel", *base, "--key", str(seller), "--client-order-id", "1"]) == 3
    assert "rejected: unknown_order" in capsys.readouterr().err

    key = ["--operator-key", str(net.operator_key)]
    assert main(["chain", "verify", "--node", rep, *key]) == 0
    out = capsys.readouterr().out
    assert "ledger audit: OK" in out and "replay: OK" in out
    assert main(["chain", "show", "--node", op, "--last", "2"]) == 0
    assert capsys.readouterr().out.count("block ") == 2
    assert main(["chain", "prove", "--node", rep, "--tx", tx_id]) == 0
    assert "proof OK" in capsys.readouterr().out
    from ledger.block import decode_block
    from ledger.results import TradeRecord, decode_result

    with Client.connect(rep) as reader:
        height = reader.call("tx", {"tx_id": bytes.fromhex(tx_id)})["height"]
        results = decode_block(reader.blocks(height, 1)[0]).results
    index = next(i for i, r in enumerate(results) if isinstance(decode_result(r), TradeRecord))
    assert main(["chain", "prove", "--node", op, "--result", f"{height}:{index}"]) == 0
    out = capsys.readouterr().out
    assert "TradeRecord(" in out and "price=95" in out and "proof OK: the result" in out
    net.stop()
    data = ["--data-dir", str(net.replicas[0].data_dir)]
    assert main(["chain", "verify", *data, *key]) == 0
    capsys.readouterr()
    assert main(["chain", "verify", *data, *key, "--workers", "2"]) == 0
    out = capsys.readouterr().out
    assert "ledger audit on 2 processes" in out and "ledger audit: OK" in out
    assert main(["chain", "prove", *data, "--tx", tx_id]) == 0
    assert main(["chain", "prove", *data, "--result", f"{height}:{index}"]) == 0
    assert main(["chain", "prove", *data, "--tx", "00" * 32]) == 1


@pytest.mark.slow
def test_node_refuses_a_busy_port_and_another_operators_chain(make_net, tmp_path, capsys) -> None:
    net = make_net(replicas=0)
    from node.client.clients import Client
    from tests.node.conftest import peer_key

    with Client.connect(net.operator.address, key=peer_key(77)) as client:
        client.wait_committed(client.register("p", bus="B1", role="prosumer").tx_id)
    other_key = tmp_path / "other.pem"
    assert main(["keygen", str(other_key)]) == 0
    capsys.readouterr()
    busy = ["node", "run", "--data-dir", str(tmp_path / "fresh"), "--operator-key", str(other_key)]
    assert main([*busy, "--listen", net.operator.address]) == 1
    assert "cannot listen on" in capsys.readouterr().err
    net.operator.stop()
    data = ["--data-dir", str(net.operator.data_dir), "--listen", "127.0.0.1:0"]
    assert main(["node", "run", *data, "--operator-key", str(other_key)]) == 1
    assert "is pinned to operator" in capsys.readouterr().err  # its pin, before the chain
    key = ["--operator-key", str(net.operator_key)]
    assert main(["node", "run", *data, *key, "--chain-id", "other"]) == 1
    assert "holds chain 'p2pex-local'" in capsys.readouterr().err


@pytest.mark.slow
def test_node_run_from_a_config_file(tmp_path) -> None:
    import time

    from node.client.clients import Client

    assert main(["keygen", str(tmp_path / "op.pem")]) == 0
    config = tmp_path / "node.toml"
    config.write_text(
        'role = "operator"\ndata_dir = "data"\nlisten = "127.0.0.1:0"\n'
        'operator_key = "op.pem"\nchain_id = "from-file"\nport_file = "port"\n',
        encoding="utf-8",
    )
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "node",
            "node",
            "run",
            "--config",
            str(config),
            "--block-max-txs",
            "7",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not (tmp_path / "port").exists():
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        port = int((tmp_path / "port").read_text())
        with Client.connect(f"127.0.0.1:{port}") as client:
            status = client.status()
        assert (status["role"], status["chain_id"], status["height"]) == (
            "operator",
            "from-file",
            0,
        )
        assert (tmp_path / "data" / "chain.sqlite3").is_file()
    finally:
        process.terminate()
        out, _ = process.communicate(timeout=20)
    assert process.returncode == 0
    assert f"p2pex node ready operator 127.0.0.1:{port} height 0" in out
