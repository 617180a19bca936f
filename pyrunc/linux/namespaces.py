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


def open_for_join(join: dict[str, str]) -> list[tuple[str, int]]:
    fds = []
    try:
        for t in JOIN_ORDER:
            if t in join:
                try:
                    fds.append((t, os.open(join[t], os.O_RDONLY | os.O_CLOEXEC)))
                except OSError as e:
                    raise RuntimeErr(
                        f"linux.namespaces: {t} namespace path {join[t]}: {e.strerror}"
                    ) from None
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
