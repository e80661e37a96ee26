"""The read-only web view of a node: an HTTP and websocket gateway and its page."""

from node.web.gateway import Gateway as Gateway
from node.web.gateway import start_gateway as start_gateway

__all__ = ["Gateway", "start_gateway"]
