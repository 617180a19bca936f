"""Container-escape attacks that must fail: each test names the class of bug it guards against.

A naive runtime fails them: one that keeps a host directory open while it chdir's to the
configured cwd (CVE-2024-21626: cwd "/proc/self/fd/N" lands outside the rootfs), or that lets
fds of its own reach the container process.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
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


SUID_SRC = r"""
#include <stdio.h>
#include <unistd.h>
#include <sys/mount.h>
int main(void) {
    int m = mount("none", "/tmp", "tmpfs", 0, NULL);
    printf("euid=%d mount=%d\n", (int)geteuid(), m);
    return 0;
}
"""


@pytest.fixture
def suid_probe(bundle: Bundle, tmp_path: Path) -> str:
    """A static setuid-root program in the rootfs: reports its euid and whether it could
    mount (CAP_SYS_ADMIN)."""
    import shutil

    if not shutil.which("gcc"):
        pytest.skip("gcc is needed to build the setuid probe")
    src = tmp_path / "probe.c"
    src.write_text(SUID_SRC)
    out = bundle.path / "rootfs" / "suid-probe"
    r = subprocess.run(["gcc", "-static", "-O1", "-o", str(out), str(src)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot build a static binary here: {r.stderr.decode()[-200:]}")
    os.chown(out, 0, 0)
    os.chmod(out, 0o4755)
    return "/suid-probe"


@pytest.mark.parametrize("nnp", [True, False])
def test_no_new_privs_blocks_setuid_gain(
    rt: Runtime, bundle: Bundle, suid_probe: str, nnp: bool
) -> None:
    """A uid-1000 process runs a setuid-root binary: with noNewPrivileges it stays uid 1000
    (the kernel ignores the setuid bit); without, it becomes euid 0 -- the control case that
    shows the probe works."""
    bundle.process["user"] = {"uid": 1000, "gid": 1000}
    bundle.process["noNewPrivileges"] = nnp
    bundle.args(suid_probe)
    r = rt.run(unique_id(), bundle)
    assert r.rc == 0, r
    assert r.out.split()[0] == ("euid=1000" if nnp else "euid=0"), r


def test_bounding_set_drop_survives_setuid_root(
    rt: Runtime, bundle: Bundle, suid_probe: str
) -> None:
    """Capabilities dropped from the bounding set are gone for good: even euid 0 through a
    setuid-root binary (nnp off) cannot mount without CAP_SYS_ADMIN. The control: with
    CAP_SYS_ADMIN in the bounding set, the same binary can."""
    bundle.process["user"] = {"uid": 1000, "gid": 1000}
    bundle.process["noNewPrivileges"] = False
    bundle.config["root"]["readonly"] = False
    bundle.args(suid_probe)
    caps = bundle.process["capabilities"]
    for k in caps:
        caps[k] = [c for c in caps[k] if c != "CAP_SYS_ADMIN"]
    r = rt.run(unique_id(), bundle)
    assert r.out.split() == ["euid=0", "mount=-1"], r
    caps["bounding"].append("CAP_SYS_ADMIN")
    r = rt.run(unique_id(), bundle)
    assert r.out.split() == ["euid=0", "mount=0"], r


@pytest.mark.parametrize("via", ["direct", "chain"])
def test_program_cannot_be_the_runtime_itself(rt: Runtime, bundle: Bundle, via: str) -> None:
    """CVE-2019-5736 class: an entrypoint whose #! is /proc/self/exe (directly, or through a
    second script) would make the kernel run the runtime's own executable -- the host's Python
    interpreter -- inside the container, where the payload below reads it (and could keep an
    fd to overwrite it once it exits). The runtime refuses; the payload never runs."""
    bundle.config["root"]["readonly"] = False
    rootfs = bundle.path / "rootfs"
    payload = "print('HOST-INTERPRETER', open('/proc/self/exe', 'rb').read(4))\n"
    (rootfs / "evil").write_text("#!/proc/self/exe\n" + payload)
    (rootfs / "evil").chmod(0o755)
    (rootfs / "evil2").write_text("#!/evil\n")
    (rootfs / "evil2").chmod(0o755)
    bundle.args("/evil" if via == "direct" else "/evil2")
    r = rt.run(unique_id(), bundle)
    assert "HOST-INTERPRETER" not in r.out, r
    assert r.rc != 0 and "runtime's own executable" in r.err, r


def test_sysctl_writes_cannot_be_redirected_by_a_mount(
    rt: Runtime, bundle: Bundle, tmp_path: Path
) -> None:
    """CVE-2025-52881 class: a mount over /proc/sys/net/ipv4/ip_forward (here a host file)
    must not receive the sysctl write meant for the kernel. The sysctl reaches the container's
    real network namespace (conf/all/forwarding mirrors it) and the host file is untouched."""
    fake = tmp_path / "ip_forward"
    fake.write_text("0\n")
    bundle.add_mount("/proc/sys/net/ipv4/ip_forward", str(fake), "bind", ["bind"])
    bundle.linux["readonlyPaths"] = []
    bundle.linux["sysctl"] = {"net.ipv4.ip_forward": "1"}
    bundle.args("cat", "/proc/sys/net/ipv4/conf/all/forwarding")
    r = rt.run(unique_id(), bundle)
    assert r.rc == 0, r
    assert r.out.strip() == "1", r  # the kernel's value in the container's netns
    assert fake.read_text() == "0\n"  # the redirect target never got the write


def test_mount_destination_swapped_for_a_symlink_stays_inside(
    rt: Runtime, bundle: Bundle, tmp_path: Path
) -> None:
    """CVE-2021-30465 class: while each container is created, the destination directory in
    its rootfs is swapped (rename, over and over) with a symlink to a host directory. The bind
    mount must land inside the container every time -- after pivot_root a mount made outside
    the rootfs is gone, so the container's own mountinfo shows where it went -- and the host
    directory the symlink names never receives it."""
    import ctypes
    import threading

    src = tmp_path / "bindsrc-7f3a"
    src.mkdir()
    host = tmp_path / "hostdir"
    host.mkdir()
    rootfs = bundle.path / "rootfs"
    bundle.config["root"]["readonly"] = False
    (rootfs / str(host).lstrip("/")).mkdir(parents=True)  # the symlink's in-root target
    race, tmpd, lnk = rootfs / "race", rootfs / "race.d", rootfs / "race.l"
    race.mkdir()
    lnk.symlink_to(str(host))
    bundle.add_mount("/race", str(src), "bind", ["bind"])
    # how many mounts of the source the container has, and where (mountinfo field 5)
    bundle.sh("grep -c bindsrc-7f3a /proc/self/mountinfo; grep bindsrc-7f3a /proc/self/mountinfo")
    stop = threading.Event()
    libc = ctypes.CDLL(None, use_errno=True)  # the test's own attacker, not the runtime

    def swap() -> None:
        while not stop.is_set():
            for a, b in ((race, tmpd), (lnk, race), (race, lnk), (tmpd, race)):
                # never replace an existing entry (that would detach a mount the runtime
                # made on it): renameat2(RENAME_NOREPLACE), atomic, unlike a check + rename
                libc.renameat2(-100, bytes(a), -100, bytes(b), 1)
                if b == race and a == lnk:
                    time.sleep(0.002)  # leave the symlink in place for a while

    t = threading.Thread(target=swap, daemon=True)
    t.start()
    mounted = via_symlink = 0
    try:
        for _ in range(200):  # until the attack has hit a few times
            r = rt.run(unique_id(), bundle)
            assert "Traceback" not in r.err, r
            if r.rc == 0:
                assert r.out.split()[0] == "1", r  # inside the container, exactly once
                mounted += 1
                via_symlink += "hostdir" in r.out  # the symlink was followed -- inside the root
            if via_symlink >= 3 and mounted >= 10:
                break
    finally:
        stop.set()
        t.join()
    assert via_symlink >= 3, "the swap rarely hit: the test did not exercise the attack"
    assert not os.path.ismount(host)


def _add_cap(bundle: Bundle, cap: str) -> None:
    caps = bundle.process["capabilities"]
    for k in ("bounding", "effective", "permitted"):
        caps.setdefault(k, []).append(cap)


WATCHER = (
    # every runtime process that shows up in the container's PID namespace: what its
    # /proc/<pid>/exe names (a privileged container can read it despite non-dumpable)
    "while [ ! -e /stop ]; do for p in /proc/[0-9]*; do "
    "l=$(readlink $p/exe 2>/dev/null) && case $l in *python*|*memfd*) echo \"$l\" >> /seen;; "
    "esac; done; done"
)


@pytest.mark.parametrize("ptrace_from", ["config", "exec --cap"])
def test_joining_runtime_exposes_only_a_sealed_interpreter(
    rt: Runtime, bundle: Bundle, ptrace_from: str
) -> None:
    """CVE-2019-5736 class: a container in the host's user namespace with CAP_SYS_PTRACE can
    open /proc/<pid>/exe of a runtime process that joins it (non-dumpable is no obstacle to
    that capability), keep the fd and rewrite the host's interpreter once we exit. The watcher
    catches `exec`'s joining process in the act: it must see a sealed memfd copy, never the
    host's interpreter file. (A naive runtime shows /usr/bin/python3.x here.) The second case
    gives the capability only to an exec'd process: later execs are sealed too."""
    if ptrace_from == "config":
        _add_cap(bundle, "CAP_SYS_PTRACE")
    bundle.config["root"]["readonly"] = False
    cid = unique_id()
    bundle.args("sleep", "1000")
    bundle.save()
    assert rt.detached("run", "-d", "-b", str(bundle.path), cid, cid=cid).rc == 0
    watch = ["exec", "-d"]
    if ptrace_from == "exec --cap":
        watch += ["--cap", "CAP_SYS_PTRACE"]
    assert rt.detached(*watch, cid, "sh", "-c", WATCHER, cid=cid).rc == 0
    seen = ""
    for _ in range(60):
        r = rt.cmd("exec", cid, "true")
        assert r.rc == 0, r
        seen = rt.cmd("exec", cid, "cat", "/seen").out
        if seen.count("memfd") >= 3:
            break
    rt.cmd("exec", cid, "touch", "/stop")
    exes = set(seen.split("\n")) - {""}
    assert exes, "the watcher never saw a joining runtime process: the test proved nothing"
    assert all(e.startswith("/memfd:pyrunc-python") for e in exes), exes


def test_sealed_interpreter_copy_refuses_writes() -> None:
    """The copy the joining process runs from cannot be changed through any fd to it."""
    from pyrunc.init import sealed

    fd = sealed._sealed_interpreter()
    try:
        w = os.open(f"/proc/self/fd/{fd}", os.O_WRONLY)
        with pytest.raises(PermissionError):
            os.write(w, b"\x7fELF")
        os.close(w)
        with pytest.raises(PermissionError):
            os.ftruncate(fd, 0)
        with open("/proc/self/exe", "rb") as f:
            assert os.pread(fd, 64, 0) == f.read(64)
    finally:
        os.close(fd)


def test_created_init_exposes_only_a_sealed_interpreter(rt: Runtime, bundle: Bundle) -> None:
    """Until `start`, the container's pid 1 is the runtime's own init (Python). In a container
    whose processes may hold CAP_SYS_PTRACE, an exec'd process reads /proc/1/exe: the sealed
    copy, not the host's interpreter (a naive runtime shows /usr/bin/python3.x)."""
    _add_cap(bundle, "CAP_SYS_PTRACE")
    cid = unique_id()
    assert rt.create(cid, bundle.args("true")).rc == 0
    r = rt.cmd("exec", cid, "readlink", "/proc/1/exe")
    assert r.rc == 0, r
    assert r.out.strip().startswith("/memfd:pyrunc-python"), r


def test_ptrace_exec_into_an_unsealed_created_container_is_refused(
    rt: Runtime, bundle: Bundle
) -> None:
    """Without CAP_SYS_PTRACE in the config the created init is not sealed (no container
    process could open its exe); `exec --cap CAP_SYS_PTRACE` would make one that can, so it
    is refused with one line until the container has started (then the init is the
    container's program and the exec is sealed)."""
    cid = unique_id()
    assert rt.create(cid, bundle.args("sleep", "100")).rc == 0
    r = rt.cmd("exec", "--cap", "CAP_SYS_PTRACE", cid, "readlink", "/proc/1/exe")
    assert r.rc != 0 and "/proc/1/exe" in r.err and "Traceback" not in r.err, r
    assert len(r.err.strip().splitlines()) == 1, r
    assert rt.cmd("start", cid).rc == 0
    r = rt.cmd("exec", "--cap", "CAP_SYS_PTRACE", cid, "readlink", "/proc/1/exe")
    assert r.rc == 0 and r.out.strip() == "/bin/sleep", r
