"""pyrunc.specgen must write what `runc spec` writes, byte for byte.

runc's bats suite builds every bundle from `RUNTIME spec` and then edits it with jq, so any
difference (a value, key order, indentation, a trailing newline) shows up as test differences.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

import pytest

from pyrunc.fastjson import loads
from pyrunc.specgen import default_spec, spec_json
from pyrunc.validate import validate, validate_with_jsonschema

RUNC = "/usr/sbin/runc"
needs_runc = pytest.mark.skipif(
    not os.access(RUNC, os.X_OK), reason=f"{RUNC} (runc 1.1.5) is not installed"
)


def runc_spec(*args: str, user: int | None = None) -> bytes:
    """Run `runc spec` in a scratch directory (as `user` via setpriv) and return the file."""
    d = tempfile.mkdtemp(prefix="pyrunc-spec-")
    try:
        cmd = [RUNC, "spec", *args]
        if user is not None:
            os.chmod(d, 0o777)
            cmd = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *cmd]
        subprocess.run(cmd, cwd=d, check=True, capture_output=True)
        with open(os.path.join(d, "config.json"), "rb") as f:
            return f.read()
    finally:
        shutil.rmtree(d)


@needs_runc
def test_matches_runc_spec() -> None:
    assert spec_json(False).encode() == runc_spec()


@needs_runc
def test_matches_runc_spec_rootless() -> None:
    assert spec_json(True).encode() == runc_spec("--rootless")


@needs_runc
@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root")
def test_matches_runc_spec_rootless_other_user() -> None:
    """--rootless maps the caller's euid/egid; check that with an id other than root's."""
    assert spec_json(True, uid=65534, gid=65534).encode() == runc_spec("--rootless", user=65534)


def test_text_form() -> None:
    text = spec_json(False)
    assert text.startswith('{\n\t"ociVersion": "1.0.2-dev",\n\t"process": {\n\t\t"terminal"')
    assert text.endswith("\n\t}\n}")  # Go's MarshalIndent: no final newline
    assert loads(text) == default_spec()


def test_rootless_shape() -> None:
    spec = default_spec(True, uid=1000, gid=1001)
    linux = spec["linux"]
    assert list(linux) == [
        "uidMappings",
        "gidMappings",
        "namespaces",
        "maskedPaths",
        "readonlyPaths",
    ]
    assert linux["uidMappings"] == [{"containerID": 0, "hostID": 1000, "size": 1}]
    assert linux["gidMappings"] == [{"containerID": 0, "hostID": 1001, "size": 1}]
    assert [ns["type"] for ns in linux["namespaces"]] == ["pid", "ipc", "uts", "mount", "user"]
    sys_mount = next(m for m in spec["mounts"] if m["destination"] == "/sys")
    assert sys_mount == {
        "destination": "/sys",
        "type": "none",
        "source": "/sys",
        "options": ["rbind", "nosuid", "noexec", "nodev", "ro"],
    }
    assert not any(
        o.startswith(("uid=", "gid=")) for m in spec["mounts"] for o in m.get("options", ())
    )


def test_default_uses_effective_ids() -> None:
    linux = default_spec(True)["linux"]
    assert linux["uidMappings"][0]["hostID"] == os.geteuid()
    assert linux["gidMappings"][0]["hostID"] == os.getegid()


def test_each_call_returns_a_fresh_dict() -> None:
    a = default_spec()
    a["process"]["capabilities"]["bounding"].append("CAP_SYS_ADMIN")
    a["mounts"].clear()
    b = default_spec()
    assert "CAP_SYS_ADMIN" not in b["process"]["capabilities"]["bounding"]
    assert len(b["mounts"]) == 7
    assert b["process"]["capabilities"]["bounding"] is not b["process"]["capabilities"]["ambient"]


@pytest.mark.parametrize("rootless", [False, True])
def test_spec_validates(rootless: bool) -> None:
    spec = default_spec(rootless)
    validate(spec)
    assert validate_with_jsonschema(spec) == []
