"""Clients of a p2pex node: ``Client`` (blocking) and ``AsyncClient`` (asyncio)."""

from node.client.clients import AsyncClient as AsyncClient
from node.client.clients import Client as Client
from node.client.clients import Submitted as Submitted

__all__ = ["AsyncClient", "Client", "Submitted"]
