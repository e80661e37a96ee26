"""Transaction payloads: one frozen dataclass per transaction kind.

Each class lists its fields once in ``SPECS`` (``ledger.fields``): the specs
check the values on construction and on decoding, and give the field order
on the wire (the payload array of a transaction body, see
``ledger.transactions``). Flags are bools in Python and 0 / 1 on the wire.

Units follow README.md (and docs/walkthrough.md): energy in Wh, prices in ticks per kWh, money in
tick·Wh.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import ClassVar

from ledger.fields import (
    BoolField,
    BytesField,
    FieldSpec,
    IntField,
    IntListField,
    SettlementListField,
    StrField,
    check_fields,
)

PRODUCTS = frozenset({"electricity", "heat"})
ROLES = frozenset({"producer", "consumer", "prosumer", "grid"})
SIDES = frozenset({"bid", "ask"})
TIME_IN_FORCE = frozenset({"GTC", "IOC", "FOK", "GTD"})


class TxKind(IntEnum):
    """Transaction kinds (field 1 of a transaction body)."""

    REGISTER_PEER = 1
    PLACE_ORDER = 2
    CANCEL_ORDER = 3
    AMEND_ORDER = 4
    DECLARE_CURVE = 5
    DECLARE_CHP = 6
    METER_READING = 7
    DECLARE_TECHNOLOGY = 8
    PLACE_PREFERRED_ORDER = 9
    SET_TARIFF = 16
    SET_NETWORK = 17
    CLOSE_SLOT = 18
    PUBLISH_CLEARING = 19
    DEPOSIT = 20
    WITHDRAW = 21
    REGISTER_METER = 22
    SET_SLOT_TERMS = 23
    SETTLE_SLOT = 24
    SET_SLOT_MODE = 25
    DECIDE_TRADE = 26


OPERATOR_KINDS = frozenset(
    {
        TxKind.SET_TARIFF,
        TxKind.SET_NETWORK,
        TxKind.CLOSE_SLOT,
        TxKind.PUBLISH_CLEARING,
        TxKind.DEPOSIT,
        TxKind.WITHDRAW,
        TxKind.REGISTER_METER,
        TxKind.SET_SLOT_TERMS,
        TxKind.SETTLE_SLOT,
        TxKind.SET_SLOT_MODE,
        TxKind.DECIDE_TRADE,
    }
)
"""Kinds only an operator key may send (checked by ``ledger.chain``)."""


@dataclass(frozen=True, slots=True)
class RegisterPeer:
    """Register the sender as a peer at a bus of the network."""

    KIND: ClassVar[TxKind] = TxKind.REGISTER_PEER
    SPECS: ClassVar[tuple[FieldSpec, ...]] = (
        StrField("name", 64),
        StrField("bus", 64),
        StrField("role", 16, ROLES),
    )
    name: str
    bus: str
    role: str  # "producer" | "consumer" | "prosumer" | "grid"

    def __post_init__(self) -> None:
        check_fields(self, self.SPECS)


@dataclass(frozen=True, slots=True)
class PlaceOrder:
    """Place a limit (or, with price 0, market) order on the CDA book of (product, slot)."""

    KIND: ClassVar[TxKind] = TxKind.PLACE_ORDER
    SPECS: ClassVar[tuple[FieldSpec, ...]] = (
        StrField("product", 16, PRODUCTS),
        IntField("slot"),
        StrField("side", 3, SIDES),
        IntField("price"),
        IntField("quantity"),
        StrField("tif", 3, TIME_IN_FORCE),
        IntField("expires_at"),
        BoolField("post_only"),
        StrField("stp", 32),
        IntField("client_order_id"),
    )
    product: str  # "electricity" | "heat"
    slot: int  # delivery-slot index
    side: str  # "bid" | "ask"
    price: int  # ticks per kWh; 0 = market order
    quantity: int  # Wh
    tif: str  # "GTC" | "IOC" | "FOK" | "GTD"
    expires_at: int  # market clock units (GTD); 0 = none
    post_only: bool
    stp: str  # self-trade prevention mode; "" = market default
    client_order_id: int  # the sender's order id, unique per sender

    def __post_init__(self) -> None:
        check_fields(self, self.SPECS)


@dataclass(frozen=True, slots=True)
class CancelOrder:
    """Cancel one of the sender's resting orders."""

    KIND: ClassVar[TxKind] = TxKind.CANCEL_ORDER
    SPECS: ClassVar[tuple[FieldSpec, ...]] = (IntField("client_order_id"),)
    client_order_id: int

    def __post_init__(self) -> None:
        check_fields(self, self.SPECS)


@dataclass(frozen=True, slots=True)
class AmendOrder:
    """Change the price and / or quantity of one of the sender's resting orders."""

    KIND: ClassVar[TxKind] = TxKind.AMEND_ORDER
    SPECS: ClassVar[tuple[FieldSpec, ...]] = (
        IntField("client_order_id"),
        IntField("price"),
        IntField("quantity"),
    )
    client_order_id: int
    price: int  # ticks per kWh; 0 = unchanged
    quantity: int  # Wh; 0 = unchanged

    def __post_init__(self) -> None:
        check_fields(self, self.SPECS)


@dataclass(frozen=True, slots=True)
class DeclareCurve:
    """Declare the sender's quadratic cost / willingness-to-pay curve for a clearing slot.

    The chapter's eq. 12.4 cost (or, for a consumer, willingness to pay), with
    P the peer's net injection in kWh and money in tick·kWh, is
    ``(a / 1000) / 2 * P**2 + b * P + c / 1000``: ``a`` is in milli-ticks per
    kWh², ``b`` in ticks per kWh and ``c`` in tick·Wh (1 tick·kWh = 1000
    tick·Wh, the ledger's money unit). ``q_min <= P <= q_max`` in Wh, signed as
    in the chapter: producers inject (>= 0), consumers withdraw (<= 0).
    """

    KIND: ClassVar[TxKind] = TxKind.DECLARE_CURVE
    SPECS: ClassVar[tuple[FieldSpec, ...]] = (
        StrField("product", 16, PRODUCTS),
        IntField("slot"),
        IntField("a"),
        IntField("b"),
        IntField("c"),
        IntField("q_min"),
        IntField("q_max"),
    )
    product: str
    slot: int
    a: int  # milli-ticks per kWh per kWh
    b: int  # ticks per kWh
    c: int  # tick·Wh
    q_min: int  # Wh, signed (consumers negative)
    q_max: int  # Wh, signed

    def __post_init__(self) -> None:
        check_fields(self, self.SPECS)


@dataclass(frozen=True, slots=True)
class DeclareChp:
    """Declare the feasible region of a CHP unit for a slot (chapter eq. 12.24-12.27).

    ``points`` are the corners A, B, C, D as (A_p, A_h, B_p, B_h, C_p, C_h, D_p,
    D_h), power p and heat h in Wh.
    """

    KIND: ClassVar[TxKind] = TxKind.DECLARE_CHP
    SPECS: ClassVar[tuple[FieldSpec, ...]] = (IntField("slot"), IntListField("points", size=8))
    slot: int
    points: tuple[int, ...]  # Wh

    def __post_init__(self) -> None:
        check_fields(self, self.SPECS)


@dataclass(frozen=True, slots=True)
class SetTariff:
    """Operator: set the loss and congestion penalty factors (chapter alpha and beta)."""

    KIND: ClassVar[TxKind] = TxKind.SET_TARIFF
    SPECS: ClassVar[tuple[FieldSpec, ...]] = (IntField("alpha_milli"), IntField("beta_milli"))
    alpha_milli: int  # alpha in thousandths of the chapter's unit
    beta_milli: int  # beta in thousandths of the chapter's unit

    def __post_init__(self) -> None:
        check_fields(self, self.SPECS)


@dataclass(frozen=True, slots=True)
class SetNetwork:
    """Operator: publish the network data (buses, lines, voltage) as JSON text."""

    KIND: ClassVar[TxKind] = TxKind.SET_NETWORK
    SPECS: ClassVar[tuple[FieldSpec, ...]] = (StrField("network_json", 512 * 1024),)
    network_json: str

    def __post_init__(self) -> None:
        check_fields(self, self.SPECS)


@dataclass(frozen=True, slots=True)
class CloseSlot:
    """Operator: gate closure of a delivery slot of a product."""

    KIND: ClassVar[TxKind] = TxKind.CLOSE_SLOT
    SPECS: ClassVar[tuple[FieldSpec, ...]] = (StrField("product", 16, PRODUCTS), IntField("slot"))
    product: str
    slot: int

    def __post_init__(self) -> None:
        check_fields(self, self.SPECS)


@dataclass(frozen=True, slots=True)
class PublishClearing:
    """Operator: the rounded settlements of a slot's optimal clearing and its certificate.

    ``settlements`` rows are (account id: 32 bytes, energy in Wh, payment in
    tick·Wh); ``certificate`` is the canonical encoding produced by the
    clearing package.
    """

    KIND: ClassVar[TxKind] = TxKind.PUBLISH_CLEARING
    SPECS: ClassVar[tuple[FieldSpec, ...]] = (
        StrField("product", 16, PRODUCTS),
        IntField("slot"),
        SettlementListField("settlements"),
        BytesField("certificate", size=None, max_len=768 * 1024),
    )
    product: str
    slot: int
    settlements: tuple[tuple[bytes, int, int], ...]
    certificate: bytes

    def __post_init__(self) -> None:
        check_fields(self, self.SPECS)


MAX_AMOUNT = 2**62  # tick·Wh: one deposit or withdrawal (balances are sums of these)
MAX_READING_WH = 10**9  # Wh: one meter's energy in one slot (1 GWh)
MARKET_KINDS = frozenset({"cda", "cleared"})


@dataclass(frozen=True, slots=True)
class MeterReading:
    """A meter's signed reading of one slot: energy delivered (> 0) or consumed (< 0), Wh.

    Sent by the meter's own key, which the operator bound to one account
    (``RegisterMeter``); it can only ever concern that account.
    """

    KIND: ClassVar[TxKind] = TxKind.METER_READING
    SPECS: ClassVar[tuple[FieldSpec, ...]] = (
        StrField("product", 16, PRODUCTS),
        IntField("slot"),
        IntField("energy_wh", -MAX_READING_WH, MAX_READING_WH),
    )
    product: str
    slot: int
    energy_wh: int  # Wh: injected >= 0, withdrawn <= 0 (the chapter's sign)

    def __post_init__(self) -> None:
        check_fields(self, self.SPECS)


@dataclass(frozen=True, slots=True)
class Deposit:
    """Operator: credit an account with money brought into the community (tick·Wh)."""

    KIND: ClassVar[TxKind] = TxKind.DEPOSIT
    SPECS: ClassVar[tuple[FieldSpec, ...]] = (
        BytesField("account"),
        IntField("amount", 1, MAX_AMOUNT),
    )
    account: bytes  # account id
    amount: int  # tick·Wh, > 0

    def __post_init__(self) -> None:
        check_fields(self, self.SPECS)


@dataclass(frozen=True, slots=True)
class Withdraw:
    """Operator: debit an account with money taken out of the community (tick·Wh)."""

    KIND: ClassVar[TxKind] = TxKind.WITHDRAW
    SPECS: ClassVar[tuple[FieldSpec, ...]] = (
        BytesField("account"),
        IntField("amount", 1, MAX_AMOUNT),
    )
    account: bytes  # account id
    amount: int  # tick·Wh, > 0

    def __post_init__(self) -> None:
        check_fields(self, self.SPECS)


@dataclass(frozen=True, slots=True)
class RegisterMeter:
    """Operator: bind a meter's public key to the account whose delivery it measures."""

    KIND: ClassVar[TxKind] = TxKind.REGISTER_METER
    SPECS: ClassVar[tuple[FieldSpec, ...]] = (BytesField("account"), BytesField("meter_key"))
    account: bytes  # account id
    meter_key: bytes  # the meter's raw Ed25519 public key

    def __post_init__(self) -> None:
        check_fields(self, self.SPECS)


@dataclass(frozen=True, slots=True)
class SetSlotTerms:
    """Operator: a slot's grid tariffs and how it is settled.

    ``import_price`` is what the grid charges for energy it delivers and
    ``export_price`` what it pays for energy it takes, both ticks per kWh
    (12.3.1.1: local prices lie between them). ``market`` is ``"cda"`` (the
    CDA's trades are the binding contracts) or ``"cleared"`` (the slot's
    published clearing is). With ``grid_in_book`` the grid trades both ways
    in the slot's CDA: it offers without limit at the import price and bids
    without limit at the export price.
    """

    KIND: ClassVar[TxKind] = TxKind.SET_SLOT_TERMS
    SPECS: ClassVar[tuple[FieldSpec, ...]] = (
        StrField("product", 16, PRODUCTS),
        IntField("slot"),
        IntField("import_price", 0, 2**40),
        IntField("export_price", 0, 2**40),
        StrField("market", 16, MARKET_KINDS),
        BoolField("grid_in_book"),
    )
    product: str
    slot: int
    import_price: int  # ticks per kWh
    export_price: int  # ticks per kWh
    market: str
    grid_in_book: bool = False  # the grid stands in the CDA at both prices (12.3.1.1)

    def __post_init__(self) -> None:
        check_fields(self, self.SPECS)


@dataclass(frozen=True, slots=True)
class SettleSlot:
    """Operator: settle a delivered slot: contracts, metered energy, imbalances, statements."""

    KIND: ClassVar[TxKind] = TxKind.SETTLE_SLOT
    SPECS: ClassVar[tuple[FieldSpec, ...]] = (StrField("product", 16, PRODUCTS), IntField("slot"))
    product: str
    slot: int

    def __post_init__(self) -> None:
        check_fields(self, self.SPECS)


TECHNOLOGIES = frozenset(
    {"pv", "wind", "battery", "ev", "chp", "fuel_cell", "heat_pump", "power_to_gas", "load", "grid"}
)
MAX_GRID_BUSES = 128  # buses of a slot's grid data (its matrices are n x n)


@dataclass(frozen=True, slots=True)
class DeclareTechnology:
    """A peer says what it is (12.3): the label mode-1 preferences select on."""

    KIND: ClassVar[TxKind] = TxKind.DECLARE_TECHNOLOGY
    SPECS: ClassVar[tuple[FieldSpec, ...]] = (StrField("technology", 16, TECHNOLOGIES),)
    technology: str

    def __post_init__(self) -> None:
        check_fields(self, self.SPECS)


@dataclass(frozen=True, slots=True)
class PlacePreferredOrder:
    """A ``PlaceOrder`` with mode-1 preferences (12.2.2): whom and what it accepts.

    ``technologies``: comma-separated labels the counterparty must have ("":
    any); ``preferred`` / ``excluded``: concatenated 32-byte account ids;
    ``max_distance``: the largest electrical distance to the counterparty's
    bus, in the slot grid's ``distance`` unit (-1: any).
    """

    KIND: ClassVar[TxKind] = TxKind.PLACE_PREFERRED_ORDER
    SPECS: ClassVar[tuple[FieldSpec, ...]] = (
        *PlaceOrder.SPECS,
        StrField("technologies", 256),
        BytesField("preferred", size=None, max_len=32 * 256),
        BytesField("excluded", size=None, max_len=32 * 256),
        IntField("max_distance", -1, 2**40),
    )
    product: str
    slot: int
    side: str
    price: int  # ticks per kWh; 0 = market order
    quantity: int  # Wh
    tif: str
    expires_at: int
    post_only: bool
    stp: str
    client_order_id: int
    technologies: str
    preferred: bytes
    excluded: bytes
    max_distance: int

    def __post_init__(self) -> None:
        check_fields(self, self.SPECS)


@dataclass(frozen=True, slots=True)
class SetSlotMode:
    """Operator (for the DSO): a slot's operation mode (12.2.2) and the grid data it needs.

    ``buses`` names the feeder's buses, comma-separated: index ``i`` of every
    list below is bus ``i``; a peer is at the bus it registered with. Charges
    are ticks per kWh each side pays the DSO on a trade from a seller at bus
    ``s`` to a buyer at bus ``b`` (flat ``[s * n + b]``, mode 3); ``parent``,
    ``capacity`` (Wh per slot) and ``base_flow`` (Wh) describe the radial
    feeder for mode 4; ``distance`` (flat, mode 1) is what preferences'
    ``max_distance`` is compared with. Lists a mode does not use are empty.
    """

    KIND: ClassVar[TxKind] = TxKind.SET_SLOT_MODE
    SPECS: ClassVar[tuple[FieldSpec, ...]] = (
        StrField("product", 16, PRODUCTS),
        IntField("slot"),
        IntField("mode", 1, 4),
        StrField("buses", 64 * MAX_GRID_BUSES),
        IntListField("parent", max_len=MAX_GRID_BUSES, lo=-1, hi=MAX_GRID_BUSES),
        IntListField("capacity", max_len=MAX_GRID_BUSES, lo=0, hi=2**50),
        IntListField("base_flow", max_len=MAX_GRID_BUSES, lo=-(2**50), hi=2**50),
        IntListField("seller_charge", max_len=MAX_GRID_BUSES**2, lo=0, hi=2**40),
        IntListField("buyer_charge", max_len=MAX_GRID_BUSES**2, lo=0, hi=2**40),
        IntListField("distance", max_len=MAX_GRID_BUSES**2, lo=0, hi=2**40),
        BoolField("approval"),
    )
    product: str
    slot: int
    mode: int  # 1 preferences, 2 bids and offers, 3 DSO price signals, 4 line validation
    buses: str
    parent: tuple[int, ...]
    capacity: tuple[int, ...]
    base_flow: tuple[int, ...]
    seller_charge: tuple[int, ...]
    buyer_charge: tuple[int, ...]
    distance: tuple[int, ...]
    approval: bool  # mode 4: every match waits for a DecideTrade

    def __post_init__(self) -> None:
        check_fields(self, self.SPECS)


@dataclass(frozen=True, slots=True)
class DecideTrade:
    """Operator (for the DSO): approve or refuse a pending mode-4 trade (``trade_no``)."""

    KIND: ClassVar[TxKind] = TxKind.DECIDE_TRADE
    SPECS: ClassVar[tuple[FieldSpec, ...]] = (
        StrField("product", 16, PRODUCTS),
        IntField("slot"),
        IntField("trade_no", 0),
        BoolField("approve"),
    )
    product: str
    slot: int
    trade_no: int
    approve: bool

    def __post_init__(self) -> None:
        check_fields(self, self.SPECS)


Payload = (
    RegisterPeer
    | PlaceOrder
    | CancelOrder
    | AmendOrder
    | DeclareCurve
    | DeclareChp
    | SetTariff
    | SetNetwork
    | CloseSlot
    | PublishClearing
    | MeterReading
    | Deposit
    | Withdraw
    | RegisterMeter
    | SetSlotTerms
    | SettleSlot
    | DeclareTechnology
    | PlacePreferredOrder
    | SetSlotMode
    | DecideTrade
)

PAYLOAD_TYPES: dict[TxKind, type[Payload]] = {
    cls.KIND: cls
    for cls in (
        RegisterPeer,
        PlaceOrder,
        CancelOrder,
        AmendOrder,
        DeclareCurve,
        DeclareChp,
        SetTariff,
        SetNetwork,
        CloseSlot,
        PublishClearing,
        MeterReading,
        Deposit,
        Withdraw,
        RegisterMeter,
        SetSlotTerms,
        SettleSlot,
        DeclareTechnology,
        PlacePreferredOrder,
        SetSlotMode,
        DecideTrade,
    )
}
