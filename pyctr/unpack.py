"""Apply an image layer (a tar stream: gzip, zstd or plain) to a directory tree.

Every path is resolved from an fd of the target with openat2(RESOLVE_BENEATH |
RESOLVE_NO_SYMLINKS): an entry whose name or hard-link target climbs out (`..`, absolute) or
goes through a symlink (one the layer made or one below it) is refused, and the whole layer
with it: a crafted image cannot write outside its snapshot. Nothing is ever followed.

Whiteouts (`.wh.NAME` deletes NAME, `.wh..wh..opq` empties its directory) are carried out as
deletions. Applied to an overlay mount of the parent snapshots (snapshots.py), the kernel
turns each deletion into an overlay whiteout in the new layer, which is what containerd's
overlay snapshotter keeps.

Owners, modes, mtimes, xattrs (PAX SCHILY.xattr.*), hard links, symlinks, fifos and device
nodes are kept. Directory mtimes are set last (creating children changes them).
"""

from __future__ import annotations

import errno
import os
import stat
import tarfile

from pyctr.errors import PyctrError
from pyrunc.linux import sys as S

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
_RESOLVE = S.RESOLVE_BENEATH | S.RESOLVE_NO_SYMLINKS | S.RESOLVE_NO_MAGICLINKS


class LayerRefused(PyctrError):
    pass


def open_stream(f: object, media_type: str) -> object:
    """The decompressed tar stream of a layer blob, by media type, else by magic bytes."""
    head = f.peek(4)[:4] if hasattr(f, "peek") else b""  # type: ignore[attr-defined]
    if media_type.endswith("+zstd") or head == b"\x28\xb5\x2f\xfd":
        import zstandard

        return zstandard.ZstdDecompressor().stream_reader(f, read_across_frames=True)
    if media_type.endswith("gzip") or head[:2] == b"\x1f\x8b":
        import gzip

        return gzip.GzipFile(fileobj=f)  # type: ignore[arg-type]
    return f


def _clean(name: str) -> str:
    """The entry's path relative to the root, or refuse it."""
    if name.startswith("/"):
        raise LayerRefused(f"layer entry {name!r}: absolute path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise LayerRefused(f"layer entry {name!r}: climbs out with '..'")
    return "/".join(parts)


class Applier:
    def __init__(self, root: str) -> None:
        self.root = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self.dirs: list[tuple[str, tarfile.TarInfo]] = []

    def close(self) -> None:
        os.close(self.root)

    def _parent(self, rel: str, name: str) -> tuple[int, str]:
        """An O_PATH-free directory fd of rel's parent, opened beneath the root, and the base
        name; a missing parent is made (as a layer may omit it), a symlinked one refused."""
        parent, _, base = rel.rpartition("/")
        if not base:
            raise LayerRefused(f"layer entry {name!r}: no name")
        if not parent:
            return os.dup(self.root), base
        try:
            fd = S.openat2(self.root, parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC,
                           _RESOLVE)
        except OSError as e:
            if e.errno == errno.ENOENT:
                self._mkdirs(parent, name)
                return self._parent(rel, name)
            if e.errno in (errno.ELOOP, errno.EXDEV, errno.ENOTDIR):
                raise LayerRefused(f"layer entry {name!r}: its parent {parent!r} is a symlink "
                                   "or not a directory inside the layer") from None
            raise
        return fd, base

    def _mkdirs(self, rel: str, name: str) -> None:
        fd = os.dup(self.root)
        try:
            for p in rel.split("/"):
                try:
                    os.mkdir(p, 0o755, dir_fd=fd)
                except FileExistsError:
                    pass
                try:
                    nfd = S.openat2(fd, p, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, _RESOLVE)
                except OSError as e:
                    raise LayerRefused(f"layer entry {name!r}: {p!r} is a symlink or not a "
                                       f"directory ({e.strerror})") from None
                os.close(fd)
                fd = nfd
        finally:
            os.close(fd)

    def apply(self, t: tarfile.TarFile) -> None:
        for m in t:
            rel = _clean(m.name)
            if not rel:
                continue  # the root itself: its metadata belongs to the snapshot
            base = rel.rpartition("/")[2]
            if base.startswith(WHITEOUT):
                self._whiteout(rel, base, m.name)
                continue
            pfd, base = self._parent(rel, m.name)
            try:
                self._entry(t, m, pfd, base, rel)
            finally:
                os.close(pfd)
        for rel, m in reversed(self.dirs):
            fd = S.openat2(self.root, rel, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC,
                           _RESOLVE)
            try:
                os.utime(fd, ns=(int(m.mtime * 1e9),) * 2)
            finally:
                os.close(fd)

    def _whiteout(self, rel: str, base: str, name: str) -> None:
        pfd, _ = self._parent(rel, name)
        try:
            if base == OPAQUE:
                for child in os.listdir(pfd):
                    _remove(pfd, child)
            else:
                _remove(pfd, base[len(WHITEOUT):])
        finally:
            os.close(pfd)

    def _entry(self, t: tarfile.TarFile, m: tarfile.TarInfo, pfd: int, base: str,
               rel: str) -> None:
        try:
            st = os.stat(base, dir_fd=pfd, follow_symlinks=False)
        except FileNotFoundError:
            st = None
        if st is not None and not (m.isdir() and stat.S_ISDIR(st.st_mode)):
            _remove(pfd, base)  # a later layer replaces what an earlier one had
        mode = m.mode & 0o7777
        if m.isdir():
            if st is None or not stat.S_ISDIR(st.st_mode):
                os.mkdir(base, 0o700, dir_fd=pfd)
            fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                         dir_fd=pfd)
            try:
                self._meta(fd, m, mode)
            finally:
                os.close(fd)
            self.dirs.append((rel, m))
        elif m.isreg():
            fd = os.open(base, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW |
                         os.O_CLOEXEC, 0o600, dir_fd=pfd)
            try:
                src = t.extractfile(m)
                if src is not None:
                    while True:
                        b = src.read(1 << 20)
                        if not b:
                            break
                        os.write(fd, b)
                self._meta(fd, m, mode)
                os.utime(fd, ns=(int(m.mtime * 1e9),) * 2)
            finally:
                os.close(fd)
        elif m.issym():
            os.symlink(m.linkname, base, dir_fd=pfd)
            os.chown(base, m.uid, m.gid, dir_fd=pfd, follow_symlinks=False)
            os.utime(base, ns=(int(m.mtime * 1e9),) * 2, dir_fd=pfd, follow_symlinks=False)
        elif m.islnk():
            target = _clean(m.linkname)
            try:
                tfd = S.openat2(self.root, target, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC,
                                _RESOLVE)
            except OSError as e:
                raise LayerRefused(f"layer entry {m.name!r}: hard link to {m.linkname!r}, "
                                   f"which is not inside the layer ({e.strerror})") from None
            try:
                os.link(f"/proc/self/fd/{tfd}", base, dst_dir_fd=pfd, follow_symlinks=True)
            finally:
                os.close(tfd)
        elif m.ischr() or m.isblk() or m.isfifo():
            kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK if m.isblk() else stat.S_IFIFO
            os.mknod(base, mode | kind, os.makedev(m.devmajor, m.devminor), dir_fd=pfd)
            os.chown(base, m.uid, m.gid, dir_fd=pfd, follow_symlinks=False)
            os.chmod(base, mode, dir_fd=pfd)
            os.utime(base, ns=(int(m.mtime * 1e9),) * 2, dir_fd=pfd, follow_symlinks=False)
        else:
            raise LayerRefused(f"layer entry {m.name!r}: unsupported type {m.type!r}")

    def _meta(self, fd: int, m: tarfile.TarInfo, mode: int) -> None:
        os.fchown(fd, m.uid, m.gid)
        os.fchmod(fd, mode)  # after chown, which clears set-id bits
        for k, v in (m.pax_headers or {}).items():
            if k.startswith("SCHILY.xattr."):
                os.setxattr(fd, k[len("SCHILY.xattr."):], v.encode("utf-8", "surrogateescape")
                            if isinstance(v, str) else v)


def _remove(pfd: int, name: str) -> None:
    """Remove name (a whole tree for a directory) under pfd, never following a symlink."""
    try:
        st = os.stat(name, dir_fd=pfd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                     dir_fd=pfd)
        try:
            for child in os.listdir(fd):
                _remove(fd, child)
        finally:
            os.close(fd)
        os.rmdir(name, dir_fd=pfd)
    else:
        os.unlink(name, dir_fd=pfd)


def apply_layer(root: str, stream: object) -> None:
    """Apply one layer (its uncompressed tar stream: open_stream) to root; LayerRefused if
    it is crafted."""
    a = Applier(root)
    try:
        with tarfile.open(fileobj=stream, mode="r|", encoding="utf-8",  # type: ignore[arg-type]
                          errors="surrogateescape") as t:
            a.apply(t)
    except tarfile.TarError as e:
        raise PyctrError(f"layer: not a valid tar stream ({e})") from None
    finally:
        a.close()
