"""Validators' own transactions: requested with their own keys, signed where the log orders them.

The operator-only transactions of the market (a ``CloseSlot`` at gate
closure, a ``PublishClearing``) must be signed by the chain key, with the
chain key's next nonce. If each validator signed them itself, two
validators would pick the same nonce from the same state and one of the
two transactions would be refused (``bad_nonce``): gate closures and
clearings lost or delayed at random. So a validator does not sign them
with the chain key. It appends a **request** to the log instead: the
payload in a transaction signed by its *own* key, behind a marker tag
(``REQUEST_TAG``, in the ``0xc1`` marker space: never a transaction by
itself). Every validator reads the request at the same log position, with
the same state, and derives the same chain-key transaction there: the
payload, signed by the chain key with the state's next nonce (Ed25519
signatures are deterministic, so the bytes are identical everywhere). That
transaction, not the request, is what enters the block: the chain format
and its audit are unchanged, and nonces are allotted by the log's order,
so they cannot collide.

A request is applied only if it is well formed, signed by one of the
configured validators, of an allowed kind (``CloseSlot``,
``PublishClearing``: what validators do on their own), and not done
already (the slot is closed, or cleared): several validators requesting
the same closure is the normal case, and the later requests are skipped,
the same way on every validator. Anyone who can publish on the log can
append bytes, but not a request signed by a validator; a replayed request
is skipped as done, or closes or clears a slot that is due anyway.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection

from ledger.block import Block, BlockHeader
from ledger.keys import SigningKey
from market import transactions as txn
from market.errors import InvalidTransaction
from market.state import ExchangeState, Outcome
from node.clock import Clock
from node.pipeline.blocks import BlockLimits, BlockProducer, BoundaryPolicy, OpenBlock
from node.pipeline.intake import Intake
from node.pipeline.log_time import LogTimePolicy
from node.pipeline.sequencer import SequencerLog
from node.pipeline.submission import Submission

log = logging.getLogger("p2pex.cluster.requests")

REQUEST_TAG = b"\xc1p2pex/request/v1\x00"
ALLOWED = (txn.CloseSlot, txn.PublishClearing)


class AlreadyDone(InvalidTransaction):
    """Raised to a requester when its request was skipped: another validator's came first."""


def encode_request(key: SigningKey, chain_id: str, nonce: int, payload: txn.Payload) -> bytes:
    """The log entry of a validator's request for ``payload`` (``nonce``: any, unique per key).

    Raises:
        ValueError: ``payload`` is not a kind validators request.
    """
    if not isinstance(payload, ALLOWED):
        msg = f"validators request {[k.__name__ for k in ALLOWED]}, got {type(payload).__name__}"
        raise ValueError(msg)
    return REQUEST_TAG + txn.make(key, chain_id, nonce, payload).data


def decode_request(
    entry: bytes, chain_id: str, validators: Collection[bytes]
) -> txn.SignedTransaction | None:
    """The validator-signed request in ``entry``, or None if it is not a valid request."""
    if not entry.startswith(REQUEST_TAG):
        return None
    try:
        signed = txn.decode(entry[len(REQUEST_TAG) :])
        txn.verify(signed)
    except (InvalidTransaction, ValueError) as exc:
        log.warning("ignored a malformed request: %s", exc)
        return None
    tx = signed.transaction
    if tx.chain_id != chain_id or tx.sender not in validators:
        log.warning("ignored a request of a key that is not a validator of %s", chain_id)
        return None
    if not isinstance(tx.payload, ALLOWED):
        log.warning("ignored a request for %s", type(tx.payload).__name__)
        return None
    return signed


def is_done(state: ExchangeState, payload: txn.Payload) -> bool:
    """The request's effect is already in the state (a later copy is skipped)."""
    if isinstance(payload, txn.CloseSlot):
        return (payload.product, payload.slot) in state.closed
    if isinstance(payload, txn.PublishClearing):
        return (payload.product, payload.slot) in state.clearings
    return False


class RequestPolicy(LogTimePolicy):
    """``LogTimePolicy`` whose markers are the ticks: requests go to the producer's ``_apply``."""

    __slots__ = ()

    def is_marker(self, entry: bytes) -> bool:
        """A tick or any other marker, but not a request."""
        return entry[:1] == b"\xc1" and not entry.startswith(REQUEST_TAG)


def _retrieve(future: asyncio.Future[Outcome]) -> None:
    if not future.cancelled():
        future.exception()


class RequestingProducer(BlockProducer):
    """A ``BlockProducer`` that turns validators' requests into chain-key transactions.

    ``requests`` maps a request entry this validator appended to the future
    its requester waits on (the derived transaction's outcome).
    """

    def __init__(
        self,
        *,
        validators: Collection[bytes],
        chain_id: str,
        signer: SigningKey,
        state: ExchangeState,
        log: SequencerLog,
        intake: Intake,
        clock: Clock,
        limits: BlockLimits,
        parent: BlockHeader | None,
        emit: Callable[[Block, OpenBlock], None],
        policy: BoundaryPolicy,
    ) -> None:
        super().__init__(
            chain_id=chain_id,
            signer=signer,
            state=state,
            log=log,
            intake=intake,
            clock=clock,
            limits=limits,
            parent=parent,
            emit=emit,
            policy=policy,
        )
        self.validators = frozenset(validators)
        self.requests: dict[bytes, asyncio.Future[Outcome]] = {}
        self.derived = 0  # requests turned into transactions
        self.skipped = 0  # requests skipped as done

    def _apply(self, data: bytes) -> None:
        if not data.startswith(REQUEST_TAG):
            super()._apply(data)
            return
        waiter = self.requests.pop(data, None)
        request = decode_request(data, self.chain_id, self.validators)
        if request is None:
            if waiter is not None and not waiter.done():
                waiter.set_exception(InvalidTransaction("the request was not valid"))
            return
        payload = request.transaction.payload
        if is_done(self.state, payload):
            self.skipped += 1
            if waiter is not None and not waiter.done():
                waiter.set_exception(AlreadyDone(f"{type(payload).__name__} was done already"))
            return
        nonce = self.state.next_nonce(self.signer.public_key_bytes())
        signed = txn.make(self.signer, self.chain_id, nonce, payload)
        submission = Submission(signed, self.clock.monotonic())
        if waiter is not None:
            submission.accepted.add_done_callback(lambda f: _relay(f, waiter))
        else:
            submission.accepted.add_done_callback(_retrieve)
        self.intake.pending[signed.data] = submission  # signed just now: no signature check
        self.intake.in_flight.setdefault(signed.tx_id, submission)
        self.derived += 1
        super()._apply(signed.data)


def _relay(source: asyncio.Future[Outcome], target: asyncio.Future[Outcome]) -> None:
    if target.done():
        return
    if source.cancelled():
        target.cancel()
    elif source.exception() is not None:
        target.set_exception(source.exception())  # type: ignore[arg-type]
    else:
        target.set_result(source.result())
