"""rootless.py's decisions, for any euid and environment (the real user runs are in
tests/integration/test_rootless.py)."""

from __future__ import annotations

import pytest

from pyrunc import rootless
from pyrunc.errors import ConfigError, UsageError
from pyrunc.linux import idmap


def _as(monkeypatch: pytest.MonkeyPatch, euid: int, userns: bool = False) -> None:
    monkeypatch.setattr(rootless.os, "geteuid", lambda: euid)
    monkeypatch.setattr(idmap, "running_in_userns", lambda: userns)


@pytest.mark.parametrize(
    ("euid", "userns", "xdg", "user", "want"),
    [
        (1000, False, "/run/user/1000", "u", "/run/user/1000/pyrunc"),
        (1000, False, "", "u", "/run/pyrunc"),  # no XDG_RUNTIME_DIR: the caller gets an error
        (0, False, "/run/user/0", "root", "/run/pyrunc"),  # real root keeps /run/pyrunc
        (0, True, "/run/user/1000", "u", "/run/user/1000/pyrunc"),  # root of a user's userns
        (0, True, "/run/user/0", "root", "/run/pyrunc"),
    ],
)
def test_default_root_as_runc(monkeypatch: pytest.MonkeyPatch, euid: int, userns: bool,
                              xdg: str, user: str, want: str) -> None:
    _as(monkeypatch, euid, userns)
    monkeypatch.setenv("XDG_RUNTIME_DIR", xdg)
    monkeypatch.setenv("USER", user)
    assert rootless.default_root() == want


@pytest.mark.parametrize(
    ("flag", "euid", "userns", "want"),
    [("true", 0, False, True), ("false", 1000, False, False), ("auto", 1000, False, True),
     ("auto", 0, False, False), ("auto", 0, True, True), ("AUTO", 0, False, False)],
)
def test_rootless_cgroups_flag(monkeypatch: pytest.MonkeyPatch, flag: str, euid: int,
                               userns: bool, want: bool) -> None:
    _as(monkeypatch, euid, userns)
    assert rootless.cgroups(flag) is want


def test_rootless_flag_rejects_other_values() -> None:
    with pytest.raises(UsageError, match="--rootless: invalid value 'maybe'"):
        rootless.cgroups("maybe")


def _cfg(**linux: object) -> dict:
    lx: dict = {"namespaces": [{"type": "user"}, {"type": "mount"}],
                "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
                "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]}
    lx.update(linux)
    return {"linux": lx, "process": {"user": {"uid": 0, "gid": 0}}, "mounts": []}


def test_a_rootless_spec_passes() -> None:
    rootless.check(_cfg())


@pytest.mark.parametrize(
    ("edit", "want"),
    [
        (lambda c: c["linux"].update(namespaces=[{"type": "mount"}]),
         "linux.namespaces: rootless container requires user namespaces"),
        (lambda c: c["linux"].update(uidMappings=[]),
         "linux.uidMappings: rootless containers requires at least one UID mapping"),
        (lambda c: c["linux"].update(gidMappings=[]),
         "linux.gidMappings: rootless containers requires at least one GID mapping"),
        (lambda c: c["process"]["user"].update(additionalGids=[5]),
         "process.user.additionalGids: cannot set any additional groups"),
        (lambda c: c["mounts"].append({"destination": "/d", "type": "devpts",
                                       "options": ["gid=5"]}),
         "mounts[0].options: cannot specify gid=5 mount option for rootless container"),
        (lambda c: c["mounts"].append({"destination": "/d", "type": "bind", "source": "/x",
                                       "options": ["bind", "ridmap"]}),
         "mounts[0]: idmapped mounts need root"),
    ],
)
def test_what_a_user_cannot_have(edit: object, want: str) -> None:
    c = _cfg()
    edit(c)  # type: ignore[operator]
    with pytest.raises(ConfigError, match=want.replace("[", r"\[").replace("]", r"\]")):
        rootless.check(c)


def test_mapped_mount_ids_and_a_joined_userns_pass() -> None:
    c = _cfg(gidMappings=[{"containerID": 0, "hostID": 1000, "size": 1},
                          {"containerID": 5, "hostID": 100000, "size": 1}])
    c["mounts"].append({"destination": "/dev/pts", "type": "devpts", "options": ["gid=5"]})
    rootless.check(c)
    rootless.check(_cfg(namespaces=[{"type": "user", "path": "/proc/1/ns/user"}],
                        uidMappings=[], gidMappings=[]))


def test_own_id_only() -> None:
    assert idmap.own_id_only([{"containerID": 0, "hostID": 7, "size": 1}], 7)
    assert idmap.own_id_only([{"containerID": 5, "hostID": 7, "size": 1}], 7)
    assert not idmap.own_id_only([{"containerID": 0, "hostID": 7, "size": 2}], 7)
    assert not idmap.own_id_only([{"containerID": 0, "hostID": 7, "size": 1},
                                  {"containerID": 1, "hostID": 100000, "size": 10}], 7)
