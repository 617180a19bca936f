"""deploy/: what the README tells a node's operator to install parses, and names our shim.
(The CRI tests run containerd with these runtime tables verbatim: tests/integration/cri/env.py.)"""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_containerd_config_registers_the_pyrunc_handler() -> None:
    cfg = tomllib.loads((ROOT / "deploy" / "containerd" / "config.toml").read_text())
    assert cfg["version"] == 2
    rts = cfg["plugins"]["io.containerd.grpc.v1.cri"]["containerd"]["runtimes"]
    assert rts["pyrunc"]["runtime_type"] == "io.containerd.pyrunc.v2"
    assert rts["runc"]["runtime_type"] == "io.containerd.runc.v2"


def test_runtimeclass_names_the_handler() -> None:
    text = (ROOT / "deploy" / "kubernetes" / "runtimeclass.yaml").read_text()
    lines = {ln.split(":", 1)[0]: ln.split(":", 1)[1].strip() for ln in text.splitlines()
             if ln and not ln.startswith((" ", "#")) and ":" in ln}
    assert lines["apiVersion"] == "node.k8s.io/v1" and lines["kind"] == "RuntimeClass"
    assert lines["handler"] == "pyrunc"
