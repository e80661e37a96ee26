"""The client side of the protocol, sans I/O: requests out, answers matched to them.

``ClientConnection`` numbers and encodes requests and matches each reply or
error reply to the request it answers: the one place this is done, for the
blocking client (``node.wire.rpc.SyncRpc``) and the asyncio client
(``node.wire.rpc.AsyncRpc``). It reads no socket and knows no event loop;
each client adds only how it waits (h11's design: bytes in, events out).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Generic, TypeVar

from node.errors import FrameTooLarge, MalformedMessage
from node.wire.frames import DEFAULT_MAX_FRAME
from node.wire.protocol import (
    MAX_REQUEST_VALUES,
    ErrorReply,
    Event,
    Reply,
    Request,
    Value,
    decode_message,
    parse_message,
    request_body,
)

T = TypeVar("T")
Answer = tuple["T | None", Reply | ErrorReply]


class ClientConnection(Generic[T]):
    """Requests in flight on one connection, each with the caller's token (e.g. a future).

    ``request`` registers a token and returns the body to send; ``receive``
    takes a frame body from the node and returns what it is: an ``Event``,
    ``(token, reply)`` for an answer to a request in flight, ``(None,
    error)`` for an error reply with id 0 (the node could not read a frame
    as a request; after ``frame_too_large`` and ``timeout`` it hangs up), or
    None for an answer to no request in flight (one given up with ``forget``).
    """

    __slots__ = ("_ids", "max_frame", "pending")

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        self.max_frame = max_frame
        self._ids = itertools.count(1)
        self.pending: dict[int, T] = {}

    def request(self, command: str, args: Mapping[str, Value], token: T) -> tuple[int, bytes]:
        """Encode a request and register ``token`` for its answer; return its id and body.

        What the node would refuse is refused here, before it is sent: a
        frame over the limit (the node would hang up on the connection, and
        fail every other request in flight on it) or more values than a
        request may hold (the node could only answer it with id 0).

        Raises:
            FrameTooLarge: the body exceeds ``max_frame``.
            MalformedMessage: ``args`` is not a protocol value, or holds too many values.
        """
        request_id = next(self._ids)
        body = request_body(request_id, command, args)
        if len(body) > self.max_frame:
            raise FrameTooLarge(len(body), self.max_frame)
        if len(body) > MAX_REQUEST_VALUES:  # shorter bodies cannot hold more values
            decode_message(body, canonical=False, max_values=MAX_REQUEST_VALUES)
        self.pending[request_id] = token
        return request_id, body

    def receive(self, body: bytes) -> Event | Answer[T] | None:
        """Decode one frame body from the node and match it (see the class doc).

        Raises:
            MalformedMessage: the body is not a message a node may send.
        """
        message = parse_message(body, canonical=False)  # from the node: shape only
        if isinstance(message, Event):
            return message
        if isinstance(message, Request):
            msg = "node sent a request"
            raise MalformedMessage(msg)
        token = self.pending.pop(message.request_id, None)
        if token is not None:
            return token, message
        if message.request_id == 0 and isinstance(message, ErrorReply):
            return None, message
        return None

    def forget(self, request_id: int) -> T | None:
        """Stop waiting for ``request_id``'s answer (it timed out); return its token."""
        return self.pending.pop(request_id, None)

    def forget_all(self) -> list[T]:
        """Stop waiting for every answer (the connection ended); return their tokens."""
        tokens = list(self.pending.values())
        self.pending.clear()
        return tokens
