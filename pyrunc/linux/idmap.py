"""User-namespace id maps, written by the parent into /proc/<child>/{uid,gid}_map.

Root writes any map itself. Without root the kernel lets us write one line only, our own id,
and for gids only once setgroups(2) is denied in the namespace; anything more (the
/etc/subuid and /etc/subgid ranges) goes through the setuid helpers newuidmap and newgidmap,
which check those files, as runc and podman do.
"""

from __future__ import annotations

import os

from pyrunc.errors import RuntimeErr
from pyrunc.linux.files import write_file


def _fmt(maps: list[dict]) -> bytes:
    return "".join(f"{m['containerID']} {m['hostID']} {m['size']}\n" for m in maps).encode()


def write_maps(pid: int, uid_maps: list[dict], gid_maps: list[dict]) -> None:
    if os.geteuid() != 0:
        _write_unprivileged(pid, uid_maps, gid_maps)
        return
    for name, maps in (("uid_map", uid_maps), ("gid_map", gid_maps)):
        if maps:
            _write(f"/proc/{pid}/{name}", _fmt(maps))


def own_id_only(maps: list[dict], own: int) -> bool:
    """A map the kernel lets an unprivileged process write itself: one id, its own."""
    return len(maps) == 1 and maps[0]["hostID"] == own and maps[0]["size"] == 1


def _write_unprivileged(pid: int, uid_maps: list[dict], gid_maps: list[dict]) -> None:
    if own_id_only(uid_maps, os.geteuid()):
        _write(f"/proc/{pid}/uid_map", _fmt(uid_maps))
    else:
        _helper("newuidmap", "linux.uidMappings", pid, uid_maps)
    if own_id_only(gid_maps, os.getegid()):
        # the kernel's price for an unprivileged gid map: no setgroups(2) in the namespace,
        # so a process there cannot drop a group that a negative ACL keys on
        _write(f"/proc/{pid}/setgroups", b"deny")
        _write(f"/proc/{pid}/gid_map", _fmt(gid_maps))
    else:
        _helper("newgidmap", "linux.gidMappings", pid, gid_maps)


def _helper(tool: str, field: str, pid: int, maps: list[dict]) -> None:
    import shutil
    import subprocess

    path = shutil.which(tool)
    if path is None:
        raise RuntimeErr(
            f"{field}: mapping more than our own id without root needs {tool} (Debian's "
            f"uidmap package), which is not on PATH"
        )
    argv = [path, str(pid)]
    for m in maps:
        argv += [str(m["containerID"]), str(m["hostID"]), str(m["size"])]
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, check=False)
    if p.returncode != 0:
        why = p.stderr.decode(errors="replace").strip().splitlines()
        raise RuntimeErr(
            f"{field}: {tool} refused the map ({why[-1] if why else f'exit {p.returncode}'}): "
            f"are the host ids in /etc/sub{tool[3:6]}?"
        )


def _write(path: str, data: bytes) -> None:
    try:
        write_file(path, data)
    except OSError as e:
        raise RuntimeErr(f"failed to write {path}: {e.strerror}") from None


def host_id(maps: list[dict], cid: int) -> int:
    """The host id that container id `cid` maps to (for chown of the exec fifo, devices...)."""
    for m in maps:
        if m["containerID"] <= cid < m["containerID"] + m["size"]:
            return m["hostID"] + cid - m["containerID"]
    return -1


_in_userns: bool | None = None  # (the answer, once known)


def running_in_userns() -> bool:
    """runc's userns.RunningInUserNS: anything but the full identity map means a user namespace
    (and no /proc/self/uid_map means a kernel without them). Asked by several steps of one
    create, so read once per process: it is the runtime's answer, which a child forked after
    making a user namespace of its own still gets (its callers ask whether *we* run in one)."""
    global _in_userns
    if _in_userns is None:
        try:
            with open("/proc/self/uid_map") as f:
                lines = [ln.split() for ln in f.read().splitlines() if ln.strip()]
        except OSError:
            lines = [["0", "0", "4294967295"]]
        _in_userns = lines != [["0", "0", "4294967295"]]
    return _in_userns
