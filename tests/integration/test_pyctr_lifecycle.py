"""pyctr beyond a single run: containers create + tasks start (foreground and detached, -t
with -d), the native snapshotter (chosen, and chosen for us where overlayfs cannot be used),
leases and the gc lock, and an old metadata schema upgraded in place. Real containers, as
root; the pyctr/Pyctr helpers are test_pyctr's."""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
import test_pyctr
from test_pyctr import Pyctr, _oci_archive, _tar

ctr = test_pyctr.ctr  # (the fixture)

pytestmark = pytest.mark.integration

COUNT = "n=$(cat /count 2>/dev/null || echo 0); n=$((n+1)); echo $n > /count; echo run $n"


def test_create_then_start_twice_keeps_the_writable_layer(ctr: Pyctr) -> None:
    """ctr's containers create + tasks start: the task runs from the kept spec, again and
    again, on the same snapshot; its exit status is pyctr's; containers rm removes it."""
    ctr("containers", "create", "-e", "WHO=me", "busybox:local", "c1", "sh", "-c",
        COUNT + "; echo $WHO; exit 7", check=True)
    info = json.loads(ctr("containers", "info", "c1", check=True).stdout)
    assert info["spec"]["process"]["args"][-1].endswith("exit 7"), info
    for n in (1, 2):
        p = ctr("tasks", "start", "c1")
        assert p.returncode == 7 and p.stdout == f"run {n}\nme\n", p
    assert ctr.mounts() == []
    p = ctr("tasks", "start", "nope")
    assert p.returncode == 1 and p.stderr == "pyctr: container nope: not found\n", p
    ctr("containers", "rm", "c1", check=True)
    assert ctr("containers", "ls", "-q", check=True).stdout == ""
    assert [s["kind"] for s in ctr.snapshots()] == ["committed"]


def _in_private_run(tmp_path: Path, script: str) -> str:
    """Run a shell script in a private mount namespace with its own /run (the shim keeps its
    socket in /run/containerd/s, as containerd's); returns its output."""
    f, out = tmp_path / "scenario.sh", tmp_path / "out"
    f.write_text(f"set -u\nexec >{out} 2>&1\n" + script)
    r = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                        "mount -t tmpfs tmpfs /run && exec bash \"$0\"", str(f)],
                       capture_output=True, text=True, timeout=120)
    text = out.read_text()
    assert r.returncode == 0, (r, text)
    return text


def test_tasks_start_detached_and_run_detached_with_a_tty(ctr: Pyctr, tmp_path: Path) -> None:
    """tasks start -d puts a created container under our shim, and after tasks delete it can
    start again; run -d -t gives the container a pty whose output the shim logs; a
    container with a task cannot be removed."""
    shim = os.path.join(os.path.dirname(ctr.bin), "containerd-shim-pyrunc-v2")
    if not os.path.exists(shim):
        pytest.skip("containerd-shim-pyrunc-v2 is not installed beside pyctr")
    p = f"{ctr.bin} --root {ctr.root} --state {ctr.state}"
    text = _in_private_run(tmp_path, f"""
{p} containers create busybox:local c2 sh -c '{COUNT}; exit 2'
for i in 1 2; do
  echo "== start$i"; {p} tasks start -d c2; sleep 0.5
  {p} tasks logs c2; {p} tasks delete c2
done
echo "== tty"; {p} run -d -t busybox:local t1 sh -c 'tty; echo done; sleep 30'; sleep 0.5
{p} tasks logs t1
echo "== rm-running"; {p} containers rm t1; echo "rc=$?"
echo "== delete"; {p} tasks delete -f t1; {p} containers rm t1
echo "== i-with-d"; {p} run -d -i busybox:local t2 true; echo "rc=$?"
echo "== left"; {p} containers ls -q; ls /run/containerd/s | wc -l
""")
    sec = {b.partition("\n")[0]: b.partition("\n")[2] for b in text.split("== ")[1:]}
    assert sec["start1"] == "c2\nrun 1\nc2 exit status 2\n", text
    assert sec["start2"] == "c2\nrun 2\nc2 exit status 2\n", text
    tty = sec["tty"].replace("\r", "").split("\n")
    assert tty[0] == "t1" and tty[1].startswith("/dev/pts/") and tty[2] == "done", text
    assert "has a task" in sec["rm-running"] and "rc=1" in sec["rm-running"], text
    assert "t1 exit status 137" in sec["delete"], text
    assert "-i with -d" in sec["i-with-d"] and "rc=1" in sec["i-with-d"], text
    assert sec["left"].split() == ["c2", "0"], text
    assert ctr.mounts() == []


def test_native_snapshotter(ctr: Pyctr, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                            ) -> None:
    """--snapshotter native: whole copies, bind-mounted, no overlay anywhere; whiteouts and
    opaque directories become real deletions; a container's changes stay in its own copy."""
    monkeypatch.setenv("PYCTR_SNAPSHOTTER", "native")
    l1 = _tar([("a", "d", None), ("a/gone", "f", b"1"), ("a/kept", "f", b"2"),
               ("b", "d", None), ("b/old", "f", b"3"), ("c", "f", b"5")])
    l2 = _tar([("a/.wh.gone", "f", b""), ("b/.wh..wh..opq", "f", b""), ("b/new", "f", b"6"),
               (".wh.c", "f", b""), ("c", "d", None), ("c/now-a-dir", "f", b"7")])
    arc = _oci_archive(tmp_path / "wh.tar", "test/wh:1", [l1, l2], ["sh"])
    ctr("images", "import", str(arc), check=True)
    p = ctr("run", "test/wh:1", "n1", "sh", "-c",
            "grep -c ' / overlay ' /proc/self/mounts; cd / && find a b c | sort && "
            "echo changed > /a/kept", check=True)
    assert p.stdout.split() == ["0", "a", "a/kept", "b", "b/new", "c", "c/now-a-dir"], p
    snaps = ctr.snapshots()
    assert len(snaps) == 4 and all(s["snapshotter"] == "native" for s in snaps), snaps
    # each snapshot is a full tree: the top committed one has no whiteout devices in it
    top = [s for s in snaps if s["kind"] == "committed" and
           not any(o["parent"] == s["key"] and o["kind"] == "committed" for o in snaps)][0]
    fs = ctr.root / "snapshots" / top["dir"] / "fs"
    assert sorted(os.listdir(fs / "b")) == ["new"] and not (fs / "a" / "gone").exists()
    assert (fs / "a" / "kept").read_text() == "2"  # the container wrote to its own copy
    active = [s for s in snaps if s["kind"] == "active"][0]
    assert (ctr.root / "snapshots" / active["dir"] / "fs" / "a" / "kept").read_text() == \
        "changed\n"
    # the overlayfs snapshotter has its own snapshots of the same chains
    monkeypatch.setenv("PYCTR_SNAPSHOTTER", "overlayfs")
    p = ctr("run", "--rm", "test/wh:1", "o1", "sh", "-c", "cat /a/kept", check=True)
    assert p.stdout == "2"
    assert len(ctr.snapshots()) == 3  # overlayfs's own: the three chains
    ctr("containers", "rm", "n1", check=True)  # (its snapshot is native's: found by record)
    monkeypatch.setenv("PYCTR_SNAPSHOTTER", "native")
    assert [s["kind"] for s in ctr.snapshots()] == ["committed"] * 3
    ctr("images", "rm", "test/wh:1", check=True)
    out = ctr("gc", check=True).stdout
    assert "6 snapshots" in out, out  # both snapshotters' chains
    monkeypatch.setenv("PYCTR_SNAPSHOTTER", "nonsense")
    p = ctr("snapshots", "ls")
    assert p.returncode == 1 and "--snapshotter 'nonsense'" in p.stderr, p


def test_native_is_the_default_on_an_overlayfs_root(tmp_path: Path) -> None:
    """A pyctr root on overlayfs (pyctr inside a container, say) cannot hold overlay upper
    directories: the default snapshotter there is native, and run works."""
    base = tmp_path / "ovl"
    for d in ("lower", "upper", "work", "merged"):
        (base / d).mkdir(parents=True)
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                    f"lowerdir={base}/lower,upperdir={base}/upper,workdir={base}/work",
                    str(base / "merged")], check=True)
    try:
        c = Pyctr(base / "merged")
        p = c("run", "--rm", "busybox:local", "x", "sh", "-c", "echo hi", check=True)
        assert p.stdout == "hi\n"
        assert {s["snapshotter"] for s in c.snapshots()} == {"native"}
        assert c.mounts() == []
    finally:
        subprocess.run(["umount", str(base / "merged")], check=True)


def test_leases_keep_content_from_gc_until_removed_or_expired(ctr: Pyctr, tmp_path: Path
                                                             ) -> None:
    arc = _oci_archive(tmp_path / "l.tar", "test/leased:1", [_tar([("f", "f", b"x")])], ["sh"])
    assert ctr("leases", "create", "--id", "keep", check=True).stdout == "keep\n"
    ctr("leases", "create", "--id", "brief", "--expires", "1s", check=True)
    ctr("images", "import", "--lease", "keep", str(arc), check=True)
    held = ctr.blobs()
    assert len(held) == 4  # manifest, config, two layers (busybox's and this one)
    rows = json.loads(ctr("leases", "ls", "--format", "json", check=True).stdout)
    assert [(r["id"], r["resources"]) for r in rows] == [("brief", 0), ("keep", 4)], rows
    ctr("images", "rm", "test/leased:1", check=True)
    assert "removed 0 blobs" in ctr("gc", check=True).stdout
    assert ctr.blobs() == held
    time.sleep(1.1)
    ctr("gc", check=True)
    assert ctr("leases", "ls", "-q", check=True).stdout == "keep\n"  # brief expired
    ctr("leases", "rm", "keep", check=True)
    assert "removed 4 blobs" in ctr("gc", check=True).stdout
    assert ctr.blobs() == set()
    for args, why in [(["leases", "rm", "keep"], "lease keep: not found"),
                      (["leases", "create", "--expires", "soon"], "--expires 'soon'"),
                      (["images", "import", "--lease", "nope", str(arc)], "lease nope: not "
                       "found")]:
        p = ctr(*args)
        assert p.returncode == 1 and why in p.stderr and len(p.stderr.splitlines()) == 1, p


def test_gc_waits_for_a_store_in_progress(ctr: Pyctr) -> None:
    """While anything holds the gc lock shared (a pull, an import, an unpack), gc waits."""
    ctr("images", "build-busybox", check=True)
    fd = os.open(ctr.root / "gc.lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        p = subprocess.Popen([ctr.bin, "--root", str(ctr.root), "--state", str(ctr.state),
                              "gc"], stdout=subprocess.PIPE, text=True)
        time.sleep(1)
        assert p.poll() is None  # waiting
        fcntl.flock(fd, fcntl.LOCK_UN)
        assert p.wait(timeout=30) == 0
    finally:
        os.close(fd)
        if p.poll() is None:
            p.kill()
            p.wait()


def test_schema_1_root_is_upgraded_in_place(ctr: Pyctr) -> None:
    """A root made by the first schema (snapshots without a snapshotter, containers without
    a spec) opens with pyctr's current one, its rows kept."""
    from pyctr.meta import MIGRATIONS

    ctr.root.mkdir(parents=True)
    db = sqlite3.connect(ctr.root / "meta.db")
    db.executescript(MIGRATIONS[0])
    db.execute("INSERT INTO snapshots VALUES ('sha256:x', NULL, 'committed', 'abcd', 1)")
    db.execute("PRAGMA user_version=1")
    db.commit()
    db.close()
    snaps = ctr.snapshots()
    assert [(s["snapshotter"], s["key"], s["dir"]) for s in snaps] == \
        [("overlayfs", "sha256:x", "abcd")], snaps
    db = sqlite3.connect(ctr.root / "meta.db")
    assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    db.close()


def test_many_pyctr_processes_at_once(ctr: Pyctr, tmp_path: Path) -> None:
    """Eight pyctr processes at once importing the same archive (the same blobs written
    concurrently), creating containers from it and collecting garbage: every command
    succeeds, the database passes SQLite's integrity check, every blob matches its digest,
    and every record is there."""
    import hashlib

    arc = _oci_archive(tmp_path / "c.tar", "test/conc:1", [_tar([("f", "f", b"y" * 300000)])],
                       ["sh"])
    ctr("images", "build-busybox", check=True)  # (creates the root and schema first)

    def spawn(*args: str) -> subprocess.Popen:
        return subprocess.Popen([ctr.bin, "--root", str(ctr.root), "--state", str(ctr.state),
                                 *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, text=True)

    procs = [spawn("images", "import", str(arc)) for _ in range(4)]
    procs += [spawn("containers", "create", "busybox:local", f"k{i}", "true")
              for i in range(3)]
    procs.append(spawn("gc"))
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, (p.args, out, err)
    db = sqlite3.connect(ctr.root / "meta.db")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()
    blobs = ctr.root / "content" / "blobs" / "sha256"
    for b in os.listdir(blobs):
        assert hashlib.sha256((blobs / b).read_bytes()).hexdigest() == b
    assert os.listdir(ctr.root / "content" / "ingest") == []
    assert ctr("containers", "ls", "-q", check=True).stdout.split() == ["k0", "k1", "k2"]
    names = ctr("images", "ls", "-q", check=True).stdout.split()
    assert "docker.io/test/conc:1" in names and "docker.io/library/busybox:local" in names
    p = ctr("run", "--rm", "test/conc:1", "after", "sh", "-c", "wc -c < /f", check=True)
    assert p.stdout.strip() == "300000"


def test_default_seccomp_profile_and_security_opt(ctr: Pyctr, tmp_path: Path) -> None:
    """Containers get containerd's default seccomp profile: a user namespace, which needs no
    capability, is refused by the filter alone (unshare is allowed only with CAP_SYS_ADMIN);
    seccomp=unconfined lifts it; seccomp=FILE applies that profile instead."""
    probe = "grep Seccomp: /proc/self/status; unshare -U true 2>/dev/null; echo userns=$?"
    p = ctr("run", "--rm", "busybox:local", "s1", "sh", "-c", probe, check=True)
    assert p.stdout.split() == ["Seccomp:", "2", "userns=1"], p
    p = ctr("run", "--rm", "--security-opt", "seccomp=unconfined", "busybox:local", "s2",
            "sh", "-c", probe, check=True)
    assert p.stdout.split() == ["Seccomp:", "0", "userns=0"], p
    prof = tmp_path / "deny-mkdir.json"
    prof.write_text(json.dumps({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}))
    p = ctr("run", "--rm", "--security-opt", f"seccomp={prof}", "busybox:local", "s3", "sh",
            "-c", "mkdir /x 2>&1; echo rc=$?")
    assert "Permission denied" in p.stdout and "rc=1" in p.stdout, p
    for opt, why in [(f"seccomp={tmp_path}/none.json", "No such file"),
                     ("apparmor=x", "only seccomp=")]:
        p = ctr("run", "--rm", "--security-opt", opt, "busybox:local", "s4", "true")
        assert p.returncode == 1 and why in p.stderr and len(p.stderr.splitlines()) == 1, p
    assert ctr.mounts() == [] and ctr("containers", "ls", "-q", check=True).stdout == ""
