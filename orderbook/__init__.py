"""Continuous double-auction books: orders, matching, events (pure, deterministic)."""

from orderbook.book import Book as Book
from orderbook.book import Depth as Depth
from orderbook.book import DepthLevel as DepthLevel
from orderbook.book import OrderView as OrderView
from orderbook.commands import AdvanceClock as AdvanceClock
from orderbook.commands import AmendOrder as AmendOrder
from orderbook.commands import CancelOrder as CancelOrder
from orderbook.commands import CloseInstrument as CloseInstrument
from orderbook.commands import Command as Command
from orderbook.commands import DecideTrade as DecideTrade
from orderbook.commands import OpenInstrument as OpenInstrument
from orderbook.commands import PlaceOrder as PlaceOrder
from orderbook.commands import SetMode as SetMode
from orderbook.errors import ConfigError as ConfigError
from orderbook.errors import GridError as GridError
from orderbook.errors import InvariantError as InvariantError
from orderbook.errors import OrderBookError as OrderBookError
from orderbook.errors import SnapshotError as SnapshotError
from orderbook.errors import UnknownInstrument as UnknownInstrument
from orderbook.events import Accepted as Accepted
from orderbook.events import Amended as Amended
from orderbook.events import Cancelled as Cancelled
from orderbook.events import CancelReason as CancelReason
from orderbook.events import Event as Event
from orderbook.events import Expired as Expired
from orderbook.events import GridTrade as GridTrade
from orderbook.events import InstrumentClosed as InstrumentClosed
from orderbook.events import InstrumentOpened as InstrumentOpened
from orderbook.events import LineBlocked as LineBlocked
from orderbook.events import ModeSet as ModeSet
from orderbook.events import Rejected as Rejected
from orderbook.events import RejectReason as RejectReason
from orderbook.events import Trade as Trade
from orderbook.events import TradeDecided as TradeDecided
from orderbook.events import TradePending as TradePending
from orderbook.grid import Grid as Grid
from orderbook.grid import GridMode as GridMode
from orderbook.grid import Preferences as Preferences
from orderbook.market import Market as Market
from orderbook.types import Instrument as Instrument
from orderbook.types import MarketConfig as MarketConfig
from orderbook.types import Product as Product
from orderbook.types import Side as Side
from orderbook.types import STPMode as STPMode
from orderbook.types import TimeInForce as TimeInForce

__all__ = [
    "Accepted",
    "AdvanceClock",
    "AmendOrder",
    "Amended",
    "Book",
    "CancelOrder",
    "CancelReason",
    "Cancelled",
    "CloseInstrument",
    "Command",
    "ConfigError",
    "DecideTrade",
    "Depth",
    "DepthLevel",
    "Event",
    "Expired",
    "Grid",
    "GridError",
    "GridMode",
    "GridTrade",
    "Instrument",
    "InstrumentClosed",
    "InstrumentOpened",
    "InvariantError",
    "LineBlocked",
    "Market",
    "MarketConfig",
    "ModeSet",
    "OpenInstrument",
    "OrderBookError",
    "OrderView",
    "PlaceOrder",
    "Preferences",
    "Product",
    "RejectReason",
    "Rejected",
    "STPMode",
    "SetMode",
    "Side",
    "SnapshotError",
    "TimeInForce",
    "Trade",
    "TradeDecided",
    "TradePending",
    "UnknownInstrument",
]
