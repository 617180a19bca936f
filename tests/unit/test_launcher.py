"""The installed `pyrunc` command: the compiled launcher (launcher/pyrunc.c) or, where no C
compiler was found at install time, the Python script bin/pyrunc.

The launcher runs the interpreter -I -S: nothing from the caller's environment (PYTHONPATH,
PYTHONSTARTUP, PYTHONINSPECT) and nothing from the current directory, which for pyrunc is
usually a bundle a container image controls, may run before or instead of our code.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def _installed() -> str:
    path = os.path.join(os.path.dirname(sys.executable), "pyrunc")
    if not os.path.exists(path):
        pytest.skip("pyrunc is not installed beside this interpreter")
    return path


def _compiled() -> str:
    path = _installed()
    with open(path, "rb") as f:
        if f.read(4) != b"\x7fELF":
            pytest.skip("the compiled launcher is not installed (no C compiler at install time)")
    return path


def _evil_tree(tmp: Path) -> Path:
    """A directory whose modules announce themselves if imported."""
    for mod in ("pyrunc/__init__.py", "pyrunc/cli.py", "gc.py", "sitecustomize.py"):
        f = tmp / mod
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text("import os\nos.write(2, b'EVIL\\n')\nos._exit(99)\n")
    (tmp / "startup.py").write_text("import os\nos.write(2, b'EVIL\\n')\n")
    return tmp


def test_environment_and_cwd_cannot_inject_code(tmp_path: Path) -> None:
    evil = _evil_tree(tmp_path)
    env = dict(os.environ, PYTHONPATH=str(evil), PYTHONSTARTUP=str(evil / "startup.py"),
               PYTHONINSPECT="1", PYTHONHOME="/nonexistent")
    p = subprocess.run([_compiled(), "--version"], cwd=evil, env=env, capture_output=True,
                       stdin=subprocess.DEVNULL, timeout=30)
    assert b"EVIL" not in p.stderr, p.stderr
    assert p.returncode == 0 and p.stdout.startswith(b"pyrunc version "), p


def test_argv_passes_through_unchanged(tmp_path: Path) -> None:
    """Arguments that look like the interpreter's own options reach the CLI as given."""
    p = subprocess.run([_compiled(), "--root", str(tmp_path), "state", "-c"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 1
    assert 'container "-c" does not exist' in p.stderr or "-c" in p.stderr, p.stderr


def test_outside_a_venv_it_runs_python3_from_path(tmp_path: Path) -> None:
    """Copied where no interpreter sits beside it, it falls back to `python3 -m pyrunc`
    from PATH (with that interpreter's own site)."""
    exe = tmp_path / "pyrunc"
    exe.write_bytes(Path(_compiled()).read_bytes())
    exe.chmod(0o755)
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "python3").symlink_to(sys.executable)
    site = [p for p in sys.path if p.endswith("site-packages")]
    env = dict(os.environ, PATH=f"{shim}:{os.environ.get('PATH', '')}",
               PYTHONPATH=os.pathsep.join(site))
    p = subprocess.run([str(exe), "--version"], env=env, capture_output=True, timeout=30)
    assert p.returncode == 0 and p.stdout.startswith(b"pyrunc version "), p
