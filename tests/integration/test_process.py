"""process.* and the per-process kernel settings, read back from inside the container."""

from __future__ import annotations

import platform
import subprocess
import time

import pytest
from harness import Bundle, Runtime, read_line, unique_id

pytestmark = pytest.mark.integration

CAP_NUMBERS = {
    "CAP_CHOWN": 0,
    "CAP_DAC_OVERRIDE": 1,
    "CAP_FOWNER": 3,
    "CAP_KILL": 5,
    "CAP_SETGID": 6,
    "CAP_SETUID": 7,
    "CAP_NET_BIND_SERVICE": 10,
    "CAP_NET_RAW": 13,
    "CAP_SYS_ADMIN": 21,
    "CAP_AUDIT_WRITE": 29,
}


def _status(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        k, sep, v = line.partition(":")
        if sep:
            out[k] = v.strip()
    return out


def _mask(names: list[str]) -> str:
    m = 0
    for n in names:
        m |= 1 << CAP_NUMBERS[n]
    return f"{m:016x}"


def test_args_env_cwd(rt: Runtime, bundle: Bundle) -> None:
    """args reach execve verbatim, env is exactly the config's (plus HOME), cwd is honoured."""
    bundle.process["env"] = ["PATH=/bin:/usr/bin", "FOO=bar baz", "EMPTY="]
    bundle.process["cwd"] = "/etc"
    bundle.args("sh", "-c", 'pwd; printf "%s|" "$@"; echo; env | sort', "argv0", "a b", "", "c")
    r = rt.run(unique_id(), bundle)
    assert r.rc == 0, r
    lines = r.out.splitlines()
    assert lines[0] == "/etc"
    assert lines[1] == "a b||c|"
    env = set(lines[2:])
    assert {"PATH=/bin:/usr/bin", "FOO=bar baz", "EMPTY=", "HOME=/root"} <= env
    assert not any(e.startswith("TERM=") for e in env)


@pytest.mark.parametrize(
    "readonly",
    [
        False,
        True,
    ],
)
def test_missing_cwd_is_created(rt: Runtime, bundle: Bundle, readonly: bool) -> None:
    """A cwd that does not exist in the rootfs is created (as runc does), read-only root or not
    (runc's default spec has a read-only root)."""
    bundle.config["root"]["readonly"] = readonly
    bundle.process["cwd"] = "/work/dir"
    r = rt.run_sh(bundle, "pwd")
    assert r.rc == 0, r
    assert r.out == "/work/dir\n"
    assert (bundle.rootfs / "work/dir").is_dir()


def test_user_uid_gid_additional_gids(rt: Runtime, bundle: Bundle) -> None:
    """uid, gid and additionalGids are what `id` reports (and nothing more)."""
    bundle.process["user"] = {"uid": 1000, "gid": 100, "additionalGids": [5, 65534]}
    r = rt.run_sh(bundle, "id -u; id -g; id -G; grep -E '^(Uid|Gid|Groups):' /proc/self/status")
    assert r.rc == 0, r
    lines = r.out.splitlines()
    assert lines[0] == "1000"
    assert lines[1] == "100"
    assert sorted(int(g) for g in lines[2].split()) == [5, 100, 65534]
    st = _status("\n".join(lines[3:]))
    assert st["Uid"].split() == ["1000"] * 4
    assert st["Gid"].split() == ["100"] * 4
    assert sorted(int(g) for g in st["Groups"].split()) == [5, 65534]


def test_umask(rt: Runtime, bundle: Bundle) -> None:
    """process.user.umask becomes the process umask."""
    bundle.process["user"]["umask"] = 0o077
    r = rt.run_sh(bundle, "grep Umask /proc/self/status; umask")
    assert r.rc == 0, r
    assert r.out.split() == ["Umask:", "0077", "0077"]


def test_default_umask(rt: Runtime, bundle: Bundle) -> None:
    """Without a umask in the config the process gets runc's 0022."""
    r = rt.run_sh(bundle, "umask")
    assert r.out.strip() == "0022", r


def test_rlimits(rt: Runtime, bundle: Bundle) -> None:
    """process.rlimits set soft and hard limits."""
    bundle.process["rlimits"] = [
        {"type": "RLIMIT_NOFILE", "soft": 512, "hard": 777},
        {"type": "RLIMIT_NPROC", "soft": 300, "hard": 400},
    ]
    r = rt.run_sh(bundle, "ulimit -Sn; ulimit -Hn; grep -E 'files|processes' /proc/self/limits")
    assert r.rc == 0, r
    lines = r.out.splitlines()
    assert lines[:2] == ["512", "777"]
    files = next(ln for ln in lines if ln.startswith("Max open files")).split()
    assert files[3:5] == ["512", "777"]
    procs = next(ln for ln in lines if ln.startswith("Max processes")).split()
    assert procs[2:4] == ["300", "400"]


def test_oom_score_adj(rt: Runtime, bundle: Bundle) -> None:
    """process.oomScoreAdj is written for the container process."""
    bundle.process["oomScoreAdj"] = 345
    r = rt.run_sh(bundle, "cat /proc/self/oom_score_adj")
    assert r.out.strip() == "345", r


@pytest.mark.parametrize("nnp", [True, False])
def test_no_new_privileges(rt: Runtime, bundle: Bundle, nnp: bool) -> None:
    """noNewPrivileges sets (and only then) the NoNewPrivs bit."""
    bundle.process["noNewPrivileges"] = nnp
    r = rt.run_sh(bundle, "grep NoNewPrivs /proc/self/status")
    assert r.out.split() == ["NoNewPrivs:", "1" if nnp else "0"], r


def test_capabilities_of_container_process(rt: Runtime, bundle: Bundle) -> None:
    """The process the runtime execs holds exactly the configured sets (uid 0: execve gives
    root the bounding set as permitted/effective, so those equal it here)."""
    bnd = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SETUID", "CAP_SYS_ADMIN"]
    caps = {
        "bounding": bnd,
        "effective": list(bnd),
        "permitted": list(bnd),
        "inheritable": ["CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SETUID"],
        "ambient": ["CAP_KILL", "CAP_NET_BIND_SERVICE"],
    }
    bundle.process["capabilities"] = caps
    # grep is the container's process itself (no shell in between) and reads its own status
    bundle.args("grep", "^Cap", "/proc/self/status")
    r = rt.run(unique_id(), bundle)
    assert r.rc == 0, r
    st = _status(r.out)
    assert st["CapBnd"] == _mask(caps["bounding"])
    assert st["CapInh"] == _mask(caps["inheritable"])
    assert st["CapAmb"] == _mask(caps["ambient"])
    assert st["CapPrm"] == _mask(caps["permitted"])
    assert st["CapEff"] == _mask(caps["effective"])


def test_capabilities_non_root_user(rt: Runtime, bundle: Bundle) -> None:
    """A non-root user keeps its configured caps across the uid change and execve (keep-caps,
    then ambient, which is all a non-root process keeps through execve)."""
    bnd = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SETUID"]
    names = ["CAP_KILL", "CAP_NET_BIND_SERVICE"]
    bundle.process["user"] = {"uid": 1000, "gid": 1000}
    bundle.process["capabilities"] = {
        "bounding": bnd,
        **{k: list(names) for k in ("effective", "permitted", "inheritable", "ambient")},
    }
    bundle.args("grep", "^Cap", "/proc/self/status")
    r = rt.run(unique_id(), bundle)
    assert r.rc == 0, r
    st = _status(r.out)
    assert st["CapBnd"] == _mask(bnd)
    for key in ("CapInh", "CapAmb", "CapPrm", "CapEff"):
        assert st[key] == _mask(names), key


def test_hostname_and_domainname(rt: Runtime, bundle: Bundle) -> None:
    """hostname and domainname are set in the container's UTS namespace."""
    bundle.config["hostname"] = "box"
    bundle.config["domainname"] = "example.test"
    r = rt.run_sh(bundle, "hostname; cat /proc/sys/kernel/domainname")
    assert r.rc == 0, r
    assert r.out.splitlines() == ["box", "example.test"]
    with open("/proc/sys/kernel/domainname") as f:
        assert f.read().strip() != "example.test"


def test_sysctl_in_new_netns(rt: Runtime, bundle: Bundle) -> None:
    """linux.sysctl writes namespaced sysctls inside the container, not on the host."""
    with open("/proc/sys/net/ipv4/ip_forward") as f:
        host_before = f.read()
    bundle.linux["sysctl"] = {"net.ipv4.ip_forward": "1", "kernel.shmmni": "1234"}
    r = rt.run_sh(bundle, "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmni")
    assert r.rc == 0, r
    assert r.out.split() == ["1", "1234"]
    with open("/proc/sys/net/ipv4/ip_forward") as f:
        assert f.read() == host_before


def test_personality_linux32(rt: Runtime, bundle: Bundle) -> None:
    """linux.personality LINUX32 makes uname report a 32-bit machine."""
    if platform.machine() != "x86_64":
        pytest.skip("expected 32-bit name known only for x86_64")
    bundle.linux["personality"] = {"domain": "LINUX32"}
    r = rt.run_sh(bundle, "uname -m")
    assert r.out.strip() == "i686", r


def test_stdin_passthrough(rt: Runtime, bundle: Bundle) -> None:
    """`echo hi | runtime run` feeds the container's stdin."""
    bundle.args("cat")
    r = rt.run(unique_id(), bundle, input="hi\n")
    assert r.rc == 0, r
    assert r.out == "hi\n"


def test_stdio_is_interactive(rt: Runtime, bundle: Bundle) -> None:
    """Output arrives while the container still runs (nothing buffers it), and input can
    depend on it: a prompt/answer exchange over the runtime's stdin and stdout."""
    cid = unique_id()
    bundle.sh("echo ready; read line; echo got:$line")
    bundle.save()
    p = subprocess.Popen(
        rt.argv("run", "--bundle", str(bundle.path), cid),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    rt.ids.append(cid)
    try:
        assert p.stdout is not None and p.stdin is not None
        assert read_line(p.stdout.fileno(), 20) == b"ready\n"
        assert p.poll() is None  # still waiting for our answer
        p.stdin.write(b"ping\n")
        p.stdin.close()
        assert read_line(p.stdout.fileno(), 20) == b"got:ping\n"
        assert p.wait(timeout=20) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        if p.stdout is not None:
            p.stdout.close()


def test_stderr_separate(rt: Runtime, bundle: Bundle) -> None:
    """The container's stderr is the runtime's stderr, not mixed into stdout."""
    r = rt.run_sh(bundle, "echo out; echo err >&2")
    assert r.rc == 0, r
    assert r.out == "out\n"
    assert r.err.strip().endswith("err")
    assert "out" not in r.err


@pytest.mark.parametrize(
    "key,drop_ns",
    [("kernel.printk_ratelimit", None), ("net.core.somaxconn", "network")],
)
def test_sysctl_outside_container_namespaces_refused(
    rt: Runtime, bundle: Bundle, key: str, drop_ns: str | None
) -> None:
    """A sysctl that would land on the host (global, or net.* without a network namespace)
    is refused and the host's value stays as it was."""
    path = "/proc/sys/" + key.replace(".", "/")
    with open(path) as f:
        before = f.read().strip()
    new = str(int(before.split()[0]) + 1)
    if drop_ns:
        bundle.linux["namespaces"] = [n for n in bundle.linux["namespaces"] if n["type"] != drop_ns]
    bundle.linux["sysctl"] = {key: new}
    try:
        r = rt.run_sh(bundle, "true")
        with open(path) as f:
            after = f.read().strip()
        assert after == before, f"host {key} changed from {before} to {after}"
        assert r.rc != 0
        assert key in r.err
    finally:
        with open(path, "w") as f:
            f.write(before)


def _ignored(status: str) -> set[int]:
    mask = int(next(ln for ln in status.splitlines() if ln.startswith("SigIgn:")).split()[1], 16)
    return {sig for sig in range(1, 65) if mask & (1 << (sig - 1))}


def _read_when_written(rt: Runtime, cid: str, path: str) -> str:
    """What a detached process wrote to a file in the container (a line ending in newline)."""
    out = ""
    deadline = time.monotonic() + 10
    while not out.endswith("\n") and time.monotonic() < deadline:
        out = rt.cmd("exec", cid, "cat", path).out
        time.sleep(0.05)
    return out


@pytest.mark.parametrize("how", ["run", "run -d", "exec", "exec -d"])
def test_container_process_does_not_inherit_ignored_signals(
    rt: Runtime, bundle: Bundle, how: str
) -> None:
    """Python ignores SIGPIPE and SIGXFSZ, and execve keeps ignored signals ignored: the
    container's program must start with them at their defaults, as under runc, however it
    was started. Read from /proc/self/status by the program itself (sh keeps what it
    inherits ignored, and ignores only SIGQUIT of its own)."""
    script = "grep SigIgn /proc/self/status > /dev/shm/sigs; sleep 1000"
    cid = unique_id()
    if how == "run":
        r = rt.run(cid, bundle.args("grep", "SigIgn", "/proc/self/status"))
        assert r.rc == 0, r
        assert not _ignored(r.out) & {13, 25}, r.out
        return
    bundle.process["args"] = ["sh", "-c", script if how == "run -d" else "sleep 1000"]
    bundle.save()
    r = rt.detached("run", "-d", "--bundle", str(bundle.path), cid, cid=cid)
    assert r.rc == 0, r
    if how == "exec":
        r = rt.cmd("exec", cid, "grep", "SigIgn", "/proc/self/status")
        assert r.rc == 0, r
        status = r.out
    else:
        if how == "exec -d":
            r = rt.detached("exec", "-d", cid, "sh", "-c", script, cid=cid)
            assert r.rc == 0, r
        status = _read_when_written(rt, cid, "/dev/shm/sigs")
    assert "SigIgn" in status
    assert not _ignored(status) & {13, 25}, status


def test_file_size_limit_kills_with_sigxfsz(rt: Runtime, bundle: Bundle) -> None:
    """With RLIMIT_FSIZE a write past the limit kills the writer with SIGXFSZ (status 153 in
    sh), as on the host; with the signal inherited as ignored it gets EFBIG instead. Detached,
    because a foreground `run` handled every signal and so hid the bug."""
    bundle.process["rlimits"] = [{"type": "RLIMIT_FSIZE", "soft": 1024, "hard": 1024}]
    bundle.process["args"] = [
        "sh", "-c", "head -c 4096 /dev/zero > /dev/shm/f; echo rc=$? > /dev/shm/rc; sleep 1000"
    ]
    bundle.save()
    cid = unique_id()
    r = rt.detached("run", "-d", "--bundle", str(bundle.path), cid, cid=cid)
    assert r.rc == 0, r
    out = _read_when_written(rt, cid, "/dev/shm/rc")
    assert out.strip() == "rc=153", out


@pytest.mark.parametrize("nnp", [False, True])
def test_profile_that_denies_getcwd(rt: Runtime, bundle: Bundle, nnp: bool) -> None:
    """A seccomp profile may deny getcwd (or anything else the runtime calls after loading
    it): the CVE-2024-21626 check of the working directory runs before the filter, so the
    container starts, and getcwd inside is denied as the profile says."""
    bundle.process["noNewPrivileges"] = nnp
    bundle.process["cwd"] = "/tmp"
    bundle.linux["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}],
    }
    r = rt.run_sh(bundle, "echo started; /bin/pwd -P 2>&1; echo rc=$?")
    assert r.rc == 0, r
    lines = r.out.splitlines()
    assert lines[0] == "started"
    assert "Operation not permitted" in lines[1], r.out
    assert lines[-1] != "rc=0"
