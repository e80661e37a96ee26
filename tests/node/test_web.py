"""The web gateway without a browser: parameters, chain view, feeder layout, proofs, errors."""

from __future__ import annotations

import asyncio
import hashlib
import json

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import given, settings
from hypothesis import strategies as st

from clearing import reference_case_path
from ledger.audit import InclusionProof
from ledger.block import build_block
from ledger.keys import SigningKey
from ledger.merkle import hash_leaf, inclusion_proof
from market import transactions as txn
from node.web.chainview import ChainView, PublishedClearing
from node.web.convert import hex_param, int_param, to_json
from node.web.errors import BadParameter, NodeUnavailable, WebError
from node.web.feeder import clearing_view, feeder_layout, network_view
from node.web.gateway import Gateway
from node.web.proofs import check_proof

KEY = SigningKey.from_seed(b"\x07" * 32)
CHAIN = "p2pex-test"
NETWORK = dict(json.loads(reference_case_path().read_text())["network"])
NETWORK.pop("peer_bus")


def signed(payload: txn.Payload, nonce: int) -> bytes:
    return txn.make(KEY, CHAIN, nonce, payload).to_bytes()


def chain_of(*bodies: list[bytes]) -> list[bytes]:
    """Blocks (bytes) holding the given transactions, one block per list, with one result each."""
    blocks, parent = [], None
    for height, body in enumerate(bodies):
        results = [txn.rejection(hashlib.sha256(tx).digest(), f"r{height}") for tx in body]
        block = build_block(
            KEY,
            chain_id=CHAIN,
            parent=parent,
            time_ns=height + 1,
            transactions=body,
            results=results,
        )
        parent = block.header
        blocks.append(block.to_bytes())
    return blocks


# -- parameters -----------------------------------------------------------------------------------


def test_int_param_takes_decimal_integers_in_range_and_refuses_the_rest():
    assert int_param({"slot": "12"}, "slot") == 12
    assert int_param({}, "limit", 5) == 5
    for bad in ("", "x", "1.5", "0x10", "-1", "９", "1e3", "99999999999999999999"):
        with pytest.raises(BadParameter) as info:
            int_param({"slot": bad}, "slot")
        assert info.value.name == "slot" and info.value.got == bad
    with pytest.raises(BadParameter, match="want an integer 1 to 10"):
        int_param({"n": "11"}, "n", low=1, high=10)
    with pytest.raises(BadParameter, match="got None"):
        int_param({}, "slot")


def test_hex_param_wants_exactly_the_size():
    assert hex_param({"tx": "ab" * 32}, "tx", 32) == b"\xab" * 32
    for bad in ("ab" * 31, "zz" * 32, "ab" * 33, None):
        with pytest.raises(BadParameter):
            hex_param({} if bad is None else {"tx": bad}, "tx", 32)


def test_to_json_turns_bytes_into_hex_all_the_way_down():
    assert to_json({"a": [b"\x00", {"b": (1, b"\xff")}], 3: None}) == {
        "a": ["00", {"b": [1, "ff"]}],
        "3": None,
    }


# -- chain view -----------------------------------------------------------------------------------


def test_chain_view_keeps_network_slots_and_recent_blocks_in_order():
    network_json = json.dumps(NETWORK)
    blocks = chain_of(
        [signed(txn.SetNetwork(network_json), 0)],
        [signed(txn.CloseSlot("electricity", 4), 1), signed(txn.CloseSlot("electricity", 9), 2)],
        [],
    )
    view = ChainView(keep=2)
    assert view.ingest(blocks[1]) is None  # not the next block: ignored
    summaries = [view.ingest(b) for b in blocks]
    assert view.ingest(blocks[0]) is None  # a repeat: ignored
    assert view.height == 3
    assert view.network_json == network_json and view.network_height == 0
    assert view.slots == {("electricity", 4), ("electricity", 9)}
    assert [b["height"] for b in view.recent(5)] == [2, 1]  # newest first, only `keep`
    second = summaries[1]
    assert second is not None
    assert [t["kind"] for t in second["transactions"]] == ["close_slot", "close_slot"]
    assert [r["kind"] for r in second["results"]] == ["rejection", "rejection"]
    assert view.block(0) is None and view.block(2) is not None


def test_a_slot_is_drawn_on_the_network_in_force_when_its_gate_closed():
    old, new = json.dumps(NETWORK), json.dumps({**NETWORK, "voltage_kv": 20.0})
    blocks = chain_of(
        [signed(txn.SetNetwork(old), 0), signed(txn.CloseSlot("electricity", 1), 1)],
        [signed(txn.CloseSlot("electricity", 2), 2), signed(txn.SetNetwork(new), 3)],
        [signed(txn.CloseSlot("electricity", 3), 4)],
    )
    view = ChainView()
    for block in blocks:
        view.ingest(block)
    assert view.network_of("electricity", 1) == old
    assert view.network_of("electricity", 2) == old  # closed before the new one, same block
    assert view.network_of("electricity", 3) == new
    assert view.network_of("electricity", 4) == new  # not closed: the newest
    assert view.network_json == new and view.network_height == 1


# -- feeder layout --------------------------------------------------------------------------------


@st.composite
def trees(draw):
    """A random tree: bus i > 0 hangs below a bus with a smaller index."""
    n = draw(st.integers(1, 30))
    parents = [draw(st.integers(0, i - 1)) for i in range(1, n)]
    buses = [f"b{i}" for i in range(n)]
    lines = [{"from": f"b{p}", "to": f"b{i}"} for i, p in enumerate(parents, 1)]
    return {"root": "b0", "buses": buses, "lines": lines}, parents


def depth(parents, i):
    return 0 if i == 0 else 1 + depth(parents, parents[i - 1])


@given(trees())
@settings(max_examples=60, deadline=None)
def test_feeder_layout_puts_each_bus_one_column_right_of_its_parent(tree):
    network, parents = tree
    layout = feeder_layout(network)
    assert set(layout) == set(network["buses"])
    for i in range(len(network["buses"])):
        assert layout[f"b{i}"][0] == depth(parents, i)
    leaves = [b for b in network["buses"] if not any(ln["from"] == b for ln in network["lines"])]
    assert sorted(layout[b][1] for b in leaves) == list(range(len(leaves)))  # one row per leaf


def test_network_view_draws_every_bus_and_line_of_the_reference_feeder():
    view = network_view(json.dumps(NETWORK))
    assert [b["name"] for b in view["buses"]] == NETWORK["buses"]
    assert [ln["name"] for ln in view["lines"]] == [ln["name"] for ln in NETWORK["lines"]]
    with pytest.raises(ValueError, match="not a JSON object"):
        network_view("[1, 2]")


def test_a_prosumer_slot_cleared_in_the_horizon_form_is_drawn_from_its_settlements():
    """A slot with a prosumer spanning zero is published in the multi-period form (T = 1)."""
    from market.gate_clearing import job_from_state, run_job
    from tests.market.test_gate_horizon import FEEDER, prosumer_market

    chain, ids = prosumer_market(6_000, 1_000)
    rows, certificate = run_job(job_from_state(chain.state, "electricity", 2, "basic"))
    published = PublishedClearing(7, "electricity", 2, rows, certificate)
    peers = [
        {"account": account, "name": name, "bus": bus}
        for name, account, bus in (
            ("G", ids["G"], "B1"),
            ("C", ids["C"], "B3"),
            ("X", ids["X"], "B2"),
        )
    ]
    view = clearing_view(json.dumps(FEEDER), peers, published, tick=0.0001, slot_hours=0.25)
    assert view["model"] == "basic" and view["height"] == 7
    injected = {b["name"]: b["injection_kw"] for b in view["buses"]}
    by_account = {account: energy for account, energy, _ in rows}
    assert injected["B2"] == pytest.approx(by_account[ids["X"]] / 1000 / 0.25)
    assert injected["B2"] > 0  # the prosumer sells here
    assert all(b["prices"] == [] for b in view["buses"])  # its prices need the case's layout
    # the flow on L2 (B2 -> B3) carries what the consumer at B3 takes
    flows = {ln["name"]: ln["flow_kw"] for ln in view["lines"]}
    assert flows["L2"] == pytest.approx(-injected["B3"])
    with pytest.raises(ValueError, match="cannot read the clearing of slot 2"):
        garbled = PublishedClearing(7, "electricity", 2, rows, certificate[:-9] + b"\x00" * 9)
        clearing_view(json.dumps(FEEDER), peers, garbled, tick=0.0001, slot_hours=0.25)


# -- proofs ---------------------------------------------------------------------------------------


def proof_reply(blocks: list[bytes], height: int, index: int):
    from ledger.block import decode_block

    block = decode_block(blocks[height])
    hashes = [hash_leaf(r) for r in block.results]
    proof = InclusionProof(height, 1, index, len(hashes), tuple(inclusion_proof(hashes, index)))
    reply = {
        "proof": proof.to_bytes(),
        "header": block.header.to_bytes(),
        "leaf": block.results[index],
    }
    return reply, block


def test_check_proof_accepts_a_true_proof_and_refuses_each_kind_of_forgery():
    txs = [signed(txn.CloseSlot("electricity", s), s) for s in range(5)]
    blocks = chain_of(txs, txs[:2])
    reply, block = proof_reply(blocks, 0, 3)
    good = check_proof(reply, block_hash=block.hash)
    assert good["verified"] is True and good["root"] == block.header.result_root.hex()
    assert good["tree"] == "results" and good["size"] == 5

    forged_leaf = {**reply, "leaf": block.results[2]}
    assert "root" in check_proof(forged_leaf, block_hash=block.hash)["reason"]
    other = proof_reply(blocks, 1, 0)[1]
    assert "not the chain's block" in check_proof(reply, block_hash=other.hash)["reason"]
    tx_reply = {**reply, "leaf": txs[3]}
    wrong_tx = check_proof(tx_reply, block_hash=block.hash, tx_id=b"\x00" * 32)
    assert "not the transaction asked for" in wrong_tx["reason"]
    garbage = check_proof({"proof": b"\x01", "header": b"", "leaf": b""}, block_hash=block.hash)
    assert garbage["verified"] is False and "does not decode" in garbage["reason"]


# -- the HTTP side, with no node behind it -------------------------------------------------------


async def fetch_all(
    paths: list[str], method: str = "GET", headers: dict | None = None
) -> list[tuple[int, dict]]:
    gateway = Gateway("127.0.0.1:9")  # nothing listens on the discard port
    client = TestClient(TestServer(gateway.app()))
    await client.start_server()
    try:
        out = []
        for path in paths:
            response = await client.request(method, path)
            body = await response.json() if path.startswith("/api/") else {}
            if headers is not None:
                headers[path] = dict(response.headers)
            out.append((response.status, body))
        return out
    finally:
        await client.close()
        await gateway.close()


def test_api_answers_bad_parameters_400_unknown_404_and_a_missing_node_503():
    paths = {
        "/api/book": 400,
        "/api/book?slot=abc": 400,
        "/api/book?slot=1&product=gas": 400,
        "/api/book?slot=1&levels=0": 400,
        "/api/book?slot=1": 404,  # no transaction names the slot
        "/api/clearing?slot=1": 404,
        "/api/network": 404,
        "/api/proof?tx=00": 400,
        "/api/proof?height=-1&index=0": 400,
        "/api/trades?limit=100000": 400,
        "/api/blocks?limit=x": 400,
        "/api/blocks": 200,
        "/api/nothing": 404,
        "/api/status": 503,
        "/api/proof?height=0&index=0": 503,
    }
    answers = asyncio.run(fetch_all(list(paths)))
    for (path, want), (status, body) in zip(paths.items(), answers, strict=True):
        assert status == want, (path, body)
        if status != 200:
            assert body["status"] == status and body["error"], path


def test_api_refuses_writes_and_the_page_runs_only_its_own_script():
    answers = asyncio.run(fetch_all(["/api/status", "/api/book?slot=1"], method="POST"))
    assert [status for status, _ in answers] == [405, 405]
    headers: dict = {}
    statuses = asyncio.run(fetch_all(["/", "/static/app.js", "/static/nope.js"], headers=headers))
    assert [status for status, _ in statuses] == [200, 200, 404]
    policy = headers["/"]["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "form-action 'none'" in policy
    assert headers["/static/app.js"]["X-Content-Type-Options"] == "nosniff"


@given(
    st.sampled_from(["status", "book", "trades", "blocks", "proof", "network", "clearing"]),
    st.dictionaries(
        st.sampled_from(["slot", "product", "levels", "limit", "height", "index", "tx"]),
        st.text(max_size=70),
        max_size=4,
    ),
)
@settings(max_examples=25, deadline=None)
def test_no_query_makes_the_gateway_fail_with_500(route, query):
    from urllib.parse import urlencode

    [(status, body)] = asyncio.run(fetch_all([f"/api/{route}?{urlencode(query)}"]))
    assert status in (200, 400, 404, 503), body


class FakeNode:
    """Stands in for ``AsyncClient``: answers from a script of results and exceptions."""

    def __init__(self, script):
        self.script = script

    async def call(self, command, args=None):
        outcome = self.script.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    async def close(self):
        pass


def gateway_with(monkeypatch, *scripts):
    from node.web import gateway as module

    connections = [FakeNode(list(script)) for script in scripts]

    async def connect(address, **kwargs):
        return connections.pop(0)

    monkeypatch.setattr(module.AsyncClient, "connect", connect)
    return Gateway("127.0.0.1:1"), connections


def test_a_read_on_a_dropped_connection_is_sent_once_more_on_a_new_one(monkeypatch):
    from node.errors import ConnectionLost, NodeTimeout

    gateway, left = gateway_with(monkeypatch, [ConnectionLost("idle")], [{"height": 3}])
    assert asyncio.run(gateway.call("status")) == {"height": 3}
    assert left == []
    gateway, _ = gateway_with(monkeypatch, [ConnectionLost("a")], [ConnectionLost("b")])
    with pytest.raises(NodeUnavailable, match="b"):
        asyncio.run(gateway.call("status"))
    gateway, left = gateway_with(monkeypatch, [NodeTimeout("slow")], [{"height": 3}])
    with pytest.raises(NodeUnavailable, match="slow"):  # a slow node is not asked twice
        asyncio.run(gateway.call("status"))
    assert len(left) == 1


def test_the_nodes_refusals_keep_their_meaning(monkeypatch):
    from node.errors import RequestFailed

    for code, status in (("bad_arguments", 400), ("not_found", 404), ("internal", 502)):
        gateway, _ = gateway_with(monkeypatch, [RequestFailed(code, "why")])
        with pytest.raises(WebError, match="why") as info:
            asyncio.run(gateway.call("book", {"slot": 1}))
        assert info.value.status == status


def test_start_gateway_refuses_a_bad_or_taken_address_with_a_config_error():
    import socket

    from node.errors import ConfigError
    from node.web import start_gateway

    with pytest.raises(ConfigError, match="not HOST:PORT"):
        asyncio.run(start_gateway("nonsense", "127.0.0.1:1"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=f"cannot serve the web view on 127.0.0.1:{port}"):
            asyncio.run(start_gateway(f"127.0.0.1:{port}", "127.0.0.1:1"))
