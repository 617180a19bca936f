"""`update`: change the cgroup limits of a created, running or paused container.

The changes (flags, or a JSON document with --resources FILE|-) are merged into the container's
saved config and the whole set is written again, as runc does, so that later updates see the
earlier ones (memory before or after swap depends on both).
"""

from __future__ import annotations

import os

from pyrunc import fastjson
from pyrunc import state as S
from pyrunc.errors import RuntimeErr

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}

# flag -> (section, key, kind)
FLAGS = {
    "blkio_weight": ("blockIO", "weight", "int"),
    "cpu_period": ("cpu", "period", "int"),
    "cpu_quota": ("cpu", "quota", "int"),
    "cpu_share": ("cpu", "shares", "int"),
    "cpu_rt_period": ("cpu", "realtimePeriod", "int"),
    "cpu_rt_runtime": ("cpu", "realtimeRuntime", "int"),
    "cpuset_cpus": ("cpu", "cpus", "str"),
    "cpuset_mems": ("cpu", "mems", "str"),
    "memory": ("memory", "limit", "ram"),
    "memory_reservation": ("memory", "reservation", "ram"),
    "memory_swap": ("memory", "swap", "ram"),
    "kernel_memory": ("memory", "kernel", "ram"),
    "kernel_memory_tcp": ("memory", "kernelTCP", "ram"),
    "pids_limit": ("pids", "limit", "int"),
}
SECTIONS = {
    "memory": ("limit", "reservation", "swap", "kernel", "kernelTCP", "checkBeforeUpdate"),
    "cpu": (
        "shares",
        "quota",
        "period",
        "realtimeRuntime",
        "realtimePeriod",
        "cpus",
        "mems",
        "idle",
        "burst",
    ),
    "blockIO": ("weight",),
    "pids": ("limit",),
}


def ram_in_bytes(flag: str, v: str) -> int:
    """Docker's RAMInBytes: 512, 64k, 50M, 1.5g, 1GiB; -1 for unlimited."""
    s = v.strip().lower()
    if s == "-1":
        return -1
    for suffix in ("ib", "b"):
        if s.endswith(suffix) and len(s) > len(suffix) and not s[-len(suffix) - 1].isdigit():
            s = s[: -len(suffix)]
            break
    unit = s[-1] if s and s[-1] in _UNITS else ""
    num = s[: len(s) - len(unit)].strip()
    try:
        return int(float(num) * _UNITS[unit])
    except ValueError:
        raise RuntimeErr(f"--{flag.replace('_', '-')}: invalid size {v!r}") from None


def _from_flags(o: dict) -> dict:
    out: dict[str, dict] = {}
    for flag, (section, key, kind) in FLAGS.items():
        v = o.get(flag)
        if v in (None, "", 0):
            continue
        if kind == "ram":
            value: object = ram_in_bytes(flag, str(v))
        elif kind == "int":
            try:
                value = int(v)
            except ValueError:
                raise RuntimeErr(f"--{flag.replace('_', '-')}: invalid number {v!r}") from None
        else:
            value = v
        out.setdefault(section, {})[key] = value
    return out


def _from_document(path: str) -> dict:
    return changes_from(fastjson.load_document(path, "--resources"))


def changes_from(doc: dict) -> dict:
    """The changes a LinuxResources document (runc's --resources JSON) asks for."""
    # Go's decoder matches keys case-insensitively ({"CPU": {"Cpus": "0"}} works with runc)
    out: dict[str, dict] = {}
    for sk, sv in doc.items():
        if sk.lower() == "unified" and isinstance(sv, dict):
            out["unified"] = sv  # replaced as a whole, as runc does
            continue
        section = next((s for s in SECTIONS if s.lower() == sk.lower()), None)
        if section is None or not isinstance(sv, dict):
            continue
        for k, v in sv.items():
            key = next((x for x in SECTIONS[section] if x.lower() == k.lower()), None)
            if key is not None and v is not None:
                _check_type(section, key, v)
                out.setdefault(section, {})[key] = v
    return out


def _check_type(section: str, key: str, v: object) -> None:
    """Go's decoder refuses a value of the wrong JSON type; so do we, naming the field, rather
    than fail later inside the cgroup code."""
    if key in ("cpus", "mems"):
        ok, want = isinstance(v, str), "a string"
    elif key == "checkBeforeUpdate":
        ok, want = isinstance(v, bool), "a boolean"
    else:
        ok, want = isinstance(v, int) and not isinstance(v, bool), "an integer"
    if not ok:
        raise RuntimeErr(f"--resources: {section}.{key}: expected {want}, got {fastjson.dumps(v)}")


def update(root: str, cid: str, o: dict) -> None:
    """The CLI's `update`: flags, or --resources FILE|-; then the Intel RDT schemas."""
    rdt = {k: o.get(f) or "" for k, f in (("l3CacheSchema", "l3_cache_schema"),
                                          ("memBwSchema", "mem_bw_schema"))}
    if any(rdt.values()):
        from pyrunc.linux import intelrdt

        if not intelrdt.resctrl_mounted():  # before any cgroup changes: nothing half-done
            flag = "--l3-cache-schema" if rdt["l3CacheSchema"] else "--mem-bw-schema"
            what = "Intel RDT/CAT: l3 cache" if rdt["l3CacheSchema"] else (
                "Intel RDT/MBA: memory bandwidth")
            raise RuntimeErr(f"{flag}: {what} schema is not enabled (no resctrl filesystem "
                             "is mounted)")
    changes_of = (lambda: _from_document(o["resources"])) if o["resources"] else (
        lambda: _from_flags(o))
    apply(root, cid, changes_of, rdt if any(rdt.values()) else None)


def apply(root: str, cid: str, changes_of: Callable[[], dict], rdt: dict | None = None) -> None:
    """Merge changes into the container's resources and write them to its cgroups; the
    library entry (the shim's Update passes changes_from(its LinuxResources JSON)).
    changes_of is called once the container is known to be running. rdt: runc's update of
    the Intel RDT schemas (both set from the flags, an absent one empty), written into the
    container's resctrl group, which is made if it had none."""
    from pyrunc.linux import cgroups

    with S.Locked(root, cid):
        st = S.load(root, cid)
        if S.status(root, st) == "stopped":
            raise RuntimeErr("container not running")
        changes = changes_of()
        mem = changes.get("memory", {})
        kmem = [mem.pop("kernel", 0), mem.pop("kernelTCP", 0)]  # obsolete: ignored, as runc
        if any(kmem):
            from pyrunc import log

            log.warn("Kernel memory settings are ignored and will be removed")
        if mem.get("limit") == -1 and "swap" not in mem:
            mem["swap"] = -1  # an unlimited memory limit lifts the memory+swap limit too
        config = st.get("config") or {}
        res = config.setdefault("linux", {}).setdefault("resources", {})
        for section, values in changes.items():
            if section == "unified":
                res["unified"] = values
            else:
                res.setdefault(section, {}).update(values)
        cgroups.apply_resources(st.get("cgroup") or {}, res, update=True)
        if rdt is not None:
            from pyrunc.linux import intelrdt

            new = dict(config["linux"].get("intelRdt") or {}, **rdt)
            st["intel_rdt"] = intelrdt.update(st.get("intel_rdt"), new, cid, st["pid"])
            config["linux"]["intelRdt"] = new
        S.save(os.path.join(root, cid), st)
