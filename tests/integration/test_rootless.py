"""pyrunc run by an unprivileged user (rootless): a real user the tests create, with its own
/etc/subuid and /etc/subgid ranges, drives pyrunc with no --root (so $XDG_RUNTIME_DIR/pyrunc)
through run, create/start/state/kill/delete, exec, a tty, bind mounts, subordinate-id maps
(newuidmap/newgidmap), cgroups skipped or delegated, and bad configs. What the container sees
is read from inside it; what is left behind is read from the host.

The venv under test may sit where that user cannot reach it (/root is 0700), so each command
runs in a private mount namespace of its own where the venv is bind-mounted onto a directory
the user can traverse; nothing of that outlives the command.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import Bundle, Result, Runtime, copy_bundle, pyrunc_binary, unique_id

pytestmark = pytest.mark.integration

USER = "pyrunc-rltest"
SUB_START, SUB_LEN = 460000, 65536  # (a range of ours: overlapping another user's is harmless)
CGROUP_ROOT = Path("/sys/fs/cgroup")


class User:
    def __init__(self, name: str, base: Path) -> None:
        pw = pwd.getpwnam(name)
        self.name, self.uid, self.gid = name, pw.pw_uid, pw.pw_gid
        self.base = base
        self.xdg = base / "xdg"
        self.state = self.xdg / "pyrunc"


class _SubidLock:
    """The lock shadow's tools (useradd, usermod, userdel) take before they rewrite
    /etc/subuid or /etc/subgid: FILE.lock, a hard link to a file holding the locker's pid."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.tmp = f"{path}.{os.getpid()}"

    def __enter__(self) -> None:
        Path(self.tmp).write_text(f"{os.getpid()}\n")
        deadline = time.monotonic() + 10
        while True:
            try:
                os.link(self.tmp, self.path + ".lock")
                return
            except FileExistsError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def __exit__(self, *exc: object) -> None:
        os.unlink(self.path + ".lock")
        os.unlink(self.tmp)


def _edit_subids(path: str, line: str, add: bool) -> None:
    """Add or remove our one line, leaving every other line as it is now (others, such as the
    rootless bats harness, may edit the file while we run)."""
    with _SubidLock(path):
        lines = Path(path).read_text().splitlines() if os.path.exists(path) else []
        lines = [ln for ln in lines if ln != line] + ([line] if add else [])
        Path(path).write_text("".join(ln + "\n" for ln in lines))


@pytest.fixture(scope="module")
def user() -> Iterator[User]:
    if not shutil.which("newuidmap") or not shutil.which("setpriv"):
        pytest.skip("needs newuidmap/newgidmap (uidmap) and setpriv (util-linux)")
    made = False
    try:
        pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "--no-create-home", "--shell", "/bin/sh", USER], check=True)
        made = True
    line = f"{USER}:{SUB_START}:{SUB_LEN}"
    for p in ("/etc/subuid", "/etc/subgid"):
        _edit_subids(p, line, add=True)
    base = Path(tempfile.mkdtemp(prefix="pyrunc-rl-", dir="/tmp"))
    base.chmod(0o755)
    u = User(USER, base)
    u.xdg.mkdir(mode=0o700)
    os.chown(u.xdg, u.uid, u.gid)
    (base / "venv").mkdir()
    try:
        yield u
    finally:
        for p in ("/etc/subuid", "/etc/subgid"):
            _edit_subids(p, line, add=False)
        shutil.rmtree(base, ignore_errors=True)
        if made:
            subprocess.run(["userdel", USER], check=False)


class UserRuntime(Runtime):
    """pyrunc as `user`, with no --root unless one is given: every call in its own private
    mount namespace where the venv under test is bound onto a path the user can reach."""

    def __init__(self, user: User, root: Path | None = None, env: dict | None = None,
                 v2_cgroup: str = "") -> None:
        """v2_cgroup: run as on a cgroup v2-only host (tools/v2only.sh's trick: the cgroup2
        tree mounted at /sys/fs/cgroup), from inside that cgroup."""
        self.v2_cgroup = v2_cgroup
        binary = Path(pyrunc_binary()).resolve()
        venv = binary.parent.parent
        self.bind = (venv, user.base / "venv") if (venv / "pyvenv.cfg").exists() else None
        inner = user.base / "venv" / "bin" / binary.name if self.bind else binary
        super().__init__(str(inner), root or user.state, user.base)
        self.user = user
        self.no_root = root is None
        self.env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(user.base),
                    "USER": user.name, "XDG_RUNTIME_DIR": str(user.xdg), **(env or {})}

    def as_user(self, *argv: str) -> list[str]:
        u = self.user
        env = [f"{k}={v}" for k, v in self.env.items() if v is not None]
        cmd = ["setpriv", f"--reuid={u.uid}", f"--regid={u.gid}", "--init-groups",
               "env", "-i", *env, *argv]
        if self.bind is None and not self.v2_cgroup:
            return cmd
        venv, mnt = self.bind or ("", "")
        return ["unshare", "--mount", "--propagation", "private", "--", "sh", "-ec", """
            if [ -n "$1" ]; then
                umount -R /sys/fs/cgroup
                mount -t cgroup2 cgroup2 /sys/fs/cgroup
                echo $$ > "/sys/fs/cgroup$1/cgroup.procs"
            fi
            if [ -n "$2" ]; then mount --bind "$2" "$3"; fi
            shift 3
            exec "$@"
            """, "sh", self.v2_cgroup, str(venv), str(mnt), *cmd]

    def argv(self, *args: str) -> list[str]:
        root = [] if self.no_root else ["--root", str(self.root)]
        return self.as_user(self.binary, *root, *args)

    def sh(self, script: str, timeout: float = 30) -> Result:
        p = subprocess.run(self.as_user("sh", "-c", script), capture_output=True, text=True,
                           stdin=subprocess.DEVNULL, timeout=timeout)
        return Result(p.returncode, p.stdout, p.stderr)


def _user_bundle(src: Bundle, user: User, name: str) -> Bundle:
    """busybox with `pyrunc spec --rootless`'s config (made by the user: runs as is)."""
    d = user.base / name
    b = copy_bundle(src, d)
    os.chown(d, user.uid, user.gid)
    (d / "config.json").unlink()
    return b


@pytest.fixture
def urt(user: User) -> Iterator[UserRuntime]:
    r = UserRuntime(user)
    yield r
    r.cleanup()
    # nothing of the user's may outlive its containers (a test user: all of them are ours)
    left = _user_pids(user)
    for pid in left:
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass
    assert not left, f"processes of {user.name} left behind: {left}"
    assert not user.state.exists() or not os.listdir(user.state)


def _user_pids(user: User) -> list[int]:
    """The user's live processes (a zombie the host's init has yet to reap is not one)."""
    out = []
    ids = range(SUB_START, SUB_START + SUB_LEN)
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                uid = os.stat(f"/proc/{name}").st_uid
                if uid != user.uid and uid not in ids:
                    continue
                with open(f"/proc/{name}/stat", "rb") as f:
                    if f.read().rsplit(b")", 1)[1].split()[0] != b"Z":
                        out.append(int(name))
            except OSError:
                pass
    return out


@pytest.fixture
def ubundle(bundle: Bundle, user: User, urt: UserRuntime) -> Bundle:
    b = _user_bundle(bundle, user, unique_id("b"))
    r = urt.sh(f"cd {b.path} && {urt.binary} spec --rootless")
    assert r.rc == 0, r
    b.config = json.loads((b.path / "config.json").read_text())
    b.process["terminal"] = False
    b.config["root"]["readonly"] = False
    return b


def _mounts() -> int:
    with open("/proc/self/mountinfo") as f:
        return len(f.readlines())


def _subid_maps(b: Bundle) -> None:
    """Container 0 is the user; 1000.. are its /etc/subuid range (runc's rootless_idmap)."""
    b.linux["uidMappings"].append({"containerID": 1000, "hostID": SUB_START, "size": SUB_LEN})
    b.linux["gidMappings"].append({"containerID": 1000, "hostID": SUB_START, "size": SUB_LEN})


def test_spec_rootless_runs_as_is(user: User, urt: UserRuntime, bundle: Bundle) -> None:
    """`pyrunc spec --rootless` as the user, then `run` of it unchanged (a terminal: `sh`)."""
    b = _user_bundle(bundle, user, "asis")
    cid = unique_id()
    urt._track(cid)
    script = (f"cd {b.path} && {urt.binary} spec --rootless && "
              f"(sleep 1; printf 'cat /proc/self/uid_map; id -u; exit 3\\n'; sleep 5) | "
              f"script -qec '{urt.binary} run {cid}' /dev/null")
    r = urt.sh(script)
    assert r.rc == 3, r
    assert f"0 {user.uid} 1" in " ".join(r.out.split()), r
    assert os.stat(b.path / "config.json").st_uid == user.uid


def test_run_in_a_user_namespace_of_the_callers_id(urt: UserRuntime, ubundle: Bundle,
                                                   user: User) -> None:
    before = _mounts()
    ubundle.sh("id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map; "
               "grep CapEff /proc/self/status; cat /proc/self/setgroups; "
               "echo x > /dev/null && echo null-ok; mknod /tmp/n c 1 3 2>/dev/null || "
               "echo mknod-refused; ls /sys/class/net >/dev/null && echo sys-ok")
    r = urt.run(unique_id(), ubundle)
    assert r.rc == 0, r
    lines = [" ".join(ln.split()) for ln in r.out.splitlines()]
    assert lines[:4] == ["0", "0", f"0 {user.uid} 1", f"0 {user.gid} 1"], r
    # spec --rootless's capabilities (AUDIT_WRITE, KILL, NET_BIND_SERVICE), as runc's
    assert lines[4] == "CapEff: 0000000020000420", r
    assert lines[5] == "deny", r  # one own-id gid map: the kernel's price
    assert lines[6:] == ["null-ok", "mknod-refused", "sys-ok"], r
    # state under $XDG_RUNTIME_DIR/pyrunc (no --root), gone with the container
    assert user.state.is_dir() and os.stat(user.state).st_mode & 0o1000
    assert os.listdir(user.state) == [] and _mounts() == before


def test_lifecycle_and_exec(urt: UserRuntime, ubundle: Bundle, user: User) -> None:
    ubundle.process["args"] = ["sleep", "1000"]
    cid = unique_id()
    r = urt.create(cid, ubundle)
    assert r.rc == 0, r
    st = urt.state(cid)
    assert st["status"] == "created" and (user.state / cid).is_dir()
    r = urt.cmd("exec", cid, "cat", "/proc/self/uid_map")  # into the waiting init's namespaces
    assert r.rc == 0 and r.out.split() == ["0", str(user.uid), "1"], r
    assert os.stat(f"/proc/{st['pid']}").st_uid == user.uid
    assert urt.cmd("start", cid).rc == 0
    assert urt.wait_status(cid, "running")["status"] == "running"
    r = urt.cmd("exec", cid, "sh", "-c", "id -u; cat /proc/1/cmdline | tr '\\0' ' '")
    assert r.rc == 0 and r.out.split("\n")[:2] == ["0", "sleep 1000 "], r
    ls = urt.cmd("list", "--format", "json")
    assert ls.rc == 0 and [c["id"] for c in json.loads(ls.out)] == [cid], ls
    assert json.loads(ls.out)[0]["owner"] == user.name
    # no cgroup of its own: ps finds its processes by PID namespace
    ps = urt.cmd("ps", "--format", "json", cid)
    assert ps.rc == 0 and json.loads(ps.out) == [st["pid"]], ps
    assert urt.cmd("kill", cid, "KILL").rc == 0
    assert urt.wait_status(cid, "stopped")["status"] == "stopped"
    assert urt.cmd("delete", cid).rc == 0
    assert not (user.state / cid).exists()


def test_exec_with_a_tty(urt: UserRuntime, ubundle: Bundle) -> None:
    ubundle.process["args"] = ["sleep", "1000"]
    cid = unique_id()
    assert urt.create(cid, ubundle).rc == 0 and urt.cmd("start", cid).rc == 0
    r = urt.sh(f"script -qec '{urt.binary} exec -t {cid} sh -c \"tty; echo tty-rc=\\$?\"' "
               "/dev/null")
    assert r.rc == 0 and "/dev/pts/0" in r.out and "tty-rc=0" in r.out, r


def test_kill_all_and_delete_force_without_a_cgroup(urt: UserRuntime, ubundle: Bundle,
                                                    user: User) -> None:
    ubundle.sh("sleep 1000 & sleep 1000 & wait")
    ubundle.save()
    cid = unique_id()
    assert urt.detached("run", "-d", "--bundle", str(ubundle.path), cid, cid=cid).rc == 0
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        pids = json.loads(urt.cmd("ps", "--format", "json", cid).out)
        if len(pids) == 3:
            break
        time.sleep(0.05)
    assert len(pids) == 3, pids
    assert urt.cmd("kill", "--all", cid, "KILL").rc == 0
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(os.path.exists(f"/proc/{p}") for p in pids):
        time.sleep(0.05)
    assert not any(os.path.exists(f"/proc/{p}/status") and
                   "zombie" not in Path(f"/proc/{p}/status").read_text() for p in pids)
    assert urt.cmd("delete", "-f", cid).rc == 0


def test_bind_mount_of_a_users_directory(urt: UserRuntime, ubundle: Bundle,
                                         user: User) -> None:
    share = user.base / unique_id("share")
    share.mkdir()
    (share / "from-host").write_text("hello\n")
    os.chown(share, user.uid, user.gid)
    os.chown(share / "from-host", user.uid, user.gid)
    ubundle.add_mount("/mnt", str(share), "bind", ["rbind", "rw"])
    (ubundle.rootfs / "mnt").mkdir(exist_ok=True)  # (the rootfs is root's: the user can't)
    ubundle.sh("stat -c %u:%g /mnt/from-host; cat /mnt/from-host; echo made > /mnt/inside")
    r = urt.run(unique_id(), ubundle)
    assert r.rc == 0 and r.out.splitlines() == ["0:0", "hello"], r
    st = os.stat(share / "inside")
    assert (st.st_uid, st.st_gid) == (user.uid, user.gid)


def test_subordinate_ids_through_newuidmap(urt: UserRuntime, ubundle: Bundle,
                                           user: User) -> None:
    """Maps beyond the user's own id go through newuidmap/newgidmap and /etc/sub{u,g}id."""
    _subid_maps(ubundle)
    ubundle.process["args"] = ["sleep", "1000"]
    cid = unique_id()
    assert urt.create(cid, ubundle).rc == 0 and urt.cmd("start", cid).rc == 0
    r = urt.cmd("exec", "--user", "1000:1000", cid, "sh", "-c",
                "id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map")
    assert r.rc == 0, r
    lines = [" ".join(ln.split()) for ln in r.out.splitlines()]
    assert lines == ["1000", "1000", f"0 {user.uid} 1", f"1000 {SUB_START} {SUB_LEN}",
                     f"0 {user.gid} 1", f"1000 {SUB_START} {SUB_LEN}"], r
    # and on the host, that process is the subordinate id
    pidfile = user.xdg / f"{cid}.pid"  # (somewhere the user may write)
    r = urt.detached("exec", "-d", "--pid-file", str(pidfile), "--user", "1001", cid, "sleep",
                     "1000", cid=cid)
    assert r.rc == 0, r
    pid = int(pidfile.read_text())
    uids = Path(f"/proc/{pid}/status").read_text().split("Uid:")[1].split()[:4]
    assert uids == [str(SUB_START + 1)] * 4


def test_bad_configs_fail_in_one_line_and_leave_nothing(urt: UserRuntime, ubundle: Bundle,
                                                        user: User) -> None:
    before = _mounts()
    cgs = {d: set(os.listdir(d)) for d in (CGROUP_ROOT / "pids", CGROUP_ROOT / "unified")}

    def bad(edit: object, want: str) -> None:
        b = copy_bundle(ubundle, user.base / unique_id("bad"))
        edit(b)  # type: ignore[operator]
        cid = unique_id()
        r = urt.run(cid, b)
        assert r.rc != 0 and len(r.err.strip().splitlines()) == 1 and want in r.err, (want, r)
        assert "Traceback" not in r.err
        assert not (user.state / cid).exists()

    def no_userns(b: Bundle) -> None:
        b.linux["namespaces"] = [n for n in b.linux["namespaces"] if n["type"] != "user"]

    def unmapped_range(b: Bundle) -> None:
        b.linux["uidMappings"].append({"containerID": 1, "hostID": 9000000, "size": 10})

    def groups(b: Bundle) -> None:
        b.process["user"]["additionalGids"] = [5]

    def cgroup_path(b: Bundle) -> None:
        b.linux["cgroupsPath"] = f"/{unique_id('nodeleg')}"

    def limits(b: Bundle) -> None:
        b.linux["resources"] = {"pids": {"limit": 10}}

    def mount_uid(b: Bundle) -> None:
        b.add_mount("/t", "tmpfs", "tmpfs", ["uid=5"])

    def idmapped(b: Bundle) -> None:
        b.config["mounts"].append({"destination": "/m", "type": "bind", "source": "/tmp",
                                   "options": ["bind", "idmap"]})

    def oom(b: Bundle) -> None:
        b.process["oomScoreAdj"] = -500

    def rlimit(b: Bundle) -> None:
        b.process["rlimits"] = [{"type": "RLIMIT_NOFILE", "hard": 1 << 40, "soft": 1024}]

    bad(oom, "process.oomScoreAdj: writing -500 to /proc/self/oom_score_adj: Permission")
    bad(rlimit, "process.rlimits: error setting rlimit type RLIMIT_NOFILE")
    bad(no_userns, "linux.namespaces: rootless container requires user namespaces")
    bad(unmapped_range, "linux.uidMappings: newuidmap refused the map")
    bad(groups, "process.user.additionalGids: cannot set any additional groups")
    bad(cgroup_path, "linux.cgroupsPath: unable to apply cgroup configuration: cannot create")
    bad(limits, "cannot set pids limit")
    bad(mount_uid, "mounts[7].options: cannot specify uid=5 mount option")
    bad(idmapped, "idmapped mounts need root")
    # no XDG_RUNTIME_DIR and no --root: /run/pyrunc is root's
    r = UserRuntime(user, env={"XDG_RUNTIME_DIR": None}).run(unique_id(), ubundle)
    assert r.rc == 1 and "--root: cannot create the state directory /run/pyrunc" in r.err, r
    assert _mounts() == before
    assert {d: set(os.listdir(d)) for d in cgs} == cgs


@pytest.fixture
def delegated(user: User) -> Iterator[str]:
    """v1 cgroups the user may create children in (runc's rootless.sh enable_cgroup)."""
    name = unique_id("rl")
    made = []
    ctrls = {c.removeprefix("name=") for line in Path("/proc/self/cgroup").read_text().split()
             for c in line.split(":")[1].split(",") if c}
    for ctrl in sorted(ctrls):
        d = CGROUP_ROOT / ctrl / name
        if not (CGROUP_ROOT / ctrl).is_dir():
            continue
        d.mkdir()
        made.append(d)
        for f in (d, d / "cgroup.procs", d / "tasks"):
            os.chown(f, 0, user.gid)
            f.chmod(0o775 if f == d else 0o664)
        if ctrl == "cpuset":  # (its children copy these: the user must be able to)
            for f in ("cpuset.cpus", "cpuset.mems"):
                os.chown(d / f, user.uid, user.gid)
    yield name
    for d in made:
        for sub in sorted(d.iterdir(), reverse=True):
            if sub.is_dir():
                sub.rmdir()
        d.rmdir()


def test_delegated_cgroup_is_used(urt: UserRuntime, ubundle: Bundle, delegated: str) -> None:
    ubundle.linux["cgroupsPath"] = f"/{delegated}/c"
    ubundle.linux["resources"] = {"pids": {"limit": 42}}
    ubundle.process["args"] = ["sleep", "1000"]
    cid = unique_id()
    assert urt.create(cid, ubundle).rc == 0 and urt.cmd("start", cid).rc == 0
    r = urt.cmd("exec", cid, "sh", "-c", "grep -E ':pids:|:freezer:' /proc/self/cgroup; "
                                         "cat /sys/fs/cgroup/pids/pids.max")
    assert r.rc == 0, r
    lines = r.out.split()
    assert len(lines) == 3 and all(ln.endswith(f":/{delegated}/c") for ln in lines[:2]), r
    assert lines[2] == "42", r
    assert urt.cmd("pause", cid).rc == 0
    assert urt.state(cid)["status"] == "paused"
    assert urt.cmd("resume", cid).rc == 0
    assert urt.cmd("update", "--pids-limit", "50", cid).rc == 0
    assert (CGROUP_ROOT / "pids" / delegated / "c" / "pids.max").read_text().strip() == "50"
    assert urt.cmd("delete", "-f", cid).rc == 0
    assert not (CGROUP_ROOT / "pids" / delegated / "c").exists()


@pytest.fixture
def v2_delegated(user: User) -> Iterator[str]:
    """A cgroup2 subtree delegated to the user, as systemd's user@.service has (the
    directory and its cgroup.procs, cgroup.subtree_control and cgroup.threads are theirs)."""
    host = Path("/sys/fs/cgroup/unified")
    if not (host / "cgroup.procs").exists():
        pytest.skip("needs the hybrid cgroup2 tree at /sys/fs/cgroup/unified")
    name = unique_id("rl2")
    d = host / name
    d.mkdir()
    for f in (d, d / "cgroup.procs", d / "cgroup.subtree_control", d / "cgroup.threads"):
        os.chown(f, user.uid, user.gid)
    yield f"/{name}"
    deadline = time.monotonic() + 5
    while True:
        try:
            for sub in sorted((p for p in d.rglob("*") if p.is_dir()), reverse=True):
                sub.rmdir()
            d.rmdir()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_a_delegated_v2_subtree_is_used(user: User, ubundle: Bundle,
                                        v2_delegated: str) -> None:
    """On a cgroup v2 host, a user's container gets a cgroup of its own under the user's
    delegated subtree with no cgroupsPath at all (the default: beside the runtime's own), and
    pause, ps and delete use it."""
    urt2 = UserRuntime(user, v2_cgroup=v2_delegated)
    try:
        ubundle.process["args"] = ["sleep", "1000"]
        cid = unique_id()
        assert urt2.create(cid, ubundle).rc == 0 and urt2.cmd("start", cid).rc == 0
        mine = Path(f"/sys/fs/cgroup/unified{v2_delegated}/{cid}")
        assert mine.is_dir()
        r = urt2.cmd("exec", cid, "cat", "/proc/self/cgroup")
        assert r.rc == 0 and f"0::{v2_delegated}/{cid}" in r.out, r
        pid = urt2.state(cid)["pid"]
        assert (mine / "cgroup.procs").read_text().split() == [str(pid)]
        assert urt2.cmd("pause", cid).rc == 0
        assert (mine / "cgroup.freeze").read_text().strip() == "1"
        assert urt2.state(cid)["status"] == "paused"
        assert urt2.cmd("resume", cid).rc == 0
        ps = urt2.cmd("ps", "--format", "json", cid)
        assert ps.rc == 0 and json.loads(ps.out) == [pid], ps
        assert urt2.cmd("delete", "-f", cid).rc == 0
        assert not mine.exists()
    finally:
        urt2.cleanup()


def test_an_undelegated_v2_tree_is_skipped(user: User, ubundle: Bundle,
                                           v2_delegated: str) -> None:
    """The same user from a cgroup it may not create children in: the container runs in
    the runtime's cgroup instead, and nothing is created."""
    host = Path("/sys/fs/cgroup/unified")
    for f in (host / v2_delegated.lstrip("/"),):
        os.chown(f, 0, 0)
    urt2 = UserRuntime(user, v2_cgroup=v2_delegated)
    try:
        ubundle.sh("cat /proc/self/cgroup")
        r = urt2.run(unique_id(), ubundle)
        assert r.rc == 0 and [ln for ln in r.out.split() if ln.startswith("0::")] == [
            f"0::{v2_delegated}"], r
        assert [p for p in (host / v2_delegated.lstrip("/")).iterdir() if p.is_dir()] == []
    finally:
        urt2.cleanup()


def test_rootless_podman_runs_on_pyrunc(user: User, urt: UserRuntime, bundle: Bundle) -> None:
    """A real client: rootless podman (its own user namespace from the user's subordinate
    ranges, pyrunc run as root inside it, cgroups v1 skipped) with --runtime pyrunc."""
    if not shutil.which("podman"):
        pytest.skip("podman is not installed")
    home = user.base / unique_id("home")
    home.mkdir()
    os.chown(home, user.uid, user.gid)
    tar = home / "bb.tar"
    subprocess.run(["tar", "-C", str(bundle.rootfs), "-cf", str(tar), "."], check=True)
    pod = UserRuntime(user, env={"HOME": str(home)})

    def podman(*args: str) -> Result:
        p = subprocess.run(pod.as_user("podman", "--runtime", pod.binary, *args),
                           capture_output=True, text=True, stdin=subprocess.DEVNULL,
                           timeout=120)
        return Result(p.returncode, p.stdout, p.stderr)

    pause = user.xdg / "libpod" / "tmp" / "pause.pid"
    try:
        assert podman("import", str(tar), "localhost/bb:rl").rc == 0
        r = podman("run", "--rm", "--net", "none", "localhost/bb:rl", "sh", "-c",
                   "id -u; cat /proc/self/uid_map; ls /sys/fs/cgroup | grep -c .")
        lines = [" ".join(ln.split()) for ln in r.out.splitlines()]
        # (useradd may have given the user a range of its own before ours: podman maps all)
        assert r.rc == 0 and lines[:2] == ["0", f"0 {user.uid} 1"], r
        assert lines[2].startswith("1 ") and f" {SUB_START} {SUB_LEN}" in " ".join(lines), r
        assert int(lines[-1]) > 0, r  # the hierarchies it runs in, as with runc
        r = podman("run", "-d", "--name", "rl1", "--net", "none", "localhost/bb:rl", "sleep",
                   "1000")
        assert r.rc == 0, r
        r = podman("exec", "--user", "1000", "rl1", "sh", "-c", "id -u; cat /proc/1/cmdline")
        assert r.rc == 0 and r.out.startswith("1000\nsleep"), r
        r = podman("top", "rl1")
        assert r.rc == 0 and "sleep 1000" in r.out, r
        assert podman("rm", "-f", "-t", "0", "rl1").rc == 0
        assert podman("ps", "-aq").out.strip() == ""
    finally:
        podman("rm", "-af", "-t", "0")
        if pause.exists():  # rootless podman's keeper of its user namespace: ours to end
            try:
                os.kill(int(pause.read_text()), 9)
            except (ProcessLookupError, ValueError):
                pass
            time.sleep(0.2)
