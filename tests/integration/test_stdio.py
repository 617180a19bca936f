"""The container's terminal (console socket) and file descriptors (--preserve-fds, leaks)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from harness import Bundle, Runtime, read_pty_until_eof, unique_id

pytestmark = pytest.mark.integration


def test_console_socket_terminal(rt: Runtime, bundle: Bundle, short_tmp: Path) -> None:
    """With process.terminal the runtime sends a pty master over --console-socket; the
    container's stdio is the slave, /dev/pts/0 of its own devpts."""
    sock_path = str(short_tmp / "console.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(sock_path)
    srv.listen(1)
    srv.settimeout(20)
    bundle.process["terminal"] = True
    bundle.sh("tty; [ -t 0 ] && [ -t 1 ] && [ -t 2 ] && echo all-tty; stty size")
    bundle.process["consoleSize"] = {"height": 40, "width": 132}
    bundle.save()
    cid = unique_id()
    rt.ids.append(cid)
    log = short_tmp / "create.err"
    with open(log, "w") as err:
        p = subprocess.Popen(
            rt.argv("create", "--bundle", str(bundle.path), "--console-socket", sock_path, cid),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    master = -1
    try:
        conn, _ = srv.accept()
        with conn:
            _msg, fds, _flags, _addr = socket.recv_fds(conn, 1024, 4)
        assert len(fds) == 1
        master = fds[0]
        assert p.wait(timeout=30) == 0, log.read_text()
        assert os.isatty(master)
        assert rt.cmd("start", cid).rc == 0
        out = read_pty_until_eof(master, 20).decode().replace("\r\n", "\n")
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        if master >= 0:
            os.close(master)
        srv.close()
    assert out.splitlines() == ["/dev/pts/0", "all-tty", "40 132"]


def test_terminal_without_console_socket_fails(rt: Runtime, bundle: Bundle) -> None:
    """create cannot hand out a terminal without a console socket: refuse, leave nothing."""
    bundle.process["terminal"] = True
    bundle.args("true")
    cid = unique_id()
    r = rt.create(cid, bundle)
    assert r.rc != 0
    assert "console" in r.err
    assert not (rt.root / cid).exists()


def test_console_socket_without_terminal_fails(
    rt: Runtime, bundle: Bundle, short_tmp: Path
) -> None:
    """A console socket for a non-terminal container is a caller error (as in runc)."""
    bundle.args("true")
    cid = unique_id()
    r = rt.create(cid, bundle, "--console-socket", str(short_tmp / "nothing.sock"))
    assert r.rc != 0
    assert not (rt.root / cid).exists()


_PLACE_FDS = """
import os, sys
a, b = os.dup(int(sys.argv[1])), os.dup(int(sys.argv[2]))
os.dup2(a, 3)
os.dup2(b, 4)
os.set_inheritable(3, True)
os.set_inheritable(4, True)
if os.environ.get("LISTEN_PID") == "self":  # socket activation aimed at the runtime itself
    os.environ["LISTEN_PID"] = str(os.getpid())
for fd in {a, b, int(sys.argv[1]), int(sys.argv[2])} - {3, 4}:
    os.close(fd)
os.execv(sys.argv[3], sys.argv[3:])
"""


def test_preserve_fds(rt: Runtime, bundle: Bundle) -> None:
    """--preserve-fds 1 passes fd 3 into the container; fd 4, inherited without CLOEXEC but
    not preserved, is closed before the user process runs."""
    r3, w3 = os.pipe()
    r4, w4 = os.pipe()
    cid = unique_id()
    bundle.sh(
        "echo through-fd3 > /proc/self/fd/3;"
        " [ -e /proc/$$/fd/4 ] && echo fd4-leaked || echo fd4-closed; ls /proc/$$/fd; true"
    )
    bundle.save()
    rt.ids.append(cid)
    try:
        p = subprocess.run(
            [
                sys.executable,
                "-c",
                _PLACE_FDS,
                str(w3),
                str(w4),
                *rt.argv("run", "--preserve-fds", "1", "--bundle", str(bundle.path), cid),
            ],
            pass_fds=(w3, w4),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
        )
        os.close(w3)
        os.close(w4)
        w3 = w4 = -1
        assert p.returncode == 0, p
        assert os.read(r3, 100) == b"through-fd3\n"
        lines = p.stdout.splitlines()
        assert lines[0] == "fd4-closed"
        assert sorted(int(x) for x in lines[1:]) == [0, 1, 2, 3]
    finally:
        for fd in (r3, w3, r4, w4):
            if fd >= 0:
                os.close(fd)


def test_inherited_fds_not_leaked(rt: Runtime, bundle: Bundle) -> None:
    """Without --preserve-fds only stdio reaches the container, whatever the caller leaked."""
    r, w = os.pipe()
    try:
        bundle.sh("ls /proc/$$/fd; true")  # not last: sh would exec ls, listing its dir fd
        bundle.save()
        cid = unique_id()
        rt.ids.append(cid)
        p = subprocess.run(
            rt.argv("run", "--bundle", str(bundle.path), cid),
            pass_fds=(r, w),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert p.returncode == 0, p
        assert sorted(int(x) for x in p.stdout.split()) == [0, 1, 2]
    finally:
        os.close(r)
        os.close(w)


def _run_with_fds_3_4(
    rt: Runtime, bundle: Bundle, env: dict[str, str], *flags: str
) -> tuple[subprocess.CompletedProcess[str], bytes]:
    """Run the bundle with a pipe on fd 3 and another on fd 4; -> (result, what fd 3 got)."""
    r3, w3 = os.pipe()
    r4, w4 = os.pipe()
    cid = unique_id()
    bundle.save()
    rt.ids.append(cid)
    try:
        p = subprocess.run(
            [
                sys.executable,
                "-c",
                _PLACE_FDS,
                str(w3),
                str(w4),
                *rt.argv("run", *flags, "--bundle", str(bundle.path), cid),
            ],
            pass_fds=(w3, w4),
            env={**os.environ, **env},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
        )
        os.close(w3)
        os.close(w4)
        w3 = w4 = -1
        os.set_blocking(r3, False)
        try:
            got = os.read(r3, 100)
        except BlockingIOError:
            got = b""
        return p, got
    finally:
        for fd in (r3, w3, r4, w4):
            if fd >= 0:
                os.close(fd)


SHOW_FDS = (
    "(echo through-fd3 > /proc/self/fd/3) 2>/dev/null; env | grep ^LISTEN_ | sort;"
    " ls /proc/$$/fd; true"
)


def test_socket_activation_fds(rt: Runtime, bundle: Bundle) -> None:
    """LISTEN_FDS/LISTEN_PID meant for the runtime pass those fds on, renumbered for pid 1."""
    bundle.sh(SHOW_FDS)
    p, got = _run_with_fds_3_4(rt, bundle, {"LISTEN_FDS": "1", "LISTEN_PID": "self"})
    assert p.returncode == 0, p
    assert got == b"through-fd3\n"
    lines = p.stdout.splitlines()
    assert lines[:2] == ["LISTEN_FDS=1", "LISTEN_PID=1"]
    assert sorted(int(x) for x in lines[2:]) == [0, 1, 2, 3]


def test_socket_activation_for_another_pid_ignored(rt: Runtime, bundle: Bundle) -> None:
    """LISTEN_FDS addressed to some other process (LISTEN_PID mismatch) passes nothing."""
    bundle.sh(SHOW_FDS)
    p, got = _run_with_fds_3_4(rt, bundle, {"LISTEN_FDS": "1", "LISTEN_PID": "1"})
    assert p.returncode == 0, p
    assert got == b""
    assert sorted(int(x) for x in p.stdout.split() if x.isdigit()) == [0, 1, 2]
    assert "LISTEN_FDS" not in p.stdout


def test_foreground_terminal_has_our_size_from_the_start(rt: Runtime, bundle: Bundle) -> None:
    """`run` with process.terminal: the container's pty has our terminal's size before its
    process starts (runc's behaviour), so a first `stty size` reads it, not 0 0. Our terminal
    is script(1)'s pty, sized with stty."""
    if not shutil.which("script"):
        pytest.skip("script(1) is not installed")
    bundle.process["terminal"] = True
    bundle.args("stty", "size")
    bundle.save()
    cid = unique_id()
    rt.ids.append(cid)
    run = " ".join(rt.argv("run", "--bundle", str(bundle.path), cid))
    p = subprocess.run(["script", "-qec", f"stty rows 37 cols 111; {run}", "/dev/null"],
                       capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert p.returncode == 0 and p.stdout.replace("\x00", "").strip() == "37 111", p
