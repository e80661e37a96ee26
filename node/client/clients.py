"""The client library for scripts: sign and submit orders, query, subscribe.

Blocking::

    from node.client.clients import Client
    with Client.connect("127.0.0.1:7400", key_path="alice.pem") as alice:
        alice.register("alice", bus="B3", role="prosumer")
        placed = alice.place_order("electricity", slot=42, side="bid", price=120, quantity=2_000)
        alice.wait_committed(placed.tx_id)
        print(alice.book("electricity", 42), alice.trades())

asyncio: ``AsyncClient`` has the same methods, as coroutines. A client is one
connection: use it from one thread (or one event loop) at a time.

Nonces are taken from the node on first use and counted locally after that
(a ``bad_nonce`` reply refetches once and retries). ``client_order_id``
defaults to the transaction's nonce, which is unique per account.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ledger.keys import SigningKey
from market import transactions as txn
from node.config import parse_address
from node.errors import LocalError, RequestFailed
from node.keys import load_key
from node.wire.protocol import E_BAD_NONCE, Event
from node.wire.rpc import AsyncRpc, SyncRpc

Result = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Submitted:
    """A transaction the node accepted (validated and sequenced; not yet committed)."""

    tx_id: bytes
    nonce: int
    order_id: int | None  # market-wide id of a placed order
    client_order_id: int | None
    events: list[dict[str, Any]]


def _order(
    product: str,
    slot: int,
    side: str,
    price: int,
    quantity: int,
    *,
    client_order_id: int,
    tif: str = "GTC",
    expires_at: int = 0,
    post_only: bool = False,
    stp: str = "",
) -> txn.PlaceOrder:
    return txn.PlaceOrder(
        product, slot, side, price, quantity, tif, expires_at, post_only, stp, client_order_id
    )


class _Signer:
    """Key, chain id and nonce bookkeeping shared by both clients."""

    def __init__(self, key: SigningKey | None) -> None:
        self.key = key
        self.chain_id: str | None = None
        self._next_nonce: int | None = None

    @property
    def account(self) -> bytes:
        """This client's account id."""
        return self._key().account_id

    def _key(self) -> SigningKey:
        if self.key is None:
            msg = "this client has no signing key: pass key= or key_path="
            raise LocalError(msg)
        return self.key

    def _sign(self, payload: txn.Payload, nonce: int) -> bytes:
        assert self.chain_id is not None
        return txn.make(self._key(), self.chain_id, nonce, payload).to_bytes()

    @staticmethod
    def _submitted(result: Result, nonce: int, payload: txn.Payload) -> Submitted:
        coid = getattr(payload, "client_order_id", None)
        return Submitted(result["tx_id"], nonce, result.get("order_id"), coid, result["events"])


class Client(_Signer):
    """A blocking client of one node (operator or replica)."""

    def __init__(self, rpc: SyncRpc, key: SigningKey | None = None) -> None:
        super().__init__(key)
        self.rpc = rpc

    @classmethod
    def connect(
        cls,
        address: str,
        *,
        key: SigningKey | None = None,
        key_path: Path | str | None = None,
        timeout: float = 30.0,
    ) -> Client:
        """Connect to ``HOST:PORT``, optionally with a signing key (or key file)."""
        if key is None and key_path is not None:
            key = load_key(Path(key_path))
        return cls(SyncRpc(*parse_address(address), timeout=timeout), key)

    def close(self) -> None:
        """Close the connection."""
        self.rpc.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def call(self, command: str, args: dict[str, Any] | None = None) -> Result:
        """Send any protocol command (see docs/protocol.md)."""
        return self.rpc.call(command, args)

    # -- writes ----------------------------------------------------------------------------------

    def submit(self, payload: txn.Payload) -> Submitted:
        """Sign ``payload`` with the next nonce, submit it and return once accepted.

        Raises:
            RequestFailed: the node refused it (code ``bad_nonce``, ``not_permitted``, ...).
        """
        if self.chain_id is None:
            self.chain_id = str(self.status()["chain_id"])
        for attempt in range(2):
            if self._next_nonce is None:
                self._next_nonce = int(self.call("nonce", {"sender": self._key_bytes()})["next"])
            nonce = self._next_nonce
            try:
                result = self.call("submit", {"tx": self._sign(payload, nonce)})
            except RequestFailed as exc:
                if exc.code == E_BAD_NONCE and attempt == 0:
                    self._next_nonce = None
                    continue
                raise
            self._next_nonce = nonce + 1
            return self._submitted(result, nonce, payload)
        msg = "unreachable"
        raise AssertionError(msg)  # pragma: no cover

    def _key_bytes(self) -> bytes:
        return self._key().public_key_bytes()

    def _peek_nonce(self) -> int:
        if self._next_nonce is None:
            self._next_nonce = int(self.call("nonce", {"sender": self._key_bytes()})["next"])
        return self._next_nonce

    def register(self, name: str, *, bus: str, role: str) -> Submitted:
        """Register this key's account as a peer at ``bus`` with ``role``."""
        return self.submit(txn.RegisterPeer(name, bus, role))

    def place_order(
        self,
        product: str,
        slot: int,
        side: str,
        price: int,
        quantity: int,
        *,
        client_order_id: int | None = None,
        **options: Any,
    ) -> Submitted:
        """Place an order (price 0: market order; options: tif, expires_at, post_only, stp)."""
        coid = self._peek_nonce() if client_order_id is None else client_order_id
        return self.submit(
            _order(product, slot, side, price, quantity, client_order_id=coid, **options)
        )

    def cancel_order(self, client_order_id: int) -> Submitted:
        """Cancel one of this account's resting orders."""
        return self.submit(txn.CancelOrder(client_order_id))

    def amend_order(self, client_order_id: int, *, price: int = 0, quantity: int = 0) -> Submitted:
        """Change an order's price and / or quantity (0: unchanged)."""
        return self.submit(txn.AmendOrder(client_order_id, price, quantity))

    def declare_curve(
        self, product: str, slot: int, a: int, b: int, c: int, q_min: int, q_max: int
    ) -> Submitted:
        """Declare this peer's cost curve for the clearing of (product, slot)."""
        return self.submit(txn.DeclareCurve(product, slot, a, b, c, q_min, q_max))

    def wait_committed(self, tx_id: bytes, timeout: float = 30.0) -> int:
        """Wait until the transaction's block is durably stored; return its height."""
        args = {"tx_id": tx_id, "timeout_ms": int(timeout * 1000)}
        return int(self.rpc.call("wait_committed", args, timeout=timeout + 5)["height"])

    # -- reads -----------------------------------------------------------------------------------

    def status(self) -> Result:
        """Role, chain id, height, head hash, state digest of the node."""
        return self.call("status")

    def book(self, product: str, slot: int, levels: int = 10) -> Result:
        """L2 depth: ``{"bids": [[price, Wh], ...], "asks": [...], "closed": bool}``."""
        return self.call("book", {"product": product, "slot": slot, "levels": levels})

    def trades(
        self,
        account: bytes | None = None,
        *,
        mine: bool = False,
        limit: int | None = None,
        start: int | None = None,
    ) -> list[Result]:
        """The newest trades of ``account`` (``mine``: this client's), or of everyone.

        ``limit``: how many (the node's default: 1,000). ``start``: instead,
        every account's trades from that height on, in whole blocks, until
        at least ``limit`` (page on from the last one's height + 1).
        """
        if mine:
            account = self.account
        return list(self.call("trades", _trades_args(account, limit, start))["trades"])

    def settlements(self, account: bytes | None = None, limit: int | None = None) -> list[Result]:
        """The newest clearing settlements of ``account`` (default: this client's)."""
        args = _settlements_args(account or self.account, limit)
        return list(self.call("settlements", args)["settlements"])

    def blocks(self, start: int = 0, limit: int = 64) -> list[bytes]:
        """Stored blocks' bytes from height ``start``."""
        return list(self.call("blocks", {"from": start, "limit": limit})["blocks"])

    def transaction(self, tx_id: bytes) -> Result:
        """Where a stored transaction is: ``height``, ``index`` and its bytes ``tx``."""
        return self.call("tx", {"tx_id": tx_id})

    def peers(self) -> list[Result]:
        """Registered peers: ``account``, ``name``, ``bus``, ``role``."""
        return list(self.call("peers")["peers"])

    def wait_height(self, height: int, timeout: float = 30.0) -> int:
        """Wait until this node stores the block at ``height``."""
        args = {"height": height, "timeout_ms": int(timeout * 1000)}
        return int(self.rpc.call("wait_height", args, timeout=timeout + 5)["height"])

    def subscribe(self, *topics: str) -> None:
        """Have the node push ``"blocks"`` and / or ``"trades"`` events."""
        self.call("subscribe", {"topics": list(topics)})

    def events(self, timeout: float | None = None) -> Iterator[Event]:
        """Yield pushed events as they arrive (after ``subscribe``)."""
        while True:
            yield self.rpc.next_event(timeout)

    # -- operator writes and slot reads (added for the command line) ----------------------------

    def set_network(self, network_json: str) -> Submitted:
        """Operator: publish the feeder (``SetNetwork``; see ``market.gate_clearing``)."""
        return self.submit(txn.SetNetwork(network_json))

    def set_tariff(self, alpha_milli: int, beta_milli: int) -> Submitted:
        """Operator: set the loss and congestion penalties in thousandths (``SetTariff``)."""
        return self.submit(txn.SetTariff(alpha_milli, beta_milli))

    def close_slot(self, product: str, slot: int) -> Submitted:
        """Operator: close the gate of (product, slot) (``CloseSlot``); the clearing follows."""
        return self.submit(txn.CloseSlot(product, slot))

    def clearing(self, product: str, slot: int, *, window: int = 64) -> Result | None:
        """The published clearing of (product, slot), or None if there is none yet.

        Scans the node's blocks newest first, ``window`` at a time, for the
        ``PublishClearing`` transaction. Returns ``height``, ``tx_id``,
        ``settlements`` (maps ``account``, ``energy_wh``, ``payment``) and
        the ``certificate`` bytes (``clearing.certificate_from_plain`` of
        their msgpack decodes it).
        """
        end = int(self.status()["height"])
        while end > 0:
            start = max(0, end - window)
            found = _find_clearing(self.blocks(start, end - start), product, slot)
            if found is not None:
                return found
            end = start
        return None


class AsyncClient(_Signer):
    """An asyncio client of one node; many requests may be in flight at once."""

    def __init__(self, rpc: AsyncRpc, key: SigningKey | None = None) -> None:
        super().__init__(key)
        self.rpc = rpc

    @classmethod
    async def connect(
        cls, address: str, *, key: SigningKey | None = None, timeout: float = 30.0
    ) -> AsyncClient:
        """Connect to ``HOST:PORT``."""
        return cls(await AsyncRpc.connect(*parse_address(address), timeout=timeout), key)

    async def close(self) -> None:
        """Close the connection."""
        await self.rpc.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def call(self, command: str, args: dict[str, Any] | None = None) -> Result:
        """Send any protocol command."""
        return await self.rpc.call(command, args)

    async def _chain(self) -> None:
        if self.chain_id is None:
            self.chain_id = str((await self.call("status"))["chain_id"])

    async def _nonce(self) -> int:
        await self._chain()
        if self._next_nonce is None:
            sender = self._key().public_key_bytes()
            self._next_nonce = int((await self.call("nonce", {"sender": sender}))["next"])
        nonce = self._next_nonce
        self._next_nonce += 1  # reserved now, so concurrent submits get distinct nonces
        return nonce

    async def submit(self, payload: txn.Payload, nonce: int | None = None) -> Submitted:
        """Sign and submit ``payload``; return once accepted (see ``Client.submit``)."""
        nonce = await self._nonce() if nonce is None else nonce
        await self._chain()
        result = await self.call("submit", {"tx": self._sign(payload, nonce)})
        return self._submitted(result, nonce, payload)

    async def register(self, name: str, *, bus: str, role: str) -> Submitted:
        """Register this key's account as a peer."""
        return await self.submit(txn.RegisterPeer(name, bus, role))

    async def place_order(
        self,
        product: str,
        slot: int,
        side: str,
        price: int,
        quantity: int,
        *,
        client_order_id: int | None = None,
        **options: Any,
    ) -> Submitted:
        """Place an order (see ``Client.place_order``)."""
        nonce = await self._nonce()
        coid = nonce if client_order_id is None else client_order_id
        payload = _order(product, slot, side, price, quantity, client_order_id=coid, **options)
        return await self.submit(payload, nonce)

    async def cancel_order(self, client_order_id: int) -> Submitted:
        """Cancel one of this account's resting orders."""
        return await self.submit(txn.CancelOrder(client_order_id))

    async def amend_order(
        self, client_order_id: int, *, price: int = 0, quantity: int = 0
    ) -> Submitted:
        """Change an order's price and / or quantity (0: unchanged)."""
        return await self.submit(txn.AmendOrder(client_order_id, price, quantity))

    async def declare_curve(
        self, product: str, slot: int, a: int, b: int, c: int, q_min: int, q_max: int
    ) -> Submitted:
        """Declare this peer's cost curve for the clearing of (product, slot)."""
        return await self.submit(txn.DeclareCurve(product, slot, a, b, c, q_min, q_max))

    async def wait_committed(self, tx_id: bytes, timeout: float = 30.0) -> int:
        """Wait until the transaction's block is durably stored; return its height."""
        args = {"tx_id": tx_id, "timeout_ms": int(timeout * 1000)}
        return int((await self.rpc.call("wait_committed", args, timeout=timeout + 5))["height"])

    async def status(self) -> Result:
        """Role, chain id, height, head hash, state digest of the node."""
        return await self.call("status")

    async def book(self, product: str, slot: int, levels: int = 10) -> Result:
        """L2 depth of one book."""
        return await self.call("book", {"product": product, "slot": slot, "levels": levels})

    async def trades(
        self, account: bytes | None = None, *, limit: int | None = None, start: int | None = None
    ) -> list[Result]:
        """The newest trades of ``account``, or of everyone (see ``Client.trades``)."""
        return list((await self.call("trades", _trades_args(account, limit, start)))["trades"])

    async def settlements(
        self, account: bytes | None = None, limit: int | None = None
    ) -> list[Result]:
        """The newest clearing settlements of ``account`` (default: this client's)."""
        args = _settlements_args(account or self.account, limit)
        return list((await self.call("settlements", args))["settlements"])

    async def blocks(self, start: int = 0, limit: int = 64) -> list[bytes]:
        """Stored blocks' bytes from height ``start``."""
        return list((await self.call("blocks", {"from": start, "limit": limit}))["blocks"])

    async def transaction(self, tx_id: bytes) -> Result:
        """Where a stored transaction is: ``height``, ``index`` and its bytes ``tx``."""
        return await self.call("tx", {"tx_id": tx_id})

    async def peers(self) -> list[Result]:
        """Registered peers."""
        return list((await self.call("peers"))["peers"])

    async def subscribe(self, *topics: str) -> None:
        """Have the node push ``"blocks"`` and / or ``"trades"`` events."""
        await self.call("subscribe", {"topics": list(topics)})

    async def next_event(self, timeout: float | None = None) -> Event:
        """The next pushed event."""
        return await self.rpc.next_event(timeout)

    # -- operator writes (added for the command line) -------------------------------------------

    async def set_network(self, network_json: str) -> Submitted:
        """Operator: publish the feeder (``SetNetwork``)."""
        return await self.submit(txn.SetNetwork(network_json))

    async def set_tariff(self, alpha_milli: int, beta_milli: int) -> Submitted:
        """Operator: set the loss and congestion penalties in thousandths (``SetTariff``)."""
        return await self.submit(txn.SetTariff(alpha_milli, beta_milli))

    async def close_slot(self, product: str, slot: int) -> Submitted:
        """Operator: close the gate of (product, slot) (``CloseSlot``)."""
        return await self.submit(txn.CloseSlot(product, slot))


def _trades_args(account: bytes | None, limit: int | None, start: int | None) -> dict[str, Any]:
    """The arguments of a ``trades`` request (the node's defaults for what is None)."""
    args: dict[str, Any] = {}
    if account is not None:
        args["account"] = account
    if limit is not None:
        args["limit"] = limit
    if start is not None:
        args["from"] = start
    return args


def _settlements_args(account: bytes | None, limit: int | None) -> dict[str, Any]:
    args: dict[str, Any] = {"account": account}
    if limit is not None:
        args["limit"] = limit
    return args


def _find_clearing(blocks: list[bytes], product: str, slot: int) -> Result | None:
    """The ``PublishClearing`` of (product, slot) in ``blocks`` (newest last), as a map."""
    from ledger.block import decode_block

    for data in reversed(blocks):
        block = decode_block(data)
        for raw in block.transactions:
            signed = txn.decode(raw)
            payload = signed.transaction.payload
            if (
                isinstance(payload, txn.PublishClearing)
                and payload.product == product
                and payload.slot == slot
            ):
                rows = [
                    {"account": account, "energy_wh": energy, "payment": payment}
                    for account, energy, payment in payload.settlements
                ]
                return {
                    "height": block.header.height,
                    "tx_id": signed.tx_id,
                    "product": product,
                    "slot": slot,
                    "settlements": rows,
                    "certificate": payload.certificate,
                }
    return None
