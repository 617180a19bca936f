"""AppArmor profiles and SELinux labels: checked against the host before the fork, applied by
the container's process for its execve (/proc/self/attr/.../exec), as runc does.

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


def _write_attr(kind: str, name: str, value: str) -> None:
    path = f"/proc/self/attr/{kind}/{name}"
    if not os.path.exists(path):
        path = f"/proc/self/attr/{name}"  # the old, shared attribute files
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, value.encode())
        finally:
            os.close(fd)
    except OSError as e:
        raise RuntimeErr(f"{kind} failed to apply {value!r}: {e.strerror}") from None


def apply(process: dict) -> None:
    """In the container's process, right before execve: the kernel applies both on exec."""
    if process.get("apparmorProfile"):
        _write_attr("apparmor", "exec", "exec " + process["apparmorProfile"])
    if process.get("selinuxLabel"):
        _write_attr("selinux", "exec", process["selinuxLabel"])
