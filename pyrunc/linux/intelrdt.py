"""linux.intelRdt: resctrl (Intel RDT / AMD QoS) cache and memory-bandwidth allocation.

The spec requires an error when no resctrl filesystem is mounted, as runc gives. pyrunc does not
write resctrl groups yet, so a host that has one also gets a clear error rather than a
container that silently runs without its allocation.
"""

from __future__ import annotations

from pyrunc.errors import ConfigError


def resctrl_mounted() -> bool:
    with open("/proc/self/mountinfo", "rb") as f:
        return any(b" - resctrl " in line for line in f)


def check() -> None:
    """For a config that has linux.intelRdt."""
    if not resctrl_mounted():
        raise ConfigError(
            "linux.intelRdt: intelRdt is specified in config, but Intel RDT is not supported "
            "or enabled (no resctrl filesystem is mounted)"
        )
    raise ConfigError("linux.intelRdt: resctrl allocation is not implemented by pyrunc yet")
