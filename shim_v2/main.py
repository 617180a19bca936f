"""containerd-shim-pyrunc-v2: the binary containerd runs (`start`, `delete`, `-v`) and the daemon
`start` leaves behind. Argument syntax is Go's `flag` package (single dash, value as the next
word), as containerd passes it (../shared/harness/shim-v2-protocol.md section 2).
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys

VERSION = "0.1.0"
SOCKET_DIR = "/run/containerd/s"  # hard-coded by containerd's own shims too
FLAGS_WITH_VALUE = {
    "namespace", "address", "publish-binary", "id", "bundle", "socket", "fd", "root",
}


def parse(argv: list[str]) -> tuple[dict[str, str], list[str]]:
    opts: dict[str, str] = {}
    rest: list[str] = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a.startswith("-") and len(a) > 1:
            name, eq, val = a.lstrip("-").partition("=")
            if name in FLAGS_WITH_VALUE and not eq:
                if i + 1 >= len(argv):
                    raise SystemExit(f"flag needs an argument: -{name}")
                val = argv[i + 1]
                i += 1
            opts[name] = val if (eq or name in FLAGS_WITH_VALUE) else "true"
        else:
            rest.append(a)
        i += 1
    return opts, rest


def socket_address(address: str, ns: str, group: str) -> str:
    h = hashlib.sha256(os.path.join(address, ns, group).encode()).hexdigest()
    return f"unix://{SOCKET_DIR}/{h}"


def group_key(bundle: str, cid: str) -> str:
    try:
        with open(os.path.join(bundle, "config.json"), "rb") as f:
            ann = json.loads(f.read()).get("annotations") or {}
    except (OSError, ValueError):
        ann = {}
    return ann.get("io.containerd.runc.v2.group") or ann.get("io.kubernetes.cri.sandbox-id") or cid


def cmd_start(opts: dict[str, str]) -> int:
    """Bind and listen (or find the group's live shim), start the daemon, print the address."""
    ns, cid = opts.get("namespace", ""), opts.get("id", "")
    bundle = os.getcwd()
    addr = socket_address(opts.get("address", ""), ns, group_key(bundle, cid))
    path = addr[len("unix://") :]
    os.makedirs(SOCKET_DIR, 0o711, exist_ok=True)
    ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        ls.bind(path)
    except OSError:
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(path)
            probe.close()
            ls.close()
            _write_address(addr)
            sys.stdout.write(addr)  # a live shim serves this group already
            return 0
        except OSError:
            probe.close()
            os.unlink(path)  # a dead one's socket
            ls.bind(path)
    ls.listen(64)
    _write_address(addr)
    # -I -S: the daemon's own start is on every container's critical path; it finds its
    # modules through this installation's sys.path, handed over in argv
    boot = (
        "import sys;sys.path[:0]=sys.argv.pop(1).split(':');"
        "from shim_v2.main import entry;entry()"
    )
    args = [sys.executable, "-I", "-S", "-c", boot, ":".join(p for p in sys.path if p),
            "-namespace", ns, "-id", cid, "-address", opts.get("address", ""),
            "-fd", str(ls.fileno()), "-socket", path]
    if opts.get("debug"):
        args.append("-debug")
    env = dict(os.environ)
    stdin = sys.stdin.buffer.read() if not sys.stdin.isatty() else b""
    env["PYRUNC_SHIM_OPTIONS"] = stdin.hex()  # the runtime options (an Any), for the daemon
    subprocess.Popen(
        args, cwd=bundle, env=env, pass_fds=(ls.fileno(),), stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    ls.close()
    sys.stdout.write(addr)
    return 0


def _write_address(addr: str) -> None:
    with open(".address", "w") as f:
        f.write(addr)
    os.rename(".address", "address")


def cmd_delete(opts: dict[str, str]) -> int:
    """Clean up after a shim that is gone (containerd runs this after every disconnect):
    idempotent, one DeleteResponse on stdout, text on stderr."""
    from shim_v2.proto.task_pb2 import DeleteResponse
    from shim_v2.runtime import DEFAULT_ROOT, InProcess
    from shim_v2.service import _ts, _unmount

    ns, cid = opts.get("namespace", ""), opts.get("id", "")
    bundle = opts.get("bundle") or os.getcwd()
    pid = 0
    try:
        rt = InProcess(os.path.join(DEFAULT_ROOT, ns))
        try:
            _status, st = rt.state(cid)
            pid = st.get("pid", 0)
        except Exception:  # noqa: BLE001 -- gone already
            pass
        rt.delete(cid, force=True)
    except Exception as e:  # noqa: BLE001 -- report, but still answer containerd
        print(f"delete {cid}: {e}", file=sys.stderr)
    _unmount(os.path.join(bundle, "rootfs"))
    import time

    sys.stdout.buffer.write(
        DeleteResponse(pid=pid, exit_status=137, exited_at=_ts(time.time_ns())).SerializeToString()
    )
    return 0


def daemon(opts: dict[str, str]) -> int:
    import signal

    from pyrunc.linux import sys as LS
    from shim_v2.events import Publisher
    from shim_v2.runtime import DEFAULT_ROOT, InProcess
    from shim_v2.service import SERVICE, TaskService, kill_all_on_exit
    from shim_v2.ttrpc import Loop, Server

    LS.prctl(LS.PR_SET_CHILD_SUBREAPER, 1)
    try:
        fd = os.open("log", os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        os.set_blocking(fd, True)
        os.dup2(fd, 2)
        os.close(fd)
    except OSError:
        pass
    ns = opts.get("namespace", "")
    loop = Loop()
    pub = Publisher(loop, os.environ.get("TTRPC_ADDRESS", ""), ns)
    server = Server(loop)

    def shutdown() -> None:
        server.close()
        try:
            os.unlink(opts.get("socket", ""))
        except OSError:
            pass
        loop.stop()

    svc = TaskService(InProcess(os.path.join(DEFAULT_ROOT, ns)), pub, shutdown)
    server.register(SERVICE, svc.methods())
    server.listen(socket.socket(fileno=int(opts["fd"])))

    # SIGCHLD through a wakeup pipe: the loop reaps every child and hands exits to the
    # service (the only waitpid(-1) in this process; pyrunc's own waits are synchronous)
    r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(w, warn_on_full_buffer=False)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)

    def wake() -> None:
        try:
            os.read(r, 512)
        except BlockingIOError:
            pass
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            svc.exited(pid, status)
        if stop:
            kill_all_on_exit(svc)
            shutdown()

    loop.add_reader(r, wake)
    loop.run_forever()
    # flush what is queued for containerd (the delete event) before going
    for _ in range(50):
        if not pub.pending():
            break
        loop.run_once(0.05)
    return 0


def main(argv: list[str]) -> int:
    opts, rest = parse(argv)
    if opts.get("v") or opts.get("version"):
        name = os.path.basename(sys.argv[0])
        print(f"{name}:\n  Version:  {VERSION}\n  Runtime: pyrunc (in-process)")
        return 0
    action = rest[0] if rest else ""
    if action == "start":
        return cmd_start(opts)
    if action == "delete":
        return cmd_delete(opts)
    if action == "":
        if "fd" not in opts:
            print("shim: no action given (start, delete) and no -fd to serve", file=sys.stderr)
            return 2
        return daemon(opts)
    print(f"shim: unknown action {action!r}", file=sys.stderr)
    return 2


def entry() -> None:
    sys.exit(main(sys.argv[1:]))


if __name__ == "__main__":
    entry()
