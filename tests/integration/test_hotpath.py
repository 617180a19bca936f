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
         "inspect", "dataclasses", "socket", "threading", "pyrunc.linux.netdev"}


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


def _imported(args: list[str], cwd: str | None = None, prefix: tuple[str, ...] = ()) -> set[str]:
    r = subprocess.run([*prefix, *_command(_launcher()), *args], capture_output=True,
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


def test_netdevices_alone_bring_pyroute2(bundle: Bundle, tmp_path: Path) -> None:
    """linux.netDevices loads pyroute2 (~250 ms) and linux/netdev.py: the checks above would
    see them, and the plain run does not load them. In a network namespace of the test's own,
    with a device of its own."""
    holder = subprocess.Popen(["unshare", "--net", "--", "sleep", "60"],
                              stdin=subprocess.DEVNULL)
    try:
        prefix = ("nsenter", f"--net=/proc/{holder.pid}/ns/net", "--")
        for _ in range(500):
            if os.readlink(f"/proc/{holder.pid}/ns/net") != os.readlink("/proc/self/ns/net"):
                break
        ok = any(subprocess.run([*prefix, "ip", "link", "add", "hot0", "type", kind],
                                capture_output=True).returncode == 0 for kind in ("dummy", "ifb"))
        if not ok:
            pytest.skip("neither dummy nor ifb devices can be created here")
        bundle.process["args"] = ["true"]
        bundle.linux["netDevices"] = {"hot0": {}}
        bundle.save()
        mods = _imported(["--root", str(tmp_path / "root"), "run", "-b",
                          str(bundle.path), unique_id("hot")], prefix=prefix)
    finally:
        holder.kill()
        holder.wait()
    assert {"pyroute2", "pyrunc.linux.netdev"} <= mods


def test_help_uses_click(tmp_path: object) -> None:
    """...while help still comes from click (one flag table, two parsers)."""
    assert "click" in _imported(["state", "--help"])
