"""libseccomp's C API, thinly: the filter object linux.seccomp builds and seccomp_enosys exports.

The one module that touches the generated cffi binding (pyrunc/linux/_libseccomp.py, made by
_libseccomp_build.py at install time, out-of-line ABI mode). ABI mode so that `pip install`
on any CPython needs no compiler and no libseccomp-dev; the shared library itself
(libseccomp.so.2, Debian's libseccomp2) is opened on first use, so a host without it fails
only the containers that ask for seccomp, with one line. Importing this module (and the
generated one) and the dlopen cost ~0.6 ms, what Debian's compiled bindings cost; no ctypes,
no `re`.

Errors come back from libseccomp as negative errno values; they are raised as OSError with
that errno, so callers tell one refusal from another (EEXIST, EACCES, ...) by number.

The constants are seccomp.h's (libseccomp 2.5), as numbers: the header is not needed to build
or run, and tests/unit/test_libseccomp.py compares them with it where it is installed.
"""

from __future__ import annotations

import errno
import os

from pyrunc.linux._libseccomp import ffi

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

    Cond = tuple[int, int, int, int]  # (arg index, CMP_*, datum_a, datum_b)

SONAME = "libseccomp.so.2"

# SCMP_ACT_* (the seccomp(2) return values libseccomp puts in the filter)
ACT_KILL_PROCESS = 0x80000000
ACT_KILL_THREAD = 0x00000000
ACT_KILL = ACT_KILL_THREAD
ACT_TRAP = 0x00030000
ACT_NOTIFY = 0x7FC00000
ACT_LOG = 0x7FFC0000
ACT_ALLOW = 0x7FFF0000


def act_errno(err: int) -> int:
    """SCMP_ACT_ERRNO(x): fail the syscall with errno x (16 bits, as the kernel keeps it)."""
    return 0x00050000 | (err & 0xFFFF)


def act_trace(msg: int) -> int:
    """SCMP_ACT_TRACE(x): notify a ptrace tracer with message x."""
    return 0x7FF00000 | (msg & 0xFFFF)


# enum scmp_filter_attr
ATTR_ACT_DEFAULT = 1
ATTR_ACT_BADARCH = 2
ATTR_CTL_NNP = 3
ATTR_CTL_TSYNC = 4
ATTR_API_TSKIP = 5
ATTR_CTL_LOG = 6
ATTR_CTL_SSB = 7
ATTR_CTL_OPTIMIZE = 8
ATTR_API_SYSRAWRC = 9

# enum scmp_compare
CMP_NE = 1
CMP_LT = 2
CMP_LE = 3
CMP_EQ = 4
CMP_GE = 5
CMP_GT = 6
CMP_MASKED_EQ = 7

# SCMP_ARCH_* tokens, by libseccomp's name (the spec's names without SCMP_ARCH_): the ones
# libseccomp 2.5 knows. They are the kernel's AUDIT_ARCH_* values, except x32, which runs as
# AUDIT_ARCH_X86_64 and gets a token of its own (EM_X86_64 | __AUDIT_ARCH_LE).
ARCH_NATIVE = 0
ARCH = {
    "NATIVE": ARCH_NATIVE,
    "X86": 0x40000003,
    "X86_64": 0xC000003E,
    "X32": 0x4000003E,
    "ARM": 0x40000028,
    "AARCH64": 0xC00000B7,
    "MIPS": 0x00000008,
    "MIPS64": 0x80000008,
    "MIPS64N32": 0xA0000008,
    "MIPSEL": 0x40000008,
    "MIPSEL64": 0xC0000008,
    "MIPSEL64N32": 0xE0000008,
    "PPC": 0x00000014,
    "PPC64": 0x80000015,
    "PPC64LE": 0xC0000015,
    "S390": 0x00000016,
    "S390X": 0x80000016,
    "PARISC": 0x0000000F,
    "PARISC64": 0x8000000F,
    "RISCV64": 0xC00000F3,
}

NR_SCMP_ERROR = -1  # seccomp_syscall_resolve_name_arch: no such syscall (__NR_SCMP_ERROR)

_lib: Any = None


class NotInstalled(OSError):
    """libseccomp.so.2 could not be opened (the message is dlopen's reason)."""


def lib() -> Any:
    """The opened libseccomp.so.2, dlopen()ed on first use and kept: the init child calls
    into it after pivot_root, when the host's library is out of reach."""
    global _lib
    if _lib is None:
        try:
            _lib = ffi.dlopen(SONAME)
        except OSError as e:
            # cffi: "cannot load library 'libseccomp.so.2': <dlerror()>"; dlerror() starts
            # with the file name already
            why = str(e).partition("': ")[2] or str(e)
            if not why.startswith(SONAME):
                why = f"{SONAME}: {why}"
            raise NotInstalled(why) from None
    return _lib


def _check(rc: int) -> int:
    """libseccomp's negative errno as OSError (callers say what they were doing)."""
    if rc < 0:
        raise OSError(-rc, os.strerror(-rc))
    return rc


def version() -> tuple[int, int, int]:
    v = lib().seccomp_version()
    return (v.major, v.minor, v.micro)


def api_level() -> int:
    """seccomp_api_get(): what libseccomp found the kernel supports (5: notify, 6: notify
    with TSYNC)."""
    return lib().seccomp_api_get()


def resolve_arch(name: str) -> int:
    """The token libseccomp has for an arch name ("x86_64", lower case), 0 if none."""
    return lib().seccomp_arch_resolve_name(name.encode())


def native_arch() -> int:
    """The token of the architecture this process runs as (x86_64 here)."""
    return lib().seccomp_arch_native()


def resolve_syscall(arch: int, name: str) -> int:
    """The syscall number of `name` on `arch`: NR_SCMP_ERROR if libseccomp does not know it,
    or a negative pseudo number (__PNR_*) for a syscall this arch lacks but another has
    (socketcall, ipc on x86_64): rules take those too, for the architectures that have
    them."""
    return lib().seccomp_syscall_resolve_name_arch(arch, name.encode())


class Filter:
    """A libseccomp filter context (scmp_filter_ctx), released when the object goes."""

    __slots__ = ("_ctx",)

    def __init__(self, default_action: int) -> None:
        L = lib()
        ctx = L.seccomp_init(default_action)
        if ctx == ffi.NULL:
            raise OSError(errno.EINVAL, f"invalid default action {default_action:#x}")
        self._ctx = ffi.gc(ctx, L.seccomp_release)

    def set_attr(self, attr: int, value: int) -> None:
        _check(lib().seccomp_attr_set(self._ctx, attr, value))

    def get_attr(self, attr: int) -> int:
        out = ffi.new("uint32_t *")
        _check(lib().seccomp_attr_get(self._ctx, attr, out))
        return out[0]

    def exist_arch(self, arch: int) -> bool:
        rc = lib().seccomp_arch_exist(self._ctx, arch)
        if rc == -errno.EEXIST:  # "not present", in this one call's words
            return False
        _check(rc)
        return True

    def add_arch(self, arch: int) -> None:
        _check(lib().seccomp_arch_add(self._ctx, arch))

    def add_rule(self, action: int, syscall: int, conds: Sequence[Cond] = ()) -> None:
        """seccomp_rule_add_array: `action` when `syscall` (a number, pseudo ones included)
        is made with every condition true. libseccomp adds nothing and returns 0 for a rule
        an earlier one already covers; -EEXIST means an earlier rule gives another action
        for arguments this one also matches; -EACCES that the action is the default."""
        arr = ffi.new("struct scmp_arg_cmp[]", list(conds)) if conds else ffi.NULL
        _check(lib().seccomp_rule_add_array(self._ctx, action, syscall, len(conds), arr))

    def export_bpf(self, fd: int) -> None:
        """Write the filter to `fd` as classic BPF (struct sock_filter[], host order)."""
        _check(lib().seccomp_export_bpf(self._ctx, fd))
