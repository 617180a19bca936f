"""Idmapped bind mounts (runtime-spec 1.2: mounts[].uidMappings/gidMappings, the `idmap` and
`ridmap` options), as runc 1.2+ makes them.

A mount's mappings say that an id C on the filesystem shows as H (`containerID` C,
`hostID` H): exactly a user namespace whose uid_map reads "C H size". So the runtime makes
such a namespace (a forked child unshares one, the parent writes its maps, opens
/proc/<child>/ns/user and lets the child go), takes a detached copy of the bind source
(open_tree, as for any bind source in a user-namespaced container) and gives it
MOUNT_ATTR_IDMAP through that namespace (mount_setattr); the init then moves it into place.
Inside a container with a user namespace of its own, the host ids are mapped once more by it
(a file of on-disk uid 0 under mapping 0->100000 shows as 0 to a container mapped
0->100000), and without one they show as the host ids. `idmap` or `ridmap` without mappings
take the container's own. `ridmap` maps the whole tree (AT_RECURSIVE), `idmap` its top.
"""

from __future__ import annotations

import os

from pyrunc.errors import ConfigError, RuntimeErr
from pyrunc.linux import idmap
from pyrunc.linux import sys as S

OPTIONS = ("idmap", "ridmap")


def wanted(m: dict) -> bool:
    return bool(m.get("uidMappings") or m.get("gidMappings")) or any(
        o in OPTIONS for o in m.get("options") or [])


def check(mounts: list[dict], in_userns: bool) -> None:
    """Before anything is made: each idmapped mount is a bind mount with both maps (its own,
    or the container's when it has a user namespace)."""
    from pyrunc.linux.mounts import is_bind

    for i, m in enumerate(mounts):
        if not wanted(m):
            continue
        where = f"config.json: mounts[{i}]"
        if not is_bind(m):
            raise ConfigError(f"{where}: idmapped mounts must be bind mounts (type "
                              f"{m.get('type')!r})")
        has_u, has_g = bool(m.get("uidMappings")), bool(m.get("gidMappings"))
        if has_u != has_g:
            raise ConfigError(f"{where}: uidMappings and gidMappings must be given together")
        if not has_u and not in_userns:
            raise ConfigError(f"{where}: the idmap option without uidMappings/gidMappings takes "
                              "the container's user namespace mappings, but it has none")
        for key in ("uidMappings", "gidMappings"):
            for j, e in enumerate(m.get(key) or []):
                if int(e.get("size", 0)) <= 0:
                    raise ConfigError(f"{where}.{key}[{j}].size: must be more than 0")


def _userns(uid_maps: list[dict], gid_maps: list[dict]) -> int:
    """An fd of a new user namespace with these maps (its process already gone)."""
    r1, w1 = os.pipe()
    r2, w2 = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r1)
        os.close(w2)
        err = 0
        try:
            S.unshare(S.CLONE_NEWUSER)
        except OSError as e:
            err = e.errno or 1
        os.write(w1, bytes([min(err, 255)]))
        os.read(r2, 1)  # until the parent has opened our namespace
        os._exit(0)
    os.close(w1)
    os.close(r2)
    try:
        got = os.read(r1, 1)
        if got != b"\x00":
            code = got[0] if got else 0
            raise RuntimeErr(f"idmapped mount: unshare(CLONE_NEWUSER): "
                             f"{os.strerror(code) if code else 'failed'}")
        idmap.write_maps(pid, uid_maps, gid_maps)
        return os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    finally:
        os.close(r1)
        os.close(w2)  # (the child reads EOF and exits)
        os.waitpid(pid, 0)


def open_source(m: dict, uid_maps: list[dict], gid_maps: list[dict],
                cache: dict[str, int]) -> int:
    """The bind source of m as a detached, idmapped mount (an fd for move_mount). cache holds
    one namespace per distinct pair of maps (runc does the same)."""
    from pyrunc.linux.mounts import open_bind_source

    um = m.get("uidMappings") or uid_maps
    gm = m.get("gidMappings") or gid_maps
    key = repr((um, gm))
    if key not in cache:
        cache[key] = _userns(um, gm)
    fd = open_bind_source(m)
    recursive = "ridmap" in (m.get("options") or [])
    try:
        S.mount_setattr_idmap(fd, cache[key], recursive)
    except OSError as e:
        os.close(fd)
        why = e.strerror
        if e.errno == 22:  # EINVAL
            why += " (the source's filesystem may not support idmapped mounts)"
        raise RuntimeErr(f"mount {m.get('source')}:{m.get('destination')}: idmapped mount: "
                         f"{why}") from None
    return fd
