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
