"""The create/start/kill/delete state machine and `run`, as callers (shims, bats) rely on it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from harness import Bundle, Runtime, read_line, unique_id

pytestmark = pytest.mark.integration

STATE_KEYS = {"ociVersion", "id", "pid", "status", "bundle", "rootfs", "created", "owner"}


def _proc_comm(pid: int) -> str:
    with open(f"/proc/{pid}/comm") as f:
        return f.read().strip()


def test_create_state_start_kill_delete(rt: Runtime, bundle: Bundle) -> None:
    """The whole lifecycle, with the state JSON a caller parses at each step."""
    cid = unique_id()
    bundle.args("sleep", "100")
    r = rt.create(cid, bundle)
    assert r.rc == 0, r
    st = rt.state(cid)
    assert set(st) == STATE_KEYS
    assert st["id"] == cid
    assert st["status"] == "created"
    assert st["pid"] > 0
    assert os.path.exists(f"/proc/{st['pid']}")
    assert st["bundle"] == str(bundle.path)
    assert st["rootfs"] == str(bundle.rootfs)
    assert st["ociVersion"] == bundle.config["ociVersion"]
    assert st["created"].endswith("Z")

    r = rt.cmd("start", cid)
    assert r.rc == 0, r
    st = rt.wait_status(cid, "running")
    assert st["status"] == "running"
    assert _proc_comm(st["pid"]) == "sleep"  # the user process replaced the init

    r = rt.cmd("kill", cid, "KILL")
    assert r.rc == 0, r
    st = rt.wait_status(cid, "stopped")
    assert st["status"] == "stopped"

    r = rt.delete(cid)
    assert r.rc == 0, r
    assert not (rt.root / cid).exists()
    assert rt.cmd("state", cid).rc == 1


def test_state_with_annotations(rt: Runtime, bundle: Bundle) -> None:
    """Annotations from config.json are echoed in the state (and only then is the key there)."""
    cid = unique_id()
    bundle.config["annotations"] = {"org.example.key": "value"}
    bundle.args("true")
    assert rt.create(cid, bundle).rc == 0
    st = rt.state(cid)
    assert set(st) == STATE_KEYS | {"annotations"}
    assert st["annotations"] == {"org.example.key": "value"}


@pytest.mark.parametrize("sig", ["KILL", "SIGKILL", "9"])
def test_kill_signal_spellings(rt: Runtime, bundle: Bundle, sig: str) -> None:
    """runc accepts a signal by name, SIG-name or number."""
    cid = unique_id()
    bundle.args("sleep", "100")
    assert rt.create(cid, bundle).rc == 0
    assert rt.cmd("start", cid).rc == 0
    r = rt.cmd("kill", cid, sig)
    assert r.rc == 0, r
    assert rt.wait_status(cid, "stopped")["status"] == "stopped"


def test_kill_created_container_default_signal(rt: Runtime, bundle: Bundle) -> None:
    """`kill ID` (SIGTERM) stops a created container, whose init is still the runtime's."""
    cid = unique_id()
    bundle.args("true")
    assert rt.create(cid, bundle).rc == 0
    r = rt.cmd("kill", cid)
    assert r.rc == 0, r
    assert rt.wait_status(cid, "stopped")["status"] == "stopped"
    r = rt.cmd("start", cid)
    assert r.rc != 0


def test_run_exit_code_propagates(rt: Runtime, bundle: Bundle) -> None:
    """`run` exits with the container's exit status and removes the container."""
    cid = unique_id()
    bundle.sh("exit 3")
    r = rt.run(cid, bundle)
    assert r.rc == 3, r
    assert not (rt.root / cid).exists()


def test_run_killed_by_signal_exit_code(rt: Runtime, bundle: Bundle) -> None:
    """A container killed by a signal makes `run` exit 128+signal, like a shell."""
    # without a PID namespace sh is not an init, which would be immune to its own SIGKILL
    bundle.linux["namespaces"] = [n for n in bundle.linux["namespaces"] if n["type"] != "pid"]
    bundle.sh("kill -9 $$")
    r = rt.run(unique_id(), bundle)
    assert r.rc == 137, r


def test_run_detached_and_pid_file(rt: Runtime, bundle: Bundle, tmp_path: Path) -> None:
    """`run -d --pid-file` returns at once; the container keeps running with that pid."""
    cid = unique_id()
    pid_file = tmp_path / "pid"
    bundle.args("sleep", "100")
    bundle.save()
    t0 = time.monotonic()
    r = rt.detached(
        "run", "-d", "--pid-file", str(pid_file), "--bundle", str(bundle.path), cid, cid=cid
    )
    assert r.rc == 0, r
    assert time.monotonic() - t0 < 20
    st = rt.state(cid)
    assert st["status"] == "running"
    assert pid_file.read_text().strip() == str(st["pid"])
    assert _proc_comm(st["pid"]) == "sleep"


def test_create_pid_file(rt: Runtime, bundle: Bundle, tmp_path: Path) -> None:
    """--pid-file holds the init's host pid, no trailing junk."""
    cid = unique_id()
    pid_file = tmp_path / "create.pid"
    bundle.args("true")
    assert rt.create(cid, bundle, "--pid-file", str(pid_file)).rc == 0
    content = pid_file.read_text()
    assert content.isdigit()
    assert int(content) == rt.state(cid)["pid"]


def test_start_twice_fails(rt: Runtime, bundle: Bundle) -> None:
    """start is only valid on a created container."""
    cid = unique_id()
    bundle.args("sleep", "100")
    assert rt.create(cid, bundle).rc == 0
    assert rt.cmd("start", cid).rc == 0
    r = rt.cmd("start", cid)
    assert r.rc != 0
    assert r.err.strip()
    assert rt.state(cid)["status"] == "running"


def test_delete_running_needs_force(rt: Runtime, bundle: Bundle) -> None:
    """delete refuses a running container unless -f, which kills it."""
    cid = unique_id()
    bundle.args("sleep", "100")
    assert rt.create(cid, bundle).rc == 0
    assert rt.cmd("start", cid).rc == 0
    pid = rt.state(cid)["pid"]
    r = rt.delete(cid)
    assert r.rc != 0
    assert "running" in r.err
    assert rt.state(cid)["status"] == "running"
    r = rt.delete(cid, force=True)
    assert r.rc == 0, r
    assert not (rt.root / cid).exists()
    deadline = time.monotonic() + 5
    while os.path.exists(f"/proc/{pid}/exe") and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not os.path.exists(f"/proc/{pid}/exe")


def test_delete_created_container(rt: Runtime, bundle: Bundle) -> None:
    """A created (never started) container can be deleted; its init goes away."""
    cid = unique_id()
    bundle.args("true")
    assert rt.create(cid, bundle).rc == 0
    pid = rt.state(cid)["pid"]
    assert rt.delete(cid).rc == 0
    assert not (rt.root / cid).exists()
    deadline = time.monotonic() + 5
    while os.path.exists(f"/proc/{pid}/exe") and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not os.path.exists(f"/proc/{pid}/exe")


def test_delete_force_nonexistent(rt: Runtime) -> None:
    """delete -f of an unknown id is not an error (shims call it blindly)."""
    r = rt.delete("nosuchcontainer", force=True)
    assert r.rc == 0, r


def test_state_nonexistent(rt: Runtime) -> None:
    """The exact message and exit code callers match on."""
    r = rt.cmd("state", "nosuchcontainer")
    assert r.rc == 1
    assert "container does not exist" in r.err
    assert r.out == ""


def test_list_formats(rt: Runtime, bundle: Bundle) -> None:
    """list: table header, -q ids only, -f json a list of states."""
    r = rt.cmd("list")
    assert r.rc == 0, r
    assert r.out.split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    cid = unique_id()
    bundle.args("true")
    assert rt.create(cid, bundle).rc == 0
    r = rt.cmd("list")
    lines = r.out.splitlines()
    assert lines[0].split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    assert lines[0].startswith("ID ")
    row = lines[1].split()
    assert row[0] == cid and row[2] == "created" and row[3] == str(bundle.path)
    assert row[5] == "root"
    r = rt.cmd("list", "-q")
    assert r.out == cid + "\n"
    r = rt.cmd("list", "-f", "json")
    items = json.loads(r.out)
    assert [i["id"] for i in items] == [cid]
    assert items[0]["status"] == "created"
    assert items[0]["pid"] == rt.state(cid)["pid"]


def test_duplicate_id(rt: Runtime, bundle: Bundle) -> None:
    """A second create with the same id fails and leaves the first container alone."""
    cid = unique_id()
    bundle.args("true")
    assert rt.create(cid, bundle).rc == 0
    pid = rt.state(cid)["pid"]
    r = rt.create(cid, bundle)
    assert r.rc != 0
    assert "container with given ID already exists" in r.err
    st = rt.state(cid)
    assert st["status"] == "created" and st["pid"] == pid


@pytest.mark.parametrize("bad", ["bad/id", "..", "a b", "x:y"])
def test_invalid_id(rt: Runtime, bundle: Bundle, bad: str) -> None:
    """Ids are limited to [A-Za-z0-9_+.-] so they are safe as path components."""
    bundle.args("true")
    r = rt.create(bad, bundle)
    assert r.rc != 0
    assert "invalid container id format" in r.err.lower()
    assert not rt.root.exists() or os.listdir(rt.root) == []


def test_stopped_state_has_pid_zero(rt: Runtime, bundle: Bundle) -> None:
    """Once stopped, the state reports pid 0 (the old pid may belong to someone else now)."""
    cid = unique_id()
    bundle.args("true")
    assert rt.create(cid, bundle).rc == 0
    assert rt.cmd("start", cid).rc == 0
    st = rt.wait_status(cid, "stopped")
    assert st["status"] == "stopped"
    assert st["pid"] == 0


def test_relative_bundle_and_pid_file(rt: Runtime, bundle: Bundle, tmp_path: Path) -> None:
    """--bundle and --pid-file relative to the caller's cwd; the state holds absolute paths."""
    cid = unique_id()
    bundle.args("true")
    bundle.save()
    work = tmp_path / "cwd"
    work.mkdir()
    rel_bundle = os.path.relpath(bundle.path, work)
    rt.ids.append(cid)
    p = subprocess.run(
        rt.argv("create", "--bundle", rel_bundle, "--pid-file", "rel.pid", cid),
        cwd=work,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=60,
    )
    assert p.returncode == 0
    st = rt.state(cid)
    assert st["bundle"] == str(bundle.path)
    assert (work / "rel.pid").read_text() == str(st["pid"])


def test_foreground_run_killed_from_outside(rt: Runtime, bundle: Bundle) -> None:
    """`kill` of a container that `run` waits on makes `run` exit 128+9."""
    cid = unique_id()
    bundle.args("sleep", "100")
    bundle.save()
    rt.ids.append(cid)
    p = subprocess.Popen(
        rt.argv("run", "--bundle", str(bundle.path), cid),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        st = _wait_running(rt, cid)
        assert st["status"] == "running"
        assert rt.cmd("kill", cid, "KILL").rc == 0
        assert p.wait(timeout=20) == 137
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def _wait_running(rt: Runtime, cid: str, timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = rt.cmd("state", cid)
        if r.rc == 0:
            st = json.loads(r.out)
            if st["status"] == "running":
                return st
        time.sleep(0.05)
    raise AssertionError(f"{cid} never ran")


def test_foreground_run_forwards_signals(rt: Runtime, bundle: Bundle) -> None:
    """SIGTERM to `run` reaches the container process, whose exit status `run` returns."""
    cid = unique_id()
    bundle.sh("trap 'exit 42' TERM; echo ready; while :; do sleep 0.1; done")
    bundle.save()
    rt.ids.append(cid)
    p = subprocess.Popen(
        rt.argv("run", "--bundle", str(bundle.path), cid),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert p.stdout is not None
        assert read_line(p.stdout.fileno(), 20) == b"ready\n"  # the trap is installed
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=20) == 42
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        if p.stdout is not None:
            p.stdout.close()


def test_exec_into_running_container(rt: Runtime, bundle: Bundle) -> None:
    """exec joins the container's namespaces and cgroup and returns the process's status."""
    cid = unique_id()
    bundle.config["hostname"] = "exec-box"
    bundle.args("sleep", "100")
    assert rt.create(cid, bundle).rc == 0
    assert rt.cmd("start", cid).rc == 0
    r = rt.cmd("exec", cid, "sh", "-c", "echo $$; hostname; tr '\\0' ' ' </proc/1/cmdline; exit 5")
    assert r.rc == 5, r
    lines = r.out.splitlines()
    assert lines[0] != "1"
    assert lines[1] == "exec-box"
    assert lines[2].split() == ["sleep", "100"]  # pid 1 is the container's process


def test_pause_resume(rt: Runtime, bundle: Bundle) -> None:
    """pause freezes the container's cgroup, resume thaws it; delete -f works while paused."""
    cid = unique_id()
    bundle.args("sleep", "100")
    assert rt.create(cid, bundle).rc == 0
    assert rt.cmd("start", cid).rc == 0
    pid = rt.state(cid)["pid"]
    assert rt.cmd("pause", cid).rc == 0
    assert rt.state(cid)["status"] == "paused"
    with open(f"/proc/{pid}/cgroup") as f:
        freezer = next(ln for ln in f if ":freezer:" in ln).split(":", 2)[2].strip()
    fz = Path("/sys/fs/cgroup/freezer") / freezer.lstrip("/") / "freezer.state"
    assert fz.read_text().strip() == "FROZEN"
    assert rt.cmd("resume", cid).rc == 0
    assert rt.state(cid)["status"] == "running"
    assert fz.read_text().strip() == "THAWED"
    assert rt.cmd("pause", cid).rc == 0
    r = rt.delete(cid, force=True)
    assert r.rc == 0, r
    assert not fz.parent.exists()
    assert not (rt.root / cid).exists()


def test_kill_all_of_a_paused_container_takes_effect(rt: Runtime, bundle: Bundle) -> None:
    """kill --all freezes, signals and thaws (runc's order), paused or not: a KILL of a
    paused container leaves it stopped, not frozen with the signal pending."""
    cid = unique_id()
    bundle.sh("sleep 100 & sleep 100 & wait")
    assert rt.create(cid, bundle).rc == 0
    assert rt.cmd("start", cid).rc == 0
    assert rt.cmd("pause", cid).rc == 0
    r = rt.cmd("kill", "--all", cid, "KILL")
    assert r.rc == 0 and not r.err, r
    assert rt.wait_status(cid, "stopped")["status"] == "stopped"
    assert rt.delete(cid).rc == 0


def test_kill_all(rt: Runtime, bundle: Bundle) -> None:
    """kill --all signals every process in the container, not only its init."""
    cid = unique_id()
    bundle.sh("trap '' TERM; sleep 100 & sleep 100 & wait")
    assert rt.create(cid, bundle).rc == 0
    assert rt.cmd("start", cid).rc == 0
    pid = rt.state(cid)["pid"]
    with open(f"/proc/{pid}/cgroup") as f:
        pids_cg = next(ln for ln in f if ":pids:" in ln).split(":", 2)[2].strip()
    procs = Path("/sys/fs/cgroup/pids") / pids_cg.lstrip("/") / "cgroup.procs"
    deadline = time.monotonic() + 10
    while len(procs.read_text().split()) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(procs.read_text().split()) == 3
    assert rt.cmd("kill", "--all", cid, "KILL").rc == 0
    deadline = time.monotonic() + 10
    while procs.read_text().split() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert procs.read_text().split() == []
    assert rt.wait_status(cid, "stopped")["status"] == "stopped"


def test_relative_root_is_the_callers(rt: Runtime, bundle: Bundle, tmp_path: Path) -> None:
    """A relative --root is resolved against the caller's directory (as runc), not against
    the bundle that create/run change into: `list` and `delete` from the same directory find
    the container."""
    bundle.process["args"] = ["sleep", "1000"]
    bundle.save()
    work = tmp_path / "work"
    work.mkdir()
    cid = unique_id()

    def cmd(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [rt.binary, "--root", "relroot", *args], cwd=work, capture_output=True, text=True,
            stdin=subprocess.DEVNULL, timeout=60,
        )

    with open(tmp_path / "out", "w") as out:
        p = subprocess.run(
            [rt.binary, "--root", "relroot", "run", "-d", "-b", str(bundle.path), cid],
            cwd=work, stdin=subprocess.DEVNULL, stdout=out, stderr=out, timeout=60,
        )
    try:
        assert p.returncode == 0, (tmp_path / "out").read_text()
        assert (work / "relroot" / cid / "state.json").exists()
        assert not (bundle.path / "relroot").exists()
        assert cmd("list", "-q").stdout.split() == [cid]
    finally:
        assert cmd("delete", "-f", cid).returncode == 0
    assert not (work / "relroot" / cid).exists()


def test_pause_resume_of_a_created_container(rt: Runtime, bundle: Bundle) -> None:
    """runc pauses a created container too: it reads `paused`, `resume` gives it back as
    `created`, and `start` then runs it."""
    cid = unique_id()
    bundle.args("sleep", "100")
    assert rt.create(cid, bundle).rc == 0
    r = rt.cmd("pause", cid)
    assert r.rc == 0, r
    assert rt.state(cid)["status"] == "paused"
    assert rt.cmd("resume", cid).rc == 0
    assert rt.state(cid)["status"] == "created"
    assert rt.cmd("start", cid).rc == 0
    assert rt.state(cid)["status"] == "running"
    assert rt.delete(cid, force=True).rc == 0


def test_list_json_owner_and_ps_json_of_nothing(rt: Runtime, bundle: Bundle) -> None:
    """`list -f json` fills owner as the table does; `ps -f json` with no process prints
    `null` (Go's nil slice), as runc."""
    cid = unique_id()
    bundle.args("true")
    assert rt.create(cid, bundle).rc == 0
    assert rt.cmd("start", cid).rc == 0
    rt.wait_status(cid, "stopped")
    items = json.loads(rt.cmd("list", "-f", "json").out)
    assert [i["owner"] for i in items if i["id"] == cid] == ["root"]
    r = rt.cmd("ps", "-f", "json", cid)
    assert r.rc == 0 and r.out == "null\n", r
    assert rt.delete(cid).rc == 0
