"""`pyctr run`: image -> snapshot -> bundle -> a container, in the foreground, through the
pyrunc library (or any runc-compatible binary with --runtime).

The container's rootfs is an active snapshot over the image's chain, mounted at
<state>/<namespace>/<id>/rootfs; pyrunc's state lives under <state>/runc/<namespace>. Whatever
happens, the rootfs is unmounted when the container is gone; with --rm the container record
and its snapshot go too. A failure before the container runs leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

from pyctr.errors import PyctrError
from pyctr.extract import unpack
from pyctr.images import Images
from pyctr.meta import Meta, now
from pyctr.snapshots import Snapshotter, umount
from pyctr.spec import build


class Options:
    def __init__(self, **kw: object) -> None:
        self.rm = bool(kw.get("rm"))
        self.env: list[str] = list(kw.get("env") or [])  # type: ignore[call-overload]
        self.workdir = str(kw.get("workdir") or "")
        self.user = str(kw.get("user") or "")
        self.read_only = bool(kw.get("read_only"))
        self.memory = kw.get("memory")
        self.cpus = kw.get("cpus")
        self.pids_limit = kw.get("pids_limit")
        self.runtime = str(kw.get("runtime") or "")
        self.platform = kw.get("platform")
        self.detach = bool(kw.get("detach"))
        self.tty = bool(kw.get("tty"))
        self.interactive = bool(kw.get("interactive"))
        self.mounts: list[str] = list(kw.get("mount") or [])  # type: ignore[call-overload]


def _valid_id(cid: str) -> None:
    import re

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}", cid):
        raise PyctrError(f"container id {cid!r}: use letters, digits, '_', '.', '-' "
                         "(at most 128, starting with a letter or digit)")


def run(meta: Meta, images: Images, snaps: Snapshotter, state: str, ns: str, image: str,
        cid: str, args: list[str], o: Options) -> int:
    _valid_id(cid)
    img = images.get(image)
    top = unpack(images, snaps, img, o.platform)  # type: ignore[arg-type]
    _, man = images.manifest(img, o.platform)  # type: ignore[arg-type]
    icfg = images.config(man)
    key = f"{ns}/{cid}"
    with meta.tx() as c:
        if c.execute("SELECT 1 FROM containers WHERE namespace=? AND id=?",
                     (ns, cid)).fetchone():
            raise PyctrError(f"container {cid}: already exists (pyctr containers rm {cid})")
        c.execute("INSERT INTO containers (namespace, id, image, snapshot, runtime, created, "
                  "snapshotter) VALUES (?,?,?,?,?,?,?)",
                  (ns, cid, img["name"], key, o.runtime or "pyrunc", now(), snaps.name))
    bundle = os.path.join(state, ns, cid)
    rootfs = os.path.join(bundle, "rootfs")
    if o.detach:
        return _detached(meta, snaps, state, ns, cid, icfg, top, key, bundle, args, o)
    mounted = False
    try:
        snaps.prepare(key, top)
        os.makedirs(rootfs, 0o700, exist_ok=True)
        snaps.mount(key, rootfs)
        mounted = True
        spec = _spec(icfg, cid, rootfs, args, o, ns)
        with open(os.path.join(bundle, "config.json"), "w") as f:
            json.dump(spec, f)
        runc_root = os.path.join(state, "runc", ns)
        if o.runtime:  # (with -t the runtime allocates the pty on our terminal, as runc run)
            rc = subprocess.run([o.runtime, "--root", runc_root, "run", "--bundle", bundle,
                                 cid]).returncode
        else:
            rc = _run_in_process(runc_root, bundle, cid, o.interactive or o.tty)
    except BaseException:
        o.rm = True  # a container that never ran is not kept
        raise
    finally:
        if mounted:
            umount(rootfs)
        shutil.rmtree(bundle, ignore_errors=True)
        if o.rm:
            remove(meta, snaps, ns, cid, missing_ok=True)
    return rc


def _spec(icfg: dict, cid: str, rootfs: str, args: list[str], o: Options, ns: str) -> dict:
    return build(icfg, cid, rootfs, args, env=o.env, workdir=o.workdir, user=o.user,
                 terminal=o.tty, read_only=o.read_only, memory=o.memory,  # type: ignore
                 cpus=o.cpus, pids_limit=o.pids_limit,  # type: ignore[arg-type]
                 cgroups_path=f"/pyctr/{ns}/{cid}", mounts=o.mounts)


def _detached(meta: Meta, snaps: Snapshotter, state: str, ns: str, cid: str, icfg: dict,
              top: str, key: str, bundle: str, args: list[str], o: Options) -> int:
    """Under our shim: the bundle stays (config.json, the shim's address, the log), the shim
    mounts the rootfs from the snapshot's mounts and unmounts it at Delete."""
    from pyctr import tasks

    if o.rm:
        raise PyctrError("--rm with -d: not supported (pyctr tasks delete, containers rm)")
    if o.runtime:
        raise PyctrError("--runtime with -d: the shim runs pyrunc in-process")
    if o.tty or o.interactive:
        raise PyctrError("-t/-i with -d: not supported yet (nothing to attach to later)")
    rootfs = os.path.join(bundle, "rootfs")
    started = False
    try:
        snaps.prepare(key, top)
        os.makedirs(rootfs, 0o700, exist_ok=True)
        snaps.mount(key, rootfs, readonly=True)  # (the image's users, for the spec)
        try:
            spec = _spec(icfg, cid, rootfs, args, o, ns)
        finally:
            umount(rootfs)
        spec["root"]["path"] = "rootfs"
        with open(os.path.join(bundle, "config.json"), "w") as f:
            json.dump(spec, f)
        tasks.create_and_start(bundle, ns, cid, state, snaps.mounts(key))
        started = True
    finally:
        if not started:
            shutil.rmtree(bundle, ignore_errors=True)
            remove(meta, snaps, ns, cid, missing_ok=True)
    print(cid)
    return 0


def _run_in_process(root: str, bundle: str, cid: str, stdin: bool) -> int:
    """What `pyrunc run` does, through the library: create, start, wait, delete. Without -i
    the container's stdin is /dev/null, as with nerdctl and docker."""
    from pyrunc import container, foreground
    from pyrunc.linux import sys as S

    fwd = foreground.Forwarder()  # before the container exists: no signal is lost
    S.prctl(S.PR_SET_CHILD_SUBREAPER, 1)
    null = -1 if stdin else os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    try:
        c = container.create(root, cid, bundle, detach=False,
                             stdio=None if stdin else (null, 1, 2))
    finally:
        if null >= 0:
            os.close(null)
    try:
        container.start(root, cid, c.st)
        return fwd.wait(c.st["pid"], c.console_master)
    finally:
        container.delete(root, cid, force=True)


def remove(meta: Meta, snaps: Snapshotter, ns: str, cid: str, missing_ok: bool = False) -> None:
    with meta.tx() as c:
        r = c.execute("SELECT snapshot FROM containers WHERE namespace=? AND id=?",
                      (ns, cid)).fetchone()
        if r is None:
            if missing_ok:
                return
            raise PyctrError(f"container {cid}: not found")
        c.execute("DELETE FROM containers WHERE namespace=? AND id=?", (ns, cid))
    if snaps.exists(r[0]):
        snaps.remove(r[0])
