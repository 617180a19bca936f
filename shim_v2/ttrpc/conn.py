"""What a TTRPC server and client connection share: a non-blocking unix socket on the loop,
a frame decoder on the read side and a buffer on the write side."""

from __future__ import annotations

import errno
import struct

# The C module, not `socket`: socket turns every constant into an IntEnum member at import
# (enum and all: ~2 ms and ~0.5 MB of the shim's RSS, on every ungrouped container's path).
# socket.socket objects are _socket.socket subclasses, so callers may pass either.
from _socket import SO_PEERCRED, SOL_SOCKET
from _socket import socket as Socket

from shim_v2.ttrpc import frame
from shim_v2.ttrpc.loop import Loop

_RETRY = (errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR)


def peer_ids(sock: Socket) -> tuple[int, int, int]:
    """(pid, uid, gid) of the process at the other end (SO_PEERCRED)."""
    raw = sock.getsockopt(SOL_SOCKET, SO_PEERCRED, 12)
    return struct.unpack("3i", raw)


class Conn:
    def __init__(self, loop: Loop, sock: Socket) -> None:
        sock.setblocking(False)
        self.loop = loop
        self.sock = sock
        self.fd = sock.fileno()
        self.decoder = frame.Decoder()
        self.wbuf = bytearray()
        self.closed = False
        loop.add_reader(self.fd, self._readable)

    def on_frame(self, sid: int, ftype: int, flags: int, body: bytes | None) -> None:
        raise NotImplementedError

    def on_close(self) -> None:
        """The connection is gone (peer hung up, a read or write failed, or close())."""

    def _readable(self) -> None:
        if self.closed:
            return
        try:
            data = self.sock.recv(1 << 16)
        except OSError as e:
            if e.errno in _RETRY:
                return
            self.close()
            return
        if not data:
            self.close()
            return
        for f in self.decoder.feed(data):
            if self.closed:
                return
            self.on_frame(*f)

    def send_frame(self, sid: int, ftype: int, body: bytes) -> None:
        if self.closed:
            return
        self.wbuf += frame.encode(sid, ftype, body)
        self._flush()

    def _flush(self) -> None:
        while self.wbuf and not self.closed:
            try:
                n = self.sock.send(self.wbuf)
            except OSError as e:
                if e.errno in _RETRY:
                    self.loop.add_writer(self.fd, self._flush)
                    return
                self.close()
                return
            del self.wbuf[:n]
        if not self.closed:
            self.loop.remove_writer(self.fd)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.loop.remove_reader(self.fd)
        self.loop.remove_writer(self.fd)
        self.sock.close()
        self.on_close()
