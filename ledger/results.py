"""Result records: what the state machine made of a block's transactions.

A block's results are the leaves of its result Merkle tree, each the
canonical bytes of one record ``[1, RecordKind, field, ...]``:

* ``TradeRecord``: a CDA match (prices in ticks per kWh, quantity in Wh).
* ``RejectionRecord``: a transaction refused by the market, with a stable reason code.
* ``SettlementRecord``: one account's energy (Wh) and payment (tick·Wh) of a clearing.
* ``EventRecord``: anything else the node needs recorded (an order accepted,
  cancelled, expired, amended, a slot cleared...): an event name, the account
  concerned (or ``b""``), and a tuple of ints whose meaning the event name fixes.

Every record names the accounts it concerns (``accounts()``) so the block
store can index it.

>>> record = RejectionRecord(bytes(32), "price_off_grid")
>>> decode_result(record.to_bytes()) == record
True
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, cast

from ledger.codec import Value, as_array, as_list, decode_record, expect_header
from ledger.codec import encode_trusted as _encode
from ledger.errors import BadRecord
from ledger.fields import (
    BytesField,
    FieldSpec,
    IntField,
    IntListField,
    StrField,
    build_checked,
    check_fields,
    check_values,
    compile_checker,
    fields_to_values,
)
from ledger.transactions import PRODUCTS
from ledger.types import MAX_RESULT_SIZE, RecordKind

RESULT_VERSION = 1


@dataclass(frozen=True, slots=True)
class TradeRecord:
    """One CDA trade: the taker's transaction matched a resting maker order."""

    KIND: ClassVar[RecordKind] = RecordKind.TRADE
    SPECS: ClassVar[tuple[FieldSpec, ...]] = (
        BytesField("tx_id"),
        StrField("product", 16, PRODUCTS),
        IntField("slot"),
        IntField("price"),
        IntField("quantity"),
        BytesField("maker_account"),
        BytesField("taker_account"),
        IntField("maker_order"),
        IntField("taker_order"),
    )
    tx_id: bytes  # the transaction that caused the trade (the taker's order)
    product: str
    slot: int
    price: int  # ticks per kWh
    quantity: int  # Wh
    maker_account: bytes  # account id (ledger.keys.account_id)
    taker_account: bytes
    maker_order: int
    taker_order: int

    def __post_init__(self) -> None:
        check_fields(self, self.SPECS)

    def accounts(self) -> tuple[bytes, ...]:
        """Return the accounts this record concerns (for the store's index)."""
        if self.maker_account == self.taker_account:
            return (self.maker_account,)
        return (self.maker_account, self.taker_account)

    def to_bytes(self) -> bytes:
        """Return the canonical record bytes (a result leaf)."""
        return _encode([RESULT_VERSION, int(self.KIND), *fields_to_values(self, self.SPECS)])


@dataclass(frozen=True, slots=True)
class RejectionRecord:
    """A transaction the market refused, with a stable reason code."""

    KIND: ClassVar[RecordKind] = RecordKind.REJECTION
    SPECS: ClassVar[tuple[FieldSpec, ...]] = (BytesField("tx_id"), StrField("reason", 64))
    tx_id: bytes
    reason: str

    def __post_init__(self) -> None:
        check_fields(self, self.SPECS)

    def accounts(self) -> tuple[bytes, ...]:
        """Return no account: rejections are found through their transaction."""
        return ()

    def to_bytes(self) -> bytes:
        """Return the canonical record bytes (a result leaf)."""
        return _encode([RESULT_VERSION, int(self.KIND), *fields_to_values(self, self.SPECS)])


@dataclass(frozen=True, slots=True)
class SettlementRecord:
    """One account's settlement of a clearing: energy and payment, signed as in the chapter."""

    KIND: ClassVar[RecordKind] = RecordKind.SETTLEMENT
    SPECS: ClassVar[tuple[FieldSpec, ...]] = (
        StrField("product", 16, PRODUCTS),
        IntField("slot"),
        BytesField("account"),
        IntField("energy_wh"),
        IntField("payment"),
    )
    product: str
    slot: int
    account: bytes  # account id
    energy_wh: int  # Wh, injected >= 0, withdrawn <= 0
    payment: int  # tick·Wh, received >= 0, paid <= 0

    def __post_init__(self) -> None:
        check_fields(self, self.SPECS)

    def accounts(self) -> tuple[bytes, ...]:
        """Return the settled account."""
        return (self.account,)

    def to_bytes(self) -> bytes:
        """Return the canonical record bytes (a result leaf)."""
        return _encode([RESULT_VERSION, int(self.KIND), *fields_to_values(self, self.SPECS)])


@dataclass(frozen=True, slots=True)
class EventRecord:
    """A generic market event: a name, the account concerned and integer values.

    Examples: ``EventRecord(tx_id, "accepted", acct, (order_id,))``,
    ``EventRecord(tx_id, "cancelled", acct, (order_id, remaining_wh))``. The
    node documents each event name's values; ``tx_id`` may be 32 zero bytes
    for events no transaction caused (a GTD expiry at a clock tick).
    """

    KIND: ClassVar[RecordKind] = RecordKind.EVENT
    SPECS: ClassVar[tuple[FieldSpec, ...]] = (
        BytesField("tx_id"),
        StrField("event", 32),
        BytesField("account", size=None, max_len=32),
        IntListField("values", max_len=64),
    )
    tx_id: bytes
    event: str
    account: bytes  # account id, or b"" when none
    values: tuple[int, ...]

    def __post_init__(self) -> None:
        check_fields(self, self.SPECS)

    def accounts(self) -> tuple[bytes, ...]:
        """Return the account concerned, if any."""
        return (self.account,) if self.account else ()

    def to_bytes(self) -> bytes:
        """Return the canonical record bytes (a result leaf)."""
        return _encode([RESULT_VERSION, int(self.KIND), *fields_to_values(self, self.SPECS)])


@dataclass(frozen=True, slots=True)
class StatementRecord:
    """One account's settlement of a delivered slot: what it contracted, metered and paid.

    Money moves only here and in deposits and withdrawals. ``payment`` is
    the account's balance change (received >= 0, paid <= 0: the one sign of
    every payment on the ledger), ``balance_after`` its balance once it is
    applied. Energy is the chapter's sign: injected >= 0, withdrawn <= 0.
    """

    KIND: ClassVar[RecordKind] = RecordKind.STATEMENT
    SPECS: ClassVar[tuple[FieldSpec, ...]] = (
        StrField("product", 16, PRODUCTS),
        IntField("slot"),
        BytesField("account"),
        IntField("contracted_wh"),
        IntField("metered_wh"),
        IntField("imbalance_wh"),
        IntField("charges"),
        IntField("payment"),
        IntField("balance_after"),
    )
    product: str
    slot: int
    account: bytes  # account id
    contracted_wh: int  # Wh: net energy the account's binding contracts sold (+) or bought (-)
    metered_wh: int  # Wh: its meter's reading (0 when none arrived)
    imbalance_wh: int  # Wh: metered - contracted, settled with the grid
    charges: int  # tick·Wh: grid charges paid (<= 0) or received (the DSO, >= 0)
    payment: int  # tick·Wh: the balance change, charges included
    balance_after: int  # tick·Wh

    def __post_init__(self) -> None:
        check_fields(self, self.SPECS)

    def accounts(self) -> tuple[bytes, ...]:
        """Return the settled account."""
        return (self.account,)

    def to_bytes(self) -> bytes:
        """Return the canonical record bytes (a result leaf)."""
        return _encode([RESULT_VERSION, int(self.KIND), *fields_to_values(self, self.SPECS)])


@dataclass(frozen=True, slots=True)
class GridTradeRecord:
    """A CDA trade in a slot run in a grid mode: a ``TradeRecord`` plus the DSO's part.

    The buyer pays ``(price + buyer_charge) x quantity``, the seller receives
    ``(price - seller_charge) x quantity`` and the DSO the charges (tick·Wh).
    ``line`` is the bus index of the line that cut the trade in mode 4, or -1.
    """

    KIND: ClassVar[RecordKind] = RecordKind.GRID_TRADE
    SPECS: ClassVar[tuple[FieldSpec, ...]] = (
        *TradeRecord.SPECS,
        IntField("seller_charge", 0),
        IntField("buyer_charge", 0),
        IntField("line", -1),
    )
    tx_id: bytes
    product: str
    slot: int
    price: int  # ticks per kWh
    quantity: int  # Wh
    maker_account: bytes
    taker_account: bytes
    maker_order: int
    taker_order: int
    seller_charge: int  # ticks per kWh
    buyer_charge: int  # ticks per kWh
    line: int

    def __post_init__(self) -> None:
        check_fields(self, self.SPECS)

    def accounts(self) -> tuple[bytes, ...]:
        """Return the accounts this record concerns (for the store's index)."""
        if self.maker_account == self.taker_account:
            return (self.maker_account,)
        return (self.maker_account, self.taker_account)

    def to_bytes(self) -> bytes:
        """Return the canonical record bytes (a result leaf)."""
        return _encode([RESULT_VERSION, int(self.KIND), *fields_to_values(self, self.SPECS)])


ResultRecord = (
    TradeRecord
    | RejectionRecord
    | SettlementRecord
    | EventRecord
    | StatementRecord
    | GridTradeRecord
)

RESULT_TYPES: dict[int, type[ResultRecord]] = {
    cls.KIND: cls
    for cls in (
        TradeRecord,
        RejectionRecord,
        SettlementRecord,
        EventRecord,
        StatementRecord,
        GridTradeRecord,
    )
}


_FAST_CHECKS = {cls: compile_checker(cls.SPECS) for cls in RESULT_TYPES.values()}


def _parse_result(data: bytes, max_size: int) -> tuple[type[ResultRecord], list[Value]]:
    # decode_record skips the generic type walk: every field is type-checked here.
    fields = as_list(decode_record(data, max_size=max_size), "result", 64)
    if len(fields) < 2:
        msg = f"result: expected [version, kind, ...], found {len(fields)} fields"
        raise BadRecord(msg, expected=2, found=len(fields))
    kind = fields[1]
    cls = RESULT_TYPES.get(kind) if type(kind) is int else None
    if cls is None:
        msg = f"unknown result kind {kind!r}"
        raise BadRecord(msg, expected=sorted(RESULT_TYPES), found=kind)
    expect_header(fields, RESULT_VERSION, cls.KIND, "result")
    return cls, fields[2:]


def check_result(data: bytes, *, max_size: int = MAX_RESULT_SIZE) -> None:
    """Check that ``data`` is one valid result record, without building it.

    Raises:
        DecodeError: as ``decode_result``.
    """
    cls, values = _parse_result(data, max_size)
    if not _FAST_CHECKS[cls](values):
        check_values(cls.SPECS, as_array(values, len(cls.SPECS), cls.__name__), cls.__name__)


def _position(cls: type[ResultRecord], name: str) -> int:
    return [spec.name for spec in cls.SPECS].index(name)


_MAKER, _TAKER = _position(TradeRecord, "maker_account"), _position(TradeRecord, "taker_account")
_SETTLED = _position(SettlementRecord, "account")
_STATED = _position(StatementRecord, "account")
_CONCERNED = _position(EventRecord, "account")


def _trade_accounts(values: list[Value]) -> tuple[bytes, ...]:
    maker, taker = cast("bytes", values[_MAKER]), cast("bytes", values[_TAKER])
    return (maker,) if maker == taker else (maker, taker)


def _event_accounts(values: list[Value]) -> tuple[bytes, ...]:
    account = cast("bytes", values[_CONCERNED])
    return (account,) if account else ()


# The accounts() of each record kind, read from its checked field values.
_ACCOUNTS: dict[type[ResultRecord], Callable[[list[Value]], tuple[bytes, ...]]] = {
    TradeRecord: _trade_accounts,
    RejectionRecord: lambda values: (),
    SettlementRecord: lambda values: (cast("bytes", values[_SETTLED]),),
    EventRecord: _event_accounts,
    StatementRecord: lambda values: (cast("bytes", values[_STATED]),),
    GridTradeRecord: _trade_accounts,  # its first fields are a TradeRecord's
}


def result_accounts(
    data: bytes, *, max_size: int = MAX_RESULT_SIZE
) -> tuple[RecordKind, tuple[bytes, ...]]:
    """Check one result record; return its kind and ``accounts()``, without building it.

    The block store indexes every result of every block it appends: this
    makes the checks of ``decode_result`` but builds no record object, which
    is most of a decode's cost.

    Raises:
        DecodeError: as ``decode_result``.
    """
    cls, values = _parse_result(data, max_size)
    if not _FAST_CHECKS[cls](values):
        check_values(cls.SPECS, as_array(values, len(cls.SPECS), cls.__name__), cls.__name__)
    return cls.KIND, _ACCOUNTS[cls](values)


def peek_result_kind(data: bytes) -> int | None:
    """The kind number a result record's bytes announce, read off its first three bytes.

    Nothing else is checked (``decode_result`` does that): for readers that
    want the records of one kind, such as a node listing trades, and would
    otherwise decode every result of a block to find them. None if the
    bytes do not start as a canonical result does: a short array, version
    ``RESULT_VERSION``, a small kind number.
    """
    if len(data) < 3 or not 0x92 <= data[0] <= 0x9F or data[1] != RESULT_VERSION:
        return None
    kind = data[2]
    return kind if kind < 0x80 else None  # a positive fixint: every kind number is one


def decode_result(data: bytes, *, max_size: int = MAX_RESULT_SIZE) -> ResultRecord:
    """Decode one result record from its exact bytes.

    Raises:
        DecodeError: malformed, oversized or non-canonical bytes, an unknown
            record kind, or fields of the wrong type or range (``BadRecord``).
    """
    cls, values = _parse_result(data, max_size)
    body = as_array(values, len(cls.SPECS), cls.__name__)
    return build_checked(cls, cls.SPECS, check_values(cls.SPECS, body, cls.__name__))
