"""Helpers for the real-container integration tests: a bundle to edit and the runtime to drive.

Imported by conftest.py (fixtures) and by the test modules (types and small helpers).
"""

from __future__ import annotations

import copy
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
MAKE_BUNDLE = REPO / "tools" / "make-busybox-bundle.sh"
CGROUP_ROOT = Path("/sys/fs/cgroup")


def pyrunc_binary() -> str:
    """The runtime under test: $PYRUNC, else the one on PATH, else the dev venv's."""
    return os.environ.get("PYRUNC") or shutil.which("pyrunc") or "/opt/pyrunc-venv/bin/pyrunc"


def unique_id(prefix: str = "t") -> str:
    """A container id unlikely to collide with anything on the host (cgroup dirs are global)."""
    return f"{prefix}{uuid.uuid4().hex[:12]}"


def read_pty_until_eof(fd: int, timeout: float) -> bytes:
    """Read a pty master until the slave side is gone (EIO) or the timeout."""
    import errno
    import select

    buf = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not select.select([fd], [], [], 0.2)[0]:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError as e:
            if e.errno == errno.EIO:
                break
            raise
        if not chunk:
            break
        buf += chunk
    return buf


def read_line(fd: int, timeout: float) -> bytes:
    """One line from a pipe, or what came before `timeout`: a stuck runtime fails the test
    instead of hanging the run."""
    buf = b""
    deadline = time.monotonic() + timeout
    while not buf.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            break
        chunk = os.read(fd, 1)
        if not chunk:
            break
        buf += chunk
    return buf


def mountinfo_line(text: str, mountpoint: str) -> list[str]:
    """The mountinfo lines (as printed inside the container) whose mount point is `mountpoint`."""
    return [ln for ln in text.splitlines() if ln.split(" ")[4:5] == [mountpoint]]


class Bundle:
    """An OCI bundle: `config` is edited in memory and written by save() (run/create call it)."""

    def __init__(self, path: Path, config: dict[str, Any]) -> None:
        self.path = path
        self.rootfs = path / "rootfs"
        self.config = config

    @property
    def process(self) -> dict[str, Any]:
        return self.config["process"]

    @property
    def linux(self) -> dict[str, Any]:
        return self.config["linux"]

    def args(self, *argv: str) -> Bundle:
        self.config["process"]["args"] = list(argv)
        return self

    def sh(self, script: str) -> Bundle:
        return self.args("sh", "-c", script)

    def add_mount(self, destination: str, source: str, mtype: str, options: list[str]) -> None:
        self.config.setdefault("mounts", []).append(
            {"destination": destination, "type": mtype, "source": source, "options": options}
        )

    def save(self) -> None:
        (self.path / "config.json").write_text(json.dumps(self.config, indent=1))


class Result:
    """Outcome of one runtime invocation."""

    def __init__(self, rc: int, out: str, err: str) -> None:
        self.rc = rc
        self.out = out
        self.err = err

    def __repr__(self) -> str:
        return f"Result(rc={self.rc}, out={self.out!r}, err={self.err!r})"


class Runtime:
    """Drives the runtime binary with one private --root; remembers ids to force-delete later."""

    def __init__(self, binary: str, root: Path, scratch: Path) -> None:
        self.binary = binary
        self.root = root
        self.scratch = scratch
        self.ids: list[str] = []

    def argv(self, *args: str) -> list[str]:
        return [self.binary, "--root", str(self.root), *args]

    def cmd(self, *args: str, input: str | None = None, timeout: float = 60) -> Result:
        """A command that does not leave a container process holding our pipes."""
        p = subprocess.run(
            self.argv(*args),
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        return Result(p.returncode, p.stdout, p.stderr)

    def _track(self, cid: str) -> None:
        if cid not in self.ids:
            self.ids.append(cid)

    def run(self, cid: str, bundle: Bundle, *flags: str, input: str | None = None) -> Result:
        """`run` in the foreground: returns after the container exits."""
        bundle.save()
        self._track(cid)
        return self.cmd("run", "--bundle", str(bundle.path), *flags, cid, input=input)

    def run_sh(self, bundle: Bundle, script: str, *flags: str) -> Result:
        """Run `sh -c script` in a fresh container and return what it printed."""
        bundle.sh(script)
        return self.run(unique_id(), bundle, *flags)

    def detached(self, *args: str, cid: str, timeout: float = 60) -> Result:
        """`create` / `run -d`: the container's init keeps our stdout/stderr, so use files."""
        self._track(cid)
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            p = subprocess.run(
                self.argv(*args),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                timeout=timeout,
            )
            out.seek(0)
            err.seek(0)
            return Result(p.returncode, out.read(), err.read())

    def create(self, cid: str, bundle: Bundle, *flags: str, output: Path | None = None) -> Result:
        """`create`; the container's later output goes to `output` (or is discarded)."""
        bundle.save()
        self._track(cid)
        if output is None:
            return self.detached("create", "--bundle", str(bundle.path), *flags, cid, cid=cid)
        with open(output, "w") as out, tempfile.TemporaryFile("w+") as err:
            p = subprocess.run(
                self.argv("create", "--bundle", str(bundle.path), *flags, cid),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                timeout=60,
            )
            err.seek(0)
            return Result(p.returncode, "", err.read())

    def state(self, cid: str) -> dict[str, Any]:
        r = self.cmd("state", cid)
        assert r.rc == 0, r
        return json.loads(r.out)

    def wait_status(self, cid: str, want: str, timeout: float = 10) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            st = self.state(cid)
            if st["status"] == want or time.monotonic() > deadline:
                return st
            time.sleep(0.05)

    def delete(self, cid: str, force: bool = False) -> Result:
        return self.cmd("delete", *(["-f"] if force else []), cid)

    def cleanup(self) -> None:
        for cid in self.ids:
            try:
                self.cmd("delete", "-f", cid, timeout=30)
            except subprocess.TimeoutExpired:
                pass


def copy_bundle(src: Bundle, dest: Path) -> Bundle:
    """Copy a bundle (rootfs and current config) to another directory."""
    dest.mkdir(exist_ok=True)
    subprocess.run(["cp", "-a", str(src.rootfs), str(dest / "rootfs")], check=True)
    b = Bundle(dest, copy.deepcopy(src.config))
    b.save()
    return b


USERNS_MAP = [{"containerID": 0, "hostID": 100000, "size": 65536}]


def userns_bundle(src: Bundle, tmp: Path) -> Bundle:
    """A copy of src in tmp (a directory the mapped root can reach: pytest's tmp dirs are
    0700) with a user namespace mapping container 0.. to host 100000.., and no resources
    (runc's userns tests drop them too); skips where there are no user namespaces."""
    import os

    import pytest

    if not os.path.exists("/proc/self/ns/user"):
        pytest.skip("no user namespaces")
    b = copy_bundle(src, tmp / "bundle")
    b.linux["namespaces"].append({"type": "user"})
    b.linux["uidMappings"] = copy.deepcopy(USERNS_MAP)
    b.linux["gidMappings"] = copy.deepcopy(USERNS_MAP)
    b.linux.pop("resources", None)
    return b


def running(rt: Runtime, bundle: Bundle) -> str:
    """A created and started container running `sleep 1000`; its id."""
    cid = unique_id()
    bundle.process["args"] = ["sleep", "1000"]
    r = rt.create(cid, bundle)
    assert r.rc == 0, r
    assert rt.cmd("start", cid).rc == 0
    return cid
