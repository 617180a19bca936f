"""The cgroup v2 device program: runc 1.1.5's devicefilter_test.go instruction for instruction,
then the real kernel enforcing it.

The instruction tests disassemble our bytes into cilium/ebpf's text form (the form runc's test
compares) so runc's expected dumps can be pasted verbatim. runc prints jumps before they are
resolved ("off: -1 ... <block-N>"); here the real offset is resolved back to the block label
that runc's dump puts at the target, so a wrong offset shows up as a wrong or missing label.

The kernel tests need root and a cgroup2 mount at /sys/fs/cgroup/unified (this host is hybrid:
the v1 devices controller is elsewhere, yet BPF_CGROUP_DEVICE programs on a v2 directory are
enforced for the processes in it). A forked child joins a fresh v2 cgroup, tries device
accesses and reports the errnos over a pipe; the parent reaps it by pid and removes the cgroup.
"""

from __future__ import annotations

import errno
import itertools
import json
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyrunc.errors import RuntimeErr
from pyrunc.linux import bpf_devices as B
from pyrunc.linux import devices_emulator

W = -1

# --- a disassembler for the opcodes the program uses -----------------------------------------

_NAMES = {
    0x61: "LdXMemW",
    0x54: "And32Imm",
    0x74: "RSh32Imm",
    0xB4: "Mov32Imm",
    0xBC: "Mov32Reg",
    0x55: "JNEImm",
    0x5D: "JNEReg",
    0x95: "Exit",
}


def _decode(prog: bytes) -> list[tuple[int, int, int, int, int]]:
    assert len(prog) % 8 == 0
    out = []
    for i in range(0, len(prog), 8):
        code, regs = prog[i], prog[i + 1]
        off = int.from_bytes(prog[i + 2 : i + 4], "little", signed=True)
        imm = int.from_bytes(prog[i + 4 : i + 8], "little", signed=True)
        out.append((code, regs & 0xF, regs >> 4, off, imm))
    return out


def _normalize(text: str) -> list[str]:
    """runc's hash(): trimmed lines, no blanks, no // comments."""
    lines = (ln.strip() for ln in text.splitlines())
    return [ln for ln in lines if ln and not ln.startswith("//")]


def _labels(expected: list[str]) -> dict[int, str]:
    """Instruction index -> the block label runc's dump puts in front of it."""
    labels: dict[int, str] = {}
    pending = None
    for ln in expected:
        if ln.endswith(":") and ln.startswith("block-"):
            pending = ln[:-1]
        elif pending is not None:
            labels[int(ln.split(":", 1)[0])] = pending
            pending = None
    return labels


def _disasm(prog: bytes, labels: dict[int, str]) -> list[str]:
    out = []
    for i, (code, dst, src, off, imm) in enumerate(_decode(prog)):
        if i in labels:
            out.append(labels[i] + ":")
        name = _NAMES.get(code, f"op{code:#x}")
        if code == 0x95:
            text = "Exit"
        elif code == 0x61:
            text = f"{name} dst: r{dst} src: r{src} off: {off} imm: {imm}"
        elif code == 0xBC:
            text = f"{name} dst: r{dst} src: r{src}"
        elif code in (0x55, 0x5D):
            target = labels.get(i + 1 + off, f"bad-target-{i + 1 + off}")
            arg = f"imm: {imm}" if code == 0x55 else f"src: r{src}"
            text = f"{name} dst: r{dst} off: -1 {arg} <{target}>"
        else:
            text = f"{name} dst: r{dst} imm: {imm}"
        out.append(f"{i}: {text}")
    return out


def _check(prog: bytes, expected_text: str) -> None:
    expected = _normalize(expected_text)
    assert _disasm(prog, _labels(expected)) == expected


# --- devicefilter_test.go's expected dumps, verbatim ---------------------------------------------

NIL = """
// load parameters into registers
        0: LdXMemW dst: r2 src: r1 off: 0 imm: 0
        1: And32Imm dst: r2 imm: 65535
        2: LdXMemW dst: r3 src: r1 off: 0 imm: 0
        3: RSh32Imm dst: r3 imm: 16
        4: LdXMemW dst: r4 src: r1 off: 4 imm: 0
        5: LdXMemW dst: r5 src: r1 off: 8 imm: 0
block-0:
// return 0 (reject)
        6: Mov32Imm dst: r0 imm: 0
        7: Exit
"""

BUILT_IN_ALLOW_LIST = """
// load parameters into registers
        0: LdXMemW dst: r2 src: r1 off: 0 imm: 0
        1: And32Imm dst: r2 imm: 65535
        2: LdXMemW dst: r3 src: r1 off: 0 imm: 0
        3: RSh32Imm dst: r3 imm: 16
        4: LdXMemW dst: r4 src: r1 off: 4 imm: 0
        5: LdXMemW dst: r5 src: r1 off: 8 imm: 0
block-0:
// (b, wildcard, wildcard, m, true)
        6: JNEImm dst: r2 off: -1 imm: 1 <block-1>
        7: Mov32Reg dst: r1 src: r3
        8: And32Imm dst: r1 imm: 1
        9: JNEReg dst: r1 off: -1 src: r3 <block-1>
        10: Mov32Imm dst: r0 imm: 1
        11: Exit
block-1:
// (c, wildcard, wildcard, m, true)
        12: JNEImm dst: r2 off: -1 imm: 2 <block-2>
        13: Mov32Reg dst: r1 src: r3
        14: And32Imm dst: r1 imm: 1
        15: JNEReg dst: r1 off: -1 src: r3 <block-2>
        16: Mov32Imm dst: r0 imm: 1
        17: Exit
block-2:
        18: JNEImm dst: r2 off: -1 imm: 2 <block-3>
        19: JNEImm dst: r4 off: -1 imm: 1 <block-3>
        20: JNEImm dst: r5 off: -1 imm: 3 <block-3>
        21: Mov32Imm dst: r0 imm: 1
        22: Exit
block-3:
        23: JNEImm dst: r2 off: -1 imm: 2 <block-4>
        24: JNEImm dst: r4 off: -1 imm: 1 <block-4>
        25: JNEImm dst: r5 off: -1 imm: 5 <block-4>
        26: Mov32Imm dst: r0 imm: 1
        27: Exit
block-4:
        28: JNEImm dst: r2 off: -1 imm: 2 <block-5>
        29: JNEImm dst: r4 off: -1 imm: 1 <block-5>
        30: JNEImm dst: r5 off: -1 imm: 7 <block-5>
        31: Mov32Imm dst: r0 imm: 1
        32: Exit
block-5:
        33: JNEImm dst: r2 off: -1 imm: 2 <block-6>
        34: JNEImm dst: r4 off: -1 imm: 1 <block-6>
        35: JNEImm dst: r5 off: -1 imm: 8 <block-6>
        36: Mov32Imm dst: r0 imm: 1
        37: Exit
block-6:
        38: JNEImm dst: r2 off: -1 imm: 2 <block-7>
        39: JNEImm dst: r4 off: -1 imm: 1 <block-7>
        40: JNEImm dst: r5 off: -1 imm: 9 <block-7>
        41: Mov32Imm dst: r0 imm: 1
        42: Exit
block-7:
        43: JNEImm dst: r2 off: -1 imm: 2 <block-8>
        44: JNEImm dst: r4 off: -1 imm: 5 <block-8>
        45: JNEImm dst: r5 off: -1 imm: 0 <block-8>
        46: Mov32Imm dst: r0 imm: 1
        47: Exit
block-8:
        48: JNEImm dst: r2 off: -1 imm: 2 <block-9>
        49: JNEImm dst: r4 off: -1 imm: 5 <block-9>
        50: JNEImm dst: r5 off: -1 imm: 2 <block-9>
        51: Mov32Imm dst: r0 imm: 1
        52: Exit
block-9:
// tuntap (c, 10, 200, rwm, allow)
        53: JNEImm dst: r2 off: -1 imm: 2 <block-10>
        54: JNEImm dst: r4 off: -1 imm: 10 <block-10>
        55: JNEImm dst: r5 off: -1 imm: 200 <block-10>
        56: Mov32Imm dst: r0 imm: 1
        57: Exit
block-10:
// /dev/pts (c, 136, wildcard, rwm, true)
        58: JNEImm dst: r2 off: -1 imm: 2 <block-11>
        59: JNEImm dst: r4 off: -1 imm: 136 <block-11>
        60: Mov32Imm dst: r0 imm: 1
        61: Exit
block-11:
        62: Mov32Imm dst: r0 imm: 0
        63: Exit
"""

PRIVILEGED = """
// load parameters into registers
        0: LdXMemW dst: r2 src: r1 off: 0 imm: 0
        1: And32Imm dst: r2 imm: 65535
        2: LdXMemW dst: r3 src: r1 off: 0 imm: 0
        3: RSh32Imm dst: r3 imm: 16
        4: LdXMemW dst: r4 src: r1 off: 4 imm: 0
        5: LdXMemW dst: r5 src: r1 off: 8 imm: 0
block-0:
// return 1 (accept)
        6: Mov32Imm dst: r0 imm: 1
        7: Exit
"""

PRIVILEGED_EXCEPT_SINGLE_DEVICE = """
// load parameters into registers
         0: LdXMemW dst: r2 src: r1 off: 0 imm: 0
         1: And32Imm dst: r2 imm: 65535
         2: LdXMemW dst: r3 src: r1 off: 0 imm: 0
         3: RSh32Imm dst: r3 imm: 16
         4: LdXMemW dst: r4 src: r1 off: 4 imm: 0
         5: LdXMemW dst: r5 src: r1 off: 8 imm: 0
block-0:
// return 0 (reject) if type==b && major == 8 && minor == 0
         6: JNEImm dst: r2 off: -1 imm: 1 <block-1>
         7: JNEImm dst: r4 off: -1 imm: 8 <block-1>
         8: JNEImm dst: r5 off: -1 imm: 0 <block-1>
         9: Mov32Imm dst: r0 imm: 0
        10: Exit
block-1:
// return 1 (accept)
        11: Mov32Imm dst: r0 imm: 1
        12: Exit
"""

WEIRD = """
// load parameters into registers
         0: LdXMemW dst: r2 src: r1 off: 0 imm: 0
         1: And32Imm dst: r2 imm: 65535
         2: LdXMemW dst: r3 src: r1 off: 0 imm: 0
         3: RSh32Imm dst: r3 imm: 16
         4: LdXMemW dst: r4 src: r1 off: 4 imm: 0
         5: LdXMemW dst: r5 src: r1 off: 8 imm: 0
block-0:
// return 0 (reject) if type==b && major == 8 && minor == 2
         6: JNEImm dst: r2 off: -1 imm: 1 <block-1>
         7: JNEImm dst: r4 off: -1 imm: 8 <block-1>
         8: JNEImm dst: r5 off: -1 imm: 2 <block-1>
         9: Mov32Imm dst: r0 imm: 0
        10: Exit
block-1:
// return 1 (accept)
        11: Mov32Imm dst: r0 imm: 1
        12: Exit
"""

# runc's specconv.AllowedDevices (the config rules of BuiltInAllowList): ours must be the same
# list for the program to match runc's dump
ALLOWED_DEVICES = list(devices_emulator.ALLOWED_DEVICES)

# What the emulator reduces each of runc's cases to (rule_list(), is_blacklist()): its order is
# (major, minor, type), so wildcards first. These are the program's real inputs.
REDUCED = {
    "Nil": ([], False, NIL),
    "BuiltInAllowList": (
        [
            ("b", W, W, "m", True),
            ("c", W, W, "m", True),
            ("c", 1, 3, "rwm", True),
            ("c", 1, 5, "rwm", True),
            ("c", 1, 7, "rwm", True),
            ("c", 1, 8, "rwm", True),
            ("c", 1, 9, "rwm", True),
            ("c", 5, 0, "rwm", True),
            ("c", 5, 2, "rwm", True),
            ("c", 10, 200, "rwm", True),
            ("c", 136, W, "rwm", True),
        ],
        False,
        BUILT_IN_ALLOW_LIST,
    ),
    "Privileged": ([], True, PRIVILEGED),
    "PrivilegedExceptSingleDevice": (
        [("b", 8, 0, "rwm", False)],
        True,
        PRIVILEGED_EXCEPT_SINGLE_DEVICE,
    ),
    # 8/1 is allowed, 8/2 is not: the "a" allow in between resets to a blacklist (runc rc9/v1)
    "Weird": ([("b", 8, 2, "rwm", False)], True, WEIRD),
}

# runc's cases as configured, before the emulator
CONFIGURED = {
    "Nil": [],
    "BuiltInAllowList": ALLOWED_DEVICES,
    "Privileged": [("a", W, W, "rwm", True)],
    "PrivilegedExceptSingleDevice": [("a", W, W, "rwm", True), ("b", 8, 0, "rwm", False)],
    "Weird": [
        ("b", 8, 1, "rwm", False),
        ("a", W, W, "rwm", True),
        ("b", 8, 2, "rwm", False),
    ],
}


@pytest.mark.parametrize("case", list(REDUCED))
def test_device_filter(case: str) -> None:
    rules, default_allow, expected = REDUCED[case]
    _check(B.program(rules, default_allow), expected)


@pytest.mark.parametrize("case", list(CONFIGURED))
def test_device_filter_through_emulator(case: str) -> None:
    """runc's tests feed the configured rules through its emulator; do the same end to end."""
    E = pytest.importorskip("pyrunc.linux.devices_emulator")
    emu = E.build(CONFIGURED[case])
    _check(B.program(emu.rule_list(), emu.is_blacklist()), REDUCED[case][2])


@pytest.mark.parametrize("case", list(REDUCED))
def test_leading_wildcard_is_skipped(case: str) -> None:
    """Go's Emulator.Rules() starts with the "a *:* rwm" default; it adds no instructions."""
    rules, default_allow, expected = REDUCED[case]
    wildcard = ("a", W, W, "rwm", default_allow)
    _check(B.program([wildcard, *rules], default_allow), expected)


def test_encoding_bytes() -> None:
    """The bytes themselves, independent of the disassembler: struct bpf_insn little-endian,
    dst_reg in the low nibble, jump offsets relative to the next instruction."""
    expected = bytes.fromhex(
        "6112000000000000"  # ldxw r2, [r1+0]
        "54020000ffff0000"  # w2 &= 0xffff
        "6113000000000000"  # ldxw r3, [r1+0]
        "7403000010000000"  # w3 >>= 16
        "6114040000000000"  # ldxw r4, [r1+4]
        "6115080000000000"  # ldxw r5, [r1+8]
        "5502040001000000"  # if r2 != 1 goto +4
        "5504030008000000"  # if r4 != 8 goto +3
        "5505020000000000"  # if r5 != 0 goto +2
        "b400000000000000"  # w0 = 0
        "9500000000000000"  # exit
        "b400000001000000"  # w0 = 1
        "9500000000000000"  # exit
    )
    assert B.program([("b", 8, 0, "rwm", False)], True) == expected


def test_access_check_encoding() -> None:
    """A partial access: (R3 & access) != R3 via R1, access bits m=1 r=2 w=4."""
    insns = _decode(B.program([("c", 1, 5, "rw", True)], False))[6:]
    assert insns == [
        (0x55, 2, 0, 7, 2),  # type != c -> the next block, 7 ahead
        (0xBC, 1, 3, 0, 0),  # w1 = w3
        (0x54, 1, 0, 0, 6),  # w1 &= r|w
        (0x5D, 1, 3, 4, 0),  # if r1 != r3 -> next
        (0x55, 4, 0, 3, 1),
        (0x55, 5, 0, 2, 5),
        (0xB4, 0, 0, 0, 1),
        (0x95, 0, 0, 0, 0),
        (0xB4, 0, 0, 0, 0),
        (0x95, 0, 0, 0, 0),
    ]


def test_large_major_wraps_like_int32() -> None:
    insns = _decode(B.program([("c", 0xFFFFFFFF, W, "rwm", True)], False))
    assert insns[7] == (0x55, 4, 0, 2, -1)


@pytest.mark.parametrize(
    ("rules", "default_allow", "msg"),
    [
        ([("c", 1, 3, "rwm", True), ("a", W, W, "rwm", False)], False, "bad wildcard at idx 1"),
        ([("a", W, W, "rwm", True)], False, "bad wildcard at idx 0 (a *:* rwm)"),
        ([("c", 1, 3, "rwm", False)], False, "no-op rule at idx 0 (c 1:3 rwm)"),
        ([("p", 1, 3, "rwm", True)], False, "invalid type 'p'"),
        ([("c", 1, 3, "rwx", True)], False, "unknown device access 'x'"),
        ([("c", 1 << 32, 3, "rwm", True)], False, "invalid major"),
        ([("c", 1, 1 << 32, "rwm", True)], False, "invalid minor"),
    ],
)
def test_program_refuses(rules: list, default_allow: bool, msg: str) -> None:
    with pytest.raises(RuntimeErr) as ei:
        B.program(rules, default_allow)
    assert msg in str(ei.value)


def test_can_skip_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """runc's canSkipEBPFError: only every-rule-allows-rwm, or a user namespace."""
    monkeypatch.setattr(B, "running_in_userns", lambda: False)
    assert B.can_skip_error([("c", 1, 3, "rwm", True), ("a", W, W, "mwr", True)])
    assert B.can_skip_error([])
    assert not B.can_skip_error([("c", 1, 3, "rw", True)])
    assert not B.can_skip_error([("c", 1, 3, "rwm", False)])
    assert not B.can_skip_error(ALLOWED_DEVICES)  # "c *:* m" is not rwm
    assert not B.can_skip_error(None)
    monkeypatch.setattr(B, "running_in_userns", lambda: True)
    assert B.can_skip_error(None)
    assert B.can_skip_error([("c", 1, 3, "r", False)])


# --- the real kernel --------------------------------------------------------------------------

UNIFIED = "/sys/fs/cgroup/unified"


def _cgroup2_at(path: str) -> bool:
    try:
        with open("/proc/self/mounts") as f:
            return any(
                ln.split()[1] == path and ln.split()[2] == "cgroup2" for ln in f if ln.strip()
            )
    except OSError:
        return False


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root (bpf(2) and cgroup directories)"
    if not _cgroup2_at(UNIFIED):
        return f"{UNIFIED} is not a cgroup2 mount"
    return None


kernel = pytest.mark.skipif(_skip_reason() is not None, reason=str(_skip_reason()))
_seq = itertools.count()


@pytest.fixture
def cgroup() -> Iterator[str]:
    path = os.path.join(UNIFIED, f"pyrunc-test-bpf-{os.getpid()}-{next(_seq)}-{time.time_ns()}")
    os.mkdir(path)
    try:
        yield path
    finally:
        for _ in range(100):  # the reaped child may take a moment to leave the cgroup
            try:
                os.rmdir(path)
                break
            except OSError as e:
                if e.errno != errno.EBUSY:
                    raise
                time.sleep(0.01)
        else:
            os.rmdir(path)


def _mknod(path: str, major: int, minor: int) -> None:
    os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(major, minor))


def _open(path: str, flags: int) -> None:
    os.close(os.open(path, flags | os.O_CLOEXEC))


def _in_cgroup(cgroup: str, tmp: str) -> dict[str, int]:
    """Fork a child into the cgroup; it tries each access and reports 0 or the errno."""
    actions = {
        "null rw": lambda: _open("/dev/null", os.O_RDWR),
        "zero r": lambda: _open("/dev/zero", os.O_RDONLY),
        "zero w": lambda: _open("/dev/zero", os.O_WRONLY),
        "full r": lambda: _open("/dev/full", os.O_RDONLY),
        "full w": lambda: _open("/dev/full", os.O_WRONLY),
        "mknod 1:3": lambda: _mknod(os.path.join(tmp, "null"), 1, 3),
        "mknod 1:5": lambda: _mknod(os.path.join(tmp, "zero"), 1, 5),
        "mknod 1:7": lambda: _mknod(os.path.join(tmp, "full"), 1, 7),
    }
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 1
        try:
            os.close(r)
            with open(os.path.join(cgroup, "cgroup.procs"), "w") as f:
                f.write(str(os.getpid()))
            results: dict[str, int] = {}
            for name, act in actions.items():
                try:
                    act()
                    results[name] = 0
                except OSError as e:
                    results[name] = e.errno or -1
            os.write(w, json.dumps(results).encode())
            code = 0
        except BaseException as e:  # report anything, then _exit below
            try:
                os.write(w, json.dumps({"error": repr(e)}).encode())
            except BaseException:
                pass
        finally:
            os._exit(code)
    os.close(w)
    try:
        data = b""
        while chunk := os.read(r, 65536):
            data += chunk
    finally:
        os.close(r)
        _, status = os.waitpid(pid, 0)
    out = json.loads(data or b"{}")
    assert "error" not in out, out["error"]
    assert os.waitstatus_to_exitcode(status) == 0
    return out


def _attached(cgroup: str) -> list[int]:
    from pyrunc.linux import sys as S

    fd = os.open(cgroup, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        ids, total = S.bpf_prog_query(fd)
    finally:
        os.close(fd)
    assert total == len(ids)
    return ids


OK, EPERM = 0, errno.EPERM
# allow only /dev/null (rwm) and reading /dev/zero
NULL_AND_ZERO_READ = [("c", 1, 3, "rwm", True), ("c", 1, 5, "r", True)]


@kernel
def test_kernel_enforces_allow_list(cgroup: str, tmp_path: Path) -> None:
    B.apply(cgroup, NULL_AND_ZERO_READ, False)
    assert len(_attached(cgroup)) == 1
    assert _in_cgroup(cgroup, str(tmp_path)) == {
        "null rw": OK,
        "zero r": OK,
        "zero w": EPERM,
        "full r": EPERM,
        "full w": EPERM,
        "mknod 1:3": OK,
        "mknod 1:5": EPERM,  # r only: no m
        "mknod 1:7": EPERM,
    }
    # the test process itself is not in the cgroup: unaffected
    _open("/dev/full", os.O_RDONLY)


@kernel
def test_kernel_enforces_deny_list(cgroup: str, tmp_path: Path) -> None:
    """A blacklist (default allow) with one deny rule and one write-only deny."""
    B.apply(cgroup, [("c", 1, 5, "w", False), ("c", 1, 7, "rwm", False)], True)
    assert _in_cgroup(cgroup, str(tmp_path)) == {
        "null rw": OK,
        "zero r": OK,
        "zero w": EPERM,
        "full r": EPERM,
        "full w": EPERM,
        "mknod 1:3": OK,
        "mknod 1:5": OK,
        "mknod 1:7": EPERM,
    }


def _reapply_case(cgroup: str, tmp: str) -> None:
    B.apply(cgroup, NULL_AND_ZERO_READ, False)
    (first,) = _attached(cgroup)
    # now /dev/full only, and /dev/null: the /dev/zero read rule must be gone
    B.apply(cgroup, [("c", 1, 3, "rwm", True), ("c", 1, 7, "rw", True)], False)
    (second,) = _attached(cgroup)
    assert second != first
    assert _in_cgroup(cgroup, tmp) == {
        "null rw": OK,
        "zero r": EPERM,
        "zero w": EPERM,
        "full r": OK,
        "full w": OK,
        "mknod 1:3": OK,
        "mknod 1:5": EPERM,
        "mknod 1:7": EPERM,  # rw only
    }


@kernel
def test_kernel_reapply_replaces(cgroup: str, tmp_path: Path) -> None:
    """A second apply() swaps the program (BPF_F_REPLACE on this kernel): one program left."""
    if not B.have_replace():
        pytest.skip("this kernel has no BPF_F_REPLACE (5.6+)")
    _reapply_case(cgroup, str(tmp_path))


@kernel
def test_kernel_reapply_without_replace(
    cgroup: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """runc's fallback for kernels without BPF_F_REPLACE: attach, then detach the old ones."""
    monkeypatch.setattr(B, "_replace_supported", False)
    _reapply_case(cgroup, str(tmp_path))


@kernel
def test_kernel_removes_extra_programs(cgroup: str, tmp_path: Path) -> None:
    """Several programs already attached (as systemd can leave): all detached, ours remains."""
    from pyrunc.linux import sys as S

    fd = os.open(cgroup, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for _ in range(3):
            prog = S.bpf_prog_load(B.program([], True), B.LICENSE)
            try:
                S.bpf_prog_attach(fd, prog, S.BPF_F_ALLOW_MULTI)
            finally:
                os.close(prog)
    finally:
        os.close(fd)
    old = _attached(cgroup)
    assert len(old) == 3
    B.apply(cgroup, NULL_AND_ZERO_READ, False)
    (new,) = _attached(cgroup)
    assert new not in old
    results = _in_cgroup(cgroup, str(tmp_path))
    assert (results["null rw"], results["zero r"], results["full r"]) == (OK, OK, EPERM)


@kernel
def test_kernel_load_failure_has_verifier_log() -> None:
    """A program the verifier refuses (exit with R0 unset): the message carries its log."""
    bad = bytes.fromhex("9500000000000000")
    with pytest.raises(RuntimeErr) as ei:
        B._load(bad, B.LICENSE)
    msg = str(ei.value)
    assert "\n" not in msg
    assert "R0 !read_ok" in msg, msg


@kernel
def test_kernel_apply_missing_dir() -> None:
    with pytest.raises(RuntimeErr, match="cannot get dir FD for /nonexistent/pyrunc"):
        B.apply("/nonexistent/pyrunc", [], False)
