"""OCI hooks: each kind runs at its point with the state on stdin, its own args and env."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from harness import CGROUP_ROOT, Bundle, Runtime, unique_id

pytestmark = pytest.mark.integration

HOST_KINDS = ("prestart", "createRuntime", "createContainer", "poststart", "poststop")
RECORD = (
    'cat > "$0.json"; printf "%s\\n" "$@" > "$0.args"; readlink /proc/self/ns/mnt > "$0.mnt";'
    ' env > "$0.env"'
)


def _hook(kind: str, outdir: str) -> dict[str, Any]:
    """A hook that saves its stdin, args, mount namespace and env under outdir/kind.*."""
    return {
        "path": "/bin/sh",
        "args": ["sh", "-c", RECORD, f"{outdir}/{kind}", "first arg", kind],
        "env": [f"HOOK_KIND={kind}", "HOOK_EXTRA=x y"],
    }


def _read(outdir: Path, kind: str) -> tuple[dict[str, Any], list[str], dict[str, str]]:
    state = json.loads((outdir / f"{kind}.json").read_text())
    args = (outdir / f"{kind}.args").read_text().splitlines()
    env = dict(ln.split("=", 1) for ln in (outdir / f"{kind}.env").read_text().splitlines())
    return state, args, env


@pytest.fixture
def hooked(bundle: Bundle, tmp_path: Path) -> tuple[Bundle, Path]:
    """A bundle with every hook kind recording into tmp_path/hooks (startContainer, which runs
    inside the container, records through a bind mount of the same directory)."""
    out = tmp_path / "hooks"
    out.mkdir()
    bundle.add_mount("/hooks", str(out), "bind", ["rbind", "rw"])
    hooks: dict[str, list[dict[str, Any]]] = {k: [_hook(k, str(out))] for k in HOST_KINDS}
    hooks["startContainer"] = [_hook("startContainer", "/hooks")]
    bundle.config["hooks"] = hooks
    return bundle, out


def test_all_hooks_run_with_state(rt: Runtime, hooked: tuple[Bundle, Path]) -> None:
    """Each kind runs at its moment, in its namespace, and gets id/bundle/status on stdin."""
    bundle, out = hooked
    cid = unique_id()
    bundle.args("sleep", "100")
    assert rt.create(cid, bundle).rc == 0
    pid = rt.state(cid)["pid"]
    created = {p.name for p in out.iterdir()}
    for kind in ("prestart", "createRuntime", "createContainer"):
        assert f"{kind}.json" in created, kind
    for kind in ("startContainer", "poststart", "poststop"):
        assert f"{kind}.json" not in created, kind  # nothing runs early

    assert rt.cmd("start", cid).rc == 0
    deadline = time.monotonic() + 10
    while not (out / "poststart.env").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert (out / "startContainer.json").exists()
    assert (out / "poststart.json").exists()
    assert not (out / "poststop.json").exists()

    assert rt.cmd("kill", cid, "KILL").rc == 0
    rt.wait_status(cid, "stopped")
    assert rt.delete(cid).rc == 0
    assert (out / "poststop.json").exists()

    for kind in (*HOST_KINDS, "startContainer"):
        state, _args, _env = _read(out, kind)
        assert state["id"] == cid, kind
        assert state["bundle"] == str(bundle.path), kind
        assert state["ociVersion"] == bundle.config["ociVersion"], kind
    host_mnt = os.readlink("/proc/self/ns/mnt")
    for kind in ("prestart", "createRuntime", "poststart", "poststop"):
        assert (out / f"{kind}.mnt").read_text().strip() == host_mnt, kind
    for kind in ("createContainer", "startContainer"):
        assert (out / f"{kind}.mnt").read_text().strip() != host_mnt, kind
    # runtime-namespace hooks see the container's host pid
    for kind in ("prestart", "createRuntime", "poststart"):
        assert _read(out, kind)[0]["pid"] == pid, kind
    assert _read(out, "prestart")[0]["status"] == "creating"
    assert _read(out, "createRuntime")[0]["status"] == "creating"
    assert _read(out, "poststart")[0]["status"] == "running"
    assert _read(out, "poststop")[0]["status"] == "stopped"


def test_container_namespace_hook_status(rt: Runtime, hooked: tuple[Bundle, Path]) -> None:
    """createContainer runs while the container is being created, startContainer before the
    user process starts: their state says so, with the pid as seen in the container."""
    bundle, out = hooked
    bundle.args("true")
    r = rt.run(unique_id(), bundle)
    assert r.rc == 0, r
    assert _read(out, "createContainer")[0]["status"] == "creating"
    assert _read(out, "startContainer")[0]["status"] == "created"
    assert _read(out, "startContainer")[0]["pid"] == 1


def test_hook_args_and_env(rt: Runtime, hooked: tuple[Bundle, Path]) -> None:
    """args[0] is argv[0] and the rest follow verbatim; env is exactly the hook's env."""
    bundle, out = hooked
    bundle.args("true")
    r = rt.run(unique_id(), bundle)
    assert r.rc == 0, r
    for kind in (*HOST_KINDS, "startContainer"):
        _state, args, env = _read(out, kind)
        assert args == ["first arg", kind], kind
        assert env["HOOK_KIND"] == kind, kind
        assert env["HOOK_EXTRA"] == "x y", kind
        assert "PATH" not in env or kind == "startContainer", (kind, env)


def test_start_container_hook_runs_inside(rt: Runtime, hooked: tuple[Bundle, Path]) -> None:
    """startContainer runs in the container: it sees the container's hostname and pid ns."""
    bundle, out = hooked
    bundle.config["hooks"] = {
        "startContainer": [
            {
                "path": "/bin/sh",
                "args": [
                    "sh",
                    "-c",
                    "hostname > /hooks/where; readlink /proc/self/ns/pid >> /hooks/where",
                ],
            }
        ]
    }
    bundle.config["hostname"] = "inside-box"
    bundle.args("true")
    r = rt.run(unique_id(), bundle)
    assert r.rc == 0, r
    lines = (out / "where").read_text().splitlines()
    assert lines[0] == "inside-box"
    assert lines[1] != os.readlink("/proc/self/ns/pid")


def test_failing_create_runtime_hook_cleans_up(rt: Runtime, bundle: Bundle) -> None:
    """A createRuntime hook that fails makes `run` fail and leaves no state or cgroup."""
    path = f"/pyrunc-test-{unique_id()}"
    bundle.linux["cgroupsPath"] = path
    bundle.config["hooks"] = {
        "createRuntime": [
            {"path": "/bin/sh", "args": ["sh", "-c", "echo hook-said-no >&2; exit 1"]}
        ]
    }
    bundle.args("true")
    cid = unique_id()
    r = rt.run(cid, bundle)
    assert r.rc != 0
    assert "createRuntime" in r.err or "hook" in r.err
    assert "Traceback" not in r.err
    assert not (rt.root / cid).exists()
    for ctrl in ("memory", "pids", "cpu", "freezer", "devices", "unified"):
        d = CGROUP_ROOT / ctrl / path.lstrip("/")
        assert not d.exists(), d


def test_failing_prestart_hook_fails_create(rt: Runtime, bundle: Bundle) -> None:
    """`create` with a failing prestart hook exits non-zero and the id is free again."""
    bundle.config["hooks"] = {"prestart": [{"path": "/bin/false"}]}
    bundle.args("true")
    cid = unique_id()
    r = rt.create(cid, bundle)
    assert r.rc != 0
    assert rt.cmd("state", cid).rc == 1
    bundle.config["hooks"] = {}
    assert rt.create(cid, bundle).rc == 0


def test_hook_timeout(rt: Runtime, bundle: Bundle) -> None:
    """A hook that outlives its timeout is killed and the operation fails promptly."""
    bundle.config["hooks"] = {
        "createRuntime": [{"path": "/bin/sleep", "args": ["sleep", "30"], "timeout": 1}]
    }
    bundle.args("true")
    cid = unique_id()
    t0 = time.monotonic()
    r = rt.run(cid, bundle)
    elapsed = time.monotonic() - t0
    assert r.rc != 0
    assert elapsed < 15
    assert not (rt.root / cid).exists()


def test_failing_poststop_hook_does_not_block_delete(
    rt: Runtime, bundle: Bundle, tmp_path: Path
) -> None:
    """poststop failures are warnings: the container is still deleted."""
    bundle.config["hooks"] = {"poststop": [{"path": "/bin/false"}]}
    bundle.args("true")
    cid = unique_id()
    assert rt.create(cid, bundle).rc == 0
    r = rt.delete(cid, force=True)
    assert r.rc == 0, r
    assert not (rt.root / cid).exists()


def test_failing_poststart_hook_stops_container(rt: Runtime, bundle: Bundle) -> None:
    """A failing poststart hook fails `start` and the container is killed (runc's behaviour),
    so nothing runs that its caller believes failed."""
    bundle.config["hooks"] = {"poststart": [{"path": "/bin/false"}]}
    bundle.args("sleep", "100")
    cid = unique_id()
    assert rt.create(cid, bundle).rc == 0
    pid = rt.state(cid)["pid"]
    r = rt.cmd("start", cid)
    assert r.rc != 0
    assert "poststart" in r.err or "hook" in r.err
    deadline = time.monotonic() + 10
    while os.path.exists(f"/proc/{pid}/exe") and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not os.path.exists(f"/proc/{pid}/exe")


@pytest.mark.parametrize("terminal", [False, True])
def test_failing_start_container_hook_fails_run(
    rt: Runtime, bundle: Bundle, terminal: bool
) -> None:
    """start is released only after the startContainer hooks pass, so a failing one fails
    `run` and the program never runs; the hook's error reaches the caller even through the
    container's pty (runc's seccomp.bats looks for it in a terminal run)."""
    bundle.process["terminal"] = terminal
    bundle.config["hooks"] = {"startContainer": [{"path": "/bin/false"}]}
    cid = unique_id()
    r = rt.run(cid, bundle.sh("echo PROGRAM-RAN"))
    assert r.rc != 0, r
    assert "PROGRAM-RAN" not in r.out + r.err, r
    assert "error running hook" in r.out + r.err, r
    assert "startContainer hook failed" in r.err, r
    assert not (rt.root / cid).exists()


@pytest.mark.parametrize("kind", ["startContainer", "createRuntime"])
def test_hook_that_exits_without_reading_its_state(
    rt: Runtime, bundle: Bundle, kind: str
) -> None:
    """A hook may exit without reading stdin: the runtime's write of the state then meets a
    closed pipe. That must be the hook's "exit status 1", not the death of whoever wrote (the
    init once died of SIGPIPE, and `run` reported no cause). An annotation larger than a pipe
    makes the write outlive the hook every time."""
    bundle.config["annotations"] = {"big": "x" * 300_000}
    bundle.config["hooks"] = {kind: [{"path": "/bin/false"}]}
    cid = unique_id()
    r = rt.run(cid, bundle.sh("echo PROGRAM-RAN"))
    assert r.rc != 0, r
    assert "PROGRAM-RAN" not in r.out + r.err, r
    assert "error running hook: exit status 1" in r.out + r.err, r
    assert not (rt.root / cid).exists()
