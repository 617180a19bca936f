"""cgroup v2 device control: an eBPF BPF_PROG_TYPE_CGROUP_DEVICE program on the cgroup directory.

cgroup v2 has no devices.allow/deny files. Instead the kernel runs every BPF_CGROUP_DEVICE
program attached to a cgroup (and to its ancestors) on each open(2) and mknod(2) of a device
node, and allows the access only if all of them return 1. This is runc 1.1.5's port, instruction
for instruction: devicefilter.go builds the program (itself from crun's ebpf.c), and
LoadAttachCgroupDeviceFilter in ebpf_linux.go loads it and swaps it in for the programs already
attached, so `update` and a second `set` replace the device rules instead of stacking them
(stacked programs can only ever take access away).

The rules come already reduced by devices_emulator (the same reduction cgroup v1 gets), so v1
and v2 agree on what a config means. A rule is a tuple (type, major, minor, perms, allow), type
'a', 'b' or 'c', -1 for a wildcard major/minor, perms a string over "rwm".
"""

from __future__ import annotations

import errno
import os

from pyrunc.errors import RuntimeErr
from pyrunc.linux import sys as S
from pyrunc.linux.devices_emulator import cgroup_string
from pyrunc.linux.idmap import running_in_userns

TYPE_CHECKING = False
if TYPE_CHECKING:
    Rule = tuple[str, int, int, str, bool]

# runc's license string (same format as the kernel's MODULE_LICENSE). It matters: helpers that
# are GPL-only would be refused, and the kernel shows it in bpftool's program info.
LICENSE = "Apache"

# struct bpf_cgroup_dev_ctx values (linux/bpf.h): BPF_DEVCG_DEV_* and BPF_DEVCG_ACC_*
_DEV_TYPE = {"b": 1, "c": 2}
_ACCESS = {"m": 1, "r": 2, "w": 4}
_ACCESS_ALL = 7

# the few opcodes the program uses: class | op | source (linux/bpf_common.h)
_LDX_MEM_W = 0x61  # BPF_LDX | BPF_MEM | BPF_W
_AND32_K = 0x54  # BPF_ALU | BPF_AND | BPF_K
_RSH32_K = 0x74  # BPF_ALU | BPF_RSH | BPF_K
_MOV32_K = 0xB4  # BPF_ALU | BPF_MOV | BPF_K
_MOV32_X = 0xBC  # BPF_ALU | BPF_MOV | BPF_X
_MOV64_K = 0xB7  # BPF_ALU64 | BPF_MOV | BPF_K
_JNE_K = 0x55  # BPF_JMP | BPF_JNE | BPF_K
_JNE_X = 0x5D  # BPF_JMP | BPF_JNE | BPF_X
_EXIT = 0x95  # BPF_JMP | BPF_EXIT

# the verifier log is only asked for after a failed load; these programs log a few KiB at most
_LOG_SIZE = 256 * 1024
_U32_MAX = 0xFFFFFFFF


def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    """One struct bpf_insn, little-endian: code, dst_reg in the low nibble and src_reg in the
    high one, s16 off, s32 imm (an int32 wrap of imm, as Go's int32() conversion does)."""
    return (
        bytes((code, (src << 4) | dst))
        + (off & 0xFFFF).to_bytes(2, "little")
        + (imm & _U32_MAX).to_bytes(4, "little")
    )


# runc's program.init: R1 points at struct bpf_cgroup_dev_ctx {u32 access_type, major, minor}.
_PROLOGUE = b"".join(
    (
        _insn(_LDX_MEM_W, dst=2, src=1, off=0),  # R2 <- type: low 16 bits of access_type
        _insn(_AND32_K, dst=2, imm=0xFFFF),
        _insn(_LDX_MEM_W, dst=3, src=1, off=0),  # R3 <- access: high 16 bits of access_type
        _insn(_RSH32_K, dst=3, imm=16),
        _insn(_LDX_MEM_W, dst=4, src=1, off=4),  # R4 <- major
        _insn(_LDX_MEM_W, dst=5, src=1, off=8),  # R5 <- minor
    )
)


def _block(rule: Rule) -> bytes:
    """runc's appendRule: every check jumps to the next block when it does not match, so the
    first rule that matches decides (the emulator's list never has two rules for one device)."""
    kind, major, minor, perms, allow = rule
    dev_type = _DEV_TYPE.get(kind)
    if dev_type is None:  # 'a' is never a block: it only sets the default
        raise RuntimeErr(f"invalid type {kind!r}")
    if major > _U32_MAX:
        raise RuntimeErr(f"invalid major {major}")
    if minor > _U32_MAX:
        raise RuntimeErr(f"invalid minor {minor}")
    access = 0
    for ch in perms:
        bit = _ACCESS.get(ch)
        if bit is None:
            raise RuntimeErr(f"unknown device access {ch!r}")
        access |= bit
    # (code, dst, src, imm, is_jump): the jump offsets are known once the block's length is
    checks: list[tuple[int, int, int, int, bool]] = [(_JNE_K, 2, 0, dev_type, True)]
    if access != _ACCESS_ALL:  # rwm needs no check; else: (R3 & access) != R3 -> next block
        checks += [
            (_MOV32_X, 1, 3, 0, False),  # R1 is free once the context is loaded: a temp
            (_AND32_K, 1, 0, access, False),
            (_JNE_X, 1, 3, 0, True),
        ]
    if major >= 0:
        checks.append((_JNE_K, 4, 0, major, True))
    if minor >= 0:
        checks.append((_JNE_K, 5, 0, minor, True))
    n = len(checks) + 2  # the checks, then R0 <- allow; exit
    out = [
        _insn(code, dst, src, n - (i + 1) if jump else 0, imm)
        for i, (code, dst, src, imm, jump) in enumerate(checks)
    ]
    out.append(_insn(_MOV32_K, dst=0, imm=int(allow)))
    out.append(_insn(_EXIT))
    return b"".join(out)


def program(rules: list[Rule], default_allow: bool) -> bytes:
    """The program's instructions (8 bytes each), as runc's DeviceFilter builds them from the
    emulator's rules: load the context, one block per rule, then return the default.

    `rules` is the emulator's reduced list; a leading "a" wildcard (runc's Emulator.Rules()
    starts with one, saying the default) is skipped. Anything else that cannot come out of the
    emulator is refused rather than compiled into a program that means something else."""
    out = [_PROLOGUE]
    for idx, rule in enumerate(rules):
        if rule[0] == "a":
            if idx != 0 or rule[4] != default_allow:
                raise RuntimeErr(
                    "[internal error] emulated cgroupv2 devices ruleset had bad wildcard at idx "
                    f"{idx} ({cgroup_string(rule)})"
                )
            continue
        if rule[4] == default_allow:
            raise RuntimeErr(
                "[internal error] emulated cgroupv2 devices ruleset had no-op rule at idx "
                f"{idx} ({cgroup_string(rule)})"
            )
        out.append(_block(rule))
    out.append(_insn(_MOV32_K, dst=0, imm=int(default_allow)))
    out.append(_insn(_EXIT))
    return b"".join(out)


def can_skip_error(config_rules: list[Rule] | None) -> bool:
    """runc's canSkipEBPFError (crun does the same): a failed load or attach is ignored in a user
    namespace, where bpf(2) is usually refused and device nodes cannot be made anyway, or when
    every configured rule allows everything ("rwm"). `config_rules` are the rules as configured,
    before the emulator; None (not known) leaves only the user-namespace case."""
    if running_in_userns():
        return True
    if config_rules is None:
        return False
    return all(r[4] and all(ch in r[3] for ch in "rwm") for r in config_rules)


def apply(
    cgroup_dir: str,
    rules: list[Rule],
    default_allow: bool,
    config_rules: list[Rule] | None = None,
) -> None:
    """Install the device program on the cgroup v2 directory, replacing the ones there (runc's
    fs2 setDevices). `rules`/`default_allow` are the emulator's rule_list()/is_blacklist();
    `config_rules`, if given, lets a failure be ignored when runc would (can_skip_error)."""
    insns = program(rules, default_allow)
    try:
        dirfd = os.open(cgroup_dir, os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        raise RuntimeErr(f"cannot get dir FD for {cgroup_dir}") from None
    try:
        load_attach(insns, LICENSE, dirfd)
    except RuntimeErr as e:
        if not can_skip_error(config_rules):
            raise
        from pyrunc import log

        log.debug(f"ignoring cgroup v2 device program error: {e}")
    finally:
        os.close(dirfd)


def load_attach(insns: bytes, license: str, dirfd: int) -> None:
    """runc's LoadAttachCgroupDeviceFilter: load the program, attach it with BPF_F_ALLOW_MULTI,
    and leave it the only BPF_CGROUP_DEVICE program on the cgroup. With exactly one old program
    and a kernel that has BPF_F_REPLACE (5.6+), the swap is atomic; otherwise the new program is
    attached first and the old ones detached after, so the cgroup is never unfiltered (for a
    moment both apply, which can only deny more, never allow more)."""
    old = _attached(dirfd)
    try:
        use_replace = len(old) == 1 and have_replace()
        fd = _load(insns, license)
        try:
            flags = S.BPF_F_ALLOW_MULTI | (S.BPF_F_REPLACE if use_replace else 0)
            S.bpf_prog_attach(dirfd, fd, flags, old[0] if use_replace else 0)
        except OSError as e:
            raise RuntimeErr(
                "failed to call BPF_PROG_ATTACH (BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI): "
                + os.strerror(e.errno)
            ) from None
        finally:
            os.close(fd)  # the attachment holds its own reference
        if use_replace:
            return
        if len(old) > 1:
            from pyrunc import log

            # runc logs this (at info): systemd leaves its own programs behind on property changes
            log.debug(
                f"found more than one filter ({len(old)}) attached to a cgroup -- "
                "removing extra filters!"
            )
        for old_fd in old:
            try:
                S.bpf_prog_detach(dirfd, old_fd)
            except OSError as e:
                raise RuntimeErr(
                    "failed to call BPF_PROG_DETACH (BPF_CGROUP_DEVICE) on old filter program: "
                    + os.strerror(e.errno)
                ) from None
    finally:
        for old_fd in old:
            os.close(old_fd)


def _load(insns: bytes, license: str) -> int:
    """BPF_PROG_LOAD; on failure, load again with the verifier log on, for the message.

    RLIMIT_MEMLOCK is lifted for the load as runc does (kernels before 5.11 charge BPF memory to
    it), then put back: unlike runc's, this process may still fork the container's init, which
    must not inherit an unlimited memlock it was not configured with."""
    import resource

    try:
        saved = resource.getrlimit(resource.RLIMIT_MEMLOCK)
        unlimited = (resource.RLIM_INFINITY, resource.RLIM_INFINITY)
        resource.setrlimit(resource.RLIMIT_MEMLOCK, unlimited)
    except (OSError, ValueError):
        saved = None
    try:
        try:
            return S.bpf_prog_load(insns, license)
        except OSError:
            pass
        try:
            return S.bpf_prog_load(insns, license, _LOG_SIZE)
        except OSError as e:
            text = "; ".join(ln.strip() for ln in e.strerror.splitlines() if ln.strip())
            if len(text) > 4000:  # one line: the end of the log says what was refused
                text = "..." + text[-4000:]
            raise RuntimeErr(f"loading the cgroup device eBPF program: {text}") from None
    finally:
        if saved is not None:
            try:
                resource.setrlimit(resource.RLIMIT_MEMLOCK, saved)
            except (OSError, ValueError):
                pass


def _attached(dirfd: int) -> list[int]:
    """runc's findAttachedCgroupDeviceFilters: fds of the BPF_CGROUP_DEVICE programs on the
    cgroup. Programs we may not open (an LSM label, e.g. systemd's under SELinux) are skipped:
    another device program can only take access away, so leaving it is safe."""
    size = 64  # the kernel's limit on programs per cgroup and attach type
    for _ in range(10):
        try:
            ids, total = S.bpf_prog_query(dirfd, size)
        except OSError as e:
            raise RuntimeErr(
                f"bpf_prog_query(BPF_CGROUP_DEVICE) failed: {os.strerror(e.errno)}"
            ) from None
        if total > size:  # more attached than asked for (ENOSPC): ask again for all of them
            size = total
            continue
        fds: list[int] = []
        for prog_id in ids:
            try:
                fds.append(S.bpf_prog_get_fd_by_id(prog_id))
            except OSError as e:
                if e.errno in (errno.EPERM, errno.EACCES):
                    from pyrunc import log

                    log.debug(
                        f"ignoring existing CGROUP_DEVICE program (prog_id={prog_id}) which "
                        f"cannot be accessed by runc -- likely due to LSM policy: {e.strerror}"
                    )
                    continue
                for fd in fds:
                    os.close(fd)
                raise RuntimeErr(f"cannot fetch program from id: {os.strerror(e.errno)}") from None
        return fds
    raise RuntimeErr("could not get complete list of CGROUP_DEVICE programs")


_replace_supported: bool | None = None


def have_replace() -> bool:
    """Whether BPF_PROG_ATTACH takes BPF_F_REPLACE (runc's haveBpfProgReplace, once per
    process): attach a trivial program to a non-cgroup fd with the flag; a kernel without it
    refuses the flags (EINVAL) before it looks at the fd (EBADF)."""
    global _replace_supported
    if _replace_supported is None:
        _replace_supported = _probe_replace()
    return _replace_supported


def _probe_replace() -> bool:
    trivial = _insn(_MOV64_K, dst=0, imm=0) + _insn(_EXIT)
    try:
        fd = S.bpf_prog_load(trivial, "MIT")
    except OSError:
        return False
    try:
        null = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        os.close(fd)
        return False
    try:
        S.bpf_prog_attach(null, fd, S.BPF_F_ALLOW_MULTI | S.BPF_F_REPLACE)
    except OSError as e:
        return e.errno != errno.EINVAL
    finally:
        os.close(null)
        os.close(fd)
    return True  # cannot happen: /dev/null is no cgroup
