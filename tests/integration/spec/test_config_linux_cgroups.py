"""config-linux.md: control groups -- cgroupsPath and resources as the host sees them in the
container's cgroup files under /sys/fs/cgroup, intelRdt -- and the cgroup v2 and resctrl
requirements this cgroup v1 machine cannot exercise (skipped with the reason).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from harness import (
    CGROUP_ROOT,
    Bundle,
    Runtime,
    unique_id,
)
from helpers import (
    create_fails,
    create_sleeping,
    own_cgroup,
    run_ok,
)

pytestmark = pytest.mark.integration


def _v1(ctrl: str) -> Path:
    path = CGROUP_ROOT / ctrl
    if not path.is_dir() or (CGROUP_ROOT / "cgroup.controllers").exists():
        pytest.skip(f"needs the cgroup v1 {ctrl} hierarchy")
    return path


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
