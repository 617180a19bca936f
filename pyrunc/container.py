"""Container lifecycle: create, start, state, kill, delete, list (runc's state machine).

created -> running -> stopped, with paused beside running. Status is derived on every call
(state.status); this module only moves containers between states and cleans up after them.
"""

from __future__ import annotations

import os
import time

from pyrunc import OCI_VERSION, fastjson, log
from pyrunc import state as S
from pyrunc.errors import ConfigError, NotFound, RuntimeErr
from pyrunc.linux import cgroups

SIGNALS = {
    "HUP": 1,
    "INT": 2,
    "QUIT": 3,
    "ILL": 4,
    "TRAP": 5,
    "ABRT": 6,
    "IOT": 6,
    "BUS": 7,
    "FPE": 8,
    "KILL": 9,
    "USR1": 10,
    "SEGV": 11,
    "USR2": 12,
    "PIPE": 13,
    "ALRM": 14,
    "TERM": 15,
    "STKFLT": 16,
    "CHLD": 17,
    "CLD": 17,
    "CONT": 18,
    "STOP": 19,
    "TSTP": 20,
    "TTIN": 21,
    "TTOU": 22,
    "URG": 23,
    "XCPU": 24,
    "XFSZ": 25,
    "VTALRM": 26,
    "PROF": 27,
    "WINCH": 28,
    "IO": 29,
    "POLL": 29,
    "PWR": 30,
    "SYS": 31,
    "UNUSED": 31,
}


def parse_signal(raw: str) -> int:
    """runc's parseSignal: a number (Go's Atoi takes "+9"), or a name with or without SIG;
    an empty one is runc's default, SIGTERM."""
    if not raw:
        return SIGNALS["TERM"]
    if raw.removeprefix("+").isdigit():
        return int(raw)
    name = raw.upper().removeprefix("SIG")
    if name.startswith("RTMIN") or name.startswith("RTMAX"):
        base = 34 if name.startswith("RTMIN") else 64
        off = name[5:]
        try:
            return base + int(off) if off else base
        except ValueError:
            pass
    if name not in SIGNALS:
        raise RuntimeErr(f'unknown signal "{raw}"')
    return SIGNALS[name]


# ---- loading a bundle ---------------------------------------------------------------------


def load_config(bundle: str) -> dict:
    path = os.path.join(bundle, "config.json")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise ConfigError("JSON specification file config.json not found") from None
    except OSError as e:
        raise ConfigError(f"config.json: {e.strerror}") from None
    try:
        config = fastjson.loads(data)
    except ValueError as e:
        raise ConfigError(f"config.json: {e}") from None
    from pyrunc.validate import validate

    try:
        if b"\\u" in data:  # only escapes can make NULs or lone surrogates
            config = _clean_strings(config, "")
        validate(config, "config")
    except RecursionError:
        raise ConfigError("config.json: nested too deeply") from None
    return config


def _clean_strings(v: object, where: str) -> object:
    """Strings as Go's decoder leaves them (a lone UTF-16 surrogate becomes U+FFFD), and no NUL
    byte anywhere: every string may end up in a path, an argv or an environment, where the
    kernel cannot take one; say where it is instead of failing somewhere deep."""
    if isinstance(v, str):
        if "\x00" in v:
            raise ConfigError(f"config.json: {where.lstrip('.') or '(root)'}: contains a NUL byte")
        if any("\ud800" <= c <= "\udfff" for c in v):
            return "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in v)
        return v
    if isinstance(v, list):
        return [_clean_strings(x, f"{where}[{i}]") for i, x in enumerate(v)]
    if isinstance(v, dict):
        return {
            _clean_strings(k, f"{where}.{k!r}"): _clean_strings(x, f"{where}.{k}")
            for k, x in v.items()
        }
    return v


def _rootfs(bundle: str, config: dict) -> str:
    root = (config.get("root") or {}).get("path")
    if not root:
        raise ConfigError("config.json: root.path: a root filesystem is required")
    path = os.path.normpath(os.path.join(bundle, root))
    if not os.path.isdir(path):
        raise ConfigError(f"rootfs ({path}) does not exist")
    return os.path.realpath(path)


# ---- create / start ------------------------------------------------------------------------


def _size_from_our_terminal(master: int) -> None:
    """A foreground container's pty takes our terminal's size before its process starts (as
    runc's does), so its first `stty size` is right; SIGWINCH keeps it so (foreground.py)."""
    from pyrunc.linux import sys as LS

    try:
        rows, cols = LS.get_winsize(0)
        LS.set_winsize(master, rows, cols)
    except OSError:
        pass  # (stdin is no terminal)


class Created:
    """What `create` leaves for `run` to continue with."""

    def __init__(self, st: dict, cdir: str, console_master: int = -1) -> None:
        self.st = st
        self.cdir = cdir
        self.console_master = console_master


def create(
    root: str,
    cid: str,
    bundle: str,
    *,
    console_socket: str = "",
    pid_file: str = "",
    no_pivot: bool = False,
    no_new_keyring: bool = False,
    preserve_fds: int = 0,
    detach: bool = True,
    debug: bool = False,
    stdio: tuple[int, int, int] | None = None,
    rootless_cgroups: bool | None = None,
) -> Created:
    """stdio: the init's 0/1/2 (default: ours), for library callers such as the shim.
    rootless_cgroups: skip cgroups we may not create (rootless.py; None: --rootless auto)."""
    S.valid_id(cid)
    bundle = os.path.abspath(bundle or ".")
    if pid_file:
        pid_file = os.path.abspath(pid_file)  # relative to the caller's cwd, not the bundle
    if not os.path.isdir(bundle):
        raise ConfigError(f"bundle {bundle}: no such directory")
    os.chdir(bundle)
    config = load_config(bundle)
    rootfs = _rootfs(bundle, config)
    proc = config.get("process")
    if not proc:
        raise ConfigError("config.json: process: a process is required to create a container")
    terminal = bool(proc.get("terminal"))
    if terminal and detach and not console_socket:
        raise ConfigError("cannot allocate tty if runc will detach without setting console socket")
    if not terminal and console_socket:
        raise ConfigError("cannot use console socket if runc will not detach or allocate tty")
    from pyrunc.init.plan import Plan
    from pyrunc.linux import idmap, mounts, namespaces

    plan = Plan(cid, bundle, rootfs, config)
    net_devices = (config.get("linux") or {}).get("netDevices")
    if net_devices:
        # here rather than in Plan, which exec builds too (by then the devices have moved)
        from pyrunc.linux import netdev

        netdev.check(net_devices, config["linux"].get("namespaces") or [])
    plan.no_pivot = no_pivot
    plan.no_new_keyring = no_new_keyring
    plan.stdio = stdio
    plan.preserve_fds = preserve_fds
    plan.debug = debug
    from pyrunc.init import sealed

    plan.sealed = sealed.needed(plan)
    lf = os.environ.get("LISTEN_FDS", "")
    # socket activation fds are ours to pass on only if they were meant for us (sd_listen_fds)
    if lf.isdigit() and int(lf) > 0 and os.environ.get("LISTEN_PID") == str(os.getpid()):
        plan.listen_fds = int(lf)
        plan.env += [f"LISTEN_FDS={lf}", "LISTEN_PID=1"]
    try:
        os.makedirs(root, 0o700, exist_ok=True)
    except PermissionError:
        hint = " (without root: set XDG_RUNTIME_DIR, or pass --root)" if plan.rootless else ""
        raise RuntimeErr(f"--root: cannot create the state directory {root}{hint}") from None
    cdir = S.container_dir(root, cid)
    try:
        os.mkdir(cdir, 0o711)
    except FileExistsError:
        raise RuntimeErr(f"container with given ID already exists: {cid}") from None
    made: list[str] = []
    launch = None
    # no mount namespace of its own: the container's mounts go into ours, under the rootfs
    shared_mnt: set[int] | None = None if plan.own_mntns else mounts.ids_at(rootfs)
    master = -1
    sock = None
    moved = None  # netdev.Moved, once the init asked for its network devices
    rdt = None  # linux.intelRdt: the container's resctrl group, once made (linux/intelrdt.py)
    try:
        fifo = os.path.join(cdir, S.FIFO)
        old = os.umask(0)
        try:
            os.mkfifo(fifo, 0o622)
        finally:
            os.umask(old)
        if plan.in_userns:
            try:
                os.chown(fifo, idmap.host_id(plan.uid_maps, 0), idmap.host_id(plan.gid_maps, 0))
            except PermissionError:
                if not plan.rootless:
                    raise
                # (a user cannot give it to a subuid: its 0622 lets the container's root in)
        plan.fifo_fd = os.open(fifo, os.O_PATH | os.O_CLOEXEC)
        plan.join_fds = namespaces.open_for_join(plan.join)
        plan.open_bind_sources()
        cg_path = (config.get("linux") or {}).get("cgroupsPath")
        plan.cgroup_paths = cgroups.paths_for(cg_path, cid)
        if rootless_cgroups is None:
            from pyrunc import rootless

            rootless_cgroups = rootless.cgroups("auto")
        made = cgroups.create(plan.cgroup_paths, rootless_cgroups, explicit=bool(cg_path))
        if cgroups.frozen(plan.cgroup_paths):
            raise RuntimeErr("container's cgroup unexpectedly frozen")
        if not made and cgroups.pids(plan.cgroup_paths):
            log.warn("container's cgroup is not empty: processes of something else run in it")
        res = (config.get("linux") or {}).get("resources") or {}
        cgroups.apply_resources(plan.cgroup_paths, res, rootless=rootless_cgroups)
        if (config.get("linux") or {}).get("intelRdt") is not None:
            from pyrunc.linux import intelrdt

            rdt = intelrdt.setup(config["linux"]["intelRdt"], cid)
        if terminal:
            sock, master_sock = console_sockets(console_socket)
            plan.console_fd = sock
        st = {
            "ociVersion": config.get("ociVersion", OCI_VERSION),
            "id": cid,
            "pid": 0,
            "start_time": 0,
            "bundle": bundle,
            "rootfs": rootfs,
            "created": S.rfc3339nano(time.time_ns()),
            "owner": "",
            "annotations": config.get("annotations") or {},
            "cgroup": plan.cgroup_paths,
            "cgroup_made": made,
            "config": config,
        }
        from pyrunc.init import launch as L

        def on_hooks(lh: L.Launch) -> None:
            from pyrunc import hooks

            hs = dict(S.hook_state(st, "creating"), pid=lh.pid)
            for kind in ("prestart", "createRuntime"):
                hooks.run_list(plan.hooks.get(kind) or [], hs, kind)

        def on_netdev(lh: L.Launch) -> None:
            nonlocal moved
            from pyrunc.linux import netdev

            moved = netdev.Moved(lh.pid)
            moved.move_in(net_devices)

        launch = L.start(plan, on_hooks, on_netdev if net_devices else None)
        if sock is not None:
            os.close(sock)
            sock = None
            if master_sock is not None:
                from pyrunc.linux import sys as LS

                master = LS.recv_fd(master_sock)
                os.close(master_sock)
                _size_from_our_terminal(master)
        st["pid"] = launch.pid
        st["start_time"] = S.proc_start_time(launch.pid) or 0
        if rdt:
            intelrdt.join(rdt, launch.pid)
            st["intel_rdt"] = rdt
        if shared_mnt is not None:
            st["rootfs_mounts"] = _rootfs_binds(rootfs, shared_mnt)
        S.save(cdir, st)
        if pid_file:
            S.write_atomic(pid_file, str(launch.pid), 0o644)
        os.close(plan.fifo_fd)
        if moved is not None:
            moved.close()  # the devices now live and die with the container's namespace
        return Created(st, cdir, master)
    except BaseException:
        if launch is not None and launch.pid:
            _kill_wait(launch.pid)
        if moved is not None:
            moved.undo()  # (the namespace outlived the init: `moved` holds it)
            moved.close()
        if sock is not None:
            os.close(sock)
        if shared_mnt is not None:
            mounts.detach(rootfs, _rootfs_binds(rootfs, shared_mnt))
        if rdt:
            intelrdt.remove(rdt, failed=True)
        _cleanup(cdir, plan.cgroup_paths, made)
        raise


def _rootfs_binds(rootfs: str, before: set[int]) -> list[int]:
    """The init's bind of the rootfs onto itself in our mount namespace, which holds all the
    container's other mounts, and whatever its config stacked on it (a mount at "/")."""
    from pyrunc.linux import mounts

    return sorted(mounts.ids_at(rootfs) - before)


def console_sockets(path: str) -> tuple[int, int | None]:
    """(fd for the init to send the pty master on, our receiving end or None)."""
    import socket

    if path:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
        except OSError as e:
            s.close()
            raise RuntimeErr(f"failed to connect to console socket {path}: {e.strerror}") from None
        return s.detach(), None
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    return a.detach(), b.detach()


def _cleanup(cdir: str, paths: dict[str, str], made: list[str]) -> None:
    if made:
        try:
            cgroups.destroy(sorted(made, reverse=True))
        except RuntimeErr as e:
            log.warn(str(e))
    _rmtree(cdir)


def _rmtree(path: str) -> None:
    try:
        names = os.listdir(path)
    except FileNotFoundError:
        return
    for n in names:
        p = os.path.join(path, n)
        if os.path.isdir(p) and not os.path.islink(p):
            _rmtree(p)
        else:
            try:
                os.unlink(p)
            except FileNotFoundError:
                pass
    try:
        os.rmdir(path)
    except FileNotFoundError:
        pass


def _kill_wait(pid: int, timeout: float = 10.0) -> None:
    try:
        os.kill(pid, 9)
    except ProcessLookupError:
        return
    try:
        os.waitpid(pid, 0)
        return
    except ChildProcessError:
        pass
    deadline = time.monotonic() + timeout
    while S.proc_start_time(pid) is not None and time.monotonic() < deadline:
        time.sleep(0.002)


def start(root: str, cid: str, st: dict | None = None) -> dict:
    """st: the state `create` just wrote, when the caller has it (run), to skip re-reading it."""
    with S.Locked(root, cid):
        return _start(root, cid, st or S.load(root, cid))


def _stopped_while_starting(st: dict) -> str:
    if ((st.get("config") or {}).get("hooks") or {}).get("startContainer"):
        # the init runs them between our opening the fifo and its releasing us: it says
        # which hook failed and why on the container's stderr
        return "startContainer hook failed: the container has stopped (its stderr has the error)"
    return "cannot start a container that has stopped"


def _await_init(fd: int, st: dict, exec_timeout: float = 10.0) -> None:
    """Read the init's end of the exec fifo: first the byte it writes once the
    startContainer hooks have passed, then EOF, when its execve closes that end (O_CLOEXEC).
    So once `start` returns pid 1 is the container's program (runc returns a moment before,
    and callers that look at pid 1 at once can see the runtime). An execve that fails closes
    it too, as the init exits; `exec_timeout` only bounds the second wait."""
    import select

    p = select.poll()
    p.register(fd, select.POLLIN)
    deadline = 0.0  # set once released
    while not deadline or time.monotonic() < deadline:
        if not p.poll(100):
            if S.alive(st):
                continue
            if deadline:
                return
            raise RuntimeErr(_stopped_while_starting(st))
        try:
            data = os.read(fd, 1)
        except BlockingIOError:
            continue
        if data:
            deadline = time.monotonic() + exec_timeout
        elif deadline:
            return  # the execve closed the init's end
        elif not S.alive(st):
            raise RuntimeErr(_stopped_while_starting(st))
        else:
            time.sleep(0.001)  # EOF before the init opened its end: wait for it


def _start(root: str, cid: str, st: dict) -> dict:
    status = S.status(root, st)
    if status != "created":
        if status == "stopped":
            raise RuntimeErr("cannot start a container that has stopped")
        raise RuntimeErr(f"cannot start an already {status} container")
    fifo = os.path.join(root, cid, S.FIFO)
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        _await_init(fd, st)
    finally:
        os.close(fd)
    try:
        os.unlink(fifo)
    except FileNotFoundError:
        pass
    hooks = (st.get("config") or {}).get("hooks") or {}
    if hooks.get("poststart"):
        from pyrunc import hooks as hk

        try:
            hk.run_list(hooks["poststart"], S.hook_state(st, "running"), "poststart")
        except RuntimeErr:
            # runtime-spec: a failing poststart hook is logged; runc then fails the start
            # and kills the container.
            _kill_wait(st["pid"])
            destroy(root, st)
            raise
    return st


# ---- state / kill / delete / list ----------------------------------------------------------


def kill(root: str, cid: str, sig: int, all_: bool = False) -> None:
    st = S.load(root, cid)
    status = S.status(root, st)
    if status == "stopped" and not all_:
        raise RuntimeErr("container not running")
    if all_:
        # like runc: signal whatever is left in the cgroup, even once the init is gone, with
        # the cgroup frozen (nothing forks past us) and thawed after, paused or not, so that
        # a KILL of a paused container takes effect
        paths = st.get("cgroup") or {}
        _freeze_quietly(paths, True)
        try:
            for pid in S.members(st):
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
        finally:
            _freeze_quietly(paths, False)
        return
    try:
        os.kill(st["pid"], sig)
    except ProcessLookupError:
        raise RuntimeErr("container not running") from None


def _freeze_quietly(paths: dict, frozen: bool) -> None:
    if not cgroups.has_freezer(paths):
        return  # gone with the container, or no freezer: nothing to hold still
    try:
        cgroups.freeze(paths, frozen, timeout=2.0)
    except (RuntimeErr, OSError) as e:
        log.warn(str(e))


def destroy(root: str, st: dict) -> None:
    """Free everything a stopped container holds: cgroups, state dir; then poststop hooks."""
    paths = st.get("cgroup") or {}
    try:
        cgroups.destroy(paths.values())
    except RuntimeErr as e:
        log.warn(str(e))
    if st.get("intel_rdt"):
        from pyrunc.linux import intelrdt

        intelrdt.remove(st["intel_rdt"])
    if st.get("rootfs_mounts"):
        from pyrunc.linux import mounts

        try:
            mounts.detach(st["rootfs"], st["rootfs_mounts"])
        except OSError as e:
            log.warn(f"unmounting the container's mounts at {st['rootfs']}: {e.strerror}")
    _rmtree(os.path.join(root, st["id"]))
    hooks = (st.get("config") or {}).get("hooks") or {}
    if hooks.get("poststop"):
        from pyrunc import hooks as hk

        # runc 1.1 stops at the first failing poststop hook; the spec wants them all run
        hk.run_list(hooks["poststop"], S.hook_state(st, "stopped"), "poststop", keep_going=True)


def delete(root: str, cid: str, force: bool = False) -> None:
    try:
        with S.Locked(root, cid):
            _delete(root, cid, force)
    except NotFound:
        if not force:
            raise


def _delete(root: str, cid: str, force: bool) -> None:
    st = S.load(root, cid)
    status = S.status(root, st)
    if status in ("running", "paused"):
        if not force:
            raise RuntimeErr(f"cannot delete container {cid} that is not stopped: {status}")
        _kill_all(st, paused=status == "paused")
    elif status == "created" or not _own_pidns(st):
        # created: the init waits on the fifo; stopped without a PID namespace of its own:
        # processes the init left behind live on in the cgroup. Either way they go, as with
        # runc. (With its own PID namespace, the kernel killed them all when the init died.)
        _kill_all(st, paused=False)
    destroy(root, st)


def _own_pidns(st: dict) -> bool:
    nss = ((st.get("config") or {}).get("linux") or {}).get("namespaces") or []
    return any(ns.get("type") == "pid" and not ns.get("path") for ns in nss)


def _kill_all(st: dict, paused: bool) -> None:
    paths = st.get("cgroup") or {}
    pids = S.members(st)
    if st["pid"] not in pids and S.alive(st):
        pids.append(st["pid"])
    for pid in pids:
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass
    if paused:
        try:
            cgroups.freeze(paths, False)
        except (RuntimeErr, OSError):
            pass
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if not any(S.proc_start_time(p) is not None for p in pids):
            break
        time.sleep(0.002)
    try:
        os.waitpid(st["pid"], os.WNOHANG)
    except ChildProcessError:
        pass


def list_all(root: str) -> list[dict]:
    out = []
    for cid in S.list_ids(root):
        try:
            st = S.load(root, cid)
        except RuntimeErr:
            continue
        out.append(S.oci_state(root, st))
    return out


def pause(root: str, cid: str, frozen: bool) -> None:
    st = S.load(root, cid)
    status = S.status(root, st)
    if frozen and status not in ("running", "created"):  # runc pauses a created one too
        raise RuntimeErr(
            "container not running"
            if status == "stopped"
            else f"container {cid} is not running: {status}"
        )
    if not frozen and status != "paused":
        raise RuntimeErr("container not paused")
    cgroups.freeze(st.get("cgroup") or {}, frozen)
