"""p2pex peer nodes: market state machine, networking, persistence, CLI and demo."""

from market.state import ExchangeState as ExchangeState
from market.state import Outcome as Outcome
from node.client.clients import AsyncClient as AsyncClient
from node.client.clients import Client as Client
from node.client.clients import Submitted as Submitted
from node.clock import Clock as Clock
from node.clock import FakeClock as FakeClock
from node.clock import SystemClock as SystemClock
from node.config import NodeConfig as NodeConfig
from node.config import load_config as load_config
from node.errors import BadNonce as BadNonce
from node.errors import BadSignature as BadSignature
from node.errors import BlockRefused as BlockRefused
from node.errors import ClientClosed as ClientClosed
from node.errors import ConfigError as ConfigError
from node.errors import ConnectionLost as ConnectionLost
from node.errors import FrameTooLarge as FrameTooLarge
from node.errors import InvalidTransaction as InvalidTransaction
from node.errors import LocalError as LocalError
from node.errors import MalformedMessage as MalformedMessage
from node.errors import NodeError as NodeError
from node.errors import NodeTimeout as NodeTimeout
from node.errors import NotPermitted as NotPermitted
from node.errors import RemotePeerError as RemotePeerError
from node.errors import RequestFailed as RequestFailed
from node.localnet import LocalNet as LocalNet
from node.localnet import NodeProcess as NodeProcess
from node.pipeline.sequencer import EmbeddedLog as EmbeddedLog
from node.pipeline.sequencer import SequencerLog as SequencerLog
from node.roles.operator import Operator as Operator
from node.roles.replica import Replica as Replica
from node.version import __version__ as __version__

__all__ = [
    "AsyncClient",
    "BadNonce",
    "BadSignature",
    "BlockRefused",
    "Client",
    "ClientClosed",
    "Clock",
    "ConfigError",
    "ConnectionLost",
    "EmbeddedLog",
    "ExchangeState",
    "FakeClock",
    "FrameTooLarge",
    "InvalidTransaction",
    "LocalError",
    "LocalNet",
    "MalformedMessage",
    "NodeConfig",
    "NodeError",
    "NodeProcess",
    "NodeTimeout",
    "NotPermitted",
    "Operator",
    "Outcome",
    "RemotePeerError",
    "Replica",
    "RequestFailed",
    "SequencerLog",
    "Submitted",
    "SystemClock",
    "__version__",
    "load_config",
]
