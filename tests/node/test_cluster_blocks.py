"""Blocks cut by markers in the log are a function of the log alone.

Two producers read the same log entries, delivered in different chunks, with
clocks far apart and different signers' submissions pending: they must cut
byte-identical blocks. A reference model (the boundaries computed directly
from the entry list) says where each block ends.
"""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.keys import SigningKey
from market import transactions as txn
from market.state import ExchangeState
from node.clock import FakeClock
from node.pipeline.blocks import BlockLimits, BlockProducer
from node.pipeline.intake import Intake
from node.pipeline.log_time import LogTimePolicy, encode_tick
from node.pipeline.sequencer import EmbeddedLog

CHAIN = "p2pex-local"
CHAIN_KEY = SigningKey.from_seed(b"\x01" * 32)
PEERS = [SigningKey.from_seed(bytes([i + 2]) * 32) for i in range(3)]
START = 1_700_000_000_000_000_000
INTERVAL_NS = 50
MAX_TXS = 4


def make_entries(kinds: list[int]) -> list[bytes]:
    """Transactions (registrations, then orders) and ticks, from a list of choices."""
    nonces = [0, 0, 0]
    entries = []
    time_ns = START
    registered = [False] * 3
    for kind in kinds:
        if kind >= 3:  # a tick, some nanoseconds later (or earlier: log time never goes back)
            time_ns += (kind - 3) * 17 - 10
            entries.append(encode_tick(max(time_ns, 0)))
            continue
        key = PEERS[kind]
        nonces[kind] += 1
        if not registered[kind]:
            registered[kind] = True
            payload: txn.Payload = txn.RegisterPeer(f"p{kind}", "B1", "prosumer")
        else:
            side = "bid" if nonces[kind] % 2 else "ask"
            price = 100 if side == "bid" else 130
            payload = txn.PlaceOrder(
                "electricity", 1, side, price, 1_000, "GTC", 0, False, "", nonces[kind]
            )
        entries.append(txn.make(key, CHAIN, nonces[kind], payload).to_bytes())
    return entries


def expected_ends(entries: list[bytes]) -> list[int]:
    """The log position after each block's last entry, computed directly."""
    ends = []
    log_time = 0
    open_time = None
    count = 0
    for position, entry in enumerate(entries):
        if entry[:1] == b"\xc1":
            log_time = max(log_time, int.from_bytes(entry[-8:], "big"))
            if open_time is not None and log_time >= open_time + INTERVAL_NS:
                ends.append(position + 1)
                open_time, count = None, 0
            continue
        if open_time is None:
            open_time = log_time
        count += 1
        if count == MAX_TXS:
            ends.append(position + 1)
            open_time, count = None, 0
    return ends


async def produce(entries: list[bytes], chunks: list[int], clock_ns: int) -> list[tuple]:
    """Feed ``entries`` to a producer in chunks; return (block bytes, end position) cut."""
    log = EmbeddedLog()
    state = ExchangeState(CHAIN, CHAIN_KEY.public_key_bytes())
    blocks: list[tuple] = []
    producer = BlockProducer(
        chain_id=CHAIN,
        signer=CHAIN_KEY,
        state=state,
        log=log,
        intake=Intake(log),
        clock=FakeClock(clock_ns),
        limits=BlockLimits(interval=3600.0, max_txs=MAX_TXS),  # the clock never cuts
        parent=None,
        emit=lambda block, built: blocks.append((block.to_bytes(), built.end_position)),
        policy=LogTimePolicy(INTERVAL_NS),
    )
    task = asyncio.create_task(producer.run())
    position = 0
    for size in chunks:
        for entry in entries[position : position + size]:
            log.append(entry)
        position += size
        for _ in range(5):
            await asyncio.sleep(0)
    for entry in entries[position:]:
        log.append(entry)
    for _ in range(20):
        await asyncio.sleep(0)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return blocks


@settings(max_examples=40, deadline=None)
@given(
    kinds=st.lists(st.integers(0, 8), min_size=1, max_size=40),
    chunks_a=st.lists(st.integers(1, 7), max_size=10),
    chunks_b=st.lists(st.integers(1, 7), max_size=10),
)
def test_readers_of_the_same_log_cut_identical_blocks(kinds, chunks_a, chunks_b):
    entries = make_entries(kinds)
    a = asyncio.run(produce(entries, chunks_a, clock_ns=0))
    b = asyncio.run(produce(entries, chunks_b, clock_ns=START * 2))
    assert a == b
    assert [end for _, end in a] == expected_ends(entries)


def test_block_time_comes_from_the_ticks_not_the_clock():
    from ledger.block import decode_block

    entries = make_entries([3 + 1, 0, 1, 3 + 3, 3 + 4])  # tick, tx, tx, tick, tick
    blocks = asyncio.run(produce(entries, [], clock_ns=12345))
    assert [end for _, end in blocks] == [5]  # the second tick is 58 ns after the first
    header = decode_block(blocks[0][0]).header
    assert header.time_ns == START + 7  # the log time when the block opened


def test_a_validator_skips_its_tick_when_another_ticked_recently():
    from node.pipeline.log_time import Ticker, decode_tick

    async def main() -> list[int]:
        clock = FakeClock(START)
        log = EmbeddedLog()
        log_time = [0]
        ticker = Ticker(log, clock, 0.010, lambda: True, log_time=lambda: log_time[0])
        task = asyncio.create_task(ticker.run())
        for step in range(6):
            await asyncio.sleep(0)
            if step == 2:  # another validator's tick at the current time
                log_time[0] = clock.time_ns() + 1
            clock.advance(10_000_000)
            for _ in range(3):
                await asyncio.sleep(0)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return [decode_tick(entry) or 0 for entry in log.read(0, 100)]

    ticks = asyncio.run(main())
    step = 10_000_000
    # ticks at every 10 ms step but the one right after another validator's tick
    assert ticks == [START + n * step for n in (1, 2, 4, 5, 6)]
