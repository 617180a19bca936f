"""User-namespace id maps, written by the parent into /proc/<child>/{uid,gid}_map."""

from __future__ import annotations

from pyrunc.errors import RuntimeErr
from pyrunc.linux.files import write_file


def _fmt(maps: list[dict]) -> bytes:
    return "".join(f"{m['containerID']} {m['hostID']} {m['size']}\n" for m in maps).encode()


def write_maps(pid: int, uid_maps: list[dict], gid_maps: list[dict], deny_setgroups: bool) -> None:
    for name, maps in (("uid_map", uid_maps), ("gid_map", gid_maps)):
        if name == "gid_map" and deny_setgroups:
            _write(f"/proc/{pid}/setgroups", b"deny")
        if maps:
            _write(f"/proc/{pid}/{name}", _fmt(maps))


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
