"""A blocking client of a validator set: submits to one validator, fails over to the next.

``FailoverClient(addresses, key)`` talks to one validator at a time. When
that validator stops answering (the connection breaks, a request times
out, the log is unavailable to it) the client moves on to the next address
and goes on. ``submit_committed`` signs a transaction once and returns only
once a validator reports it committed (final): after a fail-over it sends
the same bytes again, which is safe, since the state machine applies a
transaction once and refuses a second copy as a replay (``bad_nonce``),
and asks the new validator whether the transaction is committed.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from typing import Any

from ledger.keys import SigningKey
from market import transactions as txn
from node.client.clients import Client
from node.errors import NodeError, NodeTimeout, RequestFailed
from node.wire.protocol import E_BAD_NONCE, E_NOT_FOUND, E_TIMEOUT, E_UNAVAILABLE

RETRYABLE = frozenset({E_UNAVAILABLE, E_TIMEOUT, E_NOT_FOUND})


class FailoverClient:
    """One validator at a time, the next one when it fails."""

    def __init__(
        self,
        addresses: Sequence[str],
        key: SigningKey,
        *,
        request_timeout: float = 5.0,
        commit_timeout: float = 60.0,
    ) -> None:
        if not addresses:
            msg = "a fail-over client needs at least one address"
            raise ValueError(msg)
        self.addresses = list(addresses)
        self.key = key
        self.request_timeout = request_timeout
        self.commit_timeout = commit_timeout
        self.index = 0
        self.failovers = 0
        self._client: Client | None = None
        self._chain_id: str | None = None
        self._next_nonce: int | None = None

    @property
    def address(self) -> str:
        """The validator in use."""
        return self.addresses[self.index]

    def _connected(self) -> Client:
        if self._client is None:
            self._client = Client.connect(self.address, key=self.key, timeout=self.request_timeout)
        return self._client

    def fail_over(self) -> None:
        """Drop the connection and use the next validator."""
        if self._client is not None:
            with contextlib.suppress(NodeError, OSError):
                self._client.close()
            self._client = None
        self.index = (self.index + 1) % len(self.addresses)
        self.failovers += 1

    def call(self, command: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
        """A request, failing over until one validator answers (``commit_timeout`` in all)."""
        deadline = time.monotonic() + self.commit_timeout
        while True:
            try:
                return self._connected().call(command, args)
            except RequestFailed:
                raise
            except (NodeError, OSError):
                if time.monotonic() >= deadline:
                    raise
                self.fail_over()
                time.sleep(0.05)

    def submit_committed(self, payload: txn.Payload) -> tuple[bytes, int]:
        """Sign, submit and wait until committed; return (tx id, block height).

        Raises:
            RequestFailed: a validator refused the transaction (not a replay of itself).
            NodeTimeout: not committed within ``commit_timeout`` seconds.
        """
        if self._chain_id is None:
            self._chain_id = str(self.call("status")["chain_id"])
        if self._next_nonce is None:
            sender = self.key.public_key_bytes()
            self._next_nonce = int(self.call("nonce", {"sender": sender})["next"])
        nonce = self._next_nonce
        signed = txn.make(self.key, self._chain_id, nonce, payload)
        self._next_nonce = nonce + 1
        data, tx_id = signed.to_bytes(), signed.tx_id
        deadline = time.monotonic() + self.commit_timeout
        attempts = 0
        while time.monotonic() < deadline:
            client: Client | None = None
            try:
                client = self._connected()
                attempts += 1
                try:
                    client.call("submit", {"tx": data})
                except RequestFailed as exc:
                    # after a broken attempt: a copy went in (through this or another validator)
                    replay = attempts > 1 and exc.code == E_BAD_NONCE
                    if not replay and exc.code not in RETRYABLE:
                        raise
                wait = min(10.0, max(0.1, deadline - time.monotonic()))
                return tx_id, client.wait_committed(tx_id, timeout=wait)
            except RequestFailed as exc:
                if exc.code not in RETRYABLE:
                    raise
            except (NodeError, OSError):
                pass
            self.fail_over()
            time.sleep(0.05)
        msg = f"transaction {tx_id.hex()} not committed in {self.commit_timeout} s"
        raise NodeTimeout(msg)

    def close(self) -> None:
        """Close the connection."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def __enter__(self) -> FailoverClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
