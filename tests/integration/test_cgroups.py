"""The container's cgroup: placed at linux.cgroupsPath in every hierarchy, removed on delete."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from harness import Bundle, Runtime, mountinfo_line, unique_id

pytestmark = pytest.mark.integration

V1_CONTROLLERS = ("memory", "pids", "cpu", "cpuacct", "cpuset", "devices", "freezer", "blkio")


def _hierarchies() -> dict[str, Path]:
    """controller or name=X (or 'unified') -> mount point, for the hierarchies this host has."""
    out: dict[str, Path] = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields = right.split()
            mnt = Path(left.split()[4])
            if fields[0] == "cgroup2":
                out.setdefault("unified", mnt)
            elif fields[0] == "cgroup":
                for opt in fields[2].split(","):
                    if opt in V1_CONTROLLERS or opt.startswith("name="):
                        out.setdefault(opt, mnt)
    return out


@pytest.fixture
def hierarchies() -> dict[str, Path]:
    h = _hierarchies()
    if "memory" not in h:
        pytest.skip("needs a cgroup v1 memory hierarchy (hybrid host)")
    return h


def _proc_cgroup(text: str) -> dict[str, str]:
    """controller -> path from /proc/<pid>/cgroup ('unified' for the 0:: line)."""
    out = {}
    for line in text.splitlines():
        _hid, ctrls, path = line.split(":", 2)
        for c in ctrls.split(",") if ctrls else ["unified"]:
            out[c] = path
    return out


def test_cgroups_path_inside_and_removed(
    rt: Runtime, bundle: Bundle, tmp_path: Path, hierarchies: dict[str, Path]
) -> None:
    """An absolute cgroupsPath is the container's cgroup in every v1 hierarchy and in the
    unified one; the directories exist while it lives and are gone after delete."""
    path = f"/pyrunc-test-{unique_id()}"
    bundle.linux["cgroupsPath"] = path
    bundle.args("cat", "/proc/self/cgroup")
    cid = unique_id()
    out = tmp_path / "out"
    r = rt.create(cid, bundle, output=out)
    assert r.rc == 0, r
    dirs = [mnt / path.lstrip("/") for mnt in hierarchies.values()]
    for d in dirs:
        assert d.is_dir(), d
    pid = rt.state(cid)["pid"]
    assert str(pid) in (hierarchies["memory"] / path.lstrip("/") / "cgroup.procs").read_text()
    assert rt.cmd("start", cid).rc == 0
    rt.wait_status(cid, "stopped")
    seen = _proc_cgroup(out.read_text())
    for ctrl in ("memory", "pids", "cpu", "freezer", "devices"):
        if ctrl in hierarchies:
            assert seen[ctrl] == path, ctrl
    if "unified" in hierarchies:
        assert seen["unified"] == path
    assert rt.delete(cid).rc == 0
    for d in dirs:
        assert not d.exists(), d


def test_default_cgroups_path_is_relative_to_runtime(
    rt: Runtime, bundle: Bundle, hierarchies: dict[str, Path]
) -> None:
    """Without cgroupsPath the container's cgroup is <runtime's cgroup>/<id>, as in runc."""
    with open("/proc/self/cgroup") as f:
        own = _proc_cgroup(f.read())
    cid = unique_id()
    bundle.args("cat", "/proc/self/cgroup")
    r = rt.run(cid, bundle)
    assert r.rc == 0, r
    seen = _proc_cgroup(r.out)
    for ctrl in ("memory", "pids"):
        assert seen[ctrl] == os.path.join(own[ctrl], cid), ctrl
    for ctrl, mnt in hierarchies.items():
        assert not (mnt / own[ctrl].lstrip("/") / cid).exists(), ctrl


def test_relative_cgroups_path(rt: Runtime, bundle: Bundle, hierarchies: dict[str, Path]) -> None:
    """A relative cgroupsPath is nested under the runtime's own cgroup."""
    with open("/proc/self/cgroup") as f:
        own = _proc_cgroup(f.read())
    rel = f"pyrunc-rel-{unique_id()}/inner"
    bundle.linux["cgroupsPath"] = rel
    bundle.args("cat", "/proc/self/cgroup")
    r = rt.run(unique_id(), bundle)
    assert r.rc == 0, r
    assert _proc_cgroup(r.out)["pids"] == os.path.join(own["pids"], rel)
    try:
        # the container's own directory is removed (runc leaves the parent it created)
        for ctrl, mnt in hierarchies.items():
            assert not (mnt / own[ctrl].lstrip("/") / rel).exists(), ctrl
    finally:
        for ctrl, mnt in hierarchies.items():
            parent = mnt / own[ctrl].lstrip("/") / rel.split("/")[0]
            for d in (parent / "inner", parent):
                if d.is_dir():
                    d.rmdir()


def test_container_processes_killed_on_delete(
    rt: Runtime, bundle: Bundle, hierarchies: dict[str, Path]
) -> None:
    """delete -f kills every process in the container's cgroup, not only its init."""
    path = f"/pyrunc-test-{unique_id()}"
    bundle.linux["cgroupsPath"] = path
    bundle.sh("sleep 100 & sleep 100 & wait")
    cid = unique_id()
    assert rt.create(cid, bundle).rc == 0
    assert rt.cmd("start", cid).rc == 0
    procs = hierarchies["pids"] / path.lstrip("/") / "cgroup.procs"
    deadline = time.monotonic() + 10
    while len(procs.read_text().split()) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    pids = [int(p) for p in procs.read_text().split()]
    assert len(pids) >= 3
    assert rt.delete(cid, force=True).rc == 0
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            continue
        assert state in ("Z", "X"), (p, state)
    assert not (hierarchies["pids"] / path.lstrip("/")).exists()


def test_delete_kills_leftovers_without_pid_namespace(
    rt: Runtime, bundle: Bundle, hierarchies: dict[str, Path]
) -> None:
    """Without a PID namespace a background process can outlive the container's init; delete
    must still empty and remove the container's cgroup, promptly."""
    path = f"/pyrunc-test-{unique_id()}"
    bundle.linux["cgroupsPath"] = path
    bundle.linux["namespaces"] = [n for n in bundle.linux["namespaces"] if n["type"] != "pid"]
    bundle.sh("sleep 100 & exit 0")
    cid = unique_id()
    procs = hierarchies["pids"] / path.lstrip("/") / "cgroup.procs"
    assert rt.create(cid, bundle).rc == 0
    try:
        assert rt.cmd("start", cid).rc == 0
        assert rt.wait_status(cid, "stopped")["status"] == "stopped"
        assert len(procs.read_text().split()) == 1  # the sleep outlived the init
        try:
            r = rt.cmd("delete", cid, timeout=8)
        except subprocess.TimeoutExpired:
            pytest.fail("delete did not finish within 8 s")
        assert r.rc == 0, r
        for mnt in hierarchies.values():
            assert not (mnt / path.lstrip("/")).exists()
    finally:
        if procs.exists():  # the leftover is ours: do not leave it to the host
            for pid in procs.read_text().split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + 5
            while procs.exists() and procs.read_text().split() and time.monotonic() < deadline:
                time.sleep(0.01)


def test_cgroup_mount_shows_own_cgroup(rt: Runtime, bundle: Bundle) -> None:
    """/sys/fs/cgroup inside is the container's own cgroup per hierarchy, read-only."""
    bundle.sh(
        "cat /sys/fs/cgroup/pids/cgroup.procs; echo ---; cat /proc/self/mountinfo;"
        " echo ---; (touch /sys/fs/cgroup/pids/x) 2>&1; true"
    )
    cid = unique_id()
    r = rt.run(cid, bundle)
    assert r.rc == 0, r
    procs, mountinfo, touch = r.out.split("---\n")
    assert "1" in procs.split()  # pids are the container's: its pid 1 is in there
    pids_line = mountinfo_line(mountinfo, "/sys/fs/cgroup/pids")
    assert pids_line
    assert pids_line[0].split()[3].endswith("/" + cid)  # mount root = the container's cgroup
    assert "Read-only file system" in touch


@pytest.mark.parametrize("allow", [False, True])
def test_device_cgroup_rules(rt: Runtime, bundle: Bundle, allow: bool) -> None:
    """linux.resources.devices is enforced: a node outside the allowed set cannot be opened,
    and an allow rule for it makes it usable."""
    bundle.linux["devices"] = [
        {"path": "/dev/kmsg", "type": "c", "major": 1, "minor": 11, "fileMode": 0o666}
    ]
    if allow:
        bundle.linux["resources"]["devices"].append(
            {"allow": True, "type": "c", "major": 1, "minor": 11, "access": "w"}
        )
    bundle.sh("(: > /dev/kmsg) 2>&1; echo rc=$?")  # open for writing only: logs nothing
    r = rt.run(unique_id(), bundle)
    if allow:
        assert r.out.strip() == "rc=0", r
    else:
        assert "Operation not permitted" in r.out, r
        assert "rc=0" not in r.out


def test_device_rules_deny_open_of_a_mknod_node(rt: Runtime, bundle: Bundle) -> None:
    """runc's rules let a container mknod any node (c *:* m) but not use it: a node the rules
    don't allow, made inside the container, cannot be opened, while /dev/null can."""
    bundle.config["root"]["readonly"] = False  # a private copy: mknod lands in it
    bundle.process["capabilities"]["bounding"].append("CAP_MKNOD")
    bundle.process["capabilities"]["effective"].append("CAP_MKNOD")
    bundle.process["capabilities"]["permitted"].append("CAP_MKNOD")
    bundle.sh(
        "mknod /tmp/mem c 1 1 && echo made; (head -c1 /tmp/mem >/dev/null) 2>&1; "
        "mknod /tmp/null c 1 3 && head -c1 /tmp/null && echo null-ok"
    )
    r = rt.run(unique_id(), bundle)
    assert r.out.splitlines()[0] == "made", r
    assert "Operation not permitted" in r.out, r
    assert "null-ok" in r.out


def test_no_device_rules_still_means_the_default_whitelist(rt: Runtime, bundle: Bundle) -> None:
    """Without linux.resources.devices the container still gets runc's default whitelist
    (not the host's allow-all): devices.list shows exactly the always-allowed set."""
    bundle.linux.get("resources", {}).pop("devices", None)
    bundle.sh("cat /sys/fs/cgroup/devices/devices.list")
    r = rt.run(unique_id(), bundle)
    assert r.rc == 0, r
    assert "a *:* rwm" not in r.out
    assert sorted(r.out.split("\n")[:-1]) == sorted(
        [
            "c *:* m",
            "b *:* m",
            "c 1:3 rwm",
            "c 1:8 rwm",
            "c 1:7 rwm",
            "c 5:0 rwm",
            "c 1:5 rwm",
            "c 1:9 rwm",
            "c 136:* rwm",
            "c 5:2 rwm",
            "c 10:200 rwm",
        ]
    )


def test_destroy_fails_fast_on_live_tasks_and_removes_once_they_are_gone(
    hierarchies: dict[str, Path],
) -> None:
    """cgroups.destroy waits (up to seconds) only for a cgroup the kernel is still tearing
    down, one with no task left; a cgroup that still holds a live task is reported after the
    short retries, as before, and not waited on."""
    from pyrunc.linux import cgroups

    path = hierarchies["pids"] / f"pyrunc-it-destroy-{os.getpid()}"
    path.mkdir()
    child = subprocess.Popen(["sleep", "100"])
    try:
        (path / "cgroup.procs").write_text(str(child.pid))
        t0 = time.monotonic()
        with pytest.raises(Exception, match="failed to remove cgroup paths"):
            cgroups.destroy([str(path)])
        assert time.monotonic() - t0 < 2.5  # ~0.6 s of retries, not the settle wait
        assert path.exists()
    finally:
        child.kill()
        child.wait()
    cgroups.destroy([str(path)])
    assert not path.exists()
