"""containerd-shim-pyrunc-v2 under a real containerd 1.6 (Debian's package), driven by ctr.

conformance/harness/containerd.sh starts a private containerd (its own root, state, gRPC and
TTRPC sockets, in a private mount namespace whose /run is a fresh tmpfs), imports a busybox
image made offline, and runs every scenario with `--runtime io.containerd.pyrunc.v2`, the
shim found on containerd's PATH: echo, lifecycle (ls, ps, exec, exec exit status, kill,
delete, container delete), exit codes, tty (a pts, ResizePty), memory limit and OOM kill,
pause/resume and exec after resume, metrics, stdin relay and close, file:// and binary:// log
URIs, and the events containerd saw (create, start, exit, delete, exec-added, exec-started,
paused, resumed, oom).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from harness import pyrunc_binary

pytestmark = pytest.mark.integration

HARNESS = Path(__file__).resolve().parents[2] / "conformance" / "harness" / "containerd.sh"


def test_every_containerd_scenario_through_our_shim() -> None:
    if not shutil.which("containerd") or not shutil.which("ctr"):
        pytest.skip("containerd 1.6 is not installed (scripts/test.sh installs it)")
    bindir = os.path.dirname(pyrunc_binary())
    shim = os.path.join(bindir, "containerd-shim-pyrunc-v2")
    assert os.access(shim, os.X_OK), shim
    p = subprocess.run(
        [str(HARNESS), "--path", bindir, "shim:pyrunc"],
        capture_output=True, text=True, timeout=900,
    )
    out = p.stdout + p.stderr
    fails = [line for line in out.splitlines() if line.startswith("FAIL")]
    passes = [line for line in out.splitlines() if line.startswith("PASS")]
    assert not fails, out
    assert p.returncode == 0, out
    assert len(passes) >= 22, out
    for name in ("echo", "lifecycle/exec", "tty", "memory/oom", "stdin", "loguri/binary",
                 "events", "metrics/json"):
        assert any(line.startswith(f"PASS {name}") for line in passes), (name, out)
