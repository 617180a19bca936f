"""Errors as callers see them: exit status, one clear stderr line, JSON log lines, no leftovers."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from harness import CGROUP_ROOT, Bundle, Runtime, unique_id

pytestmark = pytest.mark.integration


def _assert_no_container(rt: Runtime, cid: str) -> None:
    assert not (rt.root / cid).exists()
    assert rt.cmd("state", cid).rc == 1


def test_wrong_type_in_config(rt: Runtime, bundle: Bundle) -> None:
    """A type error in config.json is one line naming the JSON path, exit 1, nothing left."""
    bundle.process["args"] = "sh -c true"
    cid = unique_id()
    r = rt.run(cid, bundle)
    assert r.rc == 1, r
    assert "Traceback" not in r.err
    lines = r.err.strip().splitlines()
    assert len(lines) == 1, r.err
    assert "process.args" in lines[0]
    _assert_no_container(rt, cid)


def test_wrong_type_in_create(rt: Runtime, bundle: Bundle) -> None:
    """The same validation applies to `create` (the path shims use)."""
    bundle.linux["namespaces"] = {"type": "pid"}
    cid = unique_id()
    r = rt.create(cid, bundle)
    assert r.rc == 1, r
    assert "Traceback" not in r.err
    assert "linux.namespaces" in r.err
    assert len(r.err.strip().splitlines()) == 1
    _assert_no_container(rt, cid)


def test_invalid_json(rt: Runtime, bundle: Bundle) -> None:
    """Malformed JSON is reported, not crashed on."""
    (bundle.path / "config.json").write_text('{"ociVersion": "1.0.2",')
    cid = unique_id()
    r = rt.cmd("run", "--bundle", str(bundle.path), cid)
    assert r.rc == 1, r
    assert "Traceback" not in r.err
    assert "config.json" in r.err
    _assert_no_container(rt, cid)


def test_missing_config(rt: Runtime, tmp_path: Path) -> None:
    """A bundle without config.json fails with a message that names the file."""
    empty = tmp_path / "empty-bundle"
    empty.mkdir()
    cid = unique_id()
    r = rt.cmd("run", "--bundle", str(empty), cid)
    assert r.rc == 1, r
    assert "config.json" in r.err
    assert "Traceback" not in r.err
    _assert_no_container(rt, cid)


def test_missing_rootfs(rt: Runtime, bundle: Bundle) -> None:
    """A root.path that does not exist fails before anything is created."""
    bundle.config["root"]["path"] = "no-such-rootfs"
    cid = unique_id()
    r = rt.run(cid, bundle)
    assert r.rc == 1, r
    assert "rootfs" in r.err
    assert "Traceback" not in r.err
    _assert_no_container(rt, cid)


def test_missing_executable(rt: Runtime, bundle: Bundle) -> None:
    """An args[0] not in the rootfs fails at create time with the name in the message."""
    bundle.args("/no/such/binary")
    cid = unique_id()
    r = rt.create(cid, bundle)
    assert r.rc != 0
    assert "/no/such/binary" in r.err
    assert "Traceback" not in r.err
    _assert_no_container(rt, cid)


@pytest.mark.parametrize("target", ["dir", "no-exec-bit"])
def test_non_executable_program_fails_create(rt: Runtime, bundle: Bundle, target: str) -> None:
    """args[0] that is a directory or has no execute bit fails `create` (as runc's LookPath),
    not the process after a `start` that reported success."""
    if target == "dir":
        path = "/etc"
    else:
        (bundle.rootfs / "noexec").write_text("#!/bin/sh\n")
        (bundle.rootfs / "noexec").chmod(0o644)
        path = "/noexec"
    bundle.args(path)
    cid = unique_id()
    r = rt.create(cid, bundle)
    assert r.rc == 1, r
    assert f'exec: \\"{path}\\": permission denied' in r.err, r  # logfmt-quoted, as runc
    assert len(r.err.strip().splitlines()) == 1, r.err
    _assert_no_container(rt, cid)


@pytest.mark.parametrize(
    ("env", "msg"),
    [
        ("NOEQ", 'invalid environment variable: "NOEQ"'),
        ("=x", "environment variable name can't be empty: \"=x\""),
    ],
)
def test_bad_environment_variable(rt: Runtime, bundle: Bundle, env: str, msg: str) -> None:
    """runc's checks of process.env, and of exec -e, in runc's words; nothing is left."""
    bundle.process["env"] = [*bundle.process["env"], env]
    cid = unique_id()
    msg = msg.replace('"', '\\"')  # as logfmt quotes it, runc's too
    r = rt.create(cid, bundle)
    assert r.rc == 1 and msg in r.err, r
    _assert_no_container(rt, cid)
    bundle.process["env"] = bundle.process["env"][:-1]
    bundle.args("sleep", "100")
    assert rt.create(cid, bundle).rc == 0
    r = rt.cmd("exec", "-e", env, cid, "true")
    assert r.rc == 255 and msg in r.err, r


def test_unopenable_log_is_one_line(rt: Runtime, tmp_path: Path) -> None:
    """--log that cannot be opened: runc's one line on stderr and exit 1, no traceback."""
    r = rt.cmd("--log", str(tmp_path / "no" / "such" / "log"), "list")
    assert r.rc == 1, r
    assert "Traceback" not in r.err
    assert r.err.count("\n") == 1 and "no such file or directory" in r.err, r


def test_executable_not_in_path(rt: Runtime, bundle: Bundle) -> None:
    """A bare name is looked up in the config's PATH; a miss says so."""
    bundle.args("no-such-command")
    cid = unique_id()
    r = rt.run(cid, bundle)
    assert r.rc != 0
    assert "no-such-command" in r.err
    assert "executable file not found" in r.err
    _assert_no_container(rt, cid)


def test_log_json_error_line(rt: Runtime, tmp_path: Path) -> None:
    """--log F --log-format json: the failure is a JSON line with level error and msg
    (containerd's shim reads exactly this)."""
    log = tmp_path / "runtime.log"
    r = rt.cmd("--log", str(log), "--log-format", "json", "state", "nosuchcontainer")
    assert r.rc == 1
    records = [json.loads(line) for line in log.read_text().splitlines()]
    errors = [rec for rec in records if rec.get("level") == "error"]
    assert errors, records
    assert "container does not exist" in errors[-1]["msg"]
    assert "time" in errors[-1]


def test_log_json_for_config_error(rt: Runtime, bundle: Bundle, tmp_path: Path) -> None:
    """A create failure is logged the same way, with the config problem in msg."""
    log = tmp_path / "runtime.log"
    bundle.process["args"] = 42
    bundle.save()
    cid = unique_id()
    r = rt.detached(
        "--log",
        str(log),
        "--log-format",
        "json",
        "create",
        "--bundle",
        str(bundle.path),
        cid,
        cid=cid,
    )
    assert r.rc == 1
    last = json.loads(log.read_text().splitlines()[-1])
    assert last["level"] == "error"
    assert "process.args" in last["msg"]


def test_text_log_on_stderr(rt: Runtime) -> None:
    """Without --log, errors are logrus text lines on stderr, stdout stays clean."""
    r = rt.cmd("delete", "nosuchcontainer")
    assert r.rc == 1
    assert r.out == ""
    assert "level=error" in r.err
    assert "container does not exist" in r.err


def test_unknown_signal(rt: Runtime, bundle: Bundle) -> None:
    """kill with a bad signal name fails without touching the container."""
    cid = unique_id()
    bundle.args("sleep", "100")
    assert rt.create(cid, bundle).rc == 0
    r = rt.cmd("kill", cid, "NOTASIGNAL")
    assert r.rc != 0
    assert rt.state(cid)["status"] == "created"


def test_kill_stopped_container_fails(rt: Runtime, bundle: Bundle) -> None:
    """Signalling a stopped container is an error (runc: container not running)."""
    cid = unique_id()
    bundle.args("true")
    assert rt.create(cid, bundle).rc == 0
    assert rt.cmd("start", cid).rc == 0
    assert rt.wait_status(cid, "stopped")["status"] == "stopped"
    r = rt.cmd("kill", cid, "KILL")
    assert r.rc != 0
    assert "not running" in r.err


def test_unknown_command_and_flag(rt: Runtime) -> None:
    """Usage errors exit non-zero and say what was wrong."""
    r = rt.cmd("no-such-command")
    assert r.rc != 0
    r = rt.cmd("state", "--no-such-flag", "x")
    assert r.rc != 0
    assert "no-such-flag" in r.err


def test_spec_writes_valid_config(rt: Runtime, tmp_path: Path) -> None:
    """`spec` writes a config the runtime itself accepts, and refuses to overwrite it."""
    d = tmp_path / "spec"
    d.mkdir()
    r = rt.cmd("spec", "--bundle", str(d))
    assert r.rc == 0, r
    cfg = json.loads((d / "config.json").read_text())
    assert cfg["process"]["args"] == ["sh"]
    assert cfg["root"] == {"path": "rootfs", "readonly": True}
    r = rt.cmd("spec", "--bundle", str(d))
    assert r.rc != 0
    assert "exists" in r.err
    assert os.path.getsize(d / "config.json") > 0


def _assert_no_cgroup(path: str) -> None:
    for ctrl in ("memory", "pids", "cpu", "freezer", "devices", "unified"):
        d = CGROUP_ROOT / ctrl / path.lstrip("/")
        assert not d.exists(), d


@pytest.mark.parametrize(
    "what",
    ["sysctl", "mount", "rlimit", "cwd-is-file"],
)
def test_init_failure_reported_and_cleaned(rt: Runtime, bundle: Bundle, what: str) -> None:
    """A failure inside the container's init (after namespaces and cgroups exist) is one line
    naming the problem; state dir and cgroups are removed."""
    path = f"/pyrunc-test-{unique_id()}"
    bundle.linux["cgroupsPath"] = path
    bundle.args("true")
    if what == "sysctl":
        bundle.linux["sysctl"] = {"net.ipv4.no_such_key_here": "1"}
        needle = "net.ipv4.no_such_key_here"
    elif what == "mount":
        bundle.add_mount("/x", "none", "nosuchfs", [])
        needle = "/x"
    elif what == "rlimit":
        bundle.process["rlimits"] = [{"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1}]
        needle = "RLIMIT_BOGUS"
    else:
        (bundle.rootfs / "etc/afile").write_text("")
        bundle.process["cwd"] = "/etc/afile"
        needle = "/etc/afile"
    cid = unique_id()
    r = rt.run(cid, bundle)
    assert r.rc == 1, r
    assert "Traceback" not in r.err
    assert len(r.err.strip().splitlines()) == 1, r.err
    assert needle in r.err
    _assert_no_container(rt, cid)
    _assert_no_cgroup(path)


def test_systemd_cgroup_driver_without_systemd_is_a_clear_error(
    rt: Runtime, bundle: Bundle
) -> None:
    """--systemd-cgroup needs systemd over D-Bus; where none runs, one line saying so and
    nothing left behind."""
    if os.path.isdir("/run/systemd/system"):
        pytest.skip("systemd runs here; the driver itself is not implemented yet")
    cid = unique_id()
    bundle.linux["cgroupsPath"] = "system.slice:pyrunc:" + cid
    bundle.save()
    r = rt.cmd("--systemd-cgroup", "run", "-b", str(bundle.path), cid)
    assert r.rc == 1
    assert "systemd support for managing cgroups is not available" in r.err
    assert len(r.err.strip().splitlines()) == 1 and "Traceback" not in r.err
    assert not (rt.root / cid).exists()
