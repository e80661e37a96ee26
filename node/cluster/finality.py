"""Finality on a validator: a block is reported committed once stored and attested by a quorum."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from ledger.attestation import sign_attestation
from ledger.attestation_store import AttestationStore
from ledger.block import Block
from ledger.keys import SigningKey
from node.cluster.attestations import AttestationBus
from node.pipeline.blocks import OpenBlock
from node.pipeline.commits import CommitTracker
from node.pipeline.intake import Intake
from node.pipeline.store_writer import ProcessBlockStore


class FinalityTracker(CommitTracker):
    """Stores blocks in order, attests each, reports it committed at quorum."""

    def __init__(
        self,
        writer: ProcessBlockStore,
        intake: Intake,
        on_stored: Callable[[Block, OpenBlock], Awaitable[None]],
        *,
        key: SigningKey,
        chain_id: str,
        bus: AttestationBus,
        quorum: int,
        attestations: AttestationStore,
    ) -> None:
        super().__init__(writer, intake, on_stored)
        self.key = key
        self.chain_id = chain_id
        self.bus = bus
        self.quorum = quorum
        self.attestations = attestations
        self.final_height = -1
        self.on_final: Callable[[int], None] = lambda height: None

    def store(self, block: Block, built: OpenBlock) -> None:
        """Attest ``block`` at once, and start storing it.

        The attestation says "this validator derived this block from the
        log"; it does not wait for the store: the log holds the entries
        durably, and the block is a function of them, so any validator can
        derive it again. This node still reports its transactions committed
        only once it stored the block itself.
        """
        height = block.header.height
        self.bus.publish(sign_attestation(self.key, self.chain_id, height, block.hash))
        super().store(block, built)

    async def run(self) -> None:
        """Wait until stored and attested by a quorum, report committed; in order."""
        while True:
            stored, block, built = await self.storing.get()
            await stored
            height = block.header.height
            signers = await self.bus.wait_quorum(height, block.hash, self.quorum)
            self.attestations.add(signers)
            self.final_height = height
            self.on_final(height)
            forget = self.intake.forget
            for submission in built.submissions:
                forget(submission)
                submission.commit(height)
            await self.on_stored(block, built)
