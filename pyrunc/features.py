"""`features`: what this build really supports (runtime-spec features document, runc's shape).

Only what is implemented is claimed: seccomp when libseccomp.so.2 can be opened; AppArmor and
SELinux only where the host runs them; no systemd cgroup driver.
"""

from __future__ import annotations

from pyrunc import OCI_VERSION, __version__
from pyrunc.linux import capabilities, lsm, mempolicy, mounts


def features() -> dict:
    opts = sorted(
        set(mounts.FLAGS) | set(mounts.PROPAGATION) | set(mounts.RECURSIVE) | set(mounts.EXTENSIONS)
    )
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
            "cgroup": {"v1": True, "v2": True, "systemd": False, "systemdUser": False},
            "seccomp": _seccomp(),
            "apparmor": {"enabled": lsm.apparmor_enabled()},
            "selinux": {"enabled": lsm.selinux_enabled()},
            "netDevices": {"enabled": True},  # linux/netdev.py, as runc 1.3
            "mountExtensions": {"idmap": {"enabled": True}},  # linux/idmapped.py
            # linux/mempolicy.py; runc 1.3 lists the names it knows, sorted, and says nothing
            # of process.scheduler, ioPriority or execCPUAffinity (features.md has no field
            # for them), nor do we
            "memoryPolicy": {"modes": sorted(mempolicy.MODES), "flags": sorted(mempolicy.FLAGS)},
        },
        "annotations": {"org.opencontainers.runc.commit": f"pyrunc-{__version__}"},
    }


def _seccomp() -> dict:
    from pyrunc.errors import RuntimeErr
    from pyrunc.linux import libseccomp, seccomp

    try:
        seccomp.lib()
    except RuntimeErr:
        return {"enabled": False}
    acts = ["ALLOW", "ERRNO", "KILL", "KILL_PROCESS", "KILL_THREAD", "LOG", "NOTIFY", "TRACE"]
    acts.append("TRAP")
    arches = sorted(a for a in libseccomp.ARCH if a != "NATIVE")
    return {
        "enabled": True,
        "actions": ["SCMP_ACT_" + a for a in acts],
        "operators": sorted(seccomp._OPS),
        "archs": ["SCMP_ARCH_" + a for a in arches],
    }
