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
    SET_TARIFF = 16
    SET_NETWORK = 17
    CLOSE_SLOT = 18
    PUBLISH_CLEARING = 19


OPERATOR_KINDS = frozenset(
    {TxKind.SET_TARIFF, TxKind.SET_NETWORK, TxKind.CLOSE_SLOT, TxKind.PUBLISH_CLEARING}
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
    )
}
