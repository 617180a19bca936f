"""containerd.task.v2.Task: every method, on the shim's one loop.

Processes are tracked here (the init of each container; execs come later): their pid, status,
exit and the Futures of Wait calls. Exits come from the reaper (main.py routes SIGCHLD here):
the init is our own child, forked by pyrunc's create in this process.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable

from google.protobuf.timestamp_pb2 import Timestamp

from shim_v2.events import Publisher
from shim_v2.proto import events_pb2 as ev
from shim_v2.proto import task_pb2 as T
from shim_v2.proto import types_pb2 as types
from shim_v2.runtime import Error as RuntimeError_
from shim_v2.runtime import InProcess
from shim_v2.stdio import Stdio
from shim_v2.ttrpc import Context, Future, TTRPCError, codes

SERVICE = "containerd.task.v2.Task"


def _ts(ns: int) -> Timestamp:
    t = Timestamp()
    t.FromNanoseconds(ns)
    return t


class Process:
    def __init__(self, cid: str, bundle: str, stdio: Stdio, terminal: bool) -> None:
        self.cid = cid
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

    def wait_response(self) -> bytes:
        return T.WaitResponse(
            exit_status=self.exit_status, exited_at=_ts(self.exited_at)
        ).SerializeToString()


class TaskService:
    def __init__(self, runtime: InProcess, publisher: Publisher, on_empty: Callable[[], None]):
        self.rt = runtime
        self.pub = publisher
        self.procs: dict[str, Process] = {}
        self.by_pid: dict[int, Process] = {}
        self.on_empty = on_empty  # Shutdown with nothing left

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
            raise TTRPCError(codes.NOT_FOUND, f"process does not exist {exec_id}")
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
            stdio = Stdio(req.stdin, req.stdout, req.stderr, req.terminal)
            if req.terminal:
                raise TTRPCError(codes.UNIMPLEMENTED, "terminal containers: not yet")
            p = Process(req.id, req.bundle, stdio, req.terminal)
            p.rootfs_mounted = mounted
            try:
                p.pid = self.rt.create(req.id, req.bundle, stdio.proc)
            except RuntimeError_ as e:
                raise TTRPCError(codes.UNKNOWN, f"OCI runtime create failed: {e}") from None
        except BaseException:
            if stdio is not None:
                stdio.close()
            if mounted:
                _unmount(rootfs)
            raise
        self.procs[req.id] = p
        self.by_pid[p.pid] = p
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
        try:
            self.rt.start(req.id)
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
        try:
            self.rt.delete(req.id, force=not p.started)
        except RuntimeError_ as e:
            raise TTRPCError(codes.UNKNOWN, str(e)) from None
        if not p.exited:  # created, never started: the delete killed it
            self._reap_now(p)
        p.stdio.close()
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

    def _reap_now(self, p: Process) -> None:
        try:
            _, status = os.waitpid(p.pid, 0)
            self.exited(p.pid, status)
        except ChildProcessError:
            self.exited(p.pid, 0x09)  # reaped elsewhere: report a kill

    def exited(self, pid: int, status: int) -> None:
        """The reaper's report: attribute the exit, let Wait calls return."""
        p = self.by_pid.get(pid)
        if p is None or p.exited:
            return
        p.exited = True
        p.exit_status = (
            128 + os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        )
        p.exited_at = time.time_ns()
        # its output is all in the FIFOs: drop our handles so the client's copy sees EOF
        p.stdio.close()
        self.pub.publish(
            "/tasks/exit",
            ev.TaskExit(container_id=p.cid, id=p.cid, pid=pid, exit_status=p.exit_status,
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
            status = types.STOPPED
        else:
            try:
                st, _ = self.rt.state(req.id)
            except RuntimeError_:
                st = "stopped"
            status = {
                "created": types.CREATED, "running": types.RUNNING, "paused": types.PAUSED,
                "pausing": types.PAUSING, "stopped": types.STOPPED,
            }.get(st, types.UNKNOWN)
        stdin, stdout, stderr = p.stdio.paths
        return T.StateResponse(
            id=req.id, bundle=p.bundle, pid=p.pid, status=status, stdin=stdin, stdout=stdout,
            stderr=stderr, terminal=p.terminal, exit_status=p.exit_status,
            exited_at=_ts(p.exited_at),
        ).SerializeToString()

    def Kill(self, ctx: Context, data: bytes) -> bytes:
        req = T.KillRequest.FromString(data)
        p = self._proc(req.id, req.exec_id)
        if p.exited and not req.all:
            raise TTRPCError(codes.NOT_FOUND, "process already finished")
        try:
            self.rt.kill(req.id, req.signal, req.all)
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
        self._proc(cid)
        try:
            self.rt.pause(cid, frozen)
        except RuntimeError_ as e:
            raise TTRPCError(codes.UNKNOWN, str(e)) from None

    def Pids(self, ctx: Context, data: bytes) -> bytes:
        req = T.PidsRequest.FromString(data)
        self._proc(req.id)
        try:
            pids = self.rt.pids(req.id)
        except RuntimeError_ as e:
            raise TTRPCError(codes.UNKNOWN, str(e)) from None
        return T.PidsResponse(
            processes=[types.ProcessInfo(pid=pid) for pid in pids]
        ).SerializeToString()

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

    # -- not yet, or not here -------------------------------------------------------------

    def Checkpoint(self, ctx: Context, data: bytes) -> bytes:
        raise TTRPCError(codes.UNIMPLEMENTED, "checkpoint: CRIU does not work on this kernel")

    def Exec(self, ctx: Context, data: bytes) -> bytes:
        raise TTRPCError(codes.UNIMPLEMENTED, "exec: not yet")

    def ResizePty(self, ctx: Context, data: bytes) -> bytes:
        raise TTRPCError(codes.UNIMPLEMENTED, "terminal: not yet")

    def Update(self, ctx: Context, data: bytes) -> bytes:
        raise TTRPCError(codes.UNIMPLEMENTED, "update: not yet")

    def Stats(self, ctx: Context, data: bytes) -> bytes:
        raise TTRPCError(codes.UNIMPLEMENTED, "stats: not yet")


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
                os.kill(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    print("shim: exiting", file=sys.stderr)
