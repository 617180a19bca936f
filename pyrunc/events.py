"""`events`: cgroup statistics in runc's JSON shape, once (--stats) or every --interval, and an
`oom` event when the kernel's OOM killer strikes in the container (cgroup v1: an eventfd on
memory.oom_control; v2: the oom_kill count of memory.events). Streams end when the container
is gone.
"""

from __future__ import annotations

import os
import time

from pyrunc import fastjson
from pyrunc import state as S
from pyrunc.errors import RuntimeErr
from pyrunc.linux.cgroups import controller_path, is_v2_only
from pyrunc.linux.files import read_int, read_text

_DUR = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(v: str) -> float:
    """Go's time.ParseDuration for the forms people use: 5s, 100ms, 1m30s, 1.5s."""
    total, num, i = 0.0, "", 0
    s = v.strip()
    if not s:
        raise RuntimeErr("--interval: empty duration")
    while i < len(s):
        c = s[i]
        if c.isdigit() or c == ".":
            num += c
            i += 1
            continue
        unit = next(
            (u for u in ("ns", "us", "µs", "ms", "s", "m", "h") if s.startswith(u, i)), None
        )
        if unit is None or not num:
            raise RuntimeErr(f"--interval: invalid duration {v!r}")
        total += float(num) * _DUR[unit]
        num, i = "", i + len(unit)
    if num:
        raise RuntimeErr(f"--interval: missing unit in duration {v!r}")
    if total <= 0:
        raise RuntimeErr("--interval: duration must be greater than 0")
    return total


MAX_UINT64 = (1 << 64) - 1


def _kv(text: str) -> dict[str, int]:
    out = {}
    for line in text.splitlines():
        k, _, v = line.partition(" ")
        if v.isdigit():
            out[k] = int(v)
    return out


def _v2_int(path: str) -> int:
    v = read_text(path)
    return MAX_UINT64 if v == "max" else (int(v) if v.isdigit() else 0)


def stats_v2(path: str) -> dict:
    """runc's fs2 stats in the same JSON shape as v1: usage_usec in ns, swap reported as
    memory+swap (v1's meaning), "max" as the largest uint64. Controllers the cgroup lacks
    read as zeros, as runc's do."""
    cpu = _kv(read_text(f"{path}/cpu.stat"))
    mem = {
        "usage": _v2_int(f"{path}/memory.current"),
        "max": 0,
        "failcnt": 0,
        "limit": _v2_int(f"{path}/memory.max"),
    }
    swap = {
        "usage": _v2_int(f"{path}/memory.swap.current") + mem["usage"],
        "max": 0,
        "failcnt": 0,
        "limit": _v2_int(f"{path}/memory.swap.max"),
    }
    if swap["limit"] != MAX_UINT64:
        swap["limit"] += mem["limit"]
    raw = _kv(read_text(f"{path}/memory.stat"))
    zero = {"usage": 0, "max": 0, "failcnt": 0, "limit": 0}
    return {
        "cpu": {
            "usage": {
                "total": cpu.get("usage_usec", 0) * 1000,
                "percpu": [],
                "kernel": cpu.get("system_usec", 0) * 1000,
                "user": cpu.get("user_usec", 0) * 1000,
            },
            "throttling": {
                "periods": cpu.get("nr_periods", 0),
                "throttledPeriods": cpu.get("nr_throttled", 0),
                "throttledTime": cpu.get("throttled_usec", 0) * 1000,
            },
        },
        "memory": {
            "cache": raw.get("file", 0),
            "usage": mem,
            "swap": swap,
            "kernel": zero,
            "kernelTCP": zero,
            "raw": raw,
        },
        "pids": {
            "current": _v2_int(f"{path}/pids.current"),
            "limit": _v2_int(f"{path}/pids.max"),
        },
        "blkio": {},
        "hugetlb": {},
    }


def oom_kills_v2(path: str) -> int:
    return _kv(read_text(f"{path}/memory.events")).get("oom_kill", 0)


def stats(paths: dict[str, str]) -> dict:
    if is_v2_only() and paths.get("unified"):
        return stats_v2(paths["unified"])
    cpu_d, acct, mem, pids = (
        controller_path(paths, c) or "" for c in ("cpu", "cpuacct", "memory", "pids")
    )
    percpu = [int(x) for x in read_text(f"{acct}/cpuacct.usage_percpu").split()]
    ustat = dict(line.split() for line in read_text(f"{acct}/cpuacct.stat").splitlines() if line)
    tick = 10_000_000  # USER_HZ=100: ticks to ns
    thr = dict(line.split() for line in read_text(f"{cpu_d}/cpu.stat").splitlines() if line)

    def usage(prefix: str) -> dict:
        return {
            "usage": read_int(f"{mem}/{prefix}usage_in_bytes"),
            "max": read_int(f"{mem}/{prefix}max_usage_in_bytes"),
            "failcnt": read_int(f"{mem}/{prefix}failcnt"),
            "limit": read_int(f"{mem}/{prefix}limit_in_bytes"),
        }

    raw = _kv(read_text(f"{mem}/memory.stat"))
    return {
        "cpu": {
            "usage": {
                "total": read_int(f"{acct}/cpuacct.usage"),
                "percpu": percpu,
                "kernel": int(ustat.get("system", 0)) * tick,
                "user": int(ustat.get("user", 0)) * tick,
            },
            "throttling": {
                "periods": int(thr.get("nr_periods", 0)),
                "throttledPeriods": int(thr.get("nr_throttled", 0)),
                "throttledTime": int(thr.get("throttled_time", 0)),
            },
        },
        "memory": {
            "cache": raw.get("cache", 0),
            "usage": usage("memory."),
            "swap": usage("memory.memsw."),
            "kernel": usage("memory.kmem."),
            "kernelTCP": usage("memory.kmem.tcp."),
            "raw": raw,
        },
        "pids": {
            "current": read_int(f"{pids}/pids.current"),
            "limit": read_int(f"{pids}/pids.max"),
        },
        "blkio": {},
        "hugetlb": {},
    }


def _event(kind: str, cid: str, data: dict | None = None) -> str:
    ev: dict = {"type": kind, "id": cid}
    if data is not None:
        ev["data"] = data
    return fastjson.dumps(ev) + "\n"


def oom_eventfd(paths: dict[str, str]) -> int:
    mem = controller_path(paths, "memory")
    if not mem:
        return -1
    try:
        efd = os.eventfd(0, os.EFD_CLOEXEC)
        cfd = os.open(f"{mem}/memory.oom_control", os.O_RDONLY | os.O_CLOEXEC)
        fd = os.open(f"{mem}/cgroup.event_control", os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, f"{efd} {cfd}".encode())
        finally:
            os.close(fd)
        return efd
    except OSError:
        return -1


def run(root: str, cid: str, interval: str, once: bool) -> int:
    import sys

    st = S.load(root, cid)
    if S.status(root, st) == "stopped":
        raise RuntimeErr("container with id " + cid + " is not running")
    paths = st.get("cgroup") or {}
    out = sys.stdout

    def data() -> dict:
        d = stats(paths)
        if st.get("intel_rdt"):
            from pyrunc.linux import intelrdt

            d["intel_rdt"] = intelrdt.stats(st["intel_rdt"])
        return d

    if once:
        out.write(_event("stats", cid, data()))
        return 0
    period = parse_duration(interval)
    import gc

    gc.enable()  # the launcher turned it off for the short start; this loop runs until stopped
    v2 = is_v2_only() and paths.get("unified")
    # v1 signals an OOM through an eventfd; v2 counts them in memory.events (polled here)
    efd = -1 if v2 else oom_eventfd(paths)
    ooms = oom_kills_v2(v2) if v2 else 0
    import select

    next_stats = time.monotonic()
    while True:
        if not os.path.exists(os.path.join(root, cid, S.STATE_FILE)) or not S.alive(st):
            return 0
        now = time.monotonic()
        if now >= next_stats:
            out.write(_event("stats", cid, data()))
            out.flush()
            next_stats = now + period
        wait = min(max(next_stats - time.monotonic(), 0), 0.5)
        ready = select.select([efd], [], [], wait)[0] if efd >= 0 else time.sleep(wait)
        if ready:
            os.eventfd_read(efd)
            out.write(_event("oom", cid))
            out.flush()
        if v2 and oom_kills_v2(v2) > ooms:
            ooms = oom_kills_v2(v2)
            out.write(_event("oom", cid))
            out.flush()
