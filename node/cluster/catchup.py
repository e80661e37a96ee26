"""Catch-up over the network: a validator behind the log's retained tail fetches what it lacks.

The streams are purged below every validator's final block and may be
bounded by JetStream's limits (``node.cluster.retention``), so a validator
whose store was lost, or that fell behind what the log retains, cannot
derive the missing blocks from the log. It fetches them from a peer
validator instead (``--peers``: the other validators' client addresses)
and trusts none of them blindly:

- every block is verified as a replica verifies it: height, parent hash,
  chain id, the chain key's signature, Merkle roots, a replay through the
  state machine to the same results and state digest, the clearing
  certificates (``market.replay.verify_and_replay``);
- every block needs a quorum of attestations by configured validators of
  its hash at its height (``ledger.attestation.validate_quorum``): a block
  the peer serves is taken only if it is final, signed by validators other
  than the peer alone (with a quorum above one);
- the log point after the last fetched block (the peer's progress row for
  that height: every validator derives the same points) is taken from the
  peer, and every other configured peer that answers must give the same
  point.

What a catching-up validator trusts beyond that: that the log point one
honest-looking peer serves (and no reachable peer contradicts) is the one
it would have derived itself. A wrong point makes it derive other blocks
than the rest; its attestations then name other hashes, those blocks never
reach a quorum without the others, and the others report it as
divergent: safety of final blocks does not rest on the point.

Blocks and their attestations are stored batch by batch (attestations
first, so a stored block always has its quorum beside it); the progress
row comes last, so a crash part-way leaves a store that a restart catches
up from again (``open_validator`` catches up when the head has no row).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

from ledger.attestation import (
    Attestation,
    QuorumNotReached,
    decode_attestation,
    validate_quorum,
)
from ledger.attestation_store import AttestationStore
from ledger.block import Block, BlockHeader
from ledger.errors import DecodeError
from ledger.store import BlockStore
from market import replay
from market.gate_clearing import check_published
from market.state import ExchangeState
from node.cluster.progress import Progress
from node.config import parse_address
from node.errors import BlockRefused, NodeError, RequestFailed
from node.pipeline import chain
from node.pipeline.jetstream import LogPoint
from node.wire.rpc import AsyncRpc

log = logging.getLogger("p2pex.cluster.catchup")

BATCH = 64  # blocks per ``blocks`` request (a reply holds fewer if they do not fit a frame)
MAX_ATTESTATION_HEIGHTS = 256  # heights per ``attestations`` reply
PEER_TIMEOUT = 30.0  # seconds for a connection or one request


class CatchUpFailed(NodeError):
    """Raised when no configured peer served a verified catch-up."""

    def __init__(self, reasons: Sequence[str]) -> None:
        self.reasons = list(reasons)
        super().__init__("catch-up from the peers failed: " + "; ".join(reasons or ["no peers"]))


class PeerRefused(NodeError):
    """Raised when a peer serves something that does not verify (it is not used further)."""


@dataclass(frozen=True, slots=True)
class CaughtUp:
    """Where a caught-up validator resumes: its stored height and the log point after it."""

    height: int  # blocks stored
    point: LogPoint
    log_time: int
    peer: str = ""  # the peer the blocks and the point came from
    start: int = 0  # blocks stored before the catch-up


class CatchUpVerifier:
    """Checks fetched blocks one by one against the chain so far and a quorum of attestations.

    Starts at ``parent`` with ``state`` the state machine after it (replayed
    from the store). After a refused block the state may be part-way
    through it: the verifier is then ``broken`` and must not be used again.
    """

    def __init__(
        self,
        state: ExchangeState,
        parent: BlockHeader | None,
        *,
        chain_id: str,
        validators: Collection[bytes],
        quorum: int,
    ) -> None:
        self.state = state
        self.parent = parent
        self.chain_id = chain_id
        self.validators = frozenset(validators)
        self.quorum = quorum
        self.broken = False

    @property
    def height(self) -> int:
        """The height the next block must have."""
        return 0 if self.parent is None else self.parent.height + 1

    def check(self, data: bytes, records: Sequence[bytes]) -> tuple[Block, list[Attestation]]:
        """Verify one block and its attestations; the block and the quorum's attestations.

        Args:
            data: the block's bytes, as ``blocks`` serves them.
            records: attestation records the peer served (of any height:
                only valid ones of this block's hash and height count).

        Raises:
            BlockRefused: the block does not decode, is not the next one, or
                fails verification or replay.
            QuorumNotReached: fewer than the quorum of configured validators
                signed its hash.
        """
        if self.broken:
            raise BlockRefused(self.height, "an earlier block was refused: start again")
        block = chain.decode(data)
        height = block.header.height
        if height != self.height:
            raise BlockRefused(height, f"expected height {self.height}")
        attestations: list[Attestation] = []
        for record in records:
            try:
                attestation = decode_attestation(record)
            except DecodeError:
                continue
            if attestation.height == height and attestation.block_hash == block.hash:
                attestations.append(attestation)
        signers = validate_quorum(
            height,
            block.hash,
            attestations,
            chain_id=self.chain_id,
            validators=self.validators,
            quorum=self.quorum,
        )
        try:
            replay.verify_and_replay(
                self.state, block, self.parent, check_certificate=check_published
            )
        except BaseException:
            self.broken = True
            raise
        self.parent = block.header
        kept: dict[bytes, Attestation] = {}
        for attestation in attestations:
            if attestation.validator in signers:
                kept.setdefault(attestation.validator, attestation)
        return block, list(kept.values())


async def _connect(address: str) -> AsyncRpc:
    host, port = parse_address(address)
    return await AsyncRpc.connect(host, port, timeout=PEER_TIMEOUT)


def _as_point(reply: dict[str, object]) -> tuple[LogPoint, int]:
    fields = [reply.get(name) for name in ("position", "seq", "offset", "log_time")]
    if not all(type(v) is int and v >= 0 for v in fields):
        msg = f"a log point of the wrong shape: {reply!r}"
        raise PeerRefused(msg)
    position, seq, offset, log_time = (int(v) for v in fields)  # type: ignore[call-overload]
    return LogPoint(position, seq, offset), log_time


async def _fetch_from(
    address: str,
    store: BlockStore,
    attestation_store: AttestationStore,
    verifier: CatchUpVerifier,
) -> tuple[int, LogPoint, int]:
    """Store the final blocks ``address`` serves past our head; (last height, its point, time).

    Raises:
        PeerRefused: the peer served a block or point that does not verify.
        NodeError: the peer is unreachable or refused a request.
    """
    rpc = await _connect(address)
    try:
        start = store.height
        reply = await rpc.call("attestations", {"from": start, "limit": 1}, timeout=PEER_TIMEOUT)
        final = reply.get("final_height")
        if type(final) is not int:
            msg = f"a final height of the wrong shape: {final!r}"
            raise PeerRefused(msg)
        if final < start - 1:  # behind us: nothing to fetch there
            msg = f"its final height {final} is below our head {start - 1}"
            raise NodeError(msg)
        while store.height <= final:
            height = store.height
            reply = await rpc.call(
                "blocks",
                {"from": height, "limit": min(BATCH, final + 1 - height)},
                timeout=PEER_TIMEOUT,
            )
            blocks = [b for b in reply.get("blocks", []) if isinstance(b, bytes)]
            if not blocks:
                msg = f"it served no block at height {height} (final height {final})"
                raise PeerRefused(msg)
            blocks = blocks[: final + 1 - height]
            reply = await rpc.call(
                "attestations", {"from": height, "limit": len(blocks)}, timeout=PEER_TIMEOUT
            )
            records = [r for r in reply.get("attestations", []) if isinstance(r, bytes)]
            checked = []
            try:
                # one by one: the blocks before a refused one are kept
                for data in blocks:
                    checked.append(verifier.check(data, records))  # noqa: PERF401
            except (BlockRefused, QuorumNotReached) as exc:
                if not checked:
                    raise PeerRefused(str(exc)) from exc
                refused: Exception | None = exc
            else:
                refused = None
            attestation_store.add([a for _, signed in checked for a in signed])
            for block, _ in checked:
                store.append(block)
            if refused is not None:
                raise PeerRefused(str(refused)) from refused
        reply = await rpc.call("log_point", {"height": final}, timeout=PEER_TIMEOUT)
        point, log_time = _as_point(dict(reply))
        return final, point, log_time
    finally:
        await rpc.close()


async def _confirm_point(
    peers: Sequence[str], used: str, height: int, point: LogPoint, log_time: int
) -> None:
    """Every other peer that serves the point at ``height`` must serve the same.

    Raises:
        PeerRefused: a peer serves another point.
    """
    for address in peers:
        if address == used:
            continue
        try:
            rpc = await _connect(address)
        except NodeError:
            continue
        try:
            reply = await rpc.call("log_point", {"height": height}, timeout=PEER_TIMEOUT)
            theirs = _as_point(dict(reply))
        except (NodeError, RequestFailed):
            continue
        finally:
            await rpc.close()
        if theirs != (point, log_time):
            msg = (
                f"peers disagree on the log point after block {height}: {used} serves "
                f"{point, log_time}, {address} serves {theirs}"
            )
            raise PeerRefused(msg)


async def catch_up(
    data_dir: Path,
    *,
    chain_id: str,
    operator: bytes,
    peers: Sequence[str],
    validators: Collection[bytes],
    quorum: int,
    progress: Progress,
) -> CaughtUp:
    """Fetch, verify and store the final blocks the peers hold past our head; the resume point.

    Peers are tried in order; a peer that is unreachable or serves
    anything that does not verify is passed over (what verified before it
    stays stored). The progress row of the new head is recorded last.

    Raises:
        CatchUpFailed: no peer brought the store to a final head with a log point.
    """
    reasons: list[str] = []
    store = chain.open_store(data_dir, operator)
    attestation_store = AttestationStore(chain.store_file(data_dir))
    try:
        for address in peers:
            state = replay.replay_store(store, lambda: ExchangeState(chain_id, operator))
            verifier = CatchUpVerifier(
                state,
                chain.head_header(store),
                chain_id=chain_id,
                validators=validators,
                quorum=quorum,
            )
            before = store.height
            try:
                height, point, log_time = await _fetch_from(
                    address, store, attestation_store, verifier
                )
                await _confirm_point(peers, address, height, point, log_time)
            except PeerRefused as exc:
                log.error("REFUSED catch-up from peer %s: %s", address, exc)
                reasons.append(f"{address} refused: {exc}")
                continue
            except NodeError as exc:
                log.warning("catch-up from peer %s failed: %s", address, exc)
                reasons.append(f"{address}: {exc}")
                continue
            progress.record(height, point, log_time)
            log.info(
                "caught up from peer %s: blocks %d to %d, resuming at log message %d",
                address,
                before,
                height,
                point.seq,
            )
            return CaughtUp(height + 1, point, log_time, address, before)
    finally:
        attestation_store.close()
        store.close()
    raise CatchUpFailed(reasons)
