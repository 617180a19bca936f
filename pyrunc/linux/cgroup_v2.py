"""linux.resources on cgroup v2 (the unified hierarchy): runc's fs2 driver, file for file.

The spec speaks cgroup v1 (shares, blkio weights, memory+swap); v2 has other files and units, so
the values are converted the way runc converts them, which is what containerd, Kubernetes and
Podman expect to read back. Devices have no v2 files: they are an eBPF program on the cgroup
(bpf_devices.py), built from the same rule reduction as v1 (devices_emulator.py).
"""

from __future__ import annotations

import errno
import os
import time

from pyrunc.errors import ConfigError, RuntimeErr
from pyrunc.linux.files import write_file


def cpu_shares_to_weight(shares: int) -> int:
    """v1 cpu.shares [2, 262144] -> v2 cpu.weight [1, 10000] (runc's linear map)."""
    if shares == 0:
        return 0
    return 1 + ((shares - 2) * 9999) // 262142


def blkio_weight_to_io_weight(weight: int) -> int:
    """v1 blkio.weight [10, 1000] -> v2 io.weight [1, 10000] (runc's linear map)."""
    if weight == 0:
        return 0
    return 1 + ((weight - 10) * 9999) // 990


def swap_to_v2(swap: int, memory: int) -> int:
    """v1 memory+swap -> v2 swap alone (memory.swap.max), with runc's checks and errors."""
    if memory == -1 and swap == 0:
        return -1  # unlimited memory and no swap setting: unlimited swap too, as on v1
    if swap in (-1, 0):
        return swap
    if memory in (0, -1):
        raise ConfigError(
            "linux.resources.memory.swap: unable to set swap limit without memory limit"
        )
    if memory < 0:
        raise ConfigError(f"linux.resources.memory.limit: invalid memory value: {memory}")
    if swap < memory:
        raise ConfigError(
            "linux.resources.memory.swap: memory+swap limit should be >= memory limit"
        )
    return swap - memory


def _num(v: int | None) -> str:
    """runc's numToStr: 0 (unset) -> "", -1 -> "max"."""
    if not v:
        return ""
    return "max" if v == -1 else str(v)


def controllers(path: str) -> set[str]:
    try:
        with open(os.path.join(path, "cgroup.controllers"), "rb") as f:
            return set(f.read().decode().split())
    except OSError:
        return set()


def enable_controllers(mountpoint: str, path: str) -> None:
    """Make every available controller usable in `path`: a v2 cgroup only gets the controllers
    its parent lists in cgroup.subtree_control, so each ancestor below the mount delegates
    them (runc's CreateCgroupPath; a controller the host won't delegate fails later, clearly,
    when a limit needs it)."""
    ctrls = sorted(controllers(mountpoint))
    if not ctrls:
        return
    rel = os.path.relpath(path, mountpoint)
    cur = mountpoint
    for part in rel.split("/")[:-1] if rel != "." else []:
        _delegate(cur, ctrls)
        cur = os.path.join(cur, part)
    if rel != ".":
        _delegate(cur, ctrls)


def _delegate(path: str, ctrls: list[str]) -> None:
    f = os.path.join(path, "cgroup.subtree_control")
    try:
        write_file(f, " ".join("+" + c for c in ctrls))
    except OSError:
        for c in ctrls:  # one by one: enable what can be enabled
            try:
                write_file(f, "+" + c)
            except OSError:
                pass


def _write(path: str, name: str, value: str, field: str) -> None:
    f = os.path.join(path, name)
    try:
        write_file(f, value)
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.EACCES, errno.EPERM):
            ctrl = name.split(".", 1)[0]
            if ctrl not in controllers(path) and ctrl != "cgroup":
                raise RuntimeErr(
                    f"{field}: the {ctrl} controller is not enabled in {path}"
                ) from None
        raise RuntimeErr(f"{field}: failed to write {value!r} to {f}: {e.strerror}") from None


def apply(path: str, res: dict, update: bool = False, rootless: bool = False) -> None:
    """Write every limit of `res` into the container's v2 cgroup, in runc's order (pids,
    memory, io, cpu, devices, cpuset, hugetlb, rdma, unified last so it can override)."""
    pids = res.get("pids") or {}
    if pids.get("limit"):
        limit = pids["limit"]
        _write(path, "pids.max", "max" if limit < 0 else str(limit), "linux.resources.pids.limit")
    _memory(path, res.get("memory") or {}, update)
    _io(path, res.get("blockIO") or {})
    _cpu(path, res.get("cpu") or {})
    if not update and not rootless:  # runc's update re-applies the same rules: no change
        _devices(path, res.get("devices") or [])
    cpu = res.get("cpu") or {}
    if cpu.get("cpus"):
        _write(path, "cpuset.cpus", cpu["cpus"], "linux.resources.cpu.cpus")
    if cpu.get("mems"):
        _write(path, "cpuset.mems", cpu["mems"], "linux.resources.cpu.mems")
    for h in res.get("hugepageLimits") or []:
        _write(
            path,
            f"hugetlb.{h['pageSize']}.max",
            str(h["limit"]),
            "linux.resources.hugepageLimits",
        )
    for dev, lim in (res.get("rdma") or {}).items():
        _write(path, "rdma.max", rdma_line(dev, lim), f"linux.resources.rdma.{dev}")
    for k, v in (res.get("unified") or {}).items():
        if "/" in k:
            raise ConfigError(f"linux.resources.unified: {k!r} must be a file name (no slashes)")
        if "." not in k:
            raise ConfigError(
                f"linux.resources.unified: {k!r} must be in the form CONTROLLER.PARAMETER"
            )
        _write(path, k, str(v), f"linux.resources.unified.{k}")


def _devices(path: str, spec_rules: list[dict]) -> None:
    """The device rules as an eBPF program on the cgroup: v2 has no devices files."""
    from pyrunc.linux import bpf_devices, devices_emulator

    rules = devices_emulator.device_rules(spec_rules)
    emu = devices_emulator.build(rules)
    bpf_devices.apply(path, emu.rule_list(), emu.is_blacklist(), config_rules=rules)


def rdma_line(dev: str, lim: dict) -> str:
    out = dev
    if lim.get("hcaHandles") is not None:
        out += f" hca_handle={lim['hcaHandles']}"
    if lim.get("hcaObjects") is not None:
        out += f" hca_object={lim['hcaObjects']}"
    return out


def _memory(path: str, mem: dict, update: bool) -> None:
    limit, swap = mem.get("limit") or 0, mem.get("swap") or 0
    if not (limit or swap or mem.get("reservation")):
        return
    v2swap = swap_to_v2(swap, limit)
    swap_s = _num(v2swap)
    if swap_s == "" and v2swap == 0 and swap > 0:
        swap_s = "0"  # memory and memory+swap equal: no swap at all
    if swap_s:
        try:
            write_file(os.path.join(path, "memory.swap.max"), swap_s)
        except OSError as e:
            # no swap accounting: "max" and "0" ask for what the host already gives
            if not (e.errno == errno.ENOENT and swap_s in ("max", "0")):
                raise RuntimeErr(
                    f"linux.resources.memory.swap: failed to write {swap_s!r} to "
                    f"{path}/memory.swap.max: {e.strerror}"
                ) from None
    if limit:
        if update and mem.get("checkBeforeUpdate") and limit > 0:
            check_usage(path, limit)
        _write(path, "memory.max", _num(limit), "linux.resources.memory.limit")
    if mem.get("reservation"):
        _write(path, "memory.low", _num(mem["reservation"]), "linux.resources.memory.reservation")


def check_usage(path: str, limit: int) -> None:
    """checkBeforeUpdate: a limit below what the container already uses would OOM-kill it on
    the spot; refuse the update instead."""
    try:
        with open(os.path.join(path, "memory.current"), "rb") as f:
            usage = int(f.read())
    except (OSError, ValueError):
        return
    if usage > limit:
        raise RuntimeErr(
            f"linux.resources.memory.limit: rejecting memory limit {limit} below usage {usage}"
        )


def _cpu(path: str, cpu: dict) -> None:
    if cpu.get("shares"):
        _write(
            path,
            "cpu.weight",
            str(cpu_shares_to_weight(cpu["shares"])),
            "linux.resources.cpu.shares",
        )
    if cpu.get("idle") is not None:
        _write(path, "cpu.idle", str(cpu["idle"]), "linux.resources.cpu.idle")
    quota, period = cpu.get("quota") or 0, cpu.get("period") or 0
    if quota or period:
        value = (str(quota) if quota > 0 else "max") + " " + str(period or 100000)
        _write(path, "cpu.max", value, "linux.resources.cpu.quota")
    if cpu.get("burst") is not None:
        _write(path, "cpu.max.burst", str(cpu["burst"]), "linux.resources.cpu.burst")
    if cpu.get("realtimeRuntime") or cpu.get("realtimePeriod"):
        raise ConfigError(
            "linux.resources.cpu.realtimeRuntime: realtime scheduling limits are not "
            "supported on cgroup v2"
        )


def _io(path: str, bio: dict) -> None:
    if not bio:
        return
    bfq = os.path.exists(os.path.join(path, "io.bfq.weight"))
    if bio.get("weight"):
        if bfq:
            _write(path, "io.bfq.weight", str(bio["weight"]), "linux.resources.blockIO.weight")
        else:
            w = blkio_weight_to_io_weight(bio["weight"])
            _write(path, "io.weight", str(w), "linux.resources.blockIO.weight")
    if bfq:  # only BFQ takes per-device weights
        for d in bio.get("weightDevice") or []:
            if d.get("weight"):
                line = f"{d['major']}:{d['minor']} {d['weight']}"
                _write(path, "io.bfq.weight", line, "linux.resources.blockIO.weightDevice")
    for key, name in (
        ("throttleReadBpsDevice", "rbps"),
        ("throttleWriteBpsDevice", "wbps"),
        ("throttleReadIOPSDevice", "riops"),
        ("throttleWriteIOPSDevice", "wiops"),
    ):
        for d in bio.get(key) or []:
            line = f"{d['major']}:{d['minor']} {name}={d['rate']}"
            _write(path, "io.max", line, f"linux.resources.blockIO.{key}")


def freeze(path: str, frozen: bool, timeout: float = 10.0) -> None:
    """cgroup.freeze, then wait for cgroup.events to say the whole tree stopped: pause must
    not return while a task can still run (runc waits the same way, up to 10 s)."""
    write_file(os.path.join(path, "cgroup.freeze"), "1" if frozen else "0")
    if not frozen:
        return
    deadline = time.monotonic() + timeout
    while True:
        with open(os.path.join(path, "cgroup.events"), "rb") as f:
            if b"frozen 1" in f.read():
                return
        if time.monotonic() > deadline:
            raise RuntimeErr(f"timeout of {timeout:g}s reached waiting for the cgroup to freeze")
        time.sleep(0.01)
