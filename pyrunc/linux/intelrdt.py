"""linux.intelRdt: the container's resctrl group (Intel RDT / AMD PQoS cache and memory-bandwidth
allocation, and monitoring), made as runc makes it, with runtime-spec 1.3's additions.

The group ("CLOS") is a directory of the resctrl filesystem (found in /proc/self/mountinfo, as
runc finds it; every function takes another root for tests): `closID`, or the container's id
when there is none, or the filesystem's root itself for closID "/" (the default CLOS, runtime-spec
1.3, runc 1.4). `create` checks the config and the host (`check`), then `setup` makes the group
if it is missing and writes its `schemata` (l3CacheSchema, then memBwSchema, then the lines of
`schemata`, in one write), and `enableMonitoring` gets a MON group `mon_groups/<id>` in it;
`join` writes the init's pid to the group's `tasks` (then the MON group's), and `exec` writes its
process's. `remove` undoes it at delete: the MON group always, the CLOS only if this runtime made
it and the config named none (runtime-spec 1.3: a named CLOS is never removed; runc 1.3 removed
an unnamed one even if it had not made it, runc 1.5 no longer does).

Where runc 1.3 and runtime-spec 1.3 differ, the spec wins: a named group that exists already is
compared with the schemas (a MUST; runc 1.3 overwrites it, a TODO there), not written; "/" is
the root CLOS (runc 1.3 refuses any "/").

Without a mounted resctrl filesystem any intelRdt is an error (the spec's MUST): `check()`
without a config, which Plan calls for create and exec alike.
"""

from __future__ import annotations

import errno
import os

from pyrunc.errors import ConfigError, RuntimeErr

MOUNTINFO = "/proc/self/mountinfo"
W = "linux.intelRdt"
NO_RESCTRL = (
    f"{W}: intelRdt is specified in config, but Intel RDT is not supported or enabled "
    "(no resctrl filesystem is mounted)"
)
# resctrl's own entries at its root: never a CLOS, whatever closID or container id says
_RESERVED = frozenset({"info", "mon_groups", "mon_data"})


def find_root(mountinfo: str = MOUNTINFO) -> str | None:
    """The mount point of the first resctrl filesystem, or None (runc's
    findIntelRdtMountpointDir)."""
    try:
        with open(mountinfo, "rb") as f:
            for line in f:
                pre, sep, post = line.partition(b" - ")
                if sep and post.split(b" ", 1)[0] == b"resctrl":
                    return _unescape(pre.split(b" ")[4])
    except FileNotFoundError:
        pass
    return None


def _unescape(field: bytes) -> str:
    """mountinfo writes space, tab, newline and backslash as \\ooo."""
    out = bytearray()
    i = 0
    while i < len(field):
        if field[i : i + 1] == b"\\" and field[i + 1 : i + 4].isdigit():
            out.append(int(field[i + 1 : i + 4], 8))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return os.fsdecode(bytes(out))


def resctrl_mounted() -> bool:
    return find_root() is not None


def check(rdt: dict | None = None, cid: str = "", resctrl: str | None = None) -> dict:
    """Refuse what cannot be done, before anything is made; the group `setup` would make.
    Without `rdt` only the host is checked (a resctrl filesystem is mounted)."""
    root = resctrl if resctrl is not None else find_root()
    if root is None:
        raise ConfigError(NO_RESCTRL)
    if rdt is None:
        return {"root": root}
    clos = rdt.get("closID") or ""
    if clos in (".", "..") or ("/" in clos and clos != "/") or clos in _RESERVED:
        raise ConfigError(
            f"{W}.closID: invalid CLOS name {clos!r} (a directory at the root of the resctrl "
            'filesystem, or "/" for the root itself)'
        )
    name = clos or cid
    if name in _RESERVED:
        raise ConfigError(
            f"{W}: the container id {cid!r} names resctrl's own directory; set closID"
        )
    l3 = rdt.get("l3CacheSchema") or ""
    mb = rdt.get("memBwSchema") or ""
    lines = [x for x in rdt.get("schemata") or [] if x]
    for field, value in (("l3CacheSchema", l3), ("memBwSchema", mb)):
        if "\n" in value:
            raise ConfigError(f"{W}.{field}: must be one line, got {value!r}")
    for i, value in enumerate(rdt.get("schemata") or []):
        if "\n" in value:
            raise ConfigError(f"{W}.schemata[{i}]: must be one line, got {value!r}")
    if mb and not mb.startswith("MB:"):
        raise ConfigError(f"{W}.memBwSchema: must start with MB:, got {mb!r}")
    # runc's checks: each kind of schema needs its feature (hardware, kernel, kernel command
    # line: rdt=!l3cat,mba), which resctrl shows as a directory under info/
    for field, given, info, what in (
        ("l3CacheSchema", l3, "L3", "Intel RDT/CAT (L3 cache allocation)"),
        ("memBwSchema", mb, "MB", "Intel RDT/MBA (memory bandwidth allocation)"),
        ("enableMonitoring", rdt.get("enableMonitoring"), "L3_MON", "resctrl monitoring"),
    ):
        if given and not os.path.isdir(os.path.join(root, "info", info)):
            raise ConfigError(
                f"{W}.{field}: {what} is not enabled on this host (no {root}/info/{info})"
            )
    path = root if clos == "/" else os.path.join(root, name)
    want = [x for x in (l3, mb) if x] + lines
    exists = os.path.isdir(path)
    if clos and not want and not exists:
        raise ConfigError(
            f"{W}.closID: the resctrl group {path} does not exist (with no schema to write, "
            "it must be made beforehand)"
        )
    if clos and want and exists:
        _compare(path, want)
    mon = os.path.join(path, "mon_groups", cid) if rdt.get("enableMonitoring") else ""
    return {
        "root": root,
        "path": path,
        "exists": exists,
        "keep": bool(clos),
        "want": want,
        "mon": mon,
    }


def setup(rdt: dict, cid: str, resctrl: str | None = None) -> dict:
    """Make the container's group (and MON group) and write its schemata: what `join` and
    `remove` take, kept in the container's state. A failure undoes what this call made."""
    g = check(rdt, cid, resctrl)
    root = g["root"]
    group = {"root": root, "path": g["path"], "made": False, "keep": g["keep"], "mon": g["mon"]}
    try:
        if not g["exists"]:
            _mkdir(root, g["path"])
            group["made"] = True
        # a named group that was there is the administrator's: compared by check, not written
        if g["want"] and not (g["exists"] and g["keep"]):
            _write(root, g["path"], "schemata", "\n".join(g["want"]) + "\n")
        if g["mon"]:
            _mkdir(root, g["mon"], "enableMonitoring")
    except BaseException:
        remove(group, failed=True)
        raise
    return group


def update(group: dict | None, rdt: dict, cid: str, pid: int,
           resctrl: str | None = None) -> dict:
    """`update --l3-cache-schema/--mem-bw-schema` (runc's): write the schemas given into the
    container's group, made and joined first if its config had no intelRdt (runc does the
    same). Unlike create, a named group is written, not compared: that is what was asked."""
    want = [x for x in (rdt.get("l3CacheSchema"), rdt.get("memBwSchema")) if x]
    if group is None:
        group = setup(rdt, cid, resctrl)
        join(group, pid)
        return group
    check({k: v for k, v in rdt.items() if k != "closID"}, cid, group["root"])  # the fields
    _write(group["root"], group["path"], "schemata", "\n".join(want) + "\n")
    return group


def join(group: dict, pid: int, gone_ok: bool = False) -> None:
    """Put `pid` in the group, then in its MON group (the kernel takes a task into a MON group
    only from the MON group's parent). `gone_ok`: a process that has already exited (ESRCH;
    an exec'd `true`) is no error."""
    try:
        _write(group["root"], group["path"], "tasks", str(pid))
        if group.get("mon"):
            _write(group["root"], group["mon"], "tasks", str(pid))
    except _Gone:
        if not gone_ok:
            raise


def remove(group: dict | None, failed: bool = False) -> None:
    """Delete what the container owns: its MON group, and its CLOS if this runtime made it for
    a config that named none (`failed`: a create that did not finish; then whatever was made
    goes). Problems are warnings: delete goes on, as for cgroups."""
    if not group:
        return
    from pyrunc import log

    doomed = [group["mon"]] if group.get("mon") else []
    if group.get("made") and (failed or not group.get("keep")):
        doomed.append(group["path"])
    for path in doomed:
        try:
            _rmdir(path)
        except OSError as e:
            log.warn(f"{W}: removing {path}: {e.strerror}")


def _rmdir(path: str) -> None:
    """rmdir, which on resctrl removes a group with its files (Go's RemoveAll tries it first
    too); a directory that is not empty is a plain one (a test's tree): emptied, then removed."""
    try:
        os.rmdir(path)
    except FileNotFoundError:
        pass
    except OSError as e:
        if e.errno != errno.ENOTEMPTY:
            raise
        for name in os.listdir(path):
            p = os.path.join(path, name)
            if os.path.isdir(p) and not os.path.islink(p):
                _rmdir(p)
            else:
                os.unlink(p)
        os.rmdir(path)


def _last_cmd_status(root: str) -> str:
    try:
        with open(os.path.join(root, "info", "last_cmd_status")) as f:
            return " ".join(f.read().split())
    except OSError:
        return ""


def _fail(root: str, what: str, e: OSError, field: str = "") -> RuntimeErr:
    """runc's newLastCmdError: the kernel explains a refused write in info/last_cmd_status
    (e.g. "Unknown or unsupported resource", "No free CLOSIDs")."""
    status = _last_cmd_status(root)
    tail = f" (last_cmd_status: {status})" if status and status != "ok" else ""
    where = f"{W}.{field}" if field else W
    return RuntimeErr(f"{where}: {what}: {e.strerror}{tail}")


def _mkdir(root: str, path: str, field: str = "") -> None:
    """A group (ENOSPC: the hardware has no CLOS or RMID left), or a MON group, which an
    existing one from an earlier container of that id serves as well."""
    try:
        os.makedirs(path, 0o755, exist_ok=bool(field))
    except OSError as e:
        raise _fail(root, f"making {path}", e, field) from None


def _write(root: str, dirpath: str, name: str, data: str) -> None:
    path = os.path.join(dirpath, name)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, data.encode())
        finally:
            os.close(fd)
    except OSError as e:
        err = _fail(root, f"writing {data.strip()!r} to {path}", e)
        if e.errno == errno.ESRCH:
            raise _Gone(str(err)) from None
        raise err from None


class _Gone(RuntimeErr):
    """The pid written to a tasks file is no process (any more)."""


# ---- comparing schemata ------------------------------------------------------------------


def _parse(lines: list[str]) -> dict[str, dict[int | str, str]]:
    """{resource: {domain: value}} from schemata lines, the later line winning ("L3:0=0ff;1=f"
    -> {"L3": {0: "ff", 1: "f"}}); values without leading zeros, as the kernel reads them
    back. A line the kernel would not take is left for it to refuse."""
    out: dict[str, dict[int | str, str]] = {}
    for line in lines:
        res, sep, rest = line.partition(":")
        if not sep:
            continue
        doms = out.setdefault(res.strip(), {})
        for tok in rest.split(";"):
            dom, sep, val = tok.partition("=")
            if not sep:
                continue
            dom = dom.strip()
            key: int | str = int(dom) if dom.isdigit() else dom
            doms[key] = val.strip().lower().lstrip("0") or "0"
    return out


def _compare(path: str, want: list[str]) -> None:
    """runtime-spec 1.3: a named group that exists must already have the config's schemas
    (each domain the config gives; the file lists every domain)."""
    try:
        with open(os.path.join(path, "schemata")) as f:
            have = _parse(f.read().splitlines())
    except OSError as e:
        raise RuntimeErr(f"{W}: reading {path}/schemata: {e.strerror}") from None
    for res, doms in _parse(want).items():
        for dom, val in doms.items():
            got = have.get(res, {}).get(dom)
            if got != val:
                raise ConfigError(
                    f"{W}: the resctrl group {path} exists with other schemata "
                    f"({res}:{dom}={got if got is not None else '(none)'}, the config wants "
                    f"{res}:{dom}={val})"
                )


# ---- events --stats ----------------------------------------------------------------------


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ""


def _uint(path: str) -> int:
    v = _read(path)
    return int(v) if v.isdigit() else 0


def _info(root: str, kind: str, names: tuple[str, ...]) -> dict:
    d = os.path.join(root, "info", kind)
    out: dict = {}
    for n in names:
        v: object = _read(os.path.join(d, n)) if n == "cbm_mask" else _uint(os.path.join(d, n))
        if v:
            out[n] = v  # Go's omitempty
    return out


def stats(group: dict) -> dict:
    """runc's intel_rdt stats (types/events.go IntelRdt): the L3 and MB info and schemata of
    the root and of the group, and the monitoring counters of its MON group (or of the group)."""
    root = group["root"]
    out: dict = {}
    mine = _read(os.path.join(group["path"], "schemata")).splitlines()
    theirs = _read(os.path.join(root, "schemata")).splitlines()

    def line(lines: list[str], res: str) -> str:
        return next((x.strip() for x in lines if x.strip().startswith(res + ":")), "")

    if os.path.isdir(os.path.join(root, "info", "L3")):
        out["l3_cache_info"] = _info(root, "L3", ("cbm_mask", "min_cbm_bits", "num_closids"))
        out["l3_cache_schema_root"] = line(theirs, "L3")
        out["l3_cache_schema"] = line(mine, "L3")
    if os.path.isdir(os.path.join(root, "info", "MB")):
        out["mem_bw_info"] = _info(
            root, "MB", ("bandwidth_gran", "delay_linear", "min_bandwidth", "num_closids")
        )
        out["mem_bw_schema_root"] = line(theirs, "MB")
        out["mem_bw_schema"] = line(mine, "MB")
    features = _read(os.path.join(root, "info", "L3_MON", "mon_features")).split()
    data = os.path.join(group.get("mon") or group["path"], "mon_data")
    nodes = sorted(n for n in _listdir(data) if n.startswith("mon_L3_"))
    if nodes and ("mbm_total_bytes" in features or "mbm_local_bytes" in features):
        out["mbm_stats"] = [
            {k: _uint(os.path.join(data, n, k)) for k in ("mbm_total_bytes", "mbm_local_bytes")}
            for n in nodes
        ]
    if nodes and "llc_occupancy" in features:
        out["cmt_stats"] = [
            {"llc_occupancy": _uint(os.path.join(data, n, "llc_occupancy"))} for n in nodes
        ]
    return {k: v for k, v in out.items() if v}


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []
