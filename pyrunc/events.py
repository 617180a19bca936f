"""`events`: cgroup statistics in runc's JSON shape, once (--stats) or every --interval, and an
`oom` event when the kernel's OOM killer strikes in the container (cgroup v1 eventfd on
memory.oom_control). Streams end when the container is gone.
"""

from __future__ import annotations

import os
import time

from pyrunc import fastjson
from pyrunc import state as S
from pyrunc.errors import RuntimeErr
from pyrunc.linux.cgroups import controller_path
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


def stats(paths: dict[str, str]) -> dict:
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

    raw = {}
    for line in read_text(f"{mem}/memory.stat").splitlines():
        k, _, v = line.partition(" ")
        if v.isdigit():
            raw[k] = int(v)
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


def _oom_eventfd(paths: dict[str, str]) -> int:
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
    if once:
        out.write(_event("stats", cid, stats(paths)))
        return 0
    period = parse_duration(interval)
    efd = _oom_eventfd(paths)
    import select

    next_stats = time.monotonic()
    while True:
        if not os.path.exists(os.path.join(root, cid, S.STATE_FILE)) or not S.alive(st):
            return 0
        now = time.monotonic()
        if now >= next_stats:
            out.write(_event("stats", cid, stats(paths)))
            out.flush()
            next_stats = now + period
        wait = min(max(next_stats - time.monotonic(), 0), 0.5)
        ready = select.select([efd], [], [], wait)[0] if efd >= 0 else time.sleep(wait)
        if ready:
            os.eventfd_read(efd)
            out.write(_event("oom", cid))
            out.flush()
