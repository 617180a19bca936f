"""The parent's half of the create handshake: fork the init, place it, answer it, collect errors.

Usually the init is forked directly into its PID namespace (we unshare or join it for our next
child only, then step back). With a new user or time namespace an intermediate process must
create it first; it reports the init's pid and exits.

Messages from the child are lines on a pipe: "userns" (write my id maps), "pid N" (the init's
host pid, two-stage case), "netdev" (my network namespace exists: move linux.netDevices into
it), "hooks" (run prestart/createRuntime now), "ready" (about to block on the exec fifo) and
"error MSG". The parent answers "go" on a second pipe: first once the init is
in its cgroup, then after each request.
"""

from __future__ import annotations

import os

from pyrunc import log
from pyrunc.errors import RuntimeErr
from pyrunc.init.plan import Plan
from pyrunc.linux import cgroups, idmap
from pyrunc.linux import sys as S
from pyrunc.linux.files import write_file


class Launch:
    """A running handshake; `pid` is the init's host pid once known."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.pid = 0
        self.stage1 = 0
        self.notify = -1  # our end of the seccomp notify fd hand-off
        self.self_join: cgroups.SelfJoin | None = None


def start(plan: Plan, on_hooks: object = None, on_netdev: object = None) -> Launch:
    """Fork the init and drive it to "ready"; on failure kill what was started and raise.
    on_hooks / on_netdev(launch): called on the child's "hooks" / "netdev" request."""
    launch = Launch(plan)
    to_child_r, to_child_w = os.pipe()
    from_child_r, from_child_w = os.pipe()
    log.debug("nsexec container setup")
    direct = plan.direct_fork()
    notify = -1
    if plan.seccomp is not None:
        from pyrunc.linux import seccomp

        if seccomp.uses_notify(plan.config["linux"]["seccomp"]):
            notify, plan.notify_sock = _socketpair()
    launch.notify = notify
    # the init's modules, imported here rather than after the fork: in the child the import
    # would also fault in copy-on-write pages (-1.4 ms of a cold run, median of 120)
    from pyrunc.init import child  # noqa: F401

    if not plan.is_exec:
        from pyrunc.init import rootfs  # noqa: F401
    sj = launch.self_join = cgroups.prepare_self_join(plan.cgroup_paths)
    own_pidns = _enter_pidns_for_child(plan) if direct else -1
    saved_cpus = None
    try:
        if plan.is_exec and plan.cpus_initial:
            saved_cpus = _initial_affinity(plan)
        pid = sj.fork()
        if pid == 0:
            from pyrunc.init import child

            if saved_cpus is not None and log.debug_enabled():
                # runc's nsexec line (its tests look for it): where we start, before the join
                cpus = os.sched_getaffinity(0)
                log.debug(f"nsexec[{os.getpid()}]: affinity: {hex(sum(1 << c for c in cpus))}")
            try:
                cgroups.self_join(sj)  # first, while we are one thread doing nothing else
            except BaseException as e:
                child.fail(from_child_w, e, plan.debug)
            if plan.stdio is not None:
                for i, fd in enumerate(plan.stdio):
                    os.dup2(fd, i)  # (dup2 clears close-on-exec on 0/1/2)
            # non-dumpable before anything joins the container: until execve (which resets
            # it) no container process can ptrace us, read our memory or open
            # /proc/<pid>/exe (the runtime's interpreter) or our fds through procfs
            S.prctl(S.PR_SET_DUMPABLE, 0)
            os.close(to_child_w)
            os.close(from_child_r)
            if plan.oom_score_adj is not None:
                # here, before a user namespace makes /proc/self/oom_score_adj ours no more
                # (EACCES there); inherited by the init and everything it forks
                try:
                    write_file("/proc/self/oom_score_adj", str(plan.oom_score_adj))
                except OSError as e:
                    # (lowering it takes CAP_SYS_RESOURCE: not ours without root)
                    child.fail(from_child_w, RuntimeErr(
                        f"process.oomScoreAdj: writing {plan.oom_score_adj} to "
                        f"/proc/self/oom_score_adj: {e.strerror}"), plan.debug)
                except BaseException as e:
                    child.fail(from_child_w, e, plan.debug)
            if plan.sealed:
                from pyrunc.init import sealed

                try:
                    sealed.reexec(plan, to_child_r, from_child_w)
                except BaseException as e:
                    child.fail(from_child_w, e, plan.debug)
            (child.direct if direct else child.stage1)(plan, to_child_r, from_child_w)
            os._exit(1)
    except BaseException:
        for fd in (to_child_r, to_child_w, from_child_r, from_child_w):
            os.close(fd)
        raise
    finally:
        sj.close()  # (parent only: the child never returns here)
        if own_pidns >= 0:
            S.setns(own_pidns, S.CLONE_NEWPID)
            os.close(own_pidns)
        if saved_cpus is not None:
            os.sched_setaffinity(0, saved_cpus)
    os.close(to_child_r)
    os.close(from_child_w)
    if plan.notify_sock >= 0:
        os.close(plan.notify_sock)  # the child has it
    for fd in [fd for _t, fd in plan.join_fds] + list(plan.bind_fds.values()):
        os.close(fd)  # the child has its copies
    rd = os.fdopen(from_child_r, "rb", buffering=0)
    try:
        if direct:
            launch.pid = pid
            _join_cgroup(launch, rd, to_child_w)
        else:
            launch.stage1 = pid
        _converse(launch, rd, to_child_w, on_hooks, on_netdev)
    except BaseException:
        _kill(launch)
        raise
    finally:
        rd.close()
        os.close(to_child_w)
        if launch.notify >= 0:
            os.close(launch.notify)
    return launch


def _initial_affinity(plan: Plan) -> set[int]:
    """exec's process.execCPUAffinity.initial: the CPUs the new process runs on until it is in
    the container's cgroups. It is born with our affinity, so this thread takes `initial` for
    the fork (as runc's does) and gets its own back right after; returns the one to restore."""
    from pyrunc.linux import sched

    saved = os.sched_getaffinity(0)
    sched.set_affinity(plan.cpus_initial, "initial")
    return saved


def _socketpair() -> tuple[int, int]:
    import socket

    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    return a.detach(), b.detach()


def _readline(rd: object) -> bytes:
    buf = b""
    while not buf.endswith(b"\n"):
        c = rd.read(1)  # type: ignore[attr-defined]
        if not c:
            break
        buf += c
    return buf


def _converse(launch: Launch, rd: object, w: int, on_hooks: object, on_netdev: object) -> None:
    plan = launch.plan
    while True:
        line = _readline(rd).decode(errors="replace").rstrip("\n")
        if not line:
            raise RuntimeErr(_died_message(launch))
        kind, _, rest = line.partition(" ")
        if kind == "error":
            raise RuntimeErr(rest)
        if kind == "userns":
            idmap.write_maps(launch.stage1, plan.uid_maps, plan.gid_maps)
            _go(w)
        elif kind == "pid":
            launch.pid = int(rest)
            _join_cgroup(launch, rd, w)
            _reap(launch)
        elif kind == "netdev":
            if on_netdev is not None:
                on_netdev(launch)  # type: ignore[operator]
            _go(w)
        elif kind == "hooks":
            if on_hooks is not None:
                on_hooks(launch)  # type: ignore[operator]
            _go(w)
        elif kind == "seccomp":
            from pyrunc.init import seccomp_notify

            seccomp_notify.hand_off(plan, launch.notify, launch.pid)
            _go(w)
        elif kind == "ready":
            if plan.is_exec:
                log.debug("setns_init: about to exec")
            log.debug("init: closing the pipe to signal completion")
            return


def _enter_pidns_for_child(plan: Plan) -> int:
    """Make our next child land in the container's PID namespace (new or joined); returns an
    fd of our own to come back to right after the fork, or -1 if nothing changed."""
    join = dict(plan.join_fds).get("pid")
    if join is None and not plan.new_ns & S.CLONE_NEWPID:
        return -1
    own = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    try:
        if join is not None:
            S.setns(join, S.CLONE_NEWPID)
        else:
            S.unshare(S.CLONE_NEWPID)
    except OSError as e:
        os.close(own)
        raise RuntimeErr(f"failed to create the pid namespace: {e.strerror}") from None
    return own


def _join_cgroup(launch: Launch, rd: object, w: int) -> None:
    """Move the init into the container's cgroup while it builds its rootfs (it waits for this
    "go" only where membership starts to matter)."""
    rest = launch.self_join.rest  # (set by start before the fork)
    if rest:
        try:
            cgroups.join(rest, launch.pid)
        except RuntimeErr as e:
            # If the init died first, its own error explains more than ESRCH. If it is alive,
            # it is waiting for us: reading would block, and the caller kills it.
            from pyrunc.state import proc_start_time

            if proc_start_time(launch.pid) is None:
                import select

                if select.select([rd], [], [], 1.0)[0]:
                    nxt = _readline(rd).decode(errors="replace")
                    if nxt.startswith("error "):
                        raise RuntimeErr(nxt[6:].rstrip("\n")) from None
            raise e
    _go(w)
    log.debug("child process in init()")


def _go(w: int) -> None:
    """Answer the child. If it already died, its error line is waiting in our pipe: report
    that rather than EPIPE."""
    try:
        os.write(w, b"go\n")
    except BrokenPipeError:
        pass


def _reap(launch: Launch) -> None:
    if launch.stage1:
        try:
            os.waitpid(launch.stage1, 0)
        except ChildProcessError:
            pass
        launch.stage1 = 0


def _died_message(launch: Launch) -> str:
    if launch.stage1:
        try:
            _, status = os.waitpid(launch.stage1, 0)
            launch.stage1 = 0
            if os.WIFSIGNALED(status):
                return f"container init was killed by signal {os.WTERMSIG(status)}"
        except ChildProcessError:
            pass
    return "container init exited unexpectedly"


def _kill(launch: Launch) -> None:
    for pid in (launch.pid, launch.stage1):
        if pid:
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
    if launch.stage1:
        try:
            os.waitpid(launch.stage1, 0)
        except ChildProcessError:
            pass
    if launch.pid:
        try:
            os.waitpid(launch.pid, 0)  # ours when we are its subreaper
        except ChildProcessError:
            pass
