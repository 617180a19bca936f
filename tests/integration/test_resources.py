"""linux.resources on cgroup v1, proved from inside: the kernel enforces what the config asks."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from harness import Bundle, Runtime, unique_id

pytestmark = pytest.mark.integration


def _v1() -> None:
    if not os.path.isdir("/sys/fs/cgroup/memory") or os.path.exists(
        "/sys/fs/cgroup/cgroup.controllers"
    ):
        pytest.skip("needs cgroup v1 (memory, pids controllers)")


def test_memory_limit_oom_kills_a_hog(rt: Runtime, bundle: Bundle) -> None:
    """32 MiB limit: the container reads it back, and a process allocating 200 MB dies (137)."""
    _v1()
    bundle.linux.setdefault("resources", {})["memory"] = {"limit": 32 * 1024 * 1024}
    bundle.linux["cgroupsPath"] = f"/pyrunc-test-{unique_id()}"
    r = rt.run_sh(bundle, "cat /sys/fs/cgroup/memory/memory.limit_in_bytes")
    assert r.rc == 0, r
    assert r.out.strip() == str(32 * 1024 * 1024)
    # swap may absorb some of it; 200 MB of touched memory still cannot fit
    r = rt.run_sh(bundle, "head -c 200000000 /dev/zero | tail > /dev/null && echo survived")
    assert "survived" not in r.out, r
    assert r.rc != 0


def test_pids_limit_stops_a_fork_bomb(rt: Runtime, bundle: Bundle) -> None:
    _v1()
    bundle.linux.setdefault("resources", {})["pids"] = {"limit": 10}
    r = rt.run_sh(
        bundle,
        "cat /sys/fs/cgroup/pids/pids.max; for i in $(seq 1 30); do sleep 5 & done 2>&1 | "
        "grep -c -i 'resource\\|fork' || true; kill $(jobs -p) 2>/dev/null; true",
    )
    lines = r.out.split()
    assert lines[0] == "10"
    assert int(lines[-1]) > 0, r  # some forks were refused


def test_cpu_quota_and_shares_written(rt: Runtime, bundle: Bundle) -> None:
    _v1()
    bundle.linux.setdefault("resources", {})["cpu"] = {
        "shares": 512, "quota": 20000, "period": 100000, "cpus": "0"
    }
    r = rt.run_sh(
        bundle,
        "cat /sys/fs/cgroup/cpu/cpu.shares /sys/fs/cgroup/cpu/cpu.cfs_quota_us "
        "/sys/fs/cgroup/cpu/cpu.cfs_period_us /sys/fs/cgroup/cpuset/cpuset.cpus; "
        "grep Cpus_allowed_list /proc/self/status",
    )
    assert r.rc == 0, r
    assert r.out.split()[:4] == ["512", "20000", "100000", "0"]
    assert r.out.split()[-1] == "0"


def test_cpu_quota_throttles_a_busy_loop(rt: Runtime, bundle: Bundle) -> None:
    """10 ms of CPU per 100 ms period: a busy loop is throttled, as the container's own
    cpu.stat shows (nr_throttled grows, throttled_time > 0)."""
    _v1()
    bundle.linux.setdefault("resources", {})["cpu"] = {"quota": 10000, "period": 100000}
    r = rt.run_sh(
        bundle,
        "timeout -s KILL 1 sh -c 'while :; do :; done'; cat /sys/fs/cgroup/cpu/cpu.stat",
    )
    stat = dict(line.split() for line in r.out.splitlines() if line.count(" ") == 1)
    assert int(stat["nr_throttled"]) >= 3, r  # ~10 periods in 1 s, nearly all throttled
    assert int(stat["throttled_time"]) > 0


def test_cpu_burst_idle_and_memory_hierarchy(rt: Runtime, bundle: Bundle) -> None:
    """runtime-spec 1.1 fields without a runc 1.1 equivalent, written to their v1 files."""
    _v1()
    if not os.path.exists("/sys/fs/cgroup/cpu/cpu.idle"):
        pytest.skip("kernel without cpu.idle on cgroup v1")
    res = bundle.linux.setdefault("resources", {})
    res["cpu"] = {"quota": 50000, "period": 100000, "burst": 20000, "idle": 1}
    res["memory"] = {"limit": 64 << 20, "useHierarchy": True}
    r = rt.run_sh(
        bundle,
        "cd /sys/fs/cgroup; cat cpu/cpu.cfs_burst_us cpu/cpu.idle memory/memory.use_hierarchy",
    )
    assert r.rc == 0, r
    assert r.out.split() == ["20000", "1", "1"]


def test_unified_on_v1_is_refused_and_leaves_nothing(rt: Runtime, bundle: Bundle) -> None:
    _v1()
    path = f"/pyrunc-test-{unique_id()}"
    bundle.linux["cgroupsPath"] = path
    bundle.linux.setdefault("resources", {})["unified"] = {"memory.max": "1000000"}
    r = rt.run_sh(bundle, "true")
    assert r.rc == 1
    assert "linux.resources.unified" in r.err and "Traceback" not in r.err
    assert not os.path.exists(f"/sys/fs/cgroup/memory{path}")


def test_update_changes_limits_seen_inside(rt: Runtime, bundle: Bundle) -> None:
    """`update` flags (after the id, as runc accepts) and a --resources document, read back
    from inside the running container."""
    _v1()
    cid = unique_id()
    bundle.process["args"] = ["sleep", "1000"]
    bundle.linux.setdefault("resources", {})["memory"] = {"limit": 32 * 1024 * 1024}
    assert rt.create(cid, bundle).rc == 0
    assert rt.cmd("start", cid).rc == 0
    r = rt.cmd("update", cid, "--memory", "50M", "--pids-limit", "42")
    assert r.rc == 0, r
    doc = '{"CPU": {"Shares": 256}}'  # Go's decoder is case-insensitive; runc's tests rely on it
    assert rt.cmd("update", "-r", "-", cid, input=doc).rc == 0
    r = rt.cmd("exec", cid, "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes",
               "/sys/fs/cgroup/pids/pids.max", "/sys/fs/cgroup/cpu/cpu.shares")
    assert r.rc == 0, r
    assert r.out.split() == [str(50 * 1024 * 1024), "42", "256"]
    bad = rt.cmd("update", cid, "--memory", "lots")
    assert bad.rc == 1 and "--memory" in bad.err and "Traceback" not in bad.err


def test_events_stats_and_oom(rt: Runtime, bundle: Bundle, tmp_path: Path) -> None:
    """`events --stats` reports the container's own pids/memory; the stream reports an OOM kill
    (memory.oom_control eventfd) and ends when the container is deleted."""
    _v1()
    cid = unique_id()
    bundle.process["args"] = ["sleep", "1000"]
    # swappiness 0: on a host with swap the cgroup must still OOM, not swap
    bundle.linux.setdefault("resources", {})["memory"] = {
        "limit": 32 * 1024 * 1024,
        "swappiness": 0,
    }
    bundle.linux["resources"]["pids"] = {"limit": 50}
    assert rt.create(cid, bundle).rc == 0
    assert rt.cmd("start", cid).rc == 0
    r = rt.cmd("events", "--stats", cid)
    assert r.rc == 0, r
    ev = json.loads(r.out)
    assert (ev["type"], ev["id"]) == ("stats", cid)
    assert ev["data"]["pids"] == {"current": 1, "limit": 50}
    assert ev["data"]["memory"]["usage"]["limit"] == 32 * 1024 * 1024
    log = tmp_path / "events.log"
    with open(log, "w") as out:
        stream = subprocess.Popen(rt.argv("events", "--interval", "100ms", cid), stdout=out,
                                  stdin=subprocess.DEVNULL)
        try:
            # events writes its first stats line only once its OOM watch is registered; an
            # OOM before that would be missed for good
            deadline = time.monotonic() + 10
            while '"type":"stats"' not in log.read_text() and time.monotonic() < deadline:
                time.sleep(0.05)
            rt.cmd("exec", cid, "sh", "-c", "head -c 200000000 /dev/zero | tail")
            deadline = time.monotonic() + 10
            while '"type":"oom"' not in log.read_text() and time.monotonic() < deadline:
                time.sleep(0.1)
            assert f'{{"type":"oom","id":"{cid}"}}' in log.read_text()
            assert rt.delete(cid, force=True).rc == 0
            assert stream.wait(timeout=10) == 0
        finally:
            if stream.poll() is None:
                stream.kill()
                stream.wait()


def test_update_check_before_update_refuses_a_limit_below_usage(
    rt: Runtime, bundle: Bundle
) -> None:
    """memory.checkBeforeUpdate: a limit under current usage is refused, not OOM-killing."""
    _v1()
    cid = unique_id()
    # ~40 MB held in a tmpfs file (charged to the container's memory cgroup)
    bundle.sh("head -c 40000000 /dev/zero > /dev/shm/fill; sleep 1000")
    bundle.linux.setdefault("resources", {})["memory"] = {"limit": 256 << 20}
    bundle.save()
    assert rt.detached("run", "-d", "-b", str(bundle.path), cid, cid=cid).rc == 0
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        r = rt.cmd("exec", cid, "cat", "/sys/fs/cgroup/memory/memory.usage_in_bytes")
        if r.rc == 0 and int(r.out) > 30_000_000:
            break
        time.sleep(0.1)
    doc = json.dumps({"memory": {"limit": 20 << 20, "checkBeforeUpdate": True}})
    bad = rt.cmd("update", "-r", "-", cid, input=doc)
    assert bad.rc == 1 and "below usage" in bad.err, bad
    r = rt.cmd("exec", cid, "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes")
    assert r.out.strip() == str(256 << 20)  # unchanged, and the container still runs


def test_update_kernel_memory_is_ignored_with_runc_warning(rt: Runtime, bundle: Bundle) -> None:
    """--kernel-memory is hidden and obsolete in runc 1.1: accepted, warned about, ignored."""
    _v1()
    cid = unique_id()
    bundle.process["args"] = ["sleep", "1000"]
    assert rt.create(cid, bundle).rc == 0
    r = rt.cmd("update", "--kernel-memory", "50M", "--pids-limit", "20", cid)
    assert r.rc == 0, r
    assert "Kernel memory settings are ignored" in r.err
    assert "kernel-memory" not in rt.cmd("update", "--help").out
    r = rt.cmd("exec", cid, "cat", "/sys/fs/cgroup/pids/pids.max")
    assert r.out.strip() == "20"


def test_update_refuses_wrong_types_and_clamped_shares(rt: Runtime, bundle: Bundle) -> None:
    """`update -r -` with a value of the wrong JSON type names the field (Go's decoder fails
    too); cpu shares the kernel would clamp are refused with runc's words."""
    _v1()
    cid = unique_id()
    bundle.process["args"] = ["sleep", "1000"]
    assert rt.create(cid, bundle).rc == 0
    r = rt.cmd("update", "-r", "-", cid, input='{"memory": {"limit": "abc"}}')
    assert r.rc == 1 and "memory.limit: expected an integer" in r.err, r
    assert "internal error" not in r.err and "Traceback" not in r.err
    r = rt.cmd("update", "-r", "-", cid, input='{"cpu": {"shares": 1}}')
    assert r.rc == 1 and "the minimum allowed cpu-shares is 2" in r.err, r
