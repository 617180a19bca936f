"""The shim's pieces that need no containerd: argv, socket address, grouping, the hand-encoded
DeleteResponse, stdio from FIFOs (real ones)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from shim_v2 import main
from shim_v2.stdio import Stdio
from shim_v2.ttrpc import TTRPCError, codes


def test_go_style_flags() -> None:
    argv = ["-namespace", "ns1", "-address", "/x/c.sock", "-publish-binary", "/usr/bin/containerd",
            "-id", "c1", "-debug", "start"]
    opts, rest = main.parse(argv)
    assert opts == {"namespace": "ns1", "address": "/x/c.sock",
                    "publish-binary": "/usr/bin/containerd", "id": "c1", "debug": "true"}
    assert rest == ["start"]
    opts, rest = main.parse(["-id=c2", "--bundle", "/b", "delete"])
    assert opts == {"id": "c2", "bundle": "/b"} and rest == ["delete"]


def test_socket_address_as_containerd_computes_it() -> None:
    want = hashlib.sha256(b"/x/c.sock/ns1/grp").hexdigest()
    assert main.socket_address("/x/c.sock", "ns1", "grp") == f"unix:///run/containerd/s/{want}"


def test_group_key_precedence(tmp_path: Path) -> None:
    cfg = tmp_path / "config.json"
    assert main.group_key(str(tmp_path), "c1") == "c1"  # no config at all
    cfg.write_text(json.dumps({"annotations": {"io.kubernetes.cri.sandbox-id": "sb"}}))
    assert main.group_key(str(tmp_path), "c1") == "sb"
    cfg.write_text(json.dumps({"annotations": {"io.kubernetes.cri.sandbox-id": "sb",
                                               "io.containerd.runc.v2.group": "g"}}))
    assert main.group_key(str(tmp_path), "c1") == "g"


@pytest.mark.parametrize(
    "pid,status,ns", [(0, 0, 0), (1234, 137, 1_764_750_000_123_456_789), (1, 0, 5 * 10**9)]
)
def test_hand_encoded_delete_response_is_protobufs(pid: int, status: int, ns: int) -> None:
    from shim_v2.messages import T, timestamp

    m = T.DeleteResponse(pid=pid, exit_status=status, exited_at=timestamp(ns))
    assert main.delete_response(pid, status, ns) == m.SerializeToString()


def test_stdio_from_fifos(tmp_path: Path) -> None:
    """The container writes into the client's FIFOs directly; stdin reaches EOF only after
    close_stdin() and the client's own writer are both gone."""
    paths = {n: str(tmp_path / n) for n in ("in", "out", "err")}
    for p in paths.values():
        os.mkfifo(p)
    client_out = os.open(paths["out"], os.O_RDONLY | os.O_NONBLOCK)
    client_in = os.open(paths["in"], os.O_RDWR)  # the client's writer (and a reader, to open)
    s = Stdio(paths["in"], paths["out"], paths["err"], False)
    try:
        os.write(s.proc[1], b"hello")
        assert os.read(client_out, 10) == b"hello"
        os.write(client_in, b"x")
        assert os.read(s.proc[0], 1) == b"x"
        os.close(client_in)
        os.set_blocking(s.proc[0], False)
        with pytest.raises(BlockingIOError):  # our own writer keeps it open: no EOF yet
            os.read(s.proc[0], 1)
        s.close_stdin()
        assert os.read(s.proc[0], 1) == b""  # EOF now
    finally:
        s.close()
        os.close(client_out)
    assert s.fds == []


def test_stdio_unknown_scheme(tmp_path: Path) -> None:
    with pytest.raises(TTRPCError) as e:
        Stdio("", "gopher://x", "", False)
    assert e.value.code == codes.UNIMPLEMENTED


def test_stdio_file_uri_gets_both_streams(tmp_path: Path) -> None:
    log = tmp_path / "sub" / "log"
    uri = f"file://{log}"
    s = Stdio("", uri, uri, False)
    try:
        os.write(s.proc[1], b"out ")
        os.write(s.proc[2], b"err")
    finally:
        s.close()
    assert log.read_bytes() == b"out err"


def test_fast_message_classes_match_the_generated_ones() -> None:
    """pbload's upb path (the shim's default) and protobuf's generated modules (its fallback,
    forced here in a second interpreter: one process cannot hold both) give the same bytes."""
    import subprocess
    import sys

    from google.protobuf.internal import api_implementation

    from shim_v2 import messages
    from shim_v2.ttrpc import messages as tm

    if api_implementation.Type() == "upb":
        assert messages.M.fast and tm.M.fast

    def build(m: object, t: object) -> list[bytes]:
        ts = m.timestamp(1_764_750_000_123_456_789)
        exit_ = m.ev.TaskExit(container_id="c", id="e", pid=7, exit_status=137, exited_at=ts)
        req = m.T.CreateTaskRequest(id="c", bundle="/b", terminal=True, stdout="/f")
        req.rootfs.append(m.types.Mount(type="overlay", source="overlay", options=["ro"]))
        r = t.Request(service="s", method="m", payload=b"p", timeout_nano=5)
        return [exit_.SerializeToString(), req.SerializeToString(), r.SerializeToString()]

    import inspect

    src = inspect.getsource(build).replace("    def build", "def build", 1)
    src = "\n".join(line[4:] if line.startswith("    ") else line for line in src.splitlines())
    code = (
        src + "\nfrom shim_v2 import messages as m\nfrom shim_v2.ttrpc import messages as t\n"
        "assert not m.M.fast and not t.M.fast\nprint([b.hex() for b in build(m, t)])\n"
    )
    env = dict(os.environ, PYRUNC_PB_GENERATED="1")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str([b.hex() for b in build(messages, tm)])


def test_metrics_v1_and_v2_from_runc_stats() -> None:
    """Stats: runc's stats JSON as containerd's metrics types, field by field."""
    from shim_v2.messages import metrics, metrics_v2
    from shim_v2.service import metrics_any

    st = {
        "cpu": {"usage": {"total": 5_000_000, "kernel": 2_000_000, "user": 3_000_000,
                          "percpu": [4_000_000, 1_000_000]},
                "throttling": {"periods": 7, "throttledPeriods": 2, "throttledTime": 9000}},
        "memory": {"cache": 11, "usage": {"usage": 4096, "limit": 8192, "max": 5000,
                                          "failcnt": 1},
                   "swap": {"usage": 6144, "limit": 16384}, "raw": {"rss": 12, "anon": 13}},
        "pids": {"current": 3, "limit": 10},
        "memory_events": {"oom": 1, "oom_kill": 1},
    }
    a = metrics_any(st, v2=False)
    assert a.type_url == "io.containerd.cgroups.v1.Metrics"
    m = metrics.Metrics.FromString(a.value)
    assert (m.pids.current, m.pids.limit) == (3, 10)
    assert list(m.cpu.usage.per_cpu) == [4_000_000, 1_000_000]
    assert m.cpu.throttling.throttled_time == 9000
    assert (m.memory.usage.usage, m.memory.usage.limit, m.memory.rss) == (4096, 8192, 12)
    a = metrics_any(st, v2=True)
    assert a.type_url == "io.containerd.cgroups.v2.Metrics"
    m2 = metrics_v2.Metrics.FromString(a.value)
    assert (m2.cpu.usage_usec, m2.cpu.user_usec, m2.cpu.throttled_usec) == (5000, 3000, 9)
    assert (m2.memory.usage, m2.memory.usage_limit, m2.memory.anon) == (4096, 8192, 13)
    assert m2.memory.swap_usage == 2048  # memory+swap minus memory
    assert m2.memory_events.oom_kill == 1


def _launcher() -> str:
    import sys

    path = os.path.join(os.path.dirname(sys.executable), "containerd-shim-pyrunc-v2")
    if not os.path.exists(path) or open(path, "rb").read(4) != b"\x7fELF":
        pytest.skip("the compiled launcher is not installed (no C compiler at install time)")
    return path


def test_launcher_answers_delete_itself_when_nothing_is_left(tmp_path: Path) -> None:
    """containerd runs `shim delete` after every disconnect: with no pyrunc state, no saved
    runtime options and no rootfs mount, the C launcher answers without starting Python.
    Its bytes decode as protobuf's DeleteResponse, exit status 137, exited_at now."""
    import subprocess
    import time

    from shim_v2.messages import T

    (tmp_path / "rootfs").mkdir()
    t0 = time.time()
    p = subprocess.run(
        [_launcher(), "-namespace", "no-such-ns", "-id", "nothing", "-bundle", str(tmp_path),
         "delete"], capture_output=True, timeout=10,
    )
    assert p.returncode == 0 and p.stderr == b""
    r = T.DeleteResponse.FromString(p.stdout)
    assert r.exit_status == 137 and r.pid == 0
    assert abs(r.exited_at.seconds - t0) < 5


def test_launcher_hands_leftovers_to_python(tmp_path: Path) -> None:
    """A bundle with saved runtime-binary options is not "nothing left": the Python side runs
    (here it reports the missing binary on stderr) and still answers containerd."""
    import subprocess

    from shim_v2.messages import T

    (tmp_path / "pyrunc-shim-options.json").write_text('{"BinaryName": "/nonexistent/runc"}')
    p = subprocess.run(
        [_launcher(), "-namespace", "no-such-ns", "-id", "left", "-bundle", str(tmp_path),
         "delete"], capture_output=True, timeout=30,
    )
    assert p.returncode == 0
    assert b"delete left:" in p.stderr
    assert T.DeleteResponse.FromString(p.stdout).exit_status == 137


def test_daemon_imports_only_what_it_uses() -> None:
    """The shim's daemon starts on every ungrouped container's critical path: it must not
    pull in asyncio, json, re, typing, protobuf's well-known-type helpers (datetime), or
    signal/socket (their IntEnums: enum, ~2 ms and ~0.5 MB)."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from shim_v2.ttrpc import pbload\n"
        "pbload.without_wkt_helpers()\n"
        "import shim_v2.main, shim_v2.service, shim_v2.events, shim_v2.runtime\n"
        "from shim_v2 import messages\n"
        "messages.T.CreateTaskRequest; messages.timestamp(1)\n"
        "bad = {'asyncio', 'json', 're', 'typing', 'datetime', 'ssl', 'subprocess',\n"
        "       'enum', 'signal', 'socket'}\n"
        "print(sorted(bad & set(sys.modules)), messages.M.fast)\n"
    )
    site = [p for p in sys.path if p.endswith("site-packages")]
    p = subprocess.run(
        [sys.executable, "-I", "-S", "-c", f"import sys; sys.path[:0] = {site!r}\n" + code],
        capture_output=True, text=True,
    )
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "[] True", p.stdout
