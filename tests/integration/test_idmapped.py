"""Idmapped bind mounts (runtime-spec 1.2 mounts[].uidMappings/gidMappings, idmap/ridmap), the
cases of runc 1.3's idmap.bats: what the container's `stat` shows through the mount, with and
without a user namespace of its own, and what a write inside leaves on the host's disk."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from harness import Bundle, Runtime, userns_bundle

pytestmark = pytest.mark.integration


def _sources(base: Path) -> dict[str, Path]:
    src = {n: base / f"source-{n}" for n in ("1", "multi1")}
    for p in src.values():
        p.mkdir()
        p.chmod(0o755)
    (src["1"] / "foo.txt").write_text("x")
    for name, (u, g) in {"foo": (100, 211), "bar": (101, 222), "baz": (102, 233)}.items():
        f = src["multi1"] / f"{name}.txt"
        f.write_text(name)
        os.chown(f, u, g)
    return src


def _idmount(bundle: Bundle, src: Path, dest: str, uids: list | None, gids: list | None,
             options: list[str] | None = None) -> None:
    m: dict = {"destination": dest, "type": "bind", "source": str(src),
               "options": options or ["bind"]}
    if uids is not None:
        m["uidMappings"] = uids
    if gids is not None:
        m["gidMappings"] = gids
    bundle.config.setdefault("mounts", []).append(m)


def _m(c: int, h: int, n: int) -> list[dict]:
    return [{"containerID": c, "hostID": h, "size": n}]


def test_idmapped_without_userns_shows_the_host_ids(rt: Runtime, bundle: Bundle,
                                                   short_tmp: Path) -> None:
    src = _sources(short_tmp)
    _idmount(bundle, src["1"], "/tmp/mount-1", _m(0, 100000, 65536), _m(0, 100000, 65536))
    bundle.add_mount("/tmp/bind-mount-1", str(src["1"]), "bind", ["bind"])
    _idmount(bundle, src["multi1"], "/tmp/mount-multi1", _m(100, 1100, 3), _m(200, 1900, 50))
    r = rt.run_sh(bundle, "stat -c %n:%u:%g /tmp/mount-1/foo.txt /tmp/bind-mount-1/foo.txt "
                          "/tmp/mount-multi1/foo.txt /tmp/mount-multi1/baz.txt; "
                          "touch /tmp/mount-1/new 2>&1; echo rc=$?")
    assert r.rc == 0, r
    lines = r.out.splitlines()
    assert lines[:4] == ["/tmp/mount-1/foo.txt:100000:100000", "/tmp/bind-mount-1/foo.txt:0:0",
                         "/tmp/mount-multi1/foo.txt:1100:1911",
                         "/tmp/mount-multi1/baz.txt:1102:1933"], r
    # our root (host 0) is not in the mount's mapping: it cannot create files there
    assert "Value too large" in lines[4] and lines[5] == "rc=1", r


def test_idmapped_in_a_user_namespace_round_trips(rt: Runtime, bundle: Bundle,
                                                  short_tmp: Path) -> None:
    """Container 0 -> host 100000 -> through the mount's 0->100000 back to on-disk 0: root in
    the container sees root's files as its own and what it writes is root's on the disk; a
    plain bind of the same directory shows nobody (overflow ids)."""
    src = _sources(short_tmp)
    bundle = userns_bundle(bundle, short_tmp)
    for d in ("tmp", "tmp/mount-1", "tmp/bind-mount-1", "tmp/mount-multi1"):
        (bundle.rootfs / d).mkdir(exist_ok=True)  # the mapped root cannot mkdir in it
    _idmount(bundle, src["1"], "/tmp/mount-1", _m(0, 100000, 65536), _m(0, 100000, 65536))
    bundle.add_mount("/tmp/bind-mount-1", str(src["1"]), "bind", ["bind"])
    _idmount(bundle, src["multi1"], "/tmp/mount-multi1", None, None, ["bind", "idmap"])
    r = rt.run_sh(bundle, "stat -c %n:%u:%g /tmp/mount-1/foo.txt /tmp/bind-mount-1/foo.txt "
                          "/tmp/mount-multi1/bar.txt; touch /tmp/mount-1/made-inside")
    assert r.rc == 0, r
    overflow = Path("/proc/sys/kernel/overflowuid").read_text().strip()
    assert r.out.splitlines() == ["/tmp/mount-1/foo.txt:0:0",
                                  f"/tmp/bind-mount-1/foo.txt:{overflow}:{overflow}",
                                  "/tmp/mount-multi1/bar.txt:101:222"], r
    st = (src["1"] / "made-inside").stat()
    assert (st.st_uid, st.st_gid) == (0, 0)


@pytest.mark.parametrize("change,why", [
    (lambda b, s: _idmount(b, s, "/x", _m(0, 1, 1), _m(0, 1, 1), ["rw"]) or
     b.config["mounts"][-1].update(type="tmpfs", source="tmpfs"), "must be bind mounts"),
    (lambda b, s: _idmount(b, s, "/x", _m(0, 1, 1), None), "must be given together"),
    (lambda b, s: _idmount(b, s, "/x", None, None, ["bind", "idmap"]), "has none"),
    (lambda b, s: _idmount(b, s, "/x", _m(0, 1, 0), _m(0, 1, 1)), "uidMappings[0].size"),
    (lambda b, s: _idmount(b, s, "/x", None, None, ["bind", "idmap=uids=0-1-1"]),
     "idmap=uids"),
])
def test_bad_idmapped_mounts_are_one_line(rt: Runtime, bundle: Bundle, short_tmp: Path,
                                          change: object, why: str) -> None:
    src = short_tmp / "s"
    src.mkdir()
    change(bundle, src)  # type: ignore[operator]
    r = rt.run_sh(bundle, "true")
    assert r.rc != 0 and why in r.err and len(r.err.strip().splitlines()) == 1, r
    assert not any((rt.root).glob("*/state.json"))


def test_features_report_idmap(rt: Runtime) -> None:
    import json

    r = rt.cmd("features")
    assert json.loads(r.out)["linux"]["mountExtensions"] == {"idmap": {"enabled": True}}
    assert {"idmap", "ridmap"} <= set(json.loads(r.out)["mountOptions"])
