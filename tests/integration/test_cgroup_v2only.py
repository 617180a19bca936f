"""The cgroup v2 driver against the real kernel, on this cgroup v1 host.

tools/v2only.sh runs each runtime command in a private mount namespace whose /sys/fs/cgroup is
the host's cgroup2 hierarchy (seen from the host at /sys/fs/cgroup/unified), so pyrunc sees a
v2-only host. What cgroup2 does without controllers is real here: membership, cgroup.freeze,
cgroup.* files, the eBPF device program. Resource controllers stay bound to v1 on this host, so
a limit that needs one must fail with a clear error (the v2 file formats are pinned by
tests/unit/test_cgroup_v2.py).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import Bundle, Runtime, pyrunc_binary, unique_id

pytestmark = pytest.mark.integration

HOST_V2 = "/sys/fs/cgroup/unified"
WRAPPER = Path(__file__).resolve().parents[2] / "tools" / "v2only.sh"


@pytest.fixture
def rt2(tmp_path: Path) -> Iterator[Runtime]:
    if not os.path.exists(os.path.join(HOST_V2, "cgroup.procs")):
        pytest.skip("needs the hybrid cgroup2 tree at /sys/fs/cgroup/unified")
    launcher = tmp_path / "pyrunc-v2"
    launcher.write_text(f'#!/bin/sh\nexec {WRAPPER} {pyrunc_binary()} "$@"\n')
    launcher.chmod(0o755)
    r = Runtime(str(launcher), tmp_path / "root", tmp_path)
    yield r
    r.cleanup()


def _path(bundle: Bundle) -> str:
    """A cgroup of the test's own, and a cgroup namespace rooted at it."""
    path = f"/pyrunc-v2-{unique_id()}"
    bundle.linux["cgroupsPath"] = path
    bundle.linux["namespaces"].append({"type": "cgroup"})
    return path


def _sleeper(rt2: Runtime, bundle: Bundle) -> str:
    cid = unique_id()
    bundle.args("sleep", "1000")
    bundle.save()
    assert rt2.detached("run", "-d", "-b", str(bundle.path), cid, cid=cid).rc == 0
    return cid


def test_container_lives_in_its_v2_cgroup_and_it_is_removed(rt2: Runtime, bundle: Bundle) -> None:
    path = _path(bundle)
    cid = unique_id()
    bundle.sh("cat /proc/self/cgroup; ls /sys/fs/cgroup/cgroup.freeze; sleep 1000")
    bundle.save()
    assert rt2.detached("run", "-d", "-b", str(bundle.path), cid, cid=cid).rc == 0
    procs = Path(HOST_V2 + path, "cgroup.procs").read_text().split()
    st = json.loads(rt2.cmd("state", cid).out)
    assert str(st["pid"]) in procs  # the kernel has the init in the v2 cgroup
    r = rt2.cmd("exec", cid, "cat", "/proc/self/cgroup")
    # the v2 line, seen through the namespace rooted at the container's cgroup (the v1
    # hierarchies the kernel also lists are not ours: this host is really v1)
    assert "0::/" in r.out.splitlines(), r
    assert rt2.delete(cid, force=True).rc == 0
    assert not os.path.exists(HOST_V2 + path)


def test_pause_resume_with_cgroup_freeze(rt2: Runtime, bundle: Bundle) -> None:
    path = _path(bundle)
    cid = _sleeper(rt2, bundle)
    assert rt2.cmd("pause", cid).rc == 0
    assert "frozen 1" in Path(HOST_V2 + path, "cgroup.events").read_text()
    assert json.loads(rt2.cmd("state", cid).out)["status"] == "paused"
    pid = json.loads(rt2.cmd("state", cid).out)["pid"]
    with open(f"/proc/{pid}/stat") as f:
        assert f.read().rsplit(")", 1)[1].split()[0] in ("S", "D")
    assert rt2.cmd("resume", cid).rc == 0
    assert "frozen 0" in Path(HOST_V2 + path, "cgroup.events").read_text()
    assert json.loads(rt2.cmd("state", cid).out)["status"] == "running"


@pytest.mark.parametrize("allow", [False, True])
def test_ebpf_device_program_is_enforced(rt2: Runtime, bundle: Bundle, allow: bool) -> None:
    """No devices controller on v2: the rules are an eBPF program on the container's cgroup.
    /dev/kmsg exists in the container (linux.devices) but only an allow rule lets it open."""
    _path(bundle)
    bundle.linux["devices"] = [
        {"path": "/dev/kmsg", "type": "c", "major": 1, "minor": 11, "fileMode": 0o666}
    ]
    if allow:
        bundle.linux["resources"]["devices"].append(
            {"allow": True, "type": "c", "major": 1, "minor": 11, "access": "w"}
        )
    bundle.sh("(: > /dev/kmsg) 2>&1; echo kmsg=$?; head -c1 /dev/zero >/dev/null; echo zero=$?")
    r = rt2.run(unique_id(), bundle)
    assert "zero=0" in r.out, r
    if allow:
        assert "kmsg=0" in r.out, r
    else:
        assert "Operation not permitted" in r.out and "kmsg=1" in r.out, r


def test_unified_cgroup_keys_are_written(rt2: Runtime, bundle: Bundle) -> None:
    _path(bundle)
    bundle.linux.setdefault("resources", {})["unified"] = {"cgroup.max.descendants": "3"}
    r = rt2.run_sh(bundle, "cat /sys/fs/cgroup/cgroup.max.descendants")
    assert r.rc == 0, r
    assert r.out.strip() == "3"


def test_update_unified_on_v2(rt2: Runtime, bundle: Bundle) -> None:
    path = _path(bundle)
    cid = _sleeper(rt2, bundle)
    doc = json.dumps({"unified": {"cgroup.max.depth": "2"}})
    r = rt2.cmd("update", "-r", "-", cid, input=doc)
    assert r.rc == 0, r
    assert Path(HOST_V2 + path, "cgroup.max.depth").read_text().strip() == "2"


def test_limit_without_controller_fails_cleanly(rt2: Runtime, bundle: Bundle) -> None:
    """pids is bound to v1 here, so v2 cannot have it: a clear error naming the field and the
    controller, and nothing left behind (no cgroup, no state dir)."""
    path = _path(bundle)
    bundle.linux.setdefault("resources", {})["pids"] = {"limit": 10}
    cid = unique_id()
    r = rt2.run(cid, bundle)
    assert r.rc == 1
    assert "linux.resources.pids.limit" in r.err and "pids controller" in r.err, r
    assert "Traceback" not in r.err and len(r.err.strip().splitlines()) == 1
    time.sleep(0.05)
    assert not os.path.exists(HOST_V2 + path)
    assert not (rt2.root / cid).exists()


def test_events_stats_on_v2(rt2: Runtime, bundle: Bundle) -> None:
    """`events --stats` reads the v2 files: cpu.stat (present without controllers) gives the
    container's CPU time; the shape is runc's."""
    _path(bundle)
    cid = unique_id()
    bundle.sh("i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; sleep 1000")
    bundle.save()
    assert rt2.detached("run", "-d", "-b", str(bundle.path), cid, cid=cid).rc == 0
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        r = rt2.cmd("events", "--stats", cid)
        assert r.rc == 0, r
        ev = json.loads(r.out)
        if ev["data"]["cpu"]["usage"]["total"] > 1_000_000:
            break
        time.sleep(0.1)
    assert (ev["type"], ev["id"]) == ("stats", cid)
    usage = ev["data"]["cpu"]["usage"]
    assert usage["total"] > 1_000_000  # ns: the busy loop took well over a millisecond
    assert usage["user"] + usage["kernel"] <= usage["total"] + 10_000_000
    assert set(ev["data"]) >= {"cpu", "memory", "pids", "blkio", "hugetlb"}


def test_init_and_exec_enter_the_v2_cgroup_at_birth(rt2: Runtime, bundle: Bundle) -> None:
    """clone3 with CLONE_INTO_CGROUP places the init and an exec'd process (no cgroup
    namespace here, so /proc/self/cgroup names the full path)."""
    path = f"/pyrunc-v2-{unique_id()}"
    bundle.linux["cgroupsPath"] = path
    bundle.linux["namespaces"] = [n for n in bundle.linux["namespaces"] if n["type"] != "cgroup"]
    cid = _sleeper(rt2, bundle)
    pid = json.loads(rt2.cmd("state", cid).out)["pid"]
    with open(f"/proc/{pid}/cgroup") as f:
        assert f"0::{path}" in f.read().splitlines()  # (the host's view: /unified{path})
    r = rt2.cmd("exec", cid, "cat", "/proc/self/cgroup")
    assert f"0::{path}" in r.out.splitlines(), r
    assert rt2.delete(cid, force=True).rc == 0
    assert not os.path.exists(HOST_V2 + path)
