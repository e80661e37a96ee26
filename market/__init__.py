"""The replicated market state machine: what each transaction means.

The operator applies transactions to an ``ExchangeState`` in the order its
sequencer delivers them; every replica replays the same blocks through the
same code (``market.replay``) and must reach the same results and state
digest. Pure and deterministic: it imports ``orderbook``, ``ledger`` and
``clearing`` only, and never reads a clock, the network or randomness.
"""

from market.errors import BadNonce as BadNonce
from market.errors import BadSignature as BadSignature
from market.errors import BlockRefused as BlockRefused
from market.errors import DuplicateTransaction as DuplicateTransaction
from market.errors import InvalidTransaction as InvalidTransaction
from market.errors import MarketError as MarketError
from market.errors import NotPermitted as NotPermitted
from market.state import ExchangeState as ExchangeState
from market.state import Outcome as Outcome
from market.state import Peer as Peer

__all__ = [
    "BadNonce",
    "BadSignature",
    "BlockRefused",
    "DuplicateTransaction",
    "ExchangeState",
    "InvalidTransaction",
    "MarketError",
    "NotPermitted",
    "Outcome",
    "Peer",
]
