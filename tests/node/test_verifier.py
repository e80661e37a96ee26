"""Batched signature checks in worker processes, and the fallback when one dies."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from ledger.keys import SigningKey
from ledger.transactions import signing_message
from market import transactions as txn
from node.errors import BadSignature
from node.pipeline.verifier import BatchVerifier, check_items

KEY = SigningKey.from_seed(b"\x07" * 32)


def signed(nonce: int) -> txn.SignedTransaction:
    return txn.make(KEY, "test-chain", nonce, txn.RegisterPeer(f"p{nonce}", "B1", "prosumer"))


def forged(nonce: int) -> txn.SignedTransaction:
    good = signed(nonce)
    bad_signature = bytes([good.signature[0] ^ 1]) + good.signature[1:]
    return dataclasses.replace(good, signature=bad_signature)


def test_check_items_marks_each_signature():
    good, bad = signed(1), forged(2)
    items = [
        (good.transaction.sender, good.signature, signing_message(good.body)),
        (bad.transaction.sender, bad.signature, signing_message(bad.body)),
        (b"short", good.signature, b"x"),
    ]
    assert check_items(items) == b"\x01\x00\x00"


@pytest.mark.parametrize(
    "workers", [0, pytest.param(1, marks=pytest.mark.slow), pytest.param(2, marks=pytest.mark.slow)]
)
def test_a_batch_of_good_and_forged_signatures(workers):
    async def main():
        verifier = BatchVerifier(workers)
        txs = [forged(n) if n % 5 == 0 else signed(n) for n in range(1, 41)]
        results = await asyncio.gather(*(verifier.verify(t) for t in txs), return_exceptions=True)
        verifier.close()
        return results

    results = asyncio.run(main())
    for n, result in enumerate(results, start=1):
        if n % 5 == 0:
            assert isinstance(result, BadSignature), n
        else:
            assert result is None, n


@pytest.mark.slow  # spawns a worker process
def test_a_dead_worker_falls_back_to_checking_on_the_loop():
    async def main():
        verifier = BatchVerifier(1)
        await verifier.verify(signed(1))  # the worker is up
        worker = verifier._workers[0]
        worker.process.kill()
        worker.process.join()
        results = await asyncio.gather(
            verifier.verify(signed(2)), verifier.verify(forged(3)), return_exceptions=True
        )
        assert verifier._workers == []  # noticed, and gone
        await verifier.verify(signed(4))  # on the loop from now on
        with pytest.raises(BadSignature):
            await verifier.verify(forged(5))
        verifier.close()
        return results

    good, bad = asyncio.run(asyncio.wait_for(main(), 20))
    assert good is None
    assert isinstance(bad, BadSignature)


def test_dispatch_keeps_two_batches_in_flight():
    """A worker gets its next batch before it answers the last, and no more than that."""
    from collections import deque

    import msgpack

    from node.pipeline import verifier as v

    class FakeLink:
        def __init__(self):
            self.sent: list[bytes] = []

        def send_now(self, data: bytes) -> None:
            self.sent.append(data)

    class FakeWorker:
        def __init__(self):
            self.link = FakeLink()
            self.batches = deque()

    async def main():
        verifier = BatchVerifier(0)
        worker = FakeWorker()
        verifier._workers.append(worker)
        loop = asyncio.get_running_loop()
        tx = signed(1)
        verifier._pending = [(tx, loop.create_future(), tx) for _ in range(1200)]
        verifier._dispatch()
        assert len(worker.link.sent) == v.IN_FLIGHT == 2
        assert [len(msgpack.unpackb(data)) for data in worker.link.sent] == [v.MAX_BATCH] * 2
        assert [len(batch) for batch in worker.batches] == [v.MAX_BATCH] * 2
        assert len(verifier._pending) == 1200 - 2 * v.MAX_BATCH
        verifier._dispatch()  # both batches still out: nothing more is sent
        assert len(worker.link.sent) == 2
        verifier._on_answer(worker, b"\x01" * v.MAX_BATCH)  # one answered: the next goes out
        assert len(worker.link.sent) == 3
        assert len(verifier._pending) == 0

    asyncio.run(main())
