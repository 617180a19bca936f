"""pyctr: from an image to a running container, checked from inside the container and on the
host (mounts, snapshots, records, blobs left behind). Images are made here, offline: pyctr's
own busybox:local, hand-made OCI archives (whiteouts, crafted layers), and skopeo's docker
archive of the same image.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
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
