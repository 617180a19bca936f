"""AppArmor and SELinux: applied where the host runs them, a clear error where it does not."""

from __future__ import annotations

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
