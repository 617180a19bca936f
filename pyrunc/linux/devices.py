"""/dev inside the container: device nodes, the standard symlinks, /dev/ptmx.

In a user namespace mknod is not allowed, so nodes are bind-mounted from the host instead
(as runc does).
"""

from __future__ import annotations

import os
import stat

from pyrunc.linux import mounts
from pyrunc.linux import sys as S

# path, type, major, minor, mode
DEFAULT_DEVICES: tuple[tuple[str, str, int, int, int], ...] = (
    ("/dev/null", "c", 1, 3, 0o666),
    ("/dev/zero", "c", 1, 5, 0o666),
    ("/dev/full", "c", 1, 7, 0o666),
    ("/dev/random", "c", 1, 8, 0o666),
    ("/dev/urandom", "c", 1, 9, 0o666),
    ("/dev/tty", "c", 5, 0, 0o666),
)

SYMLINKS = (
    ("/proc/self/fd", "/dev/fd"),
    ("/proc/self/fd/0", "/dev/stdin"),
    ("/proc/self/fd/1", "/dev/stdout"),
    ("/proc/self/fd/2", "/dev/stderr"),
)

_TYPES = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}


def all_devices(spec_devices: list[dict]) -> list[dict]:
    """Default devices plus linux.devices; a config entry for the same path wins."""
    out = {d["path"]: d for d in spec_devices}
    for path, typ, major, minor, mode in DEFAULT_DEVICES:
        out.setdefault(
            path,
            {
                "path": path,
                "type": typ,
                "major": major,
                "minor": minor,
                "fileMode": mode,
                "uid": 0,
                "gid": 0,
            },
        )
    return list(out.values())


def create(rootfd: int, dev: dict, bind: bool) -> None:
    """Make one device node at its path *inside* the rootfs. The spec puts no limit on where
    (runc and crun create /foo-dev too): the parent is resolved with the rootfs as '/', so a
    symlink in the image can redirect it only within the rootfs, and the node itself replaces
    whatever non-directory the image had there without following it."""
    path = dev["path"]
    parent, _, base = os.path.normpath("/" + path).strip("/").rpartition("/")
    if not path.startswith("/") or base in ("", ".", ".."):
        from pyrunc.errors import RuntimeErr

        raise RuntimeErr(f"linux.devices: {path!r}: not an absolute path of a file")
    pfd = mounts.mkdir_all_in_root(rootfd, parent)
    try:
        if bind:
            fd = mounts.mkdir_all_in_root(rootfd, path, as_file=True)
            try:
                S.mount(path, mounts.fd_path(fd), None, S.MS_BIND)
            finally:
                os.close(fd)
            return
        mode = dev.get("fileMode")
        mode = 0o666 if mode is None else mode
        kind = _TYPES[dev.get("type", "c")]
        rdev = os.makedev(dev.get("major", 0), dev.get("minor", 0))
        try:
            st = os.stat(base, dir_fd=pfd, follow_symlinks=False)
        except FileNotFoundError:
            try:
                os.mknod(base, (mode & 0o7777) | kind, rdev, dir_fd=pfd)
            except OSError as e:
                from pyrunc.errors import RuntimeErr

                raise RuntimeErr(f"linux.devices: mknod {path}: {e.strerror}") from None
        else:
            # the spec: a file already there that is not the requested device is an error
            # (runc keeps whatever is there); the same device gets the config's mode and owner
            if stat.S_IFMT(st.st_mode) != kind or (kind != stat.S_IFIFO and st.st_rdev != rdev):
                from pyrunc.errors import RuntimeErr

                raise RuntimeErr(
                    f"linux.devices: {path}: a file that is not this device is already there"
                )
        # mknod is subject to umask; the config's mode is exact
        fd = os.open(base, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=pfd)
        try:
            os.chmod(mounts.fd_path(fd), mode & 0o7777)
            os.chown(mounts.fd_path(fd), dev.get("uid", 0) or 0, dev.get("gid", 0) or 0)
        finally:
            os.close(fd)
    finally:
        os.close(pfd)


def symlinks(rootfd: int) -> None:
    links = list(SYMLINKS)
    if os.path.exists("/proc/kcore"):
        links.append(("/proc/kcore", "/dev/core"))
    devfd = mounts.open_in_root(rootfd, "/dev")
    try:
        for target, link in links:
            try:
                os.symlink(target, link[5:], dir_fd=devfd)
            except FileExistsError:
                pass
    finally:
        os.close(devfd)


def setup_ptmx(rootfd: int) -> None:
    devfd = mounts.open_in_root(rootfd, "/dev")
    try:
        try:
            os.unlink("ptmx", dir_fd=devfd)
        except FileNotFoundError:
            pass
        os.symlink("pts/ptmx", "ptmx", dir_fd=devfd)
    finally:
        os.close(devfd)
