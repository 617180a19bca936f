"""The container's init, from fork to execve.

stage1 (forked by the runtime): join/unshare namespaces, let the parent write the id maps, fork
stage2 (pid 1 of a new PID namespace), report its pid, exit. stage2: rootfs, hooks handshake,
hostname, sysctl, console, rlimits, user, capabilities, then block on the exec fifo until `start`,
then execve. Every failure before the fifo goes back to the parent over the pipe as one line, so
the runtime prints one clear error and cleans up; nothing here prints a traceback.
"""

from __future__ import annotations

import errno
import os
import stat

from pyrunc.errors import RuntimeErr, oserror_text
from pyrunc.linux import capabilities, namespaces, rlimits, sysctl
from pyrunc.linux import sys as S
from pyrunc.linux.files import write_file


def send(w: int, line: str) -> None:
    os.write(w, (line.replace("\n", " ") + "\n").encode())


def wait_go(r: int) -> None:
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = os.read(r, 64)
        if not chunk:
            os._exit(1)  # parent gone: nothing to report to
        buf += chunk
    if buf.strip() != b"go":
        os._exit(1)


def fail(w: int, e: BaseException, debug: bool = False) -> None:
    if isinstance(e, RuntimeErr):
        msg = str(e)
    elif isinstance(e, OSError):
        msg = oserror_text(e)
    else:
        msg = f"{type(e).__name__}: {e}"
    if debug:
        try:
            import traceback

            traceback.print_exc()
        except ImportError:
            pass
    try:
        send(w, "error " + msg)
    finally:
        os._exit(1)


def wait_cgroup(plan, r: int) -> None:  # noqa: ANN001
    """Block until the parent has moved us into the rest of the container's cgroups (once).

    Usually we joined them all ourselves as the fork's first act (cgroups.SelfJoin) and the
    parent's "go" is already waiting. What the parent must move for us (cgroup2 where clone3
    could not place us) waits for an RCU grace period (10-20 ms here), so the parent does it
    while we build the rootfs, and we wait only where membership starts to matter -- before a
    new cgroup namespace is made, before hooks, and before we report ready.
    """
    if not plan.cgroup_joined:
        wait_go(r)
        plan.cgroup_joined = True
        if plan.new_cgroupns:
            S.unshare(S.CLONE_NEWCGROUP)


def _exec_lsm(plan) -> None:  # noqa: ANN001
    """exec: the LSM exec attributes go through our /proc before we join anything (setns into
    a user namespace would also change the credentials the kernel checks the write against)."""
    if plan.is_exec and (plan.process.get("apparmorProfile") or plan.process.get("selinuxLabel")):
        from pyrunc.linux import lsm

        lsm.apply(plan.process)


def _preload(plan) -> None:  # noqa: ANN001
    """Modules used after the container's mount namespace is joined or its root entered, when
    the Python tree is out of reach: the Plan imported them in the runtime, but a sealed
    re-exec (sealed.resume) starts without them."""
    if plan.sched_attr or plan.ioprio is not None or plan.cpus_initial or plan.cpus_final:
        from pyrunc.linux import sched  # noqa: F401
    if plan.mempolicy is not None:
        from pyrunc.linux import mempolicy  # noqa: F401


def _proc_attrs(plan) -> None:  # noqa: ANN001
    """linux.memoryPolicy, process.ioPriority and process.scheduler (runc's order), made by the
    process that will exec the container's program, once it is in its cgroups (their cpuset
    decides which CPUs and nodes the kernel allows) and before any seccomp filter or the
    switch to the container's user and capabilities."""
    if plan.mempolicy is not None:
        from pyrunc.linux import mempolicy

        mempolicy.apply(plan.mempolicy, plan.config["linux"]["memoryPolicy"])
    if plan.ioprio is not None or plan.sched_attr:
        from pyrunc.linux import sched

        if plan.ioprio is not None:
            sched.apply_ioprio(plan.ioprio, plan.process["ioPriority"])
        if plan.sched_attr:
            sched.apply_scheduler(plan.sched_attr, plan.process["scheduler"])


def stage1(plan, r: int, w: int) -> None:  # noqa: ANN001
    try:
        _preload(plan)
        _exec_lsm(plan)
        namespaces.join_fds(plan.join_fds)
        flags = plan.new_ns & ~S.CLONE_NEWCGROUP
        if flags & S.CLONE_NEWUSER:
            S.unshare(S.CLONE_NEWUSER)
            # without root our maps are written by us (or newuidmap) as our own uid, which a
            # non-dumpable process's /proc files (owned by root) refuse: dumpable just for
            # that, as runc's nsexec; nothing else is in this namespace yet
            if plan.rootless:
                S.prctl(S.PR_SET_DUMPABLE, 1)
            send(w, "userns")
            wait_go(r)
            if plan.rootless:
                S.prctl(S.PR_SET_DUMPABLE, 0)
            os.setresgid(0, 0, 0)
            os.setresuid(0, 0, 0)
            flags &= ~S.CLONE_NEWUSER
        if flags:
            S.unshare(flags)
        if flags & S.CLONE_NEWTIME:
            _time_offsets(plan.config.get("linux", {}).get("timeOffsets") or {})
        pid = os.fork()
        if pid == 0:
            (exec_stage2 if plan.is_exec else stage2)(plan, r, w)
        send(w, f"pid {pid}")
    except BaseException as e:
        fail(w, e, plan.debug)
    os._exit(0)


def direct(plan, r: int, w: int) -> None:  # noqa: ANN001
    """The init forked by the runtime straight into its PID namespace (no user or time
    namespace to create, so no intermediate process is needed): join and unshare the rest,
    then carry on as stage2."""
    try:
        _preload(plan)
        _exec_lsm(plan)
        namespaces.join_fds([(t, fd) for t, fd in plan.join_fds if t != "pid"])
        flags = plan.new_ns & ~(S.CLONE_NEWCGROUP | S.CLONE_NEWPID)
        if flags:
            S.unshare(flags)
    except BaseException as e:
        fail(w, e, plan.debug)
    (exec_stage2 if plan.is_exec else stage2)(plan, r, w)


def _time_offsets(offsets: dict) -> None:
    lines = []
    for clock in ("monotonic", "boottime"):
        o = offsets.get(clock)
        if o:
            lines.append(f"{clock} {o.get('secs', 0)} {o.get('nanosecs', 0)}\n")
    if lines:
        write_file("/proc/self/timens_offsets", "".join(lines))


def stage2(plan, r: int, w: int) -> None:  # noqa: ANN001
    from pyrunc.init import rootfs

    proc = plan.process
    plan.report = (r, w)
    try:
        _die_on_signals()
        os.setsid()
        if plan.new_ns & S.CLONE_NEWNET:
            S.loopback_up()
        if (plan.config.get("linux") or {}).get("netDevices"):
            # our network namespace exists (made or joined): the parent moves the devices in
            # now, before hooks and before the container's process (the parent answers in
            # order, so the cgroup's "go" is taken first)
            wait_cgroup(plan, r)
            send(w, "netdev")
            wait_go(r)
        if not plan.no_new_keyring:
            try:
                S.join_session_keyring(f"_ses.{plan.cid}")
            except OSError:
                pass  # keyrings may be unavailable (or denied by seccomp): runc carries on too
        if plan.hooks.get("createContainer") or plan.hooks.get("startContainer"):
            from pyrunc import hooks as hk

            hk.preload()  # the Python tree is out of reach once the rootfs is '/'
        # sysctls through the runtime's own /proc, before the container's mounts exist: the
        # values land in our (the container's) namespaces, and no mount of the config can
        # redirect the writes (CVE-2025-52881 class)
        sysctl.apply(plan.config.get("linux", {}).get("sysctl") or {})
        if proc.get("apparmorProfile") or proc.get("selinuxLabel"):
            from pyrunc.linux import lsm

            plan.lsm_fds = lsm.open_attrs(proc)  # written in finalize(); same reason
        rootfd = rootfs.prepare(plan, lambda: wait_cgroup(plan, r))
        hooks = plan.hooks
        if plan.new_cgroupns or hooks.get("prestart") or hooks.get("createRuntime") or (
            hooks.get("createContainer")
        ):
            wait_cgroup(plan, r)  # cgroupns is made after the join; hooks see us in the cgroup
        if hooks.get("prestart") or hooks.get("createRuntime"):
            send(w, "hooks")
            wait_go(r)
        if hooks.get("createContainer"):
            from pyrunc import hooks as hk

            os.chdir(plan.rootfs)
            hk.run_list(hooks["createContainer"], plan.hook_state("creating"), "createContainer")
        rootfs.enter(plan, rootfd)
        os.close(rootfd)
        _make_cwd(plan)
        if plan.config.get("hostname") and plan.new_ns & S.CLONE_NEWUTS:
            S.sethostname(plan.config["hostname"])
        if plan.config.get("domainname") and plan.new_ns & S.CLONE_NEWUTS:
            S.setdomainname(plan.config["domainname"])
        if plan.console_fd >= 0:
            _console(plan)
        rootfs.finish(plan)
        rlimits.apply(proc.get("rlimits") or [])
        pers = plan.config.get("linux", {}).get("personality")
        if pers:
            S.personality(0x0008 if pers.get("domain") == "LINUX32" else 0)
        if plan.mempolicy is not None or plan.ioprio is not None or plan.sched_attr:
            wait_cgroup(plan, r)
            _proc_attrs(plan)
        exe = finalize(plan)
        wait_cgroup(plan, r)
        if plan.rootless:
            # exec into a created container opens our /proc/<pid>/ns files, which a runtime
            # without root may not do to a non-dumpable process (the kernel wants
            # CAP_SYS_PTRACE where our memory was made: the host). Nothing here is worth
            # more than the user's own uid, which already owns all we hold; runc's init
            # stays dumpable in this case too
            S.prctl(S.PR_SET_DUMPABLE, 1)
        send(w, "ready")
        os.close(w)
        os.close(r)
    except BaseException as e:
        fail(w, e, plan.debug)
    _wait_fifo_and_exec(plan, exe)


def _die_on_signals() -> None:
    """As pid 1 of a new PID namespace we only receive signals we handle, even from the host:
    handle the terminating ones so `kill` of a created container works as with runc. execve
    resets handlers, so the container's process starts with the defaults."""
    import _signal

    def die(sig: int, _frame: object) -> None:
        os._exit(128 + sig)

    for sig in (1, 2, 3, 10, 12, 14, 15):
        _signal.signal(sig, die)
    _default_at_execve()


def _default_at_execve() -> None:
    """Python starts with SIGPIPE and SIGXFSZ ignored, and execve keeps an ignored signal
    ignored: the container's program would get EPIPE/EFBIG where it expects to be killed.
    A handler (unlike SIG_IGN) is reset by execve, and needs no syscall after the seccomp
    filter; until then it keeps our own writes to a closed pipe (a hook that exits without
    reading its stdin) an EPIPE error rather than our death."""
    import _signal

    def ignore(_sig: int, _frame: object) -> None:
        pass

    for sig in (13, 25):  # SIGPIPE, SIGXFSZ
        _signal.signal(sig, ignore)


def exec_stage2(plan, r: int, w: int) -> None:  # noqa: ANN001
    """A process joining a running container: console, rlimits, user, then execve."""
    plan.report = (r, w)
    try:
        _default_at_execve()
        if plan.chroot_pid:
            # a container without a mount namespace of its own: joining its namespaces does
            # not change our root; its init's root is the container's
            fd = os.open(f"/proc/{plan.chroot_pid}/root", S.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            os.fchdir(fd)
            os.close(fd)
            S.chroot(".")
        # a session of its own even without a console (as runc): left in the caller's
        # session, the process could open the caller's terminal and TIOCSTI into it
        os.setsid()
        if plan.console_fd >= 0:
            _console(plan)
        rlimits.apply(plan.process.get("rlimits") or [])
        if (
            plan.cpus_initial
            or plan.cpus_final
            or plan.mempolicy is not None
            or plan.ioprio is not None
            or plan.sched_attr
        ):
            wait_cgroup(plan, r)
            if plan.cpus_initial or plan.cpus_final:
                from pyrunc.linux import sched

                # in the container's cgroups now: `final`, or without one the CPUs of their
                # cpuset (the spec's default), not the `initial` we were started on
                if plan.cpus_final:
                    sched.set_affinity(plan.cpus_final, "final")
                else:
                    sched.reset_affinity()
            _proc_attrs(plan)
        exe = finalize(plan)
        wait_cgroup(plan, r)
        if plan.rootless:
            # exec into a created container opens our /proc/<pid>/ns files, which a runtime
            # without root may not do to a non-dumpable process (the kernel wants
            # CAP_SYS_PTRACE where our memory was made: the host). Nothing here is worth
            # more than the user's own uid, which already owns all we hold; runc's init
            # stays dumpable in this case too
            S.prctl(S.PR_SET_DUMPABLE, 1)
        send(w, "ready")
        os.close(w)
        os.close(r)
    except BaseException as e:
        fail(w, e, plan.debug)
    _wait_fifo_and_exec(plan, exe)


def _console(plan) -> None:  # noqa: ANN001
    try:
        master, slave = os.openpty()
    except OSError as e:
        raise RuntimeErr(
            f"process.terminal: cannot allocate a pty in the container: openpty: {e.strerror} "
            "(is devpts mounted at /dev/pts, with /dev/ptmx?)"
        ) from None
    size = plan.process.get("consoleSize")
    if size and size.get("height") and size.get("width"):
        S.set_winsize(master, size["height"], size["width"])
    slave_path = os.ttyname(slave)
    if not plan.is_exec:
        try:
            # no symlink anywhere on the way (CVE-2025-52565 class): a container-made
            # /dev/console -> /proc/... must not get the pty bound over a procfs file
            root = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                fd = S.openat2(
                    root,
                    "dev/console",
                    os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW,
                    S.RESOLVE_NO_SYMLINKS,
                    0o600,
                )
            finally:
                os.close(root)
            os.close(fd)
            S.mount(slave_path, "/dev/console", None, S.MS_BIND)
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise RuntimeErr(
                    "/dev/console in the container is a symlink -- refusing to mount the "
                    "console over it (possible attack)"
                ) from None
    S.send_fd(plan.console_fd, master, "/dev/ptmx")
    os.close(master)
    os.close(plan.console_fd)
    plan.console_fd = -1
    for i in (0, 1, 2):
        os.dup2(slave, i)
    if slave > 2:
        os.close(slave)
    S.set_controlling_tty(0)


def _make_cwd(plan) -> None:  # noqa: ANN001
    """runc creates a missing cwd, before the root becomes read-only."""
    try:
        os.makedirs(plan.process.get("cwd") or "/", 0o755, exist_ok=True)
    except OSError:
        pass  # chdir reports it, with the user's view of the problem


def _passwd_home(uid: int) -> str:
    try:
        with open("/etc/passwd", "rb") as f:
            for line in f.read().decode(errors="replace").splitlines():
                parts = line.split(":")
                if len(parts) >= 6 and parts[2] == str(uid):
                    return parts[5] or "/"
    except OSError:
        pass
    return "/"


def finalize(plan) -> str:  # noqa: ANN001
    """umask, user, capabilities, cwd, no_new_privs; returns the executable's path."""
    proc = plan.process
    user = proc.get("user") or {}
    uid, gid = user.get("uid", 0), user.get("gid", 0)
    umask = user.get("umask")
    os.umask(0o022 if umask is None else umask)
    env = plan.env
    if not any(e.startswith("HOME=") for e in env):
        env.append("HOME=" + _passwd_home(uid))
    cwd = proc.get("cwd") or "/"
    chdir_later = True
    try:
        os.chdir(cwd)
        chdir_later = False
    except PermissionError:
        pass
    except OSError as e:
        raise RuntimeErr(
            f"chdir to cwd ({cwd!r}) set in config.json failed: {e.strerror}"
        ) from None
    if not chdir_later:
        # before any seccomp filter: the check must not depend on a syscall the container's
        # profile may deny (getcwd, say)
        _check_cwd_inside(cwd)
    _fix_stdio(uid)
    # no runtime fd survives the execve; marked now, before a seccomp profile that may not
    # know close_range(2) (it only takes effect at execve: the fds still work until then)
    S.close_range(3 + plan.preserve_fds + plan.listen_fds, 0xFFFFFFFF, S.CLOSE_RANGE_CLOEXEC)
    if plan.lsm_fds:
        from pyrunc.linux import lsm  # imported by Plan's check, before pivot_root

        lsm.write_attrs(plan.lsm_fds)
    groups = list(user.get("additionalGids") or [])
    try:  # read before the filter is loaded, like everything that is not the switch itself
        with open("/proc/self/setgroups", "rb") as f:
            setgroups_ok = f.read().strip() != b"deny"
    except OSError:
        setgroups_ok = True
    # without root the groups stay as they came (runc): dropping one could get past a
    # negative ACL on the host, which is why the kernel guards setgroups(2) in the first place
    setgroups_ok = setgroups_ok and not plan.rootless
    nnp = bool(proc.get("noNewPrivileges"))
    if plan.notify_sock >= 0:
        # the cgroup join's "go" must be read before the filter can notify read(2)
        wait_cgroup(plan, plan.report[0])
    if plan.seccomp is not None and not nnp:
        # without no_new_privs loading a filter needs CAP_SYS_ADMIN: before the caps go
        from pyrunc.linux import seccomp

        fd = seccomp.load(plan.seccomp, plan.config["linux"]["seccomp"])
        _notify_hand_off(plan, fd)
    capabilities.drop_bounding(plan.caps.bounding)
    S.prctl(S.PR_SET_KEEPCAPS, 1)
    if setgroups_ok:
        # exactly the config's additionalGids, as runc: never the image's /etc/group, which
        # would let whoever built the image pick the groups (disk, docker, ...) we grant
        os.setgroups(groups)
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    S.prctl(S.PR_SET_KEEPCAPS, 0)
    capabilities.apply(plan.caps)
    if chdir_later:
        # only the user may enter cwd (root was refused): the check runs now, possibly under
        # the filter (runc's chdir is there too)
        try:
            os.chdir(cwd)
        except OSError as e:
            raise RuntimeErr(
                f"chdir to cwd ({cwd!r}) set in config.json failed: {e.strerror}"
            ) from None
        _check_cwd_inside(cwd)
    exe = lookpath(proc.get("args") or [], env)
    if nnp:
        S.prctl(S.PR_SET_NO_NEW_PRIVS, 1)
        if plan.seccomp is not None:  # as late as possible: fewer syscalls run under it
            from pyrunc.linux import seccomp

            fd = seccomp.load(plan.seccomp, plan.config["linux"]["seccomp"])
            _notify_hand_off(plan, fd)
    return exe


def _notify_hand_off(plan, fd: int) -> None:  # noqa: ANN001
    """Right after the filter is in force: give its notify fd (seccomp.load's) to the runtime
    (which passes it to the agent) and wait until the agent has it, with as few syscalls as
    possible in between -- any of them may be one the agent must answer."""
    if plan.notify_sock < 0:
        return
    r, w = plan.report
    S.send_fd(plan.notify_sock, fd, "seccomp")  # sendmsg; write(2) cannot be notified
    send(w, "seccomp")
    wait_go(r)  # a notified read(2) is answered by the agent, which has the fd by now
    os.close(fd)  # (close(2) too: only now may it be notified)
    os.close(plan.notify_sock)
    plan.notify_sock = -1


def _check_cwd_inside(cwd: str) -> None:
    """CVE-2024-21626 class: a cwd of /proc/self/fd/N through any fd open here (the caller's,
    inherited, or ours) could land outside the container's root. The kernel knows: getcwd(2)
    reports such a directory as "(unreachable)", which glibc turns into ENOENT."""
    try:
        here = os.getcwd()
    except FileNotFoundError:
        here = "(unreachable)"  # glibc's word for the kernel's "(unreachable)/..."
    except OSError as e:
        raise RuntimeErr(
            f"process.cwd {cwd!r}: cannot verify that the working directory is inside the "
            f"container's root: getcwd: {e.strerror} (denied by linux.seccomp?)"
        ) from None
    if not here.startswith("/"):
        raise RuntimeErr(
            f"process.cwd {cwd!r}: the working directory is outside the container's root "
            "-- possible container breakout detected"
        )


def _fix_stdio(uid: int) -> None:
    try:
        null = os.stat("/dev/null").st_rdev
    except OSError:
        null = -1
    for fd in (0, 1, 2):
        try:
            st = os.fstat(fd)
        except OSError:
            continue
        if st.st_uid == uid or st.st_rdev == null:
            continue
        try:
            os.fchown(fd, uid, st.st_gid)
        except OSError:
            pass


def lookpath(args: list[str], env: list[str]) -> str:
    if not args:
        raise RuntimeErr("process.args: args must not be empty")
    name = args[0]
    if "/" in name:
        # Go's exec.LookPath, which runc calls before it reports the container created: a
        # directory or a file with no execute bit fails create, not the process after start
        try:
            st = os.stat(name)
        except OSError as e:
            why = (e.strerror or "").lower()
            raise RuntimeErr(f'exec: "{name}": stat {name}: {why}') from None
        if stat.S_ISDIR(st.st_mode) or not st.st_mode & 0o111:
            raise RuntimeErr(f'exec: "{name}": permission denied')
        return name
    path = ""
    for e in env:
        if e.startswith("PATH="):
            path = e[5:]
    for d in path.split(":"):
        cand = os.path.join(d or ".", name)
        if os.path.isfile(cand) and os.access(cand, os.X_OK):
            return cand
    raise RuntimeErr(f'exec: "{name}": executable file not found in $PATH')


def _refuse_runtime_exe(exe: str) -> None:
    """CVE-2019-5736 class: the container's program must not be the runtime itself. Until the
    execve our /proc/self/exe is the host's Python interpreter; a program that is (or whose
    #! interpreter chain leads to) /proc/self/exe would run the host's binary inside the
    container, dumpable, and let the container reopen it for writing once it exits. Follow
    the chain as binfmt_script does (it stops after a few levels too) and refuse it."""
    try:
        own = os.stat("/proc/self/exe")
    except OSError:
        return  # no procfs in the container (or a profile that forbids stat): nothing to compare
    path = exe
    for _ in range(5):
        try:
            st = os.stat(path)
        except OSError:
            return  # execve will report it
        if (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino):
            raise RuntimeErr(
                f"exec {exe}: it resolves to the runtime's own executable (/proc/self/exe) "
                "-- refusing (possible container breakout)"
            )
        try:
            with open(path, "rb") as f:
                head = f.read(256)
        except OSError:
            return
        if not head.startswith(b"#!"):
            return
        words = head[2:].split(b"\n", 1)[0].split()
        if not words:
            return
        path = words[0].decode(errors="replace")


def _wait_fifo_and_exec(plan, exe: str) -> None:  # noqa: ANN001
    try:
        if plan.fifo_fd >= 0:
            # blocks until `start` opens the fifo; the byte that releases `start` is written
            # only once the startContainer hooks have passed, so that a failing one fails
            # `start` (the spec) instead of a start that already reported success (runc 1.1)
            fd = os.open(f"/proc/self/fd/{plan.fifo_fd}", os.O_WRONLY | os.O_CLOEXEC)
            os.close(plan.fifo_fd)
            if plan.hooks.get("startContainer") and not plan.is_exec:
                from pyrunc import hooks as hk

                state = plan.hook_state("created")
                hk.run_list(plan.hooks["startContainer"], state, "startContainer")
            # fd stays open (O_CLOEXEC) until the execve below succeeds: `start` waits for
            # that EOF, so when it returns pid 1 is the container's program, not us
            os.write(fd, b"0")
        env = plan.env
        _refuse_runtime_exe(exe)
        os.execve(exe, plan.process.get("args"), dict(_env_pairs(env)))
    except BaseException as e:
        msg = (
            str(e)
            if isinstance(e, RuntimeErr)
            else (f"exec {exe}: {e.strerror}" if isinstance(e, OSError) else repr(e))
        )
        try:
            os.write(2, f"pyrunc init: {msg}\n".encode())
        finally:
            os._exit(127 if isinstance(e, OSError) else 1)


def _env_pairs(env: list[str]) -> list[tuple[str, str]]:
    out = []
    for e in env:
        k, _, v = e.partition("=")
        out.append((k, v))
    return out
