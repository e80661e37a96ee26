"""Hostile frames against a running operator while a good client keeps being answered.

Seeded and bounded: a fixed list of attacks (``ATTACKS`` of them, drawn
with ``SEED``) runs from threads with blocking sockets, four at a time,
against an operator in this process on 127.0.0.1, while a good client places
orders and waits for their commits. The good client must get every answer;
nothing here measures how fast (no latency assertion: the machine may be
busy). Afterwards the node must not have failed, and must still store,
report and push blocks.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import msgpack

from node.wire.protocol import HEADER, frame, request_body
from tests.node.conftest import peer_key
from tests.node.test_operator import attach, make_operator

SEED = 20_261_205
ATTACKS = 60
LIMIT = 1 << 20  # the node's frame limit here: big enough to hurt, small enough to be quick


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _reset(sock: socket.socket) -> None:
    """Close with an RST: everything the connection had running is cancelled at once."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def _request(request_id: int, command: str, args: dict) -> bytes:
    return frame(request_body(request_id, command, args), LIMIT)


def _raw(kind: int, request_id: int, command: str, args_bytes: bytes) -> bytes:
    """A request frame whose args are given as msgpack bytes (any shape, any size)."""
    head = msgpack.packb([kind, request_id, command])[1:]  # without its array header
    body = b"\x94" + head + args_bytes
    return HEADER.pack(len(body)) + body


def attack_garbage(rng: random.Random) -> bytes:
    return rng.randbytes(rng.randint(1, 3000))


def attack_bad_bodies(rng: random.Random) -> bytes:
    return b"".join(frame(rng.randbytes(rng.randint(0, 60))) for _ in range(rng.randint(1, 200)))


def attack_many_values(rng: random.Random) -> bytes:
    """A frame within the limit holding as many empty maps as fit (cheap to send, dear to build)."""
    count = LIMIT - 64
    maps = b"\xdd" + count.to_bytes(4, "big") + b"\x80" * count
    return _raw(0, rng.randint(1, 100), "ping", b"\x81\xa1x" + maps)


def attack_many_small_lists(rng: random.Random) -> bytes:
    lists = b"\xdc\x03\xe8" + (b"\xdc\x03\xe8" + b"\x00" * 1000) * 1000
    return _raw(0, rng.randint(1, 100), "ping", b"\x81\xa1x" + lists)


def attack_deep(rng: random.Random) -> bytes:
    depth = rng.choice([17, 100, 5000, 100_000])
    return _raw(0, 1, "status", b"\x81\xa1x" + b"\x91" * depth + b"\xc0")


def attack_negative_ids(rng: random.Random) -> bytes:
    return b"".join(_raw(0, -rng.randint(1, 2**63), "ping", b"\x80") for _ in range(10))


def attack_oversized(rng: random.Random) -> bytes:
    return HEADER.pack(rng.randint(LIMIT + 1, 2**32 - 1)) + b"never read"


def attack_half_frame(rng: random.Random) -> bytes:
    whole = _request(1, "ping", {})
    return whole[: rng.randint(1, len(whole) - 1)]


def attack_flood(rng: random.Random) -> bytes:
    return (HEADER.pack(1) + b"\xc1") * rng.randint(1_000, 20_000)


def attack_waits(rng: random.Random) -> bytes:
    """Long waits with 1-5 ms (or absurd) timeouts, to be cancelled by the reset."""
    frames = []
    for i in range(1, rng.randint(50, 300)):
        timeout = rng.choice([1, 2, 3, 4, 5, 0, -1, 2**63 - 1])
        if rng.random() < 0.5:
            args = {"height": rng.choice([0, 1, 10**9, 2**63 - 1]), "timeout_ms": timeout}
            frames.append(_request(i, "wait_height", args))
        else:
            frames.append(
                _request(i, "wait_committed", {"tx_id": rng.randbytes(32), "timeout_ms": timeout})
            )
    return b"".join(frames)


def attack_odd_requests(rng: random.Random) -> bytes:
    """Canonical requests with wrong, missing or extreme arguments."""
    commands = ["ping", "status", "nonce", "submit", "blocks", "tx", "prove", "book", "trades"]
    commands += ["settlements", "peers", "subscribe", "wait_height", "balance", "statements"]
    commands += ["clearing", "nope", ""]
    values = [None, True, -1, 0, 2**63 - 1, -(2**63), "", "x" * 300, b"", rng.randbytes(32), [], {}]
    frames = []
    for _ in range(60):
        keys = ["tx", "tx_id", "sender", "from", "limit", "height", "index", "product", "slot"]
        keys += ["levels", "account", "topics", "timeout_ms"]
        args = {rng.choice(keys): rng.choice(values) for _ in range(rng.randint(0, 4))}
        frames.append(_request(rng.randint(0, 2**64 - 1), rng.choice(commands), args))
    return b"".join(frames)


ATTACK_KINDS: list[Callable[[random.Random], bytes]] = [
    attack_garbage,
    attack_bad_bodies,
    attack_many_values,
    attack_many_small_lists,
    attack_deep,
    attack_negative_ids,
    attack_oversized,
    attack_half_frame,
    attack_flood,
    attack_waits,
    attack_odd_requests,
]


def hostile(port: int, seed: int) -> str:
    """One attack on a new connection: send it, maybe read a little, then close or reset."""
    rng = random.Random(seed)
    kind = rng.choice(ATTACK_KINDS)
    data = kind(rng)
    sock = _connect(port)
    try:
        with contextlib.suppress(OSError):  # the node may hang up first: that is allowed
            sock.sendall(data)
            if rng.random() < 0.5:
                sock.recv(1 << 16)
    finally:
        if rng.random() < 0.5:
            _reset(sock)
        else:
            sock.close()
    return kind.__name__


def test_hostile_frames_never_stop_a_good_client(tmp_path):
    async def main():
        node, _ = make_operator(tmp_path, block_interval_ms=5, max_frame=LIMIT)
        port = await node.start("127.0.0.1", 0)
        good = watcher = None
        try:
            good, watcher = await attach(node, peer_key(1)), await attach(node)
            await watcher.subscribe("blocks")
            await good.register("good", bus="B1", role="prosumer")
            loop = asyncio.get_running_loop()
            rng = random.Random(SEED)
            with ThreadPoolExecutor(4) as pool:
                attacks = [
                    loop.run_in_executor(pool, hostile, port, rng.getrandbits(64))
                    for _ in range(ATTACKS)
                ]
                committed = []
                for n in range(25):  # the good client, while the attacks run
                    placed = await good.place_order("electricity", 2, "bid", 100, 1 + n)
                    committed.append(await good.wait_committed(placed.tx_id, timeout=60))
                    assert (await good.status())["height"] >= committed[-1] + 1
                kinds = await asyncio.gather(*attacks)
            assert committed == sorted(committed)
            assert len(set(kinds)) >= 8, kinds  # the seed draws most kinds
            assert not node.fatal.is_set()
            # the node still stores, reports and pushes blocks, and answers waits
            height = node.store.height
            waiter = asyncio.ensure_future(good.wait_height(height, timeout=60))
            placed = await good.place_order("electricity", 2, "bid", 100, 999)
            assert await good.wait_committed(placed.tx_id, timeout=60) >= height
            assert await waiter == height + 1 or await waiter > height
            while (await watcher.next_event(timeout=60)).data["height"] < height:
                pass
        finally:
            for client in (good, watcher):
                if client is not None:
                    await client.close()
            await node.close()

    asyncio.run(asyncio.wait_for(main(), 300))
