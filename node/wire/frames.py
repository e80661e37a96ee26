"""Frames, sans I/O: a 4-byte big-endian length, then that many bytes of body.

This module is the one place where a byte stream is cut into frames
(``FrameDecoder``) and where a body gets its length prefix (``frame``,
``HEADER``). It reads no socket and knows no event loop, as h11 does for
HTTP: whoever owns the connection feeds the bytes it received and takes the
complete bodies out. The node's server and asyncio client (through
``node.wire.transport.FrameProtocol``), the blocking client and the worker
processes' socket pairs all decode frames here.

The length is checked against the frame size limit *before* the body is
read, so an oversized frame costs the receiver four bytes, not its body.
"""

from __future__ import annotations

import struct
from typing import Final

from node.errors import FrameTooLarge

HEADER: Final = struct.Struct(">I")
DEFAULT_MAX_FRAME: Final = 8 * 1024 * 1024  # bytes; a full block batch fits well below it


def frame(body: bytes, max_size: int = DEFAULT_MAX_FRAME) -> bytes:
    """Return ``body`` with its length prefix.

    >>> frame(b"abc").hex()
    '00000003616263'

    Raises:
        FrameTooLarge: the body is longer than ``max_size``.
    """
    if len(body) > max_size:
        raise FrameTooLarge(len(body), max_size)
    return HEADER.pack(len(body)) + body


def frame_length(header: bytes, max_size: int) -> int:
    """Return the body length announced by a 4-byte header.

    Raises:
        FrameTooLarge: the announced length exceeds ``max_size``.
    """
    (size,) = HEADER.unpack(header)
    if size > max_size:
        raise FrameTooLarge(size, max_size)
    return int(size)


class FrameDecoder:
    """Bytes in, frame bodies out.

    ``feed`` the bytes as they arrive, in any pieces; ``next_frame`` returns
    each complete body in order, or None until more bytes are needed
    (``needed`` says at least how many). After ``FrameTooLarge`` the stream
    is out of step (the body was not read): nothing after it can be decoded,
    and every later call raises it again.

    >>> decoder = FrameDecoder(16)
    >>> decoder.feed(b"\\x00\\x00\\x00\\x02h")
    >>> decoder.next_frame() is None, decoder.needed
    (True, 1)
    >>> decoder.feed(b"i\\x00")
    >>> decoder.next_frame(), decoder.next_frame(), decoder.needed
    (b'hi', None, 3)
    """

    __slots__ = ("_buffer", "_failed", "_start", "max_frame")

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        self.max_frame = max_frame
        self._buffer = bytearray()
        self._start = 0  # where the next frame begins in the buffer
        self._failed: FrameTooLarge | None = None

    def feed(self, data: bytes) -> None:
        """Add received bytes."""
        self._buffer += data

    @property
    def buffered(self) -> int:
        """Bytes received and not yet returned in a frame."""
        return len(self._buffer) - self._start

    @property
    def needed(self) -> int:
        """At least how many more bytes the next frame needs (0: it is complete)."""
        have = len(self._buffer) - self._start
        if have < HEADER.size:
            return HEADER.size - have
        (size,) = HEADER.unpack_from(self._buffer, self._start)
        return max(0, HEADER.size + int(size) - have)

    def next_frame(self) -> bytes | None:
        """Return the next complete frame body, or None if more bytes are needed.

        Raises:
            FrameTooLarge: the next length prefix exceeds ``max_frame``.
        """
        if self._failed is not None:
            raise self._failed
        buffer = self._buffer
        start = self._start
        if len(buffer) - start >= HEADER.size:
            (size,) = HEADER.unpack_from(buffer, start)
            if size > self.max_frame:
                self._failed = FrameTooLarge(size, self.max_frame)
                raise self._failed
            end = start + HEADER.size + size
            if len(buffer) >= end:
                self._start = end
                return bytes(buffer[start + HEADER.size : end])
        if start:  # keep only the incomplete frame (one copy per read, not per frame)
            del buffer[:start]
            self._start = 0
        return None
