"""The overlay snapshotter: one directory per layer chain, shared by every image that has it.

A committed snapshot is keyed by its layer chain ID (as containerd's: the chain of diff IDs
below and including it), so two images with the same base share its directories. An active
snapshot (a container's rootfs, or a layer being unpacked) is a new upper directory over its
parents, mounted as overlayfs; the first layer of a chain has no parent and is a plain
directory.

Directories are numbered (<root>/snapshots/<n>/fs, work/) and the overlay's lowerdir names
them relative to <root>/snapshots, as containerd does, so a deep image stays under mount(2)'s
one-page option limit.
"""

from __future__ import annotations

import hashlib
import os
import shutil

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


class Snapshotter:
    def __init__(self, root: str, meta: Meta) -> None:
        self.dir = os.path.join(root, "snapshots")
        os.makedirs(self.dir, 0o700, exist_ok=True)
        self.meta = meta

    def get(self, key: str) -> dict | None:
        r = self.meta.rows("SELECT * FROM snapshots WHERE key=?", key)
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
            with self.meta.tx() as c:
                if c.execute("SELECT 1 FROM snapshots WHERE key=?", (key,)).fetchone():
                    raise PyctrError(f"snapshot {key}: already exists")
                c.execute("INSERT INTO snapshots VALUES (?,?,?,?,?)",
                          (key, parent, "active", n, now()))
        except BaseException:
            shutil.rmtree(os.path.join(self.dir, n), ignore_errors=True)
            raise
        return n

    def commit(self, active: str, key: str) -> None:
        with self.meta.tx() as c:
            if c.execute("SELECT 1 FROM snapshots WHERE key=?", (key,)).fetchone():
                raise PyctrError(f"snapshot {key}: already exists")
            c.execute("UPDATE snapshots SET key=?, kind='committed' WHERE key=? AND "
                      "kind='active'", (key, active))

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

    def mount(self, key: str, target: str, readonly: bool = False) -> None:
        """Mount snapshot key (active: writable upper over its parents) at target."""
        s = self.get(key)
        if s is None:
            raise PyctrError(f"snapshot {key}: no such snapshot")
        if s["parent"] is None:
            path = os.path.join(self.dir, s["dir"], "fs")
            S.mount(path, target, None, S.MS_BIND)
            if readonly:
                S.mount(None, target, None, S.MS_BIND | S.MS_REMOUNT | S.MS_RDONLY)
            return
        lowers = ":".join(self.lowers(s["parent"]))
        if s["kind"] == "committed":
            opts = f"lowerdir={s['dir']}/fs:{lowers}"
        else:
            opts = f"lowerdir={lowers},upperdir={s['dir']}/fs,workdir={s['dir']}/work"
        here = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.chdir(self.dir)  # the relative lowerdirs (see the module doc)
            S.mount("overlay", target, "overlay", S.MS_RDONLY if readonly else 0, opts)
        finally:
            os.fchdir(here)
            os.close(here)

    def mount_command(self, key: str, target: str) -> str:
        """mount(8)'s command line for what mount() does (absolute paths: any cwd)."""
        import shlex

        s = self.get(key)
        if s is None:
            raise PyctrError(f"snapshot {key}: no such snapshot")
        fs = os.path.join(self.dir, s["dir"], "fs")
        ro = s["kind"] == "committed"
        if s["parent"] is None:
            opts = "bind,ro" if ro else "bind"
            return f"mount -o {opts} {shlex.quote(fs)} {shlex.quote(target)}"
        lowers = ":".join(os.path.join(self.dir, p) for p in self.lowers(s["parent"]))
        if ro:
            opts = f"ro,lowerdir={fs}:{lowers}"
        else:
            work = os.path.join(self.dir, s["dir"], "work")
            opts = f"lowerdir={lowers},upperdir={fs},workdir={work}"
        return f"mount -t overlay overlay -o {shlex.quote(opts)} {shlex.quote(target)}"

    def remove(self, key: str) -> None:
        with self.meta.tx() as c:
            r = c.execute("SELECT dir FROM snapshots WHERE key=?", (key,)).fetchone()
            if r is None:
                raise PyctrError(f"snapshot {key}: no such snapshot")
            if c.execute("SELECT 1 FROM snapshots WHERE parent=?", (key,)).fetchone():
                raise PyctrError(f"snapshot {key}: another snapshot is built on it")
            c.execute("DELETE FROM snapshots WHERE key=?", (key,))
        shutil.rmtree(os.path.join(self.dir, r["dir"]), ignore_errors=True)

    def list(self) -> list[dict]:
        return [dict(r) for r in self.meta.rows("SELECT * FROM snapshots ORDER BY created")]


def umount(target: str) -> None:
    try:
        S.umount2(target, S.MNT_DETACH)
    except OSError:
        pass
