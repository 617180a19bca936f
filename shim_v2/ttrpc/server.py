"""The TTRPC server: services of named methods, many requests in flight per connection.

A handler gets (Context, request bytes) and returns the response bytes, or a Future of them
when the answer must wait (containerd's `Wait` blocks until a process exits while `Kill`,
`State` and the rest arrive on the same connection and must be answered meanwhile: the Go
server runs every request in its own goroutine). Failures are TTRPCError(code, message);
any other exception becomes Unknown with its text, as the Go server reports plain errors.
Protocol errors follow ttrpc 1.1.1: an oversized frame is skipped and answered
ResourceExhausted, an undecodable request or an even stream id InvalidArgument, an unknown
service or method Unimplemented; non-request frames are ignored. None of them closes the
connection, and nothing on one connection affects another.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable

from google.protobuf.message import DecodeError

from shim_v2.ttrpc import codes, frame
from shim_v2.ttrpc.codes import TTRPCError
from shim_v2.ttrpc.conn import Conn, Socket, peer_ids
from shim_v2.ttrpc.loop import Future, Loop, Timer
from shim_v2.ttrpc.messages import Request, Response, Status


class Context:
    """What a handler knows about its call besides the request."""

    __slots__ = ("service", "method", "metadata", "deadline", "stream_id", "conn")

    def __init__(self, req: Request, sid: int, conn: ServerConn) -> None:
        self.service = req.service
        self.method = req.method
        self.metadata = {kv.key: kv.value for kv in req.metadata}
        self.deadline = (
            time.monotonic() + req.timeout_nano / 1e9 if req.timeout_nano > 0 else None
        )
        self.stream_id = sid
        self.conn = conn


Handler = Callable[[Context, bytes], bytes | Future]


class Server:
    def __init__(self, loop: Loop, same_user_only: bool = True) -> None:
        self.loop = loop
        self.services: dict[str, dict[str, Handler]] = {}
        self.conns: set[ServerConn] = set()
        self.listeners: list[Socket] = []
        self.same_user_only = same_user_only
        self.on_disconnect: Callable[[ServerConn], None] | None = None

    def register(self, service: str, methods: dict[str, Handler]) -> None:
        self.services.setdefault(service, {}).update(methods)

    def listen(self, sock: Socket) -> None:
        """Serve on a bound, listening unix socket (e.g. fd 3 from `shim start`)."""
        sock.setblocking(False)
        self.listeners.append(sock)
        self.loop.add_reader(sock.fileno(), lambda: self._accept(sock))

    def _accept(self, lsock: Socket) -> None:
        try:
            fd, _ = lsock._accept()  # (accept4 with SOCK_CLOEXEC)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as e:
            print(f"ttrpc: accept: {e}", file=sys.stderr)
            return
        sock = Socket(fileno=fd)
        if self.same_user_only:
            # as the Go shim: only a peer with our own uid and gid may talk to us
            _pid, uid, gid = peer_ids(sock)
            if uid != os.geteuid() or gid != os.getegid():
                sock.close()
                return
        self.conns.add(ServerConn(self, sock))

    def close(self) -> None:
        for s in self.listeners:
            self.loop.remove_reader(s.fileno())
            s.close()
        self.listeners = []
        for c in list(self.conns):
            c.close()


class ServerConn(Conn):
    def __init__(self, server: Server, sock: Socket) -> None:
        self.server = server
        self.inflight: dict[int, Timer | None] = {}
        super().__init__(server.loop, sock)

    def on_frame(self, sid: int, ftype: int, flags: int, body: bytes | None) -> None:
        if body is None:
            self.send_status(
                sid, codes.RESOURCE_EXHAUSTED,
                f"message length exceeds maximum message size of {frame.MAX_BODY}",
            )
            return
        if ftype != frame.REQUEST:
            return  # (ttrpc ignores other types, for future compatibility)
        try:
            req = Request.FromString(body)
        except DecodeError as e:
            self.send_status(sid, codes.INVALID_ARGUMENT, f"unmarshal request error: {e}")
            return
        if sid % 2 != 1:
            self.send_status(
                sid, codes.INVALID_ARGUMENT, "StreamID must be odd for client initiated streams"
            )
            return
        methods = self.server.services.get(req.service)
        if methods is None:
            self.send_status(sid, codes.UNIMPLEMENTED, f"service {req.service}")
            return
        handler = methods.get(req.method)
        if handler is None:
            self.send_status(sid, codes.UNIMPLEMENTED, f"method {req.method}")
            return
        ctx = Context(req, sid, self)
        try:
            res = handler(ctx, req.payload)
        except TTRPCError as e:
            self.send_status(sid, e.code, e.message)
            return
        except Exception as e:  # noqa: BLE001 -- a plain error, as the Go server reports it
            self.send_status(sid, codes.UNKNOWN, str(e) or type(e).__name__)
            return
        if not isinstance(res, Future):
            self.send_payload(sid, res)
            return
        timer = None
        if ctx.deadline is not None:
            timer = self.loop.call_later(
                max(0.0, ctx.deadline - time.monotonic()),
                lambda: self._expire(sid),
            )
        self.inflight[sid] = timer
        res.add_done_callback(lambda f: self._finish(sid, f))

    def _expire(self, sid: int) -> None:
        if sid in self.inflight:
            del self.inflight[sid]
            self.send_status(sid, codes.DEADLINE_EXCEEDED, "context deadline exceeded")

    def _finish(self, sid: int, fut: Future) -> None:
        if sid not in self.inflight:
            return  # expired, or the connection went away
        timer = self.inflight.pop(sid)
        if timer is not None:
            timer.cancel()
        exc = fut.exception()
        if exc is None:
            self.send_payload(sid, fut.result())
        elif isinstance(exc, TTRPCError):
            self.send_status(sid, exc.code, exc.message)
        else:
            self.send_status(sid, codes.UNKNOWN, str(exc) or type(exc).__name__)

    def send_payload(self, sid: int, payload: bytes) -> None:
        # success: no status at all (what the Go server sends; Empty is a 0-byte body)
        self.send_frame(sid, frame.RESPONSE, Response(payload=payload).SerializeToString())

    def send_status(self, sid: int, code: int, message: str) -> None:
        resp = Response(status=Status(code=code, message=message))
        self.send_frame(sid, frame.RESPONSE, resp.SerializeToString())

    def on_close(self) -> None:
        for timer in self.inflight.values():
            if timer is not None:
                timer.cancel()
        self.inflight.clear()
        self.server.conns.discard(self)
        if self.server.on_disconnect is not None:
            self.server.on_disconnect(self)
