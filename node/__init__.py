"""p2pex peer nodes: market state machine, networking, persistence, CLI and demo."""

from node.errors import NodeError as NodeError
from node.version import __version__ as __version__

__all__ = ["NodeError", "__version__"]
