"""Worker processes that a node's event loop talks to in frames over a socket pair.

The operator moves two jobs off its event loop into child processes: the
signature checks (``node.pipeline.verifier``) and the block appends
(``node.pipeline.store_writer``). Both talk to their child the same way:

- ``spawn`` starts the child (``spawn`` start method: the node has threads,
  so never ``fork``) with its end of a socket pair;
- the child reads and writes frames (a 4-byte length, then the body, as on
  the wire: ``node.wire.frames``) with the blocking ``send_frame`` and
  ``recv_frame``, and returns when the parent's end closes (EOF);
- the parent takes its end into the event loop with ``link``, as a
  ``FrameProtocol``: writes never block the loop, and answers arrive as
  frames.

A child ignores SIGINT: a Ctrl-C on the terminal reaches the whole process
group, and the child must finish its work and exit when its parent closes
the socket (or dies), not in the middle of a block append.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import signal
import socket
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import TypeVar

from node.wire.frames import FrameDecoder, frame
from node.wire.transport import FrameProtocol
from node.wire.transport import recv_frame as recv_wire_frame

P = TypeVar("P", bound=FrameProtocol)


def spawn(
    target: Callable[..., None], args: tuple[object, ...], name: str
) -> tuple[BaseProcess, socket.socket]:
    """Start ``target(child_end, *args)`` in a new process; return it and the parent's end."""
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe(duplex=True)  # a socket pair on Unix
    process = context.Process(target=target, args=(child, *args), name=name, daemon=True)
    process.start()
    child.close()
    return process, _socket_of(parent)


def child_socket(conn: Connection) -> socket.socket:
    """In the child: its end of the pair as a blocking socket; SIGINT ignored (see above)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    return _socket_of(conn)


def _socket_of(conn: Connection) -> socket.socket:
    sock = socket.socket(fileno=os.dup(conn.fileno()))
    conn.close()
    sock.setblocking(True)
    return sock


# Frames between a node and its own children: not limited by the wire's frame
# size (a block of any size the node made must reach its store writer).
MAX_CHILD_FRAME = (1 << 32) - 1


def send_frame(sock: socket.socket, body: bytes) -> None:
    """Write one frame (blocking)."""
    sock.sendall(frame(body, MAX_CHILD_FRAME))


def recv_frame(sock: socket.socket) -> bytes:
    """Read one frame's body (blocking), and not a byte past it.

    Nothing is read ahead: the parent hands its end to the event loop after
    reading the child's first frame.

    Raises:
        EOFError: the other end closed.
    """
    return recv_wire_frame(sock, FrameDecoder(MAX_CHILD_FRAME))


async def link(sock: socket.socket, protocol: Callable[[], P]) -> P:
    """Take the parent's end into the running event loop as ``protocol()``."""
    loop = asyncio.get_running_loop()
    _, made = await loop.connect_accepted_socket(protocol, sock)
    return made


def stop(process: BaseProcess, sock: socket.socket, *, timeout: float = 10.0) -> None:
    """EOF to the child now (not at the loop's next turn), then wait for it to exit."""
    with contextlib.suppress(OSError):  # already closed
        sock.shutdown(socket.SHUT_RDWR)
    process.join(timeout=timeout)
    if process.is_alive():
        process.kill()
        process.join()
