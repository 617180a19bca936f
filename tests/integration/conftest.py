"""Shared fixtures for the real-container integration tests.

Each test gets its own `--root` and its own bundle (a copy of one busybox rootfs built once per
session), so tests never see each other's containers, and cleans up only what it started.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import MAKE_BUNDLE, Bundle, Runtime, pyrunc_binary


@pytest.fixture(autouse=True)
def _need_root() -> None:
    """Real containers need root; say so instead of failing obscurely."""
    if os.geteuid() != 0:
        pytest.skip("integration tests run real containers and need root")


@pytest.fixture(scope="session")
def base_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One busybox bundle per session; tests copy it rather than rebuild it."""
    if os.geteuid() != 0:
        pytest.skip("integration tests run real containers and need root")
    if not os.path.exists("/bin/busybox"):
        pytest.skip("busybox-static is not installed")
    path = tmp_path_factory.mktemp("base") / "bundle"
    subprocess.run(
        ["sh", str(MAKE_BUNDLE), str(path), pyrunc_binary()],
        check=True,
        capture_output=True,
    )
    return path


@pytest.fixture
def bundle(base_bundle: Path, tmp_path: Path) -> Bundle:
    """A private copy of the busybox bundle (hard links are preserved, so this is quick)."""
    dest = tmp_path / "bundle"
    dest.mkdir()
    subprocess.run(["cp", "-a", str(base_bundle / "rootfs"), str(dest / "rootfs")], check=True)
    config = json.loads((base_bundle / "config.json").read_text())
    b = Bundle(dest, copy.deepcopy(config))
    b.save()
    return b


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A directory with a short path (unix sockets) that any uid can traverse (user namespaces)."""
    path = Path(tempfile.mkdtemp(prefix="pyrunc-it-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Runtime]:
    """The runtime with a --root of this test's own; force-deletes its containers afterwards."""
    r = Runtime(pyrunc_binary(), tmp_path / "root", tmp_path)
    yield r
    r.cleanup()
