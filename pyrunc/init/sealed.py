"""The runtime re-executed from a sealed copy of its interpreter (CVE-2019-5736 class).

A runtime process that joins a container is visible there, and its /proc/<pid>/exe is the
host's Python interpreter: a container process that can open it keeps an fd, waits for us to
exit and rewrites the interpreter. We are non-dumpable until execve, so only a process holding
CAP_SYS_PTRACE in the user namespace that owns our memory -- the host's -- can open that link:
a container with a user namespace of its own, or whose bounding set lacks CAP_SYS_PTRACE,
can never do it. For the rest (privileged containers), the child that will join re-executes
from a memfd copy of the interpreter sealed against writes before it joins anything, as runc
does with itself: /proc/<pid>/exe then names the sealed copy. The copy (~7 MB, ~4 ms) and a
fresh interpreter cost ~22-27 ms per exec or create (bench/), paid only by those containers.

The Plan crosses the execve marshalled in a memfd; the fds it names are made inheritable. The
seccomp filter (a libseccomp object) is rebuilt from the config on the other side.
"""

from __future__ import annotations

import os

CAP_SYS_PTRACE = 19
MARKER = "ptrace-exec"  # in the state dir: an exec gave a process CAP_SYS_PTRACE


def may_ptrace(plan) -> bool:  # noqa: ANN001
    """Whether the plan's process may hold CAP_SYS_PTRACE (it is in its bounding set)."""
    return bool(plan.caps.bounding >> CAP_SYS_PTRACE & 1)


def needed(plan, state_dir: str | None = None) -> bool:  # noqa: ANN001
    """Whether a container process could open our /proc/<pid>/exe despite non-dumpable."""
    if plan.in_userns:
        return False
    if may_ptrace(plan):
        return True
    return state_dir is not None and os.path.exists(os.path.join(state_dir, MARKER))


def _sealed_interpreter() -> int:
    import fcntl

    src = os.open("/proc/self/exe", os.O_RDONLY | os.O_CLOEXEC)
    try:
        fd = os.memfd_create("pyrunc-python", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
        left = os.fstat(src).st_size
        while left > 0:
            n = os.sendfile(fd, src, None, left)
            if n == 0:
                raise OSError("short copy of the interpreter")
            left -= n
    finally:
        os.close(src)
    fcntl.fcntl(
        fd,
        fcntl.F_ADD_SEALS,
        fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE,
    )
    return fd


def _plan_fds(plan, r: int, w: int) -> list[int]:  # noqa: ANN001
    fds = [r, w, plan.fifo_fd, plan.console_fd, plan.notify_sock]
    fds += [fd for _t, fd in plan.join_fds] + list(plan.bind_fds.values())
    return [fd for fd in fds if fd >= 0]


def _to_data(plan) -> dict:  # noqa: ANN001
    """The Plan as marshal-able data (marshal is built in: pickle would cost ~7 ms to import,
    on each side of the execve)."""
    data = {k: getattr(plan, k) for k in type(plan).__slots__}
    data["caps"] = tuple(getattr(plan.caps, k) for k in type(plan.caps).__slots__)
    data["seccomp"] = None  # a libseccomp object: resume rebuilds it from the config
    data["join_fds"] = [tuple(x) for x in plan.join_fds]
    return data


def _from_data(data: dict):  # noqa: ANN202
    from pyrunc.init.plan import Plan
    from pyrunc.linux.capabilities import CapSets

    plan = Plan.__new__(Plan)
    caps = CapSets.__new__(CapSets)
    for k, v in zip(CapSets.__slots__, data.pop("caps"), strict=True):
        setattr(caps, k, v)
    for k, v in data.items():
        setattr(plan, k, v)
    plan.caps = caps
    return plan


def reexec(plan, r: int, w: int) -> None:  # noqa: ANN001
    """In the forked child, before it joins anything: continue as stage1 in a sealed
    interpreter. Never returns (execve replaces us, or the caller reports the error)."""
    import marshal
    import sys

    exe = _sealed_interpreter()
    # our own package's parent first: an editable install finds it through an import hook,
    # which -S does not load
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    blob = os.memfd_create("pyrunc-plan", 0)
    os.write(blob, marshal.dumps(([here, *sys.path], _to_data(plan), r, w)))
    os.lseek(blob, 0, os.SEEK_SET)
    for fd in _plan_fds(plan, r, w):
        os.set_inheritable(fd, True)
    code = (
        f"import sys,os,marshal;f=os.fdopen({blob},'rb');p,d,r,w=marshal.load(f);f.close();"
        "sys.path[:]=p;from pyrunc.init import sealed;sealed.resume(d,r,w)"
    )
    # -I -S: nothing from the environment or site runs before we are back in our code
    os.execv(f"/proc/self/fd/{exe}", [sys.executable, "-I", "-S", "-c", code])


def resume(data: dict, r: int, w: int) -> None:
    """The sealed interpreter's entry: rebuild what did not travel and carry on as stage1."""
    from pyrunc.linux import sys as S

    S.prctl(S.PR_SET_DUMPABLE, 0)  # execve made us dumpable again; nothing has joined yet
    plan = _from_data(data)
    for fd in _plan_fds(plan, r, w):
        os.set_inheritable(fd, False)  # hooks the init runs must not inherit them
    from pyrunc.init import child

    spec = (plan.config.get("linux") or {}).get("seccomp")
    if spec:  # as Plan() built it
        from pyrunc.linux import seccomp

        try:
            plan.seccomp = seccomp.build(spec)
        except BaseException as e:
            child.fail(w, e, plan.debug)  # reports and exits
    child.stage1(plan, r, w)  # never returns
