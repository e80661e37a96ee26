"""The market state machine: (state, transaction) -> (state, results).

``ExchangeState.apply`` takes one signed ledger transaction and either

- refuses it (raises an ``InvalidTransaction``: bad signature, other chain,
  replayed nonce, operator-only kind from another key, unregistered sender)
  and changes nothing: such a transaction never enters a block; or
- applies it and returns its ``Outcome``: the canonical result records that
  go into the block (trades, rejections, settlements) and the order book
  events for the submitting client. A market-level refusal (a consumer
  selling, a post-only order that would take, a closed slot) is a
  ``RejectionRecord``: the transaction is in the block and its nonce is used.

Time is data: ``begin_block(time_ns)`` advances the market clock to the block
header's time before the block's transactions are applied, so a replica that
replays the block gets exactly the same results. Nothing here reads a clock,
the network or randomness.

Order ids: the client names its orders with ``client_order_id`` (unique per
account, forever); the state maps (account, client_order_id) to a
market-wide order id from a counter in the state.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ledger.codec import encode_trusted
from ledger.fields import fields_to_values
from ledger.keys import account_id
from market import gate_plan, modes
from market import transactions as txn
from market.accounts import GRID, Accounts, SlotTerms
from market.errors import BadNonce, InvalidTransaction, NotPermitted
from market.slot_preferences import SlotPreferences
from orderbook.commands import AdvanceClock, CloseInstrument, OpenInstrument
from orderbook.events import (
    Event,
    Expired,
    GridTrade,
    Rejected,
    Trade,
    TradeDecided,
    TradePending,
)
from orderbook.grid import GridMode, Preferences
from orderbook.market import Market
from orderbook.types import Instrument, MarketConfig, Product, Side, STPMode, TimeInForce

STATE_TAG = b"p2pex/state/v2\x00"  # v2: the order book digest is hashed per price level
ORDER_IDS_TAG = b"p2pex/order-ids/v1\x00"
NO_TX = bytes(32)  # tx id of results no transaction caused (GTD expiry at a block's start)
ROLES = ("producer", "consumer", "prosumer", "grid")
MAX_NAME = 64
_PRODUCTS = {p.value: p for p in Product}
_SIDES = {s.value: s for s in Side}
_TIFS = {t.value: t for t in TimeInForce}
_STPS = {m.value: m for m in STPMode}


@dataclass(frozen=True, slots=True)
class Peer:
    """A registered peer."""

    public_key: bytes
    name: str
    bus: str
    role: str

    def may_sell(self) -> bool:
        """Producers, prosumers and the grid may sell."""
        return self.role != "consumer"

    def may_buy(self) -> bool:
        """Consumers, prosumers and the grid may buy."""
        return self.role != "producer"


@dataclass(slots=True)
class Outcome:
    """What applying one transaction produced."""

    tx_id: bytes
    results: list[bytes] = field(default_factory=list)  # canonical result records, in order
    events: list[Event] = field(default_factory=list)  # order book events, for the client
    order_id: int | None = None  # market-wide id of a placed order
    rejected: str | None = None  # the rejection reason: in the block, but it changed nothing


class HeldTrade(NamedTuple):
    """A grid-mode trade as the slot's books hold it (see ``Accounts.record_trade``)."""

    seller: bytes
    buyer: bytes
    price: int  # ticks per kWh
    quantity: int  # Wh
    seller_charge: int  # ticks per kWh
    buyer_charge: int  # ticks per kWh


class ExchangeState:
    """Everything the results of future transactions depend on.

    Requires: ``operator`` is the operator's raw 32-byte Ed25519 public key.
    """

    def __init__(self, chain_id: str, operator: bytes, config: MarketConfig | None = None) -> None:
        self.chain_id = chain_id
        self.operator = operator
        self.market = Market(config or MarketConfig())
        self.time_ns = 0  # market clock: the current block's header time
        self.peers: dict[bytes, Peer] = {}  # account id -> peer
        self.nonces: dict[bytes, int] = {}  # sender public key -> last nonce used
        self.order_ids: dict[tuple[bytes, int], int] = {}  # (account, client id) -> order id
        # The map only grows, in an order every replica repeats, so the digest
        # covers it through a hash chain over its insertions: O(1) per block
        # instead of re-encoding every order ever placed.
        self.order_ids_chain = bytes(32)
        self.next_order_id = 1
        self.opened: set[tuple[str, int]] = set()  # (product, slot) books opened
        self.closed: set[tuple[str, int]] = set()  # gate closed
        # tariff and network at each gate closure: the slot's clearing uses these
        self.gate_terms: dict[tuple[str, int], tuple[tuple[int, int], str]] = {}
        self.curves: dict[tuple[str, int], dict[bytes, tuple[int, int, int, int, int]]] = {}
        self.chp: dict[int, dict[bytes, tuple[int, ...]]] = {}
        self.clearings: dict[tuple[str, int], bytes] = {}  # -> SHA-256 of the certificate
        # -> the PublishClearing's tx id: an index for reads, derived from the
        # chain like everything else (the digest covers ``clearings``)
        self.clearing_tx: dict[tuple[str, int], bytes] = {}
        self.tariff = (0, 0)  # (alpha_milli, beta_milli)
        self.network_json = ""
        self.accounts = Accounts()
        # Grid-aware trading (market.modes): declared technology labels, each
        # grid-mode slot's SetSlotMode, the details of trades waiting for the
        # DSO (mode 4 with approval) and the grid's standing orders per slot.
        self.technologies: dict[bytes, str] = {}
        self.slot_modes: dict[tuple[str, int], txn.SetSlotMode] = {}
        self.pending_trades: dict[tuple[str, int, int], HeldTrade] = {}
        self.grid_orders: dict[tuple[str, int], tuple[int, int]] = {}
        self._last_grid_trade: HeldTrade | None = None
        # what the orders of mode-1 slots accepted, for the reference clearing
        self.preferences = SlotPreferences()
        # Set by the first transaction that touches money (a deposit, a meter,
        # slot terms...): from then on the state digest covers the books. A
        # chain that never used them keeps the digests it always had.
        self.money_on = False

    # -- blocks --------------------------------------------------------------------------------

    def begin_block(self, time_ns: int) -> list[bytes]:
        """Advance the market clock to a block's header time, expiring due GTD orders.

        Returns:
            The result records of the expiries (``EventRecord`` "expired" with
            32 zero bytes as tx id: no transaction caused them); they open the
            block's results.

        Raises:
            InvalidTransaction: the time is earlier than the previous block's.
        """
        if time_ns < self.time_ns:
            msg = f"block time {time_ns} is before the previous block time {self.time_ns}"
            raise InvalidTransaction(msg)
        self.time_ns = time_ns
        events = self.market.execute(AdvanceClock(time_ns))
        return [txn.expired_record(NO_TX, e) for e in events if isinstance(e, Expired)]

    def state_digest(self) -> bytes:
        """Return the 32-byte SHA-256 digest of the whole state (goes in the block header)."""
        record: list[Any] = [
            self.market.state_digest(),
            self.time_ns,
            self.next_order_id,
            [[acct, p.public_key, p.name, p.bus, p.role] for acct, p in sorted(self.peers.items())],
            [[key, n] for key, n in sorted(self.nonces.items())],
            self.order_ids_chain,
            [[p, s] for p, s in sorted(self.opened)],
            [[p, s] for p, s in sorted(self.closed)],
            [[p, s, list(t), n] for (p, s), (t, n) in sorted(self.gate_terms.items())],
            [
                [p, s, [[a, list(c)] for a, c in sorted(curves.items())]]
                for (p, s), curves in sorted(self.curves.items())
            ],
            [
                [s, [[a, list(c)] for a, c in sorted(x.items())]]
                for s, x in sorted(self.chp.items())
            ],
            [[p, s, h] for (p, s), h in sorted(self.clearings.items())],
            list(self.tariff),
            self.network_json,
        ]
        if self.money_on:
            record.append(self.accounts.digest_record())
        if self.slot_modes or self.technologies or self.pending_trades or self.grid_orders:
            # only chains that use grid modes carry this part (old digests stay)
            record.append(
                [
                    [[a, label] for a, label in sorted(self.technologies.items())],
                    [
                        [p, s, fields_to_values(m, m.SPECS)]
                        for (p, s), m in sorted(self.slot_modes.items())
                    ],
                    [[p, s, n, list(v)] for (p, s, n), v in sorted(self.pending_trades.items())],
                    [[p, s, a, b] for (p, s), (a, b) in sorted(self.grid_orders.items())],
                ]
            )
        if self.preferences:  # only chains with mode-1 orders carry this part
            record.append(self.preferences.digest_record())
        # Every value is built here from checked ints, bytes and str: skip the type walk.
        return hashlib.sha256(STATE_TAG + encode_trusted(record)).digest()

    # -- transactions --------------------------------------------------------------------------

    def next_nonce(self, sender: bytes) -> int:
        """Return the smallest nonce ``sender`` may use next."""
        return self.nonces.get(sender, 0) + 1

    def check(self, signed: txn.SignedTransaction, *, verify_signature: bool = True) -> None:
        """Raise ``InvalidTransaction`` if ``signed`` may not enter a block now; changes nothing.

        ``verify_signature=False`` skips the Ed25519 check for callers that
        have just done it (the operator at submission, a replica through
        ``ledger.validate_block``): it is the costliest step.
        """
        tx = signed.transaction
        if tx.chain_id != self.chain_id:
            msg = f"transaction for chain {tx.chain_id!r}, this is {self.chain_id!r}"
            raise InvalidTransaction(msg)
        if verify_signature:
            txn.verify(signed)
        last = self.nonces.get(tx.sender, 0)
        if tx.nonce <= last:
            raise BadNonce(last + 1, tx.nonce)
        payload = tx.payload
        if txn.is_operator_only(payload):
            if tx.sender != self.operator:
                msg = f"{type(payload).__name__} may only be sent by the operator"
                raise NotPermitted(msg)
        elif isinstance(payload, txn.MeterReading):
            if tx.sender not in self.accounts.meters:
                msg = "sender is not a registered meter (the operator sends RegisterMeter)"
                raise NotPermitted(msg)
        elif not isinstance(payload, txn.RegisterPeer) and account_id(tx.sender) not in self.peers:
            msg = "sender is not registered (send RegisterPeer first)"
            raise NotPermitted(msg)

    def apply(self, signed: txn.SignedTransaction, *, verify_signature: bool = True) -> Outcome:
        """Check and apply one transaction (see the module docstring and ``check``).

        Raises:
            InvalidTransaction: the transaction is refused; the state is unchanged.
        """
        self.check(signed, verify_signature=verify_signature)
        return self.apply_checked(signed)

    def apply_checked(self, signed: txn.SignedTransaction) -> Outcome:
        """Apply a transaction that passed ``check`` just now, with no change to the state since.

        The operator checks first so that a refused transaction does not open a block.
        """
        tx = signed.transaction
        self.nonces[tx.sender] = tx.nonce
        out = Outcome(signed.tx_id)
        account = account_id(tx.sender)
        payload = tx.payload
        reason = self._dispatch(out, account, tx.sender, payload)
        if reason is not None:
            out.rejected = reason
            out.results.append(txn.rejection(signed.tx_id, reason))
        return out

    def _dispatch(self, out: Outcome, account: bytes, sender: bytes, payload: object) -> str | None:
        """Apply a payload; return a rejection reason or None."""
        if isinstance(payload, txn.RegisterPeer):
            return self._register(account, sender, payload)
        if isinstance(payload, txn.PlaceOrder):
            return self._place(out, account, payload)
        if isinstance(payload, txn.CancelOrder):
            order_id = self.order_ids.get((account, payload.client_order_id))
            if order_id is None:
                return "unknown_order"
            return self._book(out, self.market.cancel(order_id, account.hex()))
        if isinstance(payload, txn.AmendOrder):
            order_id = self.order_ids.get((account, payload.client_order_id))
            if order_id is None:
                return "unknown_order"
            events = self.market.amend(
                order_id, account.hex(), payload.price or None, payload.quantity or None
            )
            return self._book(out, events)
        if isinstance(payload, txn.DeclareCurve):
            return self._declare_curve(account, payload)
        if isinstance(payload, txn.MeterReading):
            return self._reading(sender, payload)
        if isinstance(payload, txn.PlacePreferredOrder):
            prefs = modes.preferences(payload)
            if prefs is None:
                return "invalid_preferences"
            return self._place(out, account, payload, prefs)
        if isinstance(payload, txn.DeclareTechnology):
            self.technologies[account] = payload.technology
            self._refresh_grids()
            return None
        if isinstance(payload, txn.DeclareChp):
            return self._declare_chp(account, payload)
        return self._operator(out, payload)

    def _register(self, account: bytes, sender: bytes, p: txn.RegisterPeer) -> str | None:
        if account in self.peers:
            return "already_registered"
        if sender in self.accounts.meters:
            return "key_is_a_meter"
        if p.role not in ROLES:
            return "invalid_role"
        if not p.name or len(p.name) > MAX_NAME or not p.bus or len(p.bus) > MAX_NAME:
            return "invalid_name"
        self.peers[account] = Peer(sender, p.name, p.bus, p.role)
        self._refresh_grids()
        return None

    def _place(
        self,
        out: Outcome,
        account: bytes,
        p: txn.PlaceOrder | txn.PlacePreferredOrder,
        prefs: Preferences | None = None,
    ) -> str | None:
        # dict look-ups, not Enum(value) calls: this runs for every order
        product = _PRODUCTS.get(p.product)
        side = _SIDES.get(p.side)
        tif = _TIFS.get(p.tif)
        stp = _STPS.get(p.stp) if p.stp else None
        if product is None or side is None or tif is None or (p.stp and stp is None):
            return "invalid_enum"
        peer = self.peers[account]
        if (side is Side.ASK and not peer.may_sell()) or (side is Side.BID and not peer.may_buy()):
            return "role_not_permitted"
        key = (product.value, p.slot)
        if key in self.closed:
            return "slot_closed"
        if (account, p.client_order_id) in self.order_ids:
            return "duplicate_client_order_id"
        instrument = Instrument(product, p.slot)
        opens = key not in self.opened  # this order is the first to name the slot
        if opens:
            self.market.execute(OpenInstrument(instrument))
            self.opened.add(key)
        order_id = self.next_order_id
        self.next_order_id += 1
        if prefs is None:
            events = self.market.place(
                instrument,
                order_id,
                account.hex(),
                side,
                p.quantity,
                p.price or None,
                tif,
                p.expires_at or None,
                bool(p.post_only),
                stp,
            )
        else:
            events = self.market.place_grid(
                instrument,
                order_id,
                account.hex(),
                side,
                p.quantity,
                p.price or None,
                tif,
                p.expires_at or None,
                bool(p.post_only),
                stp,
                preferences=prefs,
            )
        mark = len(out.results)
        reason = self._book(out, events)
        if reason is not None and opens:
            # a refused order changes nothing: not even which books exist
            self.market.discard_instrument(instrument)
            self.opened.discard(key)
        if reason is None:
            self.order_ids[(account, p.client_order_id)] = order_id
            link = encode_trusted([self.order_ids_chain, account, p.client_order_id, order_id])
            self.order_ids_chain = hashlib.sha256(ORDER_IDS_TAG + link).digest()
            out.order_id = order_id
            out.results.insert(mark, txn.accepted_record(out.tx_id, account, order_id))
            mode = self.slot_modes.get(key)
            if mode is not None and mode.mode == GridMode.PREFERENCES:
                self.preferences.record(key, account, prefs or Preferences())
        return reason

    def _book(self, out: Outcome, events: list[Event]) -> str | None:
        """Take a book command's events; turn its trades into result records."""
        out.events.extend(events)
        for event in events:
            if isinstance(event, Rejected):
                return str(event.reason.value)
            if isinstance(event, GridTrade | TradePending | TradeDecided):
                self._grid_event(out, event)
                continue
            if isinstance(event, Trade):
                out.results.append(txn.trade_record(out.tx_id, event))
                instrument = event.instrument
                if event.taker_side is Side.BID:
                    seller, buyer = event.maker_owner, event.taker_owner
                else:
                    seller, buyer = event.taker_owner, event.maker_owner
                self.accounts.record_trade(
                    (instrument.product.value, instrument.slot),
                    bytes.fromhex(seller),
                    bytes.fromhex(buyer),
                    event.price,
                    event.quantity,
                )
        return None

    def _grid_event(self, out: Outcome, event: GridTrade | TradePending | TradeDecided) -> None:
        """A grid-mode book's trade, a trade held for the DSO, or the DSO's decision."""
        instrument = event.instrument
        key = (instrument.product.value, instrument.slot)
        if isinstance(event, GridTrade):
            if event.taker_side is Side.BID:
                seller, buyer = event.maker_owner, event.taker_owner
            else:
                seller, buyer = event.taker_owner, event.maker_owner
            trade = HeldTrade(
                bytes.fromhex(seller),
                bytes.fromhex(buyer),
                event.price,
                event.quantity,
                event.seller_charge,
                event.buyer_charge,
            )
            self._last_grid_trade = trade
            out.results.append(txn.grid_trade_record(out.tx_id, event))
            self.accounts.record_trade(key, *trade)
        elif isinstance(event, TradePending):
            # the GridTrade just before is the one that waits (orderbook.events)
            assert self._last_grid_trade is not None
            self.pending_trades[(*key, event.trade_no)] = self._last_grid_trade
            out.results.append(txn.decision_record(out.tx_id, "pending", event.trade_no))
        else:
            held = self.pending_trades.pop((*key, event.trade_no), None)
            if held is not None and not event.approved:
                # a refused trade is not a contract: take it back out of the slot's books
                self.accounts.record_trade(key, *held._replace(quantity=-held.quantity))
            out.results.append(txn.decision_record(out.tx_id, event.reason, event.trade_no))

    def _refresh_grids(self) -> None:
        """Give every slot still trading in a grid mode its grid again (a peer joined)."""
        for key, payload in sorted(self.slot_modes.items()):
            if key in self.closed:
                continue
            grid = modes.build_grid(
                payload, {a: p.bus for a, p in self.peers.items()}, self.technologies
            )
            instrument = Instrument(Product(key[0]), key[1])
            self.market.set_mode(instrument, modes.grid_mode(payload), grid)

    def _set_mode(self, out: Outcome, payload: txn.SetSlotMode) -> str | None:
        """The DSO's operation mode for a slot (12.2.2) and its grid data."""
        key = (payload.product, payload.slot)
        if key in self.closed:
            return "slot_closed"
        instrument = Instrument(Product(payload.product), payload.slot)
        grid = None
        if payload.mode != GridMode.BIDS_OFFERS:
            try:
                grid = modes.build_grid(
                    payload, {a: p.bus for a, p in self.peers.items()}, self.technologies
                )
            except modes.InvalidGridData:
                return "invalid_grid"
        if key not in self.opened:
            self.market.execute(OpenInstrument(instrument))
            self.opened.add(key)
        events = self.market.set_mode(instrument, modes.grid_mode(payload), grid)
        out.events.extend(events)
        for event in events:
            if isinstance(event, Rejected):
                return str(event.reason.value)
        if grid is None:
            self.slot_modes.pop(key, None)
        else:
            self.slot_modes[key] = payload
        return None

    def _grid_in_book(self, out: Outcome, key: tuple[str, int], terms: SlotTerms) -> None:
        """The grid's standing orders of a slot: an ask at import, a bid at export price."""
        instrument = Instrument(Product(key[0]), key[1])
        owner = GRID.hex()
        for order_id in self.grid_orders.pop(key, ()):
            out.events.extend(self.market.cancel(order_id, owner))
        if key not in self.opened:
            self.market.execute(OpenInstrument(instrument))
            self.opened.add(key)
        ids = []
        limit = self.market.config.max_quantity
        for side, price in ((Side.ASK, terms.import_price), (Side.BID, terms.export_price)):
            order_id = self.next_order_id
            self.next_order_id += 1
            self._book(out, self.market.place(instrument, order_id, owner, side, limit, price))
            ids.append(order_id)
        self.grid_orders[key] = (ids[0], ids[1])

    def _heat_frozen(self, slot: int) -> bool:
        """A slot's heat data close with its first gate (``market.gate_plan``)."""
        return ("heat", slot) in self.closed or ("electricity", slot) in self.closed

    def _declare_chp(self, account: bytes, p: txn.DeclareChp) -> str | None:
        if self._heat_frozen(p.slot):
            return "slot_closed"
        # a CHP unit produces (chapter 12.24); the main grid is no CHP unit
        if self.peers[account].role not in ("producer", "prosumer"):
            return "role_not_permitted"
        if not gate_plan.valid_chp_points(tuple(p.points)):
            return "invalid_chp"
        self.chp.setdefault(p.slot, {})[account] = tuple(p.points)
        return None

    def _declare_curve(self, account: bytes, p: txn.DeclareCurve) -> str | None:
        if p.product not in (Product.ELECTRICITY.value, Product.HEAT.value):
            return "invalid_enum"
        if (p.product, p.slot) in self.closed:
            return "slot_closed"
        if p.product == Product.HEAT.value and self._heat_frozen(p.slot):
            return "slot_closed"
        peer = self.peers[account]
        if p.q_min > p.q_max:
            return "invalid_curve"
        # Chapter sign convention: producers inject (q >= 0), consumers withdraw (q <= 0).
        if (not peer.may_buy() and p.q_min < 0) or (not peer.may_sell() and p.q_max > 0):
            return "role_not_permitted"
        curve = (p.a, p.b, p.c, p.q_min, p.q_max)
        self.curves.setdefault((p.product, p.slot), {})[account] = curve
        return None

    def _operator(self, out: Outcome, payload: object) -> str | None:
        if isinstance(payload, txn.SetTariff):
            if payload.alpha_milli < 0 or payload.beta_milli < 0:
                return "invalid_tariff"
            self.tariff = (payload.alpha_milli, payload.beta_milli)
            return None
        if isinstance(payload, txn.SetNetwork):
            self.network_json = payload.network_json
            return None
        if isinstance(payload, txn.CloseSlot):
            key = (payload.product, payload.slot)
            if key in self.closed:
                return "slot_closed"
            if payload.product not in (Product.ELECTRICITY.value, Product.HEAT.value):
                return "invalid_enum"
            if key in self.opened:
                events = self.market.execute(
                    CloseInstrument(Instrument(Product(payload.product), payload.slot))
                )
                out.events.extend(events)
                out.results.extend(
                    txn.expired_record(out.tx_id, e) for e in events if isinstance(e, Expired)
                )
                for event in events:
                    if isinstance(event, TradeDecided):  # the deadline refused what waits
                        self._grid_event(out, event)
            self.closed.add(key)
            self.grid_orders.pop(key, None)
            self.gate_terms[key] = (self.tariff, self.network_json)
            # the slot's participants: a curve for the product, or a CHP region (heat
            # data are final once a gate of the slot closes; market.preference_reference)
            taking_part = [*self.curves.get(key, {}), *self.chp.get(payload.slot, {})]
            self.preferences.close(key, self.technologies, taking_part)
            return None
        if isinstance(payload, txn.PublishClearing):
            key = (payload.product, payload.slot)
            if key not in self.closed:
                return "slot_open"
            if key in self.clearings:
                return "already_cleared"
            self.clearings[key] = hashlib.sha256(payload.certificate).digest()
            self.clearing_tx[key] = out.tx_id
            self.accounts.cleared_rows[key] = tuple(payload.settlements)
            for entry in payload.settlements:
                out.results.append(txn.settlement_record(payload.product, payload.slot, entry))
            return None
        return self._money(out, payload)

    # -- money ---------------------------------------------------------------------------------

    def _reading(self, meter: bytes, p: txn.MeterReading) -> str | None:
        """A meter's reading of a delivered slot (see ``market.accounts``)."""
        self.money_on = True
        key = (p.product, p.slot)
        account = self.accounts.meters[meter]
        if key in self.accounts.settled:
            return "slot_settled"  # late: the slot's books are closed
        if key not in self.closed:
            return "slot_open"  # early: delivery is not over before the gate closed
        slot = self.accounts.readings.setdefault(key, {})
        if account in slot:
            return "duplicate_reading"
        role = self.peers[account].role if account in self.peers else "prosumer"
        if (role == "consumer" and p.energy_wh > 0) or (role == "producer" and p.energy_wh < 0):
            return "reading_out_of_range"  # a consumer cannot inject, a producer cannot draw
        slot[account] = p.energy_wh
        return None

    def _money(self, out: Outcome, payload: object) -> str | None:
        """The operator's money transactions."""
        accounts = self.accounts
        if isinstance(payload, txn.Deposit):
            self.money_on = True
            balance = accounts.deposit(payload.account, payload.amount)
            out.results.append(
                txn.money_record(out.tx_id, "deposit", payload.account, payload.amount, balance)
            )
            return None
        if isinstance(payload, txn.Withdraw):
            self.money_on = True
            after = accounts.withdraw(payload.account, payload.amount)
            if after is None:
                return "insufficient_balance"
            out.results.append(
                txn.money_record(out.tx_id, "withdraw", payload.account, payload.amount, after)
            )
            return None
        if isinstance(payload, txn.RegisterMeter):
            self.money_on = True
            if payload.meter_key in accounts.meters:
                return "meter_taken"
            if account_id(payload.meter_key) in self.peers or payload.meter_key == self.operator:
                return "meter_key_is_a_peer"  # a peer's key must not speak for its own meter
            if payload.account not in self.peers:
                return "unknown_account"
            accounts.meters[payload.meter_key] = payload.account
            return None
        if isinstance(payload, txn.SetSlotTerms):
            self.money_on = True
            key = (payload.product, payload.slot)
            if key in accounts.settled:
                return "slot_settled"
            if key in self.closed and payload.market != self._market_of(key):
                return "slot_closed"  # the binding market cannot change after the gate
            if payload.export_price > payload.import_price:
                return "invalid_tariff"  # the grid would pay more than it charges
            terms = SlotTerms(payload.import_price, payload.export_price, payload.market)
            accounts.terms[key] = terms
            if payload.grid_in_book:
                if key in self.closed:
                    return None  # the terms settle the slot; its book is closed
                self._grid_in_book(out, key, terms)
            return None
        if isinstance(payload, txn.SetSlotMode):
            return self._set_mode(out, payload)
        if isinstance(payload, txn.DecideTrade):
            key = (payload.product, payload.slot)
            if key not in self.opened or key in self.closed:
                return "unknown_trade"
            instrument = Instrument(Product(payload.product), payload.slot)
            events = self.market.decide_trade(instrument, payload.trade_no, payload.approve)
            return self._book(out, events)
        if isinstance(payload, txn.SettleSlot):
            self.money_on = True
            key = (payload.product, payload.slot)
            if key in accounts.settled:
                return "already_settled"
            if key not in self.closed:
                return "slot_open"
            if key not in accounts.terms:
                return "no_terms"
            if accounts.terms[key].market == "cleared" and key not in self.clearings:
                return "not_cleared"
            out.results.extend(s.to_bytes() for s in accounts.settle(key))
            return None
        msg = f"unknown transaction payload {type(payload).__name__}"
        raise InvalidTransaction(msg)

    def _market_of(self, key: tuple[str, int]) -> str:
        terms = self.accounts.terms.get(key)
        return "cda" if terms is None else terms.market
