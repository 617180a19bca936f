"""containerd-shim-pyrunc-v2: the binary containerd runs (`start`, `delete`, `-v`) and the daemon
`start` leaves behind. Argument syntax is Go's `flag` package (single dash, value as the next
word), as containerd passes it (../shared/harness/shim-v2-protocol.md section 2).
"""

from __future__ import annotations

import os
import sys

VERSION = "0.1.0"
SOCKET_DIR = "/run/containerd/s"  # hard-coded by containerd's own shims too
DEFAULT_ROOT = "/run/containerd/pyrunc"  # pyrunc's --root; /<namespace> is appended
FLAGS_WITH_VALUE = {
    "namespace", "address", "publish-binary", "id", "bundle", "socket",
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
    try:
        from _sha256 import sha256  # the builtin: hashlib would load OpenSSL (~3 ms)
    except ImportError:
        from hashlib import sha256
    h = sha256(os.path.join(address, ns, group).encode()).hexdigest()
    return f"unix://{SOCKET_DIR}/{h}"


def group_key(bundle: str, cid: str) -> str:
    try:
        from pyrunc.fastjson import loads  # (json would import re: ~5 ms)

        with open(os.path.join(bundle, "config.json"), "rb") as f:
            ann = loads(f.read()).get("annotations") or {}
    except (OSError, ValueError):
        ann = {}
    return ann.get("io.containerd.runc.v2.group") or ann.get("io.kubernetes.cri.sandbox-id") or cid


def cmd_start(opts: dict[str, str]) -> int:
    """Bind and listen (or find the group's live shim), start the daemon, print the address."""
    from _socket import AF_UNIX, SOCK_STREAM  # (the daemon forked from us: see ttrpc/conn.py)
    from _socket import socket as Socket

    ns, cid = opts.get("namespace", ""), opts.get("id", "")
    bundle = os.getcwd()
    addr = socket_address(opts.get("address", ""), ns, group_key(bundle, cid))
    path = addr[len("unix://") :]
    os.makedirs(SOCKET_DIR, 0o711, exist_ok=True)
    ls = Socket(AF_UNIX, SOCK_STREAM)
    try:
        ls.bind(path)
    except OSError:
        probe = Socket(AF_UNIX, SOCK_STREAM)
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
    # runtime options (an Any) on stdin when the container has any
    options = sys.stdin.buffer.read() if not sys.stdin.isatty() else b""
    # The daemon is this very process, forked: no second interpreter to start, and its
    # imports (protobuf, pyrunc) run while containerd, told the address, gets ready to dial.
    # It must hold no copy of our stdout/stderr (containerd reads them to EOF).
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        os.setsid()
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.close(null)
        opts = dict(opts, fd=str(ls.fileno()), socket=path)
        rc = 1
        try:
            rc = daemon(opts, options)
        except BaseException:
            import traceback

            traceback.print_exc()  # (stderr is containerd's log FIFO by then)
        finally:
            os._exit(rc)
    os.write(1, addr.encode())
    return 0


def _write_address(addr: str) -> None:
    with open(".address", "w") as f:
        f.write(addr)
    os.rename(".address", "address")


def cmd_delete(opts: dict[str, str]) -> int:
    """Clean up after a shim that is gone: idempotent, one DeleteResponse on stdout, text on
    stderr. containerd 1.6 runs this after every disconnect, also after a clean Delete, so
    the common case (nothing left) must be cheap: it imports neither pyrunc's lifecycle
    code nor protobuf unless there is a container to take down."""
    import time

    ns, cid = opts.get("namespace", ""), opts.get("id", "")
    bundle = opts.get("bundle") or os.getcwd()
    pid = 0
    root = os.path.join(DEFAULT_ROOT, ns)
    saved = os.path.join(bundle, "pyrunc-shim-options.json")  # (service.OPTIONS_FILE)
    if os.path.exists(saved):  # the container ran under a runtime binary (BinaryName)
        try:
            from pyrunc.fastjson import loads
            from shim_v2.runtime import Binary

            with open(saved, "rb") as f:
                o = loads(f.read())
            rt = Binary(o["BinaryName"], os.path.join(o.get("Root") or "/run/containerd/runc",
                                                      ns), bool(o.get("SystemdCgroup")))
            rt.bundles[cid] = bundle
            try:
                pid = rt.state(cid)[1].get("pid", 0)
            except Exception:  # noqa: BLE001 -- gone already
                pass
            rt.delete(cid, force=True)
        except Exception as e:  # noqa: BLE001 -- report, but still answer containerd
            print(f"delete {cid}: {e}", file=sys.stderr)
    elif cid and os.path.isdir(os.path.join(root, cid)):
        try:
            from shim_v2.runtime import InProcess

            rt = InProcess(root)
            try:
                _status, st = rt.state(cid)
                pid = st.get("pid", 0)
            except Exception:  # noqa: BLE001 -- half gone already
                pass
            rt.delete(cid, force=True)
        except Exception as e:  # noqa: BLE001 -- report, but still answer containerd
            print(f"delete {cid}: {e}", file=sys.stderr)
    rootfs = os.path.join(bundle, "rootfs")
    if os.path.ismount(rootfs):
        from shim_v2.service import _unmount

        _unmount(rootfs)
    sys.stdout.buffer.write(delete_response(pid, 137, time.time_ns()))
    return 0


def delete_response(pid: int, exit_status: int, exited_ns: int) -> bytes:
    """containerd.task.v2.DeleteResponse{pid=1, exit_status=2, exited_at=3 (Timestamp)},
    encoded by hand: importing protobuf would cost this short process ~30 ms more than all
    the rest (tests/unit/test_shim.py checks it against the generated class)."""

    def varint(n: int) -> bytes:
        out = bytearray()
        while True:
            b = n & 0x7F
            n >>= 7
            out.append(b | (0x80 if n else 0))
            if not n:
                return bytes(out)

    secs, nanos = divmod(exited_ns, 1_000_000_000)
    ts = (b"\x08" + varint(secs) if secs else b"") + (b"\x10" + varint(nanos) if nanos else b"")
    out = b""
    if pid:
        out += b"\x08" + varint(pid)
    if exit_status:
        out += b"\x10" + varint(exit_status)
    return out + b"\x1a" + varint(len(ts)) + ts


def daemon(opts: dict[str, str], options: bytes = b"") -> int:
    # first, before any message class: the daemon's start is on every container's path
    from shim_v2.ttrpc import pbload

    pbload.without_wkt_helpers()
    # _signal and _socket, not signal and socket: see ttrpc/conn.py
    import _signal
    from _socket import socket as Socket

    from pyrunc.linux import sys as LS
    from shim_v2.events import Publisher
    from shim_v2.runtime import InProcess
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
    # the first container's bundle is gone when that container is, while a grouped shim
    # serves on: every path from here on is absolute
    os.chdir("/")
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

    svc = TaskService(InProcess(os.path.join(DEFAULT_ROOT, ns)), pub, shutdown, options)
    server.register(SERVICE, svc.methods())
    server.listen(Socket(fileno=int(opts["fd"])))

    # SIGCHLD through a wakeup pipe: the loop reaps every child and hands exits to the
    # service (the only waitpid(-1) in this process; pyrunc's own waits are synchronous)
    r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    _signal.set_wakeup_fd(w, warn_on_full_buffer=False)
    _signal.signal(_signal.SIGCHLD, lambda *_: None)
    stop = []
    _signal.signal(_signal.SIGTERM, lambda *_: stop.append(1))
    _signal.signal(_signal.SIGINT, lambda *_: stop.append(1))
    _signal.signal(_signal.SIGPIPE, _signal.SIG_IGN)

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
    # (the daemon is not an action: `start` forks into it)
    print(f"shim: unknown action {action!r} (start, delete)", file=sys.stderr)
    return 2


def entry() -> None:
    sys.exit(main(sys.argv[1:]))


if __name__ == "__main__":
    entry()
