"""CNI, per the spec (github.com/containernetworking/cni SPEC.md), as libcni drives it.

A network is a conflist (`*.conflist`, or a single plugin's `*.conf`/`*.json`) in a config
directory, so a user's existing configs work. ADD runs the plugins in order, each given the
network's name and cniVersion, the previous plugin's result (prevResult) and, for each
capability it declares, the runtime's value (runtimeConfig: portMappings, ...); the last
result is the network's result and is cached on disk (<cache>/results/<net>-<id>-<ifname>),
so DEL, which runs the plugins in reverse with that result as prevResult, works after pyctr
has exited or crashed. A plugin's error (exit status != 0, JSON {code, msg, details} on
stdout) is one line naming the network and the plugin.
"""

from __future__ import annotations

import json
import os
import subprocess

from pyctr.errors import PyctrError

CNI_PATH = "/usr/lib/cni:/opt/cni/bin"
CONF_DIR = "/etc/cni/net.d"
IFNAME = "eth0"


def load_dir(conf_dir: str) -> dict[str, dict]:
    """name -> conflist, from every *.conflist, *.conf and *.json in conf_dir (first file in
    name order wins a name, as libcni's lexical order)."""
    out: dict[str, dict] = {}
    try:
        files = sorted(os.listdir(conf_dir))
    except FileNotFoundError:
        return out
    for fn in files:
        if not fn.endswith((".conflist", ".conf", ".json")):
            continue
        path = os.path.join(conf_dir, fn)
        try:
            with open(path) as f:
                doc = json.load(f)
        except (OSError, ValueError):
            continue  # (libcni skips what it cannot read as well)
        if not isinstance(doc, dict) or not doc.get("name"):
            continue
        if "plugins" not in doc:  # a single plugin's conf
            doc = {"cniVersion": doc.get("cniVersion", "0.4.0"), "name": doc["name"],
                   "plugins": [doc]}
        doc["_file"] = path
        out.setdefault(doc["name"], doc)
    return out


class CNI:
    def __init__(self, conf_dir: str, cni_path: str, cache_dir: str) -> None:
        self.conf_dir = conf_dir
        self.path = [p for p in cni_path.split(":") if p]
        self.cache = os.path.join(cache_dir, "results")

    def network(self, name: str) -> dict:
        nets = load_dir(self.conf_dir)
        if name not in nets:
            raise PyctrError(f"network {name}: not found in {self.conf_dir} (pyctr network "
                             "ls)")
        return nets[name]

    def _binary(self, kind: str, net: str) -> str:
        for d in self.path:
            p = os.path.join(d, kind)
            if os.access(p, os.X_OK):
                return p
        raise PyctrError(f"network {net}: CNI plugin {kind!r} not found in "
                         f"{':'.join(self.path)} (Debian: containernetworking-plugins)")

    def _exec(self, net: dict, plugin: dict, command: str, cid: str, netns: str,
              ifname: str, prev: dict | None, runtime: dict) -> dict | None:
        conf = {k: v for k, v in plugin.items()}
        conf["name"], conf["cniVersion"] = net["name"], net.get("cniVersion", "0.4.0")
        if prev is not None:
            conf["prevResult"] = prev
        caps = {k: runtime[k] for k, on in (plugin.get("capabilities") or {}).items()
                if on and k in runtime}
        if caps:
            conf["runtimeConfig"] = caps
        env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
               "CNI_COMMAND": command, "CNI_CONTAINERID": cid, "CNI_NETNS": netns,
               "CNI_IFNAME": ifname, "CNI_PATH": ":".join(self.path)}
        p = subprocess.run([self._binary(plugin["type"], net["name"])],
                           input=json.dumps(conf).encode(), capture_output=True, env=env,
                           timeout=120)
        if p.returncode != 0:
            msg = p.stderr.decode(errors="replace").strip()
            try:
                err = json.loads(p.stdout)
                msg = err.get("msg", "") + (f": {err['details']}" if err.get("details") else "")
            except ValueError:
                pass
            raise PyctrError(f"network {net['name']}: CNI {command} ({plugin['type']}): "
                             f"{msg or 'exit status ' + str(p.returncode)}")
        if command != "ADD":
            return None
        try:
            return json.loads(p.stdout)
        except ValueError:
            raise PyctrError(f"network {net['name']}: CNI ADD ({plugin['type']}): not a JSON "
                             "result") from None

    def _cache_path(self, net: str, cid: str, ifname: str) -> str:
        return os.path.join(self.cache, f"{net}-{cid}-{ifname}")

    def add(self, name: str, cid: str, netns: str, ifname: str = IFNAME,
            runtime: dict | None = None) -> dict:
        """Attach netns to network name; returns (and caches) the result. A failure part-way
        runs DEL for what was added and raises."""
        net = self.network(name)
        raw = {k: v for k, v in net.items() if k != "_file"}
        result: dict | None = None
        self._write_cache(name, cid, ifname, raw, netns, None)
        try:
            for plugin in net["plugins"]:
                result = self._exec(net, plugin, "ADD", cid, netns, ifname, result,
                                    runtime or {})
        except BaseException:
            self.delete(name, cid, netns, ifname, runtime, quiet=True)
            raise
        self._write_cache(name, cid, ifname, raw, netns, result, runtime)
        return result or {}

    def _write_cache(self, name: str, cid: str, ifname: str, conf: dict, netns: str,
                     result: dict | None, runtime: dict | None = None) -> None:
        os.makedirs(self.cache, 0o700, exist_ok=True)
        path = self._cache_path(name, cid, ifname)
        with open(path + ".tmp", "w") as f:
            json.dump({"kind": "cniCacheV1", "containerId": cid, "networkName": name,
                       "ifName": ifname, "netns": netns, "config": conf, "result": result,
                       "runtimeConfig": runtime or {}}, f)
        os.replace(path + ".tmp", path)

    def cached(self, name: str, cid: str, ifname: str = IFNAME) -> dict | None:
        try:
            with open(self._cache_path(name, cid, ifname)) as f:
                return json.load(f)
        except (FileNotFoundError, ValueError):
            return None

    def delete(self, name: str, cid: str, netns: str, ifname: str = IFNAME,
               runtime: dict | None = None, quiet: bool = False) -> None:
        """Detach: DEL through every plugin in reverse, with the cached config and result
        (the network's file may have changed or gone since ADD), then drop the cache."""
        c = self.cached(name, cid, ifname)
        net = c["config"] if c else self.network(name)
        prev = c.get("result") if c else None
        runtime = runtime or (c.get("runtimeConfig") if c else None) or {}
        errors = []
        for plugin in reversed(net["plugins"]):
            try:
                self._exec(net, plugin, "DEL", cid, netns, ifname, prev, runtime)
            except PyctrError as e:
                errors.append(str(e))
        try:
            os.unlink(self._cache_path(name, cid, ifname))
        except FileNotFoundError:
            pass
        if errors and not quiet:
            raise PyctrError(errors[0])

    def check(self, name: str, cid: str, netns: str, ifname: str = IFNAME) -> None:
        """CHECK (spec 0.4.0+): every plugin confirms the attachment is as its cached result
        says; raises the first plugin's complaint."""
        c = self.cached(name, cid, ifname)
        if c is None or not c.get("result"):
            raise PyctrError(f"network {name}: container {cid} is not attached")
        net = c["config"]
        for plugin in net["plugins"]:
            self._exec(net, plugin, "CHECK", cid, netns, ifname, c["result"],
                       c.get("runtimeConfig") or {})

    def validate(self, net: dict) -> None:
        """Every plugin of net exists and supports its cniVersion (VERSION), as libcni's
        ValidateNetworkList: checked when pyctr makes a network."""
        want = net.get("cniVersion", "0.4.0")
        for plugin in net["plugins"]:
            p = subprocess.run([self._binary(plugin["type"], net["name"])],
                               input=json.dumps({"cniVersion": want}).encode(),
                               capture_output=True, env={"CNI_COMMAND": "VERSION"}, timeout=30)
            try:
                versions = json.loads(p.stdout).get("supportedVersions") or []
            except ValueError:
                versions = []
            if want not in versions:
                raise PyctrError(f"network {net['name']}: CNI plugin {plugin['type']} does "
                                 f"not support cniVersion {want} ({', '.join(versions)})")

    def attachments(self) -> list[dict]:
        """Every cached attachment (network, container, ifname, netns, result)."""
        out = []
        try:
            names = os.listdir(self.cache)
        except FileNotFoundError:
            return out
        for fn in names:
            if fn.endswith(".tmp"):
                continue
            try:
                with open(os.path.join(self.cache, fn)) as f:
                    out.append(json.load(f))
            except (OSError, ValueError):
                continue
        return out


def addresses(result: dict) -> list[str]:
    """The IP addresses (no prefix length) a CNI result gives the container."""
    return [ip["address"].split("/")[0] for ip in result.get("ips") or [] if ip.get("address")]
