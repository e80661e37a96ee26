"""``p2pex register --technology``: a peer says what it is, on the chain."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ledger.keys import save_signing_key
from market import transactions as txn
from node.cli.main import main
from node.client import Client
from tests.node.conftest import peer_key


@pytest.mark.slow  # a real operator process
def test_register_with_a_technology_declares_it(make_net, tmp_path, capsys):
    net = make_net(replicas=0)
    key_file = tmp_path / "pv.pem"
    save_signing_key(peer_key(61), Path(key_file))
    flags = ["--node", net.operator.address, "--key", str(key_file)]
    code = main(["register", *flags, "--name", "roof", "--bus", "2", "--role", "producer",
                 "--technology", "pv", "--wait"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    tx_id = re.search(r"technology roof: accepted tx ([0-9a-f]{64})", out)
    assert tx_id is not None, out
    with Client.connect(net.operator.address) as client:
        stored = client.transaction(bytes.fromhex(tx_id.group(1)))
    payload = txn.decode(stored["tx"]).transaction.payload
    assert payload == txn.DeclareTechnology("pv")
    with pytest.raises(SystemExit):  # not a label the ledger knows
        main(["register", *flags, "--name", "x", "--bus", "2", "--role", "producer",
              "--technology", "coal"])  # fmt: skip
