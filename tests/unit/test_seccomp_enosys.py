"""runc's -ENOSYS stub (patchbpf): enosys_linux_test.go's checks, then the real kernel.

The ported tests run the stub followed by a "fall through" return in a small classic BPF
interpreter (runc runs it in golang.org/x/net/bpf's VM): each syscall must either fall through
to the profile's own filter or get SCMP_ACT_ERRNO(ENOSYS), per architecture. Long jumps never
happen with real architectures (the stub is far shorter than 255 instructions), so they are
forced with many made-up ones.

The kernel tests fork a child that sets no_new_privs, loads a patched filter through
pyrunc.linux.seccomp.load and execs a static C helper (gcc, built here) that makes raw
syscalls and prints the errnos: a number far past the table and a real syscall newer than
the profile must give ENOSYS, an old unlisted one the default EPERM, a listed one work.
No root is needed: with no_new_privs any process may load a filter.
"""

from __future__ import annotations

import errno
import os
import platform
import shutil
import subprocess
import traceback
from pathlib import Path

import pytest

from pyrunc.errors import RuntimeErr
from pyrunc.linux import libseccomp as SC
from pyrunc.linux import seccomp
from pyrunc.linux import seccomp_enosys as E
from pyrunc.linux import sys as S

seccomp.lib()  # libseccomp.so.2 must be there

RET_FALLTHROUGH = 0xDEADBEEF  # the mock filter's "on to libseccomp's filter"

# runc's testArches (libcontainer/seccomp/config.go's list), as libseccomp names them
TEST_ARCHES = [
    "X86",
    "X86_64",
    "X32",
    "ARM",
    "AARCH64",
    "MIPS",
    "MIPS64",
    "MIPS64N32",
    "MIPSEL",
    "MIPSEL64",
    "MIPSEL64N32",
    "PPC",
    "PPC64",
    "PPC64LE",
    "S390",
    "S390X",
]
TEST_ACTIONS = ["SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL"]
EXPLICIT = ["setns", "kcmp", "renameat2", "copy_file_range"]  # in increasing order of newness
IMPLICIT = ["clone", "openat", "read", "write"]
FUTURE = [1000, 7331]

# --- a classic BPF interpreter for the stub's instructions ------------------------------------


def run(program: list, nr: int, arch: int) -> int:
    """The seccomp return value for seccomp_data {nr, arch}."""
    data = {0: nr & 0xFFFFFFFF, 4: arch}
    a, pc = 0, 0
    while True:
        assert 0 <= pc < len(program), f"fell off the program at {pc}"
        code, jt, jf, k = program[pc]
        pc += 1
        if code == E.BPF_LD_W_ABS:
            a = data[k]
        elif code == E.BPF_JMP_JA:
            pc += k
        elif code == E.BPF_RET_K:
            return k
        elif code == 0x15:
            pc += jt if a == k else jf
        elif code == 0x25:
            pc += jt if a > k else jf
        elif code == 0x35:
            pc += jt if a >= k else jf
        elif code == 0x45:
            pc += jt if a & k else jf
        else:
            raise AssertionError(f"unexpected instruction {E.fmt(program[pc - 1])}")


def mock_filter(spec: dict) -> list:
    return E.generate_patch(spec) + [E.ret(RET_FALLTHROUGH)]


def fake_config(default: str, names: list[str], arches: list[str]) -> dict:
    """runc's fakeConfig: one rule per syscall, with an action other than the default."""
    action = "SCMP_ACT_KILL" if default == "SCMP_ACT_ALLOW" else "SCMP_ACT_ALLOW"
    return {
        "defaultAction": default,
        "architectures": ["SCMP_ARCH_" + a for a in arches],
        "syscalls": [{"names": [n], "action": action} for n in names],
    }


_NR: dict[tuple[str, str], int] = {}


def nr(arch: str, name: str) -> int:
    if (arch, name) not in _NR:
        n = SC.resolve_syscall(SC.ARCH[arch], name)
        assert n >= 0, f"unknown syscall {name} on {arch}"
        _NR[arch, name] = n
    return _NR[arch, name]


def check_enosys_stub(default: str, arches: list[str]) -> None:
    """runc's testEnosysStub."""
    enabled = set(arches)
    for start, end in [(0, 1), (0, 2), (1, 2), (1, 3), (1, 4), (3, 4)]:
        allowed = EXPLICIT[start:end]
        program = mock_filter(fake_config(default, allowed, arches))
        for arch in TEST_ARCHES:
            native = E.AUDIT_ARCH[arch]
            cases = [
                (s, nr(arch, s), E.RET_ERRNO_ENOSYS if i >= end else RET_FALLTHROUGH)
                for i, s in enumerate(EXPLICIT)
            ]
            cases += [(s, nr(arch, s), RET_FALLTHROUGH) for s in IMPLICIT]
            base = nr(arch, "copy_file_range")
            cases += [(f"syscall_{n + base:#x}", n + base, E.RET_ERRNO_ENOSYS) for n in FUTURE]
            if arch in ("S390", "S390X"):
                cases.append(("setup", E.S390X_MULTIPLEX_SYSCALL, E.RET_ERRNO_ENOSYS))
            for name, sysno, expected in cases:
                if arch not in enabled or default in ("SCMP_ACT_ALLOW", "SCMP_ACT_LOG"):
                    expected = RET_FALLTHROUGH
                got = run(program, sysno, native)
                assert got == expected, (
                    f"filter {arches} {allowed}: {arch}({native:#x}) {name}({sysno}): "
                    f"got {got:#x}, want {expected:#x}\n"
                    + "\n".join(f"  [{i:4d}] {E.fmt(x)}" for i, x in enumerate(program))
                )


@pytest.mark.parametrize("arch", TEST_ARCHES)
@pytest.mark.parametrize("action", TEST_ACTIONS)
def test_enosys_stub_single_arch(arch: str, action: str) -> None:
    check_enosys_stub(action, [arch])


@pytest.mark.parametrize("action", TEST_ACTIONS)
def test_enosys_stub_multi_arch(action: str) -> None:
    # runc's loop, s390x never last included
    for end in range(len(TEST_ARCHES)):
        for start in range(end):
            arches = TEST_ARCHES[start:end]
            if len(arches) > 1:
                check_enosys_stub(action, arches)


def test_stub_instructions() -> None:
    """The exact program for the simplest case, as runc's debug log prints it."""
    spec = fake_config("SCMP_ACT_ERRNO", ["setns"], ["X86_64"])
    assert [E.fmt(x) for x in E.generate_patch(spec)] == [
        "ld [4]",
        "jeq 0xc000003e,1,0",
        "ja 6",  # to the filter
        "ld [0]",
        "jset 0x40000000,1,0",  # x32: not this section's
        f"jgt {nr('X86_64', 'setns'):#x},2,0",
        "ja 2",
        "ja 1",
        "ret 0x50026",
    ]
    raw = E.assemble(E.generate_patch(spec))
    assert len(raw) == 9 * 8 and E.disassemble(raw) == E.generate_patch(spec)


def test_audit_arch_values() -> None:
    """The AUDIT_ARCH table against libseccomp's SCMP_ARCH_* (the same values but for x32)."""
    for name, audit in E.AUDIT_ARCH.items():
        if name != "X32":
            assert SC.ARCH[name] == audit, name


@pytest.mark.parametrize("pair", [True, False])
def test_long_jumps(pair: bool) -> None:
    """More sections than a conditional jump can cross: every jump becomes a long one."""
    last: dict[int, dict[str, int]] = {0x1000 + i: {"FAKE": 100 + i} for i in range(120)}
    last[E.AUDIT_ARCH["S390X"]] = {"S390X": 50}
    x86 = {"X86_64": 300, "X32": 0x40000200} if pair else {"X32": 0x40000200}
    last[E.AUDIT_ARCH_X86_64] = x86
    program = E.generate_stub(last) + [E.ret(RET_FALLTHROUGH)]
    assert len(program) > 600
    assert all(jt <= 255 and jf <= 255 for _, jt, jf, _ in program)
    enosys, through = E.RET_ERRNO_ENOSYS, RET_FALLTHROUGH
    for i in range(120):
        assert run(program, 100 + i, 0x1000 + i) == through
        assert run(program, 101 + i, 0x1000 + i) == enosys
    assert run(program, 51, E.AUDIT_ARCH["S390X"]) == enosys
    assert run(program, 0, E.AUDIT_ARCH["S390X"]) == enosys
    assert run(program, 49, E.AUDIT_ARCH["S390X"]) == through
    assert run(program, 9999, 0x12345678) == through  # an arch not in the profile
    assert run(program, 0x40000200, E.AUDIT_ARCH_X86_64) == through
    assert run(program, 0x40000201, E.AUDIT_ARCH_X86_64) == enosys
    assert run(program, 300, E.AUDIT_ARCH_X86_64) == through
    assert run(program, 301, E.AUDIT_ARCH_X86_64) == (enosys if pair else through)


def test_no_stub() -> None:
    """Permissive defaults get no stub; runc's defaultErrnoRet check is kept as written (it
    compares the errno with the whole SCMP_ACT_ERRNO(ENOSYS) value)."""
    for default in ("SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_TRACE"):
        assert E.generate_patch(fake_config(default, ["setns"], ["X86_64"])) == []
    spec = fake_config("SCMP_ACT_ERRNO", ["setns"], ["X86_64"])
    assert E.generate_patch({**spec, "defaultErrnoRet": errno.ENOSYS}) != []
    assert E.generate_patch({**spec, "defaultErrnoRet": E.RET_ERRNO_ENOSYS}) == []


def test_no_known_syscalls() -> None:
    """An arch none of whose syscalls resolve (or whose only one is nr 0) gets no section:
    its jeq leads straight to the filter."""
    spec = fake_config("SCMP_ACT_ERRNO", ["read", "no_such_syscall"], ["X86_64"])
    assert E.find_last_syscalls(spec) == {E.AUDIT_ARCH_X86_64: {}}
    program = mock_filter(spec)
    assert run(program, 1000, E.AUDIT_ARCH_X86_64) == RET_FALLTHROUGH
    assert E.find_last_syscalls({**spec, "architectures": []}) == {}


def test_native_arch() -> None:
    """SCMP_ARCH_NATIVE is the real architecture, not a second entry for it."""
    native = next(n for n in E.AUDIT_ARCH if SC.ARCH[n] == SC.native_arch())
    spec = fake_config("SCMP_ACT_ERRNO", ["setns"], [native, "NATIVE"])
    assert E.find_last_syscalls(spec) == {E.AUDIT_ARCH[native]: {native: nr(native, "setns")}}


def test_filter_flags() -> None:
    spec = fake_config("SCMP_ACT_ERRNO", ["setns"], ["X86_64"])
    assert E.filter_flags(spec, seccomp.build(spec)) == 0
    spec["flags"] = ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"]
    assert E.filter_flags(spec, seccomp.build(spec)) == (
        S.SECCOMP_FILTER_FLAG_LOG | S.SECCOMP_FILTER_FLAG_SPEC_ALLOW
    )
    spec["syscalls"].append({"names": ["getppid"], "action": "SCMP_ACT_NOTIFY"})
    assert E.filter_flags(spec, seccomp.build(spec)) & S.SECCOMP_FILTER_FLAG_NEW_LISTENER


def test_patch_filter_is_stub_then_export() -> None:
    spec = fake_config("SCMP_ACT_ERRNO", EXPLICIT, ["X86_64", "X32", "X86"])
    f = seccomp.build(spec)
    raw = E.patch_filter(spec, f)
    stub = E.assemble(E.generate_patch(spec))
    assert raw == stub + E.export(f)


def test_export_huge_filter() -> None:
    """runc's TestDisassembleHugeFilterDoesNotHang: a program far larger than a pipe buffer."""
    f = SC.Filter(SC.ACT_ALLOW)
    for i in range(1, 10000):
        f.add_rule(SC.ACT_KILL, i)
    raw = E.export(f)
    assert len(raw) > 65536 and len(raw) % 8 == 0


def test_set_filter_rejects_bad_programs() -> None:
    for bad in (b"", b"\0" * 7, b"\0" * 8 * 0x10000):
        with pytest.raises(OSError) as e:
            S.seccomp_set_filter(0, bad)
        assert e.value.errno == errno.EINVAL


# --- the real kernel -----------------------------------------------------------------------

HELPER_C = r"""
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <unistd.h>
#include <sys/syscall.h>
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
static void t(const char *name, long nr) {
    long r;
    errno = 0;
    r = syscall(nr, 0L, 0L, 0L);
    printf("%s %ld %d\n", name, r, r < 0 ? errno : 0);
}
int main(void) {
    t("future", 1000);
    t("pidfd_open", SYS_pidfd_open);
    t("getppid", SYS_getppid);
    t("getpid", SYS_getpid);
    fflush(stdout);
    return 0;
}
"""

# what the child needs from the filter load to the helper's exit; getppid is left out (an old
# syscall the profile does not list: the default action), rseq is the newest listed
ALLOWED = """read write writev lseek close exit exit_group execve brk arch_prctl set_tid_address
set_robust_list rseq prlimit64 readlink readlinkat getrandom mprotect mmap munmap fstat
newfstatat uname getpid rt_sigaction rt_sigprocmask rt_sigreturn futex ioctl""".split()


def _arches() -> list[str]:
    if platform.machine() == "x86_64":  # docker's default profile's three: the x32 pair case
        return ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    return ["SCMP_ARCH_NATIVE"]


def _in_child(spec: dict, then: object) -> tuple[int, bytes]:
    """Fork; the child points its stdout at a pipe, sets no_new_privs, loads the patched filter
    and calls then(fd) with the notify fd. Returns the child's exit code (reaped by pid) and
    what it wrote to stdout."""
    f = seccomp.build(spec)  # as the runtime does: compiled before the fork
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 127
        try:
            os.close(r)
            os.dup2(w, 1)
            S.prctl(S.PR_SET_NO_NEW_PRIVS, 1)
            fd = seccomp.load(f, spec)
            then(fd)  # type: ignore[operator]
            code = 0
        except BaseException:
            os.write(2, traceback.format_exc().encode())
        finally:
            os._exit(code)
    os.close(w)
    out = b""
    with os.fdopen(r, "rb") as rf:
        out = rf.read()
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), out


@pytest.fixture(scope="module")
def helper(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not shutil.which("gcc"):
        pytest.skip("needs gcc to build the static syscall helper")
    d = tmp_path_factory.mktemp("enosys")
    (d / "t.c").write_text(HELPER_C)
    p = subprocess.run(
        ["gcc", "-static", "-O0", "-o", str(d / "t"), str(d / "t.c")], capture_output=True
    )
    if p.returncode != 0:
        pytest.skip(f"gcc -static failed (no static libc?): {p.stderr.decode()[-300:]}")
    return d / "t"


def test_kernel_enosys(helper: Path) -> None:
    spec = {
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": _arches(),
        "syscalls": [{"names": ALLOWED, "action": "SCMP_ACT_ALLOW"}],
    }

    def then(fd: int) -> None:
        assert fd == -1
        os.execv(str(helper), [str(helper)])

    code, out = _in_child(spec, then)
    assert code == 0, out
    got = {
        name: (int(ret), int(err))
        for name, ret, err in (ln.split() for ln in out.decode().splitlines())
    }
    assert got["future"] == (-1, errno.ENOSYS)
    assert got["pidfd_open"] == (-1, errno.ENOSYS)  # real, but newer than anything listed
    assert got["getppid"] == (-1, errno.EPERM)  # old, unlisted: the default action
    assert got["getpid"][1] == 0 and got["getpid"][0] > 0  # listed: works


def test_kernel_errno_ret_and_unpatched(helper: Path) -> None:
    """Without the stub (a permissive default) syscall 1000 is the kernel's own ENOSYS and
    getppid works; with an ERRNO default of ENXIO new syscalls still get ENOSYS."""

    def then(fd: int) -> None:
        os.execv(str(helper), [str(helper)])

    spec = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": _arches(),
        "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 42}],
    }
    code, out = _in_child(spec, then)
    assert code == 0, out
    lines = dict(ln.split(" ", 1) for ln in out.decode().splitlines())
    assert lines["getpid"] == "-1 42" and lines["future"] == f"-1 {errno.ENOSYS}"
    assert not lines["getppid"].startswith("-")

    spec = {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": errno.ENXIO,
        "architectures": _arches(),
        "syscalls": [{"names": ALLOWED, "action": "SCMP_ACT_ALLOW"}],
    }
    code, out = _in_child(spec, then)
    assert code == 0, out
    lines = dict(ln.split(" ", 1) for ln in out.decode().splitlines())
    assert lines["future"] == f"-1 {errno.ENOSYS}"
    assert lines["getppid"] == f"-1 {errno.ENXIO}"


def test_kernel_notify_listener() -> None:
    """A SCMP_ACT_NOTIFY rule makes load() ask for SECCOMP_FILTER_FLAG_NEW_LISTENER and return
    the listener fd (the fd the agent gets); the profile's LOG flag is passed along too."""
    if SC.api_level() < 6:
        pytest.skip("libseccomp API level < 6: no notify support")
    spec = {
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": _arches(),
        "flags": ["SECCOMP_FILTER_FLAG_LOG"],
        "syscalls": [
            {"names": ALLOWED, "action": "SCMP_ACT_ALLOW"},
            {"names": ["getppid"], "action": "SCMP_ACT_NOTIFY"},
        ],
    }

    def then(fd: int) -> None:
        os.write(1, f"{fd} {os.readlink(f'/proc/self/fd/{fd}')}".encode())

    code, out = _in_child(spec, then)
    assert code == 0, out
    fd, link = out.decode().split(" ", 1)
    assert int(fd) >= 0 and link == "anon_inode:seccomp notify"


def test_load_error_is_wrapped() -> None:
    """Without no_new_privs or CAP_SYS_ADMIN the kernel refuses: runc's message chain."""
    if "NoNewPrivs:\t1" in Path("/proc/self/status").read_text():
        pytest.skip("this process already has no_new_privs: the kernel would accept")
    spec = fake_config("SCMP_ACT_ERRNO", ALLOWED, ["NATIVE"])
    f = seccomp.build(spec)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 127
        try:
            os.close(r)
            S.capset(0, 0, 0)  # no CAP_SYS_ADMIN (root or not), and no no_new_privs
            try:
                seccomp.load(f, spec)
                os.write(w, b"loaded")
            except RuntimeErr as e:
                os.write(w, str(e).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    with os.fdopen(r, "rb") as rf:
        out = rf.read().decode()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert out == (
        "error loading seccomp filter into kernel: error loading seccomp filter: Permission denied"
    )
