"""pyctr's default seccomp profile (containerd's): what the bounding set widens, what it
refuses without CAP_SYS_ADMIN, and that the spec it goes into is valid for the runtime."""

from __future__ import annotations

from pyctr.seccomp_default import NAMESPACE_FLAGS, profile
from pyctr.spec import CAPS
from pyrunc.validate import validate_with_jsonschema


def _allowed(prof: dict) -> set[str]:
    return {n for r in prof["syscalls"] if r["action"] == "SCMP_ACT_ALLOW" and not r.get("args")
            for n in r["names"]}


def test_default_caps_refuse_namespaces_and_answer_clone3_enosys() -> None:
    prof = profile(CAPS, "x86_64")
    assert prof["defaultAction"] == "SCMP_ACT_ERRNO"
    assert prof["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    allowed = _allowed(prof)
    assert {"read", "arch_prctl", "chroot"} <= allowed  # CAP_SYS_CHROOT is in containerd's set
    assert not {"mount", "unshare", "setns", "clone", "bpf"} & allowed
    clone = [r for r in prof["syscalls"] if r["names"] == ["clone"]]
    assert clone == [{"names": ["clone"], "action": "SCMP_ACT_ALLOW", "args": [
        {"index": 0, "value": NAMESPACE_FLAGS, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]}]
    assert NAMESPACE_FLAGS == 0x7E020000
    assert {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38} in prof["syscalls"]


def test_sys_admin_and_ptrace_widen_it() -> None:
    prof = profile([*CAPS, "CAP_SYS_ADMIN", "CAP_SYS_PTRACE"], "aarch64")
    allowed = _allowed(prof)
    assert {"mount", "unshare", "setns", "clone", "clone3", "process_vm_readv",
            "set_tls"} <= allowed
    assert not any(r["names"] == ["clone3"] and r["action"] == "SCMP_ACT_ERRNO"
                   for r in prof["syscalls"])
    assert prof["architectures"] == ["SCMP_ARCH_ARM", "SCMP_ARCH_AARCH64"]


def test_s390x_clone_flags_are_the_second_argument() -> None:
    clone = [r for r in profile(CAPS, "s390x")["syscalls"] if r["names"] == ["clone"]]
    assert clone[0]["args"][0]["index"] == 1


def test_profile_is_valid_in_a_runtime_spec() -> None:
    from pyrunc.specgen import default_spec

    spec = default_spec()
    spec["linux"]["seccomp"] = profile(CAPS)
    assert validate_with_jsonschema(spec) == []
