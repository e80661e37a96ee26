"""The node's one doorway to ledger transactions and result records.

Everything the node needs from ``ledger``'s transaction and result modules is
named here, so the state machine, operator, replica and client import one
module. Result records are built by ``rejection``, ``trade_record`` and
``settlement_record`` and are canonical bytes (what the block's result root
covers).
"""

from __future__ import annotations

from ledger.codec import encode_trusted
from ledger.errors import LedgerError
from ledger.keys import SigningKey, account_id
from ledger.payloads import (
    MAX_READING_WH,
    DecideTrade,
    DeclareTechnology,
    Deposit,
    MeterReading,
    PlacePreferredOrder,
    RegisterMeter,
    SetSlotMode,
    SetSlotTerms,
    SettleSlot,
    Withdraw,
)
from ledger.results import (
    RESULT_VERSION,
    EventRecord,
    GridTradeRecord,
    RejectionRecord,
    SettlementRecord,
    TradeRecord,
    decode_result,
)
from ledger.transactions import (
    OPERATOR_KINDS,
    AmendOrder,
    CancelOrder,
    CloseSlot,
    DeclareChp,
    DeclareCurve,
    Payload,
    PlaceOrder,
    PublishClearing,
    RegisterPeer,
    SetNetwork,
    SetTariff,
    SignedTransaction,
    Transaction,
    decode_transaction,
    sign_transaction,
    verify_transaction,
)
from ledger.types import RecordKind
from market.errors import BadSignature, InvalidTransaction
from orderbook.events import Expired, GridTrade, Trade

__all__ = [
    "MAX_READING_WH",
    "AmendOrder",
    "CancelOrder",
    "CloseSlot",
    "DecideTrade",
    "DeclareChp",
    "DeclareCurve",
    "DeclareTechnology",
    "Deposit",
    "MeterReading",
    "Payload",
    "PlaceOrder",
    "PlacePreferredOrder",
    "PublishClearing",
    "RegisterMeter",
    "RegisterPeer",
    "SetNetwork",
    "SetSlotMode",
    "SetSlotTerms",
    "SetTariff",
    "SettleSlot",
    "SettlementRecord",
    "SignedTransaction",
    "TradeRecord",
    "Withdraw",
    "accepted_record",
    "decision_record",
    "decode",
    "decode_result",
    "expired_record",
    "grid_trade_record",
    "is_operator_only",
    "make",
    "money_record",
    "rejection",
    "settlement_record",
    "trade_record",
    "verify",
]


def decode(data: bytes) -> SignedTransaction:
    """Decode transaction bytes.

    Raises:
        InvalidTransaction: the bytes are not one canonical signed transaction.
    """
    try:
        return decode_transaction(data)
    except LedgerError as exc:
        msg = f"transaction does not decode: {exc}"
        raise InvalidTransaction(msg) from exc


def verify(signed: SignedTransaction) -> None:
    """Check a transaction's signature.

    Raises:
        BadSignature: it does not verify under the sender's key.
    """
    try:
        verify_transaction(signed)
    except LedgerError as exc:
        raise BadSignature(str(exc)) from exc


def make(key: SigningKey, chain_id: str, nonce: int, payload: Payload) -> SignedTransaction:
    """Build and sign a transaction of ``payload`` from ``key``."""
    tx = Transaction(payload.KIND, chain_id, key.public_key_bytes(), nonce, payload)
    return sign_transaction(key, tx)


def is_operator_only(payload: object) -> bool:
    """True for the kinds only the operator key may send."""
    kind = getattr(payload, "KIND", None)
    return kind in OPERATOR_KINDS


def rejection(tx_id: bytes, reason: str) -> bytes:
    """The result record of a transaction the market refused."""
    return RejectionRecord(tx_id, reason).to_bytes()


# The two records of every placed order are built straight into their canonical
# arrays: the values come from a transaction the ledger has decoded and checked
# and from the order book (ints below 2**60, ids >= 0), so the dataclasses'
# field checks would only repeat them, on the operator's loop, for every order
# (measured: docs/performance.md). tests/market/test_records.py checks the
# bytes are the dataclasses' ``to_bytes()``.
_TRADE = int(RecordKind.TRADE)
_EVENT = int(RecordKind.EVENT)


def accepted_record(tx_id: bytes, account: bytes, order_id: int) -> bytes:
    """The result record of a placed order: the market-wide id it was given.

    ``EventRecord(tx_id, "accepted", account, (order_id,)).to_bytes()``.
    """
    return encode_trusted([RESULT_VERSION, _EVENT, tx_id, "accepted", account, [order_id]])


def expired_record(tx_id: bytes, expired: Expired) -> bytes:
    """The result record of an order that left the book by GTD expiry or gate closure.

    ``EventRecord(tx_id, "expired", owner account, (order_id, quantity Wh))``.
    """
    values = (expired.order_id, expired.quantity)
    return EventRecord(tx_id, "expired", bytes.fromhex(expired.owner), values).to_bytes()


def trade_record(tx_id: bytes, trade: Trade) -> bytes:
    """The result record of one trade (owners are account-id hex strings).

    ``TradeRecord(tx_id, product, slot, price, quantity, maker account,
    taker account, maker order id, taker order id).to_bytes()``.
    """
    instrument = trade.instrument
    return encode_trusted(
        [
            RESULT_VERSION,
            _TRADE,
            tx_id,
            instrument.product.value,
            instrument.slot,
            trade.price,
            trade.quantity,
            bytes.fromhex(trade.maker_owner),
            bytes.fromhex(trade.taker_owner),
            trade.maker_order_id,
            trade.taker_order_id,
        ]
    )


def grid_trade_record(tx_id: bytes, trade: GridTrade) -> bytes:
    """The result record of a trade in a grid-mode book: charges and the cutting line."""
    instrument = trade.instrument
    return GridTradeRecord(
        tx_id,
        instrument.product.value,
        instrument.slot,
        trade.price,
        trade.quantity,
        bytes.fromhex(trade.maker_owner),
        bytes.fromhex(trade.taker_owner),
        trade.maker_order_id,
        trade.taker_order_id,
        trade.seller_charge,
        trade.buyer_charge,
        -1 if trade.line is None else trade.line,
    ).to_bytes()


def decision_record(tx_id: bytes, event: str, trade_no: int) -> bytes:
    """The result record of a mode-4 trade held for the DSO, or of its decision.

    ``event`` is ``pending``, ``approved``, ``refused`` or ``deadline``.
    """
    return EventRecord(tx_id, f"trade_{event}", b"", (trade_no,)).to_bytes()


def money_record(tx_id: bytes, event: str, account: bytes, amount: int, balance: int) -> bytes:
    """The result record of a deposit or withdrawal: amount and balance after, tick·Wh."""
    return EventRecord(tx_id, event, account, (amount, balance)).to_bytes()


def settlement_record(product: str, slot: int, entry: tuple[bytes, int, int]) -> bytes:
    """The result record of one account's settlement in a published clearing."""
    account, energy_wh, payment = entry
    return SettlementRecord(product, slot, account, energy_wh, payment).to_bytes()


def sender_account(signed: SignedTransaction) -> bytes:
    """The account id of a transaction's sender."""
    return account_id(signed.transaction.sender)
