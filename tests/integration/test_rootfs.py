"""The container's filesystem view: mounts, their options, /dev, masking and read-only paths."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import Bundle, Runtime, mountinfo_line, unique_id

pytestmark = pytest.mark.integration


def _mount_opts(mountinfo: str, mountpoint: str) -> tuple[set[str], str]:
    """(per-mount options, everything after ' - ') of the last mount at `mountpoint`."""
    lines = mountinfo_line(mountinfo, mountpoint)
    assert lines, f"{mountpoint} is not a mount point inside:\n{mountinfo}"
    left, _, right = lines[-1].partition(" - ")
    return set(left.split(" ")[5].split(",")), right


def test_bind_mount_readonly(rt: Runtime, bundle: Bundle, tmp_path: Path) -> None:
    """A bind mount with `ro` shows the host's files but refuses writes."""
    src = tmp_path / "data"
    src.mkdir()
    (src / "hello").write_text("from host\n")
    bundle.add_mount("/data", str(src), "bind", ["bind", "ro"])
    r = rt.run_sh(bundle, "cat /data/hello; touch /data/new 2>&1; echo rc=$?")
    lines = r.out.splitlines()
    assert lines[0] == "from host"
    assert "Read-only file system" in lines[1]
    assert lines[2] != "rc=0"
    assert not (src / "new").exists()


def test_bind_mount_rw_writes_through(rt: Runtime, bundle: Bundle, tmp_path: Path) -> None:
    """A writable bind mount is the host directory itself."""
    src = tmp_path / "data"
    src.mkdir()
    bundle.add_mount("/data", str(src), "bind", ["rbind", "rw"])
    r = rt.run_sh(bundle, "echo written > /data/out")
    assert r.rc == 0, r
    assert (src / "out").read_text() == "written\n"


def test_bind_mount_flags_in_mountinfo(rt: Runtime, bundle: Bundle, tmp_path: Path) -> None:
    """nosuid/nodev/noexec on a bind mount are real per-mount flags, and noexec is enforced."""
    src = tmp_path / "data"
    src.mkdir()
    (src / "prog").write_text("#!/bin/sh\necho ran\n")
    (src / "prog").chmod(0o755)
    bundle.add_mount("/data", str(src), "bind", ["rbind", "nosuid", "nodev", "noexec"])
    r = rt.run_sh(bundle, "cat /proc/self/mountinfo; echo ---; /data/prog 2>&1; echo rc=$?")
    mountinfo, _, rest = r.out.partition("---\n")
    opts, _ = _mount_opts(mountinfo, "/data")
    assert {"nosuid", "nodev", "noexec"} <= opts
    assert "ran" not in rest
    assert "rc=126" in rest


def test_tmpfs_with_size(rt: Runtime, bundle: Bundle) -> None:
    """Filesystem data options (size=) reach the kernel."""
    bundle.add_mount("/scratch", "tmpfs", "tmpfs", ["nosuid", "size=1m", "mode=1777"])
    r = rt.run_sh(bundle, "cat /proc/self/mountinfo; stat -c %a /scratch")
    assert r.rc == 0, r
    opts, right = _mount_opts(r.out, "/scratch")
    assert right.startswith("tmpfs ")
    assert "size=1024k" in right.split(" ")[2].split(",")
    assert "nosuid" in opts
    assert r.out.splitlines()[-1] == "1777"


@pytest.fixture
def host_marker() -> Iterator[Path]:
    """A host path that must not come into existence (the test asserts it never does)."""
    p = Path(f"/pyrunc-escape-{uuid.uuid4().hex[:12]}")
    assert not p.exists()
    yield p
    if p.exists():
        subprocess.run(["rm", "-rf", str(p)], check=False)


def test_destination_through_absolute_symlink(
    rt: Runtime, bundle: Bundle, tmp_path: Path, host_marker: Path
) -> None:
    """An absolute symlink in the rootfs resolves inside the rootfs, never on the host."""
    name = host_marker.name
    (bundle.rootfs / name / "conf").mkdir(parents=True)
    os.symlink(f"/{name}/conf", bundle.rootfs / "conf")
    src = tmp_path / "conf-src"
    src.mkdir()
    (src / "marker").write_text("bound\n")
    bundle.add_mount("/conf", str(src), "bind", ["bind", "ro"])
    r = rt.run_sh(bundle, f"cat /{name}/conf/marker; cat /proc/self/mountinfo")
    assert r.rc == 0, r
    assert r.out.splitlines()[0] == "bound"
    assert mountinfo_line(r.out, f"/{name}/conf")
    assert not host_marker.exists()
    assert os.path.islink(bundle.rootfs / "conf")


def test_destination_through_dangling_symlink(
    rt: Runtime, bundle: Bundle, tmp_path: Path, host_marker: Path
) -> None:
    """A destination that is a symlink to a missing path gets that path made inside the rootfs
    (runc: SecureJoin, then MkdirAll), and nothing is made on the host."""
    name = host_marker.name
    os.symlink(f"/{name}/conf", bundle.rootfs / "conf")
    src = tmp_path / "conf-src"
    src.mkdir()
    (src / "marker").write_text("bound\n")
    bundle.add_mount("/conf", str(src), "bind", ["bind", "ro"])
    r = rt.run_sh(bundle, f"cat /{name}/conf/marker")
    assert not host_marker.exists()
    assert r.rc == 0, r
    assert r.out == "bound\n"
    assert (bundle.rootfs / name / "conf").is_dir()


def test_destination_with_dotdot_stays_inside(
    rt: Runtime, bundle: Bundle, tmp_path: Path, host_marker: Path
) -> None:
    """`..` in a destination cannot climb above the rootfs."""
    name = host_marker.name
    bundle.add_mount(f"/../../../../{name}", "tmpfs", "tmpfs", ["size=1m"])
    r = rt.run_sh(bundle, f"cat /proc/self/mountinfo; ls -d /{name}")
    assert r.rc == 0, r
    assert mountinfo_line(r.out, f"/{name}")
    assert not host_marker.exists()
    assert (bundle.rootfs / name).is_dir()


def test_missing_destination_is_created(rt: Runtime, bundle: Bundle, tmp_path: Path) -> None:
    """Missing mount points (and parents) are made, for dirs and for single-file binds."""
    f = tmp_path / "file.txt"
    f.write_text("single file\n")
    bundle.add_mount("/a/b/c", "tmpfs", "tmpfs", [])
    bundle.add_mount("/etc/extra/file.txt", str(f), "bind", ["bind", "ro"])
    r = rt.run_sh(bundle, "cat /etc/extra/file.txt; cat /proc/self/mountinfo")
    assert r.rc == 0, r
    assert r.out.splitlines()[0] == "single file"
    assert mountinfo_line(r.out, "/a/b/c")
    assert mountinfo_line(r.out, "/etc/extra/file.txt")
    assert (bundle.rootfs / "a/b/c").is_dir()
    assert (bundle.rootfs / "etc/extra/file.txt").is_file()


@pytest.mark.parametrize("readonly", [True, False])
def test_root_readonly(rt: Runtime, bundle: Bundle, readonly: bool) -> None:
    """root.readonly decides whether / is writable."""
    bundle.config["root"]["readonly"] = readonly
    r = rt.run_sh(bundle, "touch /newfile 2>&1; echo rc=$?")
    if readonly:
        assert "Read-only file system" in r.out
        assert "rc=0" not in r.out
        assert not (bundle.rootfs / "newfile").exists()
    else:
        assert r.out.strip() == "rc=0"
        assert (bundle.rootfs / "newfile").exists()


def test_masked_paths(rt: Runtime, bundle: Bundle) -> None:
    """A masked file reads empty and a masked directory is empty."""
    (bundle.rootfs / "etc/secret").write_text("top secret\n")
    d = bundle.rootfs / "etc/secretdir"
    d.mkdir()
    (d / "inner").write_text("also secret\n")
    bundle.linux["maskedPaths"] += ["/etc/secret", "/etc/secretdir", "/does/not/exist"]
    r = rt.run_sh(bundle, 'echo "[$(cat /etc/secret)]"; echo "[$(ls -A /etc/secretdir)]"')
    assert r.rc == 0, r
    assert r.out.splitlines() == ["[]", "[]"]
    assert (bundle.rootfs / "etc/secret").read_text() == "top secret\n"


def test_readonly_paths(rt: Runtime, bundle: Bundle) -> None:
    """readonlyPaths (here runc's default /proc/sys) are read-only mounts."""
    bundle.process["capabilities"]["bounding"].append("CAP_SYS_ADMIN")
    bundle.process["capabilities"]["effective"].append("CAP_SYS_ADMIN")
    bundle.process["capabilities"]["permitted"].append("CAP_SYS_ADMIN")
    r = rt.run_sh(
        bundle,
        "cat /proc/self/mountinfo; echo ---;"
        " (echo x > /proc/sys/kernel/hostname) 2>&1; echo rc=$?; hostname",
    )
    mountinfo, _, rest = r.out.partition("---\n")
    opts, _ = _mount_opts(mountinfo, "/proc/sys")
    assert "ro" in opts
    assert "Read-only file system" in rest
    assert "rc=0" not in rest
    assert rest.splitlines()[-1] == bundle.config["hostname"]


def test_readonly_paths_keep_exec_and_the_mounts_own_flags(rt: Runtime, bundle: Bundle) -> None:
    """A read-only path is made read-only and nothing more (as runc): a read-only /bin still
    runs its programs, while a path on a nosuid,nodev mount keeps those flags."""
    bundle.config["root"]["readonly"] = False
    bundle.add_mount("/data", "tmpfs", "tmpfs", ["nosuid", "nodev"])
    bundle.linux["readonlyPaths"] = ["/bin", "/data"]
    r = rt.run_sh(bundle, "cat /proc/self/mountinfo; touch /data/x 2>&1; echo rc=$?")
    assert r.rc == 0, r  # sh itself came from the read-only /bin
    bin_opts, _ = _mount_opts(r.out, "/bin")
    assert "ro" in bin_opts and "noexec" not in bin_opts, bin_opts
    data_opts, _ = _mount_opts(r.out, "/data")
    assert {"ro", "nosuid", "nodev"} <= set(data_opts) and "noexec" not in data_opts, data_opts
    assert "Read-only file system" in r.out


def test_default_devices(rt: Runtime, bundle: Bundle) -> None:
    """The OCI default devices exist with the right type, numbers and mode."""
    want = {
        "null": "1:3",
        "zero": "1:5",
        "full": "1:7",
        "random": "1:8",
        "urandom": "1:9",
        "tty": "5:0",
    }
    script = "; ".join(f"stat -c '%n %F %t:%T %a' /dev/{n}" for n in want)
    r = rt.run_sh(bundle, script)
    assert r.rc == 0, r
    got = {}
    for line in r.out.splitlines():
        path, rest = line.split(" ", 1)
        got[path.removeprefix("/dev/")] = rest
    for name, numbers in want.items():
        major, minor = (int(x) for x in numbers.split(":"))
        assert got[name] == f"character special file {major:x}:{minor:x} 666", name


def test_default_devices_work(rt: Runtime, bundle: Bundle) -> None:
    """The device cgroup lets the defaults through: /dev/null swallows, /dev/zero reads zeros."""
    r = rt.run_sh(bundle, "echo x > /dev/null && head -c 4 /dev/zero | od -An -tx1")
    assert r.rc == 0, r
    assert r.out.split() == ["00", "00", "00", "00"]


def test_extra_device(rt: Runtime, bundle: Bundle) -> None:
    """linux.devices adds a node with the configured type, numbers, mode and owner."""
    bundle.linux["devices"] = [
        {
            "path": "/dev/fuse",
            "type": "c",
            "major": 10,
            "minor": 229,
            "fileMode": 0o600,
            "uid": 0,
            "gid": 5,
        },
    ]
    r = rt.run_sh(bundle, "stat -c '%F %t:%T %a %u:%g' /dev/fuse")
    assert r.rc == 0, r
    assert r.out.strip() == "character special file a:e5 600 0:5"


def test_dev_symlinks(rt: Runtime, bundle: Bundle) -> None:
    """/dev/fd and the stdio links point into /proc/self/fd; /dev/ptmx into pts."""
    links = ("fd", "stdin", "stdout", "stderr", "ptmx")
    r = rt.run_sh(bundle, "; ".join(f"readlink /dev/{n}" for n in links))
    assert r.rc == 0, r
    assert r.out.splitlines() == [
        "/proc/self/fd",
        "/proc/self/fd/0",
        "/proc/self/fd/1",
        "/proc/self/fd/2",
        "pts/ptmx",
    ]


def test_dev_pts_and_shm_mounted(rt: Runtime, bundle: Bundle) -> None:
    """/dev/pts is a private devpts instance and /dev/shm a tmpfs, as the config asks."""
    r = rt.run_sh(bundle, "cat /proc/self/mountinfo")
    assert r.rc == 0, r
    opts, right = _mount_opts(r.out, "/dev/pts")
    assert right.startswith("devpts ")
    assert {"nosuid", "noexec"} <= opts
    assert "ptmxmode=666" in right and "gid=5" in right
    opts, right = _mount_opts(r.out, "/dev/shm")
    assert right.startswith("tmpfs ")
    assert {"nosuid", "nodev", "noexec"} <= opts
    opts, right = _mount_opts(r.out, "/dev")
    assert right.startswith("tmpfs ")


def test_no_pivot(rt: Runtime, bundle: Bundle) -> None:
    """--no-pivot (MS_MOVE + chroot) still gives the rootfs as / and a working /proc."""
    r = rt.run_sh(bundle, "ls -a /; echo ---; echo $$; cat /proc/self/mountinfo", "--no-pivot")
    assert r.rc == 0, r
    listing, _, rest = r.out.partition("---\n")
    assert set(listing.split()) - {".", ".."} == set(os.listdir(bundle.rootfs))
    assert rest.splitlines()[0] == "1"
    assert mountinfo_line(rest, "/proc")


@pytest.fixture
def shared_mount(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs of ours on the host, made shared so mounts below it can propagate."""
    d = tmp_path / "shared"
    d.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(d)], check=True)
    try:
        subprocess.run(["mount", "--make-shared", str(d)], check=True)
        (d / "sub").mkdir()
        yield d
    finally:
        subprocess.run(["umount", "-R", "-l", str(d)], check=False)


@pytest.mark.parametrize(
    "propagation,propagates",
    # non-recursive "private" changes only "/": the shared tmpfs below it keeps propagating
    [("rslave", True), ("rprivate", False), ("slave", True), ("private", True)],
)
def test_rootfs_propagation(
    rt: Runtime,
    bundle: Bundle,
    tmp_path: Path,
    shared_mount: Path,
    propagation: str,
    propagates: bool,
) -> None:
    """rootfsPropagation decides whether host mounts made after create reach the container."""
    bundle.linux["rootfsPropagation"] = propagation
    bundle.add_mount("/mnt", str(shared_mount), "bind", ["rbind"])
    bundle.sh("cat /mnt/sub/marker 2>/dev/null || echo not-seen")
    cid = unique_id()
    out = tmp_path / "out"
    r = rt.create(cid, bundle, output=out)
    assert r.rc == 0, r
    # after create the container's mount namespace exists: mount below the shared dir now
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(shared_mount / "sub")], check=True)
    (shared_mount / "sub" / "marker").write_text("propagated\n")
    assert rt.cmd("start", cid).rc == 0
    rt.wait_status(cid, "stopped")
    assert out.read_text().strip() == ("propagated" if propagates else "not-seen")


@pytest.mark.parametrize(
    "propagation",
    [
        "rslave",
        "rprivate",
        "shared",
        "rshared",
    ],
)
def test_rootfs_propagation_values_start(rt: Runtime, bundle: Bundle, propagation: str) -> None:
    """Every valid rootfsPropagation value gives a container that runs (runc accepts all)."""
    bundle.linux["rootfsPropagation"] = propagation
    r = rt.run_sh(bundle, "echo started")
    assert r.rc == 0, r
    assert r.out == "started\n"


def _copyup_tree(rootfs: Path) -> None:
    """An image directory with every kind of entry tmpcopyup must carry over."""
    d = rootfs / "scratch"
    (d / "sub").mkdir(parents=True)
    os.chmod(d, 0o750)
    os.chown(d, 0, 8)  # root: the default capabilities have no CAP_DAC_OVERRIDE
    os.chmod(d / "sub", 0o777)  # kept exactly: no umask applies to a copy
    (d / "file").write_text("from the image\n")
    os.chown(d / "file", 1000, 1001)
    os.chmod(d / "file", 0o4755)  # set-uid survives (chown comes before chmod)
    os.setxattr(d / "file", "trusted.pyrunc", b"kept")
    os.symlink("/etc/passwd", d / "abs-link")  # copied as a link, never followed
    os.symlink("file", d / "rel-link")
    os.mkfifo(d / "fifo", 0o640)
    os.utime(d / "file", (1_000_000_000, 1_000_000_000))


def test_tmpfs_tmpcopyup_copies_the_image_directory(rt: Runtime, bundle: Bundle) -> None:
    """tmpcopyup (runc's extension; podman's --tmpfs and --read-only give it): the tmpfs starts
    with a copy of what the image had there, owners, modes, xattrs, links and times kept, and
    writes land in the tmpfs, not in the image."""
    _copyup_tree(bundle.rootfs)
    bundle.add_mount("/scratch", "tmpfs", "tmpfs", ["nosuid", "nodev", "tmpcopyup"])
    r = rt.run_sh(
        bundle,
        "grep ' /scratch ' /proc/self/mountinfo | sed 's/.* - //'; "
        "stat -c '%n %a %u:%g %F' /scratch /scratch/sub /scratch/file /scratch/fifo; "
        "stat -c '%Y' /scratch/file; cat /scratch/file; "
        "readlink /scratch/abs-link; readlink /scratch/rel-link; cat /scratch/rel-link; "
        "echo new > /scratch/new",
    )
    assert r.rc == 0, r
    lines = r.out.splitlines()
    assert lines[0].startswith("tmpfs "), r.out
    assert lines[1:5] == [
        "/scratch 750 0:8 directory",
        "/scratch/sub 777 0:0 directory",
        "/scratch/file 4755 1000:1001 regular file",
        "/scratch/fifo 640 0:0 fifo",
    ]
    assert lines[5] == "1000000000"
    assert lines[6] == "from the image"
    assert lines[7:9] == ["/etc/passwd", "file"]
    assert lines[9] == "from the image"
    assert not (bundle.rootfs / "scratch" / "new").exists()  # the write went to the tmpfs


def test_tmpfs_tmpcopyup_keeps_xattrs(rt: Runtime, bundle: Bundle, tmp_path: Path) -> None:
    """The copied file carries the image file's trusted.* xattr (read from the host through
    the container's /proc/<pid>/root: busybox has no getfattr)."""
    _copyup_tree(bundle.rootfs)
    bundle.add_mount("/scratch", "tmpfs", "tmpfs", ["tmpcopyup"])
    bundle.args("sleep", "30")
    cid = unique_id()
    bundle.save()
    assert rt.detached("run", "-d", "-b", str(bundle.path), cid, cid=cid).rc == 0
    pid = rt.state(cid)["pid"]
    path = f"/proc/{pid}/root/scratch/file"
    assert os.getxattr(path, "trusted.pyrunc") == b"kept"
    # and it is the tmpfs's copy, not the image's file
    assert os.stat(path).st_dev != os.stat(bundle.rootfs / "scratch" / "file").st_dev
    rt.delete(cid, force=True)


def test_tmpfs_tmpcopyup_readonly_and_missing(rt: Runtime, bundle: Bundle) -> None:
    """`ro` with tmpcopyup: filled first, read-only after; over a missing directory there is
    nothing to copy and the tmpfs is simply made."""
    _copyup_tree(bundle.rootfs)
    bundle.add_mount("/scratch", "tmpfs", "tmpfs", ["ro", "tmpcopyup"])
    bundle.add_mount("/nowhere", "tmpfs", "tmpfs", ["tmpcopyup"])
    r = rt.run_sh(
        bundle,
        "cat /scratch/file; touch /scratch/x 2>&1; ls -A /nowhere | wc -l; stat -c %a /nowhere",
    )
    assert r.rc == 0, r
    lines = r.out.splitlines()
    assert lines[0] == "from the image"
    assert "Read-only file system" in lines[1]
    assert lines[2:] == ["0", "1777"]


def test_tmpfs_over_a_directory_takes_its_mode(rt: Runtime, bundle: Bundle) -> None:
    """As runc: a tmpfs over an existing directory gets that directory's mode, unless the
    options name one (runc 1.1.5 overrode mode= too; later runc and the spec do not)."""
    for d in ("a", "b"):
        (bundle.rootfs / d).mkdir()
        os.chmod(bundle.rootfs / d, 0o700)
    bundle.add_mount("/a", "tmpfs", "tmpfs", [])
    bundle.add_mount("/b", "tmpfs", "tmpfs", ["mode=1777"])
    r = rt.run_sh(bundle, "stat -c %a /a /b")
    assert r.rc == 0, r
    assert r.out.split() == ["700", "1777"]


def test_tmpcopyup_is_a_feature_and_idmap_on_a_tmpfs_is_refused(rt: Runtime, bundle: Bundle
                                                                ) -> None:
    """`features` lists tmpcopyup; idmap (runc 1.2, test_idmapped.py) is for bind mounts only:
    on a tmpfs it is refused by name, not handed to mount(2)."""
    import json

    assert "tmpcopyup" in json.loads(rt.cmd("features").out)["mountOptions"]
    bundle.add_mount("/a", "tmpfs", "tmpfs", ["idmap"])
    r = rt.run_sh(bundle, "true")
    assert r.rc != 0
    assert "idmapped mounts must be bind mounts" in r.err, r


@pytest.mark.parametrize("path", ["/foo-dev", "/subdir/foo-dev"])
def test_device_outside_dev(rt: Runtime, bundle: Bundle, path: str) -> None:
    """The spec puts no limit on where linux.devices go (runc and crun create /foo-dev)."""
    bundle.linux["devices"] = [
        {"path": path, "type": "c", "major": 1, "minor": 5, "fileMode": 0o640, "uid": 0,
         "gid": 0},
    ]
    bundle.linux.setdefault("resources", {})["devices"] = [
        {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "rwm"}
    ]
    r = rt.run_sh(bundle, f"stat -c '%F %t:%T %a' {path}; head -c 4 {path} | od -An -tx1")
    assert r.rc == 0, r
    assert r.out.splitlines() == ["character special file 1:5 640", " 00 00 00 00"]


def test_device_through_a_symlink_stays_in_the_rootfs(
    rt: Runtime, bundle: Bundle, tmp_path: Path
) -> None:
    """A device whose parent in the image is a symlink out of the rootfs is made inside it."""
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(str(outside), bundle.rootfs / "subdir")
    bundle.linux["devices"] = [
        {"path": "/subdir/foo-dev", "type": "c", "major": 1, "minor": 3, "fileMode": 0o666},
    ]
    r = rt.run_sh(bundle, "stat -c %F /subdir/foo-dev")
    assert r.rc == 0, r
    assert r.out.strip() == "character special file"
    assert not (outside / "foo-dev").exists()
    assert (bundle.rootfs / str(outside).lstrip("/") / "foo-dev").exists()
