"""Many create/start/delete cycles leave nothing behind: mounts, cgroups, state, zombies, fds."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from harness import CGROUP_ROOT, Bundle, Runtime, unique_id

pytestmark = pytest.mark.integration

CYCLES = 200


def _mounts_mentioning(*needles: str) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [ln for ln in f if any(n in ln for n in needles)]


def _cgroup_dirs_named(names: set[str]) -> list[str]:
    """Every directory under /sys/fs/cgroup whose name is one of `names` (any depth)."""
    found = []
    for top in CGROUP_ROOT.iterdir():
        if not top.is_dir() or top.is_symlink():
            continue
        for dirpath, dirnames, _files in os.walk(top):
            for d in dirnames:
                if d in names:
                    found.append(os.path.join(dirpath, d))
    return found


def _zombie_children() -> list[int]:
    me = os.getpid()
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                rest = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if rest[0] == "Z" and int(rest[1]) == me:
            out.append(int(name))
    return out


def _wait_gone(pid: int, timeout: float = 10) -> None:
    """Until the host pid is gone or a zombie (the container's process has exited)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                    return
        except FileNotFoundError:
            return
        time.sleep(0.002)
    raise AssertionError(f"container process {pid} still running after {timeout}s")


def test_many_cycles_leave_nothing(rt: Runtime, bundle: Bundle, tmp_path: Path) -> None:
    """200 create/start/stop/delete cycles on one bundle: afterwards the host is as before."""
    bundle.args("true")
    bundle.save()
    fds_before = len(os.listdir("/proc/self/fd"))
    mounts_before = _mounts_mentioning(str(bundle.path), str(rt.root))
    ids: set[str] = set()
    t0 = time.monotonic()
    for _ in range(CYCLES):
        cid = unique_id("c")
        ids.add(cid)
        r = rt.detached("create", "--bundle", str(bundle.path), cid, cid=cid)
        assert r.rc == 0, r
        pid = int(rt.state(cid)["pid"])
        r = rt.cmd("start", cid)
        assert r.rc == 0, r
        _wait_gone(pid)
        r = rt.delete(cid)
        assert r.rc == 0, r
        if time.monotonic() - t0 > 150:
            pytest.fail(f"{len(ids)} cycles took over 150 s")
    rt.ids.clear()  # all deleted already; nothing for the finalizer to do

    assert _mounts_mentioning(str(bundle.path), str(rt.root)) == mounts_before
    assert _cgroup_dirs_named(ids) == []
    assert os.listdir(rt.root) == []
    assert _zombie_children() == []
    assert len(os.listdir("/proc/self/fd")) == fds_before
