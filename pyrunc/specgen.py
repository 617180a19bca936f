"""The config.json that `runc spec` writes, reproduced byte for byte.

runc's bats suite (and many scripts) build every test bundle from `RUNTIME spec` and then edit it
with jq, so `pyrunc spec` must emit exactly what runc 1.1.5 emits: same values, same key order
(Go marshals struct fields in declaration order), tabs for indentation and no trailing newline.
The template is transcribed from runc 1.1.5's output rather than built from the schema, because
the point is to match runc, not to be a minimal valid config.
"""

from __future__ import annotations

import os

from pyrunc.fastjson import dumps_indent

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# The spec version runc 1.1.5 vendors; it writes it verbatim, "-dev" suffix included.
OCI_VERSION = "1.0.2-dev"

_CAPS = ("CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE")
_MASKED_PATHS = (
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/sys/firmware",
    "/proc/scsi",
)
_READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")


def default_spec(
    rootless: bool = False, *, uid: int | None = None, gid: int | None = None
) -> dict[str, Any]:
    """A fresh dict (callers edit it) equal to runc 1.1.5's `runc spec [--rootless]` output.

    For --rootless runc maps container root to the caller's effective uid/gid; `uid`/`gid`
    override those so tests can reproduce what another user would get.
    """
    spec: dict[str, Any] = {
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": True,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm",
            ],
            "cwd": "/",
            "capabilities": {
                "bounding": list(_CAPS),
                "effective": list(_CAPS),
                "permitted": list(_CAPS),
                "ambient": list(_CAPS),
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "runc",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {
                "destination": "/dev",
                "type": "tmpfs",
                "source": "tmpfs",
                "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
            },
            {
                "destination": "/dev/pts",
                "type": "devpts",
                "source": "devpts",
                "options": [
                    "nosuid",
                    "noexec",
                    "newinstance",
                    "ptmxmode=0666",
                    "mode=0620",
                    "gid=5",
                ],
            },
            {
                "destination": "/dev/shm",
                "type": "tmpfs",
                "source": "shm",
                "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
            },
            {
                "destination": "/dev/mqueue",
                "type": "mqueue",
                "source": "mqueue",
                "options": ["nosuid", "noexec", "nodev"],
            },
            {
                "destination": "/sys",
                "type": "sysfs",
                "source": "sysfs",
                "options": ["nosuid", "noexec", "nodev", "ro"],
            },
            {
                "destination": "/sys/fs/cgroup",
                "type": "cgroup",
                "source": "cgroup",
                "options": ["nosuid", "noexec", "nodev", "relatime", "ro"],
            },
        ],
        "linux": {
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
            "namespaces": [
                {"type": "pid"},
                {"type": "network"},
                {"type": "ipc"},
                {"type": "uts"},
                {"type": "mount"},
            ],
            "maskedPaths": list(_MASKED_PATHS),
            "readonlyPaths": list(_READONLY_PATHS),
        },
    }
    if rootless:
        uid = os.geteuid() if uid is None else uid
        gid = os.getegid() if gid is None else gid
        _to_rootless(spec, uid, gid)
    return spec


def _to_rootless(spec: dict[str, Any], uid: int, gid: int) -> None:
    """What runc's specconv.ToRootless does, in the same order, so key order comes out the same.

    The result is rebuilt rather than patched because the Go structs fix the key order:
    uidMappings/gidMappings come first in `linux`, and `resources` is dropped.
    """
    linux = spec["linux"]
    namespaces = [ns for ns in linux["namespaces"] if ns["type"] not in ("network", "user")]
    namespaces.append({"type": "user"})
    mounts: list[dict[str, Any]] = []
    for m in spec["mounts"]:
        if os.path.normpath(m["destination"]) == "/sys":
            mounts.append(
                {
                    "destination": "/sys",
                    "type": "none",
                    "source": "/sys",
                    "options": ["rbind", "nosuid", "noexec", "nodev", "ro"],
                }
            )
            continue
        # An unprivileged user cannot pick the owner of a mount: drop uid=/gid= options.
        # Go drops an emptied option list entirely (omitempty), so do we.
        opts = [o for o in m.pop("options", ()) if not o.startswith(("gid=", "uid="))]
        if opts:
            m["options"] = opts
        mounts.append(m)
    spec["mounts"] = mounts
    spec["linux"] = {
        "uidMappings": [{"containerID": 0, "hostID": uid, "size": 1}],
        "gidMappings": [{"containerID": 0, "hostID": gid, "size": 1}],
        "namespaces": namespaces,
        "maskedPaths": linux["maskedPaths"],
        "readonlyPaths": linux["readonlyPaths"],
    }


def spec_json(rootless: bool = False, *, uid: int | None = None, gid: int | None = None) -> str:
    """The file text runc writes: Go's json.MarshalIndent(spec, "", "\\t"), no final newline."""
    return dumps_indent(default_spec(rootless, uid=uid, gid=gid), "\t")
