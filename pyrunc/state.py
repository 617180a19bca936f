"""<root>/<id>/: the container's state on disk, written atomically and read without locks.

Status is never stored: it is derived from the live process (pid + start time, so a recycled pid
reads as stopped), the exec fifo (created) and the freezer (paused), as runc does.
"""

from __future__ import annotations

import os
import time

from pyrunc import fastjson
from pyrunc.errors import NotFound, RuntimeErr

STATE_FILE = "state.json"
FIFO = "exec.fifo"


def valid_id(cid: str) -> None:
    ok = cid not in ("", ".", "..") and all(c.isalnum() or c in "_+-." for c in cid)
    if not ok or not cid.isascii():
        raise RuntimeErr("invalid container id format: " + cid)


def container_dir(root: str, cid: str) -> str:
    valid_id(cid)
    return os.path.join(root, cid)


def write_atomic(path: str, data: str, mode: int = 0o600) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        os.write(fd, data.encode())
    finally:
        os.close(fd)
    os.rename(tmp, path)


def save(cdir: str, st: dict) -> None:
    write_atomic(os.path.join(cdir, STATE_FILE), fastjson.dumps(st))


def load(root: str, cid: str) -> dict:
    cdir = container_dir(root, cid)
    try:
        with open(os.path.join(cdir, STATE_FILE), "rb") as f:
            return fastjson.loads(f.read())
    except FileNotFoundError:
        raise NotFound("container does not exist") from None
    except ValueError as e:
        raise RuntimeErr(f"container {cid}: corrupt state file: {e}") from None


class Locked:
    """flock on the container's directory: start, delete, pause and resume of one container
    are serialised (two deletes, or a start racing a delete, would otherwise interleave)."""

    def __init__(self, root: str, cid: str) -> None:
        self.path = container_dir(root, cid)
        self.fd = -1

    def __enter__(self) -> Locked:
        import fcntl

        try:
            self.fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise NotFound("container does not exist") from None
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)


def proc_start_time(pid: int) -> int | None:
    """Field 22 of /proc/<pid>/stat; None if the process is gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    rest = data[data.rindex(b")") + 2 :].split()
    if rest[0] in (b"Z", b"X"):
        return None
    return int(rest[19])


def alive(st: dict) -> bool:
    pid = st.get("pid", 0)
    return pid > 0 and proc_start_time(pid) == st.get("start_time")


def status(root: str, st: dict) -> str:
    if not alive(st):
        return "stopped"
    # paused before created, as runc: a created container can be paused too
    paths = st.get("cgroup", {})
    fz = paths.get("freezer")
    try:
        if fz:
            with open(fz + "/freezer.state", "rb") as f:
                if f.read().strip() in (b"FROZEN", b"FREEZING"):
                    return "paused"
        elif paths.get("unified"):  # cgroup v2: the freezer is cgroup.freeze
            with open(paths["unified"] + "/cgroup.freeze", "rb") as f:
                if f.read().strip() == b"1":
                    return "paused"
    except OSError:
        pass
    if os.path.exists(os.path.join(root, st["id"], FIFO)):
        return "created"
    return "running"


def rfc3339nano(t_ns: int) -> str:
    secs, ns = divmod(t_ns, 1_000_000_000)
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs))
    frac = f"{ns:09d}".rstrip("0")
    return f"{base}.{frac}Z" if frac else base + "Z"


def oci_state(root: str, st: dict, status_: str | None = None) -> dict:
    """The state as runc prints it (`runc state`), in runc's key order."""
    s = status_ or status(root, st)
    out = {
        "ociVersion": st["ociVersion"],
        "id": st["id"],
        "pid": st["pid"] if s != "stopped" else 0,
        "status": s,
        "bundle": st["bundle"],
        "rootfs": st["rootfs"],
        "created": st["created"],
    }
    if st.get("annotations"):
        out["annotations"] = st["annotations"]
    out["owner"] = st.get("owner", "")
    return out


def hook_state(st: dict, status_: str) -> dict:
    """The OCI runtime-spec state, as hooks receive it on stdin."""
    out = {
        "ociVersion": st["ociVersion"],
        "id": st["id"],
        "status": status_,
        "pid": st.get("pid", 0),
        "bundle": st["bundle"],
    }
    if st.get("annotations"):
        out["annotations"] = st["annotations"]
    return out


def list_ids(root: str) -> list[str]:
    try:
        names = os.listdir(root)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if os.path.isfile(os.path.join(root, n, STATE_FILE)))


def members(st: dict) -> list[int]:
    """Every process of the container: its cgroup's, or, for a rootless container that runs
    outside any cgroup, those in its PID namespace (or, sharing ours, the init's descendants),
    so that ps, kill --all and delete still find them."""
    paths = st.get("cgroup") or {}
    if paths:
        from pyrunc.linux import cgroups

        return cgroups.pids(paths)
    if not alive(st):
        return []
    init = st["pid"]
    nss = ((st.get("config") or {}).get("linux") or {}).get("namespaces") or []
    if any(ns.get("type") == "pid" and not ns.get("path") for ns in nss):
        try:
            want = os.readlink(f"/proc/{init}/ns/pid")
        except OSError:
            return [init]
        out = []
        for name in os.listdir("/proc"):
            if name.isdigit():
                try:
                    if os.readlink(f"/proc/{name}/ns/pid") == want:
                        out.append(int(name))
                except OSError:
                    pass  # gone, or not ours to look at: not in our container either
        return sorted(out)
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat", "rb") as f:
                    ppid = int(f.read().rsplit(b")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(name))
    out, todo = [], [init]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += children.get(pid, [])
    return sorted(out)
