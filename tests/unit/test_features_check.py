"""`features`: runc's document, checked against runtime-spec 1.3.0's features schema
(oci_schema/features-schema.json) by both validators, and what each part claims."""

from __future__ import annotations

import copy
from typing import Any

import pytest

import pyrunc
from pyrunc.errors import ConfigError
from pyrunc.features import features
from pyrunc.linux import libseccomp, seccomp
from pyrunc.specgen import default_spec
from pyrunc.validate import validate, validate_with_jsonschema


def _valid(doc: Any) -> None:
    validate(doc, "features")
    assert validate_with_jsonschema(doc, "features") == []


def test_features_validate_against_the_1_3_schema() -> None:
    _valid(features())


def test_runtime_spec_example_documents() -> None:
    """runtime-spec v1.3.0's schema/test/features: good/minimal.json, bad/missing-ociVersionMax."""
    _valid({"ociVersionMin": "1.0.0", "ociVersionMax": "1.1.0"})
    with pytest.raises(ConfigError, match='missing required property "ociVersionMax"'):
        validate({"ociVersionMin": "1.1.0"}, "features")
    assert validate_with_jsonschema({"ociVersionMin": "1.1.0"}, "features")


@pytest.mark.parametrize(
    "path, value",
    [
        (("linux", "namespaces"), ["pid", "nosuchns"]),
        (("linux", "capabilities"), ["cap_chown"]),
        (("linux", "seccomp", "knownFlags"), ["SECCOMP_FILTER_FLAG_NEW_LISTENER"]),
        (("linux", "seccomp", "archs"), ["x86_64"]),
        (("linux", "intelRdt", "enabled"), "true"),
        (("linux", "memoryPolicy", "modes"), ["MPOL_ALL"]),
        (("potentiallyUnsafeConfigAnnotations",), "bundle"),
        (("annotations",), {"a": 1}),
    ],
)
def test_schema_catches_a_wrong_shape(path: tuple, value: object) -> None:
    doc = copy.deepcopy(features())
    node = doc
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value
    with pytest.raises(ConfigError):
        validate(doc, "features")
    assert validate_with_jsonschema(doc, "features")


def test_keys_in_runcs_order() -> None:
    """Go marshals struct fields in declaration order (runtime-spec specs-go/features)."""
    f = features()
    assert list(f) == ["ociVersionMin", "ociVersionMax", "hooks", "mountOptions", "linux",
                       "annotations", "potentiallyUnsafeConfigAnnotations"]
    assert list(f["linux"]) == ["namespaces", "capabilities", "cgroup", "seccomp", "apparmor",
                                "selinux", "intelRdt", "memoryPolicy", "mountExtensions",
                                "netDevices"]
    assert list(f["linux"]["seccomp"]) == ["enabled", "actions", "operators", "archs",
                                           "knownFlags", "supportedFlags"]


def test_oci_versions() -> None:
    """features and --version say the newest runtime-spec handled; `spec` keeps writing what
    runc 1.1.5's does (its bats suite and scripts build bundles from it)."""
    f = features()
    assert (f["ociVersionMin"], f["ociVersionMax"]) == ("1.0.0", "1.3.0")
    assert pyrunc.OCI_VERSION == "1.3.0"
    assert "\nspec: 1.3.0\n" in pyrunc.version_text()
    assert default_spec()["ociVersion"] == "1.0.2-dev"


def test_intel_rdt_and_unsafe_annotations() -> None:
    f = features()
    assert f["linux"]["intelRdt"] == {"enabled": True, "schemata": True, "monitoring": True}
    assert f["potentiallyUnsafeConfigAnnotations"] == [
        "bundle", "org.systemd.property.", "org.criu.config"]
    assert f["linux"]["cgroup"]["rdma"] is True


def test_seccomp_flags() -> None:
    s = features()["linux"]["seccomp"]
    if not s["enabled"]:
        pytest.skip("no libseccomp here")
    assert s["knownFlags"] == ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
                               "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]
    assert set(s["supportedFlags"]) <= set(s["knownFlags"])
    assert s["supportedFlags"] == [x for x in s["knownFlags"] if x in s["supportedFlags"]]
    assert "SECCOMP_FILTER_FLAG_TSYNC" in s["supportedFlags"]  # taken and ignored, as runc
    v = features()["annotations"]["io.github.seccomp.libseccomp.version"]
    assert v == ".".join(map(str, libseccomp.version()))


def test_supported_flags_follow_the_host(monkeypatch: pytest.MonkeyPatch) -> None:
    """A kernel without WAIT_KILLABLE_RECV (< 5.19), a libseccomp or kernel without LOG."""
    try:
        seccomp.lib()
    except Exception:
        pytest.skip("no libseccomp here")
    from pyrunc.linux import sys as LS

    monkeypatch.setattr(LS, "seccomp_flags_known", lambda flags: False)
    real = libseccomp.Filter.set_attr

    def set_attr(self: libseccomp.Filter, attr: int, value: int) -> None:
        if attr == libseccomp.ATTR_CTL_LOG:
            raise OSError(95, "Operation not supported")
        real(self, attr, value)

    monkeypatch.setattr(libseccomp.Filter, "set_attr", set_attr)
    assert seccomp.supported_flags() == ["SECCOMP_FILTER_FLAG_TSYNC",
                                         "SECCOMP_FILTER_FLAG_SPEC_ALLOW"]


def test_every_known_flag_is_taken() -> None:
    """knownFlags: each one is accepted in a profile (TSYNC ignored, as runc ignores it)."""
    try:
        seccomp.lib()
    except Exception:
        pytest.skip("no libseccomp here")
    for flag in seccomp.KNOWN_FLAGS:
        seccomp.build({"defaultAction": "SCMP_ACT_ALLOW", "flags": [flag]})


def test_probe_of_the_kernel() -> None:
    from pyrunc.linux import sys as LS

    assert not LS.seccomp_flags_known(1 << 30)
    # WAIT_KILLABLE_RECV means nothing without NEW_LISTENER: the kernel says EINVAL
    assert not LS.seccomp_flags_known(LS.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV)
    assert LS.seccomp_flags_known(LS.SECCOMP_FILTER_FLAG_LOG) in (True, False)
