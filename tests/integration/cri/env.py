"""A private containerd 1.6 with its CRI plugin, for the tests and the pod benchmark.

containerd runs in a mount namespace of its own (a fresh tmpfs on /run, so the shims' sockets,
/run/netns and /run/containerd never touch the host's; another on /var/lib/cni, where libcni
keeps its cache) and a network namespace of its own: the CNI bridge, the veths and the pods'
addresses exist only there, and the host's interfaces and firewall are never touched (the
conflist asks for no masquerading, so no iptables rule either). Root, state and the gRPC
socket live in a temp dir; the socket is reachable from the test process as a plain path.

The runtime handlers are the ones deploy/containerd/config.toml registers: `pyrunc`
(io.containerd.pyrunc.v2, our shim, the runtime in-process) and `runc` (containerd's stock
io.containerd.runc.v2), so every test can run against both.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time

from .client import CRI
from .image import BUSYBOX, PAUSE, build

CNI_BIN = "/usr/lib/cni"  # Debian's containernetworking-plugins
SUBNET = "10.88.77.0/24"

CONFIG = """\
version = 2
root = "{base}/root"
state = "{base}/state"
[grpc]
  address = "{base}/containerd.sock"
[ttrpc]
  address = "{base}/containerd.sock.ttrpc"
[debug]
  level = "info"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{pause}"
  # this VM's root lacks CAP_SYS_RESOURCE: the sandbox's oom_score_adj -998 would be refused
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
{runtimes}
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{cni_bin}"
    conf_dir = "{base}/cni"
"""


def runtimes_toml() -> str:
    """The handler tables of deploy/containerd/config.toml, verbatim: the tests use what the
    README tells a node's operator to install."""
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(here, "..", "..", "..", "deploy", "containerd", "config.toml")
    out, keep = [], False
    with open(path) as f:
        for line in f:
            s = line.strip()
            if s.startswith("["):
                keep = ".containerd.runtimes." in s
            if keep:
                out.append(line.rstrip("\n"))
    return "\n".join(out)


class Containerd:
    def __init__(self, base: str, shim_dir: str, extra_toml: str = "") -> None:
        """extra_toml: more runtime handler tables, {base} standing for the temp dir."""
        self.base = base
        self.extra_toml = extra_toml
        self.shim_dir = shim_dir
        self.proc: subprocess.Popen | None = None
        self.sock = os.path.join(base, "containerd.sock")
        self.log = os.path.join(base, "containerd.log")
        self.mnt_ns = ""  # its mount namespace (mnt:[inode]), once started

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 30) -> CRI:
        os.makedirs(os.path.join(self.base, "cni"), exist_ok=True)
        with open(os.path.join(self.base, "config.toml"), "w") as f:
            runtimes = runtimes_toml() + "\n" + self.extra_toml.replace("{base}", self.base)
            f.write(CONFIG.format(base=self.base, pause=PAUSE, runtimes=runtimes,
                                  cni_bin=CNI_BIN))
        conflist = {
            "cniVersion": "0.4.0",
            "name": "pyrunc-cri-test",
            "plugins": [{
                "type": "bridge", "bridge": "cni-test0", "isGateway": True, "ipMasq": False,
                "ipam": {"type": "host-local", "ranges": [[{"subnet": SUBNET}]],
                         "dataDir": os.path.join(self.base, "ipam")},
            }],
        }
        with open(os.path.join(self.base, "cni", "10-test.conflist"), "w") as f:
            json.dump(conflist, f)
        script = (
            "set -e; mount -t tmpfs -o mode=755 tmpfs /run; "
            "mkdir -p /var/lib/cni; mount -t tmpfs tmpfs /var/lib/cni; "
            "ip link set lo up; "
            'exec env PATH="$0:$PATH" containerd --config "$1"'
        )
        os.makedirs("/var/lib/cni", exist_ok=True)  # (the mount point; nothing is written)
        logf = open(self.log, "wb")  # noqa: SIM115 - containerd's stdout/stderr for its life
        self.proc = subprocess.Popen(
            ["unshare", "--mount", "--net", "--propagation", "private", "sh", "-c", script,
             self.shim_dir, os.path.join(self.base, "config.toml")],
            stdin=subprocess.DEVNULL, stdout=logf, stderr=logf, start_new_session=True,
        )
        logf.close()
        deadline = time.monotonic() + timeout
        while not os.path.exists(self.sock):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"containerd did not start: {self.tail()}")
            time.sleep(0.05)
        self.mnt_ns = os.readlink(f"/proc/{self.pid}/ns/mnt")
        cri = CRI(self.sock)
        cri.wait_ready(timeout)
        self.import_images()
        return cri

    def ctr(self, *args: str, timeout: float = 120) -> str:
        p = subprocess.run(["ctr", "-a", self.sock, "-n", "k8s.io", *args],
                           capture_output=True, text=True, timeout=timeout)
        if p.returncode != 0:
            raise RuntimeError(f"ctr {' '.join(args)}: {p.stderr.strip()}")
        return p.stdout

    def import_images(self) -> None:
        tar = build(os.path.join(self.base, "images.tar"))
        self.ctr("images", "import", tar)
        os.unlink(tar)
        names = self.ctr("images", "ls", "-q").split()
        missing = {BUSYBOX, PAUSE} - set(names)
        if missing:
            raise RuntimeError(f"images not imported: {missing}")

    def in_netns(self, *cmd: str) -> str:
        """A command in containerd's network namespace (where the bridge and veths live)."""
        return subprocess.run(["nsenter", f"--net=/proc/{self.pid}/ns/net", *cmd],
                              capture_output=True, text=True, check=True).stdout

    def mountinfo(self) -> str:
        with open(f"/proc/{self.pid}/mountinfo") as f:
            return f.read()

    def netns_files(self) -> list[str]:
        """Pinned pod network namespaces (containerd's /run/netns, in its mount namespace)."""
        try:
            return sorted(os.listdir(f"/proc/{self.pid}/root/run/netns"))
        except FileNotFoundError:
            return []

    def processes(self) -> list[int]:
        """Every process in containerd's mount namespace but containerd itself: its shims and
        what they run. Ours to end: nothing else lives in that namespace."""
        return [p for p in _in_mount_ns(self.mnt_ns) if p != self.pid]

    def shims(self) -> list[int]:
        out = []
        for p in self.processes():
            try:
                with open(f"/proc/{p}/cmdline", "rb") as f:
                    argv = f.read().split(b"\0")
            except OSError:
                continue
            # the Go shim's argv[0], or our launcher's path among the interpreter's arguments
            if any(b"containerd-shim-" in a for a in argv[:8]):
                out.append(p)
        return out

    def tail(self, n: int = 20) -> str:
        try:
            with open(self.log, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        # whatever is left in its namespace (a test that failed half-way) was started by it;
        # its shims outlive it by design, found by the namespace it left
        for p in _in_mount_ns(self.mnt_ns):
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)


def _in_mount_ns(ns: str) -> list[int]:
    """Pids of the processes in mount namespace ns (as /proc/PID/ns/mnt reads)."""
    out = []
    if not ns:
        return out
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                if os.readlink(f"/proc/{d}/ns/mnt") == ns:
                    out.append(int(d))
            except OSError:
                continue
    return out
