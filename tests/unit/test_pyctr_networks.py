"""pyctr's network option parsing and CNI config handling (the logic; the integration tests
run the real plugins in namespaces of their own)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pyctr.cni import load_dir
from pyctr.errors import PyctrError
from pyctr.networks import Net, create, parse_add_host, parse_port, resolv_conf


def test_parse_port() -> None:
    assert parse_port("8080:80") == {"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}
    assert parse_port("127.0.0.1:53:53/udp") == {"hostPort": 53, "containerPort": 53,
                                                 "protocol": "udp", "hostIP": "127.0.0.1"}
    for bad, why in [("80", "HOSTPORT:CONTAINERPORT"), ("0:80", "not a port"),
                     ("1:65536", "not a port"), ("1:2/sctp", "tcp or udp"),
                     ("x:1:2", "not an IP"), ("a:b", "not a port")]:
        with pytest.raises(PyctrError, match=why):
            parse_port(bad)


def test_add_host_and_net_options() -> None:
    assert parse_add_host("db:192.0.2.1") == ("db", "192.0.2.1")
    with pytest.raises(PyctrError, match="NAME:IP"):
        parse_add_host(":1.2.3.4")
    with pytest.raises(PyctrError, match="needs a CNI network"):
        Net("none", ["1:2"])
    with pytest.raises(PyctrError, match="not an IP"):
        Net("bridge", dns=["nameserver"])
    n = Net("mynet", ["8080:80"], ["192.0.2.53"], ["db:192.0.2.1"])
    assert n.cni == ["mynet"] and Net("container:x").cni == [] and Net("host").cni == []
    back = Net.from_json(n.to_json())
    assert (back.mode, back.ports, back.dns, back.add_hosts) == \
        ("mynet", n.ports, ["192.0.2.53"], [("db", "192.0.2.1")])


def test_resolv_conf() -> None:
    assert resolv_conf(["192.0.2.53", "2001:db8::1"]) == \
        "nameserver 192.0.2.53\nnameserver 2001:db8::1\n"
    text = resolv_conf([])
    assert "nameserver 127." not in text and "nameserver" in text


def test_create_picks_free_subnets_and_load_dir_reads_user_configs(tmp_path: Path) -> None:
    conf = tmp_path / "net.d"
    conf.mkdir()
    # a user's single-plugin .conf on 10.4.0.0/24: pyctr's first network must avoid it
    (conf / "05-user.conf").write_text(json.dumps({
        "cniVersion": "0.4.0", "name": "user", "type": "bridge",
        "ipam": {"type": "host-local", "subnet": "10.4.0.0/24"}}))
    (conf / "06-broken.conflist").write_text("{not json")
    a = create(str(conf), str(tmp_path / "ipam"), "a")
    b = create(str(conf), str(tmp_path / "ipam"), "b", bridge="brb")
    assert a["plugins"][0]["ipam"]["ranges"][0][0] == {"subnet": "10.4.1.0/24",
                                                       "gateway": "10.4.1.1"}
    assert b["plugins"][0]["ipam"]["ranges"][0][0]["subnet"] == "10.4.2.0/24"
    assert b["plugins"][0]["bridge"] == "brb"
    assert [p["type"] for p in a["plugins"]] == ["bridge", "portmap", "firewall", "tuning"]
    nets = load_dir(str(conf))
    assert sorted(nets) == ["a", "b", "user"]
    assert nets["user"]["plugins"][0]["type"] == "bridge"  # wrapped into a list
    for kw, why in [({"name": "a"}, "already exists"), ({"name": "c", "subnet": "10.4.1.0/25"},
                                                        "overlaps"),
                    ({"name": "c", "subnet": "10.9.0.0/24", "gateway": "10.8.0.1"}, "not in"),
                    ({"name": "bad/name"}, "use letters")]:
        with pytest.raises(PyctrError, match=why):
            create(str(conf), str(tmp_path / "ipam"), **kw)  # type: ignore[arg-type]
