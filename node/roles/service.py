"""What every node serves, whatever its role: reads, subscriptions, status.

``NodeService`` owns the block store, the state machine (rebuilt from the
store at start-up) and the request server. ``Operator`` and ``Replica`` add
the write path (sequencing or forwarding) and the block source.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from ledger.audit import prove_result
from ledger.errors import StoreCorrupted, TransactionNotFound
from ledger.integrity import prove_stored_transaction
from ledger.results import GridTradeRecord, ResultRecord, StatementRecord, peek_result_kind
from ledger.types import RecordKind
from market import replay
from market import transactions as txn
from market.accounts import SYSTEM_ACCOUNTS
from market.state import ExchangeState
from node.clock import Clock
from node.config import NodeConfig
from node.errors import ConfigError, RequestFailed
from node.pipeline import chain
from node.roles.waiters import HeightWaiters
from node.wire.protocol import (
    E_BAD_ARGUMENTS,
    E_INTERNAL,
    E_NOT_FOUND,
    E_TIMEOUT,
    CanonicalMap,
    Value,
)
from node.wire.server import Args, Handler, Pipeline, Result, RpcServer, Session
from orderbook.types import Instrument, Product

DEFAULT_READ_LIMIT = 1000  # records per `trades` / `settlements` reply unless asked otherwise
# At most this many per reply: well inside the default frame limit, and one
# reply's encoding stays short on the event loop (docs/performance.md).
MAX_READ_LIMIT = 10_000
READ_PAGE = 50  # records decoded between two turns of the event loop
R = TypeVar("R")

if TYPE_CHECKING:
    from ledger.block import Block
    from ledger.store import BlockStore, Located, Position

log = logging.getLogger("p2pex.node")

MAX_BLOCKS_PER_REPLY = 512
TOPICS = ("blocks", "trades")


def arg_int(args: Args, name: str, default: int | None = None) -> int:
    """Return an int argument, or raise a ``bad_arguments`` error reply."""
    value = args.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise RequestFailed(E_BAD_ARGUMENTS, f"{name} must be an integer")
    return value


async def newest_in_pages(
    read: Callable[[int, Position | None], list[Located[R]]], limit: int
) -> list[Located[R]]:
    """The newest ``limit`` records ``read(count, before)`` gives, in chain order.

    Read newest first in pages of ``READ_PAGE``, each before the last, with
    the event loop handed back between pages: a page is a few milliseconds
    of decoding, a whole history could be seconds.
    """
    pages: list[list[Located[R]]] = []
    found = 0
    before: Position | None = None
    while found < limit:
        want = min(READ_PAGE, limit - found)
        page = read(want, before)
        pages.append(page)
        found += len(page)
        if len(page) < want:
            break
        before = (page[0].height, page[0].index)
        await asyncio.sleep(0)
    return [item for page in reversed(pages) for item in page]


def arg_limit(args: Args) -> int:
    """Return the ``limit`` argument (default ``DEFAULT_READ_LIMIT``), 1 to ``MAX_READ_LIMIT``."""
    limit = arg_int(args, "limit", DEFAULT_READ_LIMIT)
    if not 1 <= limit <= MAX_READ_LIMIT:
        msg = f"limit must be 1 to {MAX_READ_LIMIT} (read more in pages)"
        raise RequestFailed(E_BAD_ARGUMENTS, msg)
    return limit


def arg_bytes(args: Args, name: str, size: int | None = None) -> bytes:
    """Return a bytes argument (of ``size`` bytes if given), or raise ``bad_arguments``."""
    value = args.get(name)
    if not isinstance(value, bytes) or (size is not None and len(value) != size):
        want = "bytes" if size is None else f"{size} bytes"
        raise RequestFailed(E_BAD_ARGUMENTS, f"{name} must be {want}")
    return value


TRADE_KINDS = (RecordKind.TRADE, RecordKind.GRID_TRADE)


def trade_to_wire(record: txn.TradeRecord | GridTradeRecord, height: int) -> CanonicalMap:
    """A trade record as a protocol map (keys sorted: sent without a check).

    A trade of a slot run in a grid mode also carries each side's charge
    (ticks per kWh) and the line that cut it (-1: none).
    """
    fields: dict[str, Value] = {
        "height": height,
        "maker_account": record.maker_account,
        "maker_order": record.maker_order,
        "price": record.price,
        "product": record.product,
        "quantity": record.quantity,
        "slot": record.slot,
        "taker_account": record.taker_account,
        "taker_order": record.taker_order,
        "tx_id": record.tx_id,
    }
    if isinstance(record, GridTradeRecord):
        fields["buyer_charge"] = record.buyer_charge
        fields["line"] = record.line
        fields["seller_charge"] = record.seller_charge
        return CanonicalMap(sorted(fields.items()))
    return CanonicalMap(fields)


class NodeService:
    """The parts shared by operator and replica nodes."""

    role = "node"

    def __init__(
        self,
        config: NodeConfig,
        operator_public_key: bytes,
        clock: Clock,
        store: BlockStore | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.operator_public_key = operator_public_key
        self.store = store if store is not None else chain.open_store(Path(config.data_dir))
        self.check_store_matches_config()
        self.state = replay.replay_store(self.store, self.new_state)
        self.server = RpcServer(
            self.handlers(),
            concurrent=frozenset({"wait_committed", "wait_height"}),
            pipelined=self.pipelines(),
            max_frame=config.max_frame,
            idle_timeout=config.idle_timeout_s,
        )
        self.height_waiters = HeightWaiters()  # of ``wait_height``; no lock (see its module)
        self.refused: list[dict[str, Value]] = []  # blocks refused by a replica (reported)
        self.port = 0
        self.fatal = asyncio.Event()  # set when a background loop died: the process must exit

    def watch(self, task: asyncio.Task[None]) -> asyncio.Task[None]:
        """Make the death of a background loop fatal (logged, then the runner exits).

        A loop that dies has left the state machine and the store in an unknown
        relation (e.g. a failed block append); only a restart, which replays
        the store, makes them agree again.
        """

        def done(finished: asyncio.Task[None]) -> None:
            if finished.cancelled():
                return
            error = finished.exception()
            if error is not None:
                log.critical("background loop failed: %r", error, exc_info=error)
                self.fatal.set()

        task.add_done_callback(done)
        return task

    def check_store_matches_config(self) -> None:
        """Refuse to start on a chain of another chain id or another operator.

        Raises:
            ConfigError: the stored genesis block names another chain or proposer.
        """
        # the data directory pins the operator's key at creation (node.pipeline.chain)
        try:
            chain.pin_operator_key(Path(self.config.data_dir), self.operator_public_key)
        except ConfigError:
            self.store.close()
            raise
        if self.store.height == 0:
            return
        genesis = self.store.block_at(0).header
        if genesis.chain_id != self.config.chain_id:
            self.store.close()
            msg = (
                f"{self.config.data_dir} holds chain {genesis.chain_id!r}, "
                f"configured {self.config.chain_id!r}"
            )
            raise ConfigError(msg)
        if genesis.proposer != self.operator_public_key:
            self.store.close()
            msg = (
                f"{self.config.data_dir} holds a chain of operator {genesis.proposer.hex()}, "
                f"not of the configured key {self.operator_public_key.hex()}"
            )
            raise ConfigError(msg)

    def new_state(self) -> ExchangeState:
        """A fresh state machine for this chain."""
        return ExchangeState(self.config.chain_id, self.operator_public_key)

    def handlers(self) -> dict[str, Handler]:
        """The request handlers by command name."""
        return {
            "ping": self.h_ping,
            "status": self.h_status,
            "nonce": self.h_nonce,
            "blocks": self.h_blocks,
            "tx": self.h_tx,
            "book": self.h_book,
            "trades": self.h_trades,
            "settlements": self.h_settlements,
            "peers": self.h_peers,
            "subscribe": self.h_subscribe,
            "prove": self.h_prove,
            "wait_height": self.h_wait_height,
            "balance": self.h_balance,
            "statements": self.h_statements,
            "clearing": self.h_clearing,
        }

    def pipelines(self) -> dict[str, Pipeline]:
        """The pipelined commands (see ``node.wire.server``): none here."""
        return {}

    async def start(self, host: str, port: int) -> int:
        """Listen for clients; return the actual port."""
        self.port = await self.server.start_tcp(host, port)
        return self.port

    async def close(self) -> None:
        """Stop serving and close the store."""
        await self.server.close()
        self.store.close()

    # -- block arrival ---------------------------------------------------------------------------

    async def on_block_stored(self, block: Block, data: bytes) -> None:
        """Tell waiters and subscribers that ``block`` is now stored."""
        header = block.header
        self.height_waiters.reached(header.height + 1)
        self.server.broadcast(
            "blocks", {"height": header.height, "hash": header.hash, "block": data}
        )
        if not self.server.has_subscribers("trades"):
            return  # decoding every result of a busy block costs more than the broadcast
        for result in block.results:
            record = txn.decode_result(result)
            if isinstance(record, txn.TradeRecord | GridTradeRecord):
                self.server.broadcast("trades", trade_to_wire(record, header.height))

    # -- handlers --------------------------------------------------------------------------------

    async def h_ping(self, session: Session, args: Args) -> Result:
        """``ping``: liveness."""
        return {}

    async def h_status(self, session: Session, args: Args) -> Result:
        """``status``: role, chain, head, digest, refused blocks."""
        head = chain.head_header(self.store)
        return {
            "role": self.role,
            "chain_id": self.config.chain_id,
            "height": self.store.height,
            "head": b"" if head is None else head.hash,
            "state_digest": self.state.state_digest() if head is None else head.state_digest,
            "operator": self.operator_public_key,
            "refused": self.refused[-20:],
            "opened": [[p, s] for p, s in sorted(self.state.opened)],
            "closed": [[p, s] for p, s in sorted(self.stored_closed())],
            "cleared": [[p, s] for p, s in sorted(self.stored_cleared())],
        }

    def stored_closed(self) -> set[tuple[str, int]]:
        """The (product, slot)s closed by stored blocks (a replica's state is its stored chain)."""
        return self.state.closed

    def stored_cleared(self) -> set[tuple[str, int]]:
        """The (product, slot)s whose clearing is in a stored block."""
        return set(self.state.clearings)

    async def h_nonce(self, session: Session, args: Args) -> Result:
        """``nonce``: the next nonce a sender may use, as this node knows it."""
        return {"next": self.state.next_nonce(arg_bytes(args, "sender", 32))}

    async def h_blocks(self, session: Session, args: Args) -> Result:
        """``blocks``: stored blocks from a height, as many as fit in one frame."""
        start = max(0, arg_int(args, "from", 0))
        limit = min(max(1, arg_int(args, "limit", 64)), MAX_BLOCKS_PER_REPLY)
        budget = self.config.max_frame // 2
        blocks: list[Value] = []
        height = self.store.height
        for h in range(start, min(height, start + limit)):
            data = self.store.block_bytes(h)
            if blocks and budget - len(data) < 0:
                break
            budget -= len(data)
            blocks.append(data)
        return {"blocks": blocks, "height": height}

    async def h_tx(self, session: Session, args: Args) -> Result:
        """``tx``: where a transaction is stored."""
        tx_id = arg_bytes(args, "tx_id", 32)
        found = self.store.transaction(tx_id)
        if found is None:
            raise RequestFailed(E_NOT_FOUND, f"transaction {tx_id.hex()} is not stored")
        return {"height": found.height, "index": found.index, "tx": found.record.to_bytes()}

    async def h_prove(self, session: Session, args: Args) -> Result:
        """``prove``: a Merkle inclusion proof, with its block header and leaf.

        Of a stored transaction (``tx_id``), or of result ``index`` of the
        block at ``height`` (a trade, rejection, settlement...).
        """
        if "tx_id" in args:
            tx_id = arg_bytes(args, "tx_id", 32)
            try:  # the leaf must hash to the id asked for: never trust the index alone
                proven = prove_stored_transaction(self.store, tx_id)
            except TransactionNotFound as exc:
                raise RequestFailed(
                    E_NOT_FOUND, f"transaction {tx_id.hex()} is not stored"
                ) from exc
            except StoreCorrupted as exc:
                raise RequestFailed(E_INTERNAL, f"the node's store is corrupt: {exc}") from exc
            proof, leaf = proven.proof, proven.leaf
        else:
            height, index = arg_int(args, "height"), arg_int(args, "index")
            if not 0 <= height < self.store.height:
                raise RequestFailed(E_NOT_FOUND, f"no block at height {height}")
            results = self.store.block_at(height).results
            if not 0 <= index < len(results):
                raise RequestFailed(E_NOT_FOUND, f"block {height} has no result {index}")
            proof = prove_result(self.store, height, index)
            leaf = results[index]
        header = self.store.block_at(proof.height).header
        return {"proof": proof.to_bytes(), "header": header.to_bytes(), "leaf": leaf}

    async def h_book(self, session: Session, args: Args) -> Result:
        """``book``: L2 depth of one (product, slot) book."""
        try:
            product = Product(args.get("product", "electricity"))
        except ValueError as exc:
            raise RequestFailed(E_BAD_ARGUMENTS, "unknown product") from exc
        instrument = Instrument(product, arg_int(args, "slot"))
        levels = arg_int(args, "levels", 10)
        if (product.value, instrument.slot) not in self.state.opened:
            return {"bids": [], "asks": [], "closed": False}
        depth = self.state.market.depth(instrument, levels)
        return {
            "bids": [[level.price, level.quantity] for level in depth.bids],
            "asks": [[level.price, level.quantity] for level in depth.asks],
            "closed": (product.value, instrument.slot) in self.state.closed,
        }

    async def h_trades(self, session: Session, args: Args) -> Result:
        """``trades``: the newest ``limit`` trades (of an ``account``), or those from a height.

        From a height (``from``): the trades of whole blocks, from there on,
        until at least ``limit`` (the next page starts at the last one's
        height + 1). Without ``account`` or ``from``: the newest ``limit``.

        Reads run on the event loop that also sequences, and matching must not
        wait long for one: an account's trades are read newest first, only
        ``limit`` of them, in pages; a scan by blocks hands the loop back
        after every block (one long read held every client up before:
        ``bench_reads``).
        """
        limit = arg_limit(args)
        out: list[Value] = []
        if "account" in args:
            account = arg_bytes(args, "account", 32)
            rows: list[Located[ResultRecord]] = []
            for kind in TRADE_KINDS:  # plain and grid-mode trades, each read newest first
                rows += await newest_in_pages(self._account_reader(account, kind), limit)
            rows.sort(key=lambda row: (row.height, row.index))
            out.extend(
                trade_to_wire(row.record, row.height)
                for row in rows[-limit:]
                if isinstance(row.record, txn.TradeRecord | GridTradeRecord)
            )
        elif "from" in args:
            for h in range(max(0, arg_int(args, "from")), self.store.height):
                out.extend(await self._block_trades(h))
                if len(out) >= limit:
                    break
        else:
            newest_first: list[list[Value]] = []
            found = 0
            for h in range(self.store.height - 1, -1, -1):
                trades = await self._block_trades(h)
                newest_first.append(trades)
                found += len(trades)
                if found >= limit:
                    break
            for trades in reversed(newest_first):
                out.extend(trades)
            out = out[-limit:]
        return {"trades": out}

    def _account_reader(
        self, account: bytes, kind: RecordKind
    ) -> Callable[[int, Position | None], list[Located[ResultRecord]]]:
        """``read(count, before)`` of an account's results of one kind (``newest_in_pages``)."""

        def read(count: int, before: Position | None) -> list[Located[ResultRecord]]:
            return self.store.results_by_account(account, kind, count, before)

        return read

    async def _block_trades(self, height: int) -> list[Value]:
        """The trades of the stored block at ``height``, as wire maps.

        Only the results whose first bytes say "trade" are decoded (and
        checked), ``READ_PAGE`` at a time, with the loop handed back after
        each page and after the block.
        """
        out: list[Value] = []
        results = [
            data
            for data in self.store.block_at(height).results
            if peek_result_kind(data) in (*TRADE_KINDS, None)  # None: let decoding say why
        ]
        for start in range(0, len(results), READ_PAGE):
            for data in results[start : start + READ_PAGE]:
                record = txn.decode_result(data)
                if isinstance(record, txn.TradeRecord | GridTradeRecord):
                    out.append(trade_to_wire(record, height))
            await asyncio.sleep(0)  # let the other clients' work run between pages
        if not results:
            await asyncio.sleep(0)
        return out

    async def h_settlements(self, session: Session, args: Args) -> Result:
        """``settlements``: the newest ``limit`` clearing settlements of an account."""
        limit = arg_limit(args)
        account = arg_bytes(args, "account", 32)
        rows = await newest_in_pages(
            lambda count, before: self.store.settlements_by_account(account, count, before), limit
        )
        return {
            "settlements": [
                {
                    "height": row.height,
                    "product": row.record.product,
                    "slot": row.record.slot,
                    "energy_wh": row.record.energy_wh,
                    "payment": row.record.payment,
                }
                for row in rows
            ]
        }

    async def h_balance(self, session: Session, args: Args) -> Result:
        """``balance``: an account's balance (tick·Wh) and the community's totals.

        ``account`` is a 32-byte account id or a system account's name
        (``grid``, ``dso``, ``treasury``). ``total`` is the sum of all balances
        and ``deposited`` all deposits minus withdrawals: they are equal
        whenever the books are conserved.
        """
        books = self.state.accounts
        name = args.get("account")
        if isinstance(name, str):
            if name not in SYSTEM_ACCOUNTS:
                msg = f"account must be 32 bytes or one of {sorted(SYSTEM_ACCOUNTS)}"
                raise RequestFailed(E_BAD_ARGUMENTS, msg)
            account = SYSTEM_ACCOUNTS[name]
        else:
            account = arg_bytes(args, "account", 32)
        return {
            "account": account,
            "balance": books.balances.get(account, 0),
            "deposited": books.deposited,
            "total": sum(books.balances.values()),
        }

    async def h_clearing(self, session: Session, args: Args) -> Result:
        """``clearing``: the published clearing of (``product``, ``slot``), if stored.

        Replies ``{"clearing": None}`` while the slot has none, else its
        ``height``, ``tx_id``, ``settlements`` (maps ``account``,
        ``energy_wh``, ``payment``) and the ``certificate`` bytes, read from
        the stored ``PublishClearing`` (found through the state's index).
        """
        try:
            product = Product(args.get("product", "electricity"))
        except ValueError as exc:
            raise RequestFailed(E_BAD_ARGUMENTS, "unknown product") from exc
        slot = arg_int(args, "slot")
        tx_id = self.state.clearing_tx.get((product.value, slot))
        found = None if tx_id is None else self.store.transaction(tx_id)
        if found is None:
            return {"clearing": None}
        payload = found.record.transaction.payload
        assert isinstance(payload, txn.PublishClearing)  # the index holds only these
        rows = [
            {"account": account, "energy_wh": energy, "payment": payment}
            for account, energy, payment in payload.settlements
        ]
        return {
            "clearing": {
                "height": found.height,
                "tx_id": tx_id,
                "product": product.value,
                "slot": slot,
                "settlements": rows,
                "certificate": payload.certificate,
            }
        }

    async def h_statements(self, session: Session, args: Args) -> Result:
        """``statements``: an account's newest ``limit`` settlement statements, in chain order."""
        limit = arg_limit(args)
        account = arg_bytes(args, "account", 32)
        rows = await newest_in_pages(
            lambda count, before: self.store.results_by_account(
                account, RecordKind.STATEMENT, count, before
            ),
            limit,
        )
        return {
            "statements": [
                {
                    "height": row.height,
                    "index": row.index,
                    "product": row.record.product,
                    "slot": row.record.slot,
                    "contracted_wh": row.record.contracted_wh,
                    "metered_wh": row.record.metered_wh,
                    "imbalance_wh": row.record.imbalance_wh,
                    "charges": row.record.charges,
                    "payment": row.record.payment,
                    "balance_after": row.record.balance_after,
                }
                for row in rows
                if isinstance(row.record, StatementRecord)
            ]
        }

    async def h_peers(self, session: Session, args: Args) -> Result:
        """``peers``: registered peers."""
        return {
            "peers": [
                {"account": acct, "name": p.name, "bus": p.bus, "role": p.role}
                for acct, p in sorted(self.state.peers.items())
            ]
        }

    async def h_subscribe(self, session: Session, args: Args) -> Result:
        """``subscribe``: push events of the given topics to this connection."""
        topics = args.get("topics")
        if not isinstance(topics, list) or not all(t in TOPICS for t in topics):
            raise RequestFailed(E_BAD_ARGUMENTS, f"topics must be a list drawn from {TOPICS}")
        for topic in topics:
            session.subscriptions.setdefault(topic, len(session.subscriptions) + 1)
        return {"subscriptions": dict(session.subscriptions), "height": self.store.height}

    async def h_wait_height(self, session: Session, args: Args) -> Result:
        """``wait_height``: reply once this node stores the block at ``height``."""
        height = arg_int(args, "height")
        timeout = arg_int(args, "timeout_ms", 30_000) / 1000
        if self.store.height <= height:
            try:
                await self.height_waiters.wait(height, timeout)
            except TimeoutError as exc:
                raise RequestFailed(E_TIMEOUT, f"height {height} not reached") from exc
        return {"height": self.store.height}
