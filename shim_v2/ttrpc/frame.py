"""TTRPC framing (ttrpc 1.1.1, channel.go): a 10-byte header, then the body.

Header: length (uint32, big-endian, body only, at most 4 MiB), stream id (uint32, big-endian;
odd for client-initiated streams), type (1 request, 2 response), flags (0).
"""

from __future__ import annotations

import struct

HEADER = struct.Struct(">IIBB")
HEADER_SIZE = HEADER.size  # 10
MAX_BODY = 4 << 20
REQUEST = 1
RESPONSE = 2


class FrameError(Exception):
    """The byte stream cannot be framed any more: the connection must be closed."""


def encode(stream_id: int, ftype: int, body: bytes, flags: int = 0) -> bytes:
    if len(body) > MAX_BODY:
        raise FrameError(f"message of {len(body)} bytes exceeds the 4 MiB frame limit")
    return HEADER.pack(len(body), stream_id, ftype, flags) + body


class Decoder:
    """Frames out of a byte stream that arrives in arbitrary pieces.

    An oversized frame is not a framing error: its body is skipped (as ttrpc's Go server
    discards it) and reported as `(stream_id, ftype, flags, None)`, so that the caller can
    answer ResourceExhausted and carry on with the next frame.
    """

    __slots__ = ("_buf", "_skip")

    def __init__(self) -> None:
        self._buf = bytearray()
        self._skip = 0

    def feed(self, data: bytes) -> list[tuple[int, int, int, bytes | None]]:
        buf = self._buf
        if self._skip:
            n = min(self._skip, len(data))
            self._skip -= n
            data = data[n:]
        buf += data
        out: list[tuple[int, int, int, bytes | None]] = []
        while len(buf) >= HEADER_SIZE:
            length, sid, ftype, flags = HEADER.unpack_from(buf)
            if length > MAX_BODY:
                avail = len(buf) - HEADER_SIZE
                take = min(avail, length)
                del buf[: HEADER_SIZE + take]
                self._skip = length - take
                out.append((sid, ftype, flags, None))
                if self._skip:
                    break
                continue
            if len(buf) - HEADER_SIZE < length:
                break
            body = bytes(buf[HEADER_SIZE : HEADER_SIZE + length])
            del buf[: HEADER_SIZE + length]
            out.append((sid, ftype, flags, body))
        return out

    def pending(self) -> int:
        """Bytes of an incomplete frame held (a peer that closes mid-frame left these)."""
        return len(self._buf) + self._skip
