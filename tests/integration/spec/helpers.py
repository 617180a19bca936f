"""Steps the spec tests share: set up a container in a known lifecycle state, run a script in
one, and check that an invalid configuration is refused.

They live here (not in each test module) so that every MUST test drives the runtime the same
way, and a fix to how the suite waits or checks applies to all of them. Each helper asserts on
what the runtime reports (exit codes, `state`) or on files the container wrote, never on what
the runtime meant to do. Imported as `helpers`: pytest puts this directory on sys.path for the
test modules in it (there is no __init__.py), as it does for tests/integration's harness.
"""

from __future__ import annotations

import time
from pathlib import Path

from harness import Bundle, Result, Runtime, unique_id


def run_ok(rt: Runtime, bundle: Bundle, script: str) -> str:
    """`sh -c script` in a fresh container that must exit 0; returns what it printed, which is
    the evidence most config tests judge."""
    r = rt.run_sh(bundle, script)
    assert r.rc == 0, r
    return r.out


def fields(text: str, sep: str = ":") -> dict[str, str]:
    """`key<sep>value` lines (/proc/self/status with ":", `echo k=v` output with "=") as a dict;
    lines without the separator are skipped, keys and values are stripped."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        k, found, v = line.partition(sep)
        if found:
            out[k.strip()] = v.strip()
    return out


def wait_file(path: Path, timeout: float = 10) -> bool:
    """Poll for a file a container or hook writes: its process runs on after the runtime
    returns, so the evidence appears some time later. Non-empty, not merely there: a shell's
    `> file` creates the file before it writes the line."""
    deadline = time.monotonic() + timeout
    while not (path.exists() and path.stat().st_size > 0):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def own_cgroup(bundle: Bundle, cid: str) -> str:
    """Give the container the cgroupsPath /spec-<cid> and return it, so the test knows which
    cgroup directories to look at on the host."""
    cgpath = f"/spec-{cid}"
    bundle.linux["cgroupsPath"] = cgpath
    return cgpath


def create_sleeping(rt: Runtime, bundle: Bundle, cid: str | None = None) -> tuple[str, int]:
    """A `created` container whose program (not yet run) is `sleep 100`, so it stays alive once
    started; returns (id, host pid of the container process)."""
    cid = cid or unique_id()
    bundle.args("sleep", "100")
    r = rt.create(cid, bundle)
    assert r.rc == 0, r
    return cid, int(rt.state(cid)["pid"])


def create_and_start(rt: Runtime, bundle: Bundle, cid: str | None = None) -> str:
    """create + start the bundle's configured program (the caller sets it); returns the id."""
    cid = cid or unique_id()
    r = rt.create(cid, bundle)
    assert r.rc == 0, r
    r = rt.cmd("start", cid)
    assert r.rc == 0, r
    return cid


def stopped(rt: Runtime, bundle: Bundle, cid: str | None = None) -> str:
    """A container whose program (the caller sets one that exits) has run and exited, so the
    runtime reports it `stopped`; returns the id."""
    cid = create_and_start(rt, bundle, cid)
    assert rt.wait_status(cid, "stopped")["status"] == "stopped"
    return cid


def create_fails(rt: Runtime, bundle: Bundle, cid: str | None = None) -> Result:
    """create of a config the runtime must refuse: it errors and no container exists under the
    id afterwards (the spec's errors leave the environment as if never attempted)."""
    cid = cid or unique_id()
    bundle.args("true")
    r = rt.create(cid, bundle)
    assert r.rc != 0, r
    st = rt.cmd("state", cid)
    assert st.rc != 0, st
    return r


def create_or_start_fails(rt: Runtime, bundle: Bundle) -> None:
    """For a config that can only be found wrong when the program is executed: the runtime may
    refuse it at create (validating early) or at start, but not both may succeed."""
    cid = unique_id()
    created = rt.create(cid, bundle).rc == 0
    assert not (created and rt.cmd("start", cid).rc == 0)
