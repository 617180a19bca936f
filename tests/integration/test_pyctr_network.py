"""pyctr's networks: CNI (Debian's containernetworking-plugins) driven per the spec.

Every scenario runs in a network namespace (and a mount namespace with its own /run) that the
test makes with unshare: the bridge, the veths, the iptables rules and the traffic all live
there, never on the host's interfaces or firewall. What is asserted is what the containers
see from inside, and what is left in that namespace after they go.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import test_pyctr
from test_pyctr import Pyctr

pytestmark = pytest.mark.integration
ctr = test_pyctr.ctr  # (the fixture)

CNI_DIR = "/usr/lib/cni"


def _need() -> None:
    for tool in ("iptables", "ip", "unshare"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} is not installed")
    if not os.access(os.path.join(CNI_DIR, "bridge"), os.X_OK):
        pytest.skip("the CNI plugins are not installed (containernetworking-plugins)")


def _scenario(ctr: Pyctr, tmp_path: Path, body: str, timeout: float = 180) -> dict[str, str]:
    """Run body (bash, $P = our pyctr) in a new network and mount namespace with its own
    /run and lo up; returns its output by `== name` section."""
    _need()
    conf = tmp_path / "cni"
    p = (f"{ctr.bin} --root {ctr.root} --state {ctr.state} --cni-conf-dir {conf} "
         f"--cni-path {CNI_DIR}")
    out = tmp_path / "out"
    script = tmp_path / "scenario.sh"
    script.write_text(f"set -u\nexec >{out} 2>&1\nP='{p}'\nR={ctr.root}\nS={ctr.state}\n"
                      f"mount -t tmpfs tmpfs /run\nip link set lo up\n{body}\n")
    r = subprocess.run(["unshare", "--net", "--mount", "--propagation", "private", "bash",
                        str(script)], capture_output=True, text=True, timeout=timeout)
    text = out.read_text()
    assert r.returncode == 0, (r, text)
    sec = {"": text}
    for block in text.split("== ")[1:]:
        name, _, rest = block.partition("\n")
        sec[name.strip()] = rest
    return sec


LEFT = """
echo "== links"; ip -o link show | awk -F': ' '{print $2}' | cut -d@ -f1
echo "== rules"; iptables-save | grep -e '^-A' | grep -v -e CNI-HOSTPORT -e 'CNI-ADMIN' \\
    -e '-j CNI-FORWARD' || true
echo "== leases"; ls $R/cni/networks/* 2>/dev/null | \\
    grep -v -e lock -e last_reserved -e ':$' -e '^$' || true
echo "== cache"; ls $R/cni/results 2>/dev/null || true
echo "== pins"; find $S/netns $S/net -mindepth 2 2>/dev/null || true
"""


def test_bridge_by_address_and_name_published_port_and_nothing_left(ctr: Pyctr,
                                                                   tmp_path: Path) -> None:
    """Two containers on the default bridge (made on first use) reach each other by address
    and by name; a published port answers from the test's namespace; --net container:ID
    shares; after they go no veth, rule, lease, cached result or pin is left."""
    body = """
$P run -d --net bridge -p 8080:80 busybox:local web sh -c \\
    'mkdir -p /www && echo hello-from-web > /www/index.html && exec httpd -f -p 80 -h /www'
sleep 0.5
ADDR="ip -4 -o addr show eth0 | awk '{print \\$4}'"
echo "== web-ip"; $P tasks exec --exec-id ip1 web sh -c "$ADDR"
echo "== by-name"; $P run --rm --net bridge busybox:local cl sh -c \\
    'for i in $(seq 40); do wget -qO- http://web/ 2>/dev/null && break; sleep 0.25; done
     ping -c1 -W2 web >/dev/null && echo ping-ok; cat /etc/hosts'
echo "== published"; python3 -c \\
    'import urllib.request as u; print(u.urlopen("http://10.4.0.1:8080/").read().decode(), end="")'
echo "== shared"; $P run --rm --net container:web busybox:local sh1 sh -c \\
    "$ADDR; wget -qO- http://127.0.0.1/"
echo "== default-route"; $P run --rm --net bridge busybox:local r1 ip route
echo "== network-ls"; $P network ls --format json
echo "== delete"; $P tasks delete -f web; $P containers rm web
""" + LEFT
    sec = _scenario(ctr, tmp_path, body)
    web_ip = sec["web-ip"].strip()
    assert web_ip.startswith("10.4.0.") and web_ip.endswith("/24"), sec[""]
    lines = sec["by-name"].splitlines()
    assert lines[:2] == ["hello-from-web", "ping-ok"], sec[""]
    assert f"{web_ip.split('/')[0]}\tweb" in lines, sec[""]  # the other container, by name
    assert sec["published"].strip() == "hello-from-web", sec[""]
    assert sec["shared"].splitlines() == [web_ip, "hello-from-web"], sec[""]
    assert "default via 10.4.0.1 dev eth0" in sec["default-route"], sec[""]
    nets = json.loads(sec["network-ls"])
    assert [(n["name"], n["subnet"]) for n in nets] == [("bridge", "10.4.0.0/24")], sec[""]
    assert "web exit status 137" in sec["delete"], sec[""]
    assert sec["links"].split() == ["lo", "pyctr0"], sec[""]  # no veth; the bridge stays
    assert sec["rules"].strip() == "", sec[""]  # no rule of any container
    assert sec["leases"].strip() == "" and sec["cache"].strip() == "", sec[""]
    assert sec["pins"].strip() == "", sec[""]


def test_none_host_dns_hostname_add_host(ctr: Pyctr, tmp_path: Path) -> None:
    body = """
ip link add hostveth0 type veth peer name hostveth1
echo "== none"; $P run --rm busybox:local n1 ls /sys/class/net
echo "== host"; $P run --rm --net host busybox:local h1 ls /sys/class/net
echo "== etc"; $P run --rm --dns 192.0.2.53 --hostname box1 --add-host db:192.0.2.7 \\
    busybox:local e1 sh -c 'cat /etc/resolv.conf; hostname; cat /etc/hostname; grep db /etc/hosts'
"""
    sec = _scenario(ctr, tmp_path, body)
    assert sec["none"].split() == ["lo"], sec[""]
    assert {"hostveth0", "hostveth1"} <= set(sec["host"].split()), sec[""]
    assert sec["etc"].splitlines() == ["nameserver 192.0.2.53", "box1", "box1",
                                       "192.0.2.7\tdb"], sec[""]


def test_networks_create_ls_inspect_rm_and_a_users_own_conflist(ctr: Pyctr, tmp_path: Path
                                                               ) -> None:
    """network create (subnet chosen or given), inspect shows who is attached, rm refuses a
    network in use and one pyctr did not make; a hand-written conflist (ptp) works by name."""
    conf = tmp_path / "cni"
    conf.mkdir()
    (conf / "10-mine.conflist").write_text(json.dumps({
        "cniVersion": "1.0.0", "name": "mine", "plugins": [
            {"type": "ptp", "ipam": {"type": "host-local", "subnet": "192.0.2.0/28",
                                     "dataDir": str(tmp_path / "ipam-mine")}}]}))
    body = """
echo "== create"; $P network create red; $P network create --subnet 10.77.0.0/24 blue
echo "== ls"; $P network ls -q
echo "== overlap"; $P network create --subnet 10.77.0.128/25 green; echo "rc=$?"
$P run -d --net blue busybox:local b1 sleep 30; sleep 0.3
echo "== check"; $P network check b1
echo "== inspect"; $P network inspect blue
echo "== rm-in-use"; $P network rm blue; echo "rc=$?"
echo "== rm-theirs"; $P network rm mine; echo "rc=$?"
echo "== mine"; $P run --rm --net mine busybox:local m1 sh -c \\
    "ip -4 -o addr show eth0 | awk '{print \\$4}'"
$P tasks delete -f b1 >/dev/null; $P containers rm b1 >/dev/null
echo "== rm"; $P network rm blue red; $P network ls -q
"""
    sec = _scenario(ctr, tmp_path, body)
    assert sec["create"].split() == ["red", "blue"], sec[""]
    assert sec["ls"].split() == ["blue", "mine", "red"], sec[""]
    assert "overlaps" in sec["overlap"] and "rc=1" in sec["overlap"], sec[""]
    assert sec["check"].strip() == "blue: ok", sec[""]  # CNI CHECK through every plugin
    info = json.loads(sec["inspect"])
    assert info["plugins"][0]["ipam"]["ranges"][0][0]["subnet"] == "10.77.0.0/24"
    assert list(info["containers"]) == ["b1"], info
    assert info["containers"]["b1"][0].startswith("10.77.0."), info
    assert "in use by default/b1" in sec["rm-in-use"] and "rc=1" in sec["rm-in-use"], sec[""]
    assert "not made by pyctr" in sec["rm-theirs"] and "rc=1" in sec["rm-theirs"], sec[""]
    assert sec["mine"].strip().startswith("192.0.2."), sec[""]
    assert sec["rm"].split() == ["blue", "red", "mine"], sec[""]


def test_bad_network_input_is_one_line_and_leaves_nothing(ctr: Pyctr, tmp_path: Path) -> None:
    body = """
for args in "--net nosuch" "-p 80" "-p 8080:80" "--net bridge -p 8080:99999" \\
            "--net bridge -p 8080:80/sctp" "--dns not-an-ip" "--add-host nocolon" \\
            "--add-host db:x" "--hostname -bad-" "--net container:ghost"; do
  echo "== $args"; $P run --rm $args busybox:local bad true; echo "rc=$?"
done
echo "== records"; $P containers ls -q
""" + LEFT
    sec = _scenario(ctr, tmp_path, body)
    want = {"--net nosuch": "no such network", "-p 80": "HOSTPORT:CONTAINERPORT",
            "-p 8080:80": "needs a CNI network", "--net bridge -p 8080:99999": "not a port",
            "--net bridge -p 8080:80/sctp": "tcp or udp", "--dns not-an-ip": "not an IP",
            "--add-host nocolon": "NAME:IP", "--add-host db:x": "not an IP",
            "--hostname -bad-": "--hostname", "--net container:ghost": "container ghost"}
    for args, why in want.items():
        out = sec[args].splitlines()
        assert len(out) == 2 and why in out[0] and out[1] == "rc=1", (args, sec[""])
    assert sec["records"].strip() == "", sec[""]
    assert sec["links"].split() in (["lo"], ["lo", "pyctr0"]), sec[""]
    assert sec["cache"].strip() == "" and sec["pins"].strip() == "", sec[""]


def test_gc_cleans_what_a_killed_pyctr_left(ctr: Pyctr, tmp_path: Path) -> None:
    """pyctr killed (SIGKILL) while its foreground container runs on a bridge, then that
    container killed too: the pinned namespace, the veth, the lease and the cached result
    stay until `gc`, which takes them all (and pyrunc's stale state), by the CNI cache."""
    body = """
$P run --net bridge busybox:local orphan sleep 60 & pp=$!
st="$S/runc/default/orphan/state.json"
for i in $(seq 50); do [ -f "$st" ] && break; sleep 0.1; done
sleep 0.3
cpid=$(sed -e 's/.*"pid": *\\([0-9]*\\).*/\\1/' "$st")
kill -9 $pp; wait $pp 2>/dev/null; kill -9 $cpid
sleep 0.3
echo "== before"; ip -o link show | grep -c veth; ls $R/cni/results
echo "== gc"; $P gc
echo "== again"; $P run --rm --net bridge busybox:local orphan true; echo "rc=$?"
$P containers rm orphan >/dev/null 2>&1
""" + LEFT
    sec = _scenario(ctr, tmp_path, body)
    before = sec["before"].split()
    assert before[0] == "1" and before[1].startswith("bridge-orphan-"), sec[""]
    assert "1 orphaned networks" in sec["gc"], sec[""]
    assert sec["again"].strip().endswith("rc=0") or "already exists" in sec["again"], sec[""]
    assert sec["links"].split() == ["lo", "pyctr0"], sec[""]
    assert sec["rules"].strip() == "" and sec["leases"].strip() == "", sec[""]
    assert sec["cache"].strip() == "" and sec["pins"].strip() == "", sec[""]
