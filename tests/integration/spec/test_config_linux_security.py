"""config-linux.md: sysctl, seccomp, masked and read-only paths, rootfs propagation, mount label
and personality, as the container's own process sees them (/proc/sys, errno of a filtered
syscall, mountinfo).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import (
    Bundle,
    Runtime,
    mountinfo_line,
)
from helpers import (
    create_and_start,
    create_fails,
    run_ok,
    wait_file,
)

pytestmark = pytest.mark.integration

# --- Sysctl, seccomp, paths, propagation, label ------------------------------------------------


@pytest.mark.spec(
    "config-linux.md#sysctl",
    "sysctl (object, OPTIONAL) allows kernel parameters to be modified at runtime for the "
    "container.",
)
def test_sysctl(rt: Runtime, bundle: Bundle) -> None:
    """Namespaced parameters take the configured values inside; the host's are unchanged."""
    host = Path("/proc/sys/net/ipv4/ip_forward").read_text()
    want = "0" if host.strip() == "1" else "1"
    bundle.linux["sysctl"] = {"net.ipv4.ip_forward": want, "kernel.shmmni": "1234"}
    out = run_ok(rt, bundle, "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmni").split()
    assert out == [want, "1234"]
    assert Path("/proc/sys/net/ipv4/ip_forward").read_text() == host


@pytest.mark.spec(
    "config-linux.md#seccomp",
    "syscalls (array of objects, OPTIONAL) - match a syscall in seccomp. errnoRet (uint, "
    "OPTIONAL) - the errno return code to use.",
)
def test_seccomp_rule_with_errno(rt: Runtime, bundle: Bundle) -> None:
    """A syscall matched with SCMP_ACT_ERRNO fails with the configured errno (EXDEV here)."""
    bundle.linux["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 18},
        ],
    }
    out = run_ok(rt, bundle, "mkdir /dev/shm/x 2>&1; echo rc=$?")
    assert "cross-device" in out.lower(), out
    assert out.strip().endswith("rc=1"), out


@pytest.mark.spec(
    "config-linux.md#seccomp",
    "When the action doesn't support an errno, the runtime MUST print and error and fail.",
)
@pytest.mark.runc_deviation("runc 1.1.5 accepts errnoRet on a SCMP_ACT_ALLOW rule (and drops it)")
def test_seccomp_errno_ret_on_allow_errors(rt: Runtime, bundle: Bundle) -> None:
    """errnoRet on an SCMP_ACT_ALLOW rule is meaningless: create must fail."""
    bundle.linux["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_ALLOW", "errnoRet": 1}],
    }
    r = create_fails(rt, bundle)
    assert r.err.strip() != "", r


@pytest.mark.spec(
    "config-linux.md#masked-paths",
    "maskedPaths (array of strings, OPTIONAL) will mask over the provided paths inside the "
    "container so that they cannot be read.",
)
def test_masked_paths(rt: Runtime, bundle: Bundle) -> None:
    """A masked file reads as empty, a masked directory lists as empty (the rootfs has data)."""
    (bundle.rootfs / "spec-masked-dir").mkdir()
    (bundle.rootfs / "spec-masked-dir" / "secret").write_text("secret\n")
    (bundle.rootfs / "spec-masked-file").write_text("secret\n")
    bundle.linux["maskedPaths"] = ["/spec-masked-dir", "/spec-masked-file", "/proc/kcore"]
    out = run_ok(
        rt,
        bundle,
        "echo dir:$(ls -A /spec-masked-dir); echo file:$(cat /spec-masked-file); "
        "echo kcore:$(head -c 8 /proc/kcore | wc -c)",
    )
    assert out.split() == ["dir:", "file:", "kcore:0"]


@pytest.mark.spec(
    "config-linux.md#readonly-paths",
    "readonlyPaths (array of strings, OPTIONAL) will set the provided paths as readonly inside "
    "the container.",
)
def test_readonly_paths(rt: Runtime, bundle: Bundle) -> None:
    """On a writable root, a listed directory refuses writes while its sibling accepts them;
    /proc/sys (listed by default) refuses writes too."""
    (bundle.rootfs / "spec-ro").mkdir()
    bundle.config["root"]["readonly"] = False
    bundle.linux["readonlyPaths"] = ["/spec-ro", "/proc/sys"]
    out = run_ok(
        rt,
        bundle,
        "touch /spec-ro/f 2>/dev/null && echo ro-writable || echo ro-refused; "
        "touch /spec-rw 2>/dev/null && echo rw-writable || echo rw-refused; "
        "echo 1 2>/dev/null > /proc/sys/kernel/shmmni && echo sys-writable || echo sys-refused",
    )
    assert out.split() == ["ro-refused", "rw-writable", "sys-refused"]


@pytest.fixture
def shared_rootfs(bundle: Bundle, tmp_path: Path) -> Iterator[Path]:
    """The bundle's rootfs copied onto a host tmpfs made shared (this host's mounts are all
    private), so mounts made on the host below it can propagate; unmounted afterwards."""
    base = tmp_path / "shared"
    base.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "spec-shared", str(base)], check=True)
    try:
        subprocess.run(["mount", "--make-shared", str(base)], check=True)
        subprocess.run(["cp", "-a", str(bundle.rootfs), str(base / "rootfs")], check=True)
        (base / "rootfs" / "spec-prop").mkdir()
        bundle.config["root"]["path"] = str(base / "rootfs")
        yield base / "rootfs"
    finally:
        subprocess.run(["umount", "-R", "-l", str(base)], check=False)
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.parametrize(
    "propagation, expect",
    [
        pytest.param(
            "slave",
            "seen",
            marks=pytest.mark.runc_deviation(
                "runc 1.1.5 makes the rootfs's parent mount private before the bind, so with "
                "`slave` (only / made a slave) host mounts below the rootfs never arrive"
            ),
        ),
        ("private", "unseen"),
    ],
)
@pytest.mark.spec(
    "config-linux.md#rootfs-mount-propagation",
    "slave: the rootfs mount receives propagation events from the host (e.g. if something is "
    "mounted on the host it will also appear in the container) but not the other way around. "
    "private: the rootfs mount doesn't receive mount propagation events from the host.",
)
def test_rootfs_propagation_from_host(
    rt: Runtime, bundle: Bundle, shared_rootfs: Path, outdir: Path, propagation: str, expect: str
) -> None:
    """A tmpfs mounted on the host below the rootfs while the container runs appears inside
    with `slave` and does not with `private`."""
    bundle.linux["rootfsPropagation"] = propagation
    # a handshake, not a time window: /out is a bind mount, seen whatever the propagation,
    # and the host writes /out/go only after its mount and the marker are in place
    bundle.sh(
        "echo ready > /out/ready; for i in $(seq 600); do [ -e /out/go ] && break; "
        "sleep 0.05; done; if [ -e /spec-prop/marker ]; then echo seen; else echo unseen; fi "
        "> /out/result"
    )
    cid = create_and_start(rt, bundle)
    wait_file(outdir / "ready")
    target = shared_rootfs / "spec-prop"
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "spec-prop", str(target)], check=True)
    try:
        (target / "marker").write_text("x")
        (outdir / "go").write_text("go")
        rt.wait_status(cid, "stopped")
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False)
    assert (outdir / "result").read_text().strip() == expect


@pytest.mark.runc_deviation(
    "runc 1.1.5 leaves the container's / out of any peer group with rootfsPropagation shared "
    "on a host whose mounts are private"
)
@pytest.mark.spec(
    "config-linux.md#rootfs-mount-propagation",
    "shared: the rootfs mount belongs to a new peer group.",
)
def test_rootfs_propagation_shared(rt: Runtime, bundle: Bundle) -> None:
    """With `shared`, the container's / is in a peer group (a shared:N field in mountinfo)."""
    bundle.linux["rootfsPropagation"] = "shared"
    out = run_ok(rt, bundle, "cat /proc/self/mountinfo")
    root = mountinfo_line(out, "/")
    assert root, out
    fields = root[-1].split(" - ")[0].split()[6:]
    assert any(f.startswith("shared:") for f in fields), root


@pytest.mark.runc_deviation(
    "runc 1.1.5 passes context= to mount(2) on a host without SELinux and create fails "
    "(EINVAL); not a MUST, pyrunc ignores mountLabel there"
)
@pytest.mark.spec(
    "config-linux.md#mount-label",
    "mountLabel (string, OPTIONAL) will set the Selinux context for the mounts in the container.",
)
def test_mount_label_without_selinux(rt: Runtime, bundle: Bundle) -> None:
    """On a host without SELinux (as here) mountLabel cannot apply: the container runs and no
    mount gets a context= option."""
    if os.path.exists("/sys/fs/selinux/enforce"):
        pytest.skip("SELinux is enabled here; this checks the non-SELinux behaviour")
    bundle.linux["mountLabel"] = "system_u:object_r:svirt_sandbox_file_t:s0:c1,c2"
    out = run_ok(rt, bundle, "cat /proc/self/mountinfo")
    assert "context=" not in out
    assert mountinfo_line(out, "/dev/shm"), out


@pytest.mark.runc_deviation(
    "runc 1.1.5 implements spec 1.0.2, which has no personality (an unknown property, ignored)"
)
@pytest.mark.spec(
    "config-linux.md#personality",
    "personality (object, OPTIONAL) sets the Linux execution personality. LINUX32 will set the "
    "uname system call to show a 32 bit CPU type, such as i686.",
)
def test_personality_linux32(rt: Runtime, bundle: Bundle) -> None:
    """uname -m reports a 32-bit machine under LINUX32."""
    if os.uname().machine != "x86_64":
        pytest.skip("checks the x86_64 -> i686 mapping")
    bundle.linux["personality"] = {"domain": "LINUX32"}
    assert run_ok(rt, bundle, "uname -m").strip() in ("i686", "i386")
