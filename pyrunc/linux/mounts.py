"""Mounts: option parsing and mounting onto destinations resolved *inside* the rootfs.

Every destination is opened with openat2(RESOLVE_IN_ROOT) and mounted through its
/proc/self/fd/N magic link, so a symlink in the rootfs -- even one swapped in while we work --
cannot send a mount outside it (the CVE-2021-30465 class).
"""

from __future__ import annotations

import errno
import os
import stat

from pyrunc.errors import RuntimeErr, oserror_text
from pyrunc.linux import sys as S

# name -> (clear, flag): clear=True means the option removes the flag.
FLAGS: dict[str, tuple[bool, int]] = {
    "acl": (False, 1 << 16),
    "async": (True, S.MS_SYNCHRONOUS),
    "atime": (True, S.MS_NOATIME),
    "bind": (False, S.MS_BIND),
    "defaults": (False, 0),
    "dev": (True, S.MS_NODEV),
    "diratime": (True, S.MS_NODIRATIME),
    "dirsync": (False, S.MS_DIRSYNC),
    "exec": (True, S.MS_NOEXEC),
    "iversion": (False, 1 << 23),
    "lazytime": (False, S.MS_LAZYTIME),
    "loud": (True, S.MS_SILENT),
    "mand": (False, S.MS_MANDLOCK),
    "noacl": (True, 1 << 16),
    "noatime": (False, S.MS_NOATIME),
    "nodev": (False, S.MS_NODEV),
    "nodiratime": (False, S.MS_NODIRATIME),
    "noexec": (False, S.MS_NOEXEC),
    "noiversion": (True, 1 << 23),
    "nolazytime": (True, S.MS_LAZYTIME),
    "nomand": (True, S.MS_MANDLOCK),
    "norelatime": (True, S.MS_RELATIME),
    "nostrictatime": (True, S.MS_STRICTATIME),
    "nosuid": (False, S.MS_NOSUID),
    "nosymfollow": (False, S.MS_NOSYMFOLLOW),
    "rbind": (False, S.MS_BIND | S.MS_REC),
    "relatime": (False, S.MS_RELATIME),
    "remount": (False, S.MS_REMOUNT),
    "ro": (False, S.MS_RDONLY),
    "rw": (True, S.MS_RDONLY),
    "silent": (False, S.MS_SILENT),
    "strictatime": (False, S.MS_STRICTATIME),
    "suid": (True, S.MS_NOSUID),
    "symfollow": (True, S.MS_NOSYMFOLLOW),
    "sync": (False, S.MS_SYNCHRONOUS),
}

PROPAGATION: dict[str, int] = {
    "private": S.MS_PRIVATE,
    "rprivate": S.MS_PRIVATE | S.MS_REC,
    "shared": S.MS_SHARED,
    "rshared": S.MS_SHARED | S.MS_REC,
    "slave": S.MS_SLAVE,
    "rslave": S.MS_SLAVE | S.MS_REC,
    "unbindable": S.MS_UNBINDABLE,
    "runbindable": S.MS_UNBINDABLE | S.MS_REC,
}

# Recursive (mount_setattr AT_RECURSIVE) options: name -> (clear, attr)
RECURSIVE: dict[str, tuple[bool, int]] = {
    "rro": (False, S.MOUNT_ATTR_RDONLY),
    "rrw": (True, S.MOUNT_ATTR_RDONLY),
    "rnosuid": (False, S.MOUNT_ATTR_NOSUID),
    "rsuid": (True, S.MOUNT_ATTR_NOSUID),
    "rnodev": (False, S.MOUNT_ATTR_NODEV),
    "rdev": (True, S.MOUNT_ATTR_NODEV),
    "rnoexec": (False, S.MOUNT_ATTR_NOEXEC),
    "rexec": (True, S.MOUNT_ATTR_NOEXEC),
    "rnodiratime": (False, S.MOUNT_ATTR_NODIRATIME),
    "rdiratime": (True, S.MOUNT_ATTR_NODIRATIME),
    "rrelatime": (False, S.MOUNT_ATTR_RELATIME),
    "rnorelatime": (True, S.MOUNT_ATTR_RELATIME),
    "rnoatime": (False, S.MOUNT_ATTR_NOATIME),
    "ratime": (True, S.MOUNT_ATTR_NOATIME),
    "rstrictatime": (False, S.MOUNT_ATTR_STRICTATIME),
    "rnostrictatime": (True, S.MOUNT_ATTR_STRICTATIME),
    "rnosymfollow": (False, S.MOUNT_ATTR_NOSYMFOLLOW),
    "rsymfollow": (True, S.MOUNT_ATTR_NOSYMFOLLOW),
}

# runc's own option extensions: not for mount(2) (which would answer EINVAL); idmap and
# ridmap are done before the mount (linux/idmapped.py)
EXTENSIONS = ("tmpcopyup", "idmap", "ridmap")

_ATIME = {S.MOUNT_ATTR_RELATIME, S.MOUNT_ATTR_NOATIME, S.MOUNT_ATTR_STRICTATIME}


class Options:
    __slots__ = ("flags", "propagation", "rec_set", "rec_clr", "data", "ext")

    def __init__(self) -> None:
        self.flags = 0
        self.propagation: list[int] = []
        self.rec_set = 0
        self.rec_clr = 0
        self.data: list[str] = []
        self.ext: set[str] = set()


def parse_options(options: list[str]) -> Options:
    o = Options()
    for opt in options:
        if opt in FLAGS:
            clear, flag = FLAGS[opt]
            o.flags = o.flags & ~flag if clear else o.flags | flag
        elif opt in PROPAGATION:
            o.propagation.append(PROPAGATION[opt])
        elif opt in RECURSIVE:
            clear, attr = RECURSIVE[opt]
            if attr in _ATIME or attr == S.MOUNT_ATTR_RELATIME:
                o.rec_clr |= S.MOUNT_ATTR__ATIME
                if not clear:
                    o.rec_set |= attr
            elif clear:
                o.rec_clr |= attr
                o.rec_set &= ~attr
            else:
                o.rec_set |= attr
                o.rec_clr &= ~attr
        elif opt in EXTENSIONS:
            o.ext.add(opt)
        elif opt.startswith(("idmap=", "ridmap=")):  # (crun's inline maps: not runc's)
            raise RuntimeErr(f"mount option {opt!r} is not supported: give uidMappings and "
                             "gidMappings")
        else:
            o.data.append(opt)
    return o


# ---- resolving paths inside the rootfs ------------------------------------------------------

_RESOLVE = S.RESOLVE_IN_ROOT | S.RESOLVE_NO_MAGICLINKS


def open_in_root(rootfd: int, rel: str) -> int:
    """O_PATH fd of rel, resolved with the rootfs as '/' (symlinks cannot climb out)."""
    return S.openat2(rootfd, rel.lstrip("/") or ".", S.O_PATH | os.O_CLOEXEC, _RESOLVE)


def mkdir_all_in_root(
    rootfd: int, rel: str, as_file: bool = False, mode: int = 0o755, _depth: int = 0
) -> int:
    """Open rel inside the rootfs, creating missing directories (and the leaf file if as_file).

    A dangling symlink on the way is followed inside the rootfs and its target created there,
    as runc's securejoin-based MkdirAll does."""
    rel = rel.strip("/")
    try:
        return open_in_root(rootfd, rel)
    except FileNotFoundError:
        pass
    if _depth > 40:
        raise RuntimeErr(f"too many levels of symbolic links: /{rel}")
    parent, _, base = rel.rpartition("/")
    if base in ("", ".", ".."):
        raise RuntimeErr(f"invalid mount destination: /{rel}")
    pfd = mkdir_all_in_root(rootfd, parent, _depth=_depth + 1) if parent else os.dup(rootfd)
    try:
        try:
            if as_file:
                flags = os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC
                os.close(os.open(base, flags, 0o644, dir_fd=pfd))
            else:
                os.mkdir(base, mode, dir_fd=pfd)
        except FileExistsError:
            try:
                target = os.readlink(base, dir_fd=pfd)
            except OSError:
                target = None  # created meanwhile by someone else: reopen below
            if target is not None:
                dest = target if target.startswith("/") else f"{parent}/{target}"
                os.close(pfd)
                pfd = -1
                fd = mkdir_all_in_root(
                    rootfd, os.path.normpath("/" + dest), as_file, mode, _depth + 1
                )
                os.close(fd)
    finally:
        if pfd >= 0:
            os.close(pfd)
    return open_in_root(rootfd, rel)


def fd_path(fd: int) -> str:
    return f"/proc/self/fd/{fd}"


def ids_at(path: str) -> set[int]:
    """The ids of every mount stacked at path, in our mount namespace."""
    from pyrunc.linux import mountinfo

    real = os.path.realpath(path)
    return {m.id for m in mountinfo.mounts() if m.mountpoint == real}


def top_mount_id(path: str) -> int:
    """The id of the mount on top at path (0 if there is no such path)."""
    try:
        fd = os.open(path, S.O_PATH | os.O_CLOEXEC)
    except OSError:
        return 0
    try:
        with open(f"/proc/self/fdinfo/{fd}", "rb") as f:
            for line in f:
                if line.startswith(b"mnt_id:"):
                    return int(line.split()[1])
    finally:
        os.close(fd)
    return 0


def detach(path: str, ids: set[int] | list[int]) -> None:
    """Lazily unmount, with everything mounted below them, the mounts at path whose ids are
    given, while one of them is on top there (a container's config can stack a mount on its
    own "/"); never one that was there before. By fd: the path is resolved once per mount."""
    ids = set(ids)
    for _ in range(len(ids)):
        try:
            fd = os.open(path, S.O_PATH | os.O_CLOEXEC)
        except OSError:
            return
        try:
            if top_mount_id(fd_path(fd)) not in ids:
                return
            S.umount2(fd_path(fd), S.MNT_DETACH)
        finally:
            os.close(fd)


# ---- mounting --------------------------------------------------------------------------------


def statvfs_flags(path: str) -> int:
    """Mount flags already on a mount; remounts in a user namespace must keep the locked ones."""
    f = os.statvfs(path).f_flag
    out = 0
    for st_flag, ms_flag in (
        (os.ST_RDONLY, S.MS_RDONLY),
        (os.ST_NOSUID, S.MS_NOSUID),
        (os.ST_NODEV, S.MS_NODEV),
        (os.ST_NOEXEC, S.MS_NOEXEC),
        (os.ST_NOATIME, S.MS_NOATIME),
        (os.ST_NODIRATIME, S.MS_NODIRATIME),
        (os.ST_RELATIME, S.MS_RELATIME),
    ):
        if f & st_flag:
            out |= ms_flag
    return out


def remount(path: str, flags: int) -> None:
    try:
        S.mount(None, path, None, flags | S.MS_REMOUNT | S.MS_BIND)
    except PermissionError:
        S.mount(None, path, None, flags | statvfs_flags(path) | S.MS_REMOUNT | S.MS_BIND)


def is_bind(m: dict) -> bool:
    return m.get("type") == "bind" or any(o in ("bind", "rbind") for o in m.get("options") or [])


def open_bind_source(m: dict) -> int:
    """A detached copy (open_tree) of a bind mount's source, made by the runtime as the host's
    root before the init enters the container's user namespace, whose root may not be allowed
    to reach the source (runc does the same with its mount-source fds)."""
    src = m.get("source") or ""
    rec = "rbind" in (m.get("options") or [])
    flags = S.OPEN_TREE_CLONE | S.OPEN_TREE_CLOEXEC | (S.AT_RECURSIVE if rec else 0)
    try:
        return S.open_tree(-100, src, flags)  # AT_FDCWD
    except OSError as e:
        raise RuntimeErr(
            f"mount {src}:{m.get('destination')}: stat {src}: {e.strerror}"
        ) from None


def mount_at(rootfd: int, m: dict, label_data: str = "", src_fd: int = -1) -> None:
    """Mount one config `mounts` entry onto its destination inside the rootfs; src_fd, if
    given, is the bind source as a detached mount made by the runtime (open_bind_source)."""
    dest = m["destination"]
    mtype = m.get("type") or ""
    src = m.get("source") or mtype or "none"
    o = parse_options(m.get("options") or [])
    bind = is_bind(m)
    if bind:
        o.flags |= S.MS_BIND
        if src_fd >= 0:
            src = fd_path(src_fd)
        try:
            st = os.stat(src)
        except OSError as e:
            raise RuntimeErr(f"mount {src}:{dest}: stat {src}: {e.strerror}") from None
        as_file = not stat.S_ISDIR(st.st_mode)
    else:
        as_file = False
    if mtype in ("proc", "sysfs"):
        _check_ordinary_dir(rootfd, dest, mtype)
    before = None  # what a tmpfs covers, if it was there: runc gives the tmpfs its mode
    if mtype == "tmpfs" and not bind:
        try:
            pfd = open_in_root(rootfd, dest)
        except (FileNotFoundError, NotADirectoryError):
            pass
        else:
            before = os.fstat(pfd)
            os.close(pfd)
    try:
        fd = mkdir_all_in_root(rootfd, dest, as_file=as_file)
    except OSError as e:  # e.g. the destination vanished while it was being created
        raise RuntimeErr(
            f"mount {m.get('source', '')}:{dest}: creating the destination in the rootfs: "
            f"{e.strerror}"
        ) from None
    try:
        target = fd_path(fd)
        data = ",".join(o.data) or None
        if label_data and mtype not in ("proc", "sysfs", "bind") and not bind:
            data = f"{data},{label_data}" if data else label_data
        if src_fd >= 0:
            S.move_mount(src_fd, fd)
        elif bind:
            S.mount(src, target, None, o.flags & (S.MS_BIND | S.MS_REC))
        else:
            flags = o.flags
            if dest.rstrip("/") == "/dev":
                flags &= ~S.MS_RDONLY  # devices are created in it first; read-only comes last
            copyup = -1
            if "tmpcopyup" in o.ext and mtype == "tmpfs" and before is not None:
                # the directory the tmpfs will cover stays reachable through this fd
                copyup = os.open(target, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
                flags &= ~S.MS_RDONLY  # filled first, made read-only after
            try:
                S.mount(src, target, mtype, flags, data)
            except OSError as e:
                if copyup >= 0:
                    os.close(copyup)
                raise RuntimeErr(
                    f"error mounting {src!r} to rootfs at {dest!r}: {e.strerror}"
                ) from None
            if before is not None and mtype == "tmpfs":
                _fill_tmpfs(rootfd, dest, o, before, copyup)
    finally:
        os.close(fd)
    if not (bind or o.propagation or o.rec_set or o.rec_clr):
        return
    fd = open_in_root(rootfd, dest)  # the new mount's root, not the directory under it
    try:
        target = fd_path(fd)
        if bind and o.flags & ~(S.MS_BIND | S.MS_REC | S.MS_REMOUNT):
            remount(target, o.flags & ~S.MS_REC)
        for p in o.propagation:
            S.mount(None, target, None, p)
        if o.rec_set or o.rec_clr:
            S.mount_setattr(fd, "", S.AT_EMPTY_PATH | S.AT_RECURSIVE, o.rec_set, o.rec_clr)
    finally:
        os.close(fd)


def _fill_tmpfs(rootfd: int, dest: str, o: Options, before: os.stat_result, src: int) -> None:
    """A tmpfs over an existing directory: copy what it had (tmpcopyup, runc's extension, as
    podman's --tmpfs and --read-only ask) and take its mode, as runc does, unless the options
    name one (runc 1.1.5 overrode even that)."""
    fd = open_in_root(rootfd, dest)  # the new tmpfs
    try:
        if src >= 0:
            from pyrunc.linux import copyup

            dst = os.open(fd_path(fd), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                copyup.copy_tree(src, dst)
                os.chown(dst, before.st_uid, before.st_gid)
            except OSError as e:
                raise RuntimeErr(
                    f"tmpcopyup: failed to copy {dest} to the tmpfs: {oserror_text(e)}"
                ) from None
            finally:
                os.close(dst)
                os.close(src)
        if not any(d.startswith("mode=") for d in o.data):
            os.chmod(fd_path(fd), stat.S_IMODE(before.st_mode))
        if src >= 0 and o.flags & S.MS_RDONLY:
            S.mount(None, fd_path(fd), None, (o.flags & ~S.MS_REC) | S.MS_REMOUNT)
    finally:
        os.close(fd)


def _check_ordinary_dir(rootfd: int, dest: str, mtype: str) -> None:
    parent, _, base = dest.strip("/").rpartition("/")
    try:
        pfd = open_in_root(rootfd, parent)
    except FileNotFoundError:
        return
    try:
        st = os.stat(base, dir_fd=pfd, follow_symlinks=False)
    except FileNotFoundError:
        return
    finally:
        os.close(pfd)
    if not stat.S_ISDIR(st.st_mode):
        raise RuntimeErr(
            f"error mounting {mtype!r} to rootfs at {dest!r}: "
            f"filesystem {mtype!r} must be mounted on ordinary directory"
        )


def is_mountpoint_errno(e: OSError) -> bool:
    return e.errno in (errno.EINVAL, errno.EBUSY)
