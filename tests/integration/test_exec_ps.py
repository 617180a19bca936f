"""exec and ps against a running container: what runc's tests and containerd's shim rely on."""

from __future__ import annotations

import json

import pytest
from harness import Bundle, Runtime, running, unique_id

pytestmark = pytest.mark.integration


def test_exec_joins_the_container(rt: Runtime, bundle: Bundle) -> None:
    """The exec'd process sees the init's pid namespace (init is pid 1, sleep) and hostname."""
    cid = running(rt, bundle)
    r = rt.cmd("exec", cid, "sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '; echo; hostname")
    assert r.rc == 0, r
    lines = r.out.splitlines()
    assert lines[0].strip() == "sleep 1000"
    assert lines[1] == bundle.config.get("hostname", "runc")


def test_exec_exit_codes(rt: Runtime, bundle: Bundle) -> None:
    """The process's status, or 255 for exec's own failures (as runc)."""
    cid = running(rt, bundle)
    assert rt.cmd("exec", cid, "sh", "-c", "exit 42").rc == 42
    assert rt.cmd("exec", cid, "no-such-binary").rc == 255
    assert rt.cmd("exec", "no-such-container", "true").rc == 255
    bad = rt.cmd("exec", "--cgroup", "..", cid, "true")
    assert bad.rc == 255 and "is not a sub cgroup path" in bad.err


def test_exec_user_env_cwd(rt: Runtime, bundle: Bundle) -> None:
    cid = running(rt, bundle)
    r = rt.cmd("exec", "-u", "1000:100", "-e", "X=y", "--cwd", "/tmp", cid, "sh", "-c",
               "id -u; id -g; echo $X; pwd")
    assert r.rc == 0, r
    assert r.out.split() == ["1000", "100", "y", "/tmp"]


def test_ps_lists_the_container_processes(rt: Runtime, bundle: Bundle) -> None:
    cid = running(rt, bundle)
    pid = rt.state(cid)["pid"]
    r = rt.cmd("ps", "-f", "json", cid)
    assert r.rc == 0, r
    assert json.loads(r.out) == [pid]
    r = rt.cmd("ps", cid)
    assert r.rc == 0, r
    header, *rows = r.out.splitlines()
    assert header.split()[:2] == ["UID", "PID"]
    assert [int(row.split()[1]) for row in rows] == [pid]


def test_runtime_side_of_the_container_is_not_dumpable_until_exec(
    rt: Runtime, bundle: Bundle
) -> None:
    """A created container's init is still the runtime (Python, waiting for `start`), already
    running as the container's user with the container's capabilities. Another process of the
    container (same uid 0, same caps, no CAP_SYS_PTRACE) must not be able to read its
    environment or /proc/<pid>/exe until it has exec'd the container's program
    (CVE-2019-5736 class); after start it can, as with any process. (Root, because a uid
    change alone would make the kernel clear the dumpable flag for us.)"""
    cid = unique_id()
    bundle.process["args"] = ["sleep", "1000"]
    bundle.process["env"].append("SECRET=init-env")
    assert rt.create(cid, bundle).rc == 0
    probe = (
        "cat /proc/1/environ >/dev/null 2>&1 && echo environ-read; "
        "readlink /proc/1/exe >/dev/null 2>&1 && echo exe-read; true"
    )
    before = rt.cmd("exec", cid, "sh", "-c", probe)
    assert before.rc == 0, before
    assert before.out == "", before  # neither was reachable
    assert rt.cmd("start", cid).rc == 0
    after = rt.cmd("exec", cid, "sh", "-c", probe)
    assert after.out.split() == ["environ-read", "exe-read"], after  # the test can see access


def _stat_of_sh(rt: Runtime, cid: str, *flags: str) -> list[str]:
    """/proc/self/stat of the exec'd sh itself (read by a builtin, not by a child)."""
    r = rt.cmd("exec", *flags, cid, "sh", "-c", "read -r l < /proc/self/stat; echo $l")
    assert r.rc == 0, r
    return r.out.split()


def test_exec_process_has_a_session_of_its_own(rt: Runtime, bundle: Bundle) -> None:
    """Without a terminal too, the exec'd process leads a new session (runc setsids): left in
    the caller's session it could open the caller's terminal and push input into it with
    TIOCSTI (CVE-2016-9962 class). Field 6 of stat is the session id, 0 when the session's
    leader is outside the container's PID namespace."""
    cid = running(rt, bundle)
    stat = _stat_of_sh(rt, cid)
    assert stat[5] == stat[0], stat  # sid == its own pid


def test_exec_applies_the_containers_oom_score_adj(rt: Runtime, bundle: Bundle) -> None:
    """An exec'd process gets the container's process.oomScoreAdj (as runc), not the caller's:
    a shim with a very low score would otherwise make exec'd processes nearly unkillable."""
    bundle.process["oomScoreAdj"] = 100
    cid = running(rt, bundle)
    r = rt.cmd("exec", cid, "cat", "/proc/self/oom_score_adj")
    assert r.rc == 0, r
    assert r.out.strip() == "100", r


def test_supplementary_groups_are_only_additional_gids(rt: Runtime, bundle: Bundle) -> None:
    """The groups are exactly user.additionalGids (or exec's --additional-gids), never the
    image's /etc/group, which would let whoever built the image grant its user e.g. `disk`."""
    etc = bundle.rootfs / "etc"
    etc.mkdir(exist_ok=True)
    (etc / "passwd").write_text("root:x:0:0::/root:/bin/sh\ntester:x:1000:1000::/tmp:/bin/sh\n")
    (etc / "group").write_text("root:x:0:\ndisk:x:6:tester\naudio:x:29:tester\n")
    bundle.process["user"] = {"uid": 1000, "gid": 1000, "additionalGids": [20]}
    cid = running(rt, bundle)
    r = rt.cmd("exec", cid, "grep", "Groups", "/proc/1/status")
    assert r.rc == 0, r
    assert r.out.split()[1:] == ["20"], r
    # exec starts from the container's process: its additionalGids stay unless overridden
    r = rt.cmd("exec", "--user", "1000:1000", cid, "grep", "Groups", "/proc/self/status")
    assert r.out.split()[1:] == ["20"], r
    r = rt.cmd(
        "exec", "--user", "1000:1000", "--additional-gids", "10", cid,
        "grep", "Groups", "/proc/self/status",
    )
    assert sorted(r.out.split()[1:]) == ["10", "20"], r  # added to the container's, as runc
