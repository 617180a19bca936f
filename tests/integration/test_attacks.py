"""Container-escape attacks that must fail: each test names the class of bug it guards against.

A naive runtime fails them: one that keeps a host directory open while it chdir's to the
configured cwd (CVE-2024-21626: cwd "/proc/self/fd/N" lands outside the rootfs), or that lets
fds of its own reach the container process.
"""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest
from harness import Bundle, Runtime, unique_id

pytestmark = pytest.mark.integration

MARK = "PYRUNC-HOST-MARKER"
FDS = range(3, 21)


def _host_dir(tmp_path: Path) -> Path:
    d = tmp_path / "hostdir"
    d.mkdir()
    (d / MARK).write_text("host\n")
    return d


@pytest.mark.parametrize("fd", FDS)
def test_cwd_through_runtime_fd_stays_inside(
    rt: Runtime, bundle: Bundle, tmp_path: Path, fd: int
) -> None:
    """CVE-2024-21626 class: process.cwd /proc/self/fd/N, for every fd the runtime might hold
    during set-up (here a bind source the runtime opens, and its state dir), never gives the
    container a working directory outside its root: either the run fails or the process
    sees only the container."""
    host = _host_dir(tmp_path)
    bundle.add_mount("/mnt", str(host), "bind", ["rbind", "ro"])
    bundle.process["cwd"] = f"/proc/self/fd/{fd}"
    bundle.sh("pwd; ls -a; cat ../../../../" + MARK + " 2>/dev/null; true")
    r = rt.run(unique_id(), bundle)
    assert "(unreachable)" not in r.out, r  # getcwd() outside the root
    assert MARK not in r.out, r
    assert "host" not in r.out.split(), r


@pytest.mark.parametrize("fd", FDS)
def test_exec_cwd_through_runtime_fd_stays_inside(
    rt: Runtime, bundle: Bundle, tmp_path: Path, fd: int
) -> None:
    """The same attack through `exec --cwd`: the exec'ing runtime holds namespace fds and
    pipes while it joins; none may become the process's working directory on the host."""
    host = _host_dir(tmp_path)
    bundle.add_mount("/mnt", str(host), "bind", ["rbind", "ro"])
    cid = unique_id()
    bundle.args("sleep", "1000")
    bundle.save()
    assert rt.detached("run", "-d", "-b", str(bundle.path), cid, cid=cid).rc == 0
    r = rt.cmd("exec", "--cwd", f"/proc/self/fd/{fd}", cid, "sh", "-c", "pwd; ls -a; true")
    assert "(unreachable)" not in r.out, r
    assert MARK not in r.out, r


def test_exec_process_sees_only_its_stdio(rt: Runtime, bundle: Bundle) -> None:
    """No runtime fd (state dir, namespace fds, pipes, the fifo) reaches an exec'd process."""
    cid = unique_id()
    bundle.args("sleep", "1000")
    bundle.save()
    assert rt.detached("run", "-d", "-b", str(bundle.path), cid, cid=cid).rc == 0
    r = rt.cmd("exec", cid, "sh", "-c", "ls /proc/self/fd")
    assert r.rc == 0, r
    # ls itself opens one fd for the directory it lists
    assert len([x for x in r.out.split() if int(x) > 2]) <= 1, r


@pytest.mark.parametrize("via", ["run", "exec"])
def test_cwd_through_an_inherited_fd_is_refused(
    rt: Runtime, bundle: Bundle, tmp_path: Path, via: str
) -> None:
    """CVE-2024-21626 class, the variant that escaped pyrunc before the getcwd check: the
    caller (a shim, a daemon) leaks a host directory fd into the runtime, and the config's cwd
    is /proc/self/fd/N. The runtime must refuse, not start the process in the host dir."""
    host = _host_dir(tmp_path)
    fd = os.open(host, os.O_RDONLY | os.O_DIRECTORY)
    try:
        cid = unique_id()
        script = "pwd; ls; true"
        if via == "run":
            bundle.process["cwd"] = f"/proc/self/fd/{fd}"
            bundle.sh(script)
            bundle.save()
            argv = rt.argv("run", "-b", str(bundle.path), cid)
        else:
            bundle.args("sleep", "1000")
            bundle.save()
            assert rt.detached("run", "-d", "-b", str(bundle.path), cid, cid=cid).rc == 0
            argv = rt.argv("exec", "--cwd", f"/proc/self/fd/{fd}", cid, "sh", "-c", script)
        rt.ids.append(cid)
        p = subprocess.run(
            argv, capture_output=True, text=True, pass_fds=(fd,), stdin=subprocess.DEVNULL
        )
    finally:
        os.close(fd)
    assert MARK not in p.stdout, p
    assert p.returncode != 0
    assert "outside the container's root" in p.stderr, p


def _image_dev(bundle: Bundle) -> None:
    """No /dev tmpfs: /dev comes from the image, as the container's author made it."""
    bundle.config["mounts"] = [m for m in bundle.config["mounts"] if m["destination"] != "/dev"]
    bundle.config["root"]["readonly"] = False


def test_masked_path_cannot_be_redirected_through_dev_null(rt: Runtime, bundle: Bundle) -> None:
    """CVE-2025-31133 class: the image's /dev/null is a symlink to
    /proc/sys/kernel/core_pattern (host-global). A runtime that masks with "/dev/null" by path
    binds core_pattern over the masked /proc/keys, writable (this was pyrunc before the fix:
    the container wrote through it). Now the run is refused. The container writes the host's
    current value back, so even a failing run changes nothing."""
    _image_dev(bundle)
    dev = bundle.path / "rootfs" / "dev"
    (dev / "null").unlink(missing_ok=True)
    (dev / "null").symlink_to("/proc/sys/kernel/core_pattern")
    bundle.linux["maskedPaths"] = ["/proc/keys"]
    bundle.linux["readonlyPaths"] = ["/proc/sys"]
    current = Path("/proc/sys/kernel/core_pattern").read_text().strip()
    bundle.sh(f"echo '{current}' > /proc/keys && echo WROTE-HOST-FILE; true")
    r = rt.run(unique_id(), bundle)
    assert "WROTE-HOST-FILE" not in r.out, r
    assert r.rc == 1 and "/dev/null is not the null device" in r.err, r


def test_console_cannot_be_bound_through_a_symlink(
    rt: Runtime, bundle: Bundle, short_tmp: Path
) -> None:
    """CVE-2025-52565 class: the image's /dev/console is a symlink into /proc; the pty must
    not be bind-mounted over what it points at. The create fails with a clear error."""
    _image_dev(bundle)
    dev = bundle.path / "rootfs" / "dev"
    (dev / "console").unlink(missing_ok=True)
    (dev / "console").symlink_to("/proc/sys/kernel/core_pattern")
    (dev / "pts").mkdir(exist_ok=True)  # the config mounts devpts there; ptmx points in
    (dev / "ptmx").unlink(missing_ok=True)
    (dev / "ptmx").symlink_to("pts/ptmx")
    bundle.process["terminal"] = True
    bundle.args("true")
    bundle.save()
    sock_path = str(short_tmp / "console.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(sock_path)
    srv.listen(1)
    srv.settimeout(20)
    cid = unique_id()
    rt.ids.append(cid)
    try:
        r = rt.detached(
            "create", "-b", str(bundle.path), "--console-socket", sock_path, cid, cid=cid
        )
    finally:
        srv.close()
    assert r.rc == 1, r
    assert "/dev/console in the container is a symlink" in r.err, r
    assert not (rt.root / cid).exists()
