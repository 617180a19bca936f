"""SCMP_ACT_NOTIFY: hand the container's seccomp notify fd to the agent at listenerPath.

The container's process loads its filter and sends the notify fd to us over a socketpair
(SCM_RIGHTS), then waits. We connect to linux.seccomp.listenerPath and send the container
process state (runtime-spec's ContainerProcessState: ociVersion, fds ["seccompFd"], pid,
metadata, state) with the fd in the same message, as runc does; only then does the process go
on, so the agent holds the fd before any notified syscall can happen.
"""

from __future__ import annotations

import os

from pyrunc import fastjson
from pyrunc.errors import RuntimeErr

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyrunc.init.plan import Plan


def process_state(plan: Plan, pid: int) -> dict:
    sc = (plan.config.get("linux") or {}).get("seccomp") or {}
    state = plan.hook_state("creating" if not plan.is_exec else "running")
    state["pid"] = pid
    return {
        "ociVersion": plan.config.get("ociVersion", ""),
        "fds": ["seccompFd"],
        "pid": pid,
        "metadata": sc.get("listenerMetadata", ""),
        "state": state,
    }


def hand_off(plan: Plan, sock: int, pid: int) -> None:
    """Receive the notify fd from the container process and send it on to the agent."""
    import socket

    from pyrunc.linux import sys as S

    sc = (plan.config.get("linux") or {}).get("seccomp") or {}
    path = sc.get("listenerPath") or ""
    fd = S.recv_fd(sock)
    try:
        if not path:
            raise RuntimeErr(
                "linux.seccomp.listenerPath: a listener path is required with SCMP_ACT_NOTIFY"
            )
        msg = fastjson.dumps(process_state(plan, pid)).encode()
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path if not path.startswith("@") else "\0" + path[1:])
            socket.send_fds(s, [msg], [fd])
        except OSError as e:
            raise RuntimeErr(
                "failed to connect with seccomp agent specified in the seccomp profile "
                f"(linux.seccomp.listenerPath {path}): {e.strerror or e}"
            ) from None
        finally:
            s.close()
    finally:
        os.close(fd)
