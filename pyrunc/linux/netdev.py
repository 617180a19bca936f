"""linux.netDevices (runtime-spec 1.2): host network devices moved into the container's netns.

runc 1.3's devChangeNetNamespace, through pyroute2. For each device, in the runtime's network
namespace: note its permanent global addresses (before the link goes down, which would drop
its IPv6 ones), set it down, and move it with one RTM_NEWLINK (ifindex, IFLA_IFNAME = the name
in the container, IFLA_NET_NS_FD). The kernel keeps the MTU and the hardware address but drops
every address, so in the container's namespace the addresses are added again and the link is
set up (the spec says up, whatever its state on the host). Only addresses with IFA_F_PERMANENT
and RT_SCOPE_UNIVERSE travel (the spec's rule): no link-local or host-scope ones, nothing that
DHCP or SLAAC handed out.

The runtime leaves them there: the spec says a runtime MUST NOT move a device out of the
namespace before it is deleted. When the namespace goes (its last process exits, or the last
bind of it is removed), the kernel moves physical devices back to the initial namespace and
destroys virtual ones (veth, dummy, ...).

A create that fails after a device moved puts it back, under its old name, with its addresses
and its old up/down state: `Moved` holds the container's namespace open (an fd), so the devices
outlive the init that `create` kills on its way out.

Imported only for a config that has netDevices: pyroute2 costs ~200-270 ms to import, more
than a whole `run` of a plain container, and the pure checks (`check`) do not load it.
"""

from __future__ import annotations

import os

from pyrunc import log
from pyrunc.errors import ConfigError, RuntimeErr
from pyrunc.linux import sys as S

IFNAMSIZ = 16  # with the NUL: names are at most 15 bytes
IFF_UP = 0x1
IFA_F_PERMANENT = 0x80
RT_SCOPE_UNIVERSE = 0
# address flags a user may set and that mean the same in another namespace (nodad,
# homeaddress, mngtmpaddr, noprefixroute, autojoin); the rest is state the kernel keeps
IFA_USER_FLAGS = 0x02 | 0x10 | 0x100 | 0x200 | 0x400


# ---- plan-time checks (no netlink) ---------------------------------------------------------


def valid_name(name: str) -> bool:
    """The kernel's dev_valid_name: not empty, under IFNAMSIZ bytes, not "." or "..", and no
    '/', ':' or whitespace."""
    if not name or len(name.encode()) >= IFNAMSIZ or name in (".", ".."):
        return False
    return not any(c in "/:" or c in " \t\n\v\f\r" for c in name)


def _where(host: str, field: str = "") -> str:
    from pyrunc.validate import format_path

    path: list[str | int] = ["linux", "netDevices", host]
    return "config.json: " + format_path([*path, field] if field else path)


def check(devices: dict, namespaces: list[dict]) -> None:
    """What runc's validator refuses, and what would only fail halfway through a create:
    no network namespace, a bad name, two devices that would have one name in the container,
    a host device that does not exist. One line naming the JSON path; nothing exists yet."""
    from pyrunc.fastjson import dumps

    net = [ns for ns in namespaces if ns.get("type") == "network"]
    if not net:
        raise ConfigError(
            "config.json: linux.netDevices: unable to move network devices without a NET "
            'namespace (linux.namespaces has no "network" entry)'
        )
    path = net[0].get("path")
    if path and _same_netns(path):
        raise ConfigError(
            f"config.json: linux.netDevices: unable to move network devices: the network "
            f"namespace {path} is the runtime's own"
        )
    import socket

    seen: dict[str, str] = {}
    for host, dev in devices.items():
        if not valid_name(host):
            raise ConfigError(f"{_where(host)}: invalid network device name {dumps(host)}")
        name = (dev or {}).get("name")
        if name is not None and not valid_name(name):
            raise ConfigError(f"{_where(host, 'name')}: invalid network device name {dumps(name)}")
        inside = name or host
        # "eth%d" is a template: the kernel picks a free number for each device
        if "%" not in inside:
            if inside in seen:
                other = _where(seen[inside]).removeprefix("config.json: ")
                raise ConfigError(
                    f"{_where(host)}: {dumps(inside)} is also the name of {other} in the "
                    "container"
                )
            seen[inside] = host
        try:
            socket.if_nametoindex(host)
        except OSError:
            raise ConfigError(
                f"{_where(host)}: no network device {dumps(host)} in the runtime's network "
                "namespace"
            ) from None


def _same_netns(path: str) -> bool:
    try:
        a, b = os.stat(path), os.stat("/proc/self/ns/net")
    except OSError:
        return False  # (open_for_join reports a bad path in its own words)
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


# ---- moving (pyroute2) ---------------------------------------------------------------------


def _ipr(ns_fd: int | None = None):  # noqa: ANN202
    """An IPRoute on a netlink socket made in ns_fd's namespace (ours if None). We step in
    and out with setns ourselves: pyroute2's netns= forks a helper per socket, and creates
    the namespace file if it is missing. A netlink socket stays in the namespace it was
    made in. groups=0: no multicast subscription, no events queued behind our requests."""
    import socket

    from pyroute2 import IPRoute

    if ns_fd is None:
        return IPRoute(groups=0)
    own = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        S.setns(ns_fd, S.CLONE_NEWNET)
        try:
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, socket.NETLINK_ROUTE)
        finally:
            S.setns(own, S.CLONE_NEWNET)
    finally:
        os.close(own)
    return IPRoute(use_socket=sock, groups=0)


def _strerror(e: BaseException) -> str:
    code = getattr(e, "code", None)
    if isinstance(code, int) and code > 0:
        return os.strerror(code)
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    return str(e)


def _addresses(ipr, index: int) -> list[dict]:  # noqa: ANN001
    """The device's addresses worth moving, as arguments for IPRoute.addr("add")."""
    out = []
    for msg in ipr.addr("dump"):
        if msg["index"] != index or msg["scope"] != RT_SCOPE_UNIVERSE:
            continue
        at = dict(msg["attrs"])
        flags = at.get("IFA_FLAGS", msg["flags"])
        if not flags & IFA_F_PERMANENT or "IFA_ADDRESS" not in at:
            continue
        a = {"family": msg["family"], "prefixlen": msg["prefixlen"], "address": at["IFA_ADDRESS"]}
        if "IFA_LOCAL" in at:
            a["local"] = at["IFA_LOCAL"]  # differs from IFA_ADDRESS on a point-to-point link
        if "IFA_BROADCAST" in at:
            a["broadcast"] = at["IFA_BROADCAST"]
        if flags & IFA_USER_FLAGS:
            a["flags"] = flags & IFA_USER_FLAGS
        out.append(a)
    return out


class Device:
    """One moved device: its name on the host, its name in the container, and what it was."""

    __slots__ = ("host", "name", "was_up", "addrs")

    def __init__(self, host: str, name: str, was_up: bool, addrs: list[dict]) -> None:
        self.host = host
        self.name = name
        self.was_up = was_up
        self.addrs = addrs


class Moved:
    """Moves devices into the netns of process `pid`, and back out when a create fails.

    Holds the container's namespace (and ours) open until `close`, so that a failed create can
    still reach devices in it after the init is killed."""

    def __init__(self, pid: int) -> None:
        self.devices: list[Device] = []
        self.ours = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            self.theirs = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        except OSError as e:
            os.close(self.ours)
            raise RuntimeErr(f"the container's network namespace: {e.strerror}") from None
        self._host = self._ctr = None

    def _sockets(self) -> tuple:
        if self._host is None:
            self._host = _ipr()
            self._ctr = _ipr(self.theirs)
        return self._host, self._ctr

    def move_in(self, devices: dict) -> None:
        """All of `devices` ({host name: {"name": in-container name}}), in order; on a failure,
        the ones already moved go back and RuntimeErr says which device and why."""
        host, ctr = self._sockets()
        try:
            for name, dev in devices.items():
                new = (dev or {}).get("name") or name
                log.debug(f"moving network device {name} into the container as {new}")
                self._move_one(host, ctr, name, new)
        except BaseException:
            self.undo()
            raise

    def _move_one(self, host, ctr, name: str, new: str) -> None:  # noqa: ANN001
        from pyroute2.netlink.exceptions import NetlinkError

        where = f"network device {name}"
        try:
            found = host.link_lookup(ifname=name)
            if not found:
                raise RuntimeErr(f"{where}: not found in the runtime's network namespace")
            index = found[0]
            was_up = bool(host.link("get", index=index)[0]["flags"] & IFF_UP)
            addrs = _addresses(host, index)  # before "down", which drops the IPv6 ones
            template = "%" in new
            if not template and ctr.link_lookup(ifname=new):
                raise RuntimeErr(
                    f"{where}: a network device named {new} already exists in the container's "
                    "network namespace"
                )
            before = {m["index"] for m in ctr.link("dump")} if template else set()
        except NetlinkError as e:
            raise RuntimeErr(f"{where}: {_strerror(e)}") from None
        try:
            if was_up:
                host.link("set", index=index, state="down")
            host.link("set", index=index, ifname=new, net_ns_fd=self.theirs)
        except NetlinkError as e:
            # The move and the rename are one request, but the kernel renames after moving: a
            # rename that fails leaves the device in the container under its old name.
            if not _has(host, index) and ctr.link_lookup(ifname=name):
                self.devices.append(Device(name, name, was_up, addrs))
            elif was_up:
                _quietly(lambda: host.link("set", index=index, state="up"))
            raise RuntimeErr(
                f"{where}: moving it into the container's network namespace: {_strerror(e)}"
            ) from None
        if template:
            fresh = [m for m in ctr.link("dump") if m["index"] not in before]
            new = fresh[0].get_attr("IFLA_IFNAME") if fresh else new
        self.devices.append(Device(name, new, was_up, addrs))
        try:
            _configure(ctr, new, addrs, up=True)
        except (NetlinkError, RuntimeErr) as e:
            raise RuntimeErr(
                f"{where}: setting it up in the container's network namespace as {new}: "
                f"{_strerror(e)}"
            ) from None

    def undo(self) -> None:
        """Move every device moved so far back to the runtime's namespace, newest first, under
        its old name, with the addresses and the up/down state it had."""
        if not self.devices:
            return
        host, ctr = self._sockets()
        while self.devices:
            d = self.devices.pop()
            log.debug(f"moving network device {d.name} back to the host as {d.host}")
            try:
                found = ctr.link_lookup(ifname=d.name)
                if not found:
                    raise RuntimeErr("not in the container's network namespace any more")
                ctr.link("set", index=found[0], state="down")
                ctr.link("set", index=found[0], ifname=d.host, net_ns_fd=self.ours)
                _configure(host, d.host, d.addrs, up=d.was_up)
            except Exception as e:  # noqa: BLE001 -- the rest must still go back
                log.warn(f"network device {d.host}: moving it back from the container: "
                         f"{_strerror(e)}")

    def close(self) -> None:
        for ipr in (self._host, self._ctr):
            if ipr is not None:
                _quietly(ipr.close)
        self._host = self._ctr = None
        for fd in (self.ours, self.theirs):
            os.close(fd)
        self.ours = self.theirs = -1


def _configure(ipr, name: str, addrs: list[dict], up: bool) -> None:  # noqa: ANN001
    """Give the device `name` (just moved into ipr's namespace) its addresses back; set it up."""
    from pyroute2.netlink.exceptions import NetlinkError

    found = ipr.link_lookup(ifname=name)
    if not found:
        raise RuntimeErr(f"no device {name} after the move")
    index = found[0]
    for a in addrs:
        try:
            ipr.addr("add", index=index, **a)
        except NetlinkError as e:
            if e.code != 17:  # EEXIST: the kernel made it again itself
                raise
    if up:
        ipr.link("set", index=index, state="up")


def _has(ipr, index: int) -> bool:  # noqa: ANN001
    from pyroute2.netlink.exceptions import NetlinkError

    try:
        ipr.link("get", index=index)
    except NetlinkError:
        return False
    return True


def _quietly(fn) -> None:  # noqa: ANN001
    try:
        fn()
    except Exception:  # noqa: BLE001
        pass
