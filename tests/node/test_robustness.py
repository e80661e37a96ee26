"""A real operator answers bad input with typed error replies and keeps serving others."""

from __future__ import annotations

import pytest

from market import transactions as txn
from node.client.clients import Client
from node.errors import ConnectionLost, RequestFailed
from node.wire.protocol import HEADER, ErrorReply, frame, request_body
from node.wire.rpc import SyncRpc
from tests.node.conftest import peer_key

pytestmark = pytest.mark.slow


def connect(address: str) -> SyncRpc:
    host, port = address.rsplit(":", 1)
    return SyncRpc(host, int(port), timeout=10)


def error_code(call) -> str:
    with pytest.raises(RequestFailed) as exc:
        call()
    return exc.value.code


@pytest.mark.parametrize("role", ["operator", "replica"])
def test_bad_input_gets_error_replies_and_good_clients_go_on(make_net, role):
    net = make_net(replicas=0 if role == "operator" else 1)
    target = net.nodes[-1]  # a replica relays the operator's error replies for writes
    address = target.address
    good = Client.connect(address, key=peer_key(1))
    good.register("good", bus="B1", role="prosumer")
    coid = iter(range(1, 100))

    def good_client_still_served() -> None:
        placed = good.place_order("electricity", 1, "bid", 100, 100, client_order_id=next(coid))
        assert good.wait_committed(placed.tx_id) >= 0

    # malformed frame: not msgpack; the connection survives it
    raw = connect(address)
    raw.send_raw(HEADER.pack(4) + b"\xc1\xc1\xc1\xc1")
    message = raw.read_message()
    assert isinstance(message, ErrorReply) and message.code == "malformed"
    assert raw.call("ping") == {}
    good_client_still_served()

    # unknown command and bad arguments
    assert error_code(lambda: raw.call("no_such_command")) == "unknown_command"
    assert error_code(lambda: raw.call("submit", {"tx": "not bytes"})) == "bad_arguments"
    assert error_code(lambda: raw.call("submit", {"tx": b"\x93\x01"})) == "bad_transaction"

    # forged signature
    chain_id = good.status()["chain_id"]
    mallory = peer_key(2)
    signed = txn.make(mallory, chain_id, 1, txn.RegisterPeer("m", "B1", "prosumer"))
    forged = bytearray(signed.to_bytes())
    forged[-5] ^= 0x40
    assert error_code(lambda: raw.call("submit", {"tx": bytes(forged)})) == "bad_signature"
    # someone else's key cannot act for a peer: a transaction claiming good's key is forged
    impostor = txn.make(mallory, chain_id, 50, txn.CancelOrder(1)).to_bytes()
    impostor = impostor.replace(mallory.public_key_bytes(), good.key.public_key_bytes())
    assert error_code(lambda: raw.call("submit", {"tx": impostor})) == "bad_signature"
    good_client_still_served()

    # replayed nonce: the exact same bytes twice
    raw.call("submit", {"tx": signed.to_bytes()})
    assert error_code(lambda: raw.call("submit", {"tx": signed.to_bytes()})) == "bad_nonce"
    # operator-only kind from a peer, and another chain's transaction
    close = txn.make(mallory, chain_id, 2, txn.CloseSlot("electricity", 1)).to_bytes()
    assert error_code(lambda: raw.call("submit", {"tx": close})) == "not_permitted"
    other = txn.make(mallory, "other-chain", 3, txn.CancelOrder(1)).to_bytes()
    assert error_code(lambda: raw.call("submit", {"tx": other})) == "bad_transaction"
    good_client_still_served()

    # oversized frame: refused from its length prefix, then the connection is closed
    huge = connect(address)
    huge.send_raw(HEADER.pack(1 << 31))
    message = huge.read_message()
    assert isinstance(message, ErrorReply) and message.code == "frame_too_large"
    with pytest.raises(ConnectionLost):
        huge.read_message()

    # a client that sends half a frame and stalls does not block anyone
    stall = connect(address)
    stall.send_raw(frame(request_body(1, "ping", {}))[:7])
    good_client_still_served()
    assert raw.call("ping") == {}

    for client in (raw, huge, stall):
        client.close()
    good.close()
    assert all(node.running for node in net.nodes)
