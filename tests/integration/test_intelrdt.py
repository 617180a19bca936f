"""linux.intelRdt with real containers. Where no resctrl filesystem is mounted (this machine) a
config with one is refused in one line and nothing is left; the rest needs resctrl (Intel RDT or
AMD PQoS hardware) and skips here. tests/unit/test_intelrdt_check.py covers the logic on a fake
tree."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from harness import Bundle, Runtime, unique_id

pytestmark = pytest.mark.integration

NO_RESCTRL = "no resctrl filesystem on this host"


def _resctrl() -> Path | None:
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, sep, post = line.partition(" - ")
            if sep and post.split()[0] == "resctrl":
                return Path(pre.split()[4])
    return None


def _need_resctrl(*info: str) -> Path:
    root = _resctrl()
    if root is None:
        pytest.skip(NO_RESCTRL)
    for name in info:
        if not (root / "info" / name).is_dir():
            pytest.skip(f"resctrl here has no info/{name}")
    return root


def _pids(path: Path) -> set[int]:
    return {int(x) for x in path.read_text().split()}


def test_refused_in_one_line_without_resctrl(rt: Runtime, bundle: Bundle) -> None:
    if _resctrl() is not None:
        pytest.skip("resctrl is mounted here")
    cid = unique_id()
    bundle.linux["intelRdt"] = {"schemata": ["L3:0=f"], "enableMonitoring": True}
    bundle.args("true")
    r = rt.create(cid, bundle)
    assert r.rc == 1 and len(r.err.strip().splitlines()) == 1, r
    assert "linux.intelRdt: intelRdt is specified in config, but Intel RDT is not" in r.err
    assert rt.cmd("state", cid).rc != 0
    assert not any(rt.root.glob("*/state.json"))


def test_update_schemas_refused_in_one_line_without_resctrl(rt: Runtime,
                                                            bundle: Bundle) -> None:
    """runc's update flags: refused before anything changes (the pids limit given beside one
    is not written either)."""
    if _resctrl() is not None:
        pytest.skip("resctrl is mounted here")
    from harness import running

    cid = running(rt, bundle)
    cgroup = Path(f"/proc/{rt.state(cid)['pid']}/cgroup").read_text()
    line = next(ln for ln in cgroup.splitlines() if ":pids:" in ln)
    limit = Path("/sys/fs/cgroup/pids" + line.split(":", 2)[2]) / "pids.max"
    before = limit.read_text()
    for flag, value, want in (
        ("--l3-cache-schema", "L3:0=f", "--l3-cache-schema: Intel RDT/CAT: l3 cache schema"),
        ("--mem-bw-schema", "MB:0=50", "--mem-bw-schema: Intel RDT/MBA: memory bandwidth"),
    ):
        r = rt.cmd("update", flag, value, "--pids-limit", "7", cid)
        assert r.rc == 1 and len(r.err.strip().splitlines()) == 1 and want in r.err, r
    assert limit.read_text() == before


def test_container_group_made_joined_removed(rt: Runtime, bundle: Bundle) -> None:
    """No closID: a group named after the container, the init and an exec'd process in its
    tasks, the schemata written; gone after delete."""
    root = _need_resctrl()
    cid = unique_id()
    rdt: dict = {}
    line = next((x for x in (root / "schemata").read_text().splitlines() if x.startswith("L3:")),
                "")
    if line:
        rdt["l3CacheSchema"] = line.strip()  # the root's own allocation: valid on any host
    bundle.linux["intelRdt"] = rdt
    bundle.args("sleep", "600")
    assert rt.create(cid, bundle).rc == 0
    group = root / cid
    pid = rt.state(cid)["pid"]
    assert pid in _pids(group / "tasks")
    if line:
        assert line.strip() in (group / "schemata").read_text()
    assert rt.cmd("start", cid).rc == 0
    r = rt.cmd("exec", cid, "sh", "-c", "echo $$; sleep 2")
    assert r.rc == 0, r
    assert rt.delete(cid, force=True).rc == 0
    assert not group.exists()


def test_monitoring_group(rt: Runtime, bundle: Bundle) -> None:
    root = _need_resctrl("L3_MON")
    cid = unique_id()
    bundle.linux["intelRdt"] = {"enableMonitoring": True}
    bundle.args("sleep", "600")
    assert rt.create(cid, bundle).rc == 0
    pid = rt.state(cid)["pid"]
    mon = root / cid / "mon_groups" / cid
    assert pid in _pids(mon / "tasks")
    assert rt.delete(cid, force=True).rc == 0
    assert not (root / cid).exists()


def test_pre_made_group_is_joined_and_kept(rt: Runtime, bundle: Bundle) -> None:
    root = _need_resctrl()
    clos = unique_id("clos")
    (root / clos).mkdir()
    try:
        cid = unique_id()
        bundle.linux["intelRdt"] = {"closID": clos}
        bundle.args("sleep", "600")
        assert rt.create(cid, bundle).rc == 0
        assert rt.state(cid)["pid"] in _pids(root / clos / "tasks")
        assert rt.delete(cid, force=True).rc == 0
        assert (root / clos).is_dir()
    finally:
        os.rmdir(root / clos)


@pytest.mark.parametrize(
    "rdt, field",
    [
        ({"closID": "a/b"}, "linux.intelRdt.closID"),
        ({"closID": "pyrunc-no-such-group"}, "linux.intelRdt.closID"),
        ({"memBwSchema": "L3:0=1"}, "linux.intelRdt.memBwSchema"),
    ],
)
def test_bad_config_leaves_nothing(rt: Runtime, bundle: Bundle, rdt: dict, field: str) -> None:
    root = _need_resctrl()
    before = set(os.listdir(root))
    cid = unique_id()
    bundle.linux["intelRdt"] = rdt
    bundle.args("true")
    r = rt.create(cid, bundle)
    assert r.rc == 1 and field in r.err and len(r.err.strip().splitlines()) == 1, r
    assert set(os.listdir(root)) == before
    assert rt.cmd("state", cid).rc != 0
