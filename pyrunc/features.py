"""`features`: what this build really supports (runtime-spec features document, runc's shape).

Only what is implemented is claimed: seccomp, AppArmor and SELinux arrive with the security issue,
the systemd cgroup driver with the cgroups issue.
"""

from __future__ import annotations

from pyrunc import OCI_VERSION, __version__
from pyrunc.linux import capabilities, mounts


def features() -> dict:
    opts = sorted(set(mounts.FLAGS) | set(mounts.PROPAGATION) | set(mounts.RECURSIVE))
    return {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": OCI_VERSION,
        "hooks": [
            "prestart",
            "createRuntime",
            "createContainer",
            "startContainer",
            "poststart",
            "poststop",
        ],
        "mountOptions": opts,
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "capabilities": ["CAP_" + n for n in capabilities.NAMES],
            "cgroup": {"v1": True, "v2": False, "systemd": False, "systemdUser": False},
            "seccomp": {"enabled": False},
            "apparmor": {"enabled": False},
            "selinux": {"enabled": False},
        },
        "annotations": {"org.opencontainers.runc.commit": f"pyrunc-{__version__}"},
    }
