"""Snapshotters: one directory per layer chain, shared by every image that has it.

A committed snapshot is keyed by its layer chain ID (as containerd's: the chain of diff IDs
below and including it), so two images with the same base share its directories. An active
snapshot (a container's rootfs, or a layer being unpacked) is writable over its parent.

Two kinds, as containerd's (`--snapshotter`, recorded per snapshot and per container):
- overlayfs (the default): an active snapshot is a new upper directory over its parents,
  mounted as overlayfs; a deletion is an overlay whiteout in its upper directory.
- native: an active snapshot starts as a full copy of its parent (`cp -a`: owners, modes,
  xattrs, hard links, device nodes, times), mounted with a bind; for filesystems where
  overlayfs cannot be used (a pyctr root on overlayfs itself, or a kernel without it), at
  the cost of the copy and the space.
The first layer of a chain has no parent and is a plain directory either way.

Directories are numbered (<root>/snapshots/<n>/fs, work/) and the overlay's lowerdir names
them relative to <root>/snapshots, as containerd does, so a deep image stays under mount(2)'s
one-page option limit.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

from pyctr.errors import PyctrError
from pyctr.meta import Meta, now
from pyrunc.linux import sys as S


def chain_ids(diff_ids: list[str]) -> list[str]:
    """containerd's (and the image spec's) ChainID of every layer prefix."""
    out: list[str] = []
    for d in diff_ids:
        if not out:
            out.append(d)
        else:
            out.append("sha256:" + hashlib.sha256(f"{out[-1]} {d}".encode()).hexdigest())
    return out


KINDS = ("overlayfs", "native")


def default_kind(root: str) -> str:
    """overlayfs where the kernel has it and <root> is not itself on overlayfs (an upper
    directory there is refused), else native; as containerd picks per machine."""
    try:
        with open("/proc/filesystems") as f:
            have = any(line.split()[-1:] == ["overlay"] for line in f)
    except OSError:
        have = False
    if not have:
        return "native"
    return "native" if fs_type(root) == "overlay" else "overlayfs"


def fs_type(path: str) -> str:
    """The filesystem type of the mount holding path (its deepest existing ancestor), from
    /proc/self/mountinfo: the mount point that is path's longest prefix."""
    d = os.path.realpath(path)
    while not os.path.exists(d):
        d = os.path.dirname(d)
    best, kind = "", ""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            mp = fields[4].replace("\\040", " ")
            fstype = fields[fields.index("-") + 1]
            if (d == mp or d.startswith(mp.rstrip("/") + "/")) and len(mp) >= len(best):
                best, kind = mp, fstype
    return kind


class Snapshotter:
    def __init__(self, root: str, meta: Meta, name: str = "overlayfs") -> None:
        if name not in KINDS:
            raise PyctrError(f"snapshotter {name!r}: not one of {', '.join(KINDS)}")
        self.name = name
        self.root = root
        self.dir = os.path.join(root, "snapshots")
        os.makedirs(self.dir, 0o700, exist_ok=True)
        self.meta = meta

    def of(self, kind: str) -> Snapshotter:
        """The snapshotter of that kind over the same root (a container's own, say)."""
        return self if kind == self.name else Snapshotter(self.root, self.meta, kind)

    def get(self, key: str) -> dict | None:
        r = self.meta.rows("SELECT * FROM snapshots WHERE snapshotter=? AND key=?",
                           self.name, key)
        return dict(r[0]) if r else None

    def exists(self, key: str) -> bool:
        return self.get(key) is not None

    def _new_dir(self) -> str:
        for _ in range(1000):
            n = os.urandom(4).hex()
            d = os.path.join(self.dir, n)
            try:
                os.mkdir(d, 0o700)
            except FileExistsError:
                continue
            os.mkdir(os.path.join(d, "fs"), 0o755)
            os.mkdir(os.path.join(d, "work"), 0o700)
            return n
        raise PyctrError("snapshots: cannot make a directory")

    def prepare(self, key: str, parent: str | None) -> str:
        """A new active snapshot over parent (committed); returns its directory name."""
        if parent is not None:
            p = self.get(parent)
            if p is None or p["kind"] != "committed":
                raise PyctrError(f"snapshot {parent}: no such committed snapshot")
        n = self._new_dir()
        try:
            if parent is not None and self.name == "native":
                self._copy(os.path.join(self.dir, p["dir"], "fs"),  # type: ignore[index]
                           os.path.join(self.dir, n, "fs"))
            with self.meta.tx() as c:
                if c.execute("SELECT 1 FROM snapshots WHERE snapshotter=? AND key=?",
                             (self.name, key)).fetchone():
                    raise PyctrError(f"snapshot {key}: already exists")
                c.execute("INSERT INTO snapshots (snapshotter, key, parent, kind, dir, "
                          "created) VALUES (?,?,?,?,?,?)",
                          (self.name, key, parent, "active", n, now()))
        except BaseException:
            shutil.rmtree(os.path.join(self.dir, n), ignore_errors=True)
            raise
        return n

    @staticmethod
    def _copy(src: str, dst: str) -> None:
        """The parent's tree into a new snapshot, as it is (GNU cp -a: the copy containerd's
        native snapshotter makes with its own code; reflinks where the filesystem shares
        blocks)."""
        p = subprocess.run(["cp", "-a", "--reflink=auto", "--no-target-directory", src, dst],
                           capture_output=True, text=True)
        if p.returncode != 0:
            raise PyctrError(f"native snapshot: copying {src}: {p.stderr.strip()}")

    @contextmanager
    def writable(self, key: str) -> Iterator[str]:
        """A path where active snapshot key can be written as its container would see it:
        its own directory when it has no lower layers (no parent, or native), else an
        overlay mount at a private temp mountpoint (so deletions become whiteouts)."""
        s = self.get(key)
        if s is None or s["kind"] != "active":
            raise PyctrError(f"snapshot {key}: no such active snapshot")
        if s["parent"] is None or self.name == "native":
            yield os.path.join(self.dir, s["dir"], "fs")
            return
        import tempfile

        mnt = tempfile.mkdtemp(prefix="mnt-", dir=self.dir)
        try:
            self.mount(key, mnt)
            try:
                yield mnt
            finally:
                umount(mnt)
        finally:
            os.rmdir(mnt)

    def commit(self, active: str, key: str) -> None:
        with self.meta.tx() as c:
            if c.execute("SELECT 1 FROM snapshots WHERE snapshotter=? AND key=?",
                         (self.name, key)).fetchone():
                raise PyctrError(f"snapshot {key}: already exists")
            c.execute("UPDATE snapshots SET key=?, kind='committed' WHERE snapshotter=? AND "
                      "key=? AND kind='active'", (key, self.name, active))

    def lowers(self, key: str) -> list[str]:
        """The fs directories of key and its ancestors, nearest first (relative)."""
        out = []
        k: str | None = key
        while k is not None:
            s = self.get(k)
            if s is None:
                raise PyctrError(f"snapshot {k}: missing (its image is damaged: re-import it)")
            out.append(f"{s['dir']}/fs")
            k = s["parent"]
        return out

    def mounts(self, key: str, relative: bool = False) -> list[tuple[str, str, list[str]]]:
        """(type, source, options) that show snapshot key: an active one writable over its
        parents, a committed one read-only. Paths are absolute (for the shim, mount(8)), or
        relative to <root>/snapshots for our own mount(2) (see the module doc)."""
        s = self.get(key)
        if s is None:
            raise PyctrError(f"snapshot {key}: no such snapshot")
        ro = s["kind"] == "committed"
        fs = os.path.join(self.dir, s["dir"], "fs")
        if s["parent"] is None or self.name == "native":
            return [("bind", fs, ["rbind", "ro" if ro else "rw"])]

        def at(p: str) -> str:
            return p if relative else os.path.join(self.dir, p)

        lowers = ":".join(at(p) for p in self.lowers(s["parent"]))
        if ro:
            return [("overlay", "overlay", ["ro", f"lowerdir={at(s['dir'] + '/fs')}:{lowers}"])]
        return [("overlay", "overlay", [f"lowerdir={lowers}", f"upperdir={at(s['dir'] + '/fs')}",
                                        f"workdir={at(s['dir'] + '/work')}"])]

    def mount(self, key: str, target: str, readonly: bool = False) -> None:
        """Mount snapshot key at target (read-only if asked, or if it is committed)."""
        [(kind, source, opts)] = self.mounts(key, relative=True)
        ro = readonly or "ro" in opts
        if kind == "bind":
            S.mount(source, target, None, S.MS_BIND)
            if ro:
                S.mount(None, target, None, S.MS_BIND | S.MS_REMOUNT | S.MS_RDONLY)
            return
        here = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.chdir(self.dir)  # the relative lowerdirs (see the module doc)
            S.mount("overlay", target, "overlay", S.MS_RDONLY if ro else 0,
                    ",".join(o for o in opts if o != "ro"))
        finally:
            os.fchdir(here)
            os.close(here)

    def mount_command(self, key: str, target: str) -> str:
        """mount(8)'s command line for snapshot key (absolute paths: any cwd)."""
        import shlex

        [(kind, source, opts)] = self.mounts(key)
        opts = ["bind" if o == "rbind" else o for o in opts]
        t = "" if kind == "bind" else f"-t {kind} "
        return (f"mount {t}-o {shlex.quote(','.join(opts))} {shlex.quote(source)} "
                f"{shlex.quote(target)}")

    def remove(self, key: str) -> None:
        with self.meta.tx() as c:
            r = c.execute("SELECT dir FROM snapshots WHERE snapshotter=? AND key=?",
                          (self.name, key)).fetchone()
            if r is None:
                raise PyctrError(f"snapshot {key}: no such snapshot")
            if c.execute("SELECT 1 FROM snapshots WHERE snapshotter=? AND parent=?",
                         (self.name, key)).fetchone():
                raise PyctrError(f"snapshot {key}: another snapshot is built on it")
            c.execute("DELETE FROM snapshots WHERE snapshotter=? AND key=?", (self.name, key))
        shutil.rmtree(os.path.join(self.dir, r["dir"]), ignore_errors=True)

    def list(self) -> list[dict]:
        return [dict(r) for r in self.meta.rows(
            "SELECT * FROM snapshots WHERE snapshotter=? ORDER BY created", self.name)]


def umount(target: str) -> None:
    try:
        S.umount2(target, S.MNT_DETACH)
    except OSError:
        pass
