"""process.scheduler, process.ioPriority and process.execCPUAffinity (runtime-spec 1.2).

The config's values are checked and turned into syscall arguments by the parent, before any
fork (Plan), with runc's rules and one-line errors naming the field; the child only makes the
calls (`apply_*`), before the container's process execs, and reports what the kernel refused
through the init's error pipe. Imported only for a config that has one of these fields.
"""

from __future__ import annotations

import os

from pyrunc.errors import ConfigError, RuntimeErr
from pyrunc.linux import sys as S

# sched_setattr(2): include/uapi/linux/sched.h (SCHED_ISO is reserved, not implemented)
POLICIES = {
    "SCHED_OTHER": 0,
    "SCHED_FIFO": 1,
    "SCHED_RR": 2,
    "SCHED_BATCH": 3,
    "SCHED_ISO": 4,
    "SCHED_IDLE": 5,
    "SCHED_DEADLINE": 6,
}
FLAGS = {
    "SCHED_FLAG_RESET_ON_FORK": 0x01,
    "SCHED_FLAG_RECLAIM": 0x02,
    "SCHED_FLAG_DL_OVERRUN": 0x04,
    "SCHED_FLAG_KEEP_POLICY": 0x08,
    "SCHED_FLAG_KEEP_PARAMS": 0x10,
    "SCHED_FLAG_UTIL_CLAMP_MIN": 0x20,
    "SCHED_FLAG_UTIL_CLAMP_MAX": 0x40,
}
IOPRIO_CLASSES = {"IOPRIO_CLASS_RT": 1, "IOPRIO_CLASS_BE": 2, "IOPRIO_CLASS_IDLE": 3}

# runc's limit for a CPU list (configs.ToCPUSet): larger values are refused, not ignored
MAX_CPU = 65536
# sched_setaffinity mask that means "every CPU" (the cpuset narrows it): runc's reset
_ALL_CPUS = range(8192)


def at(where: str, field: str) -> str:
    """`config.json: process` + `scheduler` -> `config.json: process.scheduler`; a document
    that is the process itself (`process.json: `) gets no dot."""
    return where + field if where.endswith(" ") else f"{where}.{field}"


def scheduler(s: dict, where: str = "config.json: process") -> tuple[int, ...]:
    """process.scheduler -> sched_setattr arguments (policy, flags, nice, priority, runtime,
    deadline, period). runc's validation (libcontainer/configs/validate), plus the kernel's
    own range checks made here so that they fail before anything exists."""
    where = at(where, "scheduler")
    name = s["policy"]  # the schema requires it and limits it to the known names
    policy = POLICIES[name]
    nice = s.get("nice", 0)
    prio = s.get("priority", 0)
    runtime, deadline, period = s.get("runtime", 0), s.get("deadline", 0), s.get("period", 0)
    if name in ("SCHED_OTHER", "SCHED_BATCH") and not -20 <= nice <= 19:
        raise ConfigError(f"{where}.nice: {nice} is out of range -20..19 for {name}")
    if name in ("SCHED_FIFO", "SCHED_RR"):
        if not 1 <= prio <= 99:
            raise ConfigError(f"{where}.priority: {prio} is out of range 1..99 for {name}")
    elif prio:
        raise ConfigError(
            f"{where}.priority: can only be specified for SCHED_FIFO or SCHED_RR, not {name}"
        )
    if name == "SCHED_DEADLINE":
        # the kernel's __checkparam_dl, less its sysctl bounds
        if deadline == 0:
            raise ConfigError(f"{where}.deadline: required (non-zero) for SCHED_DEADLINE")
        if runtime < 1024:
            raise ConfigError(
                f"{where}.runtime: {runtime} is below the kernel's minimum of 1024 ns"
            )
        if runtime > deadline:
            raise ConfigError(
                f"{where}.runtime: {runtime} is greater than deadline {deadline}"
            )
        if period and period < deadline:
            raise ConfigError(f"{where}.period: {period} is less than deadline {deadline}")
        if deadline >= 1 << 63 or period >= 1 << 63:
            raise ConfigError(f"{where}: deadline and period must be below 2^63 ns")
    elif runtime or deadline or period:
        field = "runtime" if runtime else "deadline" if deadline else "period"
        raise ConfigError(f"{where}.{field}: can only be specified for SCHED_DEADLINE, not {name}")
    flags = 0
    for f in s.get("flags") or []:
        flags |= FLAGS[f]  # names checked by the schema
    return (policy, flags, nice, prio & 0xFFFFFFFF, runtime, deadline, period)


def ioprio(io: dict, where: str = "config.json: process") -> int:
    """process.ioPriority -> the ioprio_set(2) value (class << 13 | level)."""
    prio = io.get("priority", 0)
    if not 0 <= prio <= 7:
        raise ConfigError(f"{at(where, 'ioPriority')}.priority: {prio} is out of range 0..7")
    return IOPRIO_CLASSES[io["class"]] << S.IOPRIO_CLASS_SHIFT | prio


def cpu_list(text: str, where: str, limit: int = MAX_CPU) -> tuple[int, ...]:
    """A CPU (or NUMA node) list as cpuset(7) writes it ("0-3,7"), parsed as runc's ToCPUSet
    does: spaces around an element and empty elements are fine, "1 - 2" or "3-1" are not.
    Empty: (). Otherwise the sorted ids."""
    if not text:
        return ()
    ids: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        lo, dash, hi = part.partition("-")
        try:
            a = _cpu_number(lo)
            b = _cpu_number(hi) if dash else a
        except ValueError:
            raise ConfigError(f"{where}: invalid list {text!r}: bad element {part!r}") from None
        if a > b:
            raise ConfigError(f"{where}: invalid list {text!r}: range {part!r} is backwards")
        if b > limit:
            raise ConfigError(
                f"{where}: invalid list {text!r}: values larger than {limit} are not supported"
            )
        ids.update(range(a, b + 1))
    if not ids:
        raise ConfigError(f"{where}: invalid list {text!r}: no numbers in it")
    return tuple(sorted(ids))


def _cpu_number(s: str) -> int:
    if not s.isdigit() or not s.isascii():
        raise ValueError(s)
    return int(s)


def affinity(a: dict, where: str = "config.json: process") -> tuple[tuple, tuple]:
    """process.execCPUAffinity -> (initial, final) CPU tuples (each () when unset)."""
    where = at(where, "execCPUAffinity")
    return (
        cpu_list(a.get("initial") or "", where + ".initial"),
        cpu_list(a.get("final") or "", where + ".final"),
    )


def check_process(proc: dict, where: str = "config.json: process") -> None:
    """All of the above for one process document (exec --process checks it on its own)."""
    if proc.get("scheduler") is not None:
        scheduler(proc["scheduler"], where)
    if proc.get("ioPriority") is not None:
        ioprio(proc["ioPriority"], where)
    if proc.get("execCPUAffinity") is not None:
        affinity(proc["execCPUAffinity"], where)


# --- in the child


def apply_scheduler(attr: tuple[int, ...], spec: dict) -> None:
    try:
        S.sched_setattr(0, *attr)
    except OSError as e:
        name = spec.get("policy")
        hint = ""
        if e.errno == 1 and name in ("SCHED_FIFO", "SCHED_RR"):
            hint = (
                " (needs CAP_SYS_NICE in the initial user namespace or RLIMIT_RTPRIO, and with "
                "RT group scheduling a linux.resources.cpu.realtimeRuntime for the cgroup)"
            )
        elif e.errno == 1 and name == "SCHED_DEADLINE":
            hint = (
                " (needs CAP_SYS_NICE in the initial user namespace, and an affinity spanning "
                "the whole root domain: not with a cpuset that narrows the CPUs)"
            )
        elif e.errno == 1:
            hint = " (a lower nice value needs CAP_SYS_NICE or RLIMIT_NICE)"
        elif e.errno == 22 and name == "SCHED_ISO":
            hint = " (SCHED_ISO is not implemented by Linux)"
        elif e.errno == 16 and name == "SCHED_DEADLINE":
            hint = " (the deadline bandwidth is not available: admission control refused it)"
        raise RuntimeErr(
            f"process.scheduler: sched_setattr({name}): {os.strerror(e.errno)}{hint}"
        ) from None


def apply_ioprio(value: int, spec: dict) -> None:
    try:
        S.ioprio_set(S.IOPRIO_WHO_PROCESS, 0, value)
    except OSError as e:
        hint = ""
        if e.errno == 1:
            hint = " (IOPRIO_CLASS_RT needs CAP_SYS_ADMIN or CAP_SYS_NICE)"
        raise RuntimeErr(
            f"process.ioPriority: ioprio_set({spec.get('class')}, {spec.get('priority', 0)}): "
            f"{os.strerror(e.errno)}{hint}"
        ) from None


def set_affinity(cpus: tuple[int, ...], field: str) -> None:
    """sched_setaffinity of the calling thread; the field names the list in errors."""
    try:
        os.sched_setaffinity(0, cpus)
    except OSError as e:
        hint = ""
        if e.errno == 22:
            hint = " (none of those CPUs is online and in the cpuset)"
        raise RuntimeErr(
            f"process.execCPUAffinity.{field}: sched_setaffinity({show_list(cpus)}): "
            f"{os.strerror(e.errno)}{hint}"
        ) from None


def reset_affinity() -> None:
    """Every CPU the cgroup's cpuset allows (runc's tryResetCPUAffinity: best effort)."""
    try:
        os.sched_setaffinity(0, _ALL_CPUS)
    except OSError:
        pass


def mask(cpus: object) -> str:
    """The hex mask runc's nsexec logs ("affinity: 0x3")."""
    m = 0
    for c in cpus:  # type: ignore[attr-defined]
        m |= 1 << c
    return hex(m)


def show_list(ids: tuple[int, ...]) -> str:
    """Ids back as a list string ("0-2,5")."""
    out: list[str] = []
    start = prev = None
    for i in ids:
        if prev is not None and i == prev + 1:
            prev = i
            continue
        if start is not None:
            out.append(str(start) if start == prev else f"{start}-{prev}")
        start = prev = i
    if start is not None:
        out.append(str(start) if start == prev else f"{start}-{prev}")
    return ",".join(out)
