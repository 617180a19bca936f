"""`features`: what this build really supports (runtime-spec features document, runc's shape).

The keys come in the order runc prints them (the runtime-spec's Go struct order). Only what is
implemented is claimed: seccomp when libseccomp.so.2 can be opened, with the filter flags this
kernel and libseccomp take; AppArmor and SELinux only where the host runs them; no systemd
cgroup driver. Intel RDT, as runc says it, is about this build, not the host (features-linux.md:
"irrelevant to the availability of Intel RDT on the host"): a host without resctrl refuses the
config at create.
"""

from __future__ import annotations

from pyrunc import OCI_VERSION, __version__
from pyrunc.linux import capabilities, lsm, mempolicy, mounts

# runc's list (runc 1.2 on): config.json annotations that can change what the runtime does, so
# that an engine passing annotations on from untrusted users can filter them. pyrunc acts on none
# of them today (no systemd driver, no checkpoint, the bundle comes from --bundle), but says what
# runc says: an engine that filters these for runc filters them for pyrunc too. A value that ends
# with "." is a prefix.
POTENTIALLY_UNSAFE_CONFIG_ANNOTATIONS = ["bundle", "org.systemd.property.", "org.criu.config"]


def features() -> dict:
    opts = sorted(
        set(mounts.FLAGS) | set(mounts.PROPAGATION) | set(mounts.RECURSIVE) | set(mounts.EXTENSIONS)
    )
    linux = {
        "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
        "capabilities": ["CAP_" + n for n in capabilities.NAMES],
        # rdma: linux.resources.rdma, on v1 and v2 (cgroup_v1.py, cgroup_v2.py)
        "cgroup": {"v1": True, "v2": True, "systemd": False, "systemdUser": False, "rdma": True},
        "seccomp": _seccomp(),
        "apparmor": {"enabled": lsm.apparmor_enabled()},
        "selinux": {"enabled": lsm.selinux_enabled()},
        # linux/intelrdt.py. runc says only "enabled" (1.3 and 1.4 alike); runtime-spec 1.3's
        # features also have "schemata" and "monitoring", which pyrunc implements
        "intelRdt": {"enabled": True, "schemata": True, "monitoring": True},
        # linux/mempolicy.py; runc (1.4, runtime-spec 1.3) lists the names it knows, sorted,
        # and says nothing of process.scheduler, ioPriority or execCPUAffinity (features.md
        # has no field for them), nor do we
        "memoryPolicy": {"modes": sorted(mempolicy.MODES), "flags": sorted(mempolicy.FLAGS)},
        "mountExtensions": {"idmap": {"enabled": True}},  # linux/idmapped.py
        "netDevices": {"enabled": True},  # linux/netdev.py, as runc 1.4
    }
    out = {
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
        "linux": linux,
        "annotations": {"org.opencontainers.runc.commit": f"pyrunc-{__version__}"},
        "potentiallyUnsafeConfigAnnotations": list(POTENTIALLY_UNSAFE_CONFIG_ANNOTATIONS),
    }
    if linux["seccomp"]["enabled"]:
        from pyrunc.linux import libseccomp

        version = ".".join(str(n) for n in libseccomp.version())
        out["annotations"]["io.github.seccomp.libseccomp.version"] = version
    return out


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
        "knownFlags": list(seccomp.KNOWN_FLAGS),
        "supportedFlags": seccomp.supported_flags(),
    }
