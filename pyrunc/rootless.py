"""pyrunc without root (runc's "rootless"): where state goes, what a config must have, and
whether cgroup permission errors are ignored.

runc keeps two separate notions and so do we. A *rootless EUID* (we are not uid 0) changes
what the runtime can do at all: the container needs a user namespace whose maps we may write
(our own ids, or newuidmap/newgidmap for /etc/subuid and /etc/subgid ranges), device nodes are
bind mounts, and no supplementary groups can be set. *Rootless cgroups* (`--rootless`, auto by
default: on when we are not root or run inside a user namespace) only decides whether a cgroup
we may not create or join is skipped instead of failing the container.
"""

from __future__ import annotations

import os

from pyrunc.errors import ConfigError, UsageError

DEFAULT_ROOT = "/run/pyrunc"


def _honor_xdg() -> bool:
    """runc's shouldHonorXDGRuntimeDir: root in the initial namespace keeps /run/pyrunc even
    when a login set XDG_RUNTIME_DIR (/run/user/0), as before rootless support existed."""
    if not os.environ.get("XDG_RUNTIME_DIR"):
        return False
    if os.geteuid() != 0:
        return True
    from pyrunc.linux.idmap import running_in_userns

    if not running_in_userns():
        return False
    return os.environ.get("USER") != "root"


def default_root() -> str:
    """--root's default: $XDG_RUNTIME_DIR/pyrunc for a user, since /run/pyrunc is root's."""
    if _honor_xdg():
        return os.environ["XDG_RUNTIME_DIR"] + "/pyrunc"
    return DEFAULT_ROOT


def prepare_root(root: str) -> None:
    """A state directory under XDG_RUNTIME_DIR gets the sticky bit, which the XDG base
    directory spec says keeps files from being pruned (runc does the same)."""
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if not xdg or root != xdg + "/pyrunc" or not _honor_xdg():
        return
    try:
        os.makedirs(root, 0o700, exist_ok=True)
        os.chmod(root, 0o1700)
    except OSError as e:
        raise UsageError(
            f"XDG_RUNTIME_DIR: cannot make {root} (the path in $XDG_RUNTIME_DIR must be "
            f"writable by the user): {e.strerror}"
        ) from None


def cgroups(flag: str) -> bool:
    """--rootless: true, false, or auto (runc's shouldUseRootlessCgroupManager, cgroupfs)."""
    v = flag.lower()
    if v in ("true", "1", "t"):
        return True
    if v in ("false", "0", "f"):
        return False
    if v != "auto":
        raise UsageError(f"--rootless: invalid value {flag!r}: want true, false or auto")
    if os.geteuid() != 0:
        return True
    from pyrunc.linux.idmap import running_in_userns

    return running_in_userns()


def check(config: dict) -> None:
    """What a config must have for a runtime without root (runc's rootlessEUIDCheck, plus the
    checks runc makes only in the init): before anything is created, so a refusal leaves
    nothing behind."""
    lx = config.get("linux") or {}
    nss = {ns.get("type") for ns in lx.get("namespaces") or []}
    if "user" not in nss:
        raise ConfigError(
            "config.json: linux.namespaces: rootless container requires user namespaces "
            "(pyrunc runs without root: `pyrunc spec --rootless` writes a config that has one)"
        )
    uid_maps = lx.get("uidMappings") or []
    gid_maps = lx.get("gidMappings") or []
    joined = any(ns.get("type") == "user" and ns.get("path") for ns in lx["namespaces"])
    if not joined:
        if not uid_maps:
            raise ConfigError(
                "config.json: linux.uidMappings: rootless containers requires at least one "
                "UID mapping"
            )
        if not gid_maps:
            raise ConfigError(
                "config.json: linux.gidMappings: rootless containers requires at least one "
                "GID mapping"
            )
    from pyrunc.linux.idmap import host_id

    for i, m in enumerate(config.get("mounts") or []):
        for opt in m.get("options") or []:
            key, eq, val = opt.partition("=")
            if not eq or key not in ("uid", "gid") or not val.isdigit():
                continue
            if not joined and host_id(uid_maps if key == "uid" else gid_maps, int(val)) < 0:
                raise ConfigError(
                    f"config.json: mounts[{i}].options: cannot specify {opt} mount option "
                    f"for rootless container: {key} {val} is not mapped in the user namespace"
                )
        if m.get("uidMappings") or m.get("gidMappings") or {"idmap", "ridmap"} & set(
            m.get("options") or []
        ):
            raise ConfigError(
                f"config.json: mounts[{i}]: idmapped mounts need root (only the host's root "
                "may idmap a host filesystem); a rootless container cannot have them"
            )
    check_user(config.get("process") or {})


def check_user(proc: dict) -> None:
    """runc's setupUser refusal, made before the fork (exec passes its process here too)."""
    if (proc.get("user") or {}).get("additionalGids"):
        raise ConfigError(
            "config.json: process.user.additionalGids: cannot set any additional groups in a "
            "rootless container"
        )
