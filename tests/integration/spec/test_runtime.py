"""runtime.md (state, lifecycle, operations) and config.md's POSIX-platform hooks.

Every assertion is about what the host or the container observes: the state JSON the runtime
prints, /proc of the container's process, files the container or a hook wrote into a bind-mounted
directory, cgroup directories. The operations are driven through the runc CLI (create, start,
state, kill, delete), which both runtimes implement, so the same tests judge pyrunc and runc.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

import pytest
from harness import CGROUP_ROOT, Bundle, Runtime, unique_id
from helpers import (
    create_and_start,
    create_or_start_fails,
    create_sleeping,
    own_cgroup,
    stopped,
    wait_file,
)

pytestmark = pytest.mark.integration

POSTSTART_IN_CREATE = "runc 1.1.5 runs poststart hooks during `create`, before startContainer"
HOOK_KINDS = (
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
)  # in the order the lifecycle runs them
SEMVER = re.compile(r"^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$")

# A host hook: save the state from stdin, append the kind to a shared order file, record the
# mount namespace it ran in.  sh -c SCRIPT NAME DIR KIND  ->  $1 = DIR, $2 = KIND
RECORD = (
    'cat > "$1/$2.json"; echo "$2" >> "$1/order"; readlink /proc/self/ns/mnt > "$1/$2.mnt"; '
    'exit "${3:-0}"'
)


def _hook(kind: str, outdir: str, rc: int = 0, sh: str = "/bin/sh") -> dict[str, Any]:
    return {"path": sh, "args": ["sh", "-c", RECORD, "hook", outdir, kind, str(rc)]}


def _sleeping(rt: Runtime, bundle: Bundle) -> tuple[str, int]:
    """A started container whose process sleeps; returns (id, host pid)."""
    cid, _ = create_sleeping(rt, bundle)
    r = rt.cmd("start", cid)
    assert r.rc == 0, r
    st = rt.wait_status(cid, "running")
    assert st["status"] == "running", st
    return cid, st["pid"]


def _comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except FileNotFoundError:
        return ""


def _alive(pid: int) -> bool:
    """True while pid is a live (not zombie) process."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _cgroup_dirs(cgpath: str) -> list[Path]:
    """The directories cgroupsPath names in every mounted v1 hierarchy (and the unified one)."""
    dirs = []
    for ctrl in ("memory", "pids", "cpu", "devices", "freezer", "unified"):
        if (CGROUP_ROOT / ctrl).is_dir():
            dirs.append(CGROUP_ROOT / ctrl / cgpath.lstrip("/"))
    return dirs


# --- State -------------------------------------------------------------------------------------


@pytest.mark.spec(
    "runtime.md#state",
    "The state of a container includes the following properties: ociVersion (string, REQUIRED), "
    "id (string, REQUIRED), status (string, REQUIRED), pid (int, REQUIRED when status is created "
    "or running on Linux), bundle (string, REQUIRED)",
)
def test_state_required_properties(rt: Runtime, bundle: Bundle) -> None:
    """A caller (containerd, a hook) relies on every REQUIRED key being there, typed."""
    cid, _ = create_sleeping(rt, bundle)
    st = rt.state(cid)
    assert isinstance(st.get("ociVersion"), str) and SEMVER.match(st["ociVersion"]), st
    assert st.get("id") == cid
    assert st.get("status") == "created"
    assert isinstance(st.get("pid"), int) and st["pid"] > 0
    assert isinstance(st.get("bundle"), str)


@pytest.mark.spec(
    "runtime.md#state",
    "pid (int, REQUIRED when status is created or running on Linux) is the ID of the container "
    "process. For hooks executed in the runtime namespace, it is the pid as seen by the runtime.",
)
def test_state_pid_is_container_process(rt: Runtime, bundle: Bundle) -> None:
    """The pid must be the host pid of the process inside the container's namespaces, so that a
    caller can signal or nsenter it; check it lives in the container's (new) pid/uts ns."""
    cid, pid = _sleeping(rt, bundle)
    assert _comm(pid) == "sleep"
    for ns in ("pid", "uts", "mnt"):
        assert os.readlink(f"/proc/{pid}/ns/{ns}") != os.readlink(f"/proc/self/ns/{ns}"), ns


@pytest.mark.spec(
    "runtime.md#state",
    "bundle (string, REQUIRED) is the absolute path to the container's bundle directory.",
)
def test_state_bundle_is_absolute_bundle_path(
    rt: Runtime, bundle: Bundle, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Consumers find config.json and the rootfs through it, so it must be absolute even when
    the runtime was given a relative --bundle."""
    cid = unique_id()
    bundle.args("true")
    bundle.save()
    monkeypatch.chdir(bundle.path.parent)
    rt._track(cid)
    r = rt.detached("create", "--bundle", bundle.path.name, cid, cid=cid)
    assert r.rc == 0, r
    st = rt.state(cid)
    assert os.path.isabs(st["bundle"]), st
    assert os.path.samefile(st["bundle"], bundle.path)


@pytest.mark.spec(
    "runtime.md#state",
    "status (string, REQUIRED) is the runtime state of the container. The value MAY be one of: "
    "creating, created, running, stopped. Additional values MAY be defined by the runtime, "
    "however, they MUST be used to represent new runtime states not defined above.",
)
def test_state_status_values_follow_lifecycle(rt: Runtime, bundle: Bundle) -> None:
    """Each lifecycle step reports the spec's status word (created -> running -> stopped)."""
    cid, _ = create_sleeping(rt, bundle)
    seen = [rt.state(cid)["status"]]
    assert rt.cmd("start", cid).rc == 0
    seen.append(rt.wait_status(cid, "running")["status"])
    assert rt.cmd("kill", cid, "KILL").rc == 0
    seen.append(rt.wait_status(cid, "stopped")["status"])
    assert seen == ["created", "running", "stopped"]


# --- Query state, start, kill, delete: no id, unknown id ----------------------------------------


NO_ID = "This operation MUST generate an error if it is not provided the container ID."


def _op_case(operation: str, unknown_id: bool, section: str, requirement: str) -> Any:
    """One case of the no-id / unknown-id test carrying its own section and MUST sentence, so
    the SPEC_JSON report keeps one record per requirement."""
    which = "unknown-id" if unknown_id else "no-id"
    return pytest.param(
        operation,
        unknown_id,
        marks=pytest.mark.spec(section, requirement),
        id=f"{operation}-{which}",
    )


@pytest.mark.parametrize(
    "operation, unknown_id",
    [
        _op_case(
            "state",
            False,
            "runtime.md#query-state",
            "This operation MUST generate an error if it is not provided the ID of a container.",
        ),
        _op_case("start", False, "runtime.md#start", NO_ID),
        _op_case("kill", False, "runtime.md#kill", NO_ID),
        _op_case("delete", False, "runtime.md#delete", NO_ID),
        _op_case(
            "state",
            True,
            "runtime.md#query-state",
            "Attempting to query a container that does not exist MUST generate an error.",
        ),
        _op_case(
            "start",
            True,
            "runtime.md#start",
            "Attempting to start a container that does not exist MUST generate an error.",
        ),
        _op_case(
            "delete",
            True,
            "runtime.md#delete",
            "Attempting to delete a container that does not exist MUST generate an error.",
        ),
    ],
)
def test_operation_without_known_id_errors(rt: Runtime, operation: str, unknown_id: bool) -> None:
    """Each operation on a container needs the id of one that exists: without an id, or with an
    unknown one (delete without --force), it fails and prints no (made-up) state JSON."""
    r = rt.cmd(operation, *([unique_id("nx")] if unknown_id else []))
    assert r.rc != 0, r
    assert not r.out.lstrip().startswith("{"), r


# --- Create ------------------------------------------------------------------------------------


@pytest.mark.spec(
    "runtime.md#create",
    "This operation MUST generate an error if it is not provided a path to the bundle and the "
    "container ID to associate with the container.",
)
def test_create_without_id_errors(rt: Runtime, bundle: Bundle) -> None:
    """Without an id nothing can be created (and nothing is: the root stays empty)."""
    bundle.args("true")
    bundle.save()
    r = rt.detached("create", "--bundle", str(bundle.path), cid="")
    assert r.rc != 0, r
    assert not rt.root.exists() or not any(rt.root.iterdir())


@pytest.mark.spec(
    "runtime.md#create",
    "If the ID provided is not unique across all containers within the scope of the runtime, "
    "or is not valid in any other way, the implementation MUST generate an error and a new "
    "container MUST NOT be created.",
)
def test_create_duplicate_id_errors(rt: Runtime, bundle: Bundle) -> None:
    """A second create with a taken id fails and leaves the first container as it was."""
    cid, _ = create_sleeping(rt, bundle)
    before = rt.state(cid)
    r = rt.create(cid, bundle)
    assert r.rc != 0, r
    after = rt.state(cid)
    assert after["pid"] == before["pid"] and after["status"] == "created"
    assert _comm(before["pid"]) != ""


@pytest.mark.parametrize("bad_id", ["a/b", ".."])
@pytest.mark.spec(
    "runtime.md#create",
    "If the ID provided is not unique across all containers within the scope of the runtime, "
    "or is not valid in any other way, the implementation MUST generate an error and a new "
    "container MUST NOT be created.",
)
def test_create_invalid_id_errors(rt: Runtime, bundle: Bundle, bad_id: str) -> None:
    """Ids that are not plain names (a path, a parent reference, empty) are refused."""
    bundle.args("true")
    bundle.save()
    r = rt.detached("create", "--bundle", str(bundle.path), bad_id, cid=bad_id)
    assert r.rc != 0, r
    listing = rt.cmd("list", "-q")
    assert listing.out.strip() == "", listing


@pytest.mark.spec(
    "runtime.md#create",
    "This operation MUST create a new container. This means that all of the resources "
    "associated with the container MUST be created, however, the user-specified program MUST "
    "NOT be run at this time.",
)
def test_create_does_not_run_program(rt: Runtime, bundle: Bundle, outdir: Path) -> None:
    """After create the namespaces and cgroup exist but the program has not run; start runs it."""
    cid = unique_id()
    cgpath = own_cgroup(bundle, cid)
    bundle.config["hostname"] = "spec-created"
    bundle.sh("echo ran > /out/ran")
    assert rt.create(cid, bundle).rc == 0
    pid = rt.state(cid)["pid"]
    assert os.readlink(f"/proc/{pid}/ns/uts") != os.readlink("/proc/self/ns/uts")
    assert str(pid) in (CGROUP_ROOT / "pids" / cgpath.lstrip("/") / "cgroup.procs").read_text()
    time.sleep(0.3)
    assert not (outdir / "ran").exists()
    assert rt.cmd("start", cid).rc == 0
    assert wait_file(outdir / "ran")


@pytest.mark.spec(
    "runtime.md#lifecycle",
    "Any updates to config.json after this step MUST NOT affect the container.",
)
def test_config_changes_after_create_have_no_effect(
    rt: Runtime, bundle: Bundle, outdir: Path
) -> None:
    """The runtime must start what was configured at create time, not re-read config.json."""
    cid = unique_id()
    bundle.process["env"] = [*bundle.process["env"], "WHICH=created"]
    bundle.sh('echo "$WHICH" > /out/which')
    assert rt.create(cid, bundle).rc == 0
    bundle.process["env"] = [*bundle.process["env"][:-1], "WHICH=edited"]
    bundle.sh('echo "edited-args $WHICH" > /out/which')
    bundle.save()
    assert rt.cmd("start", cid).rc == 0
    assert wait_file(outdir / "which")
    time.sleep(0.1)
    assert (outdir / "which").read_text().strip() == "created"


@pytest.mark.spec(
    "runtime.md#errors",
    "Unless otherwise stated, generating an error MUST leave the state of the environment as if "
    "the operation were never attempted - modulo any possible trivial ancillary changes such as "
    "logging.",
)
def test_failed_create_leaves_nothing(rt: Runtime, bundle: Bundle, tmp_path: Path) -> None:
    """After a failed create: no container, no cgroup, no process left in it, id free again."""
    cid = unique_id()
    cgpath = own_cgroup(bundle, cid)
    bundle.add_mount("/data", str(tmp_path / "does-not-exist"), "bind", ["rbind"])
    bundle.args("true")
    assert rt.create(cid, bundle).rc != 0
    assert rt.cmd("state", cid).rc != 0
    assert rt.cmd("list", "-q").out.strip() == ""
    for d in _cgroup_dirs(cgpath):
        assert not d.exists(), d
    bundle.config["mounts"] = bundle.config["mounts"][:-1]
    r = rt.create(cid, bundle)
    assert r.rc == 0, r


# --- Start -------------------------------------------------------------------------------------


@pytest.mark.spec(
    "runtime.md#start",
    "Attempting to start a container that is not created MUST have no effect on the container "
    "and MUST generate an error.",
)
def test_start_running_container_errors(rt: Runtime, bundle: Bundle, outdir: Path) -> None:
    """A second start fails and does not run the program again (the counter stays at one)."""
    bundle.sh("echo x >> /out/starts; exec sleep 100")
    cid = create_and_start(rt, bundle)
    st = rt.wait_status(cid, "running")
    assert wait_file(outdir / "starts")
    r = rt.cmd("start", cid)
    assert r.rc != 0, r
    time.sleep(0.2)
    assert (outdir / "starts").read_text() == "x\n"
    after = rt.state(cid)
    assert after["status"] == "running" and after["pid"] == st["pid"]


@pytest.mark.spec(
    "runtime.md#start",
    "Attempting to start a container that is not created MUST have no effect on the container "
    "and MUST generate an error.",
)
def test_start_stopped_container_errors(rt: Runtime, bundle: Bundle) -> None:
    """A stopped container cannot be started again; it stays stopped (and deletable)."""
    cid = stopped(rt, bundle.args("true"))
    r = rt.cmd("start", cid)
    assert r.rc != 0, r
    assert rt.state(cid)["status"] == "stopped"


@pytest.mark.spec(
    "runtime.md#start",
    "This operation MUST run the user-specified program as specified by process.",
)
def test_start_runs_program(rt: Runtime, bundle: Bundle, outdir: Path) -> None:
    """start execs process.args: the container's pid becomes that program."""
    cid = unique_id()
    bundle.args("sh", "-c", 'echo "$0 $1" > /out/argv; exec sleep 100', "a0", "a1")
    assert rt.create(cid, bundle).rc == 0
    pid = rt.state(cid)["pid"]
    assert rt.cmd("start", cid).rc == 0
    assert wait_file(outdir / "argv")
    deadline = time.monotonic() + 5
    while _comm(pid) != "sleep" and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _comm(pid) == "sleep"
    assert (outdir / "argv").read_text() == "a0 a1\n"


@pytest.mark.spec(
    "runtime.md#start",
    "Upon successful completion of this operation the status property of this container MUST "
    "be running.",
)
def test_status_running_after_start(rt: Runtime, bundle: Bundle) -> None:
    """Right after start returns (no polling) a long-running container is `running`."""
    cid, _ = create_sleeping(rt, bundle)
    assert rt.cmd("start", cid).rc == 0
    assert rt.state(cid)["status"] == "running"


@pytest.mark.spec(
    "runtime.md#start",
    "This operation MUST generate an error if process was not set.",
)
def test_start_without_process_errors(rt: Runtime, bundle: Bundle) -> None:
    """Without `process` there is nothing to run: create (validating early) or start fails."""
    del bundle.config["process"]
    create_or_start_fails(rt, bundle)


# --- Kill --------------------------------------------------------------------------------------


@pytest.mark.spec(
    "runtime.md#kill",
    "Attempting to send a signal to a container that is neither created nor running MUST have "
    "no effect on the container and MUST generate an error.",
)
def test_kill_stopped_container_errors(rt: Runtime, bundle: Bundle) -> None:
    """A stopped container cannot be signalled; it stays stopped and deletable."""
    cid = stopped(rt, bundle.args("true"))
    r = rt.cmd("kill", cid, "KILL")
    assert r.rc != 0, r
    assert rt.state(cid)["status"] == "stopped"
    assert rt.delete(cid).rc == 0


@pytest.mark.spec(
    "runtime.md#kill",
    "This operation MUST send the specified signal to the container process.",
)
def test_kill_sends_the_signal(rt: Runtime, bundle: Bundle, outdir: Path) -> None:
    """The container's process traps USR1 and records it: the runtime sent that signal."""
    bundle.sh(
        "trap 'echo USR1 > /out/sig; exit 0' USR1; trap 'echo TERM > /out/sig; exit 0' TERM; "
        "echo ready > /out/ready; while :; do sleep 0.05; done"
    )
    cid = create_and_start(rt, bundle)
    assert wait_file(outdir / "ready")
    r = rt.cmd("kill", cid, "USR1")
    assert r.rc == 0, r
    assert wait_file(outdir / "sig")
    assert (outdir / "sig").read_text().strip() == "USR1"


# --- Delete ------------------------------------------------------------------------------------


@pytest.mark.spec(
    "runtime.md#delete",
    "Attempting to delete a container that is not stopped MUST have no effect on the container "
    "and MUST generate an error.",
)
def test_delete_running_container_errors(rt: Runtime, bundle: Bundle) -> None:
    """delete (without --force) of a running container fails; it keeps running, same pid."""
    cid, pid = _sleeping(rt, bundle)
    r = rt.delete(cid)
    assert r.rc != 0, r
    st = rt.state(cid)
    assert st["status"] == "running" and st["pid"] == pid
    assert _comm(pid) == "sleep"


@pytest.mark.xfail(
    strict=True,
    reason="runc 1.1.5 and pyrunc (following it) delete a `created` container by killing it",
)
@pytest.mark.spec(
    "runtime.md#delete",
    "Attempting to delete a container that is not stopped MUST have no effect on the container "
    "and MUST generate an error.",
)
def test_delete_created_container_errors(rt: Runtime, bundle: Bundle) -> None:
    """`created` is not `stopped`, so by the letter of the spec delete must refuse it."""
    cid, pid = create_sleeping(rt, bundle)
    r = rt.delete(cid)
    assert r.rc != 0, r
    assert rt.state(cid)["pid"] == pid


@pytest.mark.spec(
    "runtime.md#delete",
    "Deleting a container MUST delete the resources that were created during the create step.",
)
def test_delete_removes_resources(rt: Runtime, bundle: Bundle) -> None:
    """After delete: the id is unknown, the cgroups it created are gone, no process is left."""
    cid = unique_id()
    cgpath = own_cgroup(bundle, cid)
    _, pid = create_sleeping(rt, bundle, cid)
    dirs = [d for d in _cgroup_dirs(cgpath) if d.exists()]
    assert dirs, "the container has no cgroup to check"
    assert rt.cmd("start", cid).rc == 0
    assert rt.cmd("kill", cid, "KILL").rc == 0
    assert rt.wait_status(cid, "stopped")["status"] == "stopped"
    assert rt.delete(cid).rc == 0
    assert rt.cmd("state", cid).rc != 0
    assert cid not in rt.cmd("list", "-q").out.split()
    for d in dirs:
        assert not d.exists(), d
    assert not _alive(pid)


@pytest.mark.spec(
    "runtime.md#delete",
    "Note that resources associated with the container, but not created by this container, "
    "MUST NOT be deleted.",
)
def test_delete_keeps_resources_not_created(rt: Runtime, bundle: Bundle, outdir: Path) -> None:
    """The bundle, a bind-mounted host directory and what the container wrote there survive."""
    (outdir / "host-file").write_text("keep\n")
    cid = stopped(rt, bundle.sh("echo from-container > /out/written"))
    assert rt.delete(cid).rc == 0
    assert (outdir / "host-file").read_text() == "keep\n"
    assert (outdir / "written").read_text() == "from-container\n"
    assert (bundle.path / "config.json").is_file()
    assert (bundle.rootfs / "bin" / "busybox").is_file()


# --- Hooks (config.md#posix-platform-hooks, runtime.md#lifecycle) --------------------------------


@pytest.fixture
def hooked(bundle: Bundle, outdir: Path) -> Bundle:
    """Every hook kind records itself; startContainer (run inside the container) through /out."""
    hooks: dict[str, list[dict[str, Any]]] = {
        k: [_hook(k, "/out" if k == "startContainer" else str(outdir))] for k in HOOK_KINDS
    }
    bundle.config["hooks"] = hooks
    return bundle


def _full_lifecycle(rt: Runtime, bundle: Bundle) -> tuple[str, int]:
    """create, start, kill and delete a sleeping container, so every hook kind gets its turn;
    returns (id, host pid of the container process)."""
    cid, pid = create_sleeping(rt, bundle)
    assert rt.cmd("start", cid).rc == 0
    assert rt.cmd("kill", cid, "KILL").rc == 0
    rt.wait_status(cid, "stopped")
    assert rt.delete(cid).rc == 0
    return cid, pid


@pytest.mark.runc_deviation(POSTSTART_IN_CREATE)
@pytest.mark.spec(
    "runtime.md#lifecycle",
    "The prestart hooks MUST be invoked by the runtime. The createRuntime hooks MUST be invoked "
    "by the runtime. The createContainer hooks MUST be invoked by the runtime. [start] The "
    "startContainer hooks MUST be invoked by the runtime. The runtime MUST run the user-specified "
    "program. The poststart hooks MUST be invoked by the runtime. [delete] The poststop hooks "
    "MUST be invoked by the runtime.",
)
def test_hooks_lifecycle_order(rt: Runtime, hooked: Bundle, outdir: Path) -> None:
    """The six kinds run once each, in the lifecycle's order."""
    _full_lifecycle(rt, hooked)
    order = (outdir / "order").read_text().split()
    assert order == list(HOOK_KINDS)


@pytest.mark.spec("config.md#posix-platform-hooks", "Hooks MUST be called in the listed order.")
def test_hooks_of_one_kind_in_listed_order(rt: Runtime, bundle: Bundle, outdir: Path) -> None:
    """Several hooks of one kind run in array order (names chosen so sorting would differ)."""
    names = ["c-first", "a-second", "b-third"]
    bundle.config["hooks"] = {"createRuntime": [_hook(n, str(outdir)) for n in names]}
    bundle.args("true")
    assert rt.create(unique_id(), bundle).rc == 0
    assert (outdir / "order").read_text().split() == names


@pytest.mark.spec(
    "config.md#posix-platform-hooks",
    "The state of the container MUST be passed to hooks over stdin so that they may do work "
    "appropriate to the current state of the container.",
)
def test_hooks_get_state_on_stdin(rt: Runtime, hooked: Bundle, outdir: Path) -> None:
    """Every hook reads a state JSON with the container's id, bundle and (for live kinds) pid."""
    cid, pid = _full_lifecycle(rt, hooked)
    for kind in HOOK_KINDS:
        st = json.loads((outdir / f"{kind}.json").read_text())
        assert st["id"] == cid, kind
        assert os.path.samefile(st["bundle"], hooked.path), kind
        assert isinstance(st["ociVersion"], str), kind
        assert st["status"] in ("creating", "created", "running", "stopped"), kind
    for kind in ("prestart", "createRuntime", "poststart"):  # runtime namespace: host pid
        assert json.loads((outdir / f"{kind}.json").read_text())["pid"] == pid, kind


@pytest.mark.spec(
    "config.md#createruntime-hooks",
    "The createRuntime hooks MUST be executed in the runtime namespace.",
)
def test_create_runtime_hook_in_runtime_namespace(
    rt: Runtime, hooked: Bundle, outdir: Path
) -> None:
    """createRuntime (and prestart) run in the host's mount namespace, not the container's."""
    create_sleeping(rt, hooked)
    host = os.readlink("/proc/self/ns/mnt")
    assert (outdir / "createRuntime.mnt").read_text().strip() == host
    assert (outdir / "prestart.mnt").read_text().strip() == host


@pytest.mark.spec(
    "config.md#createcontainer-hooks",
    "The createContainer hooks MUST be executed in the container namespace.",
)
def test_create_container_hook_in_container_namespace(
    rt: Runtime, hooked: Bundle, outdir: Path
) -> None:
    """createContainer runs in the container's mount namespace (before pivot_root)."""
    _, pid = create_sleeping(rt, hooked)
    assert (outdir / "createContainer.mnt").read_text().strip() == os.readlink(
        f"/proc/{pid}/ns/mnt"
    )


@pytest.mark.spec(
    "config.md#startcontainer-hooks",
    "The startContainer hooks' path MUST resolve in the container namespace. The "
    "startContainer hooks MUST be executed in the container namespace.",
)
def test_start_container_hook_in_container(rt: Runtime, bundle: Bundle, outdir: Path) -> None:
    """The hook's path exists only in the rootfs; it runs with the container's mount ns."""
    script = bundle.rootfs / "spec-start-hook"
    script.write_text("#!/bin/sh\nreadlink /proc/self/ns/mnt > /out/startContainer.mnt\n")
    script.chmod(0o755)
    bundle.config["hooks"] = {"startContainer": [{"path": "/spec-start-hook"}]}
    cid, pid = create_sleeping(rt, bundle)
    assert not (outdir / "startContainer.mnt").exists()
    assert rt.cmd("start", cid).rc == 0
    assert wait_file(outdir / "startContainer.mnt")
    assert (outdir / "startContainer.mnt").read_text().strip() == os.readlink(f"/proc/{pid}/ns/mnt")


@pytest.mark.runc_deviation(POSTSTART_IN_CREATE)
@pytest.mark.spec(
    "config.md#poststart",
    "The poststart hooks MUST be called after the user-specified process is executed but "
    "before the start operation returns.",
)
def test_poststart_after_exec_before_start_returns(
    rt: Runtime, bundle: Bundle, outdir: Path
) -> None:
    """When start returns the hook has already run, and it saw the container's pid as `sleep`."""
    d = str(outdir)
    script = (
        f'cat > {d}/ps.json; pid=$(sed -n "s/.*\\"pid\\": *\\([0-9]*\\).*/\\1/p" {d}/ps.json); '
        f"cat /proc/$pid/comm > {d}/ps.comm.tmp; mv {d}/ps.comm.tmp {d}/ps.comm"
    )
    bundle.config["hooks"] = {"poststart": [{"path": "/bin/sh", "args": ["sh", "-c", script]}]}
    cid, _ = create_sleeping(rt, bundle)
    assert not (outdir / "ps.comm").exists()
    assert rt.cmd("start", cid).rc == 0
    assert (outdir / "ps.comm").exists(), "poststart had not run when start returned"
    assert (outdir / "ps.comm").read_text().strip() == "sleep"


@pytest.mark.spec(
    "config.md#poststop",
    "The poststop hooks MUST be called after the container is deleted but before the delete "
    "operation returns.",
)
def test_poststop_after_delete_before_return(rt: Runtime, bundle: Bundle, outdir: Path) -> None:
    """At poststop time the runtime no longer knows the id and the cgroup is gone; the hook has
    finished when delete returns."""
    cid = unique_id()
    cgpath = own_cgroup(bundle, cid)
    state_cmd = " ".join(rt.argv("state", cid))
    d = str(outdir)
    script = (
        f"if {state_cmd} >/dev/null 2>&1; then echo known; else echo gone; fi > {d}/pp.tmp; "
        f"if [ -d {CGROUP_ROOT}/pids{cgpath} ]; then echo cg; else echo nocg; fi >> {d}/pp.tmp; "
        f"sleep 0.3; mv {d}/pp.tmp {d}/pp"
    )
    bundle.config["hooks"] = {"poststop": [{"path": "/bin/sh", "args": ["sh", "-c", script]}]}
    stopped(rt, bundle.args("true"), cid)
    assert not (outdir / "pp").exists() and not (outdir / "pp.tmp").exists()
    assert rt.delete(cid).rc == 0
    assert (outdir / "pp").exists(), "poststop had not finished when delete returned"
    assert (outdir / "pp").read_text().split() == ["gone", "nocg"]


@pytest.mark.parametrize("kind", ["prestart", "createRuntime", "createContainer"])
@pytest.mark.spec(
    "runtime.md#lifecycle",
    "If any prestart / createRuntime / createContainer hook fails, the runtime MUST generate an "
    "error, stop the container, and continue the lifecycle at step 12.",
)
def test_failing_create_hook(rt: Runtime, bundle: Bundle, outdir: Path, kind: str) -> None:
    """create fails, no container or cgroup remains, and the later hooks of create never run."""
    cid = unique_id()
    cgpath = own_cgroup(bundle, cid)
    kinds = list(HOOK_KINDS[:3])
    bundle.config["hooks"] = {k: [_hook(k, str(outdir), 1 if k == kind else 0)] for k in kinds}
    bundle.sh("echo ran > /out/ran")
    r = rt.create(cid, bundle)
    assert r.rc != 0, r
    assert rt.cmd("state", cid).rc != 0
    for d in _cgroup_dirs(cgpath):
        assert not d.exists(), d
    order = (outdir / "order").read_text().split()
    assert order == kinds[: kinds.index(kind) + 1]
    assert not (outdir / "ran").exists()


@pytest.mark.runc_deviation(
    "runc 1.1.5 runs startContainer hooks in the container's init after `start` has returned "
    "success, so the failure reaches no caller"
)
@pytest.mark.spec(
    "runtime.md#lifecycle",
    "If any startContainer hook fails, the runtime MUST generate an error, stop the container, "
    "and continue the lifecycle at step 12.",
)
def test_failing_start_container_hook(rt: Runtime, bundle: Bundle, outdir: Path) -> None:
    """start fails and the user program never runs."""
    cid = unique_id()
    bundle.config["hooks"] = {"startContainer": [_hook("startContainer", "/out", 1)]}
    bundle.sh("echo ran > /out/ran; sleep 100")
    assert rt.create(cid, bundle).rc == 0
    r = rt.cmd("start", cid)
    assert r.rc != 0, r
    time.sleep(0.3)
    assert not (outdir / "ran").exists()
    st = rt.cmd("state", cid)
    assert st.rc != 0 or json.loads(st.out)["status"] == "stopped", st


@pytest.mark.runc_deviation(f"{POSTSTART_IN_CREATE}, so a failing one fails create")
@pytest.mark.spec(
    "runtime.md#lifecycle",
    "If any poststart hook fails, the runtime MUST generate an error, stop the container, and "
    "continue the lifecycle at step 12.",
)
def test_failing_poststart_hook(rt: Runtime, bundle: Bundle, outdir: Path) -> None:
    """start reports the failure and the container's process is stopped."""
    bundle.config["hooks"] = {"poststart": [_hook("poststart", str(outdir), 1)]}
    cid, pid = create_sleeping(rt, bundle)
    r = rt.cmd("start", cid)
    assert r.rc != 0, r
    st = rt.cmd("state", cid)
    assert st.rc != 0 or rt.wait_status(cid, "stopped")["status"] == "stopped", st
    deadline = time.monotonic() + 5
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid)


@pytest.mark.runc_deviation(
    "runc 1.1.5 stops at the first failing poststop hook; the remaining poststop hooks do not run"
)
@pytest.mark.spec(
    "runtime.md#lifecycle",
    "If any poststop hook fails, the runtime MUST log a warning, but the remaining hooks and "
    "lifecycle continue as if the hook had succeeded.",
)
def test_failing_poststop_hook(rt: Runtime, bundle: Bundle, outdir: Path) -> None:
    """delete succeeds, the next poststop hook still runs, and the container is gone."""
    bundle.config["hooks"] = {
        "poststop": [_hook("first", str(outdir), 1), _hook("second", str(outdir))]
    }
    cid = stopped(rt, bundle.args("true"))
    r = rt.delete(cid)
    assert r.rc == 0, r
    assert (outdir / "order").read_text().split() == ["first", "second"]
    assert rt.cmd("state", cid).rc != 0
