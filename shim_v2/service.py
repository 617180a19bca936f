"""containerd.task.v2.Task: every method, on the shim's one loop.

Processes are tracked here (the init of each container; execs come later): their pid, status,
exit and the Futures of Wait calls. Exits come from the reaper (main.py routes SIGCHLD here):
the init is our own child, forked by pyrunc's create in this process.
"""

from __future__ import annotations

import os
import sys
import time
from _signal import SIGKILL, SIGTERM  # (not `signal`: see ttrpc/conn.py)
from collections.abc import Callable

from shim_v2 import messages
from shim_v2.console import Console
from shim_v2.events import Publisher
from shim_v2.messages import T, Timestamp, ev, timestamp
from shim_v2.runtime import Error as RuntimeError_
from shim_v2.runtime import InProcess
from shim_v2.stdio import Stdio
from shim_v2.ttrpc import Context, Future, TTRPCError, codes
from shim_v2.ttrpc.loop import Timer

SERVICE = "containerd.task.v2.Task"


def _ts(ns: int) -> Timestamp:  # type: ignore[valid-type]
    return timestamp(ns)


class Process:
    def __init__(
        self, cid: str, bundle: str, stdio: Stdio, terminal: bool, exec_id: str = ""
    ) -> None:
        self.cid = cid
        self.exec_id = exec_id
        self.spec: dict = {}  # an exec's OCI process
        self.execs: dict[str, Process] = {}  # the init's
        self.rt: object = None  # the container's runtime (InProcess or Binary)
        self.bundle = bundle
        self.stdio = stdio
        self.terminal = terminal
        self.pid = 0
        self.started = False
        self.exited = False
        self.exit_status = 0
        self.exited_at = 0
        self.waiters: list[Future] = []
        self.rootfs_mounted = False
        self.console: Console | None = None
        self.oom_fd = -1  # v1 eventfd
        self.oom_timer: Timer | None = None  # v2 poll

    def wait_response(self) -> bytes:
        return T.WaitResponse(
            exit_status=self.exit_status, exited_at=_ts(self.exited_at)
        ).SerializeToString()


class TaskService:
    def __init__(
        self, runtime: InProcess, publisher: Publisher, on_empty: Callable[[], None],
        default_options: bytes = b"",
    ) -> None:
        self.inproc = runtime
        self.default_options = default_options  # the Any `shim start` got on stdin
        self.early: dict[int, int] = {}  # exits reaped before their pid was known
        self.pub = publisher
        self.procs: dict[str, Process] = {}
        self.by_pid: dict[int, Process] = {}
        self.on_empty = on_empty  # Shutdown with nothing left
        self.loggers: set[int] = set()  # binary:// loggers told to stop, not yet reaped

    def methods(self) -> dict:
        return {
            name: getattr(self, name)
            for name in (
                "State", "Create", "Start", "Delete", "Pids", "Pause", "Resume", "Checkpoint",
                "Kill", "Exec", "ResizePty", "CloseIO", "Update", "Wait", "Stats", "Connect",
                "Shutdown",
            )
        }

    def _proc(self, cid: str, exec_id: str = "") -> Process:
        p = self.procs.get(cid)
        if p is None:
            raise TTRPCError(codes.NOT_FOUND, "container not created")
        if exec_id:
            e = p.execs.get(exec_id)
            if e is None:
                raise TTRPCError(codes.NOT_FOUND, f"process does not exist {exec_id}")
            return e
        return p

    # -- lifecycle ------------------------------------------------------------------------

    def Create(self, ctx: Context, data: bytes) -> bytes:
        req = T.CreateTaskRequest.FromString(data)
        if req.id in self.procs:
            raise TTRPCError(codes.ALREADY_EXISTS, f"container {req.id}: already exists")
        if req.checkpoint:
            raise TTRPCError(codes.UNIMPLEMENTED, "checkpoint/restore is not supported")
        rootfs = os.path.join(req.bundle, "rootfs")
        mounted = _mount_rootfs(req.rootfs, rootfs)
        stdio = None
        try:
            stdio = Stdio(
                req.stdin, req.stdout, req.stderr, req.terminal, req.id, self.pub.namespace
            )
            p = Process(req.id, req.bundle, stdio, req.terminal)
            p.rootfs_mounted = mounted
            opts = runtime_options(
                req.options.SerializeToString() if req.HasField("options") else
                self.default_options
            )
            p.rt = self._runtime(opts)
            if opts.get("BinaryName"):
                _save_options(req.bundle, opts)  # for `shim delete` after a crash
            try:
                p.pid, master = p.rt.create(
                    req.id, req.bundle, stdio.proc, no_pivot=bool(opts.get("NoPivotRoot")),
                    no_new_keyring=bool(opts.get("NoNewKeyring")),
                )
            except RuntimeError_ as e:
                raise TTRPCError(codes.UNKNOWN, f"OCI runtime create failed: {e}") from None
            if master >= 0:
                p.console = self._console(master, stdio)
        except BaseException:
            if stdio is not None:
                stdio.close()
            if mounted:
                _unmount(rootfs)
            raise
        self.procs[req.id] = p
        self._track(p)
        self._watch_oom(p)
        self.pub.publish(
            "/tasks/create",
            ev.TaskCreate(
                container_id=req.id, bundle=req.bundle, rootfs=req.rootfs,
                io=ev.TaskIO(stdin=req.stdin, stdout=req.stdout, stderr=req.stderr,
                             terminal=req.terminal),
                pid=p.pid,
            ),
        )
        return T.CreateTaskResponse(pid=p.pid).SerializeToString()

    def Start(self, ctx: Context, data: bytes) -> bytes:
        req = T.StartRequest.FromString(data)
        p = self._proc(req.id, req.exec_id)
        if req.exec_id:
            return self._start_exec(p)
        try:
            p.rt.start(req.id)
        except RuntimeError_ as e:
            raise TTRPCError(codes.UNKNOWN, f"OCI runtime start failed: {e}") from None
        p.started = True
        # before any exit of this process can be reported: the reaper runs on this loop,
        # after this call returns
        self.pub.publish("/tasks/start", ev.TaskStart(container_id=req.id, pid=p.pid))
        return T.StartResponse(pid=p.pid).SerializeToString()

    def Delete(self, ctx: Context, data: bytes) -> bytes:
        req = T.DeleteRequest.FromString(data)
        p = self._proc(req.id, req.exec_id)
        if p.started and not p.exited:
            raise TTRPCError(codes.UNKNOWN, "cannot delete a running process")
        if req.exec_id:  # an exec: forget it, no event
            p.stdio.close()
            del self.procs[req.id].execs[req.exec_id]
            self.by_pid.pop(p.pid, None)
            return T.DeleteResponse(
                pid=p.pid, exit_status=p.exit_status, exited_at=_ts(p.exited_at)
            ).SerializeToString()
        self._unwatch_oom(p)  # before the cgroup goes: its removal fires the v1 eventfd
        try:
            p.rt.delete(req.id, force=not p.started)
        except RuntimeError_ as e:
            raise TTRPCError(codes.UNKNOWN, str(e)) from None
        if not p.exited:  # created, never started: the delete killed it
            self._reap_now(p)
        p.stdio.close()
        self._unwatch_oom(p)
        self._stop_logger(p)
        if p.rootfs_mounted:
            _unmount(os.path.join(p.bundle, "rootfs"))
        del self.procs[req.id]
        self.by_pid.pop(p.pid, None)
        self.pub.publish(
            "/tasks/delete",
            ev.TaskDelete(container_id=req.id, pid=p.pid, exit_status=p.exit_status,
                          exited_at=_ts(p.exited_at)),
        )
        return T.DeleteResponse(
            pid=p.pid, exit_status=p.exit_status, exited_at=_ts(p.exited_at)
        ).SerializeToString()

    def _console(self, master: int, stdio: Stdio) -> Console:
        stdin = stdio.proc[0] if stdio.paths[0] else -1
        return Console(self.pub.loop, master, stdin, stdio.proc[1])

    def _watch_oom(self, p: Process) -> None:
        """/tasks/oom when the kernel's OOM killer acts in the container's memory cgroup: a
        v1 eventfd on memory.oom_control, or the oom_kill count of v2's memory.events."""
        try:
            _st, state = p.rt.state(p.cid)
        except RuntimeError_:
            return
        paths = state.get("cgroup") or {}
        from pyrunc import events as E
        from pyrunc.linux.cgroups import is_v2_only

        loop = self.pub.loop
        if is_v2_only() and paths.get("unified"):
            path = paths["unified"]
            seen = [E.oom_kills_v2(path)]

            def poll() -> None:
                if p.cid not in self.procs or p.oom_timer is None:
                    return
                try:
                    n = E.oom_kills_v2(path)
                except OSError:
                    return
                if n > seen[0]:
                    seen[0] = n
                    self.pub.publish("/tasks/oom", ev.TaskOOM(container_id=p.cid))
                p.oom_timer = loop.call_later(0.5, poll)

            p.oom_timer = loop.call_later(0.5, poll)
            return
        efd = E.oom_eventfd(paths)
        if efd < 0:
            return
        p.oom_fd = efd

        def fired() -> None:
            try:
                os.read(efd, 8)
            except OSError:
                return
            self.pub.publish("/tasks/oom", ev.TaskOOM(container_id=p.cid))

        loop.add_reader(efd, fired)

    def _unwatch_oom(self, p: Process) -> None:
        if p.oom_fd >= 0:
            self.pub.loop.remove_reader(p.oom_fd)
            os.close(p.oom_fd)
            p.oom_fd = -1
        if p.oom_timer is not None:
            p.oom_timer.cancel()
            p.oom_timer = None

    def _stop_logger(self, p: Process) -> None:
        """SIGTERM, then SIGKILL after 12 s if it is still there (as containerd's shim)."""
        pid = p.stdio.logger_pid
        if not pid:
            return
        p.stdio.logger_pid = 0
        self.loggers.add(pid)
        try:
            os.kill(pid, SIGTERM)
        except ProcessLookupError:
            return

        def kill() -> None:
            if pid in self.loggers:
                try:
                    os.kill(pid, SIGKILL)
                except ProcessLookupError:
                    pass

        self.pub.loop.call_later(12.0, kill)

    def _track(self, p: Process) -> None:
        self.by_pid[p.pid] = p
        status = self.early.pop(p.pid, None)
        if status is not None:
            self.exited(p.pid, status)

    def _runtime(self, opts: dict) -> object:
        binary = opts.get("BinaryName")
        if not binary:
            return self.inproc
        from shim_v2.runtime import Binary

        root = opts.get("Root") or "/run/containerd/runc"
        ns = self.pub.namespace
        return Binary(binary, os.path.join(root, ns), bool(opts.get("SystemdCgroup")))

    def _reap_now(self, p: Process) -> None:
        try:
            _, status = os.waitpid(p.pid, 0)
            self.exited(p.pid, status)
        except ChildProcessError:
            self.exited(p.pid, 0x09)  # reaped elsewhere: report a kill

    def exited(self, pid: int, status: int) -> None:
        """The reaper's report: attribute the exit, let Wait calls return."""
        self.loggers.discard(pid)
        p = self.by_pid.get(pid)
        if p is None:
            # a runtime binary's init can exit before we have read its pid file
            if len(self.early) < 1024:
                self.early[pid] = status
            return
        if p.exited:
            return
        p.exited = True
        p.exit_status = (
            128 + os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        )
        p.exited_at = time.time_ns()
        # its output is all in the FIFOs: drop our handles so the client's copy sees EOF
        if p.console is not None:
            p.console.drain()
            p.console.close()
            p.console = None
        p.stdio.close()
        self.pub.publish(
            "/tasks/exit",
            ev.TaskExit(container_id=p.cid, id=p.exec_id or p.cid, pid=pid,
                        exit_status=p.exit_status,
                        exited_at=_ts(p.exited_at)),
        )
        waiters, p.waiters = p.waiters, []
        for f in waiters:
            f.set_result(p.wait_response())

    def Wait(self, ctx: Context, data: bytes) -> bytes | Future:
        req = T.WaitRequest.FromString(data)
        p = self._proc(req.id, req.exec_id)
        if p.exited:
            return p.wait_response()
        f = Future()
        p.waiters.append(f)
        return f

    def State(self, ctx: Context, data: bytes) -> bytes:
        req = T.StateRequest.FromString(data)
        p = self._proc(req.id, req.exec_id)
        if p.exited:
            status = messages.STOPPED
        elif req.exec_id:
            status = messages.RUNNING if p.started else messages.CREATED
        else:
            try:
                st, _ = p.rt.state(req.id)
            except RuntimeError_:
                st = "stopped"
            status = {
                "created": messages.CREATED, "running": messages.RUNNING, "paused": messages.PAUSED,
                "pausing": messages.PAUSING, "stopped": messages.STOPPED,
            }.get(st, messages.UNKNOWN)
        stdin, stdout, stderr = p.stdio.paths
        return T.StateResponse(
            id=req.exec_id or req.id, bundle=p.bundle, pid=p.pid, status=status, stdin=stdin,
            stdout=stdout, stderr=stderr, terminal=p.terminal, exit_status=p.exit_status,
            exited_at=_ts(p.exited_at),
        ).SerializeToString()

    def Kill(self, ctx: Context, data: bytes) -> bytes:
        req = T.KillRequest.FromString(data)
        p = self._proc(req.id, req.exec_id)
        if p.exited and not req.all:
            raise TTRPCError(codes.NOT_FOUND, "process already finished")
        if req.exec_id:
            if not p.started:
                raise TTRPCError(codes.FAILED_PRECONDITION, "process not started")
            try:
                os.kill(p.pid, req.signal)
            except ProcessLookupError:
                raise TTRPCError(codes.NOT_FOUND, "process already finished") from None
            return b""
        try:
            p.rt.kill(req.id, req.signal, req.all)
        except RuntimeError_ as e:
            if "not running" in str(e):
                raise TTRPCError(codes.NOT_FOUND, "process already finished") from None
            raise TTRPCError(codes.UNKNOWN, str(e)) from None
        return b""

    def Pause(self, ctx: Context, data: bytes) -> bytes:
        req = T.PauseRequest.FromString(data)
        self._pause(req.id, True)
        self.pub.publish("/tasks/paused", ev.TaskPaused(container_id=req.id))
        return b""

    def Resume(self, ctx: Context, data: bytes) -> bytes:
        req = T.ResumeRequest.FromString(data)
        self._pause(req.id, False)
        self.pub.publish("/tasks/resumed", ev.TaskResumed(container_id=req.id))
        return b""

    def _pause(self, cid: str, frozen: bool) -> None:
        p = self._proc(cid)
        try:
            p.rt.pause(cid, frozen)
        except RuntimeError_ as e:
            raise TTRPCError(codes.UNKNOWN, str(e)) from None

    def Pids(self, ctx: Context, data: bytes) -> bytes:
        req = T.PidsRequest.FromString(data)
        p = self._proc(req.id)
        try:
            pids = p.rt.pids(req.id)
        except RuntimeError_ as e:
            raise TTRPCError(codes.UNKNOWN, str(e)) from None
        from shim_v2.messages import Any_, runc

        execs = {e.pid: eid for eid, e in p.execs.items() if e.pid}
        procs = []
        for pid in pids:
            info = messages.types.ProcessInfo(pid=pid)
            if pid in execs:  # as containerd's shim: which exec a pid belongs to
                d = runc.ProcessDetails(exec_id=execs[pid]).SerializeToString()
                info.info.CopyFrom(Any_(type_url="containerd.runc.v1.ProcessDetails", value=d))
            procs.append(info)
        return T.PidsResponse(processes=procs).SerializeToString()

    def ResizePty(self, ctx: Context, data: bytes) -> bytes:
        req = T.ResizePtyRequest.FromString(data)
        p = self._proc(req.id, req.exec_id)
        if p.console is None:
            raise TTRPCError(codes.FAILED_PRECONDITION, "the process has no terminal")
        try:
            p.console.resize(req.width, req.height)
        except OSError as e:
            raise TTRPCError(codes.UNKNOWN, f"resize: {e}") from None
        return b""

    def CloseIO(self, ctx: Context, data: bytes) -> bytes:
        req = T.CloseIORequest.FromString(data)
        p = self._proc(req.id, req.exec_id)
        if req.stdin:
            p.stdio.close_stdin()
        return b""

    def Connect(self, ctx: Context, data: bytes) -> bytes:
        req = T.ConnectRequest.FromString(data)
        p = self.procs.get(req.id)
        return T.ConnectResponse(
            shim_pid=os.getpid(), task_pid=p.pid if p else 0
        ).SerializeToString()

    def Shutdown(self, ctx: Context, data: bytes) -> bytes:
        if not self.procs:
            self.on_empty()
        return b""

    # -- exec -----------------------------------------------------------------------------

    def Exec(self, ctx: Context, data: bytes) -> bytes:
        req = T.ExecProcessRequest.FromString(data)
        init = self._proc(req.id)
        if req.exec_id in init.execs:
            raise TTRPCError(codes.ALREADY_EXISTS, f"id {req.exec_id}: already exists")
        if init.exited:
            raise TTRPCError(codes.FAILED_PRECONDITION, "container is not running")
        if not req.HasField("spec"):
            raise TTRPCError(codes.INVALID_ARGUMENT, "exec: spec (the OCI process) is required")
        try:
            from pyrunc.fastjson import loads

            spec = loads(req.spec.value)
            from pyrunc.validate import validate_process

            spec.setdefault("user", {"uid": 0, "gid": 0})
            spec.setdefault("cwd", "/")
            validate_process(spec)
        except (ValueError, RuntimeError_) as e:
            raise TTRPCError(codes.INVALID_ARGUMENT, f"exec spec: {e}") from None
        spec["terminal"] = req.terminal
        stdio = Stdio(req.stdin, req.stdout, req.stderr, req.terminal, req.id, self.pub.namespace)
        e = Process(req.id, init.bundle, stdio, req.terminal, exec_id=req.exec_id)
        e.spec = spec
        init.execs[req.exec_id] = e
        self.pub.publish(
            "/tasks/exec-added", ev.TaskExecAdded(container_id=req.id, exec_id=req.exec_id)
        )
        return b""

    def _start_exec(self, e: Process) -> bytes:
        if e.started:
            raise TTRPCError(codes.FAILED_PRECONDITION, f"process {e.exec_id} already started")
        try:
            e.pid, master = self.procs[e.cid].rt.exec(e.cid, e.spec, e.stdio.proc)
        except RuntimeError_ as err:
            raise TTRPCError(codes.UNKNOWN, f"OCI runtime exec failed: {err}") from None
        if master >= 0:
            e.console = self._console(master, e.stdio)
        e.started = True
        self._track(e)
        self.pub.publish(
            "/tasks/exec-started",
            ev.TaskExecStarted(container_id=e.cid, exec_id=e.exec_id, pid=e.pid),
        )
        return T.StartResponse(pid=e.pid).SerializeToString()

    # -- not yet, or not here -------------------------------------------------------------

    def Checkpoint(self, ctx: Context, data: bytes) -> bytes:
        raise TTRPCError(codes.UNIMPLEMENTED, "checkpoint: CRIU does not work on this kernel")



    def Update(self, ctx: Context, data: bytes) -> bytes:
        """resources: Any(types.containerd.io/opencontainers/runtime-spec/1/LinuxResources)
        holding JSON, as containerd's CRI plugin sends it."""
        req = T.UpdateTaskRequest.FromString(data)
        p = self._proc(req.id)
        if not req.HasField("resources"):
            return b""
        from pyrunc.fastjson import loads

        try:
            doc = loads(req.resources.value)
        except ValueError as e:
            raise TTRPCError(codes.INVALID_ARGUMENT, f"update: resources: {e}") from None
        if not isinstance(doc, dict):
            raise TTRPCError(codes.INVALID_ARGUMENT, "update: resources: not a JSON object")
        try:
            p.rt.update(req.id, doc)
        except RuntimeError_ as e:
            raise TTRPCError(codes.UNKNOWN, f"update: {e}") from None
        return b""

    def Stats(self, ctx: Context, data: bytes) -> bytes:
        req = T.StatsRequest.FromString(data)
        p = self._proc(req.id)
        try:
            st = p.rt.stats(req.id)
        except (RuntimeError_, OSError) as e:
            raise TTRPCError(codes.NOT_FOUND, f"cgroup does not exist: {e}") from None
        from pyrunc.linux.cgroups import is_v2_only

        return T.StatsResponse(stats=metrics_any(st, is_v2_only())).SerializeToString()


def metrics_any(st: dict, v2: bool) -> object:
    """runc's stats JSON (pyrunc.events.stats) as containerd's metrics: an Any of
    io.containerd.cgroups.v1.Metrics, or of v2.Metrics on a cgroup v2 host."""
    from shim_v2.messages import Any_, metrics, metrics_v2

    cpu, mem, pids = st.get("cpu") or {}, st.get("memory") or {}, st.get("pids") or {}
    usage = cpu.get("usage") or {}
    thr = cpu.get("throttling") or {}
    raw = mem.get("raw") or {}
    if v2:
        u, sw = mem.get("usage") or {}, mem.get("swap") or {}
        ev = st.get("memory_events") or {}
        m2 = metrics_v2.Metrics(
            pids=metrics_v2.PidsStat(current=pids.get("current", 0), limit=pids.get("limit", 0)),
            cpu=metrics_v2.CPUStat(
                usage_usec=usage.get("total", 0) // 1000, user_usec=usage.get("user", 0) // 1000,
                system_usec=usage.get("kernel", 0) // 1000, nr_periods=thr.get("periods", 0),
                nr_throttled=thr.get("throttledPeriods", 0),
                throttled_usec=thr.get("throttledTime", 0) // 1000,
            ),
            memory=metrics_v2.MemoryStat(
                **{k: raw[k] for k in (
                    "anon", "file", "kernel_stack", "slab", "sock", "shmem", "file_mapped",
                    "file_dirty", "file_writeback", "anon_thp", "inactive_anon", "active_anon",
                    "inactive_file", "active_file", "unevictable", "slab_reclaimable",
                    "slab_unreclaimable", "pgfault", "pgmajfault",
                ) if isinstance(raw.get(k), int)},
                usage=u.get("usage", 0), usage_limit=u.get("limit", 0),
                # runc reports swap as memory+swap (v1's meaning): containerd's v2 wants swap
                swap_usage=max(0, sw.get("usage", 0) - u.get("usage", 0)),
                swap_limit=sw.get("limit", 0),
            ),
            memory_events=metrics_v2.MemoryEvents(
                **{k: ev[k] for k in ("low", "high", "max", "oom", "oom_kill") if k in ev}
            ),
        )
        return Any_(type_url="io.containerd.cgroups.v2.Metrics", value=m2.SerializeToString())

    def entry(d: dict | None) -> object:
        d = d or {}
        return metrics.MemoryEntry(
            limit=d.get("limit", 0), usage=d.get("usage", 0), max=d.get("max", 0),
            failcnt=d.get("failcnt", 0),
        )

    m = metrics.Metrics(
        pids=metrics.PidsStat(current=pids.get("current", 0), limit=pids.get("limit", 0)),
        cpu=metrics.CPUStat(
            usage=metrics.CPUUsage(
                total=usage.get("total", 0), kernel=usage.get("kernel", 0),
                user=usage.get("user", 0), per_cpu=usage.get("percpu") or [],
            ),
            throttling=metrics.Throttle(
                periods=thr.get("periods", 0), throttled_periods=thr.get("throttledPeriods", 0),
                throttled_time=thr.get("throttledTime", 0),
            ),
        ),
        memory=metrics.MemoryStat(
            cache=mem.get("cache", 0), rss=raw.get("rss", 0), rss_huge=raw.get("rss_huge", 0),
            mapped_file=raw.get("mapped_file", 0), total_cache=raw.get("total_cache", 0),
            total_rss=raw.get("total_rss", 0), usage=entry(mem.get("usage")),
            swap=entry(mem.get("swap")), kernel=entry(mem.get("kernel")),
            kernel_tcp=entry(mem.get("kernelTCP")),
        ),
    )
    return Any_(type_url="io.containerd.cgroups.v1.Metrics", value=m.SerializeToString())


OPTIONS_FILE = "pyrunc-shim-options.json"


def _save_options(bundle: str, opts: dict) -> None:
    from pyrunc import fastjson

    with open(os.path.join(bundle, OPTIONS_FILE), "w") as f:
        f.write(fastjson.dumps({k: opts.get(k) for k in ("BinaryName", "Root", "SystemdCgroup")}))


def runtime_options(data: bytes) -> dict:
    """The runtime options (an Any), as containerd's names: from containerd.runc.v1.Options,
    or from the TOML file a runtimeoptions.v1.Options names (ctr --runtime-config-path, or
    the CRI plugin's options table for a non-runc runtime_type), with the same keys as
    containerd's runc options table (BinaryName, Root, SystemdCgroup, NoPivotRoot, ...).
    Absent or unknown options: {} (pyrunc in-process, defaults)."""
    if not data:
        return {}
    from shim_v2.messages import Any_, runc, runtimeoptions

    a = Any_.FromString(data)
    name = a.type_url.rsplit("/", 1)[-1]
    if name == "containerd.runc.v1.Options":
        o = runc.Options.FromString(a.value)
        return {
            "BinaryName": o.binary_name, "Root": o.root, "SystemdCgroup": o.systemd_cgroup,
            "NoPivotRoot": o.no_pivot_root, "NoNewKeyring": o.no_new_keyring,
            "IoUid": o.io_uid, "IoGid": o.io_gid,
        }
    if name == "runtimeoptions.v1.Options":
        o = runtimeoptions.Options.FromString(a.value)
        if not o.config_path:
            return {}
        import tomllib

        try:
            with open(o.config_path, "rb") as f:
                cfg = tomllib.load(f)
        except (OSError, tomllib.TOMLDecodeError) as e:
            raise TTRPCError(
                codes.INVALID_ARGUMENT, f"runtime options {o.config_path}: {e}"
            ) from None
        return dict(cfg.get("options", cfg))
    return {}


def _mount_rootfs(mounts: list, target: str) -> bool:
    """containerd hands the snapshot's mounts to the shim: mount them at <bundle>/rootfs."""
    if not mounts:
        return False
    from pyrunc.linux import mounts as M
    from pyrunc.linux import sys as LS

    done = 0
    try:
        for m in mounts:
            o = M.parse_options(list(m.options))
            LS.mount(m.source, target, m.type, o.flags, ",".join(o.data) or None)
            done += 1
    except (OSError, RuntimeError_) as e:
        for _ in range(done):
            _unmount(target)
        raise TTRPCError(codes.UNKNOWN, f"failed to mount rootfs component: {e}") from None
    return True


def _unmount(target: str) -> None:
    from pyrunc.linux import sys as LS

    for _ in range(16):  # everything stacked there
        try:
            LS.umount2(target, LS.MNT_DETACH)
        except OSError:
            return


def kill_all_on_exit(service: TaskService) -> None:
    """SIGTERM to the shim: take the containers down with us rather than orphan them."""
    for p in list(service.procs.values()):
        if not p.exited:
            try:
                os.kill(p.pid, SIGKILL)
            except ProcessLookupError:
                pass
    print("shim: exiting", file=sys.stderr)
