"""The syscall boundary: the only module that touches the compiled cffi glue.

Every wrapper raises OSError with errno and the path it was called on, so callers above this layer
deal in Python exceptions only and error messages can name the file involved.
"""

from __future__ import annotations

import errno
import os

from pyrunc.linux._sys import ffi, lib

# clone(2)/unshare(2) flags
CLONE_NEWTIME = 0x00000080
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

# mount(2) flags
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_SYNCHRONOUS = 16
MS_REMOUNT = 32
MS_MANDLOCK = 64
MS_DIRSYNC = 128
MS_NOSYMFOLLOW = 256
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_SILENT = 32768
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24
MS_LAZYTIME = 1 << 25
MNT_DETACH = 2

# mount_setattr(2)
AT_RECURSIVE = 0x8000
AT_EMPTY_PATH = 0x1000
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MOUNT_ATTR_NOEXEC = 0x8
MOUNT_ATTR__ATIME = 0x70
MOUNT_ATTR_RELATIME = 0x0
MOUNT_ATTR_NOATIME = 0x10
MOUNT_ATTR_STRICTATIME = 0x20
MOUNT_ATTR_NODIRATIME = 0x80
MOUNT_ATTR_NOSYMFOLLOW = 0x200000

# openat2(2) resolve flags
RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10
O_PATH = 0o10000000

# prctl(2)
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_KEEPCAPS = 8
PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_CLEAR_ALL = 4

CLOSE_RANGE_CLOEXEC = 4

# open_tree(2) / move_mount(2)
OPEN_TREE_CLONE = 1
OPEN_TREE_CLOEXEC = 0o2000000
MOVE_MOUNT_F_EMPTY_PATH = 0x4
MOVE_MOUNT_T_EMPTY_PATH = 0x40

# bpf(2) BPF_PROG_ATTACH flags
BPF_F_ALLOW_MULTI = 1 << 1
BPF_F_REPLACE = 1 << 2

# seccomp(2) SECCOMP_SET_MODE_FILTER flags
SECCOMP_FILTER_FLAG_TSYNC = 1 << 0
SECCOMP_FILTER_FLAG_LOG = 1 << 1
SECCOMP_FILTER_FLAG_SPEC_ALLOW = 1 << 2
SECCOMP_FILTER_FLAG_NEW_LISTENER = 1 << 3
SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV = 1 << 5  # Linux 5.19

# ioprio_set(2)
IOPRIO_WHO_PROCESS = 1
IOPRIO_CLASS_SHIFT = 13


def _check(ret: int, what: str, path: str | None = None) -> int:
    if ret < 0:
        err = ffi.errno
        raise OSError(err, f"{what}: {os.strerror(err)}", path)
    return ret


def _b(s: str | bytes | None) -> bytes | object:
    if s is None:
        return ffi.NULL
    return s.encode() if isinstance(s, str) else s


def unshare(flags: int) -> None:
    _check(lib.unshare(flags), "unshare")


def setns(fd: int, nstype: int = 0) -> None:
    _check(lib.setns(fd, nstype), "setns")


def mount(
    source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None
) -> None:
    _check(lib.mount(_b(source), _b(target), _b(fstype), flags, _b(data)), "mount", target)


def umount2(target: str, flags: int = 0) -> None:
    _check(lib.umount2(_b(target), flags), "umount2", target)


def pivot_root(new_root: str, put_old: str) -> None:
    _check(lib.pyrunc_pivot_root(_b(new_root), _b(put_old)), "pivot_root", new_root)


def chroot(path: str) -> None:
    _check(lib.chroot(_b(path)), "chroot", path)


def sethostname(name: str) -> None:
    b = name.encode()
    _check(lib.sethostname(b, len(b)), "sethostname")


def setdomainname(name: str) -> None:
    b = name.encode()
    _check(lib.setdomainname(b, len(b)), "setdomainname")


def prctl(option: int, a2: int = 0, a3: int = 0, a4: int = 0, a5: int = 0) -> int:
    return _check(lib.prctl(option, a2, a3, a4, a5), "prctl")


def personality(persona: int) -> None:
    _check(lib.personality(persona), "personality")


def openat2(dirfd: int, path: str, flags: int, resolve: int, mode: int = 0) -> int:
    return _check(lib.pyrunc_openat2(dirfd, _b(path), flags, mode, resolve), "openat2", path)


def close_range(first: int, last: int = 0xFFFFFFFF, flags: int = 0) -> None:
    _check(lib.pyrunc_close_range(first, last, flags), "close_range")


def fork_into_cgroup(cgroup_fd: int) -> int:
    """os.fork() whose child starts in the cgroup2 directory cgroup_fd (see the C side for why,
    and why only a single-threaded caller may use it); OSError if clone3 cannot do it."""
    return _check(lib.pyrunc_fork_into_cgroup(cgroup_fd), "clone3")


def mount_setattr(
    dirfd: int, path: str, flags: int, attr_set: int, attr_clr: int = 0, propagation: int = 0
) -> None:
    _check(
        lib.pyrunc_mount_setattr(dirfd, _b(path), flags, attr_set, attr_clr, propagation),
        "mount_setattr",
        path,
    )


def mount_setattr_idmap(fd: int, userns_fd: int, recursive: bool) -> None:
    """Make the detached mount fd an idmapped mount through userns_fd's maps."""
    flags = AT_EMPTY_PATH | (AT_RECURSIVE if recursive else 0)
    _check(lib.pyrunc_mount_setattr_idmap(fd, flags, userns_fd), "mount_setattr(MOUNT_ATTR_IDMAP)")


def capget() -> tuple[int, int, int]:
    """Return the (effective, permitted, inheritable) sets as 64-bit masks."""
    d = ffi.new("uint32_t[6]")
    _check(lib.pyrunc_capget(d), "capget")
    return d[0] | d[1] << 32, d[2] | d[3] << 32, d[4] | d[5] << 32


def capset(effective: int, permitted: int, inheritable: int) -> None:
    m = 0xFFFFFFFF
    d = ffi.new(
        "uint32_t[6]",
        [
            effective & m,
            effective >> 32,
            permitted & m,
            permitted >> 32,
            inheritable & m,
            inheritable >> 32,
        ],
    )
    _check(lib.pyrunc_capset(d), "capset")


def loopback_up() -> None:
    _check(lib.pyrunc_lo_up(), "bring up lo")


def send_fd(sock: int, fd: int, name: str) -> None:
    b = name.encode()
    _check(lib.pyrunc_send_fd(sock, fd, b, len(b)), "sendmsg(SCM_RIGHTS)")


def recv_fd(sock: int) -> int:
    fd = _check(lib.pyrunc_recv_fd(sock), "recvmsg(SCM_RIGHTS)")
    if fd < 0:
        raise OSError(0, "no file descriptor received")
    return fd


def set_controlling_tty(fd: int) -> None:
    _check(lib.pyrunc_set_ctty(fd), "ioctl(TIOCSCTTY)")


def get_winsize(fd: int) -> tuple[int, int]:
    rc = ffi.new("unsigned short[2]")
    _check(lib.pyrunc_get_winsize(fd, rc), "ioctl(TIOCGWINSZ)")
    return rc[0], rc[1]


def set_winsize(fd: int, rows: int, cols: int) -> None:
    _check(lib.pyrunc_set_winsize(fd, rows, cols), "ioctl(TIOCSWINSZ)")


def join_session_keyring(name: str) -> None:
    _check(lib.pyrunc_join_session_keyring(_b(name)), "keyctl(JOIN_SESSION_KEYRING)")


def open_tree(dirfd: int, path: str, flags: int) -> int:
    return _check(lib.pyrunc_open_tree(dirfd, _b(path), flags), "open_tree", path)


def move_mount(from_fd: int, to_fd: int) -> None:
    """Attach the detached mount from_fd (from open_tree) onto the directory/file to_fd."""
    flags = MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH
    _check(lib.pyrunc_move_mount(from_fd, b"", to_fd, b"", flags), "move_mount")


def bpf_prog_load(insns: bytes, license: str, log_size: int = 0) -> int:
    """Load a BPF_PROG_TYPE_CGROUP_DEVICE program; return its fd. With log_size, the verifier's
    log is asked for and, on failure, becomes the end of the OSError's message (callers load
    without it first, as cilium/ebpf does: a log buffer costs kernel memory and can itself
    fail the load with ENOSPC)."""
    log = ffi.new("char[]", log_size) if log_size else ffi.NULL
    fd = lib.pyrunc_bpf_prog_load(
        ffi.from_buffer(insns), len(insns) // 8, _b(license), log, log_size
    )
    if fd < 0 and log_size:
        err = ffi.errno
        text = ffi.string(log).decode(errors="replace").strip()
        raise OSError(
            err, f"bpf(BPF_PROG_LOAD): {os.strerror(err)}" + (f": {text}" if text else "")
        )
    return _check(fd, "bpf(BPF_PROG_LOAD)")


def bpf_prog_attach(cgroup_fd: int, prog_fd: int, flags: int, replace_fd: int = 0) -> None:
    """Attach as BPF_CGROUP_DEVICE; replace_fd is the program BPF_F_REPLACE swaps out."""
    _check(
        lib.pyrunc_bpf_prog_attach(cgroup_fd, prog_fd, flags, replace_fd), "bpf(BPF_PROG_ATTACH)"
    )


def bpf_prog_detach(cgroup_fd: int, prog_fd: int) -> None:
    _check(lib.pyrunc_bpf_prog_detach(cgroup_fd, prog_fd), "bpf(BPF_PROG_DETACH)")


def bpf_prog_query(cgroup_fd: int, size: int = 64) -> tuple[list[int], int]:
    """Ids of the BPF_CGROUP_DEVICE programs attached to the cgroup (at most `size`) and how many
    there are: more than `size` is not an error here (the kernel's ENOSPC), ask again."""
    ids = ffi.new("uint32_t[]", max(size, 1))
    count = ffi.new("unsigned int *", size)
    if lib.pyrunc_bpf_prog_query(cgroup_fd, ids, count) < 0 and ffi.errno != errno.ENOSPC:
        _check(-1, "bpf(BPF_PROG_QUERY)")
    return [ids[i] for i in range(min(size, count[0]))], count[0]


def bpf_prog_get_fd_by_id(prog_id: int) -> int:
    return _check(lib.pyrunc_bpf_prog_get_fd_by_id(prog_id), "bpf(BPF_PROG_GET_FD_BY_ID)")


def seccomp_set_filter(flags: int, insns: bytes) -> int:
    """seccomp(SECCOMP_SET_MODE_FILTER, flags, prog) for a classic BPF program of raw
    struct sock_filter (8 bytes each, host order): the notify fd with NEW_LISTENER, else 0.
    The length is checked here because sock_fprog.len is 16 bits: a longer program would be
    silently cut, not refused."""
    count, rest = divmod(len(insns), 8)
    if rest or not 0 < count <= 0xFFFF:
        raise OSError(errno.EINVAL, f"seccomp: invalid BPF program of {len(insns)} bytes")
    return _check(
        lib.pyrunc_seccomp_set_filter(flags, ffi.from_buffer(insns), count),
        "seccomp(SECCOMP_SET_MODE_FILTER)",
    )


def seccomp_flags_known(flags: int) -> bool:
    """Whether the kernel takes these SECCOMP_SET_MODE_FILTER flags (probed; loads nothing)."""
    return bool(lib.pyrunc_seccomp_flags_known(flags))


def sched_setattr(
    pid: int,
    policy: int,
    flags: int = 0,
    nice: int = 0,
    priority: int = 0,
    runtime: int = 0,
    deadline: int = 0,
    period: int = 0,
) -> None:
    """sched_setattr(2) with struct sched_attr (the utilization clamps left 0)."""
    _check(
        lib.pyrunc_sched_setattr(pid, policy, flags, nice, priority, runtime, deadline, period),
        "sched_setattr",
    )


def ioprio_set(which: int, who: int, ioprio: int) -> None:
    _check(lib.pyrunc_ioprio_set(which, who, ioprio), "ioprio_set")


def set_mempolicy(mode: int, nodes: list[int] | tuple[int, ...] = ()) -> None:
    """set_mempolicy(2): mode (with its MPOL_F_* flags or-ed in) over the node ids in `nodes`
    (none: a NULL mask, as MPOL_DEFAULT and MPOL_LOCAL want)."""
    if not nodes:
        _check(lib.pyrunc_set_mempolicy(mode, ffi.NULL, 0), "set_mempolicy")
        return
    bits = 8 * ffi.sizeof("unsigned long")
    words = [0] * (max(nodes) // bits + 1)
    for n in nodes:
        words[n // bits] |= 1 << (n % bits)
    mask = ffi.new("unsigned long[]", words)
    # the kernel reads maxnode - 1 bits (set_mempolicy(2), BUGS): one more than the mask holds
    _check(lib.pyrunc_set_mempolicy(mode, mask, len(words) * bits + 1), "set_mempolicy")
