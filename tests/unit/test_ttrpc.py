"""shim_v2.ttrpc against itself over real unix sockets, and the wire bytes ttrpc 1.1.1 sends.

The byte-level expectations (frame header, success with no status, the error envelope)
are the ones observed between containerd 1.6.20 and the Go runc shim
(../shared/harness/shim-v2-protocol.md section 3).
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shim_v2.ttrpc import Client, Future, Loop, Server, TTRPCError, codes, frame
from shim_v2.ttrpc.messages import Request, Response

SVC = "test.v1.Echo"


class Env:
    def __init__(self, tmp: str) -> None:
        self.loop = Loop()
        self.server = Server(self.loop)
        self.waiters: list[Future] = []
        self.server.register(
            SVC,
            {
                "Echo": lambda ctx, req: req,
                "Meta": lambda ctx, req: repr(sorted(ctx.metadata.items())).encode(),
                "Fail": self._fail,
                "Crash": lambda ctx, req: 1 / 0,
                "Wait": self._wait,
                "Release": self._release,
            },
        )
        self.path = os.path.join(tmp, "s.sock")
        ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        ls.bind(self.path)
        ls.listen(16)
        self.server.listen(ls)

    def _fail(self, ctx: object, req: bytes) -> bytes:
        raise TTRPCError(codes.NOT_FOUND, "container not created")

    def _wait(self, ctx: object, req: bytes) -> Future:
        f = Future()
        self.waiters.append(f)
        return f

    def _release(self, ctx: object, req: bytes) -> bytes:
        for f in self.waiters:
            f.set_result(b"released:" + req)
        self.waiters.clear()
        return b""

    def client(self) -> Client:
        return Client.connect(self.loop, "unix://" + self.path)

    def raw(self) -> socket.socket:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(self.path)
        s.setblocking(False)
        return s

    def pump(self, rounds: int = 20) -> None:
        for _ in range(rounds):
            self.loop.run_once(0.005)


@pytest.fixture
def env(tmp_path: os.PathLike) -> Iterator[Env]:
    e = Env(str(tmp_path))
    yield e
    e.server.close()
    e.loop.close()
    assert e.loop.errors == []  # no callback failed (the loop would only have logged it)


def _send(env: Env, s: socket.socket, data: bytes) -> None:
    """All of data on a non-blocking socket, running the loop while the server catches up."""
    view = memoryview(data)
    while view:
        try:
            view = view[s.send(view) :]
        except BlockingIOError:
            env.loop.run_once(0.001)


def _read_frames(env: Env, s: socket.socket, want: int) -> list[tuple[int, int, bytes]]:
    dec = frame.Decoder()
    out: list[tuple[int, int, bytes]] = []
    for _ in range(400):
        env.loop.run_once(0.005)
        try:
            data = s.recv(1 << 16)
        except BlockingIOError:
            continue
        if not data:
            break
        out += [(sid, ft, body) for sid, ft, _f, body in dec.feed(data)]
        if len(out) >= want:
            break
    return out


def test_round_trip_and_metadata(env: Env) -> None:
    c = env.client()
    assert c.call_sync(SVC, "Echo", b"hello") == b"hello"
    assert c.call_sync(SVC, "Echo", b"") == b""
    out = c.call_sync(SVC, "Meta", b"", metadata={"X-Key": "v"})
    assert out == repr([("x-key", "v")]).encode()


def test_error_codes(env: Env) -> None:
    c = env.client()
    with pytest.raises(TTRPCError) as e:
        c.call_sync(SVC, "Fail", b"")
    assert (e.value.code, e.value.message) == (codes.NOT_FOUND, "container not created")
    with pytest.raises(TTRPCError) as e:
        c.call_sync(SVC, "Crash", b"")
    assert e.value.code == codes.UNKNOWN and "division" in e.value.message
    with pytest.raises(TTRPCError) as e:
        c.call_sync("no.Such", "X", b"")
    assert (e.value.code, e.value.message) == (codes.UNIMPLEMENTED, "service no.Such")
    with pytest.raises(TTRPCError) as e:
        c.call_sync(SVC, "Nope", b"")
    assert (e.value.code, e.value.message) == (codes.UNIMPLEMENTED, "method Nope")
    assert c.call_sync(SVC, "Echo", b"still fine") == b"still fine"


def test_wire_bytes_as_the_go_server_sends_them(env: Env) -> None:
    s = env.raw()
    req = Request(service=SVC, method="Echo", payload=b"").SerializeToString()
    s.send(struct.pack(">IIBB", len(req), 1, 1, 0) + req)
    req = Request(service=SVC, method="Fail").SerializeToString()
    s.send(struct.pack(">IIBB", len(req), 3, 1, 0) + req)
    got = dict((sid, (ft, body)) for sid, ft, body in _read_frames(env, s, 2))
    assert got[1] == (frame.RESPONSE, b"")  # success: no status, an empty payload: 0 bytes
    # error: only the status (code 5, the message), no payload
    assert got[3] == (frame.RESPONSE, bytes.fromhex("0a19080512") + b"\x15container not created")
    s.close()


def test_blocked_call_does_not_hold_up_others(env: Env) -> None:
    """containerd's Wait stays in flight while Kill/State on the same connection answer."""
    c = env.client()
    waits = [c.call(SVC, "Wait", b"") for _ in range(3)]
    assert c.call_sync(SVC, "Echo", b"meanwhile") == b"meanwhile"
    assert not any(w.done() for w in waits)
    assert c.call_sync(SVC, "Release", b"x") == b""
    for w in waits:
        assert env.loop.run_until(w, 5) == b"released:x"


def test_deadline_from_timeout_nano(env: Env) -> None:
    c = env.client()
    s = env.raw()
    req = Request(service=SVC, method="Wait", timeout_nano=50_000_000).SerializeToString()
    s.send(struct.pack(">IIBB", len(req), 1, 1, 0) + req)
    (sid, _ft, body), = _read_frames(env, s, 1)
    assert sid == 1
    assert Response.FromString(body).status.code == codes.DEADLINE_EXCEEDED
    # the late completion of the expired call sends nothing more, and the server is fine
    assert c.call_sync(SVC, "Release", b"") == b""
    assert c.call_sync(SVC, "Echo", b"ok") == b"ok"
    s.close()


def test_protocol_errors_keep_the_connection(env: Env) -> None:
    s = env.raw()
    # even stream id
    req = Request(service=SVC, method="Echo", payload=b"a").SerializeToString()
    s.send(struct.pack(">IIBB", len(req), 2, 1, 0) + req)
    # a body that is not a Request
    s.send(struct.pack(">IIBB", 3, 5, 1, 0) + b"\xff\xff\xff")
    # a frame over 4 MiB: skipped and answered ResourceExhausted
    big = frame.MAX_BODY + 1
    _send(env, s, struct.pack(">IIBB", big, 7, 1, 0) + b"\0" * big)
    # a frame type that is not a request: ignored
    _send(env, s, struct.pack(">IIBB", 0, 9, 7, 0))
    # and a good request afterwards still works
    _send(env, s, struct.pack(">IIBB", len(req), 11, 1, 0) + req)
    got = {sid: body for sid, _ft, body in _read_frames(env, s, 4)}
    assert Response.FromString(got[2]).status.code == codes.INVALID_ARGUMENT
    assert Response.FromString(got[5]).status.code == codes.INVALID_ARGUMENT
    assert Response.FromString(got[7]).status.code == codes.RESOURCE_EXHAUSTED
    assert 9 not in got
    assert Response.FromString(got[11]).payload == b"a"
    s.close()


def test_client_sees_a_closed_server(env: Env) -> None:
    c = env.client()
    w = c.call(SVC, "Wait", b"")
    env.pump()
    env.server.close()
    with pytest.raises(TTRPCError) as e:
        env.loop.run_until(w, 5)
    assert e.value.code == codes.UNAVAILABLE


def test_disconnect_mid_call_does_not_wedge_the_server(env: Env) -> None:
    c = env.client()
    c.call(SVC, "Wait", b"")
    env.pump()
    c.close()
    env.pump()
    assert env.server.conns == set()
    assert env.client().call_sync(SVC, "Release", b"") == b""  # the orphan's answer goes nowhere


def test_other_users_are_refused(env: Env) -> None:
    """SO_PEERCRED: a peer with another uid is disconnected at once (as the Go shim)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to connect as another user")
    addr = f"\0pyrunc-ttrpc-test-{os.getpid()}"  # abstract: no file permissions in the way
    ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    ls.bind(addr)
    ls.listen(4)
    env.server.listen(ls)
    pid = os.fork()
    if pid == 0:
        try:
            os.setgid(65534)
            os.setuid(65534)
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(addr)
            req = Request(service=SVC, method="Echo", payload=b"x").SerializeToString()
            try:
                s.sendall(struct.pack(">IIBB", len(req), 1, 1, 0) + req)
                s.settimeout(5)
                os._exit(0 if s.recv(100) == b"" else 1)  # closed without an answer
            except (BrokenPipeError, ConnectionResetError):
                os._exit(0)  # closed before we were done asking
        except BaseException:
            os._exit(2)
    status = None
    for _ in range(1000):
        env.loop.run_once(0.005)
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
    assert os.waitstatus_to_exitcode(status) == 0
    # and our own uid is still served there
    c = Client(env.loop, socket.socket(socket.AF_UNIX, socket.SOCK_STREAM))
    c.sock.setblocking(True)
    c.sock.connect(addr)
    c.sock.setblocking(False)
    assert c.call_sync(SVC, "Echo", b"me") == b"me"


def test_decoder_pieces() -> None:
    data = frame.encode(1, 1, b"abc") + frame.encode(3, 2, b"") + frame.encode(5, 1, b"z" * 70)
    for step in (1, 3, 10, len(data)):
        d = frame.Decoder()
        out = []
        for i in range(0, len(data), step):
            out += d.feed(data[i : i + step])
        assert out == [(1, 1, 0, b"abc"), (3, 2, 0, b""), (5, 1, 0, b"z" * 70)]
        assert d.pending() == 0


_FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

# frames whose header fields are arbitrary but whose length is honest, with bodies that are
# garbage, truncated requests or real ones for services that do and do not exist
_body = st.one_of(
    st.binary(max_size=40),
    st.builds(
        lambda svc, m, p, cut: Request(service=svc, method=m, payload=p).SerializeToString()[cut:],
        st.sampled_from([SVC, "x", ""]),
        st.sampled_from(["Echo", "Fail", "Crash", "Nope", "Release"]),
        st.binary(max_size=16),
        st.integers(0, 3),
    ),
)
_frames = st.lists(
    st.builds(
        lambda sid, ft, fl, body: struct.pack(">IIBB", len(body), sid, ft, fl) + body,
        st.integers(0, 2**32 - 1), st.integers(0, 255), st.integers(0, 255), _body,
    ),
    max_size=8,
)


@_FUZZ
@given(garbage=st.one_of(st.lists(st.binary(max_size=64), max_size=8), _frames))
def test_fuzz_garbage_on_one_connection(env: Env, garbage: list[bytes]) -> None:
    """Arbitrary bytes on one connection: every frame the server sends back is a well-formed
    response, and a second connection's calls are unaffected throughout."""
    good = env.client()
    bad = env.raw()
    for chunk in garbage:
        try:
            bad.send(chunk)
        except OSError:
            break
        env.pump(2)
        assert good.call_sync(SVC, "Echo", chunk) == chunk
        assert env.loop.errors == []
    dec = frame.Decoder()
    while True:
        try:
            data = bad.recv(1 << 16)
        except (BlockingIOError, ConnectionResetError):
            break
        if not data:
            break
        for _sid, ft, _f, body in dec.feed(data):
            assert ft == frame.RESPONSE
            assert body is not None
            Response.FromString(body)
    bad.close()
    good.close()
    env.pump(4)
    assert env.server.conns == set()


def test_a_callback_that_closes_another_ready_fd() -> None:
    """Both pipes are readable in one select(); the first callback closes the second's fd.
    The second callback must not run on the closed fd (the shim died of EBADF this way when
    a process's exit closed its terminal's stdin FIFO in the same batch)."""
    loop = Loop()
    a_r, a_w = os.pipe()
    b_r, b_w = os.pipe()
    os.write(a_w, b"a")
    os.write(b_w, b"b")
    seen: list[bytes] = []

    def on_a() -> None:
        seen.append(os.read(a_r, 1))
        loop.remove_reader(b_r)
        os.close(b_r)
        loop.remove_reader(a_r)

    def on_b() -> None:
        seen.append(os.read(b_r, 1))
        loop.remove_reader(b_r)

    loop.add_reader(a_r, on_a)
    loop.add_reader(b_r, on_b)
    loop.run_once(1.0)
    # whichever ran first, nothing read a closed fd
    assert loop.errors == []
    assert seen in ([b"a"], [b"b", b"a"])
    for fd in (a_r, a_w, b_w):
        os.close(fd)
    loop.close()


def test_a_failing_callback_does_not_stop_the_loop() -> None:
    loop = Loop()
    ran: list[int] = []
    loop.call_soon(lambda: 1 / 0)
    loop.call_soon(lambda: ran.append(1))
    loop.run_once(0)
    assert ran == [1] and isinstance(loop.errors[0], ZeroDivisionError)
    loop.close()
