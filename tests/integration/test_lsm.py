"""AppArmor and SELinux: applied where the host runs them, a clear error where it does not."""

from __future__ import annotations

from pathlib import Path

import pytest
from harness import Bundle, Runtime, unique_id

from pyrunc.linux import lsm

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("field", "value", "msg"),
    [
        ("apparmorProfile", "docker-default", "AppArmor is not enabled"),
        ("selinuxLabel", "system_u:system_r:container_t:s0", "selinux is disabled"),
    ],
)
def test_lsm_the_host_lacks_is_a_clear_error(
    rt: Runtime, bundle: Bundle, field: str, value: str, msg: str
) -> None:
    if (field == "apparmorProfile" and lsm.apparmor_enabled()) or (
        field == "selinuxLabel" and lsm.selinux_enabled()
    ):
        pytest.skip(f"this host runs the LSM behind {field}")
    bundle.process[field] = value
    cid = unique_id()
    r = rt.run(cid, bundle)
    assert r.rc == 1
    assert f"process.{field}" in r.err and msg in r.err, r
    assert len(r.err.strip().splitlines()) == 1 and "Traceback" not in r.err
    assert not (rt.root / cid).exists()


def test_exec_apparmor_flag_without_apparmor(rt: Runtime, bundle: Bundle) -> None:
    if lsm.apparmor_enabled():
        pytest.skip("AppArmor runs here")
    cid = unique_id()
    bundle.args("sleep", "1000")
    bundle.save()
    assert rt.detached("run", "-d", "-b", str(bundle.path), cid, cid=cid).rc == 0
    r = rt.cmd("exec", "--apparmor", "docker-default", cid, "true")
    assert r.rc != 0 and "AppArmor is not enabled" in r.err, r


def test_apparmor_profile_applied(rt: Runtime, bundle: Bundle) -> None:
    if not lsm.apparmor_enabled():
        pytest.skip("AppArmor is not enabled on this host (no /sys/kernel/security/apparmor)")
    bundle.process["apparmorProfile"] = "unconfined"
    r = rt.run_sh(bundle, "cat /proc/self/attr/current")
    assert r.rc == 0 and "unconfined" in r.out, r


def test_selinux_label_applied(rt: Runtime, bundle: Bundle) -> None:
    if not lsm.selinux_enabled():
        pytest.skip("SELinux is not enabled on this host (no /sys/fs/selinux)")
    label = "system_u:system_r:container_t:s0"
    bundle.process["selinuxLabel"] = label
    r = rt.run_sh(bundle, "cat /proc/self/attr/current")
    assert r.rc == 0 and label in r.out, r


def test_lsm_attr_write_cannot_be_redirected_by_a_mount(
    rt: Runtime, bundle: Bundle, tmp_path: Path
) -> None:
    """CVE-2025-52881 class: a config mount over /proc/self/attr/<lsm>/exec would catch a
    write made through the container's /proc (the profile silently not applied, and a host
    file written). The runtime writes through an fd opened on its own /proc beforehand."""
    if lsm.apparmor_enabled():
        field, value, kind = "apparmorProfile", "unconfined", "apparmor"
    elif lsm.selinux_enabled():
        field, value, kind = "selinuxLabel", "system_u:system_r:container_t:s0", "selinux"
    else:
        pytest.skip(
            "neither AppArmor nor SELinux runs here: the attribute cannot be written at all "
            "(the fd-based write is unit-tested in tests/unit/test_lsm_labels.py)"
        )
    trap = tmp_path / "trap"
    trap.write_text("")
    bundle.process[field] = value
    bundle.add_mount(f"/proc/self/attr/{kind}/exec", str(trap), "bind", ["bind"])
    r = rt.run_sh(bundle, "cat /proc/self/attr/current")
    assert trap.read_text() == "", r
    assert r.rc == 0 and value.split()[-1] in r.out, r
