"""linux.netDevices (runtime-spec 1.2): host devices moved into the container's network namespace.

Every test runs the runtime inside a network namespace of its own (`nsenter --net`), whose
devices play the host's: nothing here creates, moves or deletes a device of the real host.
This kernel may have no `dummy` driver; `ifb` (another virtual device with no peer) stands in.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import CGROUP_ROOT, Bundle, Runtime, unique_id

pytestmark = pytest.mark.integration


class NetNS:
    """A network namespace kept alive by a sleeping process of ours."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(["unshare", "--net", "--", "sleep", "600"],
                                     stdin=subprocess.DEVNULL)
        self.path = f"/proc/{self.proc.pid}/ns/net"
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                if os.readlink(self.path) != os.readlink("/proc/self/ns/net"):
                    return
            except OSError:
                pass
            time.sleep(0.01)
        self.close()
        pytest.skip("unshare --net did not produce a new network namespace")

    def prefix(self) -> list[str]:
        return ["nsenter", f"--net={self.path}", "--"]

    def sh(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        p = subprocess.run([*self.prefix(), *argv], capture_output=True, text=True, timeout=30)
        if check:
            assert p.returncode == 0, (argv, p.stderr)
        return p

    def ip(self, *args: str) -> str:
        return self.sh("ip", *args).stdout

    def has(self, dev: str) -> bool:
        return self.sh("ip", "link", "show", "dev", dev, check=False).returncode == 0

    def links(self) -> list[str]:
        return [ln.split(": ")[1].split("@")[0] for ln in self.ip("-o", "link").splitlines()]

    def link(self, dev: str) -> tuple[bool, str, str]:
        """(up, mtu, hardware address) of a device (/sys is the real host's, so `ip`)."""
        f = self.ip("-o", "link", "show", "dev", dev).split()
        flags = f[2].strip("<>").split(",")
        return "UP" in flags, f[f.index("mtu") + 1], f[f.index("link/ether") + 1]

    def add_standalone(self, name: str) -> str:
        """A virtual device with no peer: dummy where the kernel has it, else ifb."""
        _quiet_modules()
        for kind in ("dummy", "ifb"):
            if self.sh("ip", "link", "add", name, "type", kind, check=False).returncode == 0:
                return kind
        pytest.skip("neither dummy nor ifb devices can be created here")

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


def _quiet_modules() -> None:
    """Load dummy and ifb (where not loaded) with no devices of their own: loaded implicitly by
    the first `ip link add` in our namespace, they would make dummy0, or ifb0 and ifb1, in the
    host's initial namespace."""
    import shutil

    if not shutil.which("modprobe"):
        return
    for mod, param in (("dummy", "numdummies=0"), ("ifb", "numifbs=0")):
        if not os.path.exists(f"/sys/module/{mod}"):
            subprocess.run(["modprobe", mod, param], capture_output=True, timeout=30)


class NsRuntime(Runtime):
    """The runtime under test, started inside `ns` (the test's stand-in for the host)."""

    def __init__(self, rt: Runtime, ns: NetNS) -> None:
        super().__init__(rt.binary, rt.root, rt.scratch)
        self.ns = ns

    def argv(self, *args: str) -> list[str]:
        return [*self.ns.prefix(), *super().argv(*args)]


@pytest.fixture
def ns() -> Iterator[NetNS]:
    n = NetNS()
    yield n
    n.close()


@pytest.fixture
def nrt(rt: Runtime, ns: NetNS) -> Iterator[NsRuntime]:
    r = NsRuntime(rt, ns)
    yield r
    r.cleanup()


def _set_netdevs(bundle: Bundle, devs: dict) -> None:
    bundle.linux["netDevices"] = devs


def _with_net_raw(bundle: Bundle) -> None:
    for kind in ("bounding", "effective", "permitted"):
        bundle.process["capabilities"][kind].append("CAP_NET_RAW")


def _addr_lines(text: str) -> list[str]:
    """`ip -o addr` lines reduced to "dev family address/prefix scope S"."""
    out = []
    for ln in text.splitlines():
        f = ln.split()
        out.append(f"{f[1]} {f[2]} {f[3]} scope {f[f.index('scope') + 1]}")
    return out


def _wait_stopped(rt: Runtime, cid: str) -> None:
    st = rt.wait_status(cid, "stopped", timeout=15)
    assert st["status"] == "stopped", st


def _own_cgroup(bundle: Bundle, cid: str) -> str:
    """An absolute cgroupsPath, so that the test knows where a leftover would be."""
    path = f"/pyrunc-test-{cid}"
    bundle.linux["cgroupsPath"] = path
    return path


def _assert_no_cgroup(path: str) -> None:
    for ctrl in ("memory", "pids", "cpu", "freezer", "devices", "unified", ""):
        d = CGROUP_ROOT / ctrl / path.lstrip("/")
        assert not d.exists(), d


def test_device_moved_renamed_with_addresses_and_mtu(
    nrt: NsRuntime, ns: NetNS, bundle: Bundle, tmp_path: Path
) -> None:
    """A standalone device with an IPv4 /24, a global IPv6 address, a host-scope address and
    MTU 1400 moved in as ctr0: the container sees ctr0, up, with the MTU, the hardware address
    and the two global addresses (not the host-scope one); the "host" no longer has d0. The
    namespace was the container's own, so the device dies with it (the spec's lifecycle)."""
    ns.add_standalone("d0")
    ns.ip("link", "set", "d0", "mtu", "1400", "up")
    ns.ip("addr", "add", "10.61.0.2/24", "dev", "d0")
    ns.ip("-6", "addr", "add", "2001:db8:61::2/64", "dev", "d0", "nodad")
    ns.ip("addr", "add", "127.0.0.33/8", "dev", "d0")  # scope host: stays behind
    mac = ns.link("d0")[2]
    _set_netdevs(bundle, {"d0": {"name": "ctr0"}})
    bundle.sh("ls /sys/class/net; cat /sys/class/net/ctr0/mtu /sys/class/net/ctr0/address "
              "/sys/class/net/ctr0/flags; ip -o addr show dev ctr0")
    cid = unique_id()
    out = tmp_path / "out"
    r = nrt.create(cid, bundle, output=out)
    assert r.rc == 0, r
    assert not ns.has("d0") and not ns.has("ctr0")
    r = nrt.cmd("start", cid)
    assert r.rc == 0, r
    _wait_stopped(nrt, cid)
    lines = out.read_text().splitlines()
    assert lines[:2] == ["ctr0", "lo"], lines
    assert lines[2:4] == ["1400", mac]
    assert int(lines[4], 16) & 0x1, "ctr0 not up"
    addrs = _addr_lines("\n".join(lines[5:]))
    assert "ctr0 inet 10.61.0.2/24 scope global" in addrs, addrs
    assert "ctr0 inet6 2001:db8:61::2/64 scope global" in addrs, addrs
    assert not any("127.0.0.33" in a for a in addrs), addrs
    assert nrt.delete(cid).rc == 0
    assert not ns.has("d0") and not ns.has("ctr0"), ns.links()  # destroyed with the netns


def test_veth_end_carries_traffic(nrt: NsRuntime, ns: NetNS, bundle: Bundle,
                                  tmp_path: Path) -> None:
    """One end of a veth pair moved in as eth0: once `create` returns, the container's end
    answers the "host" (it is up, with its address, before the process runs), and the
    container's process reaches the other end."""
    ns.ip("link", "add", "vh0", "type", "veth", "peer", "name", "vc0")
    ns.ip("addr", "add", "10.62.0.1/24", "dev", "vh0")
    ns.ip("addr", "add", "10.62.0.2/24", "dev", "vc0")
    ns.ip("link", "set", "vh0", "up")
    _set_netdevs(bundle, {"vc0": {"name": "eth0"}})
    _with_net_raw(bundle)
    bundle.sh("ping -c 1 -W 3 10.62.0.1 && echo ping-ok")
    cid = unique_id()
    out = tmp_path / "out"
    r = nrt.create(cid, bundle, output=out)
    assert r.rc == 0, r
    assert ns.links() == ["lo", "vh0"]
    ns.sh("busybox", "ping", "-c", "1", "-W", "3", "10.62.0.2")  # (no iputils here)
    assert nrt.cmd("start", cid).rc == 0
    _wait_stopped(nrt, cid)
    assert "ping-ok" in out.read_text(), out.read_text()
    assert nrt.delete(cid).rc == 0
    assert ns.links() == ["lo"], "the pair goes with the container's namespace"


def test_joined_namespace_by_path(nrt: NsRuntime, ns: NetNS, bundle: Bundle) -> None:
    """netDevices into a network namespace the container joins by path, name unchanged: the
    container sees it; after the container is deleted it stays in that namespace, whose owner
    controls its life (runc's netdev.bats "precreated container network namespace")."""
    target = NetNS()
    try:
        ns.add_standalone("d1")
        ns.ip("addr", "add", "10.63.0.2/24", "dev", "d1")
        for n in bundle.linux["namespaces"]:
            if n["type"] == "network":
                n["path"] = target.path
        _set_netdevs(bundle, {"d1": {}})
        r = nrt.run_sh(bundle, "ip -o addr show dev d1; cat /sys/class/net/d1/operstate")
        assert r.rc == 0, r
        assert "d1 inet 10.63.0.2/24 scope global" in _addr_lines(r.out.splitlines()[0])
        assert not ns.has("d1")
        assert "10.63.0.2/24" in target.ip("-o", "addr", "show", "dev", "d1")
    finally:
        target.close()


def test_template_names(nrt: NsRuntime, ns: NetNS, bundle: Bundle) -> None:
    """A name ending in %d is a template (the spec): the kernel numbers the devices."""
    ns.add_standalone("ta")
    ns.add_standalone("tb")
    _set_netdevs(bundle, {"ta": {"name": "net%d"}, "tb": {"name": "net%d"}})
    r = nrt.run_sh(bundle, "ls /sys/class/net")
    assert r.rc == 0, r
    assert r.out.split() == ["lo", "net0", "net1"]


def test_user_namespace(nrt: NsRuntime, ns: NetNS, bundle: Bundle, short_tmp: Path) -> None:
    """With a user namespace too (runc's userns.bats "userns with network interface")."""
    from harness import userns_bundle

    bundle = userns_bundle(bundle, short_tmp)
    ns.add_standalone("du")
    ns.ip("addr", "add", "10.64.0.2/24", "dev", "du")
    _set_netdevs(bundle, {"du": {"name": "eth0"}})
    r = nrt.run_sh(bundle, "ip -o addr show dev eth0")
    assert r.rc == 0, r
    assert "eth0 inet 10.64.0.2/24 scope global" in _addr_lines(r.out)
    assert not ns.has("du") and not ns.has("eth0")


def test_device_dies_with_the_namespace_when_the_init_exits(
    nrt: NsRuntime, ns: NetNS, bundle: Bundle
) -> None:
    """The runtime does not pin the namespace or move devices out (the spec: MUST NOT): a
    virtual device is gone as soon as the container's init exits, and delete still works."""
    ns.add_standalone("dk")
    _set_netdevs(bundle, {"dk": {}})
    bundle.args("sleep", "100")
    bundle.save()
    cid = unique_id()
    r = nrt.detached("run", "-d", "--bundle", str(bundle.path), cid, cid=cid)
    assert r.rc == 0, r
    assert nrt.cmd("kill", cid, "KILL").rc == 0
    _wait_stopped(nrt, cid)
    assert not ns.has("dk")
    assert nrt.delete(cid).rc == 0
    assert not ns.has("dk")


# ---- refused configs, failed creates -------------------------------------------------------

BAD = [
    ({"eth9": {}}, None, 'linux.netDevices.eth9: no network device "eth9"'),
    ({"bad": {"name": ""}}, None, 'linux.netDevices.bad.name: invalid network device name ""'),
    ({"bad": {"name": "a/b"}}, None, 'linux.netDevices.bad.name: invalid network device name'),
    ({"bad": {"name": "x" * 16}}, None, "linux.netDevices.bad.name: invalid network device"),
    ({"bad": {"name": "."}}, None, 'linux.netDevices.bad.name: invalid network device name "."'),
    ({"bad": {"name": ".."}}, None, 'linux.netDevices.bad.name: invalid network device name'),
    ({"bad": {"name": "a b"}}, None, 'linux.netDevices.bad.name: invalid network device name'),
    ({"bad": {"name": "a\tb"}}, None, "linux.netDevices.bad.name: invalid network device name"),
    ({"bad": {"name": "a:b"}}, None, "linux.netDevices.bad.name: invalid network device name"),
    ({"bad": {"name": "eth0"}, "bad2": {"name": "eth0"}}, None,
     'linux.netDevices.bad2: "eth0" is also the name of linux.netDevices.bad in the container'),
    ({"bad": {}, "bad2": {"name": "bad"}}, None,
     'linux.netDevices.bad2: "bad" is also the name of linux.netDevices.bad'),
    ({"bad": {}}, "none",
     "linux.netDevices: unable to move network devices without a NET namespace"),
    ({"bad": {}}, "own", "is the runtime's own"),
    ({"bad": {"name": 7}}, None,
     "linux.netDevices.bad.name: expected string or null, got integer"),
    ({"bad": "eth0"}, None, "linux.netDevices.bad: expected object or null, got string"),
]


@pytest.mark.parametrize("case", BAD, ids=[c[2].split(": ")[-1][:40] for c in BAD])
def test_bad_config_refused(nrt: NsRuntime, ns: NetNS, bundle: Bundle,
                            case: tuple[dict, str | None, str]) -> None:
    """One line naming the field, exit 1, nothing left: no state dir, no cgroup, and the
    devices where they were, as they were."""
    devs, netns, needle = case
    for name in ("bad", "bad2"):
        ns.add_standalone(name)
    ns.ip("addr", "add", "10.65.0.2/24", "dev", "bad")
    ns.ip("link", "set", "bad", "up")
    before = {d: _snapshot(ns, d) for d in ("bad", "bad2")}
    _set_netdevs(bundle, devs)
    if netns == "none":
        bundle.linux["namespaces"] = [n for n in bundle.linux["namespaces"]
                                      if n["type"] != "network"]
    elif netns == "own":
        for n in bundle.linux["namespaces"]:
            if n["type"] == "network":
                n["path"] = "/proc/self/ns/net"  # the runtime's, i.e. the test's namespace
    cid = unique_id()
    cg = _own_cgroup(bundle, cid)
    r = nrt.run(cid, bundle)
    assert r.rc == 1, r
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.err, r.err
    assert "config.json: " in lines[0] and needle in lines[0].replace('\\"', '"'), lines[0]
    assert not (nrt.root / cid).exists()
    _assert_no_cgroup(cg)
    assert {d: _snapshot(ns, d) for d in ("bad", "bad2")} == before


def _snapshot(ns: NetNS, dev: str) -> tuple[tuple[bool, str, str], list[str]]:
    """What a failed create must give back: up/down, MTU, MAC, addresses (one line each).
    Not the IPv6 link-local one: the kernel adds it a moment after the link comes up."""
    addrs = sorted(a for a in _addr_lines(ns.ip("-o", "addr", "show", "dev", dev))
                   if "scope link" not in a)
    return ns.link(dev), addrs


@pytest.mark.parametrize("when", ["moving", "after"])
def test_failed_create_puts_devices_back(nrt: NsRuntime, ns: NetNS, bundle: Bundle,
                                         when: str) -> None:
    """A create that fails once devices have moved gives them back under their old names,
    with their addresses, MTU, hardware address and state: when a later device cannot move
    (a bridge never leaves its namespace), or when something after the move fails (a
    createRuntime hook). The state dir and cgroup go too."""
    ns.add_standalone("fa")
    ns.ip("link", "set", "fa", "mtu", "1400", "up")
    ns.ip("addr", "add", "10.66.0.2/24", "dev", "fa")
    ns.ip("-6", "addr", "add", "2001:db8:66::2/64", "dev", "fa", "nodad")
    ns.add_standalone("fb")  # down, no address
    before = {d: _snapshot(ns, d) for d in ("fa", "fb")}
    if when == "moving":
        ns.ip("link", "add", "br0", "type", "bridge")
        _set_netdevs(bundle, {"fa": {"name": "ctr0"}, "fb": {}, "br0": {}})
        needle = "network device br0: moving it into the container's network namespace"
    else:
        _set_netdevs(bundle, {"fa": {"name": "ctr0"}, "fb": {}})
        bundle.config["hooks"] = {"createRuntime": [{"path": "/bin/false"}]}
        needle = "createRuntime"
    cid = unique_id()
    cg = _own_cgroup(bundle, cid)
    r = nrt.run(cid, bundle)
    assert r.rc == 1, r
    assert len(r.err.strip().splitlines()) == 1 and needle in r.err, r.err
    assert {d: _snapshot(ns, d) for d in ("fa", "fb")} == before
    assert not ns.has("ctr0")
    assert not (nrt.root / cid).exists()
    _assert_no_cgroup(cg)


def test_name_taken_in_joined_namespace(nrt: NsRuntime, ns: NetNS, bundle: Bundle) -> None:
    """A device of that name already in the (joined) container namespace is an error (the
    spec), and the device stays on the "host" as it was."""
    target = NetNS()
    try:
        target.add_standalone("eth0")
        ns.add_standalone("tk")
        ns.ip("addr", "add", "10.67.0.2/24", "dev", "tk")
        ns.ip("link", "set", "tk", "up")
        before = _snapshot(ns, "tk")
        for n in bundle.linux["namespaces"]:
            if n["type"] == "network":
                n["path"] = target.path
        _set_netdevs(bundle, {"tk": {"name": "eth0"}})
        r = nrt.run(unique_id(), bundle)
        assert r.rc == 1, r
        assert re.search(r"network device tk: a network device named eth0 already exists",
                         r.err), r.err
        assert _snapshot(ns, "tk") == before
        assert target.links() == ["lo", "eth0"]
    finally:
        target.close()


def test_exec_into_container_with_netdevices(nrt: NsRuntime, ns: NetNS, bundle: Bundle) -> None:
    """exec rebuilds a plan from the saved config: the devices, now in the container, are not
    looked for on the host again."""
    ns.add_standalone("de")
    _set_netdevs(bundle, {"de": {"name": "eth0"}})
    bundle.args("sleep", "100")
    bundle.save()
    cid = unique_id()
    r = nrt.detached("run", "-d", "--bundle", str(bundle.path), cid, cid=cid)
    assert r.rc == 0, r
    r = nrt.cmd("exec", cid, "cat", "/sys/class/net/eth0/operstate")
    assert r.rc == 0, r
    assert nrt.delete(cid, force=True).rc == 0
