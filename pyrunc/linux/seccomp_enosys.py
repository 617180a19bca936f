"""linux.seccomp_enosys: runc 1.1.5's patchbpf -- -ENOSYS for syscalls newer than the profile.

A profile's default action (usually ERRNO(EPERM)) also hits syscalls the profile was written
before: glibc, Go and CPython probe those (clone3, openat2, faccessat2, close_range, ...) and fall
back to the old call only on ENOSYS, so EPERM breaks them. runc therefore exports libseccomp's
program as classic BPF, prepends a stub -- per architecture: "syscall number above the largest
one the profile names for it: return ERRNO(ENOSYS)" (x86_64 and x32 share an audit arch and are
told apart by bit 30 of the number) -- and loads the result itself with seccomp(2). This is that
code, instruction for instruction (libcontainer/seccomp/patchbpf/enosys_linux.go); the jumps
are the ones golang.org/x/net/bpf assembles for runc's JumpIf/Jump, so dumps compare 1:1.

Instructions are (code, jt, jf, k) tuples until assemble() turns them into struct sock_filter
bytes in host order, which is what libseccomp exports and the kernel takes.
"""

from __future__ import annotations

import os
from sys import byteorder

from pyrunc import log
from pyrunc.errors import RuntimeErr
from pyrunc.linux import libseccomp as SC
from pyrunc.linux import sys as S

TYPE_CHECKING = False
if TYPE_CHECKING:
    Insn = tuple[int, int, int, int]

ENOSYS = 38
# SCMP_ACT_ERRNO(ENOSYS): the seccomp return value the stub gives (SECCOMP_RET_ERRNO | errno)
RET_ERRNO_ENOSYS = 0x00050000 | ENOSYS

# s390(x) multiplexes "large" syscall numbers through setup(2), nr 0: an unknown one arrives
# as 0, so it must get -ENOSYS explicitly on those architectures
S390X_MULTIPLEX_SYSCALL = 0

# classic BPF opcodes (linux/bpf_common.h) for the instructions the stub uses
BPF_LD_W_ABS = 0x20  # BPF_LD | BPF_W | BPF_ABS
BPF_JMP_JA = 0x05  # BPF_JMP | BPF_JA
BPF_RET_K = 0x06  # BPF_RET | BPF_K
_JEQ, _JGT, _JGE, _JSET = 0x15, 0x25, 0x35, 0x45  # BPF_JMP | BPF_J* | BPF_K

# golang.org/x/net/bpf's JumpTest: (opcode, swap jt/jf); the negated tests are assembled as the
# positive ones with the targets swapped, exactly as jumpToRaw does
JUMP_EQUAL = (_JEQ, False)
JUMP_NOT_EQUAL = (_JEQ, True)
JUMP_GREATER_THAN = (_JGT, False)
JUMP_LESS_THAN = (_JGE, True)
JUMP_GREATER_OR_EQUAL = (_JGE, False)
JUMP_LESS_OR_EQUAL = (_JGT, True)
JUMP_BITS_SET = (_JSET, False)
JUMP_BITS_NOT_SET = (_JSET, True)

X32_SYSCALL_BIT = 1 << 30

# AUDIT_ARCH_* (linux/audit.h), what the kernel puts in seccomp_data.arch, by libseccomp arch
# name. libseccomp's SCMP_ARCH_X32 is a made-up value: x32 runs as AUDIT_ARCH_X86_64 with bit 30
# set in the syscall number. runc 1.1.5 knows the first sixteen; RISC-V and PA-RISC, which
# this libseccomp (and so linux.seccomp.architectures here) also accepts, are added with their
# real values rather than failing the container's start.
AUDIT_ARCH_X86_64 = 0xC000003E
AUDIT_ARCH = {
    "X86": 0x40000003,
    "X86_64": AUDIT_ARCH_X86_64,
    "X32": AUDIT_ARCH_X86_64,
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
    "RISCV64": 0xC00000F3,
    "PARISC": 0x0000000F,
    "PARISC64": 0x8000000F,
}

# default actions that get no stub: a good tracer handles -ENOSYS itself, and -ENOSYS in place
# of "allow" would break, not help
_ALLOW_ACTIONS = ("SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_TRACE")


def load_abs(off: int) -> Insn:
    return (BPF_LD_W_ABS, 0, 0, off)


def jump(skip: int) -> Insn:
    return (BPF_JMP_JA, 0, 0, skip)


def ret(val: int) -> Insn:
    return (BPF_RET_K, 0, 0, val)


def jump_if(cond: tuple[int, bool], val: int, skip_true: int, skip_false: int = 0) -> Insn:
    """golang.org/x/net/bpf's JumpIf{Cond, Val, SkipTrue, SkipFalse}, assembled."""
    code, flip = cond
    jt, jf = (skip_false, skip_true) if flip else (skip_true, skip_false)
    if not (0 <= jt <= 255 and 0 <= jf <= 255):  # the stub takes long jumps before this
        raise RuntimeErr(f"error assembling -ENOSYS stub: jump {jt},{jf} out of range")
    return (code, jt, jf, val & 0xFFFFFFFF)


def _arch_name(spec_arch: object) -> str:
    """libseccomp's name (X86_64, ...) for a linux.seccomp.architectures entry; NATIVE becomes
    the real architecture so that it does not get a stub section of its own twice."""
    name = str(spec_arch).removeprefix("SCMP_ARCH_")
    if name == "NATIVE":
        native = SC.native_arch()
        for n in AUDIT_ARCH:
            if SC.ARCH.get(n) == native:
                return n
        raise RuntimeErr(f"unable to get native architecture: {native:#x} is not known")
    if not str(spec_arch).startswith("SCMP_ARCH_") or name not in SC.ARCH:
        raise RuntimeErr(f"unable to validate seccomp architecture: {spec_arch!r}")
    if name not in AUDIT_ARCH:
        raise RuntimeErr(f"cannot map architecture {spec_arch} to AUDIT_ARCH_ constant")
    return name


def _names(spec: dict) -> list[str]:
    out = []
    for call in spec.get("syscalls") or []:
        out += call.get("names") or ([call["name"]] if call.get("name") else [])
    return out


def find_last_syscalls(spec: dict) -> dict[int, dict[str, int]]:
    """The largest syscall number the profile names, per AUDIT_ARCH and per libseccomp arch
    under it (only x86_64 has two: itself and x32). Only the profile's architectures count:
    any other gets libseccomp's bad-arch action anyway. All rules count, whatever their action
    (a syscall the profile denies is still one it knows about)."""
    names = _names(spec)
    last: dict[int, dict[str, int]] = {}
    for spec_arch in spec.get("architectures") or []:
        arch = _arch_name(spec_arch)
        native = AUDIT_ARCH[arch]
        per = last.setdefault(native, {})
        if arch in per:
            continue  # NATIVE and its real name: the same entry
        largest = 0
        scmp_arch = SC.ARCH[arch]
        for name in names:
            nr = SC.resolve_syscall(scmp_arch, name)
            if nr > largest:  # unknown (-1) and pseudo-syscalls (< 0) are ignored
                largest = nr
        if largest:
            per[arch] = largest
        else:
            log.warn(f"could not find any syscalls for arch {spec_arch}")
            per.pop(arch, None)
    return last


def generate_stub(last: dict[int, dict[str, int]]) -> list[Insn]:
    """runc's generateEnosysStub. The program is built backwards, prepending to its tail,
    because jumps are forward-only and counted from the end: the jump table records each
    arch section's distance from the end, which stays true as more is prepended. Only the
    relative order matters, so dict order (the spec's) stands in for Go's map order."""
    jump_table: dict[int, int] = {}
    # fall-through rules jump into the filter; rules which jump to the ret get -ENOSYS
    tail: list[Insn] = [jump(1), ret(RET_ERRNO_ENOSYS)]

    for native, max_syscalls in last.items():
        # instructions from the tail of this section to the -ENOSYS return (not jumping falls
        # through to the filter)
        base_enosys = len(tail) - 1
        base_filter = base_enosys + 1
        section = [load_abs(0)]  # the syscall number; sizeof(int) == 4

        if not max_syscalls:
            continue  # no syscalls found for this arch: its jeq below lands on the filter
        if len(max_syscalls) == 1:
            ((arch, sysno),) = max_syscalls.items()
            if arch in ("S390", "S390X"):
                # setup(2) is only ever the multiplexer nowadays: -ENOSYS for it is fine
                section += [
                    jump_if(JUMP_NOT_EQUAL, S390X_MULTIPLEX_SYSCALL, 1),
                    ret(RET_ERRNO_ENOSYS),
                ]
            if base_enosys + 1 <= 255:
                section_tail = [
                    jump_if(JUMP_GREATER_THAN, sysno, base_enosys + 1),
                    jump(base_filter),
                ]
            else:  # a long jump
                section_tail = [
                    jump_if(JUMP_LESS_OR_EQUAL, sysno, 1),
                    jump(base_enosys + 1),
                    jump(base_filter),
                ]
            if native == AUDIT_ARCH_X86_64:
                # the other mode (x32 vs x86_64) skips the section, into the filter
                if arch == "X86_64":
                    cond = JUMP_BITS_SET
                elif arch == "X32":
                    cond = JUMP_BITS_NOT_SET
                else:
                    raise RuntimeErr(f"unknown amd64 native architecture {arch}")
                section_tail.insert(0, jump_if(cond, X32_SYSCALL_BIT, len(section_tail) - 1))
            section += section_tail
        elif len(max_syscalls) == 2:
            # x32 and x86_64 are the only overlap there is
            if native != AUDIT_ARCH_X86_64:
                raise RuntimeErr(f"unknown architecture overlap on native arch {native:#x}")
            if "X32" not in max_syscalls or "X86_64" not in max_syscalls:
                raise RuntimeErr(f"missing x32 or amd64 in overlapping x86_64 arch: {last}")
            x32_sysno, x86_sysno = max_syscalls["X32"], max_syscalls["X86_64"]
            if base_enosys + 2 <= 255:
                section += [
                    jump_if(JUMP_BITS_SET, X32_SYSCALL_BIT, 1),
                    jump_if(JUMP_GREATER_THAN, x86_sysno, base_enosys + 2, 1),
                    jump_if(JUMP_GREATER_THAN, x32_sysno, base_enosys + 1),
                    jump(base_filter),
                ]
            else:  # long jumps
                section += [
                    jump_if(JUMP_BITS_SET, X32_SYSCALL_BIT, 1),
                    jump_if(JUMP_GREATER_THAN, x86_sysno, 1, 2),
                    jump_if(JUMP_LESS_OR_EQUAL, x32_sysno, 1),
                    jump(base_enosys + 1),
                    jump(base_filter),
                ]
        else:
            raise RuntimeErr(f"invalid number of architecture overlaps: {len(max_syscalls)}")

        tail = section + tail
        jump_table[native] = len(tail)

    # any architecture missed below goes to the filter (and will meet its bad-arch action)
    tail.insert(0, jump(len(tail)))

    # the arch dispatch, again backwards: each jeq added lengthens the jumps of those before it
    for native in last:
        # forwards from here, but the table is counted from the end (no entry: to the filter)
        skip = len(tail) - jump_table.get(native, 0)
        if skip <= 255:
            tail.insert(0, jump_if(JUMP_EQUAL, native, skip))
        else:
            tail[:0] = [jump_if(JUMP_NOT_EQUAL, native, 1), jump(skip)]

    tail.insert(0, load_abs(4))  # the architecture; sizeof(int) == 4
    return tail


def generate_patch(spec: dict) -> list[Insn]:
    """The stub for this profile, or [] when it gets none."""
    # runc: "Patch the generated cBPF only when there is not a defaultErrnoRet set and it is
    # different from ENOSYS" -- but it compares the errno with the whole SCMP_ACT_ERRNO(ENOSYS)
    # value, so in practice it always patches. Kept as is: the kernel sees what runc's gives it
    # (and for a default of ERRNO(ENOSYS) the stub changes no outcome).
    if spec.get("defaultErrnoRet") == RET_ERRNO_ENOSYS:
        return []
    if spec.get("defaultAction") in _ALLOW_ACTIONS:
        log.debug("seccomp: skipping -ENOSYS stub filter generation")
        return []
    return generate_stub(find_last_syscalls(spec))


def assemble(program: list[Insn]) -> bytes:
    """struct sock_filter {u16 code; u8 jt, jf; u32 k}, host order, as the kernel reads it."""
    return b"".join(
        c.to_bytes(2, byteorder) + bytes((jt, jf)) + k.to_bytes(4, byteorder)
        for c, jt, jf, k in program
    )


def disassemble(raw: bytes) -> list[Insn]:
    if len(raw) % 8:
        raise RuntimeErr("program parsing halted mid-instruction")
    return [
        (
            int.from_bytes(raw[i : i + 2], byteorder),
            raw[i + 2],
            raw[i + 3],
            int.from_bytes(raw[i + 4 : i + 8], byteorder),
        )
        for i in range(0, len(raw), 8)
    ]


def export(f: SC.Filter) -> bytes:
    """libseccomp's program as raw sock_filter bytes. It writes them to an fd; a memfd takes
    any size without the reader thread a pipe would need (runc's goroutine), and this runs in
    the forked init, where threads are best avoided."""
    fd = os.memfd_create("pyrunc-seccomp-bpf", os.MFD_CLOEXEC)
    with open(fd, "rb", buffering=0) as fo:
        try:
            f.export_bpf(fd)
        except OSError as e:
            raise RuntimeErr(f"error exporting BPF: {e.strerror}") from None
        os.lseek(fd, 0, os.SEEK_SET)
        raw = fo.readall()
    if not raw or len(raw) % 8:
        raise RuntimeErr(
            f"parsing generated BPF filter: program of {len(raw)} bytes is not whole instructions"
        )
    return raw


def patch_filter(spec: dict, f: SC.Filter) -> bytes:
    """runc's enosysPatchFilter: the stub followed by libseccomp's program, assembled."""
    program = export(f)
    patch = generate_patch(spec)
    if log.debug_enabled():
        log.debug("seccomp: prepending -ENOSYS stub filter to user filter...")
        for i, insn in enumerate(patch):
            log.debug(f"  [{i:4d}] {fmt(insn)}")
        log.debug("  [....] --- original filter ---")
    return assemble(patch) + program


def filter_flags(spec: dict, f: SC.Filter) -> int:
    """The seccomp(2) flags libseccomp's own load would pass: LOG and SPEC_ALLOW as the profile's
    flags set them on the filter, NEW_LISTENER if any rule notifies (as runc: even one whose
    syscalls are all unknown)."""
    flags = 0
    if f.get_attr(SC.ATTR_CTL_LOG):
        flags |= S.SECCOMP_FILTER_FLAG_LOG
    if f.get_attr(SC.ATTR_CTL_SSB):
        flags |= S.SECCOMP_FILTER_FLAG_SPEC_ALLOW
    from pyrunc.linux.seccomp import uses_notify  # (loaded: it imports this module)

    if uses_notify(spec):
        flags |= S.SECCOMP_FILTER_FLAG_NEW_LISTENER
        if "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV" in (spec.get("flags") or []):
            # only meaningful (and only accepted by the kernel) with a listener
            flags |= S.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
    return flags


def load(spec: dict, f: SC.Filter) -> int:
    """runc's PatchAndLoad: patch libseccomp's filter and load it into the calling process.
    Returns the notify fd when a rule uses SCMP_ACT_NOTIFY, else -1."""
    try:
        prog = patch_filter(spec, f)
    except RuntimeErr as e:
        raise RuntimeErr(f"error patching filter: {e}") from None
    flags = filter_flags(spec, f)
    if f.get_attr(SC.ATTR_CTL_NNP):
        # no_new_privs is handled apart (build() clears the bit): only a misbuilt filter gets here
        log.warn("potentially misconfigured filter -- setting no_new_privs in seccomp path")
        try:
            S.prctl(S.PR_SET_NO_NEW_PRIVS, 1)
        except OSError as e:
            raise RuntimeErr(f"error enabling no_new_privs bit: {os.strerror(e.errno)}") from None
    try:
        fd = S.seccomp_set_filter(flags, prog)
    except OSError as e:
        raise RuntimeErr(f"error loading seccomp filter: {os.strerror(e.errno)}") from None
    return fd if flags & S.SECCOMP_FILTER_FLAG_NEW_LISTENER else -1


_JNAMES = {_JEQ: "jeq", _JGT: "jgt", _JGE: "jge", _JSET: "jset"}


def fmt(insn: Insn) -> str:
    """One instruction in bpf_dbg-like notation, for the debug log and test failures."""
    code, jt, jf, k = insn
    if code == BPF_LD_W_ABS:
        return f"ld [{k}]"
    if code == BPF_JMP_JA:
        return f"ja {k}"
    if code == BPF_RET_K:
        return f"ret {k:#x}"
    if code in _JNAMES:
        return f"{_JNAMES[code]} {k:#x},{jt},{jf}"
    return f"unknown {code:#x},{jt},{jf},{k:#x}"
