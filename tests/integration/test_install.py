"""A plain `pip install` of pyrunc into a venv of another CPython runs seccomp containers.

The libseccomp binding is generated at install time (cffi ABI mode) and needs only
libseccomp.so.2 at run time, so any CPython >= 3.11 will do -- not only Debian's
/usr/bin/python3, the one interpreter python3-seccomp (the bindings pyrunc used before) is
built for. This installs the source tree into a fresh venv of another interpreter (pyenv's
python3 here), then runs a real container with a seccomp profile through that venv's pyrunc
and checks from inside that the filter is in force.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import REPO, Bundle, Runtime, unique_id

pytestmark = pytest.mark.integration

SYSTEM_PYTHON = "/usr/bin/python3"
# what `pip install .` reads; the rest of the tree (tests, conformance, ...) is not needed
SOURCES = ["pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "bin", "launcher", "pyrunc",
           "oci_schema", "shim_v2", "pyctr"]
_IGNORE = shutil.ignore_patterns("__pycache__", "*.so", "_libseccomp.py", "*.egg-info")


def _other_python() -> str:
    """The real path of an interpreter >= 3.11 that is not the system's, or skip."""
    system = os.path.realpath(SYSTEM_PYTHON)
    code = "import sys; print(sys.executable); print(sys.version_info >= (3, 11))"
    for name in ("python3", "python3.13", "python3.12", "python3.11"):
        found = shutil.which(name)
        if not found:
            continue
        try:
            p = subprocess.run(
                [found, "-c", code], capture_output=True, text=True, timeout=30
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        lines = p.stdout.split()
        if p.returncode != 0 or len(lines) != 2 or lines[1] != "True":
            continue
        exe = lines[0]
        if os.path.realpath(exe) != system:
            return exe
    pytest.skip(f"no CPython >= 3.11 other than {SYSTEM_PYTHON} on PATH")


@pytest.fixture
def venv(tmp_path: Path) -> Iterator[Path]:
    """A venv of another interpreter with pyrunc pip-installed from a copy of the source tree
    (a copy: pip builds in the tree, and the repository's build/ belongs to .venv). Removed
    afterwards, whatever happens."""
    python = _other_python()
    src = tmp_path / "src"
    env = tmp_path / "venv"
    try:
        src.mkdir()
        for name in SOURCES:
            path = REPO / name
            if path.is_dir():
                shutil.copytree(path, src / name, ignore=_IGNORE)
            else:
                shutil.copy2(path, src / name)
        subprocess.run([python, "-m", "venv", str(env)], check=True, capture_output=True)
        p = subprocess.run(
            [str(env / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", str(src)],
            capture_output=True, text=True, timeout=600,
        )
        assert p.returncode == 0, p.stderr[-3000:]
        yield env
    finally:
        shutil.rmtree(src, ignore_errors=True)
        shutil.rmtree(env, ignore_errors=True)


def test_pip_install_into_another_python_runs_seccomp(venv: Path, bundle: Bundle,
                                                       tmp_path: Path) -> None:
    py = venv / "bin" / "python"
    probe = subprocess.run(
        [str(py), "-c", "import sys; print(sys.base_prefix)"], capture_output=True, text=True
    )
    assert probe.returncode == 0 and probe.stdout.strip() != "/usr", probe
    rt = Runtime(str(venv / "bin" / "pyrunc"), tmp_path / "root", tmp_path)
    try:
        bundle.linux["seccomp"] = {
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_X86_64"],
            "syscalls": [
                {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"},
                {"names": ["rmdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 100},
            ],
        }
        bundle.sh("mkdir /dev/shm/a; rmdir /dev/shm; grep Seccomp: /proc/self/status")
        r = rt.run(unique_id(), bundle)
        assert "Operation not permitted" in r.err, r
        assert "Network is down" in r.err, r  # errno 100 = ENETDOWN
        assert "Seccomp:\t2" in r.out, r  # SECCOMP_MODE_FILTER
    finally:
        rt.cleanup()
