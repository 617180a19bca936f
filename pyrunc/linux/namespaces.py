"""Namespaces: the config's types, their clone flags and /proc/<pid>/ns names."""

from __future__ import annotations

import os

from pyrunc.errors import ConfigError, RuntimeErr
from pyrunc.linux import sys as S

FLAGS = {
    "pid": S.CLONE_NEWPID,
    "network": S.CLONE_NEWNET,
    "mount": S.CLONE_NEWNS,
    "ipc": S.CLONE_NEWIPC,
    "uts": S.CLONE_NEWUTS,
    "user": S.CLONE_NEWUSER,
    "cgroup": S.CLONE_NEWCGROUP,
    "time": S.CLONE_NEWTIME,
}
PROC_NAMES = {
    "pid": "pid",
    "network": "net",
    "mount": "mnt",
    "ipc": "ipc",
    "uts": "uts",
    "user": "user",
    "cgroup": "cgroup",
    "time": "time",
}
# setns order: the user namespace first (it grants the rights to join the rest), mount last
# (paths stop resolving on the host once it is joined).
JOIN_ORDER = ("user", "ipc", "uts", "network", "pid", "cgroup", "time", "mount")


def parse(nss: list[dict]) -> tuple[int, dict[str, str]]:
    """-> (flags to unshare, {type: path to join})."""
    new = 0
    join: dict[str, str] = {}
    seen = set()
    for i, ns in enumerate(nss):
        t = ns.get("type")
        if t not in FLAGS:
            raise ConfigError(f"config.json: linux.namespaces[{i}].type: unknown namespace {t!r}")
        if t in seen:
            raise ConfigError(f"config.json: linux.namespaces[{i}]: duplicate namespace {t!r}")
        seen.add(t)
        if ns.get("path"):
            join[t] = ns["path"]
        else:
            new |= FLAGS[t]
    return new, join


def _open_ns(t: str, path: str) -> int:
    """Open a namespace file named by the config without trusting the path: O_PATH first (a
    FIFO or device there must not block or react to an open by root), check it is an nsfs
    file, and only then open it for setns."""
    where = f"linux.namespaces: {t} namespace path {path}"
    try:
        pfd = os.open(path, S.O_PATH | os.O_CLOEXEC)
    except OSError as e:
        raise RuntimeErr(f"{where}: {e.strerror}") from None
    try:
        if os.fstat(pfd).st_dev != os.stat("/proc/self/ns/mnt").st_dev:
            raise RuntimeErr(f"{where}: not a namespace file (/proc/<pid>/ns/* or a bind of one)")
        return os.open(f"/proc/self/fd/{pfd}", os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise RuntimeErr(f"{where}: {e.strerror}") from None
    finally:
        os.close(pfd)


def open_for_join(join: dict[str, str]) -> list[tuple[str, int]]:
    fds = []
    try:
        for t in JOIN_ORDER:
            if t in join:
                fds.append((t, _open_ns(t, join[t])))
    except BaseException:
        for _t, fd in fds:
            os.close(fd)
        raise
    return fds


def join_fds(fds: list[tuple[str, int]]) -> None:
    for t, fd in fds:
        try:
            S.setns(fd, FLAGS[t])
        except OSError as e:
            raise RuntimeErr(f"failed to join {t} namespace: {e.strerror}") from None
        os.close(fd)
