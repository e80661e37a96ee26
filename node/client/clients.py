"""The client library for scripts: sign and submit orders, query, subscribe.

Blocking::

    from node.client.clients import Client
    with Client.connect("127.0.0.1:7400", key_path="alice.pem") as alice:
        alice.register("alice", bus="B3", role="prosumer")
        placed = alice.place_order("electricity", slot=42, side="bid", price=120, quantity=2_000)
        alice.wait_committed(placed.tx_id)
        print(alice.book("electricity", 42), alice.trades())

asyncio: ``AsyncClient`` has the same methods, as coroutines. A client is one
connection: use it from one thread (or one event loop) at a time; an
``AsyncClient`` may have many requests in flight (concurrent ``place_order``
calls get distinct nonces, sent in the order they were taken).

Every method is written once, in ``BaseClient``, as the steps of a
conversation with the node: a generator that yields each request (``Call``)
and is sent its result (or thrown its ``RequestFailed``). ``Client`` and
``AsyncClient`` add only how they wait for a result (httpx's ``BaseClient``
idea, with h11's sans-I/O steps).

Nonces are taken from the node on first use and counted locally after that
(a ``bad_nonce`` reply refetches once and retries). ``client_order_id``
defaults to the transaction's nonce, which is unique per account.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar, overload

from ledger.keys import SigningKey
from market import transactions as txn
from node.config import parse_address
from node.errors import LocalError, RequestFailed
from node.keys import load_key
from node.wire.protocol import E_BAD_NONCE, Event
from node.wire.rpc import AsyncRpc, SyncRpc

Result = dict[str, Any]
P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Call:
    """One request of a client method's steps: what to send, how long to wait (None: default)."""

    command: str
    args: dict[str, Any]
    timeout: float | None = None


# A client method's steps: yields its requests, is sent their results, returns its value.
Steps = Generator[Call, Result, T]


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


class _Method(Generic[P, T]):
    """A client method written once as ``Steps``; each client class runs them its way."""

    def __init__(self, steps: Callable[Concatenate[Any, P], Steps[T]]) -> None:
        self.steps = steps
        self.__doc__ = steps.__doc__
        self.__name__ = steps.__name__

    @overload
    def __get__(self, client: None, owner: type[Any]) -> _Method[P, T]: ...

    @overload
    def __get__(self, client: Client, owner: type[Any]) -> Callable[P, T]: ...

    @overload
    def __get__(
        self, client: AsyncClient, owner: type[Any]
    ) -> Callable[P, Coroutine[Any, Any, T]]: ...

    def __get__(self, client: BaseClient | None, owner: type[Any]) -> Any:
        if client is None:
            return self
        return functools.partial(_run, client, self.steps)


def _run(client: BaseClient, steps: Callable[..., Steps[T]], *args: Any, **kwargs: Any) -> Any:
    return client._drive(steps(client, *args, **kwargs))


def _method(steps: Callable[Concatenate[Any, P], Steps[T]]) -> _Method[P, T]:
    return _Method(steps)


class BaseClient:
    """Everything a client does, as steps; subclasses say how they wait (``_drive``)."""

    def __init__(self, key: SigningKey | None) -> None:
        self.key = key
        self.chain_id: str | None = None
        self._next_nonce: int | None = None

    def _drive(self, steps: Steps[Any]) -> Any:
        """Run ``steps``: send each ``Call``, hand its result (or error) back."""
        raise NotImplementedError

    @property
    def account(self) -> bytes:
        """This client's account id."""
        return self._key().account_id

    def _key(self) -> SigningKey:
        if self.key is None:
            msg = "this client has no signing key: pass key= or key_path="
            raise LocalError(msg)
        return self.key

    # -- nonces and submission -------------------------------------------------------------------

    def _chain(self) -> Steps[str]:
        if self.chain_id is None:
            status = yield Call("status", {})
            self.chain_id = self.chain_id or str(status["chain_id"])
        return self.chain_id

    def _take_nonce(self) -> Steps[int]:
        """The next nonce, reserved: concurrent submits get distinct, increasing nonces.

        The reservation and the submit that uses it happen in one step (no
        wait between them), so one connection sends them in nonce order.
        """
        if self._next_nonce is None:
            fetched = yield Call("nonce", {"sender": self._key().public_key_bytes()})
            # another submit may have fetched (and reserved) meanwhile: keep the higher
            self._next_nonce = max(int(fetched["next"]), self._next_nonce or 0)
        nonce = self._next_nonce
        self._next_nonce = nonce + 1
        return nonce

    def _submit(
        self, make: Callable[[int], txn.Payload], nonce: int | None = None
    ) -> Steps[Submitted]:
        chain_id = yield from self._chain()
        for attempt in range(2):
            use = (yield from self._take_nonce()) if nonce is None else nonce
            payload = make(use)
            data = txn.make(self._key(), chain_id, use, payload).to_bytes()
            try:
                result = yield Call("submit", {"tx": data})
            except RequestFailed as exc:
                if nonce is None and self._next_nonce == use + 1:
                    self._next_nonce = use  # refused: not used, and nothing reserved after it
                if exc.code == E_BAD_NONCE and attempt == 0 and nonce is None:
                    self._next_nonce = None  # someone else used it: ask the node again
                    continue
                raise
            coid = getattr(payload, "client_order_id", None)
            return Submitted(result["tx_id"], use, result.get("order_id"), coid, result["events"])
        msg = "unreachable"
        raise AssertionError(msg)  # pragma: no cover

    # -- writes ----------------------------------------------------------------------------------

    @_method
    def call(self, command: str, args: dict[str, Any] | None = None) -> Steps[Result]:
        """Send any protocol command (see docs/protocol.md)."""
        return (yield Call(command, args or {}))

    @_method
    def submit(self, payload: txn.Payload, nonce: int | None = None) -> Steps[Submitted]:
        """Sign ``payload`` with the next nonce (or ``nonce``), submit it, return once accepted.

        Raises:
            RequestFailed: the node refused it (code ``bad_nonce``, ``not_permitted``, ...).
        """
        return (yield from self._submit(lambda _: payload, nonce))

    @_method
    def register(self, name: str, *, bus: str, role: str) -> Steps[Submitted]:
        """Register this key's account as a peer at ``bus`` with ``role``."""
        return (yield from self._submit(lambda _: txn.RegisterPeer(name, bus, role)))

    # -- the operator's writes (signed with the operator's key) ---------------------------------

    @_method
    def set_network(self, network_json: str) -> Steps[Submitted]:
        """Operator: publish the feeder (``SetNetwork``; see ``market.gate_clearing``)."""
        return (yield from self._submit(lambda _: txn.SetNetwork(network_json)))

    @_method
    def set_tariff(self, alpha_milli: int, beta_milli: int) -> Steps[Submitted]:
        """Operator: set the loss and congestion penalties in thousandths (``SetTariff``)."""
        return (yield from self._submit(lambda _: txn.SetTariff(alpha_milli, beta_milli)))

    @_method
    def close_slot(self, product: str, slot: int) -> Steps[Submitted]:
        """Operator: close the gate of (product, slot) (``CloseSlot``); the clearing follows."""
        return (yield from self._submit(lambda _: txn.CloseSlot(product, slot)))

    @_method
    def deposit(self, account: bytes, amount: int) -> Steps[Submitted]:
        """Operator: credit ``account`` with ``amount`` tick*Wh (``Deposit``)."""
        return (yield from self._submit(lambda _: txn.Deposit(account, amount)))

    @_method
    def withdraw(self, account: bytes, amount: int) -> Steps[Submitted]:
        """Operator: debit ``account`` by ``amount`` tick*Wh (``Withdraw``)."""
        return (yield from self._submit(lambda _: txn.Withdraw(account, amount)))

    @_method
    def register_meter(self, account: bytes, meter_key: bytes) -> Steps[Submitted]:
        """Operator: bind a meter's public key to ``account`` (``RegisterMeter``)."""
        return (yield from self._submit(lambda _: txn.RegisterMeter(account, meter_key)))

    @_method
    def settle_slot(self, product: str, slot: int) -> Steps[Submitted]:
        """Operator: settle a delivered slot (``SettleSlot``; see docs/settlement.md)."""
        return (yield from self._submit(lambda _: txn.SettleSlot(product, slot)))

    @_method
    def clearing(self, product: str, slot: int) -> Steps[Result | None]:
        """The published clearing of (product, slot), or None if there is none yet.

        Returns ``height``, ``tx_id``, ``settlements`` (maps ``account``,
        ``energy_wh``, ``payment``) and the ``certificate`` bytes
        (``clearing.certificate_from_plain`` of their msgpack decodes it).
        """
        reply = yield Call("clearing", {"product": product, "slot": slot})
        found = reply["clearing"]
        return None if found is None else dict(found)

    # -- a meter's write -----------------------------------------------------------------------

    @_method
    def read_meter(self, product: str, slot: int, energy_wh: int) -> Steps[Submitted]:
        """A meter's signed reading of a delivered slot, Wh (delivered > 0, consumed < 0)."""
        return (yield from self._submit(lambda _: txn.MeterReading(product, slot, energy_wh)))

    # -- money reads ---------------------------------------------------------------------------

    @_method
    def balance(self, account: bytes | str | None = None) -> Steps[Result]:
        """An account's balance (default: this client's; or ``grid``, ``dso``, ``treasury``)."""
        return (yield Call("balance", {"account": account or self.account}))

    @_method
    def statements(self, account: bytes | None = None, limit: int = 1000) -> Steps[list[Result]]:
        """An account's newest settlement statements, in chain order (default: this client's)."""
        reply = yield Call("statements", {"account": account or self.account, "limit": limit})
        return list(reply["statements"])

    @_method
    def place_order(
        self,
        /,
        product: str,
        slot: int,
        side: str,
        price: int,
        quantity: int,
        *,
        client_order_id: int | None = None,
        **options: Any,
    ) -> Steps[Submitted]:
        """Place an order (price 0: market order; options: tif, expires_at, post_only, stp).

        ``client_order_id`` defaults to the order's nonce.
        """

        def order(nonce: int) -> txn.Payload:
            coid = nonce if client_order_id is None else client_order_id
            return _order(product, slot, side, price, quantity, client_order_id=coid, **options)

        return (yield from self._submit(order))

    @_method
    def cancel_order(self, client_order_id: int) -> Steps[Submitted]:
        """Cancel one of this account's resting orders."""
        return (yield from self._submit(lambda _: txn.CancelOrder(client_order_id)))

    @_method
    def amend_order(
        self, client_order_id: int, *, price: int = 0, quantity: int = 0
    ) -> Steps[Submitted]:
        """Change an order's price and / or quantity (0: unchanged)."""
        return (yield from self._submit(lambda _: txn.AmendOrder(client_order_id, price, quantity)))

    @_method
    def declare_curve(
        self, product: str, slot: int, a: int, b: int, c: int, q_min: int, q_max: int
    ) -> Steps[Submitted]:
        """Declare this peer's cost curve for the clearing of (product, slot)."""
        curve = txn.DeclareCurve(product, slot, a, b, c, q_min, q_max)
        return (yield from self._submit(lambda _: curve))

    @_method
    def wait_committed(self, tx_id: bytes, timeout: float = 30.0) -> Steps[int]:
        """Wait until the transaction's block is durably stored; return its height."""
        args = {"tx_id": tx_id, "timeout_ms": int(timeout * 1000)}
        return int((yield Call("wait_committed", args, timeout + 5))["height"])

    # -- reads -----------------------------------------------------------------------------------

    @_method
    def status(self) -> Steps[Result]:
        """Role, chain id, height, head hash, state digest of the node."""
        return (yield Call("status", {}))

    @_method
    def book(self, product: str, slot: int, levels: int = 10) -> Steps[Result]:
        """L2 depth: ``{"bids": [[price, Wh], ...], "asks": [...], "closed": bool}``."""
        return (yield Call("book", {"product": product, "slot": slot, "levels": levels}))

    @_method
    def trades(
        self,
        account: bytes | None = None,
        *,
        mine: bool = False,
        limit: int | None = None,
        start: int | None = None,
    ) -> Steps[list[Result]]:
        """The newest trades of ``account`` (``mine``: this client's), or of everyone.

        ``limit``: how many (the node's default: 1,000). ``start``: instead,
        every account's trades from that height on, in whole blocks, until
        at least ``limit`` (page on from the last one's height + 1).
        """
        if mine:
            account = self.account
        return list((yield Call("trades", _trades_args(account, limit, start)))["trades"])

    @_method
    def settlements(
        self, account: bytes | None = None, limit: int | None = None
    ) -> Steps[list[Result]]:
        """The newest clearing settlements of ``account`` (default: this client's)."""
        args = _settlements_args(account or self.account, limit)
        return list((yield Call("settlements", args))["settlements"])

    @_method
    def blocks(self, start: int = 0, limit: int = 64) -> Steps[list[bytes]]:
        """Stored blocks' bytes from height ``start``."""
        return list((yield Call("blocks", {"from": start, "limit": limit}))["blocks"])

    @_method
    def transaction(self, tx_id: bytes) -> Steps[Result]:
        """Where a stored transaction is: ``height``, ``index`` and its bytes ``tx``."""
        return (yield Call("tx", {"tx_id": tx_id}))

    @_method
    def peers(self) -> Steps[list[Result]]:
        """Registered peers: ``account``, ``name``, ``bus``, ``role``."""
        return list((yield Call("peers", {}))["peers"])

    @_method
    def wait_height(self, height: int, timeout: float = 30.0) -> Steps[int]:
        """Wait until this node stores the block at ``height``."""
        args = {"height": height, "timeout_ms": int(timeout * 1000)}
        return int((yield Call("wait_height", args, timeout + 5))["height"])

    @_method
    def subscribe(self, *topics: str) -> Steps[None]:
        """Have the node push ``"blocks"`` and / or ``"trades"`` events."""
        yield Call("subscribe", {"topics": list(topics)})


class Client(BaseClient):
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

    def _drive(self, steps: Steps[T]) -> T:
        """Wait for each result on the socket."""
        result: Result | None = None
        error: RequestFailed | None = None
        while True:
            try:
                call = steps.send(result) if error is None else steps.throw(error)  # type: ignore[arg-type]
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]
            try:
                result, error = self.rpc.call(call.command, call.args, timeout=call.timeout), None
            except RequestFailed as exc:
                result, error = None, exc

    def close(self) -> None:
        """Close the connection."""
        self.rpc.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def events(self, timeout: float | None = None) -> Iterator[Event]:
        """Yield pushed events as they arrive (after ``subscribe``)."""
        while True:
            yield self.rpc.next_event(timeout)


class AsyncClient(BaseClient):
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

    async def _drive(self, steps: Steps[T]) -> T:
        """Await each result; other requests of this client go on meanwhile."""
        result: Result | None = None
        error: RequestFailed | None = None
        while True:
            # Wait for room before the step, not between a step and its send: a
            # nonce reserved in a step goes out with it, in order.
            await self.rpc.wait_writable()
            try:
                call = steps.send(result) if error is None else steps.throw(error)  # type: ignore[arg-type]
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]
            try:
                result = await self.rpc.request(call.command, call.args, timeout=call.timeout)
                error = None
            except RequestFailed as exc:
                result, error = None, exc

    async def close(self) -> None:
        """Close the connection."""
        await self.rpc.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def next_event(self, timeout: float | None = None) -> Event:
        """The next pushed event."""
        return await self.rpc.next_event(timeout)


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
