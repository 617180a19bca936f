"""pyctr: from an image to a running container, checked from inside the container and on the
host (mounts, snapshots, records, blobs left behind). Images are made here, offline: pyctr's
own busybox:local, hand-made OCI archives (whiteouts, crafted layers), and skopeo's docker
archive of the same image.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def _pyctr_bin() -> str:
    here = os.path.dirname(os.path.realpath(os.environ.get("PYRUNC") or
                                            shutil.which("pyrunc") or ""))
    p = os.path.join(here, "pyctr")
    if not os.path.exists(p):
        pytest.skip("pyctr is not installed beside pyrunc")
    return p


class Pyctr:
    def __init__(self, tmp: Path) -> None:
        self.bin = _pyctr_bin()
        self.root = tmp / "root"
        self.state = tmp / "state"

    def __call__(self, *args: str, check: bool = False, timeout: float = 60
                 ) -> subprocess.CompletedProcess:
        p = subprocess.run([self.bin, "--root", str(self.root), "--state", str(self.state),
                            *args], capture_output=True, text=True, timeout=timeout,
                           stdin=subprocess.DEVNULL)
        if check:
            assert p.returncode == 0, (args, p.stdout, p.stderr)
        return p

    def mounts(self) -> list[str]:
        with open("/proc/self/mountinfo") as f:
            return [ln for ln in f if str(self.root) in ln or str(self.state) in ln]

    def snapshots(self) -> list[dict]:
        return json.loads(self("snapshots", "ls", "--format", "json", check=True).stdout)

    def blobs(self) -> set[str]:
        return set(self("content", "ls", "-q", check=True).stdout.split())


@pytest.fixture
def ctr(tmp_path: Path) -> Pyctr:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    c = Pyctr(tmp_path)
    yield c
    for ln in c.mounts():  # a failed test's mount: ours (under its temp dir)
        subprocess.run(["umount", "-l", ln.split()[4]], capture_output=True)


def test_run_busybox_local_on_a_fresh_root(ctr: Pyctr) -> None:
    """The README's main job: busybox:local is made on first use, offline."""
    p = ctr("run", "--rm", "busybox:local", "demo", "echo", "hi")
    assert (p.returncode, p.stdout, p.stderr) == (0, "hi\n", "")
    assert "docker.io/library/busybox:local" in ctr("images", "ls", "-q", check=True).stdout
    assert ctr.mounts() == []
    assert [s["kind"] for s in ctr.snapshots()] == ["committed"]  # only the image's layer
    assert ctr("containers", "ls", "-q", check=True).stdout == ""


def test_exit_status_env_user_workdir_hostname(ctr: Pyctr) -> None:
    p = ctr("run", "--rm", "-e", "FOO=bar", "-u", "nobody", "-w", "/tmp", "busybox:local",
            "who", "sh", "-c", 'echo "$FOO $(id -u):$(id -g) $(pwd) $(hostname)"; exit 7')
    assert p.returncode == 7 and p.stdout == "bar 65534:65534 /tmp who\n", p


def test_limits_and_read_only(ctr: Pyctr) -> None:
    p = ctr("run", "--rm", "--memory", "64m", "--pids-limit", "50", "--cpus", "0.5",
            "busybox:local", "lim", "sh", "-c",
            "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max "
            "/sys/fs/cgroup/cpu/cpu.cfs_quota_us")
    assert p.stdout.split() == [str(64 << 20), "50", "50000"], p
    p = ctr("run", "--rm", "--read-only", "busybox:local", "ro", "touch", "/x")
    assert p.returncode != 0 and "Read-only file system" in p.stdout + p.stderr


def test_kept_container_keeps_its_changes_until_rm(ctr: Pyctr) -> None:
    ctr("run", "busybox:local", "keep", "sh", "-c", "echo kept > /root/f", check=True)
    assert ctr("containers", "ls", "-q", check=True).stdout.split() == ["keep"]
    assert ctr.mounts() == []  # not running: not mounted
    p = ctr("run", "--rm", "busybox:local", "keep", "true")
    assert p.returncode == 1 and "already exists" in p.stderr
    ctr("containers", "rm", "keep", check=True)
    assert [s["kind"] for s in ctr.snapshots()] == ["committed"]


def test_bad_input_is_one_line_and_leaves_nothing(ctr: Pyctr) -> None:
    ctr("run", "--rm", "busybox:local", "warm", "true", check=True)  # image and its snapshot
    before = (ctr.snapshots(), ctr.blobs())
    for args, want in [
        (["run", "--rm", "nosuch", "x", "true"], "docker.io/library/nosuch:latest: not found"),
        (["run", "--rm", "busybox:local", "bad/id", "true"], "container id 'bad/id'"),
        (["run", "--rm", "-u", "ghost", "busybox:local", "u", "true"], "user 'ghost'"),
        (["run", "--rm", "--memory", "lots", "busybox:local", "m", "true"], "--memory 'lots'"),
        (["run", "--rm", "busybox:local", "n", "/no/such/binary"], "no/such/binary"),
        (["-n", "a/b", "images", "ls"], "namespace 'a/b'"),
    ]:
        p = ctr(*args)
        assert p.returncode != 0, args
        lines = p.stderr.strip().splitlines()
        assert len(lines) == 1 and want in lines[0] and "Traceback" not in p.stderr, (args, p)
    assert (ctr.snapshots(), ctr.blobs()) == before
    assert ctr.mounts() == []
    assert ctr("containers", "ls", "-q", check=True).stdout == ""


# -- hand-made images --

def _tar(entries: list[tuple]) -> bytes:
    """entries: (name, kind, data_or_linkname[, mode]) with kind in f d s h."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for e in entries:
            name, kind, data = e[0], e[1], e[2]
            ti = tarfile.TarInfo(name)
            ti.mode = e[3] if len(e) > 3 else (0o755 if kind == "d" else 0o644)
            if kind == "f":
                ti.size = len(data)
                t.addfile(ti, io.BytesIO(data))
                continue
            ti.type = {"d": tarfile.DIRTYPE, "s": tarfile.SYMTYPE, "h": tarfile.LNKTYPE}[kind]
            ti.linkname = data or ""
            t.addfile(ti)
    return buf.getvalue()


def _oci_archive(path: Path, name: str, layers: list[bytes], cmd: list[str],
                 corrupt: bool = False) -> Path:
    """An OCI layout archive of layers on top of busybox:local's own layer."""
    from pyctr import layout
    from pyctr.busybox import layer

    arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True,
                          check=True).stdout.strip()
    img = layout.Image(name, {"Cmd": cmd, "Env": ["PATH=/bin:/usr/bin"]}, [layer(), *layers],
                       arch)
    layout.write(str(path), [img], corrupt_last_layer=corrupt)
    return path


def test_whiteouts_and_opaque_dirs(ctr: Pyctr, tmp_path: Path) -> None:
    l1 = _tar([("a", "d", None), ("a/gone", "f", b"1"), ("a/kept", "f", b"2"),
               ("b", "d", None), ("b/old", "f", b"3"), ("b/sub", "d", None),
               ("b/sub/deep", "f", b"4"), ("c", "f", b"5")])
    l2 = _tar([("a/.wh.gone", "f", b""), ("b/.wh..wh..opq", "f", b""), ("b/new", "f", b"6"),
               (".wh.c", "f", b""), ("c", "d", None), ("c/now-a-dir", "f", b"7")])
    arc = _oci_archive(tmp_path / "wh.tar", "test/wh:1", [l1, l2], ["sh"])
    ctr("images", "import", str(arc), check=True)
    p = ctr("run", "--rm", "test/wh:1", "wh", "sh", "-c",
            "cd / && find a b c | sort && cat a/kept b/new c/now-a-dir", check=True)
    assert p.stdout.split() == ["a", "a/kept", "b", "b/new", "c", "c/now-a-dir", "267"]


@pytest.mark.parametrize("layer,why", [
    ([("../escape", "f", b"x")], "climbs out"),
    ([("/abs-escape", "f", b"x")], "absolute"),
    ([("evil", "s", "/tmp"), ("evil/pwned", "f", b"x")], "symlink"),
    ([("evil2", "s", "../../../../../../tmp"), ("evil2/pwned", "f", b"x")], "symlink"),
    ([("ln", "h", "../../../../../../etc/passwd")], "climbs out"),
    ([("etc/sneaky", "s", "/etc/shadow"), ("hl", "h", "etc/sneaky/x")], "hard link"),
])
def test_crafted_layers_are_refused(ctr: Pyctr, tmp_path: Path, layer: list, why: str
                                    ) -> None:
    ctr("run", "--rm", "busybox:local", "warm", "true", check=True)  # the shared base layer
    before = (ctr.snapshots(), ctr.blobs())
    arc = _oci_archive(tmp_path / "evil.tar", "test/evil:1", [_tar(layer)], ["true"])
    ctr("images", "import", str(arc), check=True)
    p = ctr("run", "--rm", "test/evil:1", "evil", "true")
    assert p.returncode == 1 and why in p.stderr and len(p.stderr.splitlines()) == 1, p
    for leaked in ("/tmp/pwned", "/abs-escape", str(tmp_path / "escape")):
        assert not os.path.exists(leaked), leaked
    assert ctr.snapshots() == before[0]  # the refused layer left no snapshot
    assert ctr.mounts() == []


def test_corrupt_blob_stores_nothing(ctr: Pyctr, tmp_path: Path) -> None:
    ctr("images", "build-busybox", check=True)
    before = ctr.blobs()
    arc = _oci_archive(tmp_path / "bad.tar", "test/bad:1", [_tar([("f", "f", b"x")])],
                       ["true"], corrupt=True)
    p = ctr("images", "import", str(arc))
    assert p.returncode == 1 and "content is sha256:" in p.stderr, p
    assert len(p.stderr.splitlines()) == 1
    assert ctr.blobs() == before
    assert "test/bad:1" not in ctr("images", "ls", "-q", check=True).stdout


def test_docker_archive_from_skopeo_imports_and_runs(ctr: Pyctr, tmp_path: Path) -> None:
    """The same image through skopeo's docker-archive (docker save's format): pyctr keeps the
    config's digest (the image ID) and runs it."""
    if not shutil.which("skopeo"):
        pytest.skip("skopeo is not installed")
    from pyctr.busybox import NAME, oci_archive

    arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True,
                          check=True).stdout.strip()
    oci = oci_archive(str(tmp_path / "bb-oci.tar"), [(NAME, ["sh"])], arch)
    dock = tmp_path / "bb-docker.tar"
    subprocess.run(["skopeo", "copy", "--quiet", f"oci-archive:{oci}",
                    f"docker-archive:{dock}:example.com/bb:docker"], check=True,
                   capture_output=True)
    names = ctr("images", "import", str(dock), check=True).stdout.split()
    assert names == ["example.com/bb:docker"]
    with tarfile.open(dock) as t:
        cfg_name = json.load(t.extractfile("manifest.json"))[0]["Config"]  # type: ignore
        cfg = t.extractfile(cfg_name).read()  # type: ignore[union-attr]
    info = json.loads(ctr("images", "inspect", "example.com/bb:docker", check=True).stdout)
    assert info["manifest"]["config"]["digest"] == "sha256:" + hashlib.sha256(cfg).hexdigest()
    p = ctr("run", "--rm", "example.com/bb:docker", "d", "echo", "from-docker-archive")
    assert p.stdout == "from-docker-archive\n", p


def _podman(tmp: Path) -> list[str]:
    if not shutil.which("podman"):
        pytest.skip("podman is not installed")
    # its own storage; runc (crun refuses this cgroup-hybrid host); no network; ulimits this
    # host's root may set (it lacks CAP_SYS_RESOURCE: podman's defaults are refused). podman
    # wants a runroot of at most 50 characters: a short temp dir of its own
    import tempfile

    run = tempfile.mkdtemp(prefix="pm-")
    return ["podman", "--root", str(tmp / "pm-root"), "--runroot", run,
            "--cgroup-manager", "cgroupfs", "--events-backend", "file",
            "--storage-driver", "overlay"]


def _podman_cleanup(pm: list[str]) -> None:
    subprocess.run([*pm, "rmi", "-a", "-f"], capture_output=True)
    subprocess.run([*pm, "system", "reset", "-f"], capture_output=True)
    shutil.rmtree(pm[pm.index("--runroot") + 1], ignore_errors=True)


def test_export_runs_in_podman_and_podman_save_runs_in_pyctr(ctr: Pyctr, tmp_path: Path
                                                              ) -> None:
    pm = _podman(tmp_path)
    run = ["run", "--rm", "--network", "none", "--runtime", "runc", "--ulimit",
           "nofile=1024:1024", "--ulimit", "nproc=1000:2000"]
    try:
        ctr("images", "build-busybox", check=True)
        ctr("images", "tag", "busybox:local", "example.com/ours:1", check=True)
        out = tmp_path / "ours.tar"
        ctr("images", "export", str(out), "example.com/ours:1", check=True)
        p = subprocess.run([*pm, "load", "-q", "-i", str(out)], capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
        p = subprocess.run([*pm, *run, "example.com/ours:1", "echo", "pyctr-image-in-podman"],
                           capture_output=True, text=True, timeout=120)
        assert p.stdout == "pyctr-image-in-podman\n", p
        # and back: podman's own OCI archive (it recompresses the layer: new digests)
        back = tmp_path / "podman.tar"
        subprocess.run([*pm, "save", "-q", "--format", "oci-archive", "-o", str(back),
                        "example.com/ours:1"], check=True, capture_output=True)
        with tarfile.open(back) as t:
            want = json.load(t.extractfile("index.json"))["manifests"][0]["digest"]  # type: ignore
        ctr("images", "rm", "example.com/ours:1", check=True)
        ctr("images", "import", str(back), check=True)
        info = json.loads(ctr("images", "inspect", "example.com/ours:1", check=True).stdout)
        assert info["target"]["digest"] == want  # the archive's digests, unchanged
        p = ctr("run", "--rm", "example.com/ours:1", "back", "echo", "podman-image-in-pyctr")
        assert p.stdout == "podman-image-in-pyctr\n", p
    finally:
        _podman_cleanup(pm)


def test_gc_removes_only_the_unreferenced(ctr: Pyctr, tmp_path: Path) -> None:
    ctr("run", "busybox:local", "holder", "true", check=True)  # keeps its snapshot chain
    l1 = _tar([("only-here", "f", b"x")])
    arc = _oci_archive(tmp_path / "extra.tar", "test/extra:1", [l1], ["true"])
    ctr("images", "import", str(arc), check=True)
    ctr("run", "--rm", "test/extra:1", "e", "true", check=True)
    all_blobs, all_snaps = ctr.blobs(), ctr.snapshots()
    assert "removed 0 blobs, 0 snapshots" in ctr("gc", check=True).stdout
    assert (ctr.blobs(), ctr.snapshots()) == (all_blobs, all_snaps)
    ctr("images", "rm", "test/extra:1", check=True)
    ctr("images", "rm", "busybox:local", "--", check=False)  # refused: a container uses it
    assert "removed 3 blobs, 1 snapshots" in ctr("gc", check=True).stdout  # extra's own
    left = ctr.blobs()
    assert len(left) == 3 and left < all_blobs  # busybox:local's, still referenced
    assert "holder" in ctr("containers", "ls", "-q", check=True).stdout
    p = ctr("images", "rm", "busybox:local")
    assert p.returncode == 1 and "a container uses it" in p.stderr


def test_schema_invalid_manifest_is_one_line_and_stores_nothing(ctr: Pyctr, tmp_path: Path
                                                                ) -> None:
    """Validated against the OCI image-spec schemas (oci_schema/image) before a blob lands."""
    ctr("images", "build-busybox", check=True)
    before = ctr.blobs()
    cfg = json.dumps({"architecture": "amd64", "os": "linux",
                      "rootfs": {"type": "layers", "diff_ids": []}}).encode()
    cd = "sha256:" + hashlib.sha256(cfg).hexdigest()
    man = json.dumps({"schemaVersion": 2,
                      "mediaType": "application/vnd.oci.image.manifest.v1+json",
                      "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                 "digest": cd, "size": len(cfg)}}).encode()  # no "layers"
    md = "sha256:" + hashlib.sha256(man).hexdigest()
    index = json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md,
        "size": len(man), "annotations": {"io.containerd.image.name": "test/nolayers:1"}}]})
    arc = tmp_path / "nolayers.tar"
    with tarfile.open(arc, "w") as t:
        for n, data in [("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'),
                        ("index.json", index.encode()),
                        ("blobs/sha256/" + md.split(":")[1], man),
                        ("blobs/sha256/" + cd.split(":")[1], cfg)]:
            ti = tarfile.TarInfo(n)
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))
    p = ctr("images", "import", str(arc))
    assert p.returncode == 1 and len(p.stderr.splitlines()) == 1, p
    assert "layers" in p.stderr and "manifests[0]" in p.stderr, p.stderr
    assert ctr.blobs() == before


def _tree(root: Path) -> dict[str, tuple]:
    """What a tree holds, path by path: type, mode, owner, size, content hash, link target,
    device, user xattrs, and which paths share an inode (hard links). Directory mtimes are
    left out (an overlay's upper directories get new ones), file and symlink mtimes kept."""
    out: dict[str, tuple] = {}
    inodes: dict[tuple, list[str]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            rel = os.path.relpath(p, root)
            st = os.lstat(p)
            kind = st.st_mode & 0o170000
            data = link = ""
            if kind == 0o100000:
                with open(p, "rb") as f:
                    data = hashlib.sha256(f.read()).hexdigest()
            elif kind == 0o120000:
                link = os.readlink(p)
            try:
                xattrs = tuple(sorted((k, os.getxattr(p, k, follow_symlinks=False))
                                      for k in os.listxattr(p, follow_symlinks=False)
                                      if k.startswith("user.")))
            except OSError:
                xattrs = ()
            mtime = 0 if kind == 0o040000 else st.st_mtime_ns
            out[rel] = (kind, st.st_mode & 0o7777, st.st_uid, st.st_gid,
                        st.st_size if kind == 0o100000 else 0, data, link,
                        st.st_rdev if kind in (0o020000, 0o060000) else 0, xattrs, mtime)
            if kind != 0o040000 and st.st_nlink > 1:
                inodes.setdefault((st.st_dev, st.st_ino), []).append(rel)
    for group in inodes.values():
        if len(group) > 1:  # (a link whose partner a later layer replaced: nlink says 2 in
            for rel in group:  # an overlay's view of the lower inode, alone in the tree)
                out[rel] += (tuple(sorted(group)),)
    return out


def test_unpack_matches_umoci(ctr: Pyctr, tmp_path: Path) -> None:
    """Layers that delete and re-add files unpack to the tree `umoci unpack` makes."""
    if not shutil.which("umoci"):
        pytest.skip("umoci is not installed")

    def entry(name: str, kind: str, data: object = b"", mode: int = 0o644, uid: int = 0,
              gid: int = 0, xattr: dict | None = None, mtime: int = 1000) -> tarfile.TarInfo:
        ti = tarfile.TarInfo(name)
        ti.mode, ti.uid, ti.gid, ti.mtime = mode, uid, gid, mtime
        ti.type = {"f": tarfile.REGTYPE, "d": tarfile.DIRTYPE, "s": tarfile.SYMTYPE,
                   "h": tarfile.LNKTYPE, "p": tarfile.FIFOTYPE}[kind]
        if kind in ("s", "h"):
            ti.linkname = str(data)
        if xattr:
            ti.pax_headers = {f"SCHILY.xattr.{k}": v for k, v in xattr.items()}
        return ti

    def layer(entries: list[tuple[tarfile.TarInfo, bytes]]) -> bytes:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
            for ti, data in entries:
                ti.size = len(data) if ti.type == tarfile.REGTYPE else 0
                t.addfile(ti, io.BytesIO(data) if ti.type == tarfile.REGTYPE else None)
        return buf.getvalue()

    l1 = layer([
        (entry("srv", "d", mode=0o750, uid=1000, gid=1000), b""),
        (entry("srv/app", "f", mode=0o4755, uid=1000, gid=100), b"#!/bin/sh\necho app\n"),
        (entry("srv/data", "f", mode=0o600, uid=33, gid=33, xattr={"user.tag": "one"}), b"d1"),
        (entry("srv/link", "h", "srv/data", mode=0o600, uid=33, gid=33), b""),
        (entry("srv/sym", "s", "data", mode=0o777), b""),
        (entry("srv/keep1", "f", mode=0o640), b"linked"),
        (entry("srv/keep2", "h", "srv/keep1", mode=0o640), b""),
        (entry("srv/fifo", "p", mode=0o620), b""),
        (entry("opq", "d", mode=0o755), b""),
        (entry("opq/old1", "f"), b"o1"), (entry("opq/olddir", "d"), b""),
        (entry("opq/olddir/x", "f"), b"x"),
        (entry("gone", "f"), b"g"), (entry("gonedir", "d"), b""),
        (entry("gonedir/y", "f"), b"y"),
        (entry("swap", "f"), b"file-first"),
    ])
    l2 = layer([
        (entry("opq/.wh..wh..opq", "f"), b""), (entry("opq/new1", "f", mtime=2000), b"n1"),
        (entry(".wh.gone", "f"), b""), (entry(".wh.gonedir", "f"), b""),
        (entry("gone", "d", mode=0o700), b""), (entry("gone/again", "f", mode=0o640), b"re"),
        (entry("srv/data", "f", mode=0o640, uid=33, gid=33, xattr={"user.tag": "two"}),
         b"d2-rewritten"),
        (entry(".wh.swap", "f"), b""), (entry("swap", "s", "srv/app"), b""),
    ])
    l3 = layer([(entry("srv/.wh.fifo", "f"), b""),
                (entry("srv/fifo", "f", mode=0o444), b"now a file")])
    arc = _oci_archive(tmp_path / "tree.tar", "test/tree:1", [l1, l2, l3], ["true"])
    # umoci reads an OCI layout directory, the image tagged by ref.name
    layout = tmp_path / "layout"
    with tarfile.open(arc) as t:
        t.extractall(layout)  # (our own archive: plain files only)
    idx = json.loads((layout / "index.json").read_text())
    idx["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] = "tree"
    (layout / "index.json").write_text(json.dumps(idx))
    subprocess.run(["umoci", "unpack", "--image", f"{layout}:tree", str(tmp_path / "umoci")],
                   check=True, capture_output=True)
    # pyctr: unpack (a run), then show the image's top snapshot read-only
    ctr("images", "import", str(arc), check=True)
    ctr("run", "--rm", "test/tree:1", "t", "true", check=True)
    top = [s["key"] for s in ctr.snapshots() if s["kind"] == "committed"]
    parents = {s["parent"] for s in ctr.snapshots()}
    leaf = [k for k in top if k not in parents]
    assert len(leaf) == 1, ctr.snapshots()
    view = tmp_path / "view"
    view.mkdir()
    cmd = ctr("snapshots", "mounts", str(view), leaf[0], check=True).stdout
    subprocess.run(["sh", "-c", cmd], check=True)
    try:
        ours, theirs = _tree(view), _tree(tmp_path / "umoci" / "rootfs")
    finally:
        subprocess.run(["umount", str(view)], check=True)
    assert ours.keys() == theirs.keys(), sorted(ours.keys() ^ theirs.keys())
    diff = {k: (ours[k], theirs[k]) for k in ours if ours[k] != theirs[k]}
    assert not diff, repr(diff)
    # and the interesting parts are really there
    assert ours["srv/data"][5] == hashlib.sha256(b"d2-rewritten").hexdigest()
    assert "opq/old1" not in ours and "opq/new1" in ours and "gonedir" not in ours
    assert ours["srv/keep2"][-1] == ("srv/keep1", "srv/keep2")  # a hard link, still one inode


# -- a real registry on loopback (tests/integration/registry_env.py) --

@pytest.fixture
def registry(tmp_path: Path) -> object:
    if not shutil.which("docker-registry") or not shutil.which("htpasswd"):
        pytest.skip("docker-registry / htpasswd (apache2-utils) are not installed")
    from registry_env import Registry

    r = Registry(str(tmp_path / "registry")).start()
    yield r
    r.cleanup()


def test_push_pull_run_through_a_tls_registry_with_auth(ctr: Pyctr, registry: object,
                                                        tmp_path: Path) -> None:
    from registry_env import PASSWORD, USER

    host, ca = registry.host, registry.ca  # type: ignore[attr-defined]
    ctr("images", "build-busybox", check=True)
    ref = f"{host}/test/bb:1"
    p = ctr("images", "push", "--ca", ca, "-u", f"{USER}:{PASSWORD}", ref, "busybox:local")
    assert p.returncode == 0 and p.stdout.strip() == ref, p
    # a fresh root pulls it and runs it
    other = Pyctr(tmp_path / "other")
    p = other("images", "pull", "--ca", ca, "-u", f"{USER}:{PASSWORD}", ref)
    assert p.returncode == 0 and p.stdout.strip() == ref, p
    ours = json.loads(ctr("images", "inspect", "busybox:local", check=True).stdout)
    theirs = json.loads(other("images", "inspect", ref, check=True).stdout)
    assert ours["target"]["digest"] == theirs["target"]["digest"]
    p = other("run", "--rm", ref, "pulled", "echo", "pulled-and-ran")
    assert p.stdout == "pulled-and-ran\n", p
    # wrong password: one line, nothing stored
    third = Pyctr(tmp_path / "third")
    p = third("images", "pull", "--ca", ca, "-u", f"{USER}:wrong", ref)
    assert p.returncode == 1 and len(p.stderr.splitlines()) == 1, p
    assert "authentication failed" in p.stderr
    assert third.blobs() == set()
    # no CA: TLS verification fails, one line
    p = third("images", "pull", "-u", f"{USER}:{PASSWORD}", ref)
    assert p.returncode == 1 and "certificate" in p.stderr.lower(), p
    assert len(p.stderr.splitlines()) == 1


def test_skopeo_interop_both_ways(ctr: Pyctr, registry: object, tmp_path: Path) -> None:
    if not shutil.which("skopeo"):
        pytest.skip("skopeo is not installed")
    from registry_env import PASSWORD, USER

    from pyctr.busybox import NAME, oci_archive

    host, ca = registry.host, registry.ca  # type: ignore[attr-defined]
    certs = tmp_path / "certs"
    certs.mkdir()
    shutil.copy(ca, certs / "ca.crt")
    creds = f"{USER}:{PASSWORD}"
    # what pyctr pushes, skopeo pulls (to an OCI layout) with the same manifest digest
    ctr("images", "build-busybox", check=True)
    ctr("images", "push", "--ca", ca, "-u", creds, f"{host}/test/ours:1", "busybox:local",
        check=True)
    subprocess.run(["skopeo", "copy", "--quiet", "--src-cert-dir", str(certs), "--src-creds",
                    creds, f"docker://{host}/test/ours:1", f"oci:{tmp_path / 'sk'}:ours"],
                   check=True, capture_output=True)
    sk = json.loads((tmp_path / "sk" / "index.json").read_text())["manifests"][0]["digest"]
    ours = json.loads(ctr("images", "inspect", "busybox:local", check=True).stdout)
    assert sk == ours["target"]["digest"]
    # what skopeo pushes, pyctr pulls and runs
    arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True,
                          check=True).stdout.strip()
    arc = oci_archive(str(tmp_path / "src.tar"), [(NAME, ["sh"])], arch)
    subprocess.run(["skopeo", "copy", "--quiet", "--dest-cert-dir", str(certs), "--dest-creds",
                    creds, f"oci-archive:{arc}", f"docker://{host}/test/theirs:1"],
                   check=True, capture_output=True)
    other = Pyctr(tmp_path / "other")
    other("images", "pull", "--ca", ca, "-u", creds, f"{host}/test/theirs:1", check=True)
    p = other("run", "--rm", f"{host}/test/theirs:1", "sk", "echo", "from-skopeo")
    assert p.stdout == "from-skopeo\n", p


class _CuttingProxy:
    """An HTTP proxy in front of a plain registry that logs every request and breaks some.

    cuts: blob downloads to break (-1: every one): the headers and half of the body, then the
    connection closes (what a registry dying mid-pull does).
    cut_patch: break the cut_patch-th PATCH (1-based; 0: none) half-way through its body:
    the proxy reads half of it, then closes the connection. With forward_half the registry
    gets that half too (its session then holds a partial chunk); without, nothing of it (a
    front end that buffers request bodies, as nginx does).

    The Host header goes through as the client sent it, so the Locations the registry builds
    point at the proxy. seen: (method, path, Content-Range, status) of every request, in the
    order they were answered (status 0: cut)."""

    def __init__(self, upstream: str, cuts: int = 0, cut_patch: int = 0,
                 forward_half: bool = False) -> None:
        import http.server
        import threading

        proxy = self
        self.cuts, self.cut_done = cuts, 0
        self.cut_patch, self.forward_half = cut_patch, forward_half
        self.patches = 0
        self.seen: list[tuple[str, str, str, int]] = []
        self.lock = threading.Lock()

        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a: object) -> None:
                pass

            def _forward(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                crange = self.headers.get("Content-Range", "")
                if self.command == "PATCH" and proxy._cut_this_patch():
                    half = self.rfile.read(n // 2)
                    if proxy.forward_half:
                        proxy._send_partial(self, half, n, upstream)
                    proxy.seen.append((self.command, self.path, crange, 0))
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                body = self.rfile.read(n) if n else None
                status, headers, data = proxy._upstream(self, body, upstream)
                proxy.seen.append((self.command, self.path, crange, status))
                self.send_response(status)
                for k, v in headers:
                    if k.lower() not in ("transfer-encoding", "connection"):
                        self.send_header(k, v)
                self.end_headers()
                if proxy._cut_this_download(self, data):
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self.wfile.write(data)

            do_GET = do_HEAD = do_POST = do_PATCH = do_PUT = do_DELETE = _forward  # noqa: N815

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _cut_this_patch(self) -> bool:
        with self.lock:
            self.patches += 1
            return self.patches == self.cut_patch

    def _cut_this_download(self, h: object, data: bytes) -> bool:
        with self.lock:
            cut = (h.command == "GET" and "/blobs/sha256:" in h.path  # type: ignore
                   and len(data) > 4096 and (self.cuts < 0 or self.cut_done < self.cuts))
            self.cut_done += cut
            return cut

    @staticmethod
    def _upstream(h: object, body: bytes | None, upstream: str) -> tuple[int, list, bytes]:
        import http.client

        conn = http.client.HTTPConnection(upstream, timeout=30)
        try:
            conn.request(h.command, h.path, body=body,  # type: ignore[attr-defined]
                         headers=dict(h.headers.items()))  # type: ignore[attr-defined]
            r = conn.getresponse()
            return r.status, r.getheaders(), r.read()
        finally:
            conn.close()

    @staticmethod
    def _send_partial(h: object, half: bytes, n: int, upstream: str) -> None:
        """The request with the first half of its body, then the connection closes."""
        import socket
        import time

        host, port = upstream.rsplit(":", 1)
        with socket.create_connection((host, int(port))) as s:
            head = f"{h.command} {h.path} HTTP/1.1\r\n" + "".join(  # type: ignore
                f"{k}: {v}\r\n" for k, v in h.headers.items()) + "\r\n"  # type: ignore
            s.sendall(head.encode() + half)
            time.sleep(0.3)  # (the registry has written what came before it sees the close)

    def requests(self, method: str, part: str = "") -> list[tuple[str, str, str, int]]:
        return [r for r in self.seen if r[0] == method and part in r[1]]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_registry_dying_mid_pull_leaves_nothing_and_a_retry_completes(
        ctr: Pyctr, tmp_path: Path) -> None:
    if not shutil.which("docker-registry"):
        pytest.skip("docker-registry is not installed")
    from registry_env import Registry

    reg = Registry(str(tmp_path / "plain"), tls_auth=False).start()
    try:
        ctr("images", "build-busybox", check=True)
        ctr("images", "push", "--plain-http", f"{reg.host}/test/bb:1", "busybox:local",
            check=True)
        other = Pyctr(tmp_path / "other")
        always = _CuttingProxy(reg.host, cuts=-1)
        try:
            p = other("images", "pull", "--plain-http", f"{always.host}/test/bb:1")
        finally:
            always.close()
        assert p.returncode == 1 and len(p.stderr.splitlines()) == 1, p
        assert other.blobs() == set()
        assert other("images", "ls", "-q", check=True).stdout == ""
        assert os.listdir(other.root / "content" / "ingest") == []  # no partial download
        once = _CuttingProxy(reg.host, cuts=1)
        try:
            p = other("images", "pull", "--plain-http", f"{once.host}/test/bb:1")
        finally:
            once.close()
        assert p.returncode == 0 and once.cut_done == 1, p
        r = other("run", "--rm", f"{once.host}/test/bb:1", "x", "echo", "complete")
        assert r.stdout == "complete\n", r
    finally:
        reg.cleanup()


# -- push: chunks, resume, mounts; login; progress --

@pytest.fixture
def plain_registry(tmp_path: Path) -> object:
    """A registry without TLS or auth, for a logging (and cutting) proxy to sit in front of."""
    if not shutil.which("docker-registry"):
        pytest.skip("docker-registry is not installed")
    from registry_env import Registry

    r = Registry(str(tmp_path / "plain"), tls_auth=False).start()
    yield r
    r.cleanup()


def _layer(ctr: Pyctr, name: str = "busybox:local") -> dict:
    """The image's (one) layer descriptor."""
    return json.loads(ctr("images", "inspect", name, check=True).stdout)["manifest"]["layers"][0]


def _sessions(seen: list[tuple[str, str, str, int]]) -> dict[str, dict]:
    """Upload sessions the proxy saw, by UUID: their PATCHes (Content-Range, status), status
    GETs, and the digest their closing PUT named."""
    from urllib.parse import parse_qs, urlsplit

    out: dict[str, dict] = {}
    for method, path, crange, status in seen:
        if "/blobs/uploads/" not in path:
            continue
        u = urlsplit(path)
        uuid = u.path.split("/blobs/uploads/")[1]
        if not uuid:
            continue
        s = out.setdefault(uuid, {"patches": [], "gets": [], "digest": ""})
        if method == "PATCH":
            s["patches"].append((crange, status))
        elif method == "GET":
            s["gets"].append(status)
        elif method == "PUT":
            s["digest"] = parse_qs(u.query)["digest"][0]
    return out


def _ranges(patches: list[tuple[str, int]]) -> list[tuple[int, int]]:
    return [tuple(int(x) for x in cr.split("-")) for cr, st in patches if st == 202]


def _pulls_back(tmp_path: Path, ref: str, digest: str) -> None:
    """A fresh root pulls ref (plain HTTP), gets the image digest, and runs it."""
    other = Pyctr(tmp_path / f"back-{abs(hash(ref))}")
    other("images", "pull", "--plain-http", ref, check=True)
    got = json.loads(other("images", "inspect", ref, check=True).stdout)["target"]["digest"]
    assert got == digest
    p = other("run", "--rm", ref, "back", "echo", "pulled-back")
    assert p.stdout == "pulled-back\n", p


def test_chunked_push_patches_in_order_and_reads_back(ctr: Pyctr, plain_registry: object,
                                                      tmp_path: Path) -> None:
    """--chunk-size 64k sends a 1 MB layer as PATCHes of 64 KiB, in order, then one PUT
    ?digest=; skopeo and a fresh pyctr read the same image back. --chunk-size 0: one PUT."""
    reg = plain_registry.host  # type: ignore[attr-defined]
    ctr("images", "build-busybox", check=True)
    layer = _layer(ctr)
    mine = json.loads(ctr("images", "inspect", "busybox:local", check=True).stdout)
    proxy = _CuttingProxy(reg)
    try:
        p = ctr("images", "push", "--plain-http", "--chunk-size", "64k",
                f"{proxy.host}/test/chunked:1", "busybox:local")
        assert p.returncode == 0, p
        assert f"{layer['digest'][:19]}: pushed ({layer['size']} bytes)" in p.stderr, p
        sessions = _sessions(proxy.seen)
        (up,) = [s for s in sessions.values() if s["digest"] == layer["digest"]]
        ranges = _ranges(up["patches"])
        assert len(ranges) == -(-layer["size"] // 65536) > 1, up
        assert ranges[0][0] == 0 and ranges[-1][1] == layer["size"] - 1
        assert all(b - a + 1 <= 65536 for a, b in ranges)
        assert all(r2[0] == r1[1] + 1 for r1, r2 in zip(ranges, ranges[1:], strict=False))
        # --chunk-size 0, from another root (no labels: no mount): one PUT with the bytes
        mono = Pyctr(tmp_path / "mono")
        mono("images", "build-busybox", check=True)
        mark = len(proxy.seen)
        mono("images", "push", "--plain-http", "--chunk-size", "0",
             f"{proxy.host}/test/mono:1", "busybox:local", check=True)
        later = proxy.seen[mark:]
        assert not [r for r in later if r[0] == "PATCH"], later
        assert [r for r in later if r[0] == "PUT" and f"digest={layer['digest']}" in r[1]
                and r[3] == 201], later
    finally:
        proxy.close()
    if shutil.which("skopeo"):
        sk = tmp_path / "sk"
        subprocess.run(["skopeo", "copy", "--quiet", "--src-tls-verify=false",
                        f"docker://{reg}/test/chunked:1", f"oci:{sk}:x"],
                       check=True, capture_output=True)
        got = json.loads((sk / "index.json").read_text())["manifests"][0]["digest"]
        assert got == mine["target"]["digest"]
    _pulls_back(tmp_path, f"{reg}/test/chunked:1", mine["target"]["digest"])
    _pulls_back(tmp_path, f"{reg}/test/mono:1", mine["target"]["digest"])


def _push_cut_once(ctr: Pyctr, reg: str, ref: str, **cut: bool
                   ) -> tuple[_CuttingProxy, list]:
    """busybox:local pushed in 64k chunks through a proxy that breaks the third PATCH: the
    push must succeed; returns the proxy and what it saw after the one cut PATCH."""
    proxy = _CuttingProxy(reg, cut_patch=3, **cut)
    try:
        p = ctr("images", "push", "--plain-http", "--chunk-size", "64k", f"{proxy.host}/{ref}",
                "busybox:local")
    finally:
        proxy.close()
    assert p.returncode == 0, p
    broken = [i for i, r in enumerate(proxy.seen) if r[0] == "PATCH" and r[3] == 0]
    assert len(broken) == 1, proxy.seen
    return proxy, proxy.seen[broken[0] + 1:]


def test_a_broken_patch_resumes_where_the_registry_is(ctr: Pyctr, plain_registry: object,
                                                      tmp_path: Path) -> None:
    """The connection breaks half-way through the layer's second PATCH (nothing of it reaches
    the registry): pyctr asks the registry where the upload is (GET, 204, Range: 0-65535) and
    goes on with 65536-... in the same session: no byte is sent twice."""
    reg = plain_registry.host  # type: ignore[attr-defined]
    ctr("images", "build-busybox", check=True)
    layer = _layer(ctr)
    # 1: the config's PATCH; 2, 3: the layer's first two
    proxy, after = _push_cut_once(ctr, reg, "test/resumed:1")
    assert after[0][0] == "GET" and "/blobs/uploads/" in after[0][1] and after[0][3] == 204
    assert after[1][0] == "PATCH" and after[1][2].startswith("65536-"), after[:2]
    assert not [r for r in after if r[0] == "POST"], after  # resumed, not restarted
    (up,) = [s for s in _sessions(proxy.seen).values() if s["digest"] == layer["digest"]]
    ranges = _ranges(up["patches"])
    assert sum(b - a + 1 for a, b in ranges) == layer["size"]  # each byte once
    mine = json.loads(ctr("images", "inspect", "busybox:local", check=True).stdout)
    _pulls_back(tmp_path, f"{reg}/test/resumed:1", mine["target"]["digest"])


def test_a_session_the_registry_dropped_starts_again(ctr: Pyctr, plain_registry: object,
                                                     tmp_path: Path) -> None:
    """Half of a PATCH reaches docker-registry 2.8 before the break: its session then holds
    more than its state says, and the status GET finds it gone (404). pyctr opens a new
    session and sends the blob from 0; the image reads back whole."""
    reg = plain_registry.host  # type: ignore[attr-defined]
    ctr("images", "build-busybox", check=True)
    _, after = _push_cut_once(ctr, reg, "test/restarted:1", forward_half=True)
    assert [(r[0], r[3]) for r in after[:4]] == [("GET", 404), ("HEAD", 404), ("POST", 202),
                                                 ("PATCH", 202)], after[:4]
    assert after[3][2] == "0-65535"
    mine = json.loads(ctr("images", "inspect", "busybox:local", check=True).stdout)
    _pulls_back(tmp_path, f"{reg}/test/restarted:1", mine["target"]["digest"])


def test_push_mounts_from_the_repository_it_was_pulled_from(ctr: Pyctr, plain_registry: object,
                                                            tmp_path: Path) -> None:
    """Pulled from a/img, pushed to b/img of the same registry: every blob is mounted (POST
    ?mount=&from=a/img, 201), no byte uploaded. When a/img no longer has the layer, the
    registry answers the mount with an upload session (202), which pyctr uses."""
    import urllib.request

    reg = plain_registry.host  # type: ignore[attr-defined]
    proxy = _CuttingProxy(reg)
    try:
        ctr("images", "build-busybox", check=True)
        layer = _layer(ctr)
        a, b, c = (f"{proxy.host}/{r}/img:1" for r in ("a", "b", "c"))
        ctr("images", "push", "--plain-http", a, "busybox:local", check=True)
        other = Pyctr(tmp_path / "other")
        other("images", "pull", "--plain-http", a, check=True)
        labels = {r["digest"]: r["labels"] for r in json.loads(
            other("content", "ls", "--format", "json", check=True).stdout)}
        key = f"containerd.io/distribution.source.{proxy.host}"
        assert len(labels) == 3 and all(v == {key: "a/img"} for v in labels.values()), labels
        mark = len(proxy.seen)
        p = other("images", "push", "--plain-http", b, a)
        assert p.returncode == 0 and "mounted from a/img" in p.stderr, p
        later = proxy.seen[mark:]
        mounts = [r for r in later if r[0] == "POST"]
        assert len(mounts) == 2 and all("mount=sha256:" in r[1] and "from=a/img" in r[1]
                                        for r in mounts), mounts
        assert all(r[3] == 201 for r in mounts), mounts
        assert not [r for r in later if r[0] in ("PATCH", "PUT") and "/blobs/" in r[1]], later
        labels = {r["digest"]: r["labels"] for r in json.loads(
            other("content", "ls", "--format", "json", check=True).stdout)}
        assert all(v == {key: "a/img,b/img"} for v in labels.values()), labels
        # a/img loses the layer: the mount gets a 202 session, and the layer is uploaded
        req = urllib.request.Request(f"http://{reg}/v2/a/img/blobs/{layer['digest']}",
                                     method="DELETE")
        assert urllib.request.urlopen(req).status == 202
        mark = len(proxy.seen)
        p = other("images", "push", "--plain-http", c, a)
        assert p.returncode == 0, p
        later = proxy.seen[mark:]
        (lm,) = [r for r in later if r[0] == "POST" and layer["digest"] in r[1]]
        assert lm[3] == 202, later
        assert [r for r in later if r[0] == "PATCH" and r[3] == 202], later
    finally:
        proxy.close()
    mine = json.loads(ctr("images", "inspect", "busybox:local", check=True).stdout)
    _pulls_back(tmp_path, f"{reg}/b/img:1", mine["target"]["digest"])
    _pulls_back(tmp_path, f"{reg}/c/img:1", mine["target"]["digest"])


def test_login_checks_the_credentials_before_storing_them(ctr: Pyctr, registry: object,
                                                          tmp_path: Path) -> None:
    from registry_env import PASSWORD, USER

    host, ca = registry.host, registry.ca  # type: ignore[attr-defined]
    home = tmp_path / "home"
    cfg = home / ".docker" / "config.json"
    cfg.parent.mkdir(parents=True)
    cfg.write_text('{"auths": {"elsewhere.example": {"auth": "eDp5"}}}')
    before = cfg.read_bytes()

    def login(password: str, *flags: str) -> subprocess.CompletedProcess:
        return subprocess.run([ctr.bin, "login", *flags, "-u", USER, "--password-stdin",
                               host], input=password + "\n", capture_output=True, text=True,
                              timeout=60, env={**os.environ, "HOME": str(home)})

    p = login("wrong", "--ca", ca)
    assert p.returncode == 1 and p.stderr.startswith(f"pyctr: {host}: login failed: "), p
    assert len(p.stderr.splitlines()) == 1 and "Traceback" not in p.stderr
    assert cfg.read_bytes() == before
    p = login(PASSWORD)  # no --ca: the certificate is not trusted
    assert p.returncode == 1 and "login failed" in p.stderr and "certificate" in p.stderr, p
    assert cfg.read_bytes() == before
    p = login(PASSWORD, "--ca", ca)
    assert p.returncode == 0 and host in p.stdout, p
    auths = json.loads(cfg.read_text())["auths"]
    assert auths["elsewhere.example"] == {"auth": "eDp5"}
    assert base64.b64decode(auths[host]["auth"]).decode() == f"{USER}:{PASSWORD}"
    # and a push with no --user uses them
    ctr("images", "build-busybox", check=True)
    p = subprocess.run([ctr.bin, "--root", str(ctr.root), "images", "push", "--ca", ca,
                        f"{host}/test/stored:1", "busybox:local"], capture_output=True,
                       text=True, timeout=60, env={**os.environ, "HOME": str(home)})
    assert p.returncode == 0, p


def test_tls_registry_speaks_http2(registry: object) -> None:
    """Over TLS the client offers HTTP/2 (ALPN) and docker-registry takes it; plain HTTP stays
    HTTP/1.1 (no h2c)."""
    from registry_env import PASSWORD, USER

    from pyctr.registry import Client

    c = Client(registry.host, ca=registry.ca,  # type: ignore[attr-defined]
               user=f"{USER}:{PASSWORD}")
    try:
        r = c.request("GET", "", "")
        assert r.status_code == 200 and r.http_version == "HTTP/2", r  # type: ignore
    finally:
        c.close()


def test_pull_under_a_lease_survives_images_rm_and_gc(ctr: Pyctr, plain_registry: object,
                                                      tmp_path: Path) -> None:
    """images pull --lease: the content stays through images rm + gc until the lease goes;
    gc then takes the blobs and their source labels."""
    ctr("images", "build-busybox", check=True)
    ref = f"{plain_registry.host}/lease/bb:1"  # type: ignore[attr-defined]
    ctr("images", "push", "--plain-http", ref, "busybox:local", check=True)
    other = Pyctr(tmp_path / "other")
    other("leases", "create", "--id", "pin", check=True)
    other("images", "pull", "--plain-http", "--lease", "pin", ref, check=True)
    held = other.blobs()
    assert len(held) == 3  # manifest, config, layer

    def labelled() -> int:
        db = sqlite3.connect(other.root / "meta.db")
        try:
            return db.execute("SELECT COUNT(*) FROM content_labels").fetchone()[0]
        finally:
            db.close()

    assert labelled() == 3
    other("images", "rm", ref, check=True)
    other("gc", check=True)
    assert other.blobs() == held and labelled() == 3
    other("leases", "rm", "pin", check=True)
    assert "removed 3 blobs" in other("gc", check=True).stdout
    assert other.blobs() == set() and labelled() == 0
    p = other("images", "pull", "--plain-http", "--lease", "nope", ref)
    assert p.returncode == 1 and "lease nope: not found" in p.stderr, p
    assert other.blobs() == set()  # (refused before anything was fetched)


def test_progress_bars_on_a_terminal_plain_lines_and_no_rich_otherwise(
        ctr: Pyctr, plain_registry: object, tmp_path: Path) -> None:
    """On a tty (script(1)) pull and push draw rich bars to 100%; with stderr a pipe they
    print the plain lines, and rich is never imported."""
    if not shutil.which("script"):
        pytest.skip("script(1) is not installed")
    reg = plain_registry.host  # type: ignore[attr-defined]
    ctr("images", "build-busybox", check=True)
    layer = _layer(ctr)
    ref = f"{reg}/test/bars:1"
    ctr("images", "push", "--plain-http", ref, "busybox:local", check=True)
    env = {**os.environ, "TERM": "xterm", "LANG": "C.UTF-8", "COLUMNS": "120"}

    def on_tty(root: Path, *args: str) -> subprocess.CompletedProcess:
        cmd = " ".join([ctr.bin, "--root", str(root), "--state", str(root / "state"), *args])
        return subprocess.run(["script", "-qec", cmd, "/dev/null"], capture_output=True,
                              text=True, timeout=60, stdin=subprocess.DEVNULL, env=env)

    p = on_tty(tmp_path / "tty", "images", "pull", "--plain-http", ref)
    assert p.returncode == 0 and ref in p.stdout, p
    assert "━" in p.stdout and "100%" in p.stdout and layer["digest"][7:19] in p.stdout, p
    p = on_tty(ctr.root, "images", "push", "--plain-http", "--chunk-size", "64k",
               f"{reg}/test/bars2:1", "busybox:local")
    assert p.returncode == 0 and "━" in p.stdout and "100%" in p.stdout, p
    # not a tty: the plain lines, and no rich among the imports
    py = os.path.join(os.path.dirname(ctr.bin), "python3")
    other = tmp_path / "plain"
    p = subprocess.run([py if os.path.exists(py) else sys.executable, "-X", "importtime", "-c",
                        "import sys; from pyctr.cli import main; sys.argv[0] = 'pyctr'; main()",
                        "--root", str(other), "images", "pull", "--plain-http", ref],
                       capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
                       cwd=tmp_path)  # (not the checkout: the installed package)
    assert p.returncode == 0 and p.stdout.strip() == ref, p
    lines = p.stderr.splitlines()
    assert f"{layer['digest'][:19]}: done ({layer['size']} bytes)" in lines, lines
    imported = [ln.rsplit("|", 1)[1].strip() for ln in lines if ln.startswith("import time:")]
    assert "pyctr.registry" in imported and "httpx" in imported, imported
    assert not [m for m in imported if m == "rich" or m.startswith("rich.")], imported


def test_namespaces_content_snapshots_and_container_records(ctr: Pyctr) -> None:
    """The smaller commands, and that what is in use is refused with one line."""
    ctr("-n", "team", "run", "busybox:local", "kept", "true", check=True)
    assert ctr("namespaces", "ls", "-q", check=True).stdout.split() == ["team"]
    info = json.loads(ctr("-n", "team", "containers", "info", "kept", check=True).stdout)
    assert info["snapshot"] == "team/kept" and info["runtime"] == "pyrunc"
    assert ctr("containers", "ls", "-q", check=True).stdout == ""  # other namespace: none
    snap = json.loads(ctr("snapshots", "info", "team/kept", check=True).stdout)
    assert snap["kind"] == "active"
    p = ctr("snapshots", "rm", "team/kept")
    assert p.returncode == 1 and "a container uses it" in p.stderr
    img = json.loads(ctr("-n", "team", "images", "inspect", "busybox:local", check=True).stdout)
    layer = img["manifest"]["layers"][0]["digest"]
    got = subprocess.run([ctr.bin, "--root", str(ctr.root), "content", "get", layer],
                         capture_output=True, check=True).stdout
    assert "sha256:" + hashlib.sha256(got).hexdigest() == layer
    p = ctr("content", "rm", layer)
    assert p.returncode == 1 and "an image references it" in p.stderr
    p = ctr("namespaces", "rm", "team")
    assert p.returncode == 1 and "not empty" in p.stderr
    ctr("-n", "team", "containers", "rm", "kept", check=True)
    ctr("-n", "team", "images", "rm", "busybox:local", check=True)
    ctr("namespaces", "rm", "team", check=True)
    ctr("namespaces", "create", "fresh", check=True)
    assert ctr("namespaces", "ls", "-q", check=True).stdout.split() == ["fresh"]


def test_detached_under_our_shim_keeps_log_and_exit_status(ctr: Pyctr, tmp_path: Path
                                                           ) -> None:
    """run -d: the container runs under containerd-shim-pyrunc-v2 after pyctr exits; tasks
    ls/ps/logs/kill/pause/resume/delete reach it through the shim. The whole scenario runs in
    a private mount namespace with its own /run, because the shim (as containerd's) keeps its
    socket in /run/containerd/s and pyrunc's state in /run/containerd/pyrunc."""
    shim = os.path.join(os.path.dirname(ctr.bin), "containerd-shim-pyrunc-v2")
    if not os.path.exists(shim):
        pytest.skip("containerd-shim-pyrunc-v2 is not installed beside pyctr")
    script = tmp_path / "scenario.sh"
    out = tmp_path / "out"
    p = f"{ctr.bin} --root {ctr.root} --state {ctr.state}"
    script.write_text(f"""set -u
exec >{out} 2>&1
step() {{ echo "== $*"; }}
step run; {p} run -d busybox:local bg sh -c 'echo started; trap "echo bye; exit 3" TERM; \\
    while :; do sleep 0.1; done'; echo "rc=$?"
sleep 0.5
step ls; {p} tasks ls --format json
step ps; {p} tasks ps bg | wc -l
step pause; {p} tasks pause bg && {p} tasks ls -q && {p} tasks ls --format json
step resume; {p} tasks resume bg
step exec; {p} tasks exec --exec-id e1 -e X=1 bg sh -c \
    'echo "in $X $(hostname)"; echo oops >&2; exit 4'; echo "rc=$?"
step delete-running; {p} tasks delete bg; echo "rc=$?"
step kill; {p} tasks kill bg; sleep 0.5
step stopped; {p} tasks ls --format json
step logs; {p} tasks logs bg
step delete; {p} tasks delete bg; echo "rc=$?"
step after; {p} tasks ls -q; ls /run/containerd/s | wc -l
step rm; {p} containers rm bg
""")
    r = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                        "mount -t tmpfs tmpfs /run && exec bash \"$0\"", str(script)],
                       capture_output=True, text=True, timeout=120)
    text = out.read_text()
    assert r.returncode == 0, (r, text)
    sec = {}
    for block in text.split("== ")[1:]:
        name, _, body = block.partition("\n")
        sec[name] = body
    assert sec["run"].split() == ["bg", "rc=0"], text
    running = json.loads(sec["ls"])[0]
    assert running["status"] == "RUNNING" and running["pid"] > 0, text
    assert int(sec["ps"].strip()) >= 3, text  # the header, sh and its sleep
    assert json.loads(sec["pause"].split("\n", 1)[1])[0]["status"] == "PAUSED", text
    assert sec["exec"].split("\n") == ["in 1 bg", "oops", "rc=4", ""], text
    assert "is RUNNING" in sec["delete-running"] and "rc=1" in sec["delete-running"], text
    stopped = json.loads(sec["stopped"])[0]
    assert (stopped["status"], stopped["exit_status"]) == ("STOPPED", 3), text
    assert sec["logs"] == "started\nbye\n", text
    assert "bg exit status 3" in sec["delete"] and "rc=0" in sec["delete"], text
    assert sec["after"].split() == ["0"], text  # no task, no shim socket left
    assert ctr.mounts() == []
    assert [s["kind"] for s in ctr.snapshots()] == ["committed"]


@pytest.mark.parametrize("compress", ["zstd", "none"])
def test_zstd_and_uncompressed_layers(ctr: Pyctr, tmp_path: Path, compress: str) -> None:
    from pyctr import layout
    from pyctr.busybox import layer

    arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True,
                          check=True).stdout.strip()
    extra = _tar([("hello", "f", f"from a {compress} layer\n".encode())])
    img = layout.Image(f"test/{compress}:1", {"Cmd": ["cat", "/hello"]}, [layer(), extra], arch)
    arc = layout.write(str(tmp_path / "img.tar"), [img], compress=compress)
    ctr("images", "import", arc, check=True)
    info = json.loads(ctr("images", "inspect", f"test/{compress}:1", check=True).stdout)
    want = {"zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
            "none": "application/vnd.oci.image.layer.v1.tar"}[compress]
    assert {ly["mediaType"] for ly in info["manifest"]["layers"]} == {want}
    p = ctr("run", "--rm", f"test/{compress}:1", "z")
    assert p.stdout == f"from a {compress} layer\n", p


def test_bind_mounts(ctr: Pyctr, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "in").write_text("from-host\n")
    p = ctr("run", "--rm", "--mount", f"type=bind,src={shared},dst=/data,options=rbind:ro",
            "busybox:local", "m", "sh", "-c", "cat /data/in; touch /data/x 2>&1; echo $?")
    assert p.stdout.splitlines()[0] == "from-host" and p.stdout.splitlines()[-1] == "1", p
    assert not (shared / "x").exists()
    ctr("run", "--rm", "--mount", f"src={shared},dst=/rw", "busybox:local", "w", "sh", "-c",
        "echo written > /rw/out", check=True)
    assert (shared / "out").read_text() == "written\n"
    for bad, why in [("src=/nonexistent-dir,dst=/x", "does not exist"),
                     (f"src={shared},dst=relative", "absolute"),
                     (f"src={shared},dst=/x,colour=red", "unknown key")]:
        p = ctr("run", "--rm", "--mount", bad, "busybox:local", "b", "true")
        assert p.returncode == 1 and why in p.stderr and len(p.stderr.splitlines()) == 1, p
    assert ctr.mounts() == [] and ctr("containers", "ls", "-q", check=True).stdout == ""


def test_tty(ctr: Pyctr) -> None:
    """-t: the container's stdio is a pty of its own, its exit status still pyctr's (driven
    through script(1), which gives pyctr a terminal)."""
    if not shutil.which("script"):
        pytest.skip("script(1) is not installed")
    cmd = (f"stty rows 33 cols 101; {ctr.bin} --root {ctr.root} --state {ctr.state} run "
           "--rm -t busybox:local tty sh -c 'tty; stty size; exit 5'")
    p = subprocess.run(["script", "-qec", cmd, "/dev/null"], capture_output=True, text=True,
                       timeout=60, stdin=subprocess.DEVNULL)
    assert p.returncode == 5 and p.stdout.split() == ["/dev/pts/0", "33", "101"], p
    p = ctr("run", "--rm", "busybox:local", "notty", "sh", "-c", "tty")
    assert p.stdout.strip() == "not a tty", p


def test_stdin_only_with_interactive(ctr: Pyctr) -> None:
    def run(*flags: str) -> subprocess.CompletedProcess:
        return subprocess.run([ctr.bin, "--root", str(ctr.root), "--state", str(ctr.state),
                               "run", "--rm", *flags, "busybox:local", "in", "cat"],
                              input="piped\n", capture_output=True, text=True, timeout=60)

    assert run("-i").stdout == "piped\n"
    p = run()
    assert p.returncode == 0 and p.stdout == "", p  # /dev/null, as nerdctl and docker
