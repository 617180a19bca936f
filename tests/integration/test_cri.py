"""Kubernetes' path: kubelet -> containerd's CRI plugin -> a shim v2 -> the runtime, driven as
kubelet drives it (RunPodSandbox, then CreateContainer/StartContainer in the pod, ...) over
containerd's real CRI gRPC socket, with the tests' own CRI client (cri/).

Every test runs with the `pyrunc` handler (containerd-shim-pyrunc-v2, pyrunc in-process) and
with `runc` (containerd's stock shim and runc), so the tests are not tuned to our shim.
containerd runs in private mount and network namespaces (cri/env.py): pods get addresses on a
CNI bridge that exists only there.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cri import api_pb2 as pb
from cri.client import CRI, container_config, pod_config
from cri.env import CNI_BIN, Containerd
from cri.image import BUSYBOX
from harness import unique_id

pytestmark = pytest.mark.integration

HANDLERS = ["pyrunc", "runc"]

# our shim with another runtime binary behind it: the CRI plugin hands a non-runc shim its
# options table as runtimeoptions.v1.Options, a path to the TOML (deploy/containerd/config.toml)
BINARY_HANDLER = """
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.pyrunc-binary]
  runtime_type = "io.containerd.pyrunc.v2"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.pyrunc-binary.options]
    ConfigPath = "{base}/pyrunc-binary.toml"
"""
RUNNING = pb.CONTAINER_RUNNING
EXITED = pb.CONTAINER_EXITED


def _needs() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    for tool in ("containerd", "ctr", "unshare", "nsenter", "ip"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} is not installed")
    if not os.path.exists(os.path.join(CNI_BIN, "bridge")):
        pytest.skip("the CNI plugins are not installed (apt containernetworking-plugins)")


@pytest.fixture(scope="module")
def ctrd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Containerd]:
    _needs()
    shim_dir = os.path.dirname(os.path.realpath(os.environ.get("PYRUNC") or
                                                shutil.which("pyrunc") or ""))
    if not os.path.exists(os.path.join(shim_dir, "containerd-shim-pyrunc-v2")):
        pytest.skip("containerd-shim-pyrunc-v2 is not installed beside pyrunc")
    c = Containerd(str(tmp_path_factory.mktemp("cri")), shim_dir, extra_toml=BINARY_HANDLER)
    os.makedirs(c.base, exist_ok=True)
    wrapper = os.path.join(c.base, "runc-logging")
    with open(wrapper, "w") as f:
        f.write(f'#!/bin/sh\necho "$@" >> {c.base}/runc-calls.log\nexec runc "$@"\n')
    os.chmod(wrapper, 0o755)
    with open(os.path.join(c.base, "pyrunc-binary.toml"), "w") as f:
        f.write(f'BinaryName = "{wrapper}"\n')
    c.cri = c.start()  # type: ignore[attr-defined]
    try:
        yield c
    finally:
        c.cri.close()  # type: ignore[attr-defined]
        c.cleanup()


class Pod:
    """One pod sandbox of a test, with its containers; removed at the end whatever happened."""

    def __init__(self, ctrd: Containerd, handler: str, logdir: Path) -> None:
        self.ctrd = ctrd
        self.cri: CRI = ctrd.cri  # type: ignore[attr-defined]
        self.handler = handler
        self.name = unique_id("pod")
        self.cgroup_parent = f"/pyrunc-cri-{self.name}"
        self.logdir = logdir
        self.config = pod_config(self.name, uid=self.name, namespace="test",
                                 log_directory=str(logdir), cgroup_parent=self.cgroup_parent)
        self.id = self.cri.run_pod_sandbox(self.config, handler).pod_sandbox_id
        self.containers: list[str] = []

    def add(self, name: str, *cmd: str, **kw: object) -> str:
        cfg = container_config(name, BUSYBOX, list(cmd), log_path=f"{name}.log", **kw)
        cid = self.cri.create_container(self.id, cfg, self.config).container_id
        self.containers.append(cid)
        self.cri.start_container(cid)
        return cid

    def exec(self, cid: str, *cmd: str, timeout: int = 20) -> pb.ExecSyncResponse:
        return self.cri.exec_sync(cid, list(cmd), timeout=timeout)

    def sh(self, cid: str, script: str) -> str:
        r = self.exec(cid, "sh", "-c", script)
        assert r.exit_code == 0, (script, r.stdout, r.stderr)
        return r.stdout.decode()

    def remove(self) -> None:
        self.cri.stop_pod_sandbox(self.id)
        self.cri.remove_pod_sandbox(self.id)


@pytest.fixture(params=HANDLERS)
def pod(request: pytest.FixtureRequest, ctrd: Containerd, tmp_path: Path) -> Iterator[Pod]:
    p = Pod(ctrd, request.param, tmp_path / "logs")
    try:
        yield p
    finally:
        try:
            p.remove()
        except Exception:  # noqa: BLE001 - the test's own failure is the one to report
            pass
        _rmdir_cgroups(p.cgroup_parent)


def _cgroup_dirs(parent: str) -> list[str]:
    """Directories under the pod's cgroup parent, in every v1 hierarchy and the unified one."""
    out = []
    base = "/sys/fs/cgroup"
    for h in sorted(os.listdir(base)):
        d = os.path.join(base, h, parent.lstrip("/"))
        if os.path.isdir(d):
            out += [os.path.join(d, e) for e in os.listdir(d)
                    if os.path.isdir(os.path.join(d, e))]
    return out


def _rmdir_cgroups(parent: str) -> None:
    """The parent directory is ours (the test named it); the runtime removes what is below."""
    base = "/sys/fs/cgroup"
    for h in os.listdir(base):
        d = os.path.join(base, h, parent.lstrip("/"))
        if os.path.isdir(d):
            try:
                os.rmdir(d)
            except OSError:
                pass


def _info(cri: CRI, cid: str) -> dict:
    return json.loads(cri.container_status(cid, verbose=True).info.get("info", "{}"))


def _sandbox_info(pod: Pod) -> dict:
    return json.loads(pod.cri.pod_sandbox_status(pod.id, verbose=True).info["info"])


def _parent(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("PPid:"):
                return int(line.split()[1])
    return 0


def _shim_of(ctrd: Containerd, pid: int) -> int:
    """The shim a container's init belongs to: its parent (pyrunc's init is forked by our
    shim; runc's is re-parented to containerd's shim, its subreaper)."""
    shims = set(ctrd.shims())
    p = _parent(pid)
    assert p in shims, (pid, p, shims)
    return p


def test_version_and_status(ctrd: Containerd) -> None:
    v = ctrd.cri.version()  # type: ignore[attr-defined]
    assert v.runtime_name == "containerd" and v.runtime_api_version == "v1"
    conds = {c.type: c.status for c in ctrd.cri.status().status.conditions}  # type: ignore[attr-defined]
    assert conds == {"RuntimeReady": True, "NetworkReady": True}, conds


def test_pod_of_two_containers_shares_network_ipc_and_shim(pod: Pod) -> None:
    web = pod.add("web", "sh", "-c",
                  "mkdir /www && echo hello-from-web > /www/index.html && "
                  "exec httpd -f -p 127.0.0.1:8080 -h /www")
    client = pod.add("client", "sleep", "3600")
    # one reaches the other on localhost: one network namespace, the pod's
    got = ""
    for _ in range(50):
        r = pod.exec(client, "wget", "-qO-", "http://127.0.0.1:8080/index.html")
        got = r.stdout.decode()
        if r.exit_code == 0:
            break
        time.sleep(0.1)
    assert got == "hello-from-web\n"
    # and an address from the CNI bridge's subnet, seen from inside
    ip = pod.cri.pod_sandbox_status(pod.id).status.network.ip
    assert ip.startswith("10.88.77."), ip
    assert f"inet {ip}/24" in pod.sh(client, "ip -o -4 addr show eth0")
    # shared IPC: one IPC namespace and the pod's /dev/shm
    assert pod.sh(web, "readlink /proc/self/ns/ipc") == pod.sh(client,
                                                                  "readlink /proc/self/ns/ipc")
    pod.sh(web, "echo shared > /dev/shm/note")
    assert pod.sh(client, "cat /dev/shm/note") == "shared\n"
    # every container of the pod in the pod's one shim
    sandbox_pid = _sandbox_info(pod)["pid"]
    shims = {_shim_of(pod.ctrd, pid) for pid in
             (sandbox_pid, _info(pod.cri, web)["pid"], _info(pod.cri, client)["pid"])}
    assert len(shims) == 1, shims
    with open(f"/proc/{shims.pop()}/cmdline", "rb") as f:
        assert f"containerd-shim-{pod.handler}-v2".encode() in f.read()


def test_exec_sync_output_and_exit_code(pod: Pod) -> None:
    c = pod.add("box", "sleep", "3600")
    r = pod.exec(c, "sh", "-c", "echo out; echo err >&2; exit 3")
    assert (r.stdout, r.stderr, r.exit_code) == (b"out\n", b"err\n", 3)
    r = pod.exec(c, "cat", "/nonexistent")
    assert r.exit_code == 1 and b"No such file" in r.stderr


def test_logs_in_the_cri_format_where_kubelet_asks(pod: Pod) -> None:
    c = pod.add("talker", "sh", "-c", "echo line-one; echo line-two >&2; printf partial")
    for _ in range(100):
        if pod.cri.container_status(c).status.state == EXITED:
            break
        time.sleep(0.05)
    path = pod.logdir / "talker.log"
    assert pod.cri.container_status(c).status.log_path == str(path)
    lines = path.read_text().splitlines()
    parsed = [(ln.split(" ", 3)[1], ln.split(" ", 3)[2], ln.split(" ", 3)[3]) for ln in lines]
    assert ("stdout", "F", "line-one") in parsed
    assert ("stderr", "F", "line-two") in parsed
    assert ("stdout", "P", "partial") in parsed
    for ln in lines:  # RFC 3339 with nanoseconds, then the stream
        ts = ln.split(" ", 1)[0]
        assert ts[4] == "-" and "T" in ts and ("Z" in ts or "+" in ts), ln


def test_limits_from_create_and_update_reach_the_cgroup(pod: Pod) -> None:
    c = pod.add("limited", "sleep", "3600", memory_limit=64 << 20, cpu_quota=50000,
                cpu_period=100000)
    assert pod.sh(c, "cat /sys/fs/cgroup/memory/memory.limit_in_bytes") == f"{64 << 20}\n"
    assert pod.sh(c, "cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us") == "50000\n"
    res = pb.LinuxContainerResources(memory_limit_in_bytes=128 << 20, cpu_quota=20000,
                                     cpu_period=100000)
    pod.cri.update_container_resources(c, res)
    assert pod.sh(c, "cat /sys/fs/cgroup/memory/memory.limit_in_bytes") == f"{128 << 20}\n"
    assert pod.sh(c, "cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us") == "20000\n"
    # and from the host, in the directory the pod's cgroup parent names
    host = Path("/sys/fs/cgroup/memory") / pod.cgroup_parent.lstrip("/") / c
    assert (host / "memory.limit_in_bytes").read_text() == f"{128 << 20}\n"


def test_stop_and_remove_pod_leave_nothing(pod: Pod) -> None:
    a = pod.add("a", "sleep", "3600")
    b = pod.add("b", "sh", "-c", "trap '' TERM; sleep 3600")
    shim = _shim_of(pod.ctrd, _info(pod.cri, a)["pid"])
    pids = [_info(pod.cri, c)["pid"] for c in (a, b)]
    netns = [n["path"] for n in _sandbox_info(pod)["runtimeSpec"]["linux"]["namespaces"]
             if n["type"] == "network"][0]
    assert os.path.basename(netns) in pod.ctrd.netns_files(), (netns, pod.ctrd.netns_files())
    links_with_pod = pod.ctrd.in_netns("ip", "-o", "link")
    assert "veth" in links_with_pod

    pod.cri.stop_pod_sandbox(pod.id)
    for c in (a, b):
        st = pod.cri.container_status(c).status
        assert st.state == EXITED, (c, st.state)
    for p in pids:
        assert not os.path.exists(f"/proc/{p}") or _zombie(p)

    pod.cri.remove_pod_sandbox(pod.id)
    for _ in range(100):  # the shim exits after answering its last Delete/Shutdown
        if not os.path.exists(f"/proc/{shim}"):
            break
        time.sleep(0.05)
    assert not os.path.exists(f"/proc/{shim}"), "the pod's shim is still running"
    assert os.path.basename(netns) not in pod.ctrd.netns_files(), "netns left"
    assert "veth" not in pod.ctrd.in_netns("ip", "-o", "link"), "veth left"
    mi = pod.ctrd.mountinfo()
    for ident in (pod.id, a, b):
        assert ident not in mi, f"a mount of {ident} is left"
    assert _cgroup_dirs(pod.cgroup_parent) == [], "cgroups left"
    assert all(s.id != pod.id for s in pod.cri.list_pod_sandbox().items)


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def test_options_from_the_handler_reach_our_shim(ctrd: Containerd, tmp_path: Path) -> None:
    """BinaryName from the handler's ConfigPath TOML: the pod runs through that binary (a
    wrapper that logs its calls and execs runc), still in our shim."""
    p = Pod(ctrd, "pyrunc-binary", tmp_path / "logs")
    try:
        c = p.add("box", "sleep", "3600")
        assert p.sh(c, "echo through-runc") == "through-runc\n"
        calls = Path(ctrd.base, "runc-calls.log").read_text()
        assert "create --bundle" in calls and c in calls, calls
        shim = _shim_of(ctrd, _info(p.cri, c)["pid"])
        with open(f"/proc/{shim}/cmdline", "rb") as f:
            assert b"containerd-shim-pyrunc-v2" in f.read()
    finally:
        p.remove()
        _rmdir_cgroups(p.cgroup_parent)


def test_container_stop_stats_list_reopen_and_remove(pod: Pod) -> None:
    """The rest of what kubelet calls on a container: stats (the shim's Stats, as metrics),
    ListContainers, ReopenContainerLog (log rotation), Exec's streaming URL, StopContainer
    with a grace period, RemoveContainer."""
    c = pod.add("worker", "sh", "-c",
                "trap 'echo got-term; exit 7' TERM; i=0; "
                "while :; do echo tick-$i; i=$((i+1)); sleep 0.1; done")
    pod.sh(c, "head -c 4000000 /dev/zero > /dev/shm/ballast")  # 4 MB the pod's memory holds
    st = pod.cri.container_stats(c).stats
    assert st.attributes.id == c
    assert st.memory.working_set_bytes.value > 0
    assert st.cpu.usage_core_nano_seconds.value > 0
    listed = pod.cri.list_containers(pb.ContainerFilter(pod_sandbox_id=pod.id)).containers
    assert {x.id for x in listed} == {c}
    assert listed[0].state == RUNNING
    assert pod.cri.exec(c, ["true"]).url.startswith("http")
    # rotation as kubelet does it: rename the file, ask for a new one, new lines land there
    log = pod.logdir / "worker.log"
    for _ in range(50):
        if log.exists() and "tick-" in log.read_text():
            break
        time.sleep(0.1)
    log.rename(pod.logdir / "worker.log.1")
    pod.cri.reopen_container_log(c)
    for _ in range(50):
        if log.exists() and "tick-" in log.read_text():
            break
        time.sleep(0.1)
    assert "tick-" in log.read_text()
    # a grace period: SIGTERM first, the trap's exit status comes back
    pod.cri.stop_container(c, timeout=10)
    s = pod.cri.container_status(c).status
    assert (s.state, s.exit_code) == (EXITED, 7), (s.state, s.exit_code)
    assert "got-term" in log.read_text()
    pod.cri.remove_container(c)
    assert pod.cri.list_containers(pb.ContainerFilter(pod_sandbox_id=pod.id)).containers == []
