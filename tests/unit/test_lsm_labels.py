"""Mount label formatting (SELinux is not on this host: the enabled branch is forced)."""

from __future__ import annotations

import pytest

from pyrunc.errors import ConfigError
from pyrunc.linux import lsm


def test_mount_label_only_with_selinux(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lsm, "selinux_enabled", lambda: False)
    assert lsm.mount_data("mode=755", "system_u:object_r:container_file_t:s0") == "mode=755"
    monkeypatch.setattr(lsm, "selinux_enabled", lambda: True)
    lab = "system_u:object_r:container_file_t:s0"
    assert lsm.mount_data("mode=755", lab) == f'mode=755,context="{lab}"'
    assert lsm.mount_data("", lab) == f'context="{lab}"'
    assert lsm.mount_data("mode=755", None) == "mode=755"


def test_check_refuses_what_the_host_lacks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lsm, "apparmor_enabled", lambda: False)
    monkeypatch.setattr(lsm, "selinux_enabled", lambda: False)
    with pytest.raises(ConfigError, match="process.apparmorProfile"):
        lsm.check({"apparmorProfile": "p"}, {})
    with pytest.raises(ConfigError, match="process.selinuxLabel"):
        lsm.check({"selinuxLabel": "l"}, {})
    lsm.check({}, {"mountLabel": "x"})  # ignored without SELinux, as runc


def test_exec_attrs_open_on_procfs_and_write_through_the_fd() -> None:
    """The attribute fd is opened through the runtime's /proc and written later: on a host
    with no LSM the kernel refuses the value itself (EINVAL) -- proof the write reached the
    procfs attribute rather than some other file -- and the error names the LSM."""
    import os

    opened = lsm.open_attrs({"apparmorProfile": "p", "selinuxLabel": "l"})
    assert [kind for _, kind, _ in opened] == ["apparmor", "selinux"]
    proc_dev = os.stat("/proc/self").st_dev
    assert all(os.fstat(fd).st_dev == proc_dev for fd, _, _ in opened)
    fds = [fd for fd, _, _ in opened]
    if lsm.apparmor_enabled() or lsm.selinux_enabled():
        lsm.close_attrs(opened)
        pytest.skip("an LSM runs here: a real label would be applied to this test process")
    with pytest.raises(Exception, match="apparmor failed to apply 'exec p'"):
        lsm.write_attrs(opened)
    for fd in fds:  # closed, whatever happened
        with pytest.raises(OSError):
            os.fstat(fd)
