"""Detached containers (`run -d`) under containerd-shim-pyrunc-v2, and `tasks` reaching them.

pyctr starts our shim as containerd does (`shim start` in the bundle, which prints the TTRPC
address), then speaks the Task service to it with shim_v2's TTRPC client: Create (the rootfs
as mounts the shim mounts and unmounts, stdout and stderr to a file:// log), Start. The shim
outlives pyctr, so the container keeps its log and exit status; `tasks` finds the shim again
by the address file it leaves in the bundle (<state>/<ns>/<id>/address).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from pyctr.errors import PyctrError

SHIM = "containerd-shim-pyrunc-v2"
TASK = "containerd.task.v2.Task"
STATUS = {0: "UNKNOWN", 1: "CREATED", 2: "RUNNING", 3: "STOPPED", 4: "PAUSED", 5: "PAUSING"}


def shim_binary() -> str:
    """The shim installed beside pyctr (one venv), else on PATH."""
    here = os.path.join(os.path.dirname(os.path.abspath(sys.argv[0])), SHIM)
    if os.access(here, os.X_OK):
        return here
    found = shutil.which(SHIM)
    if not found:
        raise PyctrError(f"run -d: {SHIM} is not installed (beside pyctr or on PATH)")
    return found


class Shim:
    """A TTRPC connection to the shim serving one container."""

    def __init__(self, address: str) -> None:
        from shim_v2.messages import T
        from shim_v2.ttrpc import Client, Loop

        self.T = T
        self.loop = Loop()
        try:
            self.client = Client.connect(self.loop, address)
        except OSError as e:
            raise PyctrError(f"shim at {address}: {e.strerror} (is it still running?)") from None

    def call(self, method: str, req: object, resp: str | None = None) -> object:
        from shim_v2.ttrpc import TTRPCError

        try:
            raw = self.client.call_sync(TASK, method, req.SerializeToString(),  # type: ignore
                                        timeout=30)
        except TTRPCError as e:
            raise PyctrError(f"{method}: {e}") from None
        return getattr(self.T, resp).FromString(raw) if resp else None

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Shim:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def start_shim(bundle: str, ns: str, cid: str, state: str) -> str:
    p = subprocess.run([shim_binary(), "-namespace", ns, "-id", cid, "-address",
                        os.path.join(state, "pyctr.sock"), "start"], cwd=bundle,
                       capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60)
    if p.returncode != 0 or not p.stdout.startswith("unix://"):
        raise PyctrError(f"run -d: {SHIM} start: {(p.stderr or p.stdout).strip()}")
    return p.stdout.strip()


def create_and_start(bundle: str, ns: str, cid: str, state: str,
                     mounts: list[tuple[str, str, list[str]]], terminal: bool = False) -> int:
    """Start the shim, Create and Start the task; returns the container's pid. The log is
    <bundle>/log (both streams)."""
    from shim_v2.messages import types

    addr = start_shim(bundle, ns, cid, state)
    shim = Shim(addr)
    try:
        T = shim.T
        log = "file://" + os.path.join(bundle, "log")
        req = T.CreateTaskRequest(id=cid, bundle=bundle, stdout=log, stderr=log,
                                  terminal=terminal)
        for kind, src, opts in mounts:
            req.rootfs.append(types.Mount(type=kind, source=src, options=opts))
        shim.call("Create", req, "CreateTaskResponse")
        return shim.call("Start", T.StartRequest(id=cid), "StartResponse").pid  # type: ignore
    except BaseException:
        _shutdown(shim, cid)
        raise
    finally:
        shim.close()


def _shutdown(shim: Shim, cid: str) -> None:
    for method, req in (("Kill", shim.T.KillRequest(id=cid, signal=9, all=True)),
                        ("Delete", shim.T.DeleteRequest(id=cid)),
                        ("Shutdown", shim.T.ShutdownRequest(id=cid))):
        try:
            shim.call(method, req)
        except PyctrError:
            pass


def connect(state: str, ns: str, cid: str) -> Shim:
    try:
        with open(os.path.join(state, ns, cid, "address")) as f:
            return Shim(f.read().strip())
    except FileNotFoundError:
        raise PyctrError(f"task {cid}: no such task (not started with run -d, or deleted)"
                         ) from None


def state(state_dir: str, ns: str, cid: str) -> dict:
    with connect(state_dir, ns, cid) as shim:
        st = shim.call("State", shim.T.StateRequest(id=cid), "StateResponse")
        return {"id": cid, "pid": st.pid, "status": STATUS.get(st.status, "UNKNOWN"),  # type: ignore
                "exit_status": st.exit_status}  # type: ignore[attr-defined]


def kill(state_dir: str, ns: str, cid: str, sig: int, all_: bool) -> None:
    with connect(state_dir, ns, cid) as shim:
        shim.call("Kill", shim.T.KillRequest(id=cid, signal=sig, all=all_))


def pids(state_dir: str, ns: str, cid: str) -> list[int]:
    with connect(state_dir, ns, cid) as shim:
        r = shim.call("Pids", shim.T.PidsRequest(id=cid), "PidsResponse")
        return [p.pid for p in r.processes]  # type: ignore[attr-defined]


def pause(state_dir: str, ns: str, cid: str, frozen: bool) -> None:
    with connect(state_dir, ns, cid) as shim:
        if frozen:
            shim.call("Pause", shim.T.PauseRequest(id=cid))
        else:
            shim.call("Resume", shim.T.ResumeRequest(id=cid))


def delete(state_dir: str, ns: str, cid: str, force: bool) -> int:
    """Delete a stopped task (force: kill it first); the shim then exits. Returns its exit
    status. The bundle (and its log) goes with it."""
    with connect(state_dir, ns, cid) as shim:
        st = shim.call("State", shim.T.StateRequest(id=cid), "StateResponse")
        if st.status != 3:  # type: ignore[attr-defined]
            if not force:
                raise PyctrError(f"task {cid}: is {STATUS.get(st.status)} "  # type: ignore
                                 "(kill it first, or delete -f)")
            shim.call("Kill", shim.T.KillRequest(id=cid, signal=9, all=True))
            shim.call("Wait", shim.T.WaitRequest(id=cid))  # (answered once it has exited)
        r = shim.call("Delete", shim.T.DeleteRequest(id=cid), "DeleteResponse")
        try:
            shim.call("Shutdown", shim.T.ShutdownRequest(id=cid))
        except PyctrError:
            pass  # (it may close the connection as it goes)
        return r.exit_status  # type: ignore[attr-defined]


def exec_(state_dir: str, ns: str, cid: str, exec_id: str, args: list[str],
          env: list[str], cwd: str) -> tuple[int, bytes, bytes]:
    """Run args in the task (the container's process spec with these args, as ctr's tasks
    exec does) and wait for it: (exit status, stdout, stderr). Output goes through files in
    the bundle, read once the process has exited."""
    import json
    import tempfile

    from shim_v2.messages import Any_

    bundle = os.path.join(state_dir, ns, cid)
    with open(os.path.join(bundle, "config.json")) as f:
        proc = json.load(f)["process"]
    proc["args"] = args
    proc["terminal"] = False
    if env:
        proc["env"] = list(proc.get("env") or []) + env
    if cwd:
        proc["cwd"] = cwd
    shim = connect(state_dir, ns, cid)
    out_dir = tempfile.mkdtemp(prefix=f"exec-{exec_id}-", dir=bundle)
    out, err = os.path.join(out_dir, "stdout"), os.path.join(out_dir, "stderr")
    T = shim.T
    try:
        spec = Any_(type_url="types.containerd.io/opencontainers/runtime-spec/1/Process",
                    value=json.dumps(proc).encode())
        shim.call("Exec", T.ExecProcessRequest(id=cid, exec_id=exec_id, spec=spec,
                                               stdout="file://" + out, stderr="file://" + err))
        try:
            shim.call("Start", T.StartRequest(id=cid, exec_id=exec_id))
            w = shim.call("Wait", T.WaitRequest(id=cid, exec_id=exec_id), "WaitResponse")
        finally:
            try:
                shim.call("Delete", T.DeleteRequest(id=cid, exec_id=exec_id))
            except PyctrError:
                pass
        with open(out, "rb") as f1, open(err, "rb") as f2:
            return w.exit_status, f1.read(), f2.read()  # type: ignore[attr-defined]
    finally:
        shim.close()
        shutil.rmtree(out_dir, ignore_errors=True)
