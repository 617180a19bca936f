"""linux/intelrdt.py on a fake resctrl tree in a tmpdir (this host has no resctrl): the groups
and MON groups it makes and removes, what it writes to schemata and tasks, and the one-line
errors that leave nothing behind."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from pyrunc.errors import ConfigError, RuntimeErr
from pyrunc.linux import intelrdt

CID = "ctr1"


def fake_resctrl(tmp: Path, l3: bool = True, mb: bool = True, mon: bool = True) -> Path:
    """What the kernel shows at the root of a mounted resctrl (the parts pyrunc reads)."""
    r = tmp / "resctrl"
    (r / "info").mkdir(parents=True)
    files = {"info/last_cmd_status": "ok\n", "tasks": "1\n2\n",
             "schemata": "L3:0=7ff;1=7ff\nMB:0=100;1=100\n"}
    if l3:
        files |= {"info/L3/cbm_mask": "7ff\n", "info/L3/min_cbm_bits": "1\n",
                  "info/L3/num_closids": "16\n"}
    if mb:
        files |= {"info/MB/bandwidth_gran": "10\n", "info/MB/delay_linear": "1\n",
                  "info/MB/min_bandwidth": "10\n", "info/MB/num_closids": "8\n"}
    if mon:
        files |= {"info/L3_MON/mon_features": "llc_occupancy\nmbm_total_bytes\nmbm_local_bytes\n",
                  "info/L3_MON/num_rmids": "224\n"}
    for name, text in files.items():
        (r / name).parent.mkdir(parents=True, exist_ok=True)
        (r / name).write_text(text)
    (r / "mon_groups").mkdir()
    return r


def made_group(root: Path, name: str, schemata: str) -> Path:
    """A group the administrator made beforehand (the kernel fills it in on mkdir)."""
    g = root / name
    (g / "mon_groups").mkdir(parents=True)
    (g / "schemata").write_text(schemata)
    (g / "tasks").write_text("")
    return g


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def refused(rdt: dict, root: Path, field: str, cid: str = CID) -> str:
    before = tree(root)
    with pytest.raises(ConfigError) as info:
        intelrdt.setup(rdt, cid, str(root))
    msg = str(info.value)
    assert msg.startswith(f"linux.intelRdt{field}: "), msg
    assert "\n" not in msg
    assert tree(root) == before, "nothing may be left behind"
    return msg


# --- finding resctrl ---------------------------------------------------------------------


def test_find_root_in_mountinfo(tmp_path: Path) -> None:
    mi = tmp_path / "mountinfo"
    mi.write_text(
        "22 1 0:21 / /sys rw,nosuid - sysfs sysfs rw\n"
        "40 22 0:35 / /sys/fs/my\\040resctrl rw,relatime shared:9 - resctrl resctrl rw,mba_MBps\n"
    )
    assert intelrdt.find_root(str(mi)) == "/sys/fs/my resctrl"
    mi.write_text("22 1 0:21 / /sys rw,nosuid - sysfs sysfs rw\n")
    assert intelrdt.find_root(str(mi)) is None
    assert intelrdt.find_root(str(tmp_path / "none")) is None


def test_no_resctrl_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """What Plan calls for create and exec: the spec's error where resctrl is not mounted."""
    monkeypatch.setattr(intelrdt, "find_root", lambda mountinfo="": None)
    for args in ((), ({"closID": "x"}, CID)):
        with pytest.raises(ConfigError) as info:
            intelrdt.check(*args)
        assert str(info.value) == (
            "linux.intelRdt: intelRdt is specified in config, but Intel RDT is not supported "
            "or enabled (no resctrl filesystem is mounted)"
        )


def test_this_host_has_no_resctrl() -> None:
    """(so the integration tests that need one skip here)"""
    with open("/proc/filesystems") as f:
        if "resctrl" in f.read():
            pytest.skip("this host has resctrl")
    assert not intelrdt.resctrl_mounted()


# --- refusals ------------------------------------------------------------------------------


@pytest.mark.parametrize("clos", [".", "..", "a/b", "/a", "a/", "info", "mon_groups", "mon_data"])
def test_bad_closid(tmp_path: Path, clos: str) -> None:
    root = fake_resctrl(tmp_path)
    assert "invalid CLOS name" in refused({"closID": clos}, root, ".closID")


def test_container_id_that_names_resctrl_files(tmp_path: Path) -> None:
    root = fake_resctrl(tmp_path)
    assert "set closID" in refused({}, root, "", cid="info")
    intelrdt.remove(intelrdt.setup({"closID": "g", "l3CacheSchema": "L3:0=f"}, "info", str(root)))


@pytest.mark.parametrize(
    "rdt, field, why",
    [
        ({"l3CacheSchema": "L3:0=f\nMB:0=10"}, ".l3CacheSchema", "must be one line"),
        ({"memBwSchema": "MB:0=10\n"}, ".memBwSchema", "must be one line"),
        ({"schemata": ["L2:0=f", "L3:0=f\nL3:1=f"]}, ".schemata[1]", "must be one line"),
        ({"memBwSchema": "L3:0=f"}, ".memBwSchema", "must start with MB:"),
    ],
)
def test_bad_schemas(tmp_path: Path, rdt: dict, field: str, why: str) -> None:
    assert why in refused(rdt, fake_resctrl(tmp_path), field)


@pytest.mark.parametrize(
    "rdt, field, missing",
    [
        ({"l3CacheSchema": "L3:0=f"}, ".l3CacheSchema", "info/L3"),
        ({"memBwSchema": "MB:0=20"}, ".memBwSchema", "info/MB"),
        ({"enableMonitoring": True}, ".enableMonitoring", "info/L3_MON"),
    ],
)
def test_features_the_host_lacks(tmp_path: Path, rdt: dict, field: str, missing: str) -> None:
    """runc's checks: CAT for l3CacheSchema, MBA for memBwSchema; and monitoring."""
    root = fake_resctrl(tmp_path, l3=False, mb=False, mon=False)
    msg = refused(rdt, root, field)
    assert f"is not enabled on this host (no {root}/{missing})" in msg


def test_named_group_without_schema_must_exist(tmp_path: Path) -> None:
    root = fake_resctrl(tmp_path)
    assert "must be made beforehand" in refused({"closID": "gold"}, root, ".closID")


def test_named_group_that_exists_must_match(tmp_path: Path) -> None:
    """runtime-spec 1.3: compared with the schemas, an error if they differ; never rewritten."""
    root = fake_resctrl(tmp_path)
    g = made_group(root, "gold", "    L3:0=00f0;1=7ff\n    MB:0=050;1=100\n")
    before = (g / "schemata").read_text()
    msg = refused({"closID": "gold", "l3CacheSchema": "L3:0=f"}, root, "")
    assert "exists with other schemata (L3:0=f0, the config wants L3:0=f)" in msg
    msg = refused({"closID": "gold", "schemata": ["L2:0=3"]}, root, "")
    assert "(L2:0=(none), the config wants L2:0=3)" in msg
    # leading zeros, case, a subset of the domains, a later line overriding an earlier one
    rdt = {"closID": "gold", "l3CacheSchema": "L3:0=0F0", "memBwSchema": "MB:1=100",
           "schemata": ["MB:0=20", "MB:0=50"]}
    group = intelrdt.setup(rdt, CID, str(root))
    assert (g / "schemata").read_text() == before
    intelrdt.remove(group)
    assert g.is_dir()


# --- groups made, joined and removed -----------------------------------------------------


def test_group_of_the_container(tmp_path: Path) -> None:
    """No closID: the container's id names the group, made and then removed at delete; the
    schemata written in the spec's order in one write: l3CacheSchema, memBwSchema, schemata."""
    root = fake_resctrl(tmp_path)
    rdt = {"l3CacheSchema": "L3:0=f0;1=f", "memBwSchema": "MB:0=20;1=70",
           "schemata": ["L2:0=ff00", "L3:0=c0"]}
    group = intelrdt.setup(rdt, CID, str(root))
    g = root / CID
    assert group == {"root": str(root), "path": str(g), "made": True, "keep": False, "mon": ""}
    assert (g / "schemata").read_text() == "L3:0=f0;1=f\nMB:0=20;1=70\nL2:0=ff00\nL3:0=c0\n"
    intelrdt.join(group, 4242)
    assert (g / "tasks").read_text() == "4242"
    intelrdt.remove(group)
    assert not g.exists()
    assert (root / "tasks").read_text() == "1\n2\n"


def test_no_schema_no_schemata_write(tmp_path: Path) -> None:
    root = fake_resctrl(tmp_path)
    group = intelrdt.setup({}, CID, str(root))
    assert os.listdir(group["path"]) == []
    intelrdt.remove(group)
    assert not (root / CID).exists()


def test_named_group_made_is_kept_at_delete(tmp_path: Path) -> None:
    """closID with a schema and no such group: made and written; at delete it stays (the
    spec: a named group is not removed), but a create that fails takes it away again."""
    root = fake_resctrl(tmp_path)
    rdt = {"closID": "silver", "memBwSchema": "MB:0=30"}
    group = intelrdt.setup(rdt, CID, str(root))
    assert group["made"] and group["keep"]
    assert (root / "silver" / "schemata").read_text() == "MB:0=30\n"
    intelrdt.remove(group)
    assert (root / "silver").is_dir()
    # the next container of that group: it exists and matches, so it is only joined
    group2 = intelrdt.setup(rdt, "ctr2", str(root))
    assert not group2["made"]
    intelrdt.remove(group2, failed=True)
    assert (root / "silver").is_dir()
    (root / "silver" / "schemata").unlink()
    os.rmdir(root / "silver")
    group3 = intelrdt.setup(rdt, "ctr3", str(root))
    intelrdt.remove(group3, failed=True)
    assert not (root / "silver").exists()


def test_pre_existing_group_joined_never_removed(tmp_path: Path) -> None:
    root = fake_resctrl(tmp_path)
    g = made_group(root, "bronze", "L3:0=3\n")
    group = intelrdt.setup({"closID": "bronze"}, CID, str(root))
    assert group == {"root": str(root), "path": str(g), "made": False, "keep": True, "mon": ""}
    intelrdt.join(group, 77)
    assert (g / "tasks").read_text() == "77"
    intelrdt.remove(group)
    assert (g / "schemata").read_text() == "L3:0=3\n"


def test_leftover_group_of_the_id_is_written_not_removed(tmp_path: Path) -> None:
    """No closID and a directory of the container's name already there (not ours to remove,
    runtime-spec 1.3; runc 1.3 removed it)."""
    root = fake_resctrl(tmp_path)
    g = made_group(root, CID, "L3:0=7ff\n")
    group = intelrdt.setup({"l3CacheSchema": "L3:0=1"}, CID, str(root))
    assert not group["made"]
    assert (g / "schemata").read_text() == "L3:0=1\n"
    intelrdt.remove(group)
    assert g.is_dir()


def test_root_clos(tmp_path: Path) -> None:
    """closID "/": the default CLOS, the filesystem's root (runtime-spec 1.3)."""
    root = fake_resctrl(tmp_path)
    group = intelrdt.setup({"closID": "/"}, CID, str(root))
    assert group["path"] == str(root) and not group["made"]
    intelrdt.join(group, 99)
    assert (root / "tasks").read_text() == "99"
    intelrdt.remove(group)
    assert root.is_dir()
    # with a schema it is compared, not written: the root's schemata is the whole host's
    refused({"closID": "/", "memBwSchema": "MB:0=10"}, root, "")
    intelrdt.remove(intelrdt.setup({"closID": "/", "memBwSchema": "MB:0=100"}, CID, str(root)))
    assert (root / "schemata").read_text() == "L3:0=7ff;1=7ff\nMB:0=100;1=100\n"


@pytest.mark.parametrize("clos", ["", "gold", "/"])
def test_monitoring_group(tmp_path: Path, clos: str) -> None:
    """enableMonitoring: mon_groups/<container id> in the CLOS, the pid in both tasks files,
    the MON group removed at delete whoever made the CLOS."""
    root = fake_resctrl(tmp_path)
    if clos == "gold":
        made_group(root, "gold", "L3:0=f\n")
    group = intelrdt.setup({"closID": clos, "enableMonitoring": True}, CID, str(root))
    clos_dir = root / (clos.strip("/") or CID) if clos != "/" else root
    mon = clos_dir / "mon_groups" / CID
    assert group["mon"] == str(mon) and mon.is_dir()
    intelrdt.join(group, 314)
    assert (clos_dir / "tasks").read_text() == "314"
    assert (mon / "tasks").read_text() == "314"
    intelrdt.remove(group)
    assert not mon.exists()
    assert clos_dir.is_dir() == bool(clos)


# --- failures ------------------------------------------------------------------------------


def test_failed_setup_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = fake_resctrl(tmp_path)
    (root / "info" / "last_cmd_status").write_text("Unknown or unsupported resource\n")
    before = tree(root)
    real = os.write

    def write(fd: int, data: bytes) -> int:
        if data.startswith(b"L9"):
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
        return real(fd, data)

    monkeypatch.setattr(os, "write", write)
    with pytest.raises(RuntimeErr) as info:
        intelrdt.setup({"schemata": ["L9:0=1"], "enableMonitoring": True}, CID, str(root))
    assert str(info.value) == (
        f"linux.intelRdt: writing 'L9:0=1' to {root}/{CID}/schemata: Invalid argument "
        "(last_cmd_status: Unknown or unsupported resource)"
    )
    assert tree(root) == before


def test_monitoring_group_that_cannot_be_made(tmp_path: Path) -> None:
    """(mon_groups a file here; on a real host, ENOSPC when no RMID is left)"""
    root = fake_resctrl(tmp_path)
    g = made_group(root, "gold", "")
    os.rmdir(g / "mon_groups")
    (g / "mon_groups").write_text("")
    before = tree(root)
    with pytest.raises(RuntimeErr) as info:
        intelrdt.setup({"closID": "gold", "enableMonitoring": True}, CID, str(root))
    assert str(info.value).startswith(f"linux.intelRdt.enableMonitoring: making {g}/mon_groups")
    assert tree(root) == before


def test_join_a_process_that_is_gone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An exec'd process may have exited before it is joined: not an error there."""
    root = fake_resctrl(tmp_path)
    group = intelrdt.setup({}, CID, str(root))

    def write(fd: int, data: bytes) -> int:
        raise OSError(errno.ESRCH, os.strerror(errno.ESRCH))

    monkeypatch.setattr(os, "write", write)
    intelrdt.join(group, 5, gone_ok=True)
    with pytest.raises(RuntimeErr, match="No such process"):
        intelrdt.join(group, 5)


def test_remove_warns_and_goes_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                  capfd: pytest.CaptureFixture) -> None:
    """delete goes on when a group will not go (as for cgroups): a warning per directory."""
    root = fake_resctrl(tmp_path)
    group = intelrdt.setup({"enableMonitoring": True}, CID, str(root))

    def rmdir(path: str) -> None:
        raise OSError(errno.EBUSY, os.strerror(errno.EBUSY), path)

    monkeypatch.setattr(os, "rmdir", rmdir)
    intelrdt.remove(None)
    intelrdt.remove(group)
    err = capfd.readouterr().err
    assert f"linux.intelRdt: removing {root}/{CID}/mon_groups/{CID}: Device or resource busy" in err
    assert f"linux.intelRdt: removing {root}/{CID}: Device or resource busy" in err


# --- events --stats ------------------------------------------------------------------------


def test_stats(tmp_path: Path) -> None:
    root = fake_resctrl(tmp_path)
    group = intelrdt.setup(
        {"l3CacheSchema": "L3:0=f;1=f", "memBwSchema": "MB:0=20;1=30", "enableMonitoring": True},
        CID, str(root),
    )
    for node, vals in (("mon_L3_00", (100, 10, 4096)), ("mon_L3_01", (200, 20, 8192))):
        d = Path(group["mon"]) / "mon_data" / node
        d.mkdir(parents=True)
        for name, v in zip(("mbm_total_bytes", "mbm_local_bytes", "llc_occupancy"), vals,
                           strict=True):
            (d / name).write_text(f"{v}\n")
    assert intelrdt.stats(group) == {
        "l3_cache_info": {"cbm_mask": "7ff", "min_cbm_bits": 1, "num_closids": 16},
        "l3_cache_schema_root": "L3:0=7ff;1=7ff",
        "l3_cache_schema": "L3:0=f;1=f",
        "mem_bw_info": {"bandwidth_gran": 10, "delay_linear": 1, "min_bandwidth": 10,
                        "num_closids": 8},
        "mem_bw_schema_root": "MB:0=100;1=100",
        "mem_bw_schema": "MB:0=20;1=30",
        "mbm_stats": [{"mbm_total_bytes": 100, "mbm_local_bytes": 10},
                      {"mbm_total_bytes": 200, "mbm_local_bytes": 20}],
        "cmt_stats": [{"llc_occupancy": 4096}, {"llc_occupancy": 8192}],
    }
    intelrdt.remove(group)


# --- update --l3-cache-schema / --mem-bw-schema ---------------------------------------------


def test_update_makes_and_joins_a_group_for_a_container_that_had_none(tmp_path: Path) -> None:
    root = fake_resctrl(tmp_path)
    g = intelrdt.update(None, {"l3CacheSchema": "L3:0=f", "memBwSchema": ""}, CID, 4242,
                        str(root))
    assert (root / CID / "schemata").read_text() == "L3:0=f\n"
    assert (root / CID / "tasks").read_text() == "4242"
    assert g["made"] and g["path"] == str(root / CID)


def test_update_writes_the_given_schemas_even_into_a_named_group(tmp_path: Path) -> None:
    """runc's update overwrites; create only compares a named group that exists."""
    root = fake_resctrl(tmp_path)
    made_group(root, "gold", "L3:0=7ff\n")
    g = intelrdt.setup({"closID": "gold"}, CID, str(root))
    intelrdt.update(g, {"closID": "gold", "l3CacheSchema": "L3:0=f", "memBwSchema": "MB:0=50"},
                    CID, 1, str(root))
    assert (root / "gold" / "schemata").read_text() == "L3:0=f\nMB:0=50\n"


def test_update_refuses_a_bad_schema_in_one_line(tmp_path: Path) -> None:
    root = fake_resctrl(tmp_path, mb=False)
    g = intelrdt.setup({}, CID, str(root))
    with pytest.raises(ConfigError, match=r"^linux.intelRdt.memBwSchema: must start with MB:"):
        intelrdt.update(g, {"memBwSchema": "0=50"}, CID, 1, str(root))
    with pytest.raises(ConfigError, match=r"^linux.intelRdt.memBwSchema: Intel RDT/MBA"):
        intelrdt.update(g, {"memBwSchema": "MB:0=50"}, CID, 1, str(root))
