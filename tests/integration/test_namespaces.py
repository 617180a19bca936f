"""Namespaces as the container sees them: new ones are private, joined ones are the same inode."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import Bundle, Runtime, copy_bundle, userns_bundle

pytestmark = pytest.mark.integration

NS_NAMES = ("pid", "net", "ipc", "uts", "mnt", "cgroup", "user")


def _host_ns(name: str, pid: str = "self") -> str:
    return os.readlink(f"/proc/{pid}/ns/{name}")


def _inside_ns(rt: Runtime, bundle: Bundle) -> dict[str, str]:
    """readlink of every /proc/self/ns/* link, from inside a container."""
    script = "; ".join(f"echo {n}=$(readlink /proc/self/ns/{n})" for n in NS_NAMES)
    r = rt.run_sh(bundle, script)
    assert r.rc == 0, r
    return dict(line.split("=", 1) for line in r.out.splitlines())


def test_default_namespaces_are_new(rt: Runtime, bundle: Bundle) -> None:
    """runc's default spec unshares pid, net, ipc, uts, mnt and shares cgroup and user."""
    inside = _inside_ns(rt, bundle)
    for n in ("pid", "net", "ipc", "uts", "mnt"):
        assert inside[n] != _host_ns(n), n
    for n in ("cgroup", "user"):
        assert inside[n] == _host_ns(n), n


def test_pid_namespace(rt: Runtime, bundle: Bundle) -> None:
    """The container's process is pid 1 and sees only its own processes."""
    r = rt.run_sh(bundle, "echo $$; tr '\\0' ' ' < /proc/1/cmdline; echo; ls -d /proc/[0-9]*")
    assert r.rc == 0, r
    lines = r.out.splitlines()
    assert lines[0] == "1"
    assert lines[1].startswith("sh -c echo $$;")
    pids = sorted(int(p.rsplit("/", 1)[1]) for p in lines[2:])
    assert pids[0] == 1 and len(pids) <= 3  # sh, and the children it forked for this script


def test_uts_hostname(rt: Runtime, bundle: Bundle) -> None:
    """config.hostname is set in a new UTS namespace; the host's name is untouched."""
    before = socket.gethostname()
    bundle.config["hostname"] = "pyrunc-test-host"
    r = rt.run_sh(bundle, "hostname; cat /proc/sys/kernel/hostname")
    assert r.rc == 0, r
    assert r.out.split() == ["pyrunc-test-host", "pyrunc-test-host"]
    assert socket.gethostname() == before


def test_network_namespace_has_only_lo_up(rt: Runtime, bundle: Bundle) -> None:
    """A new network namespace has just loopback, and the runtime brings it up (as runc)."""
    r = rt.run_sh(bundle, "ls /sys/class/net; cat /sys/class/net/lo/flags; ip -o link show")
    assert r.rc == 0, r
    lines = r.out.splitlines()
    assert lines[0] == "lo"
    assert int(lines[1], 16) & 0x1, "IFF_UP not set on lo"
    links = lines[2:]
    assert len(links) == 1 and "lo:" in links[0] and "UP" in links[0]


def test_loopback_usable(rt: Runtime, bundle: Bundle) -> None:
    """Loopback being up means 127.0.0.1 answers inside the container."""
    bundle.process["capabilities"]["bounding"].append("CAP_NET_RAW")
    bundle.process["capabilities"]["effective"].append("CAP_NET_RAW")
    bundle.process["capabilities"]["permitted"].append("CAP_NET_RAW")
    r = rt.run_sh(bundle, "ping -c 1 -W 2 127.0.0.1 >/dev/null && echo ok")
    assert r.out.strip() == "ok", r


def test_cgroup_namespace(rt: Runtime, bundle: Bundle) -> None:
    """In a new cgroup namespace the container's own cgroup is the root of every hierarchy."""
    bundle.linux["namespaces"].append({"type": "cgroup"})
    r = rt.run_sh(bundle, "readlink /proc/self/ns/cgroup; cat /proc/self/cgroup")
    assert r.rc == 0, r
    lines = r.out.splitlines()
    assert lines[0] != _host_ns("cgroup")
    assert len(lines) > 2
    for line in lines[1:]:
        assert line.endswith(":/"), line


def test_user_namespace_mappings(rt: Runtime, bundle: Bundle, short_tmp: Path) -> None:
    """Container root is host uid 100000: the maps say so and files it creates prove it."""
    if not os.path.exists("/proc/self/ns/user"):
        pytest.skip("no user namespaces")
    # the mapped root must be able to reach the bundle: pytest's tmp dirs are 0700
    bundle = copy_bundle(bundle, short_tmp / "bundle")
    (bundle.rootfs / "mnt").mkdir(exist_ok=True)  # the mapped root cannot mkdir in it
    shared = short_tmp / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    bundle.linux["namespaces"].append({"type": "user"})
    bundle.linux["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    bundle.linux["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    bundle.add_mount("/mnt", str(shared), "bind", ["rbind", "rw"])
    bundle.linux.pop("resources", None)
    r = rt.run_sh(
        bundle,
        "cat /proc/self/uid_map /proc/self/gid_map; id -u; readlink /proc/self/ns/user;"
        " touch /mnt/created-inside",
    )
    assert r.rc == 0, r
    lines = r.out.splitlines()
    assert lines[0].split() == ["0", "100000", "65536"]
    assert lines[1].split() == ["0", "100000", "65536"]
    assert lines[2] == "0"
    assert lines[3] != _host_ns("user")
    st = (shared / "created-inside").stat()
    assert (st.st_uid, st.st_gid) == (100000, 100000)


def test_user_namespace_bind_source_only_host_root_can_reach(
    rt: Runtime, bundle: Bundle, short_tmp: Path
) -> None:
    """A bind source under a 0700 host-root directory: the container's mapped root could not
    open it, so the runtime must (runc's userns.bats "inaccessible mounts")."""
    if not os.path.exists("/proc/self/ns/user"):
        pytest.skip("no user namespaces")
    bundle = copy_bundle(bundle, short_tmp / "bundle")
    (bundle.rootfs / "mnt").mkdir(exist_ok=True)
    locked = short_tmp / "locked"
    (locked / "dir").mkdir(parents=True)
    (locked / "dir" / "file").write_text("secret-ok\n")
    locked.chmod(0o700)
    bundle.linux["namespaces"].append({"type": "user"})
    bundle.linux["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    bundle.linux["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    bundle.add_mount("/mnt", str(locked / "dir"), "bind", ["bind", "ro"])
    bundle.linux.pop("resources", None)
    r = rt.run_sh(bundle, "cat /mnt/file; touch /mnt/x 2>&1 || true")
    assert r.rc == 0, r
    assert r.out.splitlines()[0] == "secret-ok"
    assert "Read-only file system" in r.out


@pytest.fixture
def netns_holder() -> Iterator[int]:
    """A process of our own in a fresh network namespace, to join by path."""
    p = subprocess.Popen(["unshare", "--net", "--", "sleep", "60"], stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                if _host_ns("net", str(p.pid)) != _host_ns("net"):
                    break
            except OSError:
                pass
            time.sleep(0.01)
        else:
            pytest.skip("unshare --net did not produce a new network namespace")
        yield p.pid
    finally:
        p.kill()
        p.wait()


def test_join_network_namespace_by_path(rt: Runtime, bundle: Bundle, netns_holder: int) -> None:
    """A namespace with a path is joined, not created: same inode inside as the holder's."""
    path = f"/proc/{netns_holder}/ns/net"
    want = os.readlink(path)
    for ns in bundle.linux["namespaces"]:
        if ns["type"] == "network":
            ns["path"] = path
    r = rt.run_sh(bundle, "readlink /proc/self/ns/net; stat -L -c %i /proc/self/ns/net")
    assert r.rc == 0, r
    lines = r.out.splitlines()
    assert lines[0] == want
    assert int(lines[1]) == os.stat(path).st_ino


def test_join_missing_namespace_path_fails(rt: Runtime, bundle: Bundle, tmp_path: Path) -> None:
    """A namespace path that does not exist is an error, and no container is left behind."""
    for ns in bundle.linux["namespaces"]:
        if ns["type"] == "network":
            ns["path"] = str(tmp_path / "no-such-netns")
    r = rt.run_sh(bundle, "true")
    assert r.rc != 0
    assert "Traceback" not in r.err
    assert not rt.root.exists() or os.listdir(rt.root) == []


def test_time_namespace_offsets(rt: Runtime, bundle: Bundle) -> None:
    """linux.timeOffsets shift CLOCK_BOOTTIME in a new time namespace (seen in /proc/uptime)."""
    if not os.path.exists("/proc/self/ns/time"):
        pytest.skip("kernel without time namespaces")
    offset = 10 * 86400
    bundle.linux["namespaces"].append({"type": "time"})
    bundle.linux["timeOffsets"] = {
        "boottime": {"secs": offset, "nanosecs": 0},
        "monotonic": {"secs": offset, "nanosecs": 0},
    }
    with open("/proc/uptime") as f:
        host_uptime = float(f.read().split()[0])
    r = rt.run_sh(bundle, "readlink /proc/self/ns/time; cat /proc/uptime")
    assert r.rc == 0, r
    lines = r.out.splitlines()
    assert lines[0] != _host_ns("time")
    inside = float(lines[1].split()[0])
    assert offset + host_uptime - 5 < inside < offset + host_uptime + 60


def test_oom_score_adj_with_a_user_namespace(
    rt: Runtime, bundle: Bundle, short_tmp: Path
) -> None:
    """process.oomScoreAdj in a user namespace: written before the namespace exists (inside
    it /proc/self/oom_score_adj is no longer writable, EACCES), so the container starts and
    sees the value, as under runc."""
    bundle = userns_bundle(bundle, short_tmp)
    bundle.process["oomScoreAdj"] = 200
    r = rt.run_sh(bundle, "cat /proc/self/oom_score_adj")
    assert r.rc == 0, r
    assert r.out.strip() == "200", r


def _mounts_under(path: Path) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [ln for ln in f if f" {path}" in ln]


def test_no_mount_namespace_shares_ours_and_leaves_no_mount(
    rt: Runtime, bundle: Bundle
) -> None:
    """The spec: a namespace type not listed is inherited from the runtime. Without a mount
    namespace the container shares ours (as with runc): its root is still the rootfs (a chroot,
    not pivot_root), its config mounts are made, `exec` lands in the same root, and `delete`
    leaves no mount behind under the rootfs."""
    (bundle.rootfs / "marker").write_text("inside\n")
    bundle.linux["namespaces"] = [
        ns for ns in bundle.linux["namespaces"] if ns["type"] != "mount"
    ]
    # runc 1.1 refuses masked and read-only paths without a mount namespace; pyrunc applies
    # them (below) -- this test is the shape both run
    bundle.linux.pop("maskedPaths", None)
    bundle.linux.pop("readonlyPaths", None)
    bundle.sh("cat /marker; readlink /proc/self/ns/mnt; stat -c %F /dev/null; sleep 30")
    bundle.save()
    cid = "nomnt" + os.urandom(4).hex()
    out = bundle.path / "out"
    assert rt.create(cid, bundle, output=out).rc == 0
    assert rt.cmd("start", cid).rc == 0
    assert _mounts_under(bundle.rootfs), "the container's mounts are in our mount table"
    r = rt.cmd("exec", cid, "sh", "-c", "cat /marker; readlink /proc/1/root")
    assert r.rc == 0, r
    assert r.out.splitlines() == ["inside", "/"]
    deadline = time.monotonic() + 10
    while len(out.read_text().splitlines()) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert out.read_text().splitlines() == ["inside", _host_ns("mnt"), "character special file"]
    assert rt.cmd("delete", "-f", cid).rc == 0
    assert _mounts_under(bundle.rootfs) == []


@pytest.mark.parametrize("stacked", [False, True])
def test_no_mount_namespace_failed_create_leaves_no_mount(
    rt: Runtime, bundle: Bundle, stacked: bool
) -> None:
    """A create that fails after the mounts were made takes them back too, also a mount the
    config stacks on the container's own "/" (on top of the rootfs bind that holds the rest)."""
    bundle.linux["namespaces"] = [
        ns for ns in bundle.linux["namespaces"] if ns["type"] != "mount"
    ]
    if stacked:
        bundle.add_mount("/", str(bundle.rootfs), "bind", ["rbind"])
    bundle.args("/no/such/program")
    r = rt.run("nomntfail" + os.urandom(4).hex(), bundle)
    assert r.rc != 0
    assert "/no/such/program" in r.err
    assert _mounts_under(bundle.rootfs) == []


def test_no_mount_namespace_with_masked_paths(rt: Runtime, bundle: Bundle) -> None:
    """Masked and read-only paths are applied there too (runc 1.1 refuses the config), and go
    with the rest of the container's mounts at delete."""
    bundle.linux["namespaces"] = [
        ns for ns in bundle.linux["namespaces"] if ns["type"] != "mount"
    ]
    bundle.linux["maskedPaths"] = ["/proc/kcore", "/etc"]
    bundle.linux["readonlyPaths"] = ["/tmp"]
    r = rt.run_sh(bundle, "ls -A /etc | wc -l; cat /proc/kcore | wc -c; touch /tmp/x 2>&1")
    assert r.rc != 0
    lines = r.out.splitlines()
    assert lines[:2] == ["0", "0"]
    assert "Read-only file system" in lines[2]
    assert _mounts_under(bundle.rootfs) == []
    assert (bundle.rootfs / "etc" / "passwd").exists()
