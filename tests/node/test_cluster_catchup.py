"""Catch-up from peers: only verified blocks with a quorum of attestations are taken.

The verifier is checked on its own (forged blocks, missing or foreign
attestations), then ``catch_up`` against fake peers on 127.0.0.1 (RPC
servers in the test's event loop): a peer serving a forged block or
blocks without quorum is refused and the next peer is used; the log point
is stored last, and peers that disagree on it are refused.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ledger.attestation import QuorumNotReached, sign_attestation
from ledger.attestation_store import AttestationStore
from ledger.block import Block
from ledger.keys import SigningKey
from market.errors import BlockRefused
from market.state import ExchangeState
from node.cluster.catchup import CatchUpFailed, CatchUpVerifier, catch_up
from node.cluster.progress import Progress
from node.errors import RequestFailed
from node.pipeline import chain
from node.pipeline.jetstream import LogPoint
from node.wire.protocol import E_NOT_FOUND
from node.wire.server import RpcServer
from tests.node.test_forged_blocks import CHAIN, OPERATOR, forgeries, honest_chain, resign

VALIDATORS = [SigningKey.from_seed(bytes([40 + i]) * 32) for i in range(3)]
PUBLIC = [v.public_key_bytes() for v in VALIDATORS]
OUTSIDER = SigningKey.from_seed(b"\x63" * 32)


def attest(block: Block, signers: list[SigningKey]) -> list[bytes]:
    return [sign_attestation(k, CHAIN, block.header.height, block.hash).to_bytes() for k in signers]


def verifier() -> CatchUpVerifier:
    state = ExchangeState(CHAIN, OPERATOR.public_key_bytes())
    return CatchUpVerifier(state, None, chain_id=CHAIN, validators=PUBLIC, quorum=2)


def test_the_verifier_takes_an_honest_chain_with_its_quorums():
    blocks, state = honest_chain()
    check = verifier()
    for block in blocks:
        taken, attestations = check.check(block.to_bytes(), attest(block, VALIDATORS[:2]))
        assert taken == block
        assert {a.validator for a in attestations} == set(PUBLIC[:2])
    assert check.height == 2
    assert check.state.state_digest() == state.state_digest()


@pytest.mark.parametrize(
    "signers",
    [
        [VALIDATORS[0]],  # one of the two it needs
        [VALIDATORS[0], VALIDATORS[0]],  # the same validator twice
        [VALIDATORS[0], OUTSIDER],  # a key that is no validator
    ],
)
def test_a_block_without_a_quorum_is_refused(signers):
    blocks, _ = honest_chain()
    check = verifier()
    with pytest.raises(QuorumNotReached):
        check.check(blocks[0].to_bytes(), attest(blocks[0], signers))
    assert check.height == 0


def test_attestations_of_another_hash_or_height_count_for_nothing():
    blocks, _ = honest_chain()
    check = verifier()
    other = resign(blocks[0], time_ns=5)  # a block with the same height, another hash
    records = attest(other, VALIDATORS) + attest(blocks[1], VALIDATORS)
    with pytest.raises(QuorumNotReached):
        check.check(blocks[0].to_bytes(), [*records, b"junk"])


@pytest.mark.parametrize("name", sorted(forgeries()))
def test_a_forged_block_is_refused_even_with_a_quorum(name):
    # validators that attest a forged block (a faulty quorum) still do not get it past the replay
    served, reason = forgeries()[name]
    check = verifier()
    good = chain.decode(served[0])
    check.check(served[0], attest(good, VALIDATORS[:2]))
    try:
        forged = chain.decode(served[1])
        records = attest(forged, VALIDATORS)
    except BlockRefused:  # does not even decode: no attestation can name it
        records = []
    with pytest.raises(BlockRefused, match=reason):
        check.check(served[1], records)
    assert check.broken
    with pytest.raises(BlockRefused):
        check.check(served[1], records)


class FakePeer:
    """A validator's catch-up reads over a fixed chain, attestations and log points."""

    def __init__(
        self,
        blocks: list[bytes],
        attestations: dict[int, list[bytes]],
        final: int,
        points: dict[int, tuple[LogPoint, int]],
    ) -> None:
        self.blocks = blocks
        self.attestations = attestations
        self.final = final
        self.points = points
        self.asked: list[str] = []
        self.server = RpcServer(
            {
                "blocks": self.h_blocks,
                "attestations": self.h_attestations,
                "log_point": self.h_log_point,
            }
        )
        self.port = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def h_blocks(self, session, args):
        self.asked.append("blocks")
        start, limit = args["from"], args["limit"]
        return {"blocks": self.blocks[start : start + limit], "height": len(self.blocks)}

    async def h_attestations(self, session, args):
        self.asked.append("attestations")
        start, limit = args["from"], args["limit"]
        heights = range(start, min(start + limit, self.final + 1))
        records = [r for h in heights for r in self.attestations.get(h, [])]
        return {"attestations": records, "final_height": self.final}

    async def h_log_point(self, session, args):
        self.asked.append("log_point")
        found = self.points.get(args["height"])
        if found is None:
            raise RequestFailed(E_NOT_FOUND, "no point")
        point, log_time = found
        return {
            "height": args["height"],
            "position": point.position,
            "seq": point.seq,
            "offset": point.offset,
            "log_time": log_time,
        }


POINT = (LogPoint(7, 5, 1), 9_000)


def honest_peer(**changes) -> FakePeer:
    blocks, _ = honest_chain()
    fields = {
        "blocks": [b.to_bytes() for b in blocks],
        "attestations": {b.header.height: attest(b, VALIDATORS[:2]) for b in blocks},
        "final": 1,
        "points": {1: POINT},
    }
    fields.update(changes)
    return FakePeer(**fields)


async def run_catch_up(data_dir: Path, peers: list[FakePeer], addresses: list[str] | None = None):
    for peer in peers:
        peer.port = await peer.server.start_tcp("127.0.0.1", 0)
    progress = Progress(data_dir)
    try:
        caught = await catch_up(
            data_dir,
            chain_id=CHAIN,
            operator=OPERATOR.public_key_bytes(),
            peers=addresses or [p.address for p in peers],
            validators=PUBLIC,
            quorum=2,
            progress=progress,
        )
        return caught, progress.resume(caught.height)
    finally:
        progress.close()
        for peer in peers:
            await peer.server.close()


def stored(data_dir: Path) -> tuple[list[bytes], dict[int, int]]:
    store = chain.open_store(data_dir)
    attestations = AttestationStore(chain.store_file(data_dir))
    try:
        blocks = [store.block_bytes(h) for h in range(store.height)]
        return blocks, {h: len(a) for h, a in attestations.by_height().items()}
    finally:
        attestations.close()
        store.close()


def test_an_empty_store_catches_up_from_a_peer(tmp_path: Path):
    peer = honest_peer()
    caught, resume = asyncio.run(run_catch_up(tmp_path, [peer]))
    assert caught.height == 2
    assert (caught.point, caught.log_time) == POINT == resume
    blocks, attestations = stored(tmp_path)
    assert blocks == peer.blocks
    assert attestations == {0: 2, 1: 2}


def test_only_final_blocks_are_fetched(tmp_path: Path):
    peer = honest_peer(final=0, points={0: POINT})  # block 1 is stored there, not final yet
    caught, _ = asyncio.run(run_catch_up(tmp_path, [peer]))
    assert caught.height == 1
    assert stored(tmp_path)[0] == peer.blocks[:1]


def test_a_lagging_store_fetches_only_what_it_lacks(tmp_path: Path):
    asyncio.run(run_catch_up(tmp_path, [honest_peer(final=0, points={0: POINT})]))
    later = (LogPoint(9, 7, 0), 9_500)
    peer = honest_peer(points={1: later})
    caught, resume = asyncio.run(run_catch_up(tmp_path, [peer]))
    assert (caught.start, caught.height, resume) == (1, 2, later)
    assert stored(tmp_path) == (peer.blocks, {0: 2, 1: 2})
    assert peer.asked.count("blocks") == 1


def test_a_peer_behind_us_is_passed_over(tmp_path: Path):
    asyncio.run(run_catch_up(tmp_path, [honest_peer()]))
    with pytest.raises(CatchUpFailed, match="below our head 1"):
        asyncio.run(run_catch_up(tmp_path, [honest_peer(final=0, points={0: POINT})]))


@pytest.mark.parametrize("fault", ["forged", "no_quorum", "outsider_quorum"])
def test_a_lying_peer_is_refused_and_the_next_one_used(tmp_path: Path, fault: str):
    blocks, _ = honest_chain()
    served, _ = forgeries()["altered_trade_resigned"]
    liar = honest_peer()
    if fault == "forged":  # re-signed by the chain key, attested by two validators
        forged = chain.decode(served[1])
        liar.blocks = served
        liar.attestations = {0: attest(blocks[0], VALIDATORS), 1: attest(forged, VALIDATORS)}
    elif fault == "no_quorum":
        liar.attestations = {h: attest(b, VALIDATORS[:1]) for h, b in enumerate(blocks)}
    else:
        liar.attestations = {h: attest(b, [VALIDATORS[0], OUTSIDER]) for h, b in enumerate(blocks)}
    honest = honest_peer()
    caught, _ = asyncio.run(run_catch_up(tmp_path, [liar, honest]))
    assert caught.height == 2
    assert stored(tmp_path)[0] == honest.blocks
    assert "blocks" in honest.asked


def test_a_lying_peer_alone_leaves_the_store_at_its_last_verified_block(tmp_path: Path):
    served, _ = forgeries()["altered_trade_resigned"]
    forged = chain.decode(served[1])
    blocks, _ = honest_chain()
    liar = honest_peer(
        blocks=served,
        attestations={0: attest(blocks[0], VALIDATORS), 1: attest(forged, VALIDATORS)},
    )
    with pytest.raises(CatchUpFailed, match="replay gives other results"):
        asyncio.run(run_catch_up(tmp_path, [liar]))
    assert stored(tmp_path)[0] == served[:1]  # block 0 verified; no progress row was written
    progress = Progress(tmp_path)
    try:
        assert progress.point(0) is None
    finally:
        progress.close()


def test_peers_that_disagree_on_the_log_point_are_refused(tmp_path: Path):
    first = honest_peer()
    other = honest_peer(points={1: (LogPoint(8, 6, 0), 9_000)})
    with pytest.raises(CatchUpFailed, match="disagree on the log point"):
        asyncio.run(run_catch_up(tmp_path, [first, other]))


def test_unreachable_peers_fail_with_each_reason(tmp_path: Path):
    with pytest.raises(CatchUpFailed, match=r"127\.0\.0\.1:9"):
        asyncio.run(run_catch_up(tmp_path, [], ["127.0.0.1:9"]))
