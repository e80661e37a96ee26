"""A validator: one of several nodes that order transactions on a shared JetStream log.

A validator is an operator whose sequencing log is the shared stream
(``JetStreamLog``) and whose block boundaries come from the log
(``LogTimePolicy``: tick markers carry the time), so every validator
derives the same blocks, byte for byte: the block signature is by the
chain key every validator holds (Ed25519 signatures are deterministic).
What makes a block final is not that signature but the **attestations**:
each validator signs the hash of each block it derived with its own key
(``ledger.attestation``) and publishes it on a second stream; a block's
transactions are reported committed once a quorum of validators signed its
hash. A validator whose attestation names another hash is reported
(``status`` -> ``divergent``).

Clients may submit to any validator; each validator checks and appends
what it is sent, applies what the log holds (other validators' entries are
checked when read), and answers ``wait_committed`` for any transaction it
applied. A restarted validator replays its store and reads the log again
from the point after its head block (``node.cluster.progress``).

The validator's own operator-only transactions (gate closures, clearing
results) are requested with its own key and signed with the chain key
where the log orders the request (``node.cluster.requests``), so
validators never pick the same chain-key nonce. Both streams are purged
below every validator's final block (``node.cluster.retention``); a
validator that starts behind what the log retains catches up from its
``--peers`` (``node.cluster.catchup``: verified blocks with their quorum,
then the log point after them), and stops with ``LogTruncated`` if none
can serve it; it serves those peers the reads ``attestations`` and
``log_point``. A running validator overtaken by the stream's limits stops
with ``LogTruncated``; restarted, it catches up.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections import deque
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

from ledger.attestation import sign_attestation
from ledger.attestation_store import AttestationStore
from ledger.block import Block
from ledger.keys import SigningKey
from market import transactions as txn
from market.state import Outcome
from node.clock import Clock, SystemClock
from node.cluster.attestations import AttestationBus
from node.cluster.catchup import MAX_ATTESTATION_HEIGHTS, CatchUpFailed, CaughtUp, catch_up
from node.cluster.clearing import ClusterClearingRunner
from node.cluster.finality import FinalityTracker
from node.cluster.progress import Progress
from node.cluster.requests import AlreadyDone, RequestingProducer, RequestPolicy, encode_request
from node.cluster.retention import Retention
from node.cluster.settings import ValidatorSettings, add_validator_arguments, settings_from_args
from node.config import NodeConfig, load_config, parse_address
from node.errors import ConfigError, NodeError, RequestFailed, SequencerUnavailable
from node.keys import load_key
from node.pipeline import chain
from node.pipeline.blocks import OpenBlock
from node.pipeline.jetstream import (
    JetStreamLog,
    LogPoint,
    LogTruncated,
    StreamLimits,
)
from node.pipeline.log_time import Ticker, encode_tick
from node.roles.gc_policy import keep_pauses_short
from node.roles.operator import Operator
from node.roles.runner import add_run_arguments, write_port_file
from node.roles.sched_hint import request_slice
from node.roles.service import arg_int
from node.wire.protocol import E_NOT_FOUND, E_UNAVAILABLE
from node.wire.server import Handler, Session

log = logging.getLogger("p2pex.validator")

BEHIND_HINT = (
    "it is behind what the log retains (purged below every validator's final block, or "
    "dropped by the stream's limits): start it again with --peers (the other validators' "
    "client addresses) to catch up from a peer over the network, or stop it, copy a stopped "
    "or idle peer validator's data directory (chain.sqlite3 and cluster.sqlite3) over its "
    "own, and start it again"
)
FIRST_TICK_ATTEMPTS = 50  # ~ 50 x (publish timeout or 0.2 s): a cluster electing its leaders


class Validator(Operator):
    """An operator on a shared log whose blocks are final at a quorum of attestations."""

    role = "validator"

    def __init__(
        self,
        config: NodeConfig,
        chain_key: SigningKey,
        clock: Clock,
        *,
        log: JetStreamLog,
        bus: AttestationBus,
        validator_key: SigningKey,
        quorum: int,
        validators: Sequence[bytes],
        progress: Progress,
        resume: tuple[LogPoint, int],
        retention: Retention,
        tick_interval: float,
    ) -> None:
        super().__init__(config, chain_key, clock, log)
        self.stream_log = log
        # seconds from a submission's arrival to its being applied, recent ones
        self.accept_times: deque[float] = deque(maxlen=4096)
        self.loop_lags: deque[float] = deque(maxlen=4096)  # how late a 50 ms timer fires
        self.retention = retention
        self.caught_up: CaughtUp | None = None  # the catch-up from a peer at start, if any
        self._points: dict[int, LogPoint] = {}  # height -> where the log resumes after it
        self.bus = bus
        self.validator_key = validator_key
        self.progress = progress
        self.policy = RequestPolicy(config.block_interval_ms * 1_000_000, resume[1])
        old = self.producer  # the operator's: this one also turns requests into transactions
        self.producer = RequestingProducer(
            validators=validators,
            chain_id=config.chain_id,
            signer=chain_key,
            state=self.state,
            log=log,
            intake=self.intake,
            clock=clock,
            limits=old.limits,
            parent=old.parent,
            emit=self._emit,
            policy=self.policy,
        )
        self.producer.cursor = resume[0].position
        self._request_nonce = 0
        self.gate.submit = self._request_quietly
        self.attestation_store = AttestationStore(chain.store_file(Path(config.data_dir)))
        self.commits = FinalityTracker(
            self.writer,
            self.intake,
            self._block_stored,
            key=validator_key,
            chain_id=config.chain_id,
            bus=bus,
            quorum=quorum,
            attestations=self.attestation_store,
        )
        self.commits.on_final = self._final
        # attestations are stored only once a block has its quorum
        self.commits.final_height = self.attestation_store.last_height()  # see _attest_stored
        self.clearings = ClusterClearingRunner(
            lambda: self.state,
            config.clearing_model,
            self.submit_own,
            clock=clock,
            me=validator_key.public_key_bytes(),
            validators=validators,
        )
        self.ticker = Ticker(
            log,
            clock,
            tick_interval,
            lambda: self.producer.block is not None or bool(self.intake.in_flight),
            log_time=lambda: self.policy.log_time,
        )

    async def _attest_stored(self) -> None:
        """Attest the stored blocks that have no attestations stored yet.

        A crash between storing a block and storing its quorum leaves such
        blocks at the head; the restarted validator does not derive them
        again, so it attests them here (they are its own blocks) and stores
        the quorum when it is there.
        """
        tracker = self.commits
        assert isinstance(tracker, FinalityTracker)
        attested = self.attestation_store.heights()
        for height in (h for h in range(self.store.height) if h not in attested):
            block_hash = self.store.block_at(height).hash
            attestation = sign_attestation(
                self.validator_key, self.config.chain_id, height, block_hash
            )
            self.bus.publish(attestation)
            signers = await self.bus.wait_quorum(height, block_hash, tracker.quorum)
            self.attestation_store.add(signers)
            tracker.final_height = max(tracker.final_height, height)

    def _run_submit(
        self, session: Session, checked: tuple[txn.SignedTransaction, float]
    ) -> asyncio.Future[Outcome]:
        """Sequence a checked transaction; a log that cannot take it is ``unavailable``.

        The client may then send the same bytes to another validator (see
        ``node.cluster.failover``); without the mapping it would read ``internal``.
        """
        accepted = super()._run_submit(session, checked)
        answer: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        arrived = checked[1]

        def done(future: asyncio.Future[Outcome]) -> None:
            self.accept_times.append(self.clock.monotonic() - arrived)
            if answer.done():
                return
            if future.cancelled():
                answer.cancel()
                return
            error = future.exception()
            if isinstance(error, SequencerUnavailable):
                answer.set_exception(RequestFailed(E_UNAVAILABLE, str(error)))
            elif error is not None:
                answer.set_exception(error)
            else:
                answer.set_result(future.result())

        accepted.add_done_callback(done)
        return answer

    async def submit_own(self, payload: txn.Payload) -> Outcome:
        """Request ``payload`` (see ``node.cluster.requests``); the derived transaction's outcome.

        Raises:
            AlreadyDone: another validator's request for it came first.
            InvalidTransaction: the derived transaction was refused.
            SequencerUnavailable: the log did not take the request.
        """
        self._request_nonce = max(self._request_nonce + 1, self.clock.time_ns())
        entry = encode_request(
            self.validator_key, self.config.chain_id, self._request_nonce, payload
        )
        producer = self.producer
        assert isinstance(producer, RequestingProducer)
        waiter: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        producer.requests[entry] = waiter
        try:
            await self.stream_log.append(entry)
        except BaseException:
            producer.requests.pop(entry, None)
            raise
        return await waiter

    async def _request_quietly(self, payload: txn.Payload) -> Outcome:
        """``submit_own`` for gate closure, where every validator requests every closure."""
        try:
            return await self.submit_own(payload)
        except AlreadyDone:
            return Outcome(b"", rejected="already_done")
        except SequencerUnavailable as exc:  # the next round asks again
            log.warning("requesting %s failed: %s", type(payload).__name__, exc)
            return Outcome(b"", rejected="unavailable")

    def _emit(self, block: Block, built: OpenBlock) -> None:
        height = block.header.height
        point = self.stream_log.locate(built.end_position)
        self.progress.record(height, point, self.policy.log_time)
        self._points[height] = point
        if height % 1024 == 1023:  # only the stored head's point is ever read back
            self.progress.prune(height - 64)
        self.commits.store(block, built)

    def _final(self, height: int) -> None:
        point = self._points.pop(height, None)
        if point is not None:
            self.retention.final(height, point)

    async def _measure_lag(self) -> None:
        """How late the event loop wakes a timer: a busy loop, or a process waiting for a core.

        A timer every 50 ms: cheap enough to leave on, often enough for a p99.
        """
        loop = asyncio.get_running_loop()
        while True:
            start = loop.time()
            await asyncio.sleep(0.05)
            self.loop_lags.append(loop.time() - start - 0.05)

    async def _watch_truncation(self) -> None:
        """Stop (fatal) if the stream dropped messages this validator has not read yet."""
        while True:
            await asyncio.sleep(1.0)
            truncated = self.stream_log.truncated
            if truncated is not None:
                raise LogTruncated(truncated.want_seq, truncated.first_seq, BEHIND_HINT)

    async def start(self, host: str, port: int) -> int:
        """Append a first tick, start the pipeline and the ticker, then listen.

        The first tick is in the log before any transaction this validator
        appends, so no block opens at log time 0 (before any tick).
        """
        for attempt in range(FIRST_TICK_ATTEMPTS):  # the stream may be electing its leader
            try:
                await self.log.append(encode_tick(self.clock.time_ns()))
                break
            except SequencerUnavailable:
                if attempt == FIRST_TICK_ATTEMPTS - 1:
                    raise
                await asyncio.sleep(0.2)
        self._tasks.append(self.watch(asyncio.create_task(self.ticker.run())))
        self._tasks.append(self.watch(asyncio.create_task(self._attest_stored())))
        self._tasks.append(self.watch(asyncio.create_task(self.retention.run())))
        self._tasks.append(self.watch(asyncio.create_task(self._watch_truncation())))
        self._tasks.append(self.watch(asyncio.create_task(self._measure_lag())))
        return await super().start(host, port)

    async def close(self) -> None:
        """Stop the loops, the attestation bus and the stores."""
        await super().close()  # closes the log
        await self.bus.close()
        self.attestation_store.close()
        self.progress.close()

    def handlers(self) -> dict[str, Handler]:
        """The operator's, plus the reads a catching-up validator asks of its peers."""
        handlers = super().handlers()
        handlers["attestations"] = self.h_attestations
        handlers["log_point"] = self.h_log_point
        return handlers

    async def h_attestations(self, session: Session, args: dict[str, Any]) -> dict[str, Any]:
        """``attestations``: the stored quorums of ``limit`` heights from ``from``.

        Only heights this validator made final have stored attestations;
        ``final_height`` says up to where.
        """
        start = max(0, arg_int(args, "from", 0))
        limit = min(max(1, arg_int(args, "limit", 64)), MAX_ATTESTATION_HEIGHTS)
        final = self.commits.final_height  # type: ignore[attr-defined]
        records = [
            attestation.to_bytes()
            for height in range(start, min(start + limit, final + 1))
            for attestation in self.attestation_store.at(height)
        ]
        return {"attestations": records, "final_height": final}

    async def h_log_point(self, session: Session, args: dict[str, Any]) -> dict[str, Any]:
        """``log_point``: where the log resumes after the block at ``height`` (a final one).

        Every validator derives the same points; a validator catching up
        asks for the point after the last block it fetched.
        """
        height = arg_int(args, "height")
        final = self.commits.final_height  # type: ignore[attr-defined]
        found = self.progress.point(height) if 0 <= height <= final else None
        if found is None:
            msg = f"no log point for block {height} here (final height {final})"
            raise RequestFailed(E_NOT_FOUND, msg)
        point, log_time = found
        return {
            "height": height,
            "position": point.position,
            "seq": point.seq,
            "offset": point.offset,
            "log_time": log_time,
        }

    async def h_status(self, session: Session, args: dict[str, Any]) -> dict[str, Any]:
        """``status`` plus the validator's key, finality and the divergent validators seen."""
        result = dict(await super().h_status(session, args))
        result["validator"] = self.validator_key.public_key_bytes()
        result["final_height"] = self.commits.final_height  # type: ignore[attr-defined]
        result["log_purged_below"] = self.retention.purged_below
        caught = self.caught_up
        result["caught_up"] = (
            {}
            if caught is None
            else {"peer": caught.peer, "from": caught.start, "to": caught.height}
        )
        result["log_round_trip_us"] = _quantiles_us(self.stream_log.round_trips)
        result["accept_us"] = _quantiles_us(self.accept_times)
        result["loop_lag_us"] = _quantiles_us(self.loop_lags)
        result["log_messages"] = self.stream_log.messages  # read since this process started
        result["log_entries"] = self.stream_log.committed
        lowest = self.retention.lowest
        result["lowest_final"] = -1 if lowest is None else lowest.final_height
        result["divergent"] = [
            [d.height, d.validator, d.theirs, d.ours] for d in self.bus.divergent[-20:]
        ]
        return dict(sorted(result.items()))


def _quantiles_us(seconds: Collection[float]) -> list[int]:
    """p50 and p99 of ``seconds``, in whole microseconds (0 if empty)."""
    ordered = sorted(seconds)
    return [int(ordered[int(q * (len(ordered) - 1))] * 1e6) if ordered else 0 for q in (0.5, 0.99)]


async def open_validator(
    config: NodeConfig, settings: ValidatorSettings, clock: Clock | None = None
) -> Validator:
    """Connect to the NATS cluster and build a validator that resumes after its stored head."""
    clock = clock or SystemClock()
    if config.operator_key is None:
        msg = "a validator needs the chain key (operator_key)"
        raise ConfigError(msg)
    chain_key = load_key(config.operator_key)
    validator_key = load_key(settings.validator_key)
    if validator_key.public_key_bytes() not in settings.validators:
        msg = "the validator key is not one of the configured validators"
        raise ConfigError(msg)
    data_dir = Path(config.data_dir)
    progress = Progress(data_dir)
    try:
        log_, resume, caught = await _open_log(config, settings, chain_key, validator_key, progress)
    except BaseException:
        progress.close()
        raise
    bus = await AttestationBus.open(
        settings.nats_urls, config.chain_id, settings.validators, replicas=settings.replicas
    )
    retention = await Retention.open(
        log_,
        bus,
        validator_key.public_key_bytes(),
        settings.validators,
        step=settings.purge_step,
        replicas=settings.replicas,
    )
    tick_ms = settings.tick_ms or max(1, config.block_interval_ms // 2)
    validator = Validator(
        config,
        chain_key,
        clock,
        log=log_,
        bus=bus,
        validator_key=validator_key,
        quorum=settings.effective_quorum(),
        validators=settings.validators,
        progress=progress,
        resume=resume,
        retention=retention,
        tick_interval=tick_ms / 1000,
    )
    validator.caught_up = caught
    return validator


async def _open_log(
    config: NodeConfig,
    settings: ValidatorSettings,
    chain_key: SigningKey,
    validator_key: SigningKey,
    progress: Progress,
) -> tuple[JetStreamLog, tuple[LogPoint, int], CaughtUp | None]:
    """Open the log at the point after the stored head; catch up from a peer if it is gone.

    Catches up (``node.cluster.catchup``) when the log no longer holds the
    resume point, or the stored head has no recorded point (a catch-up
    that stopped part-way), and peers are configured.

    Raises:
        LogTruncated: behind the retained tail and no peer could serve a catch-up.
        ConfigError: no recorded point for the head and no peers.
    """
    data_dir = Path(config.data_dir)
    store = chain.open_store(data_dir)
    height = store.height
    store.close()
    name = f"p2pex-validator-{validator_key.public_key_bytes().hex()[:8]}"
    limits = StreamLimits(max_msgs=settings.log_max_msgs, max_age_s=settings.log_max_age_s)
    behind: LogTruncated | None = None
    try:
        resume = progress.resume(height)
    except LookupError as exc:
        if not settings.peers:
            raise ConfigError(str(exc)) from exc
        log.warning("%s: catching up from a peer", exc)
    else:
        try:
            log_ = await JetStreamLog.open(
                settings.nats_urls,
                start=resume[0],
                stream=settings.log_stream,
                replicas=settings.replicas,
                name=name,
                limits=limits,
            )
        except LogTruncated as exc:
            if not settings.peers:
                hint = f"this validator's store ends at height {height}; {BEHIND_HINT}"
                raise LogTruncated(exc.want_seq, exc.first_seq, hint) from exc
            log.warning("%s: catching up from a peer", exc)
            behind = exc
        else:
            return log_, resume, None
    peers = [p for p in settings.peers if p != config.listen]
    try:
        caught = await catch_up(
            data_dir,
            chain_id=config.chain_id,
            operator=chain_key.public_key_bytes(),
            peers=peers,
            validators=settings.validators,
            quorum=settings.effective_quorum(),
            progress=progress,
        )
    except CatchUpFailed as exc:
        hint = f"{exc}; this validator's store ends at height {height}; {BEHIND_HINT}"
        if behind is None:
            raise ConfigError(hint) from exc
        raise LogTruncated(behind.want_seq, behind.first_seq, hint) from exc
    resume = (caught.point, caught.log_time)
    try:
        log_ = await JetStreamLog.open(
            settings.nats_urls,
            start=caught.point,
            stream=settings.log_stream,
            replicas=settings.replicas,
            name=name,
            limits=limits,
        )
    except LogTruncated as exc:  # the peers' point was dropped meanwhile (the stream's limits)
        hint = f"caught up to height {caught.height} from a peer, still behind; {BEHIND_HINT}"
        raise LogTruncated(exc.want_seq, exc.first_seq, hint) from exc
    return log_, resume, caught


async def serve_validator(config: NodeConfig, settings: ValidatorSettings) -> int:
    """Run a validator until SIGTERM / SIGINT; 1 if a background loop failed."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    node = await open_validator(config, settings)
    try:
        host, port = parse_address(config.listen)
        actual = await node.start(host, port)
        if config.port_file is not None:
            write_port_file(config.port_file, actual)
        print(f"p2pex node ready validator {host}:{actual} height {node.store.height}", flush=True)
        waits: list[asyncio.Task[object]] = [
            asyncio.create_task(stop.wait()),
            asyncio.create_task(node.fatal.wait()),
        ]
        if config.gc_freeze_interval_s > 0:  # as an operator process does (node.roles.runner)
            waits.append(
                asyncio.create_task(
                    keep_pauses_short(config.gc_freeze_interval_s, config.gc_full_interval_s)
                )
            )
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for task in waits:
            task.cancel()
        return 1 if node.fatal.is_set() else 0
    finally:
        await node.close()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m node.roles.validator [node flags] --nats URLS --validator-key K ...``."""
    parser = argparse.ArgumentParser(prog="python -m node.roles.validator", description=__doc__)
    add_run_arguments(parser)
    add_validator_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=os.environ.get("P2PEX_LOG", "INFO"),
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    try:
        overrides: dict[str, Any] = {
            "role": "operator",
            "data_dir": args.data_dir,
            "listen": args.listen,
            "operator_key": args.operator_key,
            "chain_id": args.chain_id,
            "block_interval_ms": args.block_interval_ms,
            "block_max_txs": args.block_max_txs,
            "verify_workers": args.verify_workers,
            "gc_freeze_interval_s": args.gc_freeze_interval_s,
            "gc_full_interval_s": args.gc_full_interval_s,
            "loop_slice_us": args.loop_slice_us,
            "slot_length_ms": args.slot_length_ms,
            "clearing_model": args.clearing_model,
            "max_frame": args.max_frame,
            "idle_timeout_s": args.idle_timeout_s,
            "port_file": args.port_file,
        }
        config = load_config(args.config, overrides)
        if config.loop_slice_us > 0:
            request_slice(config.loop_slice_us)
        return asyncio.run(serve_validator(config, settings_from_args(args)))
    except NodeError as exc:
        print(f"p2pex: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
