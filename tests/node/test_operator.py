"""The operator in-process, with a fake clock and in-memory connections (no sockets)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ledger.block import decode_block
from ledger.errors import StoreError
from ledger.keys import SigningKey
from market import transactions as txn
from market.errors import DuplicateTransaction
from node.client.clients import AsyncClient
from node.clock import FakeClock
from node.config import NodeConfig
from node.errors import RequestFailed
from node.pipeline.sequencer import EmbeddedLog
from node.pipeline.verifier import BatchVerifier
from node.roles.operator import Operator
from node.wire.rpc import AsyncRpc
from node.wire.transport import memory_pair
from tests.node.conftest import peer_key

OPERATOR = SigningKey.from_seed(b"\x05" * 32)
START_NS = 1_700_000_000_000_000_000


class JumpingClock(FakeClock):
    """A ``FakeClock`` whose time jumps to each timer at the event loop's next turn.

    For tests that need blocks cut but do not care when (trio's autojump):
    a block's deadline passes as soon as the loop has run what was ready.
    """

    def call_at(self, when, callback):
        timer = super().call_at(when, callback)
        asyncio.get_running_loop().call_soon(self._jump_to, when)
        return timer

    def _jump_to(self, when: float) -> None:
        self.advance(max(0, round((when - self.monotonic()) * 1e9)))


def make_operator(tmp_path: Path, clock: FakeClock | None = None, **config):
    """An operator on ``clock`` (default: a ``JumpingClock`` at START_NS)."""
    clock = clock if clock is not None else JumpingClock(START_NS)
    cfg = NodeConfig(data_dir=tmp_path / "op", operator_key=tmp_path / "unused.pem", **config)
    return Operator(cfg, OPERATOR, clock), clock


async def attach(node: Operator, key: SigningKey | None = None) -> AsyncClient:
    """A client on an in-memory connection to ``node``."""
    client_end, server_end = memory_pair()
    asyncio.get_running_loop().create_task(node.server.serve(server_end))
    return AsyncClient(AsyncRpc(client_end), key)


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 20))


def test_blocks_are_cut_by_count_and_by_time(tmp_path):
    async def main():
        # The block deadline is the fake clock's: nothing cuts the third
        # block until the test moves the clock, however slow the machine.
        node, clock = make_operator(
            tmp_path, FakeClock(START_NS), block_max_txs=3, block_interval_ms=1000
        )
        await node.start("127.0.0.1", 0)
        clients = [await attach(node, peer_key(n)) for n in range(7)]
        done = await asyncio.gather(
            *(c.register(f"p{i}", bus="B1", role="prosumer") for i, c in enumerate(clients))
        )
        loop = asyncio.get_running_loop()
        give_up = loop.time() + 0.8
        while node.store.height < 2 and loop.time() < give_up:  # two full blocks are cut
            await asyncio.sleep(0.001)  # at once and stored...
        assert node.store.height == 2  # ... while the 7th waits for the 1 s deadline
        assert node.producer.block is not None
        clock.advance(999_999_999)
        await asyncio.sleep(0)
        assert node.producer.block is not None  # not a nanosecond early
        clock.advance(1)
        heights = await asyncio.gather(*(clients[0].wait_committed(d.tx_id) for d in done))
        assert sorted(heights) == [0, 0, 0, 1, 1, 1, 2]
        clock.advance(5_000)
        late = await attach(node, peer_key(9))
        registered = await late.register("late", bus="B1", role="grid")
        clock.advance(1_000_000_000)
        await late.wait_committed(registered.tx_id)
        blocks = [node.store.block_at(h) for h in range(4)]
        assert [len(b.transactions) for b in blocks] == [3, 3, 1, 1]
        # the header time is the node clock's when the block opened
        later = START_NS + 1_000_000_000 + 5_000
        assert [b.header.time_ns for b in blocks] == [START_NS] * 3 + [later]
        assert blocks[3].header.state_digest == node.state.state_digest()
        clients.append(late)
        for c in clients:
            await c.close()
        await node.close()

    run(main())


def test_subscribers_get_trades_and_blocks(tmp_path):
    async def main():
        node, _ = make_operator(tmp_path, block_interval_ms=20)
        await node.start("127.0.0.1", 0)
        seller, buyer = await attach(node, peer_key(1)), await attach(node, peer_key(2))
        watcher = await attach(node)
        await watcher.subscribe("trades", "blocks")
        await seller.register("s", bus="B1", role="producer")
        await buyer.register("b", bus="B1", role="consumer")
        await seller.place_order("electricity", 4, "ask", 100, 1_000)
        bid = await buyer.place_order("electricity", 4, "bid", 105, 400)
        assert [e["type"] for e in bid.events] == ["accepted", "trade"]
        committed_at = await buyer.wait_committed(bid.tx_id)
        seen = {}
        while "trades" not in seen:
            event = await watcher.next_event(timeout=5)
            seen.setdefault(event.topic, event.data)
        trade = seen["trades"]
        assert (trade["price"], trade["quantity"]) == (100, 400)
        assert trade["taker_account"] == peer_key(2).account_id
        block = decode_block(seen["blocks"]["block"])
        assert block.header.height == seen["blocks"]["height"]
        assert (await buyer.trades(peer_key(2).account_id))[0]["quantity"] == 400
        assert [p["name"] for p in await watcher.peers()] == sorted(
            ["s", "b"], key=lambda n: {"s": peer_key(1), "b": peer_key(2)}[n].account_id
        )
        stored = await watcher.transaction(bid.tx_id)
        assert stored["height"] == committed_at
        block = decode_block((await watcher.blocks(committed_at, 1))[0])
        assert block.transactions[stored["index"]] == stored["tx"]
        book = await watcher.book("electricity", 4)
        assert book == {"bids": [], "asks": [[100, 600]], "closed": False}
        for c in (seller, buyer, watcher):
            await c.close()
        await node.close()

    run(main())


def test_restart_replays_the_stored_chain(tmp_path):
    async def first():
        node, _ = make_operator(tmp_path, block_interval_ms=10)
        await node.start("127.0.0.1", 0)
        client = await attach(node, peer_key(1))
        await client.register("p", bus="B1", role="prosumer")
        placed = await client.place_order("electricity", 1, "bid", 100, 500)
        await client.wait_committed(placed.tx_id)
        digest = node.state.state_digest()
        await client.close()
        await node.close()
        return digest, placed

    async def second(digest, placed):
        node, _ = make_operator(tmp_path, block_interval_ms=10)
        assert node.state.state_digest() == digest
        await node.start("127.0.0.1", 0)
        client = await attach(node, peer_key(1))
        assert await client.wait_committed(placed.tx_id) == node.store.height - 1
        with pytest.raises(RequestFailed) as exc:  # the nonce window is not reused
            await client.submit(txn.CancelOrder(1), nonce=placed.nonce)
        assert exc.value.code == "bad_nonce"
        assert (await client.cancel_order(placed.client_order_id)).events[0]["type"] == "cancelled"
        await client.close()
        await node.close()

    digest, placed = run(first())
    run(second(digest, placed))


def test_a_failed_block_append_is_fatal_and_never_reported_committed(tmp_path):
    async def main():
        node, _ = make_operator(tmp_path, block_interval_ms=10)
        await node.start("127.0.0.1", 0)
        client = await attach(node, peer_key(1))

        def full_disk(block):
            failed = asyncio.get_running_loop().create_future()
            failed.set_exception(StoreError("disk full"))
            return failed

        node.writer.append_soon = full_disk
        done = await client.register("p", bus="B1", role="prosumer")
        await asyncio.wait_for(node.fatal.wait(), 5)
        with pytest.raises(RequestFailed) as exc:
            await client.wait_committed(done.tx_id, timeout=0.2)
        assert exc.value.code == "timeout"
        await client.close()
        await node.close()

    run(main())


class ShuffledChecks(BatchVerifier):
    """Signature checks that finish out of order, as they may with several workers."""

    def check(self, signed, value=None):
        future = asyncio.get_running_loop().create_future()
        txn.verify(signed)
        delay = (signed.transaction.nonce * 7 % 5) / 1000  # later nonces often finish first
        result = signed if value is None else value
        asyncio.get_running_loop().call_later(delay, future.set_result, result)
        return future


@pytest.mark.parametrize("checks", ["in order", "shuffled"])
def test_pipelined_submits_on_one_connection_are_sequenced_in_order(tmp_path, checks):
    async def main():
        clock = JumpingClock(START_NS)
        cfg = NodeConfig(
            data_dir=tmp_path / "op", operator_key=tmp_path / "unused.pem", block_interval_ms=5
        )
        node = Operator(cfg, OPERATOR, clock, EmbeddedLog())
        if checks == "shuffled":
            node.verifier = ShuffledChecks(0)
        await node.start("127.0.0.1", 0)
        client = await attach(node, peer_key(1))
        await client.register("p", bus="B1", role="prosumer")
        # 40 submissions in flight at once on one connection, nonces in send order
        placed = await asyncio.gather(
            *(client.place_order("electricity", 1, "bid", 100 + i, 100) for i in range(40))
        )
        assert [p.nonce for p in placed] == list(range(2, 42))
        # every one of them was applied and rests
        book = await client.book("electricity", 1, levels=100)
        assert len(book["bids"]) == 40
        await client.wait_committed(placed[-1].tx_id)
        nonces = [
            txn.decode(data).transaction.nonce
            for h in range(node.store.height)
            for data in node.store.block_at(h).transactions
        ]
        assert nonces == list(range(1, 42))
        await client.close()
        await node.close()

    run(main())


def test_status_lists_a_closed_slot_only_once_its_block_is_stored(tmp_path):
    """The operator's state runs ahead of its store; ``status`` must not.

    Readers wait for ``cleared`` and then read settlements from the store: a
    slot listed before its block is durable gave them an empty read (CI run
    of 665df1d). The store's append is held back here to open that window.
    """

    async def main():
        node, _ = make_operator(tmp_path, block_interval_ms=10)
        await node.start("127.0.0.1", 0)
        client = await attach(node)
        release = asyncio.Event()
        append_soon = node.writer.append_soon
        holding = set()

        def held(block):
            stored = asyncio.get_running_loop().create_future()

            async def later():
                await release.wait()
                try:
                    await append_soon(block)
                except Exception as exc:
                    stored.set_exception(exc)
                else:
                    stored.set_result(None)

            task = asyncio.ensure_future(later())
            holding.add(task)
            task.add_done_callback(holding.discard)
            return stored

        node.writer.append_soon = held
        outcome = await node.submit_own(txn.CloseSlot("electricity", 5))
        while node.producer.block is not None:  # the block is cut and waits in the writer
            await asyncio.sleep(0)
        assert ("electricity", 5) in node.state.closed
        assert (await client.status())["closed"] == []
        release.set()
        await client.wait_committed(outcome.tx_id)
        assert (await client.status())["closed"] == [["electricity", 5]]
        await client.close()
        await node.close()

    run(main())


def test_status_ignores_a_rejected_clearing(tmp_path):
    """A rejected PublishClearing is in its block but cleared nothing."""

    async def main():
        node, _ = make_operator(tmp_path, block_interval_ms=10)
        await node.start("127.0.0.1", 0)
        client = await attach(node)
        early = await node.submit_own(txn.PublishClearing("electricity", 3, (), b""))
        assert early.rejected == "slot_open"
        await client.wait_committed(early.tx_id)
        assert node.store.transaction(early.tx_id) is not None  # in a stored block
        assert (await client.status())["cleared"] == []
        assert await client.clearing("electricity", 3) is None
        await client.close()
        await node.close()

    run(main())


def test_the_clearing_read_finds_the_slots_published_clearing(tmp_path):
    """``clearing`` answers from the state's index, not by scanning blocks."""

    async def main():
        node, _ = make_operator(tmp_path, block_interval_ms=10)
        await node.start("127.0.0.1", 0)
        client = await attach(node)
        await node.submit_own(txn.CloseSlot("electricity", 3))
        await node.submit_own(txn.CloseSlot("electricity", 4))
        rows = ((b"\x01" * 32, -1500, 2400), (b"\x02" * 32, 1500, -2400))
        published = await node.submit_own(
            txn.PublishClearing("electricity", 3, rows, b"certificate bytes")
        )
        assert published.rejected is None
        await client.wait_committed(published.tx_id)
        found = await client.clearing("electricity", 3)
        assert found is not None
        assert found["tx_id"] == published.tx_id
        assert found["height"] == node.store.transaction(published.tx_id).height
        assert found["certificate"] == b"certificate bytes"
        got = tuple((r["account"], r["energy_wh"], r["payment"]) for r in found["settlements"])
        assert got == rows
        assert await client.clearing("electricity", 4) is None  # closed, not cleared
        assert await client.clearing("heat", 3) is None  # another product
        with pytest.raises(RequestFailed, match="unknown product"):
            await client.clearing("gas", 3)
        await client.close()
        await node.close()

    run(main())


def test_the_block_interval_counts_from_when_the_first_transaction_arrived(tmp_path):
    """A slow signature check eats into the block interval instead of adding to it."""

    clock = FakeClock(START_NS)

    class SlowChecks(BatchVerifier):
        """A signature check that takes 0.2 s of the node's clock."""

        def __init__(self):
            super().__init__(0)
            self.asked_at: list[float] = []

        def check(self, signed, value=None):
            loop = asyncio.get_running_loop()
            self.asked_at.append(clock.monotonic())
            future = loop.create_future()

            def done():
                clock.advance(200_000_000)
                future.set_result(signed if value is None else value)

            loop.call_soon(done)
            return future

    async def main():
        node, _ = make_operator(tmp_path, clock, block_interval_ms=500)
        node.verifier = checks = SlowChecks()
        await node.start("127.0.0.1", 0)
        client = await attach(node, peer_key(1))
        await client.register("p", bus="B1", role="prosumer")
        applied_at = clock.monotonic()
        block = node.producer.block
        assert block is not None
        # read just before the check started, 0.2 s before it was applied
        assert block.deadline == checks.asked_at[0] + 0.5
        assert applied_at == checks.asked_at[0] + 0.2
        await client.close()
        await node.close()

    run(main())


def test_entries_of_another_log_writer_are_verified_before_they_are_applied(tmp_path):
    """A shared log holds bytes this node never checked: a forged entry must not apply."""

    async def main():
        shared = EmbeddedLog()
        clock = FakeClock(START_NS)
        cfg = NodeConfig(
            data_dir=tmp_path / "op", operator_key=tmp_path / "unused.pem", block_interval_ms=5
        )
        node = Operator(cfg, OPERATOR, clock, shared)
        await node.start("127.0.0.1", 0)
        honest = peer_key(1)
        good = txn.make(honest, cfg.chain_id, 1, txn.RegisterPeer("h", "B1", "prosumer"))
        # the forger puts a registration in another key's name, with a signature
        # that key never made (a valid one with its last byte changed)
        victim = txn.make(peer_key(3), cfg.chain_id, 1, txn.RegisterPeer("victim", "B1", "grid"))
        forged = bytearray(victim.to_bytes())
        forged[-1] ^= 1
        assert txn.decode(bytes(forged)).transaction.sender == peer_key(3).public_key_bytes()
        await shared.append(bytes(forged))  # the second writer
        await shared.append(good.to_bytes())
        client = await attach(node, peer_key(4))
        mine = await client.register("mine", bus="B1", role="consumer")  # through intake
        clock.advance(5_000_000)
        await client.wait_committed(mine.tx_id)
        stored = [
            txn.decode(data).tx_id
            for h in range(node.store.height)
            for data in node.store.block_at(h).transactions
        ]
        assert stored == [good.tx_id, mine.tx_id]
        accounts = {p.name for p in node.state.peers.values()}
        assert accounts == {"h", "mine"}
        # and a foreign entry can be waited for like any other
        assert (await client.wait_committed(good.tx_id)) == 0
        await client.close()
        await node.close()

    run(main())


def test_the_same_transaction_twice_in_flight_is_called_a_replay(tmp_path):
    async def main():
        node, clock = make_operator(tmp_path, FakeClock(START_NS), block_interval_ms=5)
        await node.start("127.0.0.1", 0)
        key = peer_key(7)
        signed = txn.make(key, node.config.chain_id, 1, txn.RegisterPeer("p", "B1", "grid"))
        first = await node.submit_bytes(signed.to_bytes())  # applied, its block not yet stored
        with pytest.raises(DuplicateTransaction, match="already on its way: a replay"):
            await node.submit_bytes(signed.to_bytes())
        clock.advance(5_000_000)
        client = await attach(node)
        assert await client.wait_committed(first.tx_id) == 0
        await client.close()
        await node.close()

    run(main())
