"""The container's cgroup: created, joined, frozen and removed (cgroup v1 and the hybrid v2 tree).

Paths follow runc's fs driver: an absolute cgroupsPath is taken from each hierarchy's root, a
relative one (and the default, the container id) from the runtime's own cgroup. On a hybrid host
the container also joins the cgroup2 hierarchy mounted at /sys/fs/cgroup/unified.
Limits are written by cgroup_v1.py / cgroup_v2.py (apply_resources picks the host's); this
module creates, joins, freezes and removes.
"""

from __future__ import annotations

import errno
import os
import time

from pyrunc.errors import RuntimeErr
from pyrunc.linux.files import write_file

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

UNIFIED = "unified"


def _own(pid: int | str = "self") -> dict[str, str]:
    """A process's cgroup per controller (and name=...) key, from /proc/<pid>/cgroup (ours by
    default)."""
    out = {}
    with open(f"/proc/{pid}/cgroup", "rb") as f:
        for line in f.read().decode().splitlines():
            _hid, ctrls, path = line.split(":", 2)
            if not ctrls:
                out[UNIFIED] = path
            for c in ctrls.split(","):
                out[c] = path
    return out


def controller_path(paths: dict[str, str], ctrl: str) -> str | None:
    """The container's directory in the hierarchy that has controller ctrl (e.g. cpu in a
    co-mounted "cpu,cpuacct")."""
    return next((p for k, p in paths.items() if ctrl in k.split(",")), None)


def hierarchies() -> dict[str, tuple[str, str]]:
    """key -> (mountpoint, mount root); key is the comma-joined controllers, 'name=x' or
    'unified'."""
    out: dict[str, tuple[str, str]] = {}
    from pyrunc.linux import mountinfo  # create and exec only; state/kill/delete never parse it

    for m in mountinfo.mounts():
        mnt, root, fstype, sopts = m.mountpoint, m.root, m.fstype, m.super_options
        if fstype not in ("cgroup", "cgroup2"):
            continue
        if fstype == "cgroup2":
            out.setdefault(UNIFIED, (mnt, root))
            continue
        ctrls = [
            o
            for o in sopts.split(",")
            if o not in ("rw", "ro")
            and not o.startswith(
                (
                    "relatime",
                    "noatime",
                    "nosuid",
                    "nodev",
                    "noexec",
                    "clone_children",
                    "release_agent",
                    "xattr",
                    "nsdelegate",
                    "memory_",
                )
            )
        ]
        key = ",".join(ctrls)
        if key:
            out.setdefault(key, (mnt, root))
    return out


def is_v2_only() -> bool:
    return os.path.exists("/sys/fs/cgroup/cgroup.controllers")


def paths_for(cgroups_path: str | None, cid: str) -> dict[str, str]:
    """Absolute directory of the container's cgroup in every hierarchy."""
    rel = cgroups_path or cid
    if ":" in rel and not rel.startswith("/"):
        raise RuntimeErr(
            f"linux.cgroupsPath: {rel!r} looks like a systemd path (slice:prefix:name) but "
            "--systemd-cgroup was not given"
        )
    own = _own()
    out = {}
    for key, (mnt, root) in hierarchies().items():
        if rel.startswith("/"):
            inner = rel
        else:
            first = key.split(",")[0]
            inner = os.path.join(own.get(key, own.get(first, "/")), rel)
        out[key] = _in_mount(mnt, root, inner)
    return out


def paths_of(pid: int) -> dict[str, str]:
    """Absolute directory of pid's cgroup in every hierarchy ({} once it is gone): the
    container's cgroups when another runtime holds its state."""
    try:
        own = _own(pid)
    except OSError:
        return {}
    out = {}
    for key, (mnt, root) in hierarchies().items():
        inner = own.get(key, own.get(key.split(",")[0]))  # (co-mounted: "cpu,cpuacct")
        if inner is not None:
            out[key] = _in_mount(mnt, root, inner)
    return out


def _in_mount(mnt: str, root: str, inner: str) -> str:
    """Where the cgroup `inner` (a path from the hierarchy's root) is under a mount of it
    that may expose only part of the tree (its root)."""
    if root != "/" and (inner + "/").startswith(root + "/"):
        inner = inner[len(root) :]
    return os.path.normpath(mnt + "/" + inner.lstrip("/"))


def _copy_cpuset(path: str) -> None:
    """A new v1 cpuset cgroup starts with no cpus and mems; joining it would fail (ENOSPC)."""
    parent = os.path.dirname(path)
    for f in ("cpuset.cpus", "cpuset.mems"):
        with open(os.path.join(path, f), "rb") as fh:
            if fh.read().strip():
                continue
        if os.path.exists(os.path.join(parent, f)):
            with open(os.path.join(parent, f), "rb") as fh:
                cur = fh.read().strip()
            if not cur:
                _copy_cpuset(parent)
                with open(os.path.join(parent, f), "rb") as fh:
                    cur = fh.read().strip()
            write_file(os.path.join(path, f), cur.decode())


_DENIED = (errno.EPERM, errno.EACCES, errno.EROFS)


def create(paths: dict[str, str], rootless: bool = False, explicit: bool = False) -> list[str]:
    """mkdir -p every path; returns the directories this call created (to undo on failure).

    rootless (runc's rootless cgroup manager): a hierarchy we may not create or join is
    dropped from `paths`, so the container simply runs outside it, unless the config named
    the cgroup (`explicit`: then the caller wants it, and not getting it is an error). On a
    hybrid host the cgroup2 tree is for membership only and always optional."""
    made: list[str] = []
    for key, path in list(paths.items()):
        optional = rootless and (not explicit or (key == UNIFIED and not is_v2_only()))
        todo = []
        p = path
        while not os.path.isdir(p):
            todo.append(p)
            p = os.path.dirname(p)
        mine: list[str] = []
        try:
            for d in reversed(todo):
                try:
                    os.mkdir(d, 0o755)
                    mine.append(d)
                except FileExistsError:
                    pass
                if "cpuset" in key.split(","):
                    _copy_cpuset(d)
            if rootless and not os.access(os.path.join(path, "cgroup.procs"), os.W_OK):
                raise PermissionError(errno.EACCES, "cgroup.procs is not writable by us")
        except OSError as e:
            if optional and e.errno in _DENIED:
                del paths[key]
                _rmdirs(mine)
                continue
            _rmdirs(made + mine)  # nothing left behind
            raise RuntimeErr(  # (runc's words, which its tests look for)
                f"linux.cgroupsPath: unable to apply cgroup configuration: cannot create or "
                f"join cgroup {path}: {(e.strerror or '').lower()}"
            ) from None
        made += mine
    if UNIFIED in paths and is_v2_only():
        from pyrunc.linux import cgroup_v2

        cgroup_v2.enable_controllers(hierarchies()[UNIFIED][0], paths[UNIFIED])
    return made


def _rmdirs(dirs: list[str]) -> None:
    """Undo mkdirs (children last in the list), as far as they go."""
    for d in reversed(dirs):
        try:
            os.rmdir(d)
        except OSError:
            pass


class SelfJoin:
    """How a child we are about to fork puts itself into the container's cgroups.

    Moving another process in through a v1 `cgroup.procs` (or cgroup2's) takes the global
    threadgroup rwsem for writing, and that waits for an RCU grace period (5-45 ms here)
    whenever no task on the host migrated in the last ~15 ms; it holds cgroup_mutex meanwhile,
    stalling every cgroup mkdir on the host. A single thread writing `0` into a v1 `tasks` file
    moves only itself and skips that lock; a cgroup2 directory is entered at birth by clone3
    with CLONE_INTO_CGROUP. So the parent opens those files (`fds`) and the directory (`into`)
    before the fork, and the child's first act is `self_join`. What cannot go that way
    (`rest`: a file that does not open, cgroup2 where clone3 fails or the caller is threaded)
    is joined by the parent as before.
    """

    __slots__ = ("fds", "into", "into_path", "rest")

    def __init__(self) -> None:
        self.fds: list[tuple[str, int]] = []  # (cgroup dir, fd of its `tasks`)
        self.into = -1  # cgroup2 directory for clone3, or -1
        self.into_path = ""
        self.rest: dict[str, str] = {}

    def fork(self) -> int:
        """os.fork(), into the cgroup2 directory if there is one; on a clone3 failure it
        falls back to os.fork() and leaves that directory to the parent."""
        if self.into >= 0:
            from pyrunc.linux import sys as S

            try:
                return S.fork_into_cgroup(self.into)
            except OSError:
                os.close(self.into)
                self.into = -1
                self.rest[UNIFIED] = self.into_path
        return os.fork()

    def close(self) -> None:
        """The parent's copies, once the child has its own."""
        for _p, fd in self.fds:
            os.close(fd)
        self.fds = []
        if self.into >= 0:
            os.close(self.into)
            self.into = -1


def prepare_self_join(paths: dict[str, str]) -> SelfJoin:
    sj = SelfJoin()
    # the freezer last: a child that joins a frozen cgroup stops there (exec --ignore-paused)
    for key in sorted(paths, key=lambda k: k == "freezer"):
        path = paths[key]
        try:
            if key != UNIFIED:
                sj.fds.append((path, os.open(path + "/tasks", os.O_WRONLY | os.O_CLOEXEC)))
                continue
            if sj.into < 0 and len(os.listdir("/proc/self/task")) == 1:
                sj.into = os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
                sj.into_path = path
                continue
        except OSError:
            pass  # the parent's join reports it with the usual message
        sj.rest[key] = path
    return sj


def self_join(sj: SelfJoin) -> None:
    """In the forked child, before anything else: move this (single-threaded) process."""
    for path, fd in sj.fds:
        try:
            os.write(fd, b"0")
        except OSError as e:
            raise RuntimeErr(
                f"cgroup join failed: adding pid {os.getpid()} to cgroups: write {path}/tasks: "
                f"{(e.strerror or '').lower()}"
            ) from None
        os.close(fd)
    sj.fds = []
    if sj.into >= 0:
        os.close(sj.into)
        sj.into = -1


def join(paths: dict[str, str], pid: int) -> None:
    for path in paths.values():
        try:
            write_file(os.path.join(path, "cgroup.procs"), str(pid))
        except OSError as e:
            raise RuntimeErr(
                f"cgroup join failed: adding pid {pid} to cgroups: open {path}/cgroup.procs: "
                f"{(e.strerror or '').lower()}"
            ) from None


def apply_resources(
    paths: dict[str, str], res: dict, update: bool = False, rootless: bool = False
) -> None:
    """linux.resources through the host's driver: v1 files on a v1 or hybrid host (as runc,
    which keeps the hybrid unified tree for membership only), v2 files on a unified host.
    rootless: device rules are skipped (runc: a user cannot write them, and cannot make the
    nodes they guard either); a limit for a hierarchy the container could not join fails."""
    mem = res.get("memory") or {}
    # (update warns about its own flags, not the saved config's; no driver writes kernel*)
    if not update and (mem.get("kernel") or mem.get("kernelTCP")):
        from pyrunc import log

        log.warn("Kernel memory settings are ignored and will be removed")  # as runc 1.1
    if is_v2_only():
        from pyrunc.linux import cgroup_v2

        if UNIFIED not in paths:
            if any(v for k, v in res.items() if k != "devices"):
                raise RuntimeErr(
                    "linux.resources: cannot set limits: container could not join or create "
                    "cgroup (not writable without root)"
                )
            return
        cgroup_v2.apply(paths[UNIFIED], res, update, rootless)
    else:
        from pyrunc.linux import cgroup_v1

        cgroup_v1.apply(paths, res, update, rootless)


def frozen(paths: dict[str, str]) -> bool:
    path = paths.get("freezer")
    try:
        if path:
            with open(path + "/freezer.state", "rb") as f:
                return f.read().strip() != b"THAWED"
        path = paths.get(UNIFIED)
        if path:
            with open(path + "/cgroup.freeze", "rb") as f:
                return f.read().strip() == b"1"
    except OSError:
        pass
    return False


def pids(paths: dict[str, str]) -> list[int]:
    """Every process in the container's cgroup tree (the freezer/pids/any hierarchy)."""
    for key in ("freezer", "pids", "memory", UNIFIED, *paths):
        path = paths.get(key)
        if path and os.path.isdir(path):
            out: list[int] = []
            for d, _dirs, files in os.walk(path):
                if "cgroup.procs" in files:
                    try:
                        with open(os.path.join(d, "cgroup.procs"), "rb") as f:
                            out.extend(int(x) for x in f.read().split())
                    except OSError:
                        pass
            return out
    return []


def has_freezer(paths: dict[str, str]) -> bool:
    """A freezer that exists now: v1's freezer cgroup, else v2's cgroup.freeze."""
    path = paths.get("freezer")
    if path:
        return os.path.isdir(path)
    path = paths.get(UNIFIED)
    return bool(path) and os.path.exists(path + "/cgroup.freeze")


def freeze(paths: dict[str, str], frozen: bool, timeout: float = 10.0) -> None:
    if not has_freezer(paths):
        raise RuntimeErr("cannot pause: no freezer cgroup for this container")
    path = paths.get("freezer")
    if path:
        want = "FROZEN" if frozen else "THAWED"
        deadline = time.monotonic() + timeout
        while True:
            write_file(path + "/freezer.state", want)
            with open(path + "/freezer.state", "rb") as f:
                if f.read().strip().decode() == want:
                    return
            if time.monotonic() > deadline:
                raise RuntimeErr(f"timed out waiting for the freezer to reach {want}")
            time.sleep(0.001)
    from pyrunc.linux import cgroup_v2

    cgroup_v2.freeze(paths[UNIFIED], frozen, timeout)


def destroy(paths: Iterable[str], attempts: int = 6, settle: float = 5.0) -> None:
    """Remove the container's cgroups (children first). Tasks that are still dying keep a
    cgroup busy for a moment: retry the whole set with a doubling delay (~0.6 s, as runc),
    rather than per directory. A cgroup that is busy with no task left is being torn down
    by the kernel after its last task was reaped (seen on 6.18 under load): wait for that
    up to `settle` seconds more instead of leaving it behind."""
    pending = list(paths)
    delay = 0.01
    deadline = 0.0
    attempt = 0
    while True:
        attempt += 1
        pending = _rmdir_trees(pending)
        if not pending:
            return
        if attempt >= attempts:
            if any(_has_tasks(p) for p in pending):
                break
            if not deadline:
                deadline = time.monotonic() + settle
            elif time.monotonic() >= deadline:
                break
        time.sleep(delay)
        delay = min(delay * 2, 0.16)
    raise RuntimeErr("failed to remove cgroup paths: " + ", ".join(pending))


def _rmdir_trees(paths: list[str]) -> list[str]:
    """rmdir each tree bottom-up; the ones still busy."""
    busy = []
    for path in paths:
        try:
            os.rmdir(path)  # the common case: no sub-cgroups, no tasks left
            continue
        except FileNotFoundError:
            continue
        except OSError:
            pass
        for d in reversed([d for d, _s, _f in os.walk(path)]):
            try:
                os.rmdir(d)
            except FileNotFoundError:
                pass
            except OSError as e:
                if e.errno not in (errno.EBUSY, errno.ENOTEMPTY):
                    raise RuntimeErr(f"failed to remove cgroup {d}: {e.strerror}") from None
                busy.append(path)
                break
    return busy


def _has_tasks(path: str) -> bool:
    for d, _s, _f in os.walk(path):
        try:
            with open(os.path.join(d, "cgroup.procs"), "rb") as f:
                if f.read().strip():
                    return True
        except OSError:
            pass
    return False
