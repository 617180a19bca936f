"""`exec`: start another process inside a created or running container.

The process joins the init's namespaces (by /proc/<pid>/ns), its cgroup, and gets the process
settings of config.json overridden by the flags (or by --process), as runc does.
"""

from __future__ import annotations

import os

from pyrunc import fastjson
from pyrunc import state as S
from pyrunc.errors import ConfigError, RuntimeErr
from pyrunc.init.plan import Plan
from pyrunc.linux import namespaces


def _process(st: dict, o: dict, args: list[str]) -> dict:
    if o["process"]:
        proc = fastjson.load_document(o["process"], "--process")
        from pyrunc.validate import validate_process

        proc.setdefault("user", {"uid": 0, "gid": 0})  # runc fills in zero values
        proc.setdefault("cwd", "/")

        validate_process(proc)
        if any(proc.get(k) is not None for k in ("scheduler", "ioPriority", "execCPUAffinity")):
            from pyrunc.linux import sched

            sched.check_process(proc, "process.json: ")  # (Plan checks again, as config.json)
        return proc
    # st was just parsed from state.json and is never saved back: edit its process in place
    # (copy.deepcopy would cost its import, ~1.5 ms of an exec)
    proc = (st.get("config") or {}).get("process") or {}
    if not args:
        raise RuntimeErr("exec args cannot be empty")
    proc["args"] = args
    proc["terminal"] = o["tty"]
    proc.pop("consoleSize", None)
    proc["env"] = list(proc.get("env") or []) + o["env"]
    if o["cwd"]:
        proc["cwd"] = o["cwd"]
    user = proc.setdefault("user", {"uid": 0, "gid": 0})
    if o["user"]:
        u, _, gid = o["user"].partition(":")
        try:
            user["uid"] = int(u)
            if gid:
                user["gid"] = int(gid)
        except ValueError:
            raise RuntimeErr(f"--user {o['user']}: expected uid[:gid] as numbers") from None
    if o["additional_gids"]:
        try:
            # appended to the container's, as runc 1.1 does
            user["additionalGids"] = list(user.get("additionalGids") or []) + [
                int(x) for x in o["additional_gids"]
            ]
        except ValueError:
            raise RuntimeErr("--additional-gids: expected numbers") from None
    if o["cap"]:
        caps = proc.setdefault("capabilities", {})
        for k in ("bounding", "effective", "permitted"):
            caps[k] = list(caps.get(k) or []) + [
                c for c in o["cap"] if c not in (caps.get(k) or [])
            ]
    if o["no_new_privs"]:
        proc["noNewPrivileges"] = True
    if o["apparmor"]:
        proc["apparmorProfile"] = o["apparmor"]
    if o["process_label"]:
        proc["selinuxLabel"] = o["process_label"]
    return proc


def sub_cgroups(paths: dict[str, str], specs: list[str]) -> dict[str, str]:
    """--cgroup [<controller>[,<controller>]:]<sub-cgroup>, repeatable: existing sub-cgroups of
    the container's own, per controller (or for all)."""
    out = dict(paths)
    for spec in specs:
        ctrls, _, sub = spec.rpartition(":")
        rel = os.path.normpath(sub.lstrip("/") or ".")
        if rel == ".." or rel.startswith("../"):
            raise RuntimeErr(f"--cgroup: {sub} is not a sub cgroup path")
        if ctrls:
            keys = []
            for c in ctrls.split(","):
                match = [k for k in paths if c in k.split(",") or k == f"name={c}"]
                if not match:
                    raise RuntimeErr(f"--cgroup: unknown controller {c}")
                keys += match
        else:
            keys = list(paths)
        for k in keys:
            out[k] = paths[k] if rel == "." else os.path.join(paths[k], rel)
    return out


def _has_ptrace(st: dict) -> bool:
    """Whether the container's own process may hold CAP_SYS_PTRACE (read before _process
    edits that process in place)."""
    caps = ((st.get("config") or {}).get("process") or {}).get("capabilities") or {}
    return "CAP_SYS_PTRACE" in (caps.get("bounding") or [])


def _seal_if_needed(plan: Plan, ptrace: bool, state_dir: str, status: str) -> None:
    """A process we start with CAP_SYS_PTRACE in the host's user namespace could open a later
    exec's /proc/<pid>/exe: remember it in the state dir, so that every exec after it is sealed
    too (sealed.py). The init of a container not yet started is still our interpreter, sealed
    only if the container's own process may hold CAP_SYS_PTRACE: refuse to hand that capability
    to a process that could reach it."""
    from pyrunc.init import sealed

    plan.sealed = sealed.needed(plan, state_dir) or ptrace
    if sealed.may_ptrace(plan) and not ptrace:
        if status == "created":
            raise ConfigError(
                "exec: CAP_SYS_PTRACE for a process of a container that has not started would "
                "let it reach the runtime's interpreter through /proc/1/exe: start it first"
            )
        with open(os.path.join(state_dir, sealed.MARKER), "w"):
            pass


def run(g: dict, o: dict, a: list[str]) -> int:
    root, cid = g["root"], a[0]
    st = S.load(root, cid)
    status = _runnable(root, st, o["ignore_paused"])
    ptrace = _has_ptrace(st)
    proc = _process(st, o, a[1:])
    terminal = bool(proc.get("terminal"))
    detach = o["detach"]
    if terminal and detach and not o["console_socket"]:
        raise ConfigError("cannot allocate tty if runc will detach without setting console socket")
    if not terminal and o["console_socket"]:
        raise ConfigError("cannot use console socket if runc will not detach or allocate tty")
    fwd = None
    if not detach:
        from pyrunc import foreground
        from pyrunc.linux import sys as LS

        fwd = foreground.Forwarder()  # before the process exists: no signal is lost
        LS.prctl(LS.PR_SET_CHILD_SUBREAPER, 1)
    pid, master = start(
        root, cid, proc, st=st, status=status, ptrace=ptrace,
        console_socket=o["console_socket"], preserve_fds=o["preserve_fds"],
        cgroup=o["cgroup"], debug=g["debug"],
    )
    if o["pid_file"]:
        S.write_atomic(os.path.abspath(o["pid_file"]), str(pid), 0o644)
    if fwd is None:
        return 0
    return fwd.wait(pid, master)


def _runnable(root: str, st: dict, ignore_paused: bool) -> str:
    status = S.status(root, st)
    if status == "stopped":
        raise RuntimeErr("cannot exec in a stopped container")
    if status == "paused" and not ignore_paused:
        raise RuntimeErr("cannot exec in a paused container (use --ignore-paused to override)")
    return status


def start(
    root: str,
    cid: str,
    proc: dict,
    *,
    st: dict | None = None,
    status: str | None = None,
    ptrace: bool | None = None,
    console_socket: str = "",
    preserve_fds: int = 0,
    cgroup: list[str] | None = None,
    debug: bool = False,
    stdio: tuple[int, int, int] | None = None,
    ignore_paused: bool = False,
) -> tuple[int, int]:
    """Start `proc` (an OCI process, already validated) in container cid, detached: (its host
    pid, the pty master when it has a terminal and no console socket was given, else -1).
    stdio: its 0/1/2 (default: ours). The library entry for callers such as the shim; `run`
    is the CLI's."""
    if st is None:
        st = S.load(root, cid)
    if status is None:
        status = _runnable(root, st, ignore_paused)
    if ptrace is None:
        ptrace = _has_ptrace(st)
    config = dict(st.get("config") or {}, process=proc)
    lx = dict(config.get("linux") or {})
    pid = st["pid"]
    lx["namespaces"] = [
        {"type": ns["type"], "path": f"/proc/{pid}/ns/{namespaces.PROC_NAMES[ns['type']]}"}
        for ns in lx.get("namespaces") or []
        if ns.get("type") in namespaces.PROC_NAMES
    ]
    config["linux"] = lx
    plan = Plan(cid, st["bundle"], st["rootfs"], config)
    plan.is_exec = True
    plan.stdio = stdio
    if not plan.own_mntns:
        plan.chroot_pid = pid
    plan.hooks = {}
    plan.oom_score_adj = ((st.get("config") or {}).get("process") or {}).get("oomScoreAdj")
    plan.debug = debug
    if not plan.in_userns:
        _seal_if_needed(plan, ptrace, S.container_dir(root, cid), status)
    plan.preserve_fds = preserve_fds
    plan.cgroup_paths = sub_cgroups(dict(st.get("cgroup") or {}), cgroup or [])
    plan.join_fds = namespaces.open_for_join(plan.join)
    master = -1
    sock = msock = None
    if proc.get("terminal"):
        from pyrunc.container import console_sockets

        sock, msock = console_sockets(console_socket)
        plan.console_fd = sock
    from pyrunc.init import launch as L

    try:
        lh = L.start(plan)
    finally:
        if sock is not None:
            os.close(sock)
    if st.get("intel_rdt"):
        # into the container's resctrl group, as runc puts its exec processes (here just after
        # the start, where runc does it just before: a child forked in between stays out)
        from pyrunc.linux import intelrdt

        try:
            intelrdt.join(st["intel_rdt"], lh.pid, gone_ok=True)
        except RuntimeErr:
            os.kill(lh.pid, 9)
            raise
    if msock is not None:
        from pyrunc.linux import sys as LS

        master = LS.recv_fd(msock)
        os.close(msock)
    return lh.pid, master
