"""config-linux.md: namespaces, user namespace mappings, devices and the default devices.

The evidence is what the container's own process sees (/proc/self/ns/*, stat of /dev nodes,
uid_map) or what the host sees (/proc/PID/ns).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import (
    Bundle,
    Runtime,
    copy_bundle,
    read_pty_until_eof,
    unique_id,
)
from helpers import (
    create_fails,
    fields,
    run_ok,
)

pytestmark = pytest.mark.integration

NS_LINKS = {
    "pid": "pid",
    "network": "net",
    "ipc": "ipc",
    "uts": "uts",
    "mount": "mnt",
    "cgroup": "cgroup",
    "user": "user",
}


def _ns_script(kinds: list[str]) -> str:
    return "; ".join(f"echo {k}=$(readlink /proc/self/ns/{NS_LINKS[k]})" for k in kinds)


@pytest.fixture
def ns_holder() -> Iterator[int]:
    """A host process (started here, killed by pid) in new uts, ipc and net namespaces."""
    p = subprocess.Popen(["unshare", "--uts", "--ipc", "--net", "sleep", "60"])
    deadline = time.monotonic() + 20
    while os.readlink(f"/proc/{p.pid}/ns/uts") == os.readlink("/proc/self/ns/uts"):
        if time.monotonic() > deadline:
            p.kill()
            p.wait()
            pytest.fail("unshare did not enter its namespaces within 20 s")
        time.sleep(0.01)
    try:
        yield p.pid
    finally:
        os.kill(p.pid, signal.SIGKILL)
        p.wait()


# --- Namespaces --------------------------------------------------------------------------------


@pytest.mark.spec(
    "config-linux.md#namespaces",
    "If path is not specified, the runtime MUST create a new container namespace of type type.",
)
def test_new_namespace_for_each_type_without_path(rt: Runtime, bundle: Bundle) -> None:
    """pid, network, ipc, uts, mount and cgroup entries without a path give the container
    namespaces different from the runtime's (the user type is checked with its id mappings)."""
    kinds = ["pid", "network", "ipc", "uts", "mount", "cgroup"]
    bundle.linux["namespaces"] = [{"type": k} for k in kinds]
    inside = fields(run_ok(rt, bundle, _ns_script(kinds)), "=")
    for k in kinds:
        assert inside[k] != os.readlink(f"/proc/self/ns/{NS_LINKS[k]}"), k


@pytest.mark.spec(
    "config-linux.md#namespaces",
    "The runtime MUST place the container process in the namespace associated with that path.",
)
def test_namespace_path_is_joined(rt: Runtime, bundle: Bundle, ns_holder: int) -> None:
    """uts, ipc and network entries with a path: the container shares the holder's namespaces."""
    kinds = ["uts", "ipc", "network"]
    entries = [{"type": "pid"}, {"type": "mount"}]
    entries += [{"type": k, "path": f"/proc/{ns_holder}/ns/{NS_LINKS[k]}"} for k in kinds]
    bundle.linux["namespaces"] = entries
    bundle.config.pop("hostname", None)
    inside = fields(run_ok(rt, bundle, _ns_script(kinds)), "=")
    for k in kinds:
        assert inside[k] == os.readlink(f"/proc/{ns_holder}/ns/{NS_LINKS[k]}"), k


@pytest.mark.spec(
    "config-linux.md#namespaces",
    "The runtime MUST generate an error if path is not associated with a namespace of type type.",
)
def test_namespace_path_of_wrong_type_errors(rt: Runtime, bundle: Bundle) -> None:
    """A uts entry whose path is a network namespace is refused; nothing is left behind."""
    entries = [n for n in bundle.linux["namespaces"] if n["type"] != "uts"]
    entries.append({"type": "uts", "path": f"/proc/{os.getpid()}/ns/net"})
    bundle.linux["namespaces"] = entries
    bundle.config.pop("hostname", None)
    create_fails(rt, bundle)


@pytest.mark.spec(
    "config-linux.md#namespaces",
    "If a namespace type is not specified in the namespaces array, the container MUST inherit "
    "the runtime namespace of that type.",
)
def test_unlisted_namespace_is_inherited(rt: Runtime, bundle: Bundle) -> None:
    """Without network, ipc and uts entries the container shares the runtime's (ours)."""
    kinds = ["network", "ipc", "uts"]
    bundle.linux["namespaces"] = [{"type": "pid"}, {"type": "mount"}]
    bundle.config.pop("hostname", None)
    inside = fields(run_ok(rt, bundle, _ns_script(kinds)), "=")
    for k in kinds:
        assert inside[k] == os.readlink(f"/proc/self/ns/{NS_LINKS[k]}"), k


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param(
            {"type": "network"},
            marks=pytest.mark.spec(
                "config-linux.md#namespaces",
                "If a namespaces field contains duplicated namespaces with same type, the runtime "
                "MUST generate an error.",
            ),
            id="duplicate-type",
        ),
        pytest.param(
            {"type": "specbogus"},
            marks=pytest.mark.spec(
                "config.md#valid-values",
                "Runtimes that are reading or processing this configuration file MUST generate an "
                "error when invalid or unsupported values are encountered.",
            ),
            id="unknown-type",
        ),
    ],
)
def test_invalid_namespace_entry_errors(rt: Runtime, bundle: Bundle, extra: dict[str, str]) -> None:
    """A second network entry is ambiguous, a type the spec does not define is unknown: either
    way create fails, leaving nothing."""
    bundle.linux["namespaces"].append(extra)
    create_fails(rt, bundle)


@pytest.mark.spec(
    "config-linux.md#user-namespace-mappings",
    "uidMappings (array of objects, OPTIONAL) describes the user namespace uid mappings from "
    "the host to the container. gidMappings (array of objects, OPTIONAL) describes the user "
    "namespace gid mappings from the host to the container.",
)
def test_user_namespace_mappings(rt: Runtime, bundle: Bundle, short_tmp: Path) -> None:
    """With a user namespace the container's uid_map/gid_map are the configured ranges, its
    root is uid 0 inside, and the host sees the mapped host uid."""
    try:
        with open("/proc/sys/user/max_user_namespaces") as f:
            if int(f.read()) == 0:
                pytest.skip("user namespaces are disabled on this host")
    except FileNotFoundError:
        pytest.skip("kernel without user namespaces")
    cid = unique_id()
    bundle = copy_bundle(bundle, short_tmp / "bundle")  # mapped root must traverse the path
    bundle.linux["namespaces"].append({"type": "user"})
    bundle.linux["uidMappings"] = [{"containerID": 0, "hostID": 200000, "size": 65536}]
    bundle.linux["gidMappings"] = [{"containerID": 0, "hostID": 300000, "size": 65536}]
    bundle.args("sh", "-c", "cat /proc/self/uid_map /proc/self/gid_map; id -u; exec sleep 100")
    out = rt.scratch / "userns.out"
    assert rt.create(cid, bundle, output=out).rc == 0
    pid = rt.state(cid)["pid"]
    assert os.readlink(f"/proc/{pid}/ns/user") != os.readlink("/proc/self/ns/user")
    assert rt.cmd("start", cid).rc == 0
    deadline = time.monotonic() + 20
    while len(out.read_text().split()) < 7 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert out.read_text().split() == ["0", "200000", "65536", "0", "300000", "65536", "0"]
    with open(f"/proc/{pid}/status") as f:
        uids = next(ln for ln in f if ln.startswith("Uid:")).split()[1:]
    assert uids == ["200000"] * 4


# --- Devices -----------------------------------------------------------------------------------


@pytest.mark.spec(
    "config-linux.md#devices",
    "devices (array of objects, OPTIONAL) lists devices that MUST be available in the container.",
)
def test_devices_available(rt: Runtime, bundle: Bundle) -> None:
    """Character, block and fifo entries exist with their type, numbers, mode and owner."""
    bundle.linux["devices"] = [
        {"path": "/dev/spec-c", "type": "c", "major": 1, "minor": 3,
         "fileMode": 0o640, "uid": 12, "gid": 34},
        {"path": "/dev/spec-b", "type": "b", "major": 7, "minor": 0,
         "fileMode": 0o600, "uid": 0, "gid": 6},
        {"path": "/dev/spec-p", "type": "p", "fileMode": 0o620, "uid": 5, "gid": 0},
    ]  # fmt: skip
    out = run_ok(
        rt, bundle, "for d in c b p; do stat -c '%F %t %T %a %u %g' /dev/spec-$d; done"
    ).splitlines()
    assert out == [
        "character special file 1 3 640 12 34",
        "block special file 7 0 600 0 6",
        "fifo 0 0 620 5 0",
    ]


@pytest.mark.runc_deviation("runc 1.1.5 keeps the existing file when mknod fails with EEXIST")
@pytest.mark.spec(
    "config-linux.md#devices",
    "path (string, REQUIRED) - full path to device inside container. If a file already exists "
    "at path that does not match the requested device, the runtime MUST generate an error.",
)
def test_device_path_conflict_errors(rt: Runtime, bundle: Bundle) -> None:
    """A regular file at a device's path (outside /dev, so the rootfs's own) makes create fail."""
    (bundle.rootfs / "spec-dev").write_text("a regular file\n")
    bundle.config["root"]["readonly"] = False
    bundle.linux["devices"] = [{"path": "/spec-dev", "type": "c", "major": 1, "minor": 3}]
    create_fails(rt, bundle)


@pytest.mark.spec(
    "config-linux.md#default-devices",
    "In addition to any devices configured with this setting, the runtime MUST also supply: "
    "/dev/null, /dev/zero, /dev/full, /dev/random, /dev/urandom, /dev/tty, /dev/ptmx (a "
    "bind-mount or symlink of the container's /dev/pts/ptmx).",
)
def test_default_devices(rt: Runtime, bundle: Bundle) -> None:
    """The six nodes are the kernel's devices (numbers, and they behave: zero reads zeros,
    full is full, urandom gives bytes), and /dev/ptmx leads to the container's devpts."""
    out = run_ok(
        rt,
        bundle,
        'for d in null zero full random urandom tty; do stat -c "$d %F %t %T" /dev/$d; done; '
        "head -c 4 /dev/zero | od -An -tx1; echo x > /dev/full 2>/dev/null || echo full-enospc; "
        "head -c 16 /dev/urandom | wc -c; echo data > /dev/null && echo null-ok; "
        "stat -L -c 'ptmx %t %T' /dev/ptmx; readlink /dev/ptmx || echo not-a-link; "
        "stat -c 'pts-ptmx %d %i' /dev/pts/ptmx; stat -L -c 'ptmx-target %d %i' /dev/ptmx",
    ).splitlines()
    assert out[:6] == [
        "null character special file 1 3",
        "zero character special file 1 5",
        "full character special file 1 7",
        "random character special file 1 8",
        "urandom character special file 1 9",
        "tty character special file 5 0",
    ]
    assert out[6].split() == ["00"] * 4
    assert out[7:10] == ["full-enospc", "16", "null-ok"]
    assert out[10] == "ptmx 5 2"
    assert out[11] in ("pts/ptmx", "/dev/pts/ptmx", "not-a-link")
    # a symlink or a bind mount: either way /dev/ptmx resolves to the devpts instance's ptmx
    assert out[12].split()[1:] == out[13].split()[1:], out


@pytest.mark.spec(
    "config-linux.md#default-devices",
    "/dev/console is set up if terminal is enabled in the config by bind mounting the "
    "pseudoterminal pty to /dev/console.",
)
def test_dev_console_is_the_terminal(rt: Runtime, bundle: Bundle, short_tmp: Path) -> None:
    """With process.terminal, /dev/console is the same pty as the process's stdin."""
    sock_path = str(short_tmp / "console.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(sock_path)
    srv.listen(1)
    srv.settimeout(20)
    bundle.process["terminal"] = True
    bundle.sh("stat -c '%t %T' /dev/console; stat -L -c '%t %T' /proc/self/fd/0; tty")
    bundle.save()
    cid = unique_id()
    rt.ids.append(cid)
    err = short_tmp / "create.err"
    with open(err, "w") as errf:
        p = subprocess.Popen(
            rt.argv("create", "--bundle", str(bundle.path), "--console-socket", sock_path, cid),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=errf,
        )
    master = -1
    try:
        conn, _ = srv.accept()
        with conn:
            _msg, fds, _flags, _addr = socket.recv_fds(conn, 1024, 4)
        master = fds[0]
        assert p.wait(timeout=30) == 0, err.read_text()
        assert rt.cmd("start", cid).rc == 0
        out = read_pty_until_eof(master, 20).decode().replace("\r\n", "\n").splitlines()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        if master >= 0:
            os.close(master)
        srv.close()
    assert len(out) == 3, out
    assert out[0] == out[1], out  # same major/minor as the terminal on stdin
    assert out[0].split()[0] == "88", out  # 136 (Unix98 pty slaves) in hex
    assert out[2].startswith("/dev/pts/"), out


@pytest.mark.spec(
    "runtime-linux.md#dev-symbolic-links",
    "While creating the container (step 2 in the lifecycle), runtimes MUST create the following "
    "symlinks if the source file exists after processing mounts: /dev/fd -> /proc/self/fd, "
    "/dev/stdin -> /proc/self/fd/0, /dev/stdout -> /proc/self/fd/1, /dev/stderr -> "
    "/proc/self/fd/2",
)
def test_dev_symlinks(rt: Runtime, bundle: Bundle) -> None:
    """The four links exist and point where the spec says."""
    out = run_ok(rt, bundle, "for l in fd stdin stdout stderr; do readlink /dev/$l; done")
    assert out.split() == ["/proc/self/fd", "/proc/self/fd/0", "/proc/self/fd/1", "/proc/self/fd/2"]
