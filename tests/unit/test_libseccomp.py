"""The libseccomp binding (pyrunc/linux/libseccomp.py): its constants and struct layout against
the real library and, where libseccomp-dev and gcc are installed, seccomp.h itself; its errors;
and the filter building in linux.seccomp that runc's semantics rest on (pseudo-syscalls,
duplicated and conflicting rules).

The binding is ABI mode: nothing checks the numbers at build time, so these tests are where a
wrong constant or a mis-declared struct would show.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from pyrunc.errors import RuntimeErr
from pyrunc.linux import libseccomp as SC
from pyrunc.linux import seccomp

HEADER = "/usr/include/seccomp.h"
X86_ARCHES = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]

_ACTS = {
    "SCMP_ACT_KILL_PROCESS": SC.ACT_KILL_PROCESS,
    "SCMP_ACT_KILL_THREAD": SC.ACT_KILL_THREAD,
    "SCMP_ACT_KILL": SC.ACT_KILL,
    "SCMP_ACT_TRAP": SC.ACT_TRAP,
    "SCMP_ACT_NOTIFY": SC.ACT_NOTIFY,
    "SCMP_ACT_LOG": SC.ACT_LOG,
    "SCMP_ACT_ALLOW": SC.ACT_ALLOW,
    "SCMP_ACT_ERRNO(1)": SC.act_errno(1),
    "SCMP_ACT_ERRNO(0x12345)": SC.act_errno(0x12345),
    "SCMP_ACT_TRACE(7)": SC.act_trace(7),
}
_ATTRS = {
    f"SCMP_FLTATR_{n}": getattr(SC, f"ATTR_{n}")
    for n in ("ACT_DEFAULT", "ACT_BADARCH", "CTL_NNP", "CTL_TSYNC", "API_TSKIP", "CTL_LOG",
              "CTL_SSB", "CTL_OPTIMIZE", "API_SYSRAWRC")
}
_CMPS = {
    f"SCMP_CMP_{n}": getattr(SC, f"CMP_{n}")
    for n in ("NE", "LT", "LE", "EQ", "GE", "GT", "MASKED_EQ")
}
_ARCHES = {f"SCMP_ARCH_{n}": v for n, v in SC.ARCH.items()}
_OTHER = {"__NR_SCMP_ERROR": SC.NR_SCMP_ERROR}


def test_arch_tokens_are_the_librarys() -> None:
    for name, token in SC.ARCH.items():
        if name != "NATIVE":
            assert SC.resolve_arch(name.lower()) == token, name
    assert SC.native_arch() in SC.ARCH.values()


def _header_values(tmp_path: Path, exprs: list[str]) -> list[int]:
    """Each C expression evaluated by a program compiled against the system's seccomp.h."""
    if not os.path.exists(HEADER) or not shutil.which("gcc"):
        pytest.skip("seccomp.h (libseccomp-dev) or gcc not installed")
    body = "".join(f'    printf("%lld\\n", (long long)({e}));\n' for e in exprs)
    src = tmp_path / "h.c"
    src.write_text(
        "#include <stdio.h>\n#include <stddef.h>\n#include <seccomp.h>\n"
        f"int main(void) {{\n{body}    return 0;\n}}\n"
    )
    exe = tmp_path / "h"
    # macros and enums only: no libseccomp symbol is used, so no -lseccomp either
    subprocess.run(["gcc", "-o", str(exe), str(src)], check=True, capture_output=True)
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


def test_constants_match_the_header(tmp_path: Path) -> None:
    table = {**_ACTS, **_ATTRS, **_CMPS, **_ARCHES, **_OTHER}
    got = _header_values(tmp_path, [f"({e}) & 0xFFFFFFFFULL" for e in table])
    for (name, ours), theirs in zip(table.items(), got, strict=True):
        assert ours & 0xFFFFFFFF == theirs, name


def test_struct_layout_matches_the_header(tmp_path: Path) -> None:
    exprs = [
        "sizeof(struct scmp_arg_cmp)",
        "offsetof(struct scmp_arg_cmp, arg)",
        "offsetof(struct scmp_arg_cmp, op)",
        "offsetof(struct scmp_arg_cmp, datum_a)",
        "offsetof(struct scmp_arg_cmp, datum_b)",
        "sizeof(enum scmp_compare)",
        "sizeof(enum scmp_filter_attr)",
        "sizeof(struct scmp_version)",
    ]
    ours = [
        SC.ffi.sizeof("struct scmp_arg_cmp"),
        SC.ffi.offsetof("struct scmp_arg_cmp", "arg"),
        SC.ffi.offsetof("struct scmp_arg_cmp", "op"),
        SC.ffi.offsetof("struct scmp_arg_cmp", "datum_a"),
        SC.ffi.offsetof("struct scmp_arg_cmp", "datum_b"),
        SC.ffi.sizeof("int"),  # how the binding passes both enums
        SC.ffi.sizeof("int"),
        SC.ffi.sizeof("struct scmp_version"),
    ]
    assert _header_values(tmp_path, exprs) == ours


def test_version_and_api_level() -> None:
    assert SC.version() >= (2, 5, 0)
    assert SC.api_level() >= 1


def test_resolve_syscall() -> None:
    assert SC.resolve_syscall(SC.ARCH["X86_64"], "read") == 0
    assert SC.resolve_syscall(SC.ARCH["X86"], "socketcall") == 102
    assert SC.resolve_syscall(SC.ARCH["X86_64"], "no_such_syscall") == SC.NR_SCMP_ERROR
    # a syscall x86_64 lacks: a pseudo number (__PNR_*), not "unknown"
    assert SC.resolve_syscall(SC.ARCH["X86_64"], "socketcall") < SC.NR_SCMP_ERROR


def test_filter_errors_carry_the_errno() -> None:
    f = SC.Filter(SC.act_errno(1))
    assert f.exist_arch(SC.ARCH_NATIVE) and not f.exist_arch(SC.ARCH["X86"])
    f.add_arch(SC.ARCH["X86"])
    with pytest.raises(OSError) as e:
        f.add_arch(SC.ARCH["X86"])
    assert e.value.errno == errno.EEXIST
    with pytest.raises(OSError) as e:
        f.add_rule(SC.act_errno(1), 0)  # the default action
    assert e.value.errno == errno.EACCES
    f.set_attr(SC.ATTR_CTL_LOG, 1)
    assert f.get_attr(SC.ATTR_CTL_LOG) == 1
    with pytest.raises(OSError):
        SC.Filter(0x12345678)  # not an action


def test_rules_libseccomp_accepts_or_refuses() -> None:
    """What seccomp_rule_add_array does with a rule an earlier one covers: nothing (0); with
    one that gives another action for arguments an earlier one also matches: -EEXIST."""
    f = SC.Filter(SC.act_errno(1))
    socket = SC.resolve_syscall(SC.ARCH_NATIVE, "socket")
    ne9 = ((2, SC.CMP_NE, 9, 0),)
    f.add_rule(SC.ACT_ALLOW, socket, ne9)
    f.add_rule(SC.ACT_ALLOW, socket, ne9)  # the same again
    with pytest.raises(OSError) as e:
        f.add_rule(SC.act_errno(13), socket, ne9)
    assert e.value.errno == errno.EEXIST
    f.add_rule(SC.ACT_ALLOW, socket)  # unconditional: wider, replaces the chain
    f.add_rule(SC.ACT_ALLOW, socket, ne9)  # now covered


def test_missing_library_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(SC, "SONAME", "libseccomp-pyrunc-test.so.2")
    monkeypatch.setattr(SC, "_lib", None)
    with pytest.raises(RuntimeErr) as e:
        seccomp.lib()
    msg = str(e.value)
    assert msg.startswith(
        "linux.seccomp: libseccomp is not installed (libseccomp-pyrunc-test.so.2: "
        "cannot open shared object file"
    ), msg
    assert "\n" not in msg


# --- linux.seccomp's use of it -------------------------------------------------------------

_SOCKET_EINVAL = {  # podman 4.3's profile without CAP_AUDIT_WRITE, in its order
    "names": ["socket"],
    "action": "SCMP_ACT_ERRNO",
    "errnoRet": 22,
    "args": [
        {"index": 0, "value": 16, "op": "SCMP_CMP_EQ"},
        {"index": 2, "value": 9, "op": "SCMP_CMP_EQ"},
    ],
}
_SOCKET_NE_AUDIT = {
    "names": ["socket"],
    "action": "SCMP_ACT_ALLOW",
    "args": [{"index": 2, "value": 9, "op": "SCMP_CMP_NE"}],
}
_SOCKET_NE_NETLINK = {
    "names": ["socket"],
    "action": "SCMP_ACT_ALLOW",
    "args": [{"index": 0, "value": 16, "op": "SCMP_CMP_NE"}],
}


def _podman(*rules: dict) -> dict:
    return {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 38,
        "architectures": X86_ARCHES,
        "syscalls": [{"names": ["read", "socketcall"], "action": "SCMP_ACT_ALLOW"}, *rules],
    }


def test_podman_socket_rules_build() -> None:
    """podman 4.3's --cap-drop all profile: runc builds it; pyrunc used to fail at the third
    socket rule with EEXIST, because it dropped socketcall (a pseudo-syscall on x86_64) and
    libseccomp's x86 filter then met the socket rules rewritten as socketcall ones."""
    spec = _podman(_SOCKET_EINVAL, _SOCKET_NE_AUDIT, _SOCKET_NE_NETLINK, _SOCKET_NE_AUDIT)
    assert len(seccomp_export(spec)) > 0


def test_pseudo_syscall_rules_reach_the_arch_that_has_them() -> None:
    """socketcall only exists on x86 (nr 102): the x86 part of the program tests for it."""
    spec = _podman()
    with_it = seccomp_export(spec)
    spec["syscalls"][0]["names"] = ["read"]
    without = seccomp_export(spec)
    assert with_it != without
    spec["architectures"] = ["SCMP_ARCH_X86_64"]  # no x86 at all: the rule is a no-op
    spec["syscalls"][0]["names"] = ["read", "socketcall"]
    a = seccomp_export(spec)
    spec["syscalls"][0]["names"] = ["read"]
    assert a == seccomp_export(spec)


def test_duplicate_rules_are_skipped() -> None:
    once = seccomp_export(_podman(_SOCKET_NE_AUDIT))
    assert seccomp_export(_podman(_SOCKET_NE_AUDIT, _SOCKET_NE_AUDIT)) == once


def test_same_arguments_other_action_fails_as_runc() -> None:
    """runc 1.1.5: "error adding seccomp rule for syscall socket: file exists"."""
    other = {**_SOCKET_NE_AUDIT, "action": "SCMP_ACT_ERRNO", "errnoRet": 13}
    with pytest.raises(RuntimeErr) as e:
        seccomp.build(_podman(_SOCKET_NE_AUDIT, other))
    msg = str(e.value)
    assert msg.startswith("linux.seccomp.syscalls[2]: error adding rule for syscall socket:"), msg
    assert "File exists" in msg


def test_socket_rules_conflict_on_x86_without_socketcall() -> None:
    """Without the socketcall ALLOW, libseccomp rewrites x86's socket rules into socketcall
    ones whose first argument is the call number: "arg0 != AF_NETLINK" becomes an
    unconditional ALLOW that conflicts with the EINVAL rule. runc fails the same way."""
    spec = _podman(_SOCKET_EINVAL, _SOCKET_NE_AUDIT, _SOCKET_NE_NETLINK)
    spec["syscalls"][0]["names"] = ["read"]
    with pytest.raises(RuntimeErr) as e:
        seccomp.build(spec)
    assert str(e.value).startswith("linux.seccomp.syscalls[3]: error adding rule"), e.value


def seccomp_export(spec: dict) -> bytes:
    from pyrunc.linux import seccomp_enosys

    return seccomp_enosys.export(seccomp.build(spec))
