"""tmpcopyup: copy a directory of the image into the tmpfs mounted over it.

Everything goes through directory fds and never follows a symlink: the tree comes from the
image (whoever built it chose its names and links) and is copied while the container's rootfs
is being set up, so a symlink in it must be copied as a symlink, never entered or written
through. Modes, owners, extended attributes and times are kept (runc 1.1.5 kept owners and
applied the umask to modes; later runc keeps modes too), hard links become separate files.
"""

from __future__ import annotations

import errno
import os
import stat

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NOT_COPIED = (errno.EOPNOTSUPP, errno.ENOTSUP, errno.EPERM)  # xattrs the tmpfs won't take


def copy_tree(src: int, dst: int) -> None:
    """Copy the contents of the directory open at src into the one open at dst."""
    for entry in os.scandir(src):
        name = entry.name
        st = os.stat(name, dir_fd=src, follow_symlinks=False)
        kind = stat.S_IFMT(st.st_mode)
        if kind == stat.S_IFDIR:
            os.mkdir(name, 0o700, dir_fd=dst)
            s = os.open(name, _DIR, dir_fd=src)
            try:
                d = os.open(name, _DIR, dir_fd=dst)
                try:
                    copy_tree(s, d)
                    _meta_fd(s, d, st)
                finally:
                    os.close(d)
            finally:
                os.close(s)
        elif kind == stat.S_IFREG:
            _copy_file(src, dst, name, st)
        elif kind == stat.S_IFLNK:
            os.symlink(os.readlink(name, dir_fd=src), name, dir_fd=dst)
            _meta_path(src, dst, name, st)
        else:  # device nodes, fifos, sockets: the node, not what it leads to
            os.mknod(name, st.st_mode, st.st_rdev, dir_fd=dst)
            _meta_path(src, dst, name, st)


def _copy_file(src: int, dst: int, name: str, st: os.stat_result) -> None:
    # O_NONBLOCK: if the entry was swapped for a fifo since the stat, opening it must not hang
    s = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=src)
    try:
        if not stat.S_ISREG(os.fstat(s).st_mode):
            raise OSError(errno.EINVAL, "changed while being copied", name)
        d = os.open(
            name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
            dir_fd=dst,
        )
        try:
            left = st.st_size
            while left > 0:
                n = os.sendfile(d, s, None, min(left, 1 << 30))
                if n == 0:
                    break  # the file shrank meanwhile: what was there is copied
                left -= n
            _meta_fd(s, d, st)
        finally:
            os.close(d)
    finally:
        os.close(s)


def _meta_fd(s: int, d: int, st: os.stat_result) -> None:
    """xattrs, then owner (which clears set-id bits), then mode, then times."""
    for attr in _listxattr(s):
        try:
            os.setxattr(d, attr, os.getxattr(s, attr))
        except OSError as e:
            if e.errno not in _NOT_COPIED:
                raise
    os.fchown(d, st.st_uid, st.st_gid)
    os.fchmod(d, stat.S_IMODE(st.st_mode))
    os.utime(d, ns=(st.st_atime_ns, st.st_mtime_ns))


def _meta_path(src: int, dst: int, name: str, st: os.stat_result) -> None:
    """The same for what cannot be opened safely: through the directory fds, not following
    the entry itself (a symlink's mode cannot be set, and needs none)."""
    sp, dp = f"/proc/self/fd/{src}/{name}", f"/proc/self/fd/{dst}/{name}"
    for attr in _listxattr(sp):
        try:
            os.setxattr(dp, attr, os.getxattr(sp, attr, follow_symlinks=False),
                        follow_symlinks=False)
        except OSError as e:
            if e.errno not in _NOT_COPIED:
                raise
    os.chown(name, st.st_uid, st.st_gid, dir_fd=dst, follow_symlinks=False)
    if not stat.S_ISLNK(st.st_mode):
        os.chmod(name, stat.S_IMODE(st.st_mode), dir_fd=dst)
    os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dst, follow_symlinks=False)


def _listxattr(target: int | str) -> list[str]:
    try:
        if isinstance(target, int):
            return os.listxattr(target)
        return os.listxattr(target, follow_symlinks=False)
    except OSError as e:
        if e.errno in _NOT_COPIED:
            return []
        raise
