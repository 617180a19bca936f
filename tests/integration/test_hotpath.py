"""The hot commands import only what they use (docs/architecture.md, section 9).

`python -X importtime` on the installed launcher lists every module a command loads; the heavy
ones (click ~65 ms, jsonschema ~135 ms, re/json/typing a few ms each) must stay out of the
commands that callers run per container operation.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from harness import Bundle, unique_id

pytestmark = pytest.mark.integration

HEAVY = {"click", "jsonschema", "re", "json", "typing", "subprocess", "pyroute2", "enum",
         "inspect", "dataclasses", "socket", "threading"}


def _launcher() -> str:
    path = os.environ.get("PYRUNC") or shutil.which("pyrunc") or "/opt/pyrunc-venv/bin/pyrunc"
    if not os.path.exists(path):
        pytest.skip("pyrunc is not installed")
    return path


# what launcher/pyrunc.c runs (python -I -S -c CODE SITE SELF ARGS...)
LAUNCHER_CODE = ("import sys;sys.path[:0]=[sys.argv.pop(1)];sys.argv[0]=sys.argv.pop(1);"
                 "import gc;gc.disable();from pyrunc.cli import entry;entry()")


def _command(launcher: str) -> list[str]:
    """The launcher's own command line with -X importtime added to the interpreter's."""
    with open(launcher, "rb") as f:
        head = f.read(4)
        f.seek(0)
        first = f.readline().decode(errors="replace").strip()
    if head == b"\x7fELF":  # the compiled launcher (launcher/pyrunc.c)
        bindir = os.path.dirname(os.path.realpath(launcher))
        v = f"python{sys.version_info[0]}.{sys.version_info[1]}"
        site = os.path.join(bindir, "..", "lib", v, "site-packages")
        return [os.path.join(bindir, "python3"), "-X", "importtime", "-I", "-S", "-c",
                LAUNCHER_CODE, site, launcher]
    python = first[2:].split()[0] if first.startswith("#!") else sys.executable
    return [python, "-X", "importtime", launcher]


def _imported(args: list[str], cwd: str | None = None) -> set[str]:
    r = subprocess.run([*_command(_launcher()), *args], capture_output=True,
                       text=True, stdin=subprocess.DEVNULL, cwd=cwd)
    mods = set()
    for line in r.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            mods.add(line.rsplit("|", 1)[1].strip())
    return mods


@pytest.mark.parametrize("cmd", [["state", "nope"], ["kill", "nope", "KILL"],
                                 ["delete", "nope"], ["start", "nope"], ["list"],
                                 ["--version"]])
def test_hot_commands_import_nothing_heavy(cmd: list[str], tmp_path: object) -> None:
    mods = _imported(["--root", str(tmp_path), *cmd])
    assert "pyrunc.cli" in mods, "importtime output not understood"
    assert not (mods & HEAVY), sorted(mods & HEAVY)


def test_run_imports_nothing_heavy(bundle: Bundle, tmp_path: Path) -> None:
    """A whole `run` (create, start, wait, delete) of a plain container."""
    bundle.process["args"] = ["true"]
    bundle.save()
    mods = _imported(["--root", str(tmp_path / "root"), "run", "-b",
                      str(bundle.path), "hot-run"])
    assert "pyrunc.init.launch" in mods
    assert not (mods & HEAVY), sorted(mods & HEAVY)


def test_run_with_seccomp_imports_nothing_heavy(bundle: Bundle, tmp_path: Path) -> None:
    """The libseccomp binding (cffi ABI mode) brings no ctypes, no re, no typing."""
    bundle.process["args"] = ["true"]
    bundle.linux["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}],
    }
    bundle.save()
    mods = _imported(["--root", str(tmp_path / "root"), "run", "-b",
                      str(bundle.path), unique_id("hot")])
    assert "pyrunc.linux.libseccomp" in mods
    assert not (mods & (HEAVY | {"ctypes"})), sorted(mods & (HEAVY | {"ctypes"}))


def test_help_uses_click(tmp_path: object) -> None:
    """...while help still comes from click (one flag table, two parsers)."""
    assert "click" in _imported(["state", "--help"])
