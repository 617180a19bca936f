"""pyrunc.linux.netdev's plan-time checks (no netlink, no pyroute2) and the features entry."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pyrunc.errors import ConfigError
from pyrunc.linux import netdev

NEW_NETNS = [{"type": "pid"}, {"type": "network"}]


@pytest.mark.parametrize(
    "name", ["eth0", "ctr_dummy0", "x" * 15, "net%d", "a-b.c", "é" * 7, "@", ".a", "..."]
)
def test_valid_names(name: str) -> None:
    assert netdev.valid_name(name)


@pytest.mark.parametrize(
    "name",
    ["", ".", "..", "x" * 16, "é" * 8, "a/b", "a:b", "a b", "a\tb", "a\nb", "a\vb", "a\fb",
     "a\rb", " "],
)
def test_invalid_names(name: str) -> None:
    """The kernel's dev_valid_name: IFNAMSIZ counts bytes (and the NUL)."""
    assert not netdev.valid_name(name)


def _msg(devices: dict, nss: list[dict] = NEW_NETNS) -> str:
    with pytest.raises(ConfigError) as info:
        netdev.check(devices, nss)
    msg = str(info.value)
    assert "\n" not in msg
    return msg


def test_lo_exists_everywhere() -> None:
    netdev.check({"lo": {"name": "lo0"}}, NEW_NETNS)
    netdev.check({"lo": None}, NEW_NETNS)  # null: as Go reads it, no rename
    netdev.check({"lo": {"name": None}}, NEW_NETNS)
    netdev.check({"lo": {}}, [{"type": "network", "path": "/nonexistent"}])


def test_missing_host_device() -> None:
    assert _msg({"pyrunc-nope0": {}}) == (
        'config.json: linux.netDevices["pyrunc-nope0"]: no network device "pyrunc-nope0" in '
        "the runtime's network namespace"
    )


def test_no_network_namespace() -> None:
    msg = _msg({"lo": {}}, [{"type": "pid"}])
    assert msg.startswith(
        "config.json: linux.netDevices: unable to move network devices without a NET namespace"
    )


def test_own_network_namespace_by_path() -> None:
    msg = _msg({"lo": {}}, [{"type": "network", "path": "/proc/self/ns/net"}])
    assert "/proc/self/ns/net is the runtime's own" in msg


def test_bad_names_name_the_field() -> None:
    assert _msg({"lo": {"name": "a/b"}}) == (
        'config.json: linux.netDevices.lo.name: invalid network device name "a/b"'
    )
    assert _msg({"a:b": {}}) == (
        'config.json: linux.netDevices["a:b"]: invalid network device name "a:b"'
    )


def test_duplicate_names_in_the_container() -> None:
    assert _msg({"lo": {"name": "eth0"}, "eth1": {"name": "eth0"}}) == (
        'config.json: linux.netDevices.eth1: "eth0" is also the name of linux.netDevices.lo '
        "in the container"
    )
    # a device that keeps its name collides with another's new name too
    assert "is also the name of" in _msg({"lo": {}, "x": {"name": "lo"}})


def test_templates_may_repeat() -> None:
    """"net%d" twice: the kernel numbers them (the spec's template rule)."""
    netdev.check({"lo": {"name": "net%d"}}, NEW_NETNS)
    msg = _msg({"lo": {"name": "net%d"}, "pyrunc-nope0": {"name": "net%d"}})
    assert "no network device" in msg  # got past the duplicate check


def test_check_does_not_import_pyroute2() -> None:
    code = ("import sys; from pyrunc.linux import netdev; "
            "netdev.check({'lo': {'name': 'x'}}, [{'type': 'network'}]); "
            "print('pyroute2' in sys.modules)")
    out = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "False"


def test_features_lists_netdevices() -> None:
    from pyrunc.features import features

    assert features()["linux"]["netDevices"] == {"enabled": True}
