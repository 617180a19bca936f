"""linux.resources on cgroup v1: the limits written into the container's cgroup at create and
by `update`.

File names, units and write orders follow runc's fs driver (memory before swap or the other
way round depending on the current limit; CFS period before quota), so that a config that works
with runc works here. Device rules go through the emulator so only the minimal transition is
written: a running container never sees a moment where its allowed devices are denied.
"""

from __future__ import annotations

import os

from pyrunc.errors import ConfigError, RuntimeErr
from pyrunc.linux.cgroups import controller_path
from pyrunc.linux.files import read_int, write_file


def _write(paths: dict[str, str], ctrl: str, name: str, value: object) -> None:
    path = controller_path(paths, ctrl)
    if path is None:
        raise RuntimeErr(
            f"linux.resources: cannot set {ctrl} limit: container could not join or create "
            f"cgroup (the {ctrl} controller is not mounted, or not writable without root)"
        )
    f = os.path.join(path, name)
    try:
        write_file(f, str(value))
    except OSError as e:
        raise RuntimeErr(f"failed to write {value!r} to {f}: {e.strerror}") from None


def apply(paths: dict[str, str], res: dict, update: bool = False, rootless: bool = False) -> None:
    if res.get("unified"):
        raise ConfigError(
            "config.json: linux.resources.unified: invalid configuration: only valid on a "
            "cgroup v2 host (this one is cgroup v1)"
        )
    if not update and not rootless:  # runc's update re-applies the same rules: no-op
        devices(paths, res.get("devices") or [])
    _memory(paths, res.get("memory") or {}, update)
    _cpu(paths, res.get("cpu") or {})
    pids = res.get("pids") or {}
    if "limit" in pids and pids["limit"] is not None:
        limit = pids["limit"]
        _write(paths, "pids", "pids.max", "max" if limit <= 0 else limit)
    _blkio(paths, res.get("blockIO") or {})
    for h in res.get("hugepageLimits") or []:
        _write(paths, "hugetlb", f"hugetlb.{h['pageSize']}.limit_in_bytes", h["limit"])
    net = res.get("network") or {}
    if net.get("classID") is not None:
        _write(paths, "net_cls", "net_cls.classid", net["classID"])
    for p in net.get("priorities") or []:
        _write(paths, "net_prio", "net_prio.ifpriomap", f"{p['name']} {p['priority']}")
    for dev, lim in (res.get("rdma") or {}).items():
        from pyrunc.linux.cgroup_v2 import rdma_line

        _write(paths, "rdma", "rdma.max", rdma_line(dev, lim))


def devices(paths: dict[str, str], spec_rules: list[dict]) -> None:
    """Move the devices cgroup from what devices.list says now to what the config asks, with
    the fewest writes (runc's Transition), then check the kernel agrees."""
    from pyrunc.linux import devices_emulator as E

    path = controller_path(paths, "devices")
    if path is None:
        return
    target = E.build(E.device_rules(spec_rules))
    with open(os.path.join(path, "devices.list"), "rb") as f:
        current = E.from_list(f.read().decode())
    for rule in current.transition(target):
        name = "devices.allow" if rule[4] else "devices.deny"
        line = E.cgroup_string(rule)
        try:
            write_file(os.path.join(path, name), line)
        except OSError as e:
            raise RuntimeErr(f"linux.resources.devices: {line!r}: {e.strerror}") from None
    with open(os.path.join(path, "devices.list"), "rb") as f:
        after = E.from_list(f.read().decode())
    if after.is_blacklist() != target.is_blacklist() or (
        not target.is_blacklist() and after.rules != target.rules
    ):
        raise RuntimeErr("resulting devices cgroup doesn't precisely match target")


def _memory(paths: dict[str, str], mem: dict, update: bool) -> None:
    if not mem:
        return
    if mem.get("useHierarchy") is not None:
        _write(paths, "memory", "memory.use_hierarchy", int(bool(mem["useHierarchy"])))
    limit, swap = mem.get("limit") or 0, mem.get("swap") or 0
    if limit == -1 and swap == 0:
        swap = -1
    has_memsw = os.path.exists(
        os.path.join(controller_path(paths, "memory") or "", "memory.memsw.limit_in_bytes")
    )
    if swap and not has_memsw:
        raise RuntimeErr("linux.resources.memory.swap: swap accounting is not enabled here")
    if limit and swap:
        current = read_int(
            os.path.join(controller_path(paths, "memory") or "", "memory.limit_in_bytes")
        )
        order = ["memsw", "mem"] if swap == -1 or current < swap else ["mem", "memsw"]
    else:
        order = (["mem"] if limit else []) + (["memsw"] if swap else [])
    if update and limit > 0 and mem.get("checkBeforeUpdate"):
        usage = read_int(
            os.path.join(controller_path(paths, "memory") or "", "memory.usage_in_bytes")
        )
        if usage > limit:
            raise RuntimeErr(
                f"linux.resources.memory.limit: rejecting memory limit {limit} below usage {usage}"
            )
    for which in order:
        if which == "mem":
            _write(paths, "memory", "memory.limit_in_bytes", limit)
        else:
            _write(paths, "memory", "memory.memsw.limit_in_bytes", swap)
    if mem.get("reservation"):
        _write(paths, "memory", "memory.soft_limit_in_bytes", mem["reservation"])
    if mem.get("disableOOMKiller"):
        _write(paths, "memory", "memory.oom_control", 1)
    swappiness = mem.get("swappiness")
    if swappiness is not None and swappiness != -1:  # -1 (as uint64 too) means "leave it"
        if not 0 <= swappiness <= 100:
            raise ConfigError(
                f"config.json: linux.resources.memory.swappiness: {swappiness} is not in 0..100"
            )
        _write(paths, "memory", "memory.swappiness", swappiness)


def _cpu(paths: dict[str, str], cpu: dict) -> None:
    if cpu.get("shares"):
        _write(paths, "cpu", "cpu.shares", cpu["shares"])
        # the kernel clamps to 2..262144 without an error: read it back, as runc does
        path = controller_path(paths, "cpu")
        with open(os.path.join(path or "", "cpu.shares")) as f:
            got = int(f.read())
        if cpu["shares"] > got:
            raise RuntimeErr(f"the maximum allowed cpu-shares is {got}")
        if cpu["shares"] < got:
            raise RuntimeErr(f"the minimum allowed cpu-shares is {got}")
    period_pending = False
    if cpu.get("period"):
        try:
            _write(paths, "cpu", "cpu.cfs_period_us", cpu["period"])
        except RuntimeErr:
            # a period smaller than the current one can exceed the parent's quota until the
            # new quota is in: retry it after the quota (runc does the same)
            if not cpu.get("quota"):
                raise
            period_pending = True
    if cpu.get("quota"):
        _write(paths, "cpu", "cpu.cfs_quota_us", cpu["quota"])
        if period_pending:
            _write(paths, "cpu", "cpu.cfs_period_us", cpu["period"])
    if cpu.get("burst") is not None:
        _write(paths, "cpu", "cpu.cfs_burst_us", cpu["burst"])
    if cpu.get("idle") is not None:
        _write(paths, "cpu", "cpu.idle", cpu["idle"])
    if cpu.get("realtimePeriod"):
        _write(paths, "cpu", "cpu.rt_period_us", cpu["realtimePeriod"])
    if cpu.get("realtimeRuntime"):
        _write(paths, "cpu", "cpu.rt_runtime_us", cpu["realtimeRuntime"])
    if cpu.get("cpus"):
        _write(paths, "cpuset", "cpuset.cpus", cpu["cpus"])
    if cpu.get("mems"):
        _write(paths, "cpuset", "cpuset.mems", cpu["mems"])


def _blkio(paths: dict[str, str], bio: dict) -> None:
    if not bio:
        return
    base = controller_path(paths, "blkio") or ""
    bfq = os.path.exists(os.path.join(base, "blkio.bfq.weight"))
    if bio.get("weight"):
        _write(paths, "blkio", "blkio.bfq.weight" if bfq else "blkio.weight", bio["weight"])
    if bio.get("leafWeight"):
        _write(paths, "blkio", "blkio.leaf_weight", bio["leafWeight"])
    for d in bio.get("weightDevice") or []:
        dev = f"{d['major']}:{d['minor']}"
        if d.get("weight"):
            name = "blkio.bfq.weight_device" if bfq else "blkio.weight_device"
            _write(paths, "blkio", name, f"{dev} {d['weight']}")
        if d.get("leafWeight"):
            _write(paths, "blkio", "blkio.leaf_weight_device", f"{dev} {d['leafWeight']}")
    for key, name in (
        ("throttleReadBpsDevice", "blkio.throttle.read_bps_device"),
        ("throttleWriteBpsDevice", "blkio.throttle.write_bps_device"),
        ("throttleReadIOPSDevice", "blkio.throttle.read_iops_device"),
        ("throttleWriteIOPSDevice", "blkio.throttle.write_iops_device"),
    ):
        for d in bio.get(key) or []:
            _write(paths, "blkio", name, f"{d['major']}:{d['minor']} {d['rate']}")
