"""`pyrunc features` as installed: a runtime-spec 1.3.0 features document (both validators),
and what it claims holds for a real container."""

from __future__ import annotations

import json

import pytest
from harness import Bundle, Runtime

from pyrunc.validate import validate, validate_with_jsonschema

pytestmark = pytest.mark.integration


def _features(rt: Runtime) -> dict:
    r = rt.cmd("features")
    assert r.rc == 0 and r.err == "", r
    return json.loads(r.out)


def test_features_document_validates(rt: Runtime) -> None:
    f = _features(rt)
    validate(f, "features")
    assert validate_with_jsonschema(f, "features") == []
    assert f["ociVersionMax"] == "1.3.0"
    assert f["linux"]["intelRdt"]["enabled"] is True
    assert "bundle" in f["potentiallyUnsafeConfigAnnotations"]


def test_version_says_the_spec_features_says(rt: Runtime) -> None:
    lines = rt.cmd("--version").out.splitlines()
    assert lines[2] == f"spec: {_features(rt)['ociVersionMax']}"


def test_supported_seccomp_flags_run(rt: Runtime, bundle: Bundle) -> None:
    """Every flag `features` says this host supports, in one profile: the container runs
    under it (SECCOMP_FILTER_FLAG_LOG shows in no /proc file; the filter does)."""
    s = _features(rt)["linux"]["seccomp"]
    if not s.get("enabled"):
        pytest.skip("no libseccomp here")
    bundle.linux["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "flags": s["supportedFlags"],
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}],
    }
    r = rt.run_sh(bundle, "mkdir /tmp/x 2>/dev/null || echo refused")
    assert r.rc == 0 and r.out.strip() == "refused", r
