"""Networks for pyctr's containers: `network create|ls|inspect|rm`, and a task's network set up
before the runtime starts it and torn down when the task goes.

Modes (`run --net`, as nerdctl's): `none` (the runtime's new namespace: lo only; the default,
as ctr's: a container gets no network unless asked), `host` (no network namespace),
`container:ID` (the namespace of another container's task, its /etc files too), or a CNI
network's name (`bridge` is made on first use: bridge pyctr0, 10.4.0.0/24, NAT out, published
ports). For a CNI network pyctr pins a new namespace (netns.py), runs each network's plugins
(cni.py) and hands the namespace to the runtime by path; the container's /etc/hosts,
/etc/hostname and /etc/resolv.conf are files of ours bind-mounted in, and every container on a
network is named in the hosts files of the others (rewritten in place: the bind holds the
inode), so they reach each other by name.

Where things live: pins in <state>/netns/<ns>/<id>, the /etc files in <state>/net/<ns>/<id>/,
CNI results in <root>/cni/results (kept across pyctr restarts, for DEL), host-local leases in
<root>/cni/networks for the networks pyctr makes. `teardown` is idempotent, and `gc` runs it
for every pin whose container has no task any more (a pyctr that died).
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os

from pyctr import netns
from pyctr.cni import CNI, addresses, load_dir
from pyctr.errors import PyctrError

DEFAULT = "bridge"
OURS = "pyctr-"  # our conflists' file prefix (network rm removes only those)


class Net:
    """A container's network options, kept (as JSON) with its record."""

    def __init__(self, mode: str = "none", ports: list[str] | None = None,
                 dns: list[str] | None = None, add_hosts: list[str] | None = None) -> None:
        self.mode = mode or "none"
        self.ports = [parse_port(p) for p in ports or []]
        self.dns = list(dns or [])
        for d in self.dns:
            _ip(d, f"--dns {d!r}")
        self.add_hosts = [parse_add_host(h) for h in add_hosts or []]
        if self.ports and not self.cni:
            raise PyctrError(f"-p: publishing needs a CNI network (--net bridge), not "
                             f"--net {self.mode}")

    @property
    def cni(self) -> list[str]:
        return [] if self.mode in ("none", "host") or self.mode.startswith("container:") \
            else [self.mode]

    def to_json(self) -> str:
        return json.dumps({"mode": self.mode, "ports": self.ports, "dns": self.dns,
                           "add_hosts": self.add_hosts})

    @classmethod
    def from_json(cls, text: str | None) -> Net:
        n = cls()
        if text:
            d = json.loads(text)
            n.mode, n.ports, n.dns = d["mode"], d["ports"], d["dns"]
            n.add_hosts = [tuple(h) for h in d["add_hosts"]]  # type: ignore[misc]
        return n


def _ip(text: str, what: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise PyctrError(f"{what}: not an IP address") from None


def parse_port(text: str) -> dict:
    """-p [HOSTIP:]HOSTPORT:CTRPORT[/tcp|udp] -> a CNI portMappings entry."""
    spec, _, proto = text.partition("/")
    proto = proto or "tcp"
    if proto not in ("tcp", "udp"):
        raise PyctrError(f"-p {text!r}: protocol must be tcp or udp")
    parts = spec.rsplit(":", 2)
    if len(parts) == 2:
        host_ip, (hp, cp) = "", parts
    elif len(parts) == 3:
        host_ip, hp, cp = parts[0], parts[1], parts[2]
        host_ip = _ip(host_ip, f"-p {text!r}")
    else:
        raise PyctrError(f"-p {text!r}: HOSTPORT:CONTAINERPORT[/tcp|udp]")
    for p in (hp, cp):
        if not p.isdigit() or not 0 < int(p) < 65536:
            raise PyctrError(f"-p {text!r}: {p!r} is not a port (1-65535)")
    m = {"hostPort": int(hp), "containerPort": int(cp), "protocol": proto}
    if host_ip:
        m["hostIP"] = host_ip
    return m


def parse_add_host(text: str) -> tuple[str, str]:
    name, sep, ip = text.partition(":")
    if not sep or not name:
        raise PyctrError(f"--add-host {text!r}: NAME:IP")
    return name, _ip(ip, f"--add-host {text!r}")


# -- networks --


def conflist(name: str, bridge: str, subnet: str, gateway: str, data_dir: str) -> dict:
    """The chain pyctr makes a network of, as nerdctl's: bridge + host-local, portmap,
    firewall, tuning."""
    return {"cniVersion": "1.0.0", "name": name, "pyctr": True, "plugins": [
        {"type": "bridge", "bridge": bridge, "isGateway": True, "ipMasq": True,
         "hairpinMode": True,
         "ipam": {"type": "host-local", "ranges": [[{"subnet": subnet, "gateway": gateway}]],
                  "routes": [{"dst": "0.0.0.0/0"}], "dataDir": data_dir}},
        {"type": "portmap", "capabilities": {"portMappings": True}},
        {"type": "firewall"},
        {"type": "tuning"}]}


def _subnets(nets: dict[str, dict]) -> list[ipaddress.IPv4Network]:
    out = []
    for net in nets.values():
        for p in net.get("plugins") or []:
            for rng in ((p.get("ipam") or {}).get("ranges") or []):
                for r in rng:
                    try:
                        out.append(ipaddress.ip_network(r.get("subnet", ""), strict=False))
                    except ValueError:
                        pass
            s = (p.get("ipam") or {}).get("subnet")
            if s:
                try:
                    out.append(ipaddress.ip_network(s, strict=False))
                except ValueError:
                    pass
    return out


def create(conf_dir: str, data_dir: str, name: str, subnet: str = "", gateway: str = "",
           bridge: str = "", validate: object = None) -> dict:
    import re

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", name):
        raise PyctrError(f"network {name!r}: use letters, digits, '_', '.', '-'")
    nets = load_dir(conf_dir)
    if name in nets:
        raise PyctrError(f"network {name}: already exists ({nets[name]['_file']})")
    used = _subnets(nets)
    if subnet:
        try:
            net = ipaddress.ip_network(subnet, strict=False)
        except ValueError:
            raise PyctrError(f"--subnet {subnet!r}: not a CIDR subnet") from None
        if any(net.overlaps(u) for u in used):
            raise PyctrError(f"--subnet {subnet}: overlaps another network's")
    else:
        net = next((n for n in (ipaddress.ip_network(f"10.4.{i}.0/24") for i in range(256))
                    if not any(n.overlaps(u) for u in used)), None)
        if net is None:
            raise PyctrError("network: no free 10.4.x.0/24 subnet left (give --subnet)")
    gw = _ip(gateway, f"--gateway {gateway!r}") if gateway else str(next(net.hosts()))
    if ipaddress.ip_address(gw) not in net:
        raise PyctrError(f"--gateway {gw}: not in {net}")
    br = bridge or ("pyctr0" if name == DEFAULT else
                    "br-" + hashlib.sha256(name.encode()).hexdigest()[:12])
    doc = conflist(name, br, str(net), gw, data_dir)
    if validate is not None:
        validate(doc)  # type: ignore[operator]
    os.makedirs(conf_dir, 0o755, exist_ok=True)
    path = os.path.join(conf_dir, f"{OURS}{name}.conflist")
    with open(path + ".tmp", "w") as f:
        json.dump(doc, f, indent=1)
    os.replace(path + ".tmp", path)
    doc["_file"] = path
    return doc


def remove(conf_dir: str, name: str, in_use: list[str]) -> None:
    nets = load_dir(conf_dir)
    if name not in nets:
        raise PyctrError(f"network {name}: not found")
    if not nets[name].get("pyctr"):
        raise PyctrError(f"network {name}: not made by pyctr ({nets[name]['_file']}): "
                         "remove the file yourself")
    if in_use:
        raise PyctrError(f"network {name}: in use by {', '.join(sorted(in_use))}")
    os.unlink(nets[name]["_file"])


def summary(net: dict) -> dict:
    subnets = [str(s) for s in _subnets({net["name"]: net})]
    return {"name": net["name"], "subnet": ",".join(subnets),
            "plugins": ",".join(p.get("type", "?") for p in net.get("plugins") or []),
            "file": net["_file"]}


# -- a task's network --


class Setup:
    """Where a container's network things are, and the steps."""

    def __init__(self, cni: CNI, state: str, ns: str, cid: str) -> None:
        self.cni, self.state, self.ns, self.cid = cni, state, ns, cid
        self.pin = os.path.join(state, "netns", ns, cid)
        self.etc = os.path.join(state, "net", ns, cid)

    def up(self, net: Net, hostname: str, spec: dict, peer: Setup | None = None,
           peer_pid: int = 0) -> None:
        """Before the runtime starts the task: the namespace, the CNI networks, the /etc
        files, and spec pointed at them. Undone entirely if any step fails."""
        try:
            self._up(net, hostname, spec, peer, peer_pid)
        except BaseException:
            self.down(net)
            raise

    def _up(self, net: Net, hostname: str, spec: dict, peer: Setup | None,
            peer_pid: int) -> None:
        nss = spec["linux"]["namespaces"]
        if net.mode == "host":
            spec["linux"]["namespaces"] = [n for n in nss if n["type"] != "network"]
            return
        ips: list[str] = []
        if net.mode.startswith("container:"):
            path = peer.pin if peer and netns.pinned(peer.pin) else f"/proc/{peer_pid}/ns/net"
            _set_netns(nss, path)
            if peer is not None and os.path.exists(os.path.join(peer.etc, "hosts")):
                self._mount_etc(spec, peer.etc)
            return
        if net.cni:
            netns.create(self.pin)
            _set_netns(nss, self.pin)
            runtime = {"portMappings": net.ports} if net.ports else {}
            for name in net.cni:
                ips += addresses(self.cni.add(name, self.cid, self.pin, runtime=runtime))
        os.makedirs(self.etc, 0o700, exist_ok=True)
        self._write(hostname, ips, net)
        self._mount_etc(spec, self.etc)
        self.refresh_peers(net)

    def _write(self, hostname: str, ips: list[str], net: Net) -> None:
        with open(os.path.join(self.etc, "hostname"), "w") as f:
            f.write(hostname + "\n")
        with open(os.path.join(self.etc, "resolv.conf"), "w") as f:
            f.write(resolv_conf(net.dns))
        self._hosts(hostname, ips, net)

    def _hosts(self, hostname: str, ips: list[str], net: Net) -> None:
        lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
        names = hostname if hostname == self.cid else f"{hostname} {self.cid}"
        lines += [f"{ip}\t{names}" for ip in ips] or [f"127.0.1.1\t{names}"]
        for other, oip in self.peers(net):
            lines.append(f"{oip}\t{other}")
        lines += [f"{ip}\t{name}" for name, ip in net.add_hosts]
        path = os.path.join(self.etc, "hosts")
        # in place (O_TRUNC, not a rename): a running container's bind holds this inode
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        with os.fdopen(fd, "w") as f:
            f.write("\n".join(lines) + "\n")
        with open(os.path.join(self.etc, "ips"), "w") as f:
            json.dump({"hostname": hostname, "ips": ips, "net": net.to_json()}, f)

    def peers(self, net: Net) -> list[tuple[str, str]]:
        """(container id, address) of every other container of this namespace attached to
        one of net's CNI networks."""
        out = []
        for a in self.cni.attachments():
            cid = a["containerId"]
            if a["networkName"] in net.cni and cid != self.cid and a.get("result") and \
                    os.path.isdir(os.path.join(self.state, "net", self.ns, cid)):
                out += [(cid, ip) for ip in addresses(a["result"])]
        return sorted(out)

    def refresh_peers(self, net: Net) -> None:
        """Rewrite the hosts file of every peer, so each names the others (this one too, or
        no longer, after down)."""
        for cid in sorted({c for c, _ in self.peers(net)}):
            other = Setup(self.cni, self.state, self.ns, cid)
            try:
                with open(os.path.join(other.etc, "ips")) as f:
                    info = json.load(f)
            except (FileNotFoundError, ValueError):
                continue
            other._hosts(info["hostname"], info["ips"], Net.from_json(info["net"]))

    @staticmethod
    def _mount_etc(spec: dict, etc: str) -> None:
        for name in ("hosts", "hostname", "resolv.conf"):
            spec["mounts"] = [m for m in spec["mounts"] if m["destination"] != f"/etc/{name}"]
            spec["mounts"].append({"destination": f"/etc/{name}", "type": "bind",
                                   "source": os.path.join(etc, name),
                                   "options": ["rbind", "rprivate"]})

    def down(self, net: Net | None = None) -> None:
        """Detach from every network this container was attached to (from the cache: what
        was really done, whatever net says now), unpin, remove the files. Idempotent."""
        first_error: PyctrError | None = None
        for a in self.cni.attachments():
            if a["containerId"] != self.cid:
                continue
            try:
                self.cni.delete(a["networkName"], self.cid, self.pin if netns.pinned(self.pin)
                                else "", a["ifName"])
            except PyctrError as e:
                first_error = first_error or e
        if os.path.exists(self.pin):
            netns.remove(self.pin)
        import shutil

        shutil.rmtree(self.etc, ignore_errors=True)
        if net is not None and net.cni:
            self.refresh_peers(net)
        if first_error is not None:
            raise first_error


def _set_netns(nss: list[dict], path: str) -> None:
    for n in nss:
        if n["type"] == "network":
            n["path"] = path
            return
    nss.append({"type": "network", "path": path})


def resolv_conf(dns: list[str]) -> str:
    """--dns servers, else the host's minus loopback ones (unreachable from a namespace of
    its own), else Google's, as docker does."""
    lines: list[str] = []
    if dns:
        lines = [f"nameserver {d}" for d in dns]
    else:
        try:
            with open("/etc/resolv.conf") as f:
                for line in f:
                    parts = line.split()
                    if parts[:1] == ["nameserver"] and len(parts) > 1 and (
                            parts[1].startswith("127.") or parts[1] == "::1"):
                        continue
                    if parts[:1] in (["nameserver"], ["search"], ["options"]):
                        lines.append(line.strip())
        except OSError:
            pass
        if not any(x.startswith("nameserver") for x in lines):
            lines += ["nameserver 8.8.8.8", "nameserver 8.8.4.4"]
    return "\n".join(lines) + "\n"
