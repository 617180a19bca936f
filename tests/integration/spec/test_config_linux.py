"""config-linux.md (and runtime-linux.md): namespaces, id mappings, devices, cgroups, sysctl,
seccomp, masked and read-only paths, rootfs propagation, mount label, and the sections this
machine cannot exercise (skipped with the reason).

The evidence is what the container's own process sees (/proc/self/ns/*, stat of /dev nodes,
mountinfo, uid_map) or what the host sees (the cgroup files under /sys/fs/cgroup, /proc/PID/ns).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import (
    CGROUP_ROOT,
    Bundle,
    Runtime,
    copy_bundle,
    mountinfo_line,
    unique_id,
)
from helpers import (
    create_and_start,
    create_fails,
    create_sleeping,
    fields,
    own_cgroup,
    run_ok,
    wait_file,
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


def _set_namespaces(bundle: Bundle, entries: list[dict[str, str]]) -> None:
    bundle.linux["namespaces"] = entries


def _v1(ctrl: str) -> Path:
    path = CGROUP_ROOT / ctrl
    if not path.is_dir() or (CGROUP_ROOT / "cgroup.controllers").exists():
        pytest.skip(f"needs the cgroup v1 {ctrl} hierarchy")
    return path


@pytest.fixture
def ns_holder() -> Iterator[int]:
    """A host process (started here, killed by pid) in new uts, ipc and net namespaces."""
    p = subprocess.Popen(["unshare", "--uts", "--ipc", "--net", "sleep", "60"])
    deadline = time.monotonic() + 5
    while os.readlink(f"/proc/{p.pid}/ns/uts") == os.readlink("/proc/self/ns/uts"):
        if time.monotonic() > deadline:
            break
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
    _set_namespaces(bundle, [{"type": k} for k in kinds])
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
    _set_namespaces(bundle, entries)
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
    _set_namespaces(bundle, entries)
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
    _set_namespaces(bundle, [{"type": "pid"}, {"type": "mount"}])
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
    deadline = time.monotonic() + 5
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


def _read_pty(fd: int, timeout: float) -> bytes:
    import errno
    import select

    buf = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not select.select([fd], [], [], 0.2)[0]:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError as e:
            if e.errno == errno.EIO:
                break
            raise
        if not chunk:
            break
        buf += chunk
    return buf


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
        out = _read_pty(master, 20).decode().replace("\r\n", "\n").splitlines()
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


# --- Control groups ----------------------------------------------------------------------------


@pytest.mark.spec(
    "config-linux.md#cgroups-path",
    "In the case of an absolute path (starting with /), the runtime MUST take the path to be "
    "relative to the cgroups mount point.",
)
def test_cgroups_path_absolute(rt: Runtime, bundle: Bundle) -> None:
    """The container's process is in <mount point>/<cgroupsPath> of each v1 hierarchy, whatever
    cgroup the runtime itself runs in."""
    _v1("memory")
    cid = unique_id()
    parent = f"spec-abs-{cid}"
    cgpath = f"/{parent}/{cid}"
    bundle.linux["cgroupsPath"] = cgpath
    try:
        _, pid = create_sleeping(rt, bundle, cid)
        for ctrl in ("memory", "pids", "cpu", "devices"):
            procs = (CGROUP_ROOT / ctrl / parent / cid / "cgroup.procs").read_text().split()
            assert str(pid) in procs, ctrl
        with open(f"/proc/{pid}/cgroup") as f:
            lines = f.read().splitlines()
        assert any(ln.endswith(f":memory:{cgpath}") for ln in lines), lines
    finally:
        rt.cmd("delete", "-f", cid)
        for hierarchy in CGROUP_ROOT.iterdir():
            if (hierarchy / parent).is_dir():
                (hierarchy / parent).rmdir()  # the parent the runtime made for this path


@pytest.mark.spec(
    "config-linux.md#cgroups-path",
    "If the value is specified, the runtime MUST consistently attach to the same place in the "
    "cgroups hierarchy given the same value of cgroupsPath.",
)
def test_cgroups_path_consistent(rt: Runtime, bundle: Bundle) -> None:
    """Two containers created one after the other with one cgroupsPath land in the same cgroup."""
    _v1("memory")
    cgpath = f"/spec-same-{unique_id()}"
    bundle.linux["cgroupsPath"] = cgpath
    seen = []
    for _ in range(2):
        cid = unique_id()
        _, pid = create_sleeping(rt, bundle, cid)
        with open(f"/proc/{pid}/cgroup") as f:
            seen.append(sorted(f.read().splitlines()))
        assert rt.cmd("delete", "-f", cid).rc == 0
    assert seen[0] == seen[1]
    assert any(ln.endswith(f":memory:{cgpath}") for ln in seen[0]), seen[0]


@pytest.mark.spec(
    "config-linux.md#memory",
    "limit (int64, OPTIONAL) - sets limit of memory usage; reservation (int64, OPTIONAL) - sets "
    "soft limit of memory usage",
)
def test_memory_limit(rt: Runtime, bundle: Bundle) -> None:
    """The container's memory cgroup carries the configured limit and soft limit."""
    mem = _v1("memory")
    cid = unique_id()
    cgpath = own_cgroup(bundle, cid)
    bundle.linux.setdefault("resources", {})["memory"] = {
        "limit": 64 * 1024 * 1024,
        "reservation": 32 * 1024 * 1024,
    }
    create_sleeping(rt, bundle, cid)
    d = mem / cgpath.lstrip("/")
    assert int((d / "memory.limit_in_bytes").read_text()) == 64 * 1024 * 1024
    assert int((d / "memory.soft_limit_in_bytes").read_text()) == 32 * 1024 * 1024


@pytest.mark.spec(
    "config-linux.md#pids",
    "limit (int64, REQUIRED) - specifies the maximum number of tasks in the cgroup",
)
def test_pids_limit(rt: Runtime, bundle: Bundle) -> None:
    """pids.max is the limit, and the kernel enforces it: forks beyond it fail inside."""
    _v1("pids")
    bundle.linux["cgroupsPath"] = f"/spec-{unique_id()}"
    bundle.linux.setdefault("resources", {})["pids"] = {"limit": 5}
    out = run_ok(
        rt,
        bundle,
        "read m < /sys/fs/cgroup/pids/pids.max; echo $m; "
        "(for i in 1 2 3 4 5 6 7 8; do sleep 3 & done) 2>/dev/shm/err; "
        "read c < /sys/fs/cgroup/pids/pids.current; echo $c; [ -s /dev/shm/err ] && echo refused",
    ).split()
    assert out[0] == "5"
    assert int(out[1]) <= 5 and out[2:] == ["refused"], out


@pytest.mark.spec(
    "config-linux.md#cpu",
    "shares (uint64, OPTIONAL) - specifies a relative share of CPU time available to the tasks "
    "in a cgroup; quota (int64, OPTIONAL) ...; period (uint64, OPTIONAL) ...; cpus (string, "
    "OPTIONAL) - list of CPUs the container will run on",
)
def test_cpu_resources(rt: Runtime, bundle: Bundle) -> None:
    """cpu.shares, the CFS quota/period and the cpuset are the configured ones; the process is
    confined to the cpuset."""
    cpu = _v1("cpu")
    cid = unique_id()
    cgpath = own_cgroup(bundle, cid)
    bundle.linux.setdefault("resources", {})["cpu"] = {
        "shares": 512,
        "quota": 20000,
        "period": 100000,
        "cpus": "0",
    }
    _, pid = create_sleeping(rt, bundle, cid)
    d = cpu / cgpath.lstrip("/")
    assert (d / "cpu.shares").read_text().strip() == "512"
    assert (d / "cpu.cfs_quota_us").read_text().strip() == "20000"
    assert (d / "cpu.cfs_period_us").read_text().strip() == "100000"
    with open(f"/proc/{pid}/status") as f:
        allowed = next(ln for ln in f if ln.startswith("Cpus_allowed_list:"))
    assert allowed.split()[1] == "0"


@pytest.mark.spec(
    "config-linux.md#allowed-device-list",
    "devices (array of objects, OPTIONAL) configures the allowed device list. The runtime MUST "
    "apply entries in the listed order.",
)
def test_device_allowlist_in_listed_order(rt: Runtime, bundle: Bundle) -> None:
    """[deny all, allow c 1:11] lets the container open the node; [allow c 1:11, deny all]
    does not: the later rule wins, so the order was kept."""
    _v1("devices")
    bundle.linux["devices"] = [{"path": "/dev/spec-kmsg", "type": "c", "major": 1, "minor": 11}]
    allow = {"allow": True, "type": "c", "major": 1, "minor": 11, "access": "w"}
    deny = {"allow": False, "access": "rwm"}
    script = "if (: > /dev/spec-kmsg) 2>/dev/null; then echo opened; else echo denied; fi"
    results = []
    for rules in ([deny, allow], [allow, deny]):
        bundle.linux["resources"] = {"devices": rules}
        results.append(run_ok(rt, bundle, script).strip())
    assert results == ["opened", "denied"]


@pytest.mark.spec(
    "config-linux.md#unified",
    "The runtime MUST generate an error when the configuration refers to a cgroup controller "
    "that is not present or that cannot be enabled.",
)
def test_unified_without_controller_errors(rt: Runtime, bundle: Bundle) -> None:
    """On this host no controller is enabled in cgroup2, so a memory.max key must fail create
    and leave no cgroup behind."""
    unified = CGROUP_ROOT / "unified"
    ctrls = unified / "cgroup.controllers"
    if ctrls.exists() and "memory" in ctrls.read_text().split():
        pytest.skip("the memory controller is available in cgroup2 here")
    cid = unique_id()
    cgpath = own_cgroup(bundle, cid)
    bundle.linux.setdefault("resources", {})["unified"] = {"memory.max": "67108864"}
    create_fails(rt, bundle, cid)
    assert not (CGROUP_ROOT / "memory" / cgpath.lstrip("/")).exists()


@pytest.mark.spec(
    "config-linux.md#intelrdt",
    "If no mounted resctrl pseudo-filesystem is available in the runtime mount namespace, the "
    "runtime MUST generate an error.",
)
def test_intel_rdt_without_resctrl_errors(rt: Runtime, bundle: Bundle) -> None:
    """intelRdt on a host without resctrl mounted must fail create."""
    with open("/proc/self/mountinfo") as f:
        if any(" - resctrl " in ln for ln in f):
            pytest.skip("resctrl is mounted here")
    bundle.linux["intelRdt"] = {"closID": "spec", "l3CacheSchema": "L3:0=f"}
    create_fails(rt, bundle)


# --- Sysctl, seccomp, paths, propagation, label ------------------------------------------------


@pytest.mark.spec(
    "config-linux.md#sysctl",
    "sysctl (object, OPTIONAL) allows kernel parameters to be modified at runtime for the "
    "container.",
)
def test_sysctl(rt: Runtime, bundle: Bundle) -> None:
    """Namespaced parameters take the configured values inside; the host's are unchanged."""
    host = Path("/proc/sys/net/ipv4/ip_forward").read_text()
    want = "0" if host.strip() == "1" else "1"
    bundle.linux["sysctl"] = {"net.ipv4.ip_forward": want, "kernel.shmmni": "1234"}
    out = run_ok(rt, bundle, "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmni").split()
    assert out == [want, "1234"]
    assert Path("/proc/sys/net/ipv4/ip_forward").read_text() == host


@pytest.mark.spec(
    "config-linux.md#seccomp",
    "syscalls (array of objects, OPTIONAL) - match a syscall in seccomp. errnoRet (uint, "
    "OPTIONAL) - the errno return code to use.",
)
def test_seccomp_rule_with_errno(rt: Runtime, bundle: Bundle) -> None:
    """A syscall matched with SCMP_ACT_ERRNO fails with the configured errno (EXDEV here)."""
    bundle.linux["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 18},
        ],
    }
    out = run_ok(rt, bundle, "mkdir /dev/shm/x 2>&1; echo rc=$?")
    assert "cross-device" in out.lower(), out
    assert out.strip().endswith("rc=1"), out


@pytest.mark.spec(
    "config-linux.md#seccomp",
    "When the action doesn't support an errno, the runtime MUST print and error and fail.",
)
@pytest.mark.runc_deviation("runc 1.1.5 accepts errnoRet on a SCMP_ACT_ALLOW rule (and drops it)")
def test_seccomp_errno_ret_on_allow_errors(rt: Runtime, bundle: Bundle) -> None:
    """errnoRet on an SCMP_ACT_ALLOW rule is meaningless: create must fail."""
    bundle.linux["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_ALLOW", "errnoRet": 1}],
    }
    r = create_fails(rt, bundle)
    assert r.err.strip() != "", r


@pytest.mark.spec(
    "config-linux.md#masked-paths",
    "maskedPaths (array of strings, OPTIONAL) will mask over the provided paths inside the "
    "container so that they cannot be read.",
)
def test_masked_paths(rt: Runtime, bundle: Bundle) -> None:
    """A masked file reads as empty, a masked directory lists as empty (the rootfs has data)."""
    (bundle.rootfs / "spec-masked-dir").mkdir()
    (bundle.rootfs / "spec-masked-dir" / "secret").write_text("secret\n")
    (bundle.rootfs / "spec-masked-file").write_text("secret\n")
    bundle.linux["maskedPaths"] = ["/spec-masked-dir", "/spec-masked-file", "/proc/kcore"]
    out = run_ok(
        rt,
        bundle,
        "echo dir:$(ls -A /spec-masked-dir); echo file:$(cat /spec-masked-file); "
        "echo kcore:$(head -c 8 /proc/kcore | wc -c)",
    )
    assert out.split() == ["dir:", "file:", "kcore:0"]


@pytest.mark.spec(
    "config-linux.md#readonly-paths",
    "readonlyPaths (array of strings, OPTIONAL) will set the provided paths as readonly inside "
    "the container.",
)
def test_readonly_paths(rt: Runtime, bundle: Bundle) -> None:
    """On a writable root, a listed directory refuses writes while its sibling accepts them;
    /proc/sys (listed by default) refuses writes too."""
    (bundle.rootfs / "spec-ro").mkdir()
    bundle.config["root"]["readonly"] = False
    bundle.linux["readonlyPaths"] = ["/spec-ro", "/proc/sys"]
    out = run_ok(
        rt,
        bundle,
        "touch /spec-ro/f 2>/dev/null && echo ro-writable || echo ro-refused; "
        "touch /spec-rw 2>/dev/null && echo rw-writable || echo rw-refused; "
        "echo 1 2>/dev/null > /proc/sys/kernel/shmmni && echo sys-writable || echo sys-refused",
    )
    assert out.split() == ["ro-refused", "rw-writable", "sys-refused"]


@pytest.fixture
def shared_rootfs(bundle: Bundle, tmp_path: Path) -> Iterator[Path]:
    """The bundle's rootfs copied onto a host tmpfs made shared (this host's mounts are all
    private), so mounts made on the host below it can propagate; unmounted afterwards."""
    base = tmp_path / "shared"
    base.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "spec-shared", str(base)], check=True)
    try:
        subprocess.run(["mount", "--make-shared", str(base)], check=True)
        subprocess.run(["cp", "-a", str(bundle.rootfs), str(base / "rootfs")], check=True)
        (base / "rootfs" / "spec-prop").mkdir()
        bundle.config["root"]["path"] = str(base / "rootfs")
        yield base / "rootfs"
    finally:
        subprocess.run(["umount", "-R", "-l", str(base)], check=False)
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.parametrize(
    "propagation, expect",
    [
        pytest.param(
            "slave",
            "seen",
            marks=pytest.mark.runc_deviation(
                "runc 1.1.5 makes the rootfs's parent mount private before the bind, so with "
                "`slave` (only / made a slave) host mounts below the rootfs never arrive"
            ),
        ),
        ("private", "unseen"),
    ],
)
@pytest.mark.spec(
    "config-linux.md#rootfs-mount-propagation",
    "slave: the rootfs mount receives propagation events from the host (e.g. if something is "
    "mounted on the host it will also appear in the container) but not the other way around. "
    "private: the rootfs mount doesn't receive mount propagation events from the host.",
)
def test_rootfs_propagation_from_host(
    rt: Runtime, bundle: Bundle, shared_rootfs: Path, outdir: Path, propagation: str, expect: str
) -> None:
    """A tmpfs mounted on the host below the rootfs while the container runs appears inside
    with `slave` and does not with `private`."""
    bundle.linux["rootfsPropagation"] = propagation
    bundle.sh(
        "echo ready > /out/ready; for i in $(seq 30); do [ -e /spec-prop/marker ] && break; "
        "sleep 0.05; done; if [ -e /spec-prop/marker ]; then echo seen; else echo unseen; fi "
        "> /out/result"
    )
    cid = create_and_start(rt, bundle)
    wait_file(outdir / "ready")
    target = shared_rootfs / "spec-prop"
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "spec-prop", str(target)], check=True)
    try:
        (target / "marker").write_text("x")
        rt.wait_status(cid, "stopped")
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False)
    assert (outdir / "result").read_text().strip() == expect


@pytest.mark.runc_deviation(
    "runc 1.1.5 leaves the container's / out of any peer group with rootfsPropagation shared "
    "on a host whose mounts are private"
)
@pytest.mark.spec(
    "config-linux.md#rootfs-mount-propagation",
    "shared: the rootfs mount belongs to a new peer group.",
)
def test_rootfs_propagation_shared(rt: Runtime, bundle: Bundle) -> None:
    """With `shared`, the container's / is in a peer group (a shared:N field in mountinfo)."""
    bundle.linux["rootfsPropagation"] = "shared"
    out = run_ok(rt, bundle, "cat /proc/self/mountinfo")
    root = mountinfo_line(out, "/")
    assert root, out
    fields = root[-1].split(" - ")[0].split()[6:]
    assert any(f.startswith("shared:") for f in fields), root


@pytest.mark.runc_deviation(
    "runc 1.1.5 passes context= to mount(2) on a host without SELinux and create fails "
    "(EINVAL); not a MUST, pyrunc ignores mountLabel there"
)
@pytest.mark.spec(
    "config-linux.md#mount-label",
    "mountLabel (string, OPTIONAL) will set the Selinux context for the mounts in the container.",
)
def test_mount_label_without_selinux(rt: Runtime, bundle: Bundle) -> None:
    """On a host without SELinux (as here) mountLabel cannot apply: the container runs and no
    mount gets a context= option."""
    if os.path.exists("/sys/fs/selinux/enforce"):
        pytest.skip("SELinux is enabled here; this checks the non-SELinux behaviour")
    bundle.linux["mountLabel"] = "system_u:object_r:svirt_sandbox_file_t:s0:c1,c2"
    out = run_ok(rt, bundle, "cat /proc/self/mountinfo")
    assert "context=" not in out
    assert mountinfo_line(out, "/dev/shm"), out


@pytest.mark.runc_deviation(
    "runc 1.1.5 implements spec 1.0.2, which has no personality (an unknown property, ignored)"
)
@pytest.mark.spec(
    "config-linux.md#personality",
    "personality (object, OPTIONAL) sets the Linux execution personality. LINUX32 will set the "
    "uname system call to show a 32 bit CPU type, such as i686.",
)
def test_personality_linux32(rt: Runtime, bundle: Bundle) -> None:
    """uname -m reports a 32-bit machine under LINUX32."""
    if os.uname().machine != "x86_64":
        pytest.skip("checks the x86_64 -> i686 mapping")
    bundle.linux["personality"] = {"domain": "LINUX32"}
    assert run_ok(rt, bundle, "uname -m").strip() in ("i686", "i386")


# --- What this machine cannot exercise ---------------------------------------------------------


@pytest.mark.spec(
    "config.md#linux-process",
    "selinuxLabel (string, OPTIONAL) specifies the SELinux label for the process.",
)
def test_selinux_process_label(rt: Runtime, bundle: Bundle) -> None:
    """The process runs with the configured label (needs an SELinux-enabled host)."""
    if not os.path.exists("/sys/fs/selinux/enforce"):
        pytest.skip("SELinux is not enabled on this host")
    bundle.process["selinuxLabel"] = "system_u:system_r:container_t:s0:c1,c2"
    assert "container_t" in run_ok(rt, bundle, "cat /proc/self/attr/current")


@pytest.mark.spec(
    "config.md#linux-process",
    "apparmorProfile (string, OPTIONAL) specifies the name of the AppArmor profile for the "
    "process.",
)
def test_apparmor_profile(rt: Runtime, bundle: Bundle) -> None:
    """The process runs confined by the profile (needs AppArmor with the profile loaded)."""
    profiles = Path("/sys/kernel/security/apparmor/profiles")
    if not profiles.exists():
        pytest.skip("AppArmor is not enabled on this host")
    names = [ln.split(" (")[0] for ln in profiles.read_text().splitlines()]
    if not names:
        pytest.skip("no AppArmor profile is loaded")
    bundle.process["apparmorProfile"] = names[0]
    assert names[0] in run_ok(rt, bundle, "cat /proc/self/attr/current")


@pytest.mark.spec(
    "config-linux.md#unified",
    "The OCI runtime MUST ensure that the needed cgroup controllers are enabled for the cgroup. "
    "Configuration unknown to the runtime MUST still be written to the relevant file.",
)
def test_unified_keys_written(rt: Runtime, bundle: Bundle) -> None:
    """On a cgroup v2 host, unified keys land in the container's cgroup files."""
    if not (CGROUP_ROOT / "cgroup.controllers").exists():
        pytest.skip("cgroup v1 host: cgroup2 (at /sys/fs/cgroup/unified) has no controllers")
    cgpath = f"/spec-{unique_id()}"
    bundle.linux["cgroupsPath"] = cgpath
    bundle.linux.setdefault("resources", {})["unified"] = {"pids.max": "42"}
    assert run_ok(rt, bundle, "cat /sys/fs/cgroup/pids.max").strip() == "42"


@pytest.mark.spec(
    "config-linux.md#intelrdt",
    "If intelRdt is set, the runtime MUST write the container process ID to the tasks file in "
    "a proper sub-directory in a mounted resctrl pseudo-filesystem.",
)
def test_intel_rdt_tasks(rt: Runtime, bundle: Bundle) -> None:
    """Needs Intel RDT hardware with resctrl mounted."""
    resctrl = Path("/sys/fs/resctrl")
    if not (resctrl / "tasks").exists():
        pytest.skip("no resctrl filesystem (Intel RDT) on this host")
    cid = unique_id()
    bundle.linux["intelRdt"] = {"closID": f"spec-{cid}"}
    (resctrl / f"spec-{cid}").mkdir(exist_ok=True)
    try:
        _, pid = create_sleeping(rt, bundle, cid)
        assert str(pid) in (resctrl / f"spec-{cid}" / "tasks").read_text().split()
    finally:
        rt.cmd("delete", "-f", cid)
        (resctrl / f"spec-{cid}").rmdir()


@pytest.mark.parametrize(
    "doc", ["config-windows.md", "config-solaris.md", "config-vm.md", "config-zos.md"]
)
@pytest.mark.spec(
    "config.md#platform-specific-configuration",
    "windows (object, OPTIONAL) Windows-specific configuration. This MUST be set if the target "
    "platform of this spec is windows. (and the MUSTs of the Solaris, VM and z/OS sections)",
)
def test_non_linux_platform_sections(doc: str) -> None:
    """The Windows, Solaris, VM and z/OS sections apply to other kinds of runtime."""
    pytest.skip(f"{doc}: not applicable to a Linux namespace-container runtime on this host")
