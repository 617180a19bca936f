"""AppArmor profiles and SELinux labels: checked against the host before the fork, applied by
the container's process for its execve (/proc/thread-self/attr/.../exec), as runc does, but
through fds opened before the container's mounts or namespaces can get in the way.

A config that asks for an LSM the host does not run fails `create` with one line: silently
running the container unconfined would be the worse surprise.
"""

from __future__ import annotations

import os

from pyrunc.errors import ConfigError, RuntimeErr


def apparmor_enabled() -> bool:
    if not os.path.exists("/sys/kernel/security/apparmor"):
        return False
    try:
        with open("/sys/module/apparmor/parameters/enabled", "rb") as f:
            return f.read(1) == b"Y"
    except OSError:
        return False


def selinux_enabled() -> bool:
    return os.path.exists("/sys/fs/selinux/enforce")


def check(process: dict, linux: dict) -> None:
    profile = process.get("apparmorProfile")
    if profile and not apparmor_enabled():
        raise ConfigError(
            f"process.apparmorProfile: {profile!r} asked for, but AppArmor is not enabled on "
            "this host"
        )
    if process.get("selinuxLabel") and not selinux_enabled():
        raise ConfigError(
            "process.selinuxLabel: selinux label is specified in config, but selinux is "
            "disabled or not supported"
        )
    # linux.mountLabel without SELinux is ignored, as runc's label package ignores it


def mount_data(data: str, mount_label: str | None) -> str:
    """Add context="label" to a mount's data, for filesystems mounted (not bound) in the
    container, when SELinux is on (runc's label.FormatMountLabel)."""
    if not mount_label or not selinux_enabled():
        return data
    ctx = f'context="{mount_label}"'
    return f"{data},{ctx}" if data else ctx


def open_attrs(process: dict) -> list[tuple[int, str, str]]:
    """Open the exec attributes the process asks for through the runtime's own /proc, before
    the container's mounts exist (create) or before joining its namespaces (exec): a mount of
    the config cannot redirect the write then (CVE-2025-52881 class). The fds are written by
    write_attrs, by the same task with the same credentials (the kernel wants the opener)."""
    wanted = []
    if process.get("apparmorProfile"):
        wanted.append(("apparmor", "exec " + process["apparmorProfile"]))
    if process.get("selinuxLabel"):
        wanted.append(("selinux", process["selinuxLabel"]))
    opened: list[tuple[int, str, str]] = []  # (fd, lsm, value)
    try:
        proc_dev = os.stat("/proc/thread-self/attr").st_dev
        for kind, value in wanted:
            path = f"/proc/thread-self/attr/{kind}/exec"
            if not os.path.exists(path):
                path = "/proc/thread-self/attr/exec"  # the old, shared attribute file
            fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
            opened.append((fd, kind, value))
            if os.fstat(fd).st_dev != proc_dev:
                raise OSError(18, "not on procfs")
    except OSError as e:
        close_attrs(opened)
        raise RuntimeErr(f"LSM exec attribute: {e.strerror}") from None
    return opened


def close_attrs(opened: list[tuple[int, str, str]]) -> None:
    for fd, _kind, _value in opened:
        os.close(fd)


def write_attrs(opened: list[tuple[int, str, str]]) -> None:
    """Right before the process's setup ends: the kernel applies both at its execve."""
    try:
        for fd, kind, value in opened:
            try:
                os.write(fd, value.encode())
            except OSError as e:
                raise RuntimeErr(f"{kind} failed to apply {value!r}: {e.strerror}") from None
    finally:
        close_attrs(opened)


def apply(process: dict) -> None:
    write_attrs(open_attrs(process))
