"""The init and exec'd processes join their cgroups themselves (cgroups.SelfJoin): a `tasks`
write of 0 per v1 hierarchy as the fork's first act, clone3 CLONE_INTO_CGROUP for cgroup2.

What matters is where the processes end up, seen by the kernel and from inside, and that
limits still bind them; the old path (the parent writes the pid into cgroup.procs) stays for
what the fast path cannot do, and is tested here through the same code with a threaded caller.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

import pytest
from harness import Bundle, Runtime, unique_id
from test_cgroups import _hierarchies, _proc_cgroup

from pyrunc.errors import RuntimeErr
from pyrunc.linux import cgroups

pytestmark = pytest.mark.integration


@pytest.fixture
def hier() -> dict[str, Path]:
    h = _hierarchies()
    if "memory" not in h or "unified" not in h:
        pytest.skip("needs the hybrid host: v1 hierarchies and cgroup2 at /sys/fs/cgroup/unified")
    return h


def _in_every_hierarchy(text: str, path: str, hier: dict[str, Path]) -> None:
    seen = _proc_cgroup(text)
    for key in hier:
        assert seen.get(key) == path, (key, text)


def test_init_and_exec_are_in_every_hierarchy(
    rt: Runtime, bundle: Bundle, hier: dict[str, Path]
) -> None:
    """Every v1 hierarchy (controllers and name=systemd) and the cgroup2 tree, for the init
    and for an exec'd process, as each sees /proc/self/cgroup from inside (no cgroupns)."""
    path = f"/pyrunc-join-{unique_id()}"
    bundle.linux["cgroupsPath"] = path
    bundle.linux["namespaces"] = [n for n in bundle.linux["namespaces"] if n["type"] != "cgroup"]
    bundle.sh("cat /proc/self/cgroup; sleep 1000")
    bundle.save()
    cid = unique_id()
    out = rt.scratch / "init-out"
    assert rt.create(cid, bundle, output=out).rc == 0
    assert rt.cmd("start", cid).rc == 0
    deadline = time.monotonic() + 10
    while "0::" not in out.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    _in_every_hierarchy(out.read_text(), path, hier)
    r = rt.cmd("exec", cid, "cat", "/proc/self/cgroup")
    assert r.rc == 0, r
    _in_every_hierarchy(r.out, path, hier)
    pid = rt.state(cid)["pid"]
    # and the kernel's own lists agree
    for key, mnt in hier.items():
        procs = (mnt / path.lstrip("/") / "cgroup.procs").read_text().split()
        assert str(pid) in procs, key
    assert rt.delete(cid, force=True).rc == 0


def test_limits_still_bind_the_init_and_exec(rt: Runtime, bundle: Bundle) -> None:
    """pids.max is enforced on what the container forks, and on an exec'd process's forks."""
    bundle.linux.setdefault("resources", {})["pids"] = {"limit": 4}
    bundle.sh("sleep 1000")
    bundle.save()
    cid = unique_id()
    assert rt.detached("run", "-d", "-b", str(bundle.path), cid, cid=cid).rc == 0
    r = rt.cmd(
        "exec", cid, "sh", "-c",
        "for i in 1 2 3 4 5 6; do sleep 100 >/dev/null 2>&1 & done; echo done",
    )
    assert "can't fork" in r.out + r.err or "Resource temporarily unavailable" in r.out + r.err, r
    assert rt.delete(cid, force=True).rc == 0


def test_memory_limit_seen_from_inside(rt: Runtime, bundle: Bundle) -> None:
    bundle.linux.setdefault("resources", {})["memory"] = {"limit": 64 * 1024 * 1024}
    bundle.linux["namespaces"].append({"type": "cgroup"})
    r = rt.run_sh(bundle, "cat /sys/fs/cgroup/memory/memory.limit_in_bytes")
    assert r.rc == 0, r
    assert r.out.split() == [str(64 * 1024 * 1024)], r


def test_exec_ignore_paused_waits_for_resume(rt: Runtime, bundle: Bundle) -> None:
    """The exec'd process joins the frozen freezer cgroup last, so it stops only there and
    finishes once the container is resumed."""
    bundle.sh("sleep 1000")
    bundle.save()
    cid = unique_id()
    assert rt.detached("run", "-d", "-b", str(bundle.path), cid, cid=cid).rc == 0
    assert rt.cmd("pause", cid).rc == 0
    p = subprocess.Popen(
        rt.argv("exec", "--ignore-paused", cid, "echo", "ran"),
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        time.sleep(1.0)
        assert p.poll() is None  # frozen with the container
        assert rt.cmd("resume", cid).rc == 0
        out, err = p.communicate(timeout=20)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, err
    assert out == "ran\n"
    assert rt.delete(cid, force=True).rc == 0


# -- the mechanism, through the library against the real kernel --------------------------------


@pytest.fixture
def cgdirs(hier: dict[str, Path]):  # noqa: ANN201
    """A fresh cgroup in the pids hierarchy and in cgroup2; removed afterwards."""
    name = f"pyrunc-sj-{unique_id()}"
    paths = {"pids": str(hier["pids"] / name), "unified": str(hier["unified"] / name)}
    cgroups.create(paths)
    yield paths
    cgroups.destroy(paths.values())


def _fork_and_report(sj: cgroups.SelfJoin) -> str:
    """Fork through sj, self-join in the child, report the child's /proc/self/cgroup."""
    r, w = os.pipe()
    pid = sj.fork()
    if pid == 0:
        try:
            os.close(r)
            cgroups.self_join(sj)
            with open("/proc/self/cgroup", "rb") as f:
                os.write(w, f.read())
        except BaseException as e:  # noqa: BLE001
            os.write(w, f"error {e}".encode())
        os._exit(0)
    sj.close()
    os.close(w)
    with os.fdopen(r, "rb") as f:
        text = f.read().decode()
    os.waitpid(pid, 0)
    return text


def test_self_join_single_threaded_uses_clone3(cgdirs: dict[str, str]) -> None:
    sj = cgroups.prepare_self_join(cgdirs)
    assert sj.into >= 0 and sj.rest == {}
    seen = _proc_cgroup(_fork_and_report(sj))
    name = "/" + os.path.basename(cgdirs["pids"])
    assert seen["unified"].endswith(name) and seen["pids"].endswith(name)


def test_threaded_caller_leaves_cgroup2_to_the_parent(cgdirs: dict[str, str]) -> None:
    """clone3 runs no libc atfork handlers: with another thread alive the cgroup2 join goes
    back to the parent's cgroup.procs write; v1 `tasks` writes are still the child's."""
    stop = threading.Event()
    t = threading.Thread(target=stop.wait)
    t.start()
    try:
        sj = cgroups.prepare_self_join(cgdirs)
    finally:
        stop.set()
        t.join()
    assert sj.into == -1 and sj.rest == {"unified": cgdirs["unified"]}
    seen = _proc_cgroup(_fork_and_report(sj))
    assert seen["pids"].endswith("/" + os.path.basename(cgdirs["pids"]))
    assert not seen["unified"].endswith("/" + os.path.basename(cgdirs["unified"]))


def test_clone3_failure_falls_back_to_fork(cgdirs: dict[str, str], tmp_path: Path) -> None:
    """A directory clone3 refuses (not a cgroup2 one): os.fork, and the parent joins it."""
    sj = cgroups.prepare_self_join({"unified": cgdirs["unified"]})
    os.close(sj.into)
    sj.into = os.open(str(tmp_path), os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    seen = _proc_cgroup(_fork_and_report(sj))
    assert sj.rest == {"unified": cgdirs["unified"]}
    assert not seen["unified"].endswith("/" + os.path.basename(cgdirs["unified"]))


def test_child_reports_a_failed_tasks_write(hier: dict[str, Path]) -> None:
    """A v1 cpuset cgroup with no cpus refuses tasks (ENOSPC): one clear line naming the file."""
    if "cpuset" not in hier:
        pytest.skip("no v1 cpuset hierarchy")
    d = hier["cpuset"] / f"pyrunc-sj-{unique_id()}"
    d.mkdir()
    try:
        sj = cgroups.prepare_self_join({"cpuset": str(d)})
        text = _fork_and_report(sj)
        assert text.startswith("error cgroup join failed: "), text
        assert f"write {d}/tasks: no space left on device" in text
    finally:
        d.rmdir()


def test_self_join_error_is_a_runtime_error() -> None:
    sj = cgroups.SelfJoin()
    r, w = os.pipe()
    os.close(r)
    sj.fds.append(("/nowhere", w))
    with pytest.raises(RuntimeErr):
        cgroups.self_join(sj)
