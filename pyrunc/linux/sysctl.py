"""linux.sysctl: only keys that belong to a namespace the container has of its own.

Writing /proc/sys from inside a container that shares, say, the host's network namespace would
change the host; runc refuses such configs, and so do we (checked before anything is created).
"""

from __future__ import annotations

import os

from pyrunc.errors import ConfigError, RuntimeErr
from pyrunc.linux.files import write_file

_IPC = {
    "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall",
    "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced",
}


def _same_ns(path: str, own: str) -> bool:
    try:
        a, b = os.stat(path), os.stat(own)
    except OSError as e:
        raise ConfigError(f"linux.namespaces: invalid netns path {path}: {e.strerror}") from None
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def check(sysctls: dict[str, str], ns_types: set[str], join: dict[str, str]) -> None:
    for key in sysctls:
        s = key.replace("/", ".")
        where = f"config.json: linux.sysctl: {s!r}"
        if s in _IPC or s.startswith("fs.mqueue."):
            if "ipc" not in ns_types:
                raise ConfigError(f"{where} is not allowed in the host's ipc namespace")
            continue
        if s.startswith("net."):
            if "network" not in ns_types or (
                "network" in join and _same_ns(join["network"], "/proc/self/ns/net")
            ):
                raise ConfigError(f"{where} is not allowed in the host's network namespace")
            continue
        if "uts" in ns_types and s == "kernel.domainname":
            continue
        if "uts" in ns_types and s == "kernel.hostname":
            raise ConfigError(f"{where} conflicts with the OCI \"hostname\" field")
        raise ConfigError(f"{where} is not in a separate kernel namespace")


def apply(sysctls: dict[str, str]) -> None:
    for key, value in sysctls.items():
        path = "/proc/sys/" + key.replace(".", "/")
        try:
            write_file(path, value)
        except OSError as e:
            raise RuntimeErr(f"linux.sysctl: {key}={value}: {e.strerror}") from None
