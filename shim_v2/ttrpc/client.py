"""The TTRPC client: calls as Futures over one connection, answered in any order.

The shim publishes its events through it (containerd's `Forward` on TTRPC_ADDRESS), and the
tests drive servers with it. `call_sync` runs the loop until the answer arrives, for callers
that have nothing else to do meanwhile.
"""

from __future__ import annotations

from _socket import AF_UNIX, SOCK_CLOEXEC, SOCK_STREAM

from google.protobuf.message import DecodeError

from shim_v2.ttrpc import codes, frame
from shim_v2.ttrpc.codes import TTRPCError
from shim_v2.ttrpc.conn import Conn, Socket
from shim_v2.ttrpc.loop import Future, Loop, Timer
from shim_v2.ttrpc.messages import KeyValue, Request, Response


class Client(Conn):
    def __init__(self, loop: Loop, sock: Socket) -> None:
        self.pending: dict[int, tuple[Future, Timer | None]] = {}
        self.next_id = 1
        super().__init__(loop, sock)

    @classmethod
    def connect(cls, loop: Loop, path: str) -> Client:
        """A unix socket path; a leading "unix://" is dropped, "\\0..." is abstract."""
        if path.startswith("unix://"):
            path = path[len("unix://") :]
        s = Socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC)
        try:
            s.connect(path)
        except OSError:
            s.close()
            raise
        return cls(loop, s)

    def call(
        self,
        service: str,
        method: str,
        payload: bytes,
        timeout: float | None = None,
        metadata: dict[str, str] | None = None,
    ) -> Future:
        """A Future of the response bytes; TTRPCError for a status or a lost connection.
        timeout is sent to the server as its deadline and also bounds our own wait."""
        fut = Future()
        if self.closed:
            fut.set_exception(TTRPCError(codes.UNAVAILABLE, "ttrpc: closed"))
            return fut
        sid = self.next_id
        self.next_id += 2
        req = Request(service=service, method=method, payload=payload)
        if timeout:
            req.timeout_nano = int(timeout * 1e9)
        for k, v in (metadata or {}).items():
            req.metadata.append(KeyValue(key=k.lower(), value=v))
        timer = None
        if timeout:
            timer = self.loop.call_later(timeout, lambda: self._expire(sid))
        self.pending[sid] = (fut, timer)
        self.send_frame(sid, frame.REQUEST, req.SerializeToString())
        return fut

    def call_sync(self, service: str, method: str, payload: bytes, timeout: float = 10.0,
                  metadata: dict[str, str] | None = None) -> bytes:
        fut = self.call(service, method, payload, timeout, metadata)
        return self.loop.run_until(fut)

    def _expire(self, sid: int) -> None:
        p = self.pending.pop(sid, None)
        if p is not None:
            p[0].set_exception(TTRPCError(codes.DEADLINE_EXCEEDED, "context deadline exceeded"))

    def on_frame(self, sid: int, ftype: int, flags: int, body: bytes | None) -> None:
        if ftype != frame.RESPONSE:
            return
        p = self.pending.pop(sid, None)
        if p is None:
            return  # expired already, or not ours
        fut, timer = p
        if timer is not None:
            timer.cancel()
        if body is None:
            fut.set_exception(TTRPCError(codes.RESOURCE_EXHAUSTED, "response over 4 MiB"))
            return
        try:
            resp = Response.FromString(body)
        except DecodeError as e:
            fut.set_exception(TTRPCError(codes.INTERNAL, f"unmarshal response error: {e}"))
            return
        if resp.HasField("status") and resp.status.code != codes.OK:
            fut.set_exception(TTRPCError(resp.status.code, resp.status.message))
        else:
            fut.set_result(resp.payload)

    def on_close(self) -> None:
        pending, self.pending = self.pending, {}
        for fut, timer in pending.values():
            if timer is not None:
                timer.cancel()
            fut.set_exception(TTRPCError(codes.UNAVAILABLE, "ttrpc: closed"))
