"""A replica process refuses forged blocks from its upstream and never stores them.

The upstream here is a fake node in the test process that serves a valid
genesis block followed by one forged block. Some forgeries are signed with
the real operator key (a faulty or compromised operator): only the replay
of the state machine can catch those.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time

import pytest

from ledger.block import Block, BlockHeader, decode_block
from ledger.keys import SigningKey, save_signing_key
from ledger.results import TradeRecord, decode_result
from market import transactions as txn
from market.state import ExchangeState
from node.client.clients import Client
from node.localnet import NodeProcess
from node.pipeline import chain
from node.wire.server import RpcServer
from tests.node.conftest import peer_key

pytestmark = pytest.mark.slow

CHAIN = "p2pex-local"  # the default chain id of `p2pex node run`
OPERATOR = SigningKey.from_seed(b"\x07" * 32)


def honest_chain() -> tuple[list[Block], ExchangeState]:
    """Block 0: two peers register, one sells; block 1: the other buys (a trade)."""
    state = ExchangeState(CHAIN, OPERATOR.public_key_bytes())
    seller, buyer = peer_key(1), peer_key(2)
    batches = [
        [
            txn.make(seller, CHAIN, 1, txn.RegisterPeer("s", "B1", "producer")),
            txn.make(buyer, CHAIN, 1, txn.RegisterPeer("b", "B2", "consumer")),
            txn.make(
                seller,
                CHAIN,
                2,
                txn.PlaceOrder("electricity", 1, "ask", 100, 500, "GTC", 0, False, "", 1),
            ),
        ],
        [
            txn.make(
                buyer,
                CHAIN,
                2,
                txn.PlaceOrder("electricity", 1, "bid", 120, 200, "GTC", 0, False, "", 1),
            )
        ],
    ]
    blocks: list[Block] = []
    for i, batch in enumerate(batches):
        results = state.begin_block(1_000 + i)
        results += [r for signed in batch for r in state.apply(signed).results]
        blocks.append(
            chain.build(
                OPERATOR,
                chain_id=CHAIN,
                parent=blocks[-1].header if blocks else None,
                time_ns=1_000 + i,
                transactions=[s.to_bytes() for s in batch],
                results=results,
                state_digest=state.state_digest(),
            )
        )
    return blocks, state


def resign(block: Block, **changes) -> Block:
    """The block with header fields or body changed, re-signed by the operator."""
    results = changes.pop("results", block.results)
    transactions = changes.pop("transactions", block.transactions)
    header = block.header
    fields = {f.name: getattr(header, f.name) for f in dataclasses.fields(BlockHeader) if f.init}
    fields.update(changes)
    roots = chain.build(
        OPERATOR,
        chain_id=CHAIN,
        parent=None,
        time_ns=0,
        transactions=transactions,
        results=results,
        state_digest=bytes(32),
    ).header
    fields["result_root"], fields["tx_root"] = roots.result_root, roots.tx_root
    new = BlockHeader(**fields)
    return Block(new, OPERATOR.sign(new.signing_message()), tuple(transactions), tuple(results))


def forgeries() -> dict[str, tuple[list[bytes], str]]:
    blocks, _ = honest_chain()
    good0, good1 = blocks
    flipped = bytes([good1.signature[0] ^ 1]) + good1.signature[1:]
    trade_index = next(
        i for i, r in enumerate(good1.results) if isinstance(decode_result(r), TradeRecord)
    )
    trade = decode_result(good1.results[trade_index])
    altered = list(good1.results)
    altered[trade_index] = dataclasses.replace(trade, price=trade.price + 1).to_bytes()
    unsigned_alter = Block(good1.header, good1.signature, good1.transactions, tuple(altered))
    tx = good1.transactions[0]  # canonical [1, 1, body, signature]: the signature ends it
    forged_txs = (tx[:-1] + bytes([tx[-1] ^ 1]), *good1.transactions[1:])
    return {
        "bad_signature": (
            [
                good0.to_bytes(),
                Block(good1.header, flipped, good1.transactions, good1.results).to_bytes(),
            ],
            "BadBlockSignature",
        ),
        "altered_trade": ([good0.to_bytes(), unsigned_alter.to_bytes()], "BadResultRoot"),
        # a transaction whose signature does not verify, in a block the operator signed
        "forged_transaction_signature": (
            [good0.to_bytes(), resign(good1, transactions=forged_txs).to_bytes()],
            "BadTransactionSignature",
        ),
        "altered_trade_resigned": (
            [good0.to_bytes(), resign(good1, results=tuple(altered)).to_bytes()],
            "replay gives other results",
        ),
        "wrong_previous_hash": (
            [good0.to_bytes(), resign(good1, prev_hash=bytes(32)).to_bytes()],
            "BadParentHash",
        ),
        "wrong_state_digest": (
            [good0.to_bytes(), resign(good1, state_digest=b"\x01" * 32).to_bytes()],
            "state digest",
        ),
    }


class FakeUpstream:
    """A node that serves a fixed list of block bytes (``subscribe`` and ``blocks``)."""

    def __init__(self, blocks: list[bytes]) -> None:
        self.blocks = blocks
        self.loop = asyncio.new_event_loop()

        async def subscribe(session, args):
            return {"subscriptions": {}, "height": len(self.blocks)}

        async def get_blocks(session, args):
            start = args.get("from", 0)
            return {"blocks": self.blocks[start:], "height": len(self.blocks)}

        self.server = RpcServer({"subscribe": subscribe, "blocks": get_blocks})
        self.port = self.loop.run_until_complete(self.server.start_tcp("127.0.0.1", 0))
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.close(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    """Start one replica per scenario, all at once, and collect what each ended with."""
    blocks, _ = honest_chain()
    scenarios = {"honest": ([b.to_bytes() for b in blocks], None), **forgeries()}
    root = tmp_path_factory.mktemp("forged")
    key_file = root / "operator.pem"
    save_signing_key(OPERATOR, key_file)
    upstreams, replicas = [], {}
    try:
        for name, (chain_blocks, _) in scenarios.items():
            upstream = FakeUpstream(chain_blocks)
            upstreams.append(upstream)
            replicas[name] = NodeProcess(
                name,
                "replica",
                root / name,
                operator_key=key_file,
                upstream=f"127.0.0.1:{upstream.port}",
            )
        for replica in replicas.values():
            replica.launch()
        for replica in replicas.values():
            replica.wait_ready(30)
        results = {}
        for name, replica in replicas.items():
            results[name] = observe(replica, refused=scenarios[name][1] is not None)
        return scenarios, results
    finally:
        for replica in replicas.values():
            replica.kill()
        for upstream in upstreams:
            upstream.close()


def observe(replica, *, refused: bool):
    """Wait until the replica stored the honest chain or reported a refusal."""
    deadline = time.monotonic() + 30
    with Client.connect(replica.address) as client:
        while True:
            status = client.status()
            if status["refused"] if refused else status["height"] == 2:
                break
            assert time.monotonic() < deadline, replica.log_tail()
            time.sleep(0.05)
        return status, client.blocks(0), replica.log_tail()


def test_the_honest_chain_is_accepted(outcomes):
    _, results = outcomes
    status, stored, _ = results["honest"]
    assert status["height"] == 2 and status["refused"] == [] and len(stored) == 2


@pytest.mark.parametrize("name", sorted(forgeries()))
def test_forged_block_is_refused_and_not_stored(outcomes, name):
    scenarios, results = outcomes
    chain_blocks, reason = scenarios[name]
    status, stored, log = results[name]
    assert status["height"] == 1
    refusal = status["refused"][0]
    assert refusal["height"] == 1
    assert reason in refusal["reason"]
    assert "REFUSED block 1" in log
    # the good block is served, the forged one was never stored
    assert len(stored) == 1
    assert decode_block(stored[0]).header == decode_block(chain_blocks[0]).header
