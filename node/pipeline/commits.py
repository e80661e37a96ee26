"""Commitment: blocks are stored in order, and only then reported committed.

``CommitTracker.store`` hands a signed block to the store's writer process
at once (``ProcessBlockStore.append_soon``: appends run one at a time, in
order, while the loop goes on building the next blocks) and queues it. The
tracker's loop takes the queue in order, waits for each append's answer
(durable: synchronous FULL), then answers every submission of the block
with its height and calls ``on_stored``. A failed append raises here: the
loop dies and the node exits; the blocks after it fail to append too (they
do not extend the head), so nothing after a lost block is ever reported
committed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from ledger.block import Block
from node.pipeline.blocks import OpenBlock
from node.pipeline.intake import Intake
from node.pipeline.store_writer import ProcessBlockStore


class CommitTracker:
    """Stores blocks in order and reports their transactions committed."""

    def __init__(
        self,
        writer: ProcessBlockStore,
        intake: Intake,
        on_stored: Callable[[Block, OpenBlock], Awaitable[None]],
    ) -> None:
        self.writer = writer
        self.intake = intake
        self.on_stored = on_stored
        self.storing: asyncio.Queue[tuple[asyncio.Future[None], Block, OpenBlock]] = asyncio.Queue()

    def store(self, block: Block, built: OpenBlock) -> None:
        """Start storing ``block`` (a ``BlockProducer``'s ``emit``)."""
        self.storing.put_nowait((self.writer.append_soon(block), block, built))

    async def run(self) -> None:
        """Report blocks committed in order, each once its append returned. Runs until cancelled."""
        while True:
            stored, block, built = await self.storing.get()
            await stored
            height = block.header.height
            forget = self.intake.forget
            for submission in built.submissions:
                forget(submission)
                submission.commit(height)
            await self.on_stored(block, built)
