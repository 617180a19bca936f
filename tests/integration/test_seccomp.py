"""linux.seccomp, seen from inside the container: what the kernel lets its processes do."""

from __future__ import annotations

import json
import os
import socket
import threading
from pathlib import Path

import pytest
from harness import Bundle, Runtime, unique_id

pytestmark = pytest.mark.integration

ARCHES = ["SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_X86_64"]


def _profile(
    bundle: Bundle, *rules: dict, default: str = "SCMP_ACT_ALLOW", **extra: object
) -> None:
    bundle.linux["seccomp"] = {
        "defaultAction": default,
        "architectures": ARCHES,
        "syscalls": list(rules),
        **extra,
    }


@pytest.mark.parametrize("nnp", [True, False])
def test_errno_action_default_and_explicit(rt: Runtime, bundle: Bundle, nnp: bool) -> None:
    """Without no_new_privs the filter is loaded while CAP_SYS_ADMIN is still held; both
    orders must end with the same filter in force."""
    bundle.process["noNewPrivileges"] = nnp
    _profile(
        bundle,
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"},
        {"names": ["rmdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 100},
    )
    r = rt.run_sh(bundle, "mkdir /dev/shm/a; rmdir /dev/shm; grep Seccomp: /proc/self/status")
    assert "Operation not permitted" in r.err, r
    assert "Network is down" in r.err, r  # errno 100 = ENETDOWN
    assert "Seccomp:\t2" in r.out  # SECCOMP_MODE_FILTER


def test_kill_action_kills_with_sigsys(rt: Runtime, bundle: Bundle) -> None:
    _profile(bundle, {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_KILL"})
    bundle.args("mkdir", "/dev/shm/a")
    r = rt.run(unique_id(), bundle)
    assert r.rc == 128 + 31, r  # SIGSYS


def test_argument_conditions(rt: Runtime, bundle: Bundle) -> None:
    """kill(pid, 0) is refused (EACCES) by an arg condition; kill(pid, SIGCONT) is not."""
    _profile(
        bundle,
        {
            "names": ["kill"],
            "action": "SCMP_ACT_ERRNO",
            "errnoRet": 13,
            "args": [{"index": 1, "value": 0, "op": "SCMP_CMP_EQ"}],
        },
    )
    r = rt.run_sh(bundle, "kill -0 1; echo zero=$?; kill -CONT 1; echo cont=$?")
    assert "zero=1" in r.out and "cont=0" in r.out, r
    assert "Permission denied" in r.err, r


def test_exec_gets_the_filter_too(rt: Runtime, bundle: Bundle) -> None:
    cid = unique_id()
    _profile(bundle, {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"})
    bundle.args("sleep", "1000")
    bundle.save()
    assert rt.detached("run", "-d", "-b", str(bundle.path), cid, cid=cid).rc == 0
    r = rt.cmd("exec", cid, "sh", "-c", "mkdir /dev/shm/b; grep Seccomp: /proc/self/status")
    assert "Operation not permitted" in r.err, r
    assert "Seccomp:\t2" in r.out


def test_unknown_syscall_names_are_ignored(rt: Runtime, bundle: Bundle) -> None:
    """As runc: a name this libseccomp does not know is skipped (a newer profile on an older
    host), the rest of the rule still applies."""
    _profile(
        bundle, {"names": ["no_such_syscall_x", "mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}
    )
    r = rt.run_sh(bundle, "mkdir /dev/shm/c")
    assert r.rc == 1 and "Operation not permitted" in r.err, r


def test_start_container_hook_runs_under_the_filter(rt: Runtime, bundle: Bundle) -> None:
    _profile(bundle, {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_KILL"})
    bundle.config["hooks"] = {
        "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "mkdir /dev/shm/foo"]}]
    }
    bundle.args("true")
    r = rt.run(unique_id(), bundle)
    assert r.rc != 0
    assert "error running hook" in r.err and "bad system call" in r.err, r


@pytest.mark.parametrize(
    ("seccomp", "msg"),
    [
        ({"defaultAction": "SCMP_ACT_NOPE"}, "linux.seccomp.defaultAction"),
        (
            {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_VAX"]},
            "linux.seccomp.architectures[0]: unknown architecture",
        ),
        (
            {
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [
                    {
                        "names": ["kill"],
                        "action": "SCMP_ACT_ERRNO",
                        "args": [{"index": 1, "value": 0, "op": "SCMP_CMP_ISH"}],
                    }
                ],
            },
            "linux.seccomp.syscalls[0].args[0].op",
        ),
        ({"defaultAction": "SCMP_ACT_NOTIFY"}, "cannot be used as default action"),
        (
            {
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}],
            },
            "linux.seccomp.listenerPath: SCMP_ACT_NOTIFY needs a listener path",
        ),
        (
            {"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_WHATEVER"]},
            "linux.seccomp.flags[0]: unknown flag",
        ),
        (
            {"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 6},
            "linux.seccomp.defaultErrnoRet: SCMP_ACT_ALLOW does not return an errno",
        ),
        (
            {
                "defaultAction": "SCMP_ACT_ERRNO",
                "syscalls": [{"names": ["read"], "action": "SCMP_ACT_LOG", "errnoRet": 1}],
            },
            "linux.seccomp.syscalls[0].errnoRet: SCMP_ACT_LOG does not return an errno",
        ),
    ],
)
def test_bad_profiles_fail_cleanly(rt: Runtime, bundle: Bundle, seccomp: dict, msg: str) -> None:
    bundle.linux["seccomp"] = seccomp
    cid = unique_id()
    before = set(os.listdir("/sys/fs/cgroup/pids"))
    r = rt.run(cid, bundle)
    assert r.rc == 1
    assert msg in r.err and len(r.err.strip().splitlines()) == 1, r
    assert "Traceback" not in r.err
    assert not (rt.root / cid).exists()
    assert set(os.listdir("/sys/fs/cgroup/pids")) <= before  # no cgroup left


@pytest.mark.parametrize("flags", [[], ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]])
def test_notify_fd_reaches_the_agent(
    rt: Runtime, bundle: Bundle, short_tmp: Path, flags: list[str]
) -> None:
    """SCMP_ACT_NOTIFY: the agent at listenerPath receives runc's ContainerProcessState and the
    notify fd (SCM_RIGHTS) before the container runs. This agent closes the fd, so notified
    syscalls then fail with ENOSYS -- which also proves the filter notifies mkdir only."""
    sock_path = str(short_tmp / "agent.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(sock_path)
    srv.listen(1)
    got: dict = {}

    def agent() -> None:
        conn, _ = srv.accept()
        with conn:
            msg, fds, _flags, _addr = socket.recv_fds(conn, 65536, 4)
        got["state"] = json.loads(msg)
        got["fd"] = os.readlink(f"/proc/self/fd/{fds[0]}")
        for fd in fds:
            os.close(fd)

    t = threading.Thread(target=agent, daemon=True)
    t.start()
    _profile(
        bundle,
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"},
        listenerPath=sock_path,
        listenerMetadata="meta-42",
        flags=flags,
    )
    cid = unique_id()
    bundle.sh("mkdir /dev/shm/x; touch /dev/shm/y && echo touched")
    r = rt.run(cid, bundle)
    t.join(timeout=10)
    srv.close()
    assert "Function not implemented" in r.err, r
    assert "touched" in r.out, r
    st = got["state"]
    assert got["fd"] == "anon_inode:seccomp notify"
    assert st["fds"] == ["seccompFd"] and st["metadata"] == "meta-42", st
    assert st["state"]["id"] == cid and st["state"]["status"] == "creating", st
    assert st["pid"] == st["state"]["pid"] > 0


def test_notify_without_agent_fails_cleanly(rt: Runtime, bundle: Bundle, short_tmp: Path) -> None:
    _profile(
        bundle,
        {"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"},
        listenerPath=str(short_tmp / "nobody.sock"),
    )
    cid = unique_id()
    r = rt.run(cid, bundle)
    assert r.rc == 1 and "failed to connect with seccomp agent" in r.err, r
    assert len(r.err.strip().splitlines()) == 1
    assert not (rt.root / cid).exists()


# struct seccomp_notif is 80 bytes, struct seccomp_notif_resp 24 (linux/seccomp.h)
_NOTIF_RECV = 0xC0502100  # _IOWR('!', 0, struct seccomp_notif)
_NOTIF_SEND = 0xC0182101  # _IOWR('!', 1, struct seccomp_notif_resp)
_FLAG_CONTINUE = 1


def test_start_returns_only_once_the_program_runs(
    rt: Runtime, bundle: Bundle, short_tmp: Path
) -> None:
    """`start` returns when pid 1 is the container's program, not the runtime about to
    execve it (runc returns a moment before). An agent holds the init's execve for 0.5 s
    through SCMP_ACT_NOTIFY, so `start` must take that long and pid 1 must then be `sleep`."""
    import fcntl
    import struct
    import time

    sock_path = str(short_tmp / "agent.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(sock_path)
    srv.listen(1)
    seen: list[int] = []

    def agent() -> None:
        conn, _ = srv.accept()
        with conn:
            _msg, fds, _flags, _addr = socket.recv_fds(conn, 65536, 4)
        notif = bytearray(80)
        fcntl.ioctl(fds[0], _NOTIF_RECV, notif)  # blocks until the init's execve
        seen.append(struct.unpack_from("=QIIi", notif)[3])
        time.sleep(0.5)
        fcntl.ioctl(
            fds[0],
            _NOTIF_SEND,
            struct.pack("=QqiI", struct.unpack_from("=Q", notif)[0], 0, 0, _FLAG_CONTINUE),
        )
        for fd in fds:
            os.close(fd)

    t = threading.Thread(target=agent, daemon=True)
    t.start()
    _profile(bundle, {"names": ["execve"], "action": "SCMP_ACT_NOTIFY"}, listenerPath=sock_path)
    bundle.process["args"] = ["sleep", "1000"]
    cid = unique_id()
    r = rt.create(cid, bundle)
    assert r.rc == 0, r
    pid = rt.state(cid)["pid"]
    t0 = time.monotonic()
    r = rt.cmd("start", cid)
    took = time.monotonic() - t0
    comm = open(f"/proc/{pid}/comm").read().strip()
    t.join(timeout=10)
    srv.close()
    assert r.rc == 0, r
    assert seen, "the agent saw no execve"
    assert comm == "sleep", comm
    assert took >= 0.45, took


# --- podman 4.3's socket rules ------------------------------------------------------------

SOCKET_HELPER_C = r"""
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
static void t(const char *name, long r) {
    printf("%s %d\n", name, r < 0 ? errno : 0);
}
int main(void) {
    t("netlink_audit", socket(16, SOCK_RAW, 9));   /* AF_NETLINK, NETLINK_AUDIT */
    t("netlink_route", socket(16, SOCK_RAW, 0));   /* NETLINK_ROUTE */
    t("unix", socket(AF_UNIX, SOCK_STREAM, 0));
    t("getcpu", syscall(SYS_getcpu, 0L, 0L, 0L));  /* not in the profile: the default */
    t("getpid", syscall(SYS_getpid));
    fflush(stdout);
    return 0;
}
"""

SOCKET_EINVAL = {  # podman 4.3's default profile without CAP_AUDIT_WRITE, in its order
    "names": ["socket"],
    "action": "SCMP_ACT_ERRNO",
    "errnoRet": 22,
    "args": [
        {"index": 0, "value": 16, "op": "SCMP_CMP_EQ"},
        {"index": 2, "value": 9, "op": "SCMP_CMP_EQ"},
    ],
}
SOCKET_NOT_AUDIT = {
    "names": ["socket"],
    "action": "SCMP_ACT_ALLOW",
    "args": [{"index": 2, "value": 9, "op": "SCMP_CMP_NE"}],
}
SOCKET_NOT_NETLINK = {
    "names": ["socket"],
    "action": "SCMP_ACT_ALLOW",
    "args": [{"index": 0, "value": 16, "op": "SCMP_CMP_NE"}],
}


def _x86_64_syscalls() -> list[str]:
    """Every syscall name of this kernel's x86_64 table (the kernel headers gcc uses)."""
    import platform

    hdr = Path("/usr/include/x86_64-linux-gnu/asm/unistd_64.h")
    if platform.machine() != "x86_64" or not hdr.exists():
        pytest.skip("needs x86_64 and its kernel headers (linux-libc-dev)")
    names = []
    for line in hdr.read_text().splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "#define" and parts[1].startswith("__NR_"):
            names.append(parts[1].removeprefix("__NR_"))
    return names


def _socket_helper(bundle: Bundle) -> None:
    import shutil
    import subprocess

    if not shutil.which("gcc"):
        pytest.skip("needs gcc to build the static syscall helper")
    src = bundle.path / "sockets.c"
    src.write_text(SOCKET_HELPER_C)
    p = subprocess.run(
        ["gcc", "-static", "-O0", "-o", str(bundle.rootfs / "sockets"), str(src)],
        capture_output=True,
    )
    if p.returncode != 0:
        pytest.skip(f"gcc -static failed (no static libc?): {p.stderr.decode()[-300:]}")
    bundle.args("/sockets")


@pytest.mark.parametrize("nnp", [True, False])
def test_podman_duplicated_socket_rules(rt: Runtime, bundle: Bundle, nnp: bool) -> None:
    """podman 4.3's default profile with --cap-drop all (or any --cap-add) holds `socket ALLOW
    if arg2 != NETLINK_AUDIT` twice, after an EINVAL rule and `ALLOW if arg0 != AF_NETLINK`,
    for x86_64, x86 and x32, with socketcall in its big ALLOW list. runc runs it; pyrunc
    failed with "syscalls[3]: error adding rule for syscall socket: ... errno = -17": it had
    skipped socketcall (a pseudo-syscall on x86_64, a real one on x86), and on x86 libseccomp
    turns socket rules into socketcall ones, where the three then conflict. The duplicate is
    skipped; the rules are in force."""
    bundle.process["noNewPrivileges"] = nnp
    allowed = [n for n in _x86_64_syscalls() if n not in ("socket", "getcpu")]
    _profile(
        bundle,
        {"names": [*allowed, "socketcall"], "action": "SCMP_ACT_ALLOW"},
        SOCKET_EINVAL,
        SOCKET_NOT_AUDIT,
        SOCKET_NOT_NETLINK,
        SOCKET_NOT_AUDIT,
        default="SCMP_ACT_ERRNO",
    )
    _socket_helper(bundle)
    r = rt.run(unique_id(), bundle)
    assert r.rc == 0, r
    got = dict(line.split() for line in r.out.splitlines())
    assert got == {
        "netlink_audit": "22",  # EINVAL: both arguments match the ERRNO rule
        "netlink_route": "0",
        "unix": "0",
        "getcpu": "1",  # EPERM: the default action
        "getpid": "0",
    }, r


def test_same_rule_with_another_action_fails_as_runc(rt: Runtime, bundle: Bundle) -> None:
    """A rule identical to an earlier one but for its action: runc 1.1.5 fails ("error adding
    seccomp rule for syscall socket: file exists"); so do we, naming the rule."""
    _profile(
        bundle,
        SOCKET_NOT_AUDIT,
        {**SOCKET_NOT_AUDIT, "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
        default="SCMP_ACT_ERRNO",
    )
    cid = unique_id()
    r = rt.run(cid, bundle)
    assert r.rc == 1, r
    assert "rule for syscall socket" in r.err and "file exists" in r.err.lower(), r
    assert len(r.err.strip().splitlines()) == 1, r
    if Path(rt.binary).name != "runc":  # runc names no field
        assert "linux.seccomp.syscalls[1]: error adding rule for syscall socket" in r.err, r
    assert not (rt.root / cid).exists()
