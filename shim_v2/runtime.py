"""The runtime behind the shim: pyrunc's library, in this process.

No runtime process per call: create forks the container's init straight from the shim
(which therefore is its parent and reaps it), start/kill/delete/pause are function calls.
The shim is single-threaded (one loop, no thread pool) because create forks: see
shim_v2/ttrpc/loop.py, and pyrunc's clone3 cgroup placement, which needs a single thread.
"""

from __future__ import annotations

import os

from pyrunc import container
from pyrunc import state as S
from pyrunc.errors import NotFound, RuntimeErr


class InProcess:
    def __init__(self, root: str) -> None:
        self.root = root
        os.makedirs(root, 0o711, exist_ok=True)

    def create(
        self, cid: str, bundle: str, stdio: tuple[int, int, int], *, console_socket: str = "",
        no_pivot: bool = False, no_new_keyring: bool = False,
    ) -> tuple[int, int]:
        """(the init's pid, the pty master if config.json asks for a terminal, else -1)"""
        cwd = os.getcwd()
        try:
            c = container.create(
                self.root, cid, bundle, console_socket=console_socket, no_pivot=no_pivot,
                no_new_keyring=no_new_keyring, stdio=stdio, detach=bool(console_socket),
            )
        finally:
            os.chdir(cwd)  # (create works from the bundle)
        return c.st["pid"], c.console_master

    def start(self, cid: str) -> None:
        container.start(self.root, cid)

    def exec(self, cid: str, proc: dict, stdio: tuple[int, int, int]) -> tuple[int, int]:
        """(its pid, the pty master when proc has a terminal, else -1)"""
        from pyrunc import execproc

        return execproc.start(self.root, cid, proc, stdio=stdio)

    def kill(self, cid: str, sig: int, all_: bool = False) -> None:
        container.kill(self.root, cid, sig, all_)

    def delete(self, cid: str, force: bool = False) -> None:
        try:
            container.delete(self.root, cid, force=force)
        except NotFound:
            pass

    def pause(self, cid: str, frozen: bool) -> None:
        container.pause(self.root, cid, frozen)

    def state(self, cid: str) -> tuple[str, dict]:
        st = S.load(self.root, cid)
        return S.status(self.root, st), st

    def update(self, cid: str, resources: dict) -> None:
        from pyrunc import update

        update.apply(self.root, cid, lambda: update.changes_from(resources))

    def stats(self, cid: str) -> dict:
        """runc's `events --stats` figures (pyrunc.events), v1 or v2 alike."""
        from pyrunc import events

        st = S.load(self.root, cid)
        return _with_memory_events(events.stats(st.get("cgroup") or {}), st.get("cgroup") or {})

    def pids(self, cid: str) -> list[int]:
        st = S.load(self.root, cid)
        return S.members(st)


Error = RuntimeErr


class Binary:
    """Any runc-compatible binary (`BinaryName`: runc, crun, pyrunc itself), driven with runc's
    CLI exactly as containerd's runc shim drives it: `--root R --log <bundle>/log.json
    --log-format json`, create with a pid file, errors from the log's last error line.

    Its `create` returns after the init is set up; the init is then re-parented to the shim
    (a subreaper), which reaps it like an in-process one. subprocess waits for its own
    children synchronously, so the loop's waitpid(-1) never sees them.
    """

    def __init__(self, binary: str, root: str, systemd_cgroup: bool = False) -> None:
        self.binary = binary
        self.root = root
        self.systemd = systemd_cgroup
        self.bundles: dict[str, str] = {}

    def _run(
        self, cid: str, args: list[str], *, stdio: tuple[int, int, int] | None = None,
        stdin_data: bytes | None = None,
    ) -> bytes:
        import subprocess

        bundle = self.bundles.get(cid, os.getcwd())
        log = os.path.join(bundle, "log.json")
        argv = [self.binary, "--root", self.root, "--log", log, "--log-format", "json"]
        if self.systemd:
            argv.append("--systemd-cgroup")
        kw: dict = {"cwd": bundle}
        if stdio is not None:
            kw.update(stdin=stdio[0], stdout=stdio[1], stderr=stdio[2])
        elif stdin_data is not None:
            kw.update(input=stdin_data, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        else:
            kw.update(stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        p = subprocess.run(argv + args, **kw)
        if p.returncode != 0:
            raise RuntimeErr(_last_error(log) or (p.stderr or b"").decode(errors="replace").strip()
                             or f"{os.path.basename(self.binary)} {args[0]}: exit {p.returncode}")
        return p.stdout or b""

    def create(
        self, cid: str, bundle: str, stdio: tuple[int, int, int], *, console_socket: str = "",
        no_pivot: bool = False, no_new_keyring: bool = False,
    ) -> tuple[int, int]:
        self.bundles[cid] = bundle
        args = ["create", "--bundle", bundle]
        if no_pivot:
            args.append("--no-pivot")
        if no_new_keyring:
            args.append("--no-new-keyring")
        return self._detached(cid, args, os.path.join(bundle, "init.pid"),
                              _wants_terminal(bundle), stdio)

    def _detached(
        self, cid: str, args: list[str], pidfile: str, terminal: bool,
        stdio: tuple[int, int, int],
    ) -> tuple[int, int]:
        """create / exec --detach: (the process's pid from pidfile, the pty master or -1)."""
        with _ConsoleSocket(terminal) as cs:
            if cs.path:
                args = [*args, "--console-socket", cs.path]
            self._run(cid, [*args, "--pid-file", pidfile, cid], stdio=stdio)
            master = cs.receive()
        with open(pidfile) as f:
            return int(f.read().strip()), master

    def start(self, cid: str) -> None:
        self._run(cid, ["start", cid])

    def exec(self, cid: str, proc: dict, stdio: tuple[int, int, int]) -> tuple[int, int]:
        import tempfile

        from pyrunc import fastjson

        with tempfile.TemporaryDirectory(prefix="pyrunc-shim-exec") as tmp:
            pf, pidfile = os.path.join(tmp, "process.json"), os.path.join(tmp, "exec.pid")
            with open(pf, "w") as f:
                f.write(fastjson.dumps(proc))
            return self._detached(cid, ["exec", "--process", pf, "--detach"], pidfile,
                                  bool(proc.get("terminal")), stdio)

    def kill(self, cid: str, sig: int, all_: bool = False) -> None:
        self._run(cid, ["kill", *(["--all"] if all_ else []), cid, str(sig)])

    def delete(self, cid: str, force: bool = False) -> None:
        try:
            self._run(cid, ["delete", *(["--force"] if force else []), cid])
        except RuntimeErr as e:
            if "not exist" not in str(e):
                raise
        self.bundles.pop(cid, None)

    def pause(self, cid: str, frozen: bool) -> None:
        self._run(cid, ["pause" if frozen else "resume", cid])

    def state(self, cid: str) -> tuple[str, dict]:
        from pyrunc import fastjson
        from pyrunc.linux import cgroups

        st = fastjson.loads(self._run(cid, ["state", cid]))
        st["cgroup"] = cgroups.paths_of(st.get("pid", 0))
        return st.get("status", "unknown"), st

    def update(self, cid: str, resources: dict) -> None:
        from pyrunc import fastjson

        self._run(cid, ["update", "--resources", "-", cid],
                  stdin_data=fastjson.dumps(resources).encode())

    def pids(self, cid: str) -> list[int]:
        from pyrunc import fastjson

        return list(fastjson.loads(self._run(cid, ["ps", "--format", "json", cid])) or [])

    def stats(self, cid: str) -> dict:
        from pyrunc import events

        _status, st = self.state(cid)
        return _with_memory_events(events.stats(st["cgroup"]), st["cgroup"])


def _with_memory_events(stats: dict, paths: dict) -> dict:
    """cgroup v2's memory.events counters, which containerd's v2 metrics carry."""
    from pyrunc.linux.cgroups import is_v2_only

    path = paths.get("unified")
    if path and is_v2_only():
        try:
            with open(os.path.join(path, "memory.events")) as f:
                stats["memory_events"] = {
                    k: int(v) for k, v in (line.split() for line in f if line.strip())
                }
        except (OSError, ValueError):
            pass
    return stats


def _wants_terminal(bundle: str) -> bool:
    from pyrunc import fastjson

    try:
        with open(os.path.join(bundle, "config.json"), "rb") as f:
            return bool((fastjson.loads(f.read()).get("process") or {}).get("terminal"))
    except (OSError, ValueError):
        return False


def _last_error(log: str) -> str:
    """The last `"level":"error"` message of the runtime's --log (what containerd's shim
    reports as the OCI runtime error)."""
    from pyrunc import fastjson

    msg = ""
    try:
        with open(log, "rb") as f:
            for line in f:
                try:
                    d = fastjson.loads(line)
                except ValueError:
                    continue
                if isinstance(d, dict) and d.get("level") == "error":
                    msg = str(d.get("msg", ""))
    except OSError:
        pass
    return msg


class _ConsoleSocket:
    """A unix socket for --console-socket, in a private temp dir; receive() takes the pty
    master the runtime sends over it (-1 when no terminal was asked for)."""

    def __init__(self, wanted: bool) -> None:
        self.wanted = wanted
        self.path = ""

    def __enter__(self) -> _ConsoleSocket:
        if self.wanted:
            import socket
            import tempfile

            self.dir = tempfile.mkdtemp(prefix="pyrunc-shim-pty")
            self.path = os.path.join(self.dir, "pty.sock")
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.bind(self.path)
            self.sock.listen(1)
        return self

    def receive(self) -> int:
        if not self.wanted:
            return -1
        from pyrunc.linux import sys as LS

        self.sock.settimeout(10)
        conn, _ = self.sock.accept()
        try:
            return LS.recv_fd(conn.fileno())
        finally:
            conn.close()

    def __exit__(self, *exc: object) -> None:
        if self.wanted:
            import shutil

            self.sock.close()
            shutil.rmtree(self.dir, ignore_errors=True)
