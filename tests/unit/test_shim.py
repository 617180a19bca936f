"""The shim's pieces that need no containerd: argv, socket address, grouping, the hand-encoded
DeleteResponse, stdio from FIFOs (real ones)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from shim_v2 import main
from shim_v2.proto.task_pb2 import DeleteResponse
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
    m = DeleteResponse(pid=pid, exit_status=status)
    m.exited_at.FromNanoseconds(ns)
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
