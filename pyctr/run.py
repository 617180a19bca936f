"""Containers and their tasks: `containers create` (image -> snapshot -> spec, kept in the
metadata), `tasks start` (the spec -> a bundle -> a running container), and `run`, which is
both.

A container is its record: image, runtime, snapshotter, an active snapshot over the image's
chain (its writable rootfs, kept until `containers rm`) and the runtime spec built from the
image config (containerd's default spec, spec.py). Starting it makes the bundle
<state>/<namespace>/<id> (config.json, and the rootfs mounted from the snapshot) and runs it:
- in the foreground, through the pyrunc library (or any runc-compatible binary with
  --runtime); pyrunc's state lives under <state>/runc/<namespace>; whatever happens, the
  rootfs is unmounted and the bundle removed when the container is gone;
- detached, under containerd-shim-pyrunc-v2 (tasks.py), which mounts and unmounts the rootfs
  itself and keeps the bundle (log, exit status) until `tasks delete`.
A failure before the container runs leaves nothing behind: `run` takes back the record and
the snapshot it made.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from typing import TYPE_CHECKING

from pyctr.errors import PyctrError
from pyctr.extract import unpack
from pyctr.images import Images
from pyctr.meta import Meta, now
from pyctr.networks import Net, Setup
from pyctr.snapshots import Snapshotter, umount
from pyctr.spec import build

if TYPE_CHECKING:
    from pyctr.cni import CNI


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
        self.net = str(kw.get("net") or "none")
        self.publish: list[str] = list(kw.get("publish") or [])  # type: ignore[call-overload]
        self.dns: list[str] = list(kw.get("dns") or [])  # type: ignore[call-overload]
        self.add_host: list[str] = list(kw.get("add_host") or [])  # type: ignore[call-overload]
        self.hostname = str(kw.get("hostname") or "")
        self.seccomp = ""
        for opt in kw.get("security_opt") or []:  # type: ignore[attr-defined]
            k, sep, v = str(opt).partition("=")
            if k != "seccomp" or not sep or not v:
                raise PyctrError(f"--security-opt {opt!r}: only seccomp=unconfined or "
                                 "seccomp=PROFILE.json")
            self.seccomp = v


def _valid_id(cid: str) -> None:
    import re

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}", cid):
        raise PyctrError(f"container id {cid!r}: use letters, digits, '_', '.', '-' "
                         "(at most 128, starting with a letter or digit)")


def _check_detach(o: Options) -> None:
    if not o.detach:
        return
    if o.rm:
        raise PyctrError("--rm with -d: not supported (pyctr tasks delete, containers rm)")
    if o.runtime:
        raise PyctrError("--runtime with -d: the shim runs pyrunc in-process")
    if o.interactive:
        raise PyctrError("-i with -d: not supported (pyctr has no attach to give stdin later)")


def run(meta: Meta, images: Images, snaps: Snapshotter, state: str, ns: str, image: str,
        cid: str, args: list[str], o: Options, cni: CNI) -> int:
    _check_detach(o)
    create(meta, images, snaps, state, ns, image, cid, args, o, cni)
    try:
        rc = start(meta, snaps, state, ns, cid, detach=o.detach, stdin=o.interactive, cni=cni)
    except BaseException:
        remove(meta, snaps, state, ns, cid, cni, missing_ok=True)  # never ran: not kept
        raise
    if o.rm:
        remove(meta, snaps, state, ns, cid, cni, missing_ok=True)
    return rc


def create(meta: Meta, images: Images, snaps: Snapshotter, state: str, ns: str, image: str,
           cid: str, args: list[str], o: Options, cni: CNI) -> None:
    """The container record, its active snapshot and its spec; nothing runs yet."""
    _valid_id(cid)
    net = _net_options(meta, ns, o, cni)
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
    done = False
    tmp = os.path.join(state, ns, f".create-{cid}")
    try:
        snaps.prepare(key, top)
        os.makedirs(tmp, 0o700, exist_ok=True)
        snaps.mount(key, tmp, readonly=True)  # the image's /etc/passwd, for --user
        try:
            spec = build(icfg, cid, tmp, args, env=o.env, workdir=o.workdir, user=o.user,
                         terminal=o.tty, read_only=o.read_only,
                         memory=o.memory, cpus=o.cpus,  # type: ignore[arg-type]
                         pids_limit=o.pids_limit,  # type: ignore[arg-type]
                         cgroups_path=f"/pyctr/{ns}/{cid}", mounts=o.mounts,
                         seccomp=o.seccomp)
        finally:
            umount(tmp)
        spec["root"]["path"] = "rootfs"  # (the bundle's)
        if o.hostname:
            _valid_hostname(o.hostname)
            spec["hostname"] = o.hostname
        with meta.tx() as c:
            c.execute("UPDATE containers SET spec=?, net=? WHERE namespace=? AND id=?",
                      (json.dumps(spec), net.to_json(), ns, cid))
        done = True
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if not done:
            remove(meta, snaps, state, ns, cid, cni, missing_ok=True)


def _net_options(meta: Meta, ns: str, o: Options, cni: CNI) -> Net:
    """--net and its companions, checked before anything is made: the network must exist
    (`bridge` is made on first use), a container:ID must exist."""
    from pyctr import networks

    net = Net(o.net, o.publish, o.dns, o.add_host)
    if net.cni:
        from pyctr.cni import load_dir

        if net.mode not in load_dir(cni.conf_dir):
            if net.mode != networks.DEFAULT:
                raise PyctrError(f"--net {net.mode}: no such network (pyctr network ls, "
                                 "network create)")
            networks.create(cni.conf_dir, os.path.join(os.path.dirname(cni.cache),
                                                        "networks"), networks.DEFAULT)
    elif net.mode.startswith("container:"):
        _record(meta, ns, net.mode.split(":", 1)[1])
    return net


def _valid_hostname(name: str) -> None:
    import re

    if not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,62})", name):
        raise PyctrError(f"--hostname {name!r}: letters, digits, '.', '-' (at most 63)")


def _record(meta: Meta, ns: str, cid: str) -> dict:
    r = meta.rows("SELECT * FROM containers WHERE namespace=? AND id=?", ns, cid)
    if not r:
        raise PyctrError(f"container {cid}: not found")
    return dict(r[0])


def has_task(state: str, ns: str, cid: str) -> bool:
    """A task under a shim (its address file), or a live one in the foreground (pyrunc's
    state, its init still the process it recorded: a pyctr killed mid-run leaves the state of
    a task that may have gone since)."""
    if os.path.exists(os.path.join(state, ns, cid, "address")):
        return True
    return _foreground_pid(state, ns, cid) > 0


def _foreground_pid(state: str, ns: str, cid: str) -> int:
    """The init pid of a foreground task whose pyrunc state is there and alive, else 0;
    -1 when the state is there but its process is gone (stale)."""
    from pyrunc.state import proc_start_time

    try:
        with open(os.path.join(state, "runc", ns, cid, "state.json")) as f:
            st = json.load(f)
    except FileNotFoundError:
        return -1 if os.path.isdir(os.path.join(state, "runc", ns, cid)) else 0
    except ValueError:
        return -1
    pid = int(st.get("pid") or 0)
    if pid > 0 and proc_start_time(pid) == st.get("start_time"):
        return pid
    return -1


def clear_stale(state: str, ns: str, cid: str) -> bool:
    """pyrunc's state of a foreground task that is gone (pyctr was killed): deleted as
    `pyrunc delete -f` would (its cgroup too). Returns whether there was one."""
    if _foreground_pid(state, ns, cid) != -1:
        return False
    from pyrunc import container

    try:
        container.delete(os.path.join(state, "runc", ns), cid, force=True)
    except Exception:  # noqa: BLE001 - half-written state: remove what is there
        shutil.rmtree(os.path.join(state, "runc", ns, cid), ignore_errors=True)
    return True


def start(meta: Meta, snaps: Snapshotter, state: str, ns: str, cid: str, *,
          detach: bool = False, stdin: bool = False, cni: CNI) -> int:
    """Run container cid's task: in the foreground (returns its exit status), or detached
    under our shim (prints the id, returns 0). The container must have no task."""
    rec = _record(meta, ns, cid)
    if not rec["spec"]:
        raise PyctrError(f"container {cid}: has no spec (made by an older pyctr: recreate it)")
    clear_stale(state, ns, cid)
    if has_task(state, ns, cid):
        raise PyctrError(f"container {cid}: already has a task (pyctr tasks ls)")
    if detach and rec["runtime"] != "pyrunc":
        raise PyctrError("-d: the shim runs pyrunc in-process, this container was made with "
                         f"--runtime {rec['runtime']}")
    snaps = snaps.of(rec["snapshotter"])
    spec = json.loads(rec["spec"])
    stdin = stdin or bool(spec["process"].get("terminal"))  # (a terminal is read from)
    bundle = os.path.join(state, ns, cid)
    rootfs = os.path.join(bundle, "rootfs")
    umount(rootfs)  # (a pyctr that died in the foreground may have left these)
    shutil.rmtree(bundle, ignore_errors=True)
    net = Net.from_json(rec["net"])
    setup = Setup(cni, state, ns, cid)
    setup.down()  # (the same: whatever a dead pyctr left)
    _net_up(meta, state, ns, cid, net, spec, setup, cni)
    os.makedirs(rootfs, 0o700)
    if detach:
        try:
            return _detached(snaps, state, ns, cid, spec, rec["snapshot"], bundle)
        except BaseException:
            setup.down(net)
            raise
    mounted = False
    try:
        snaps.mount(rec["snapshot"], rootfs)
        mounted = True
        with open(os.path.join(bundle, "config.json"), "w") as f:
            json.dump(spec, f)
        runc_root = os.path.join(state, "runc", ns)
        if rec["runtime"] != "pyrunc":  # (with -t it allocates the pty on our terminal)
            return subprocess.run([rec["runtime"], "--root", runc_root, "run", "--bundle",
                                   bundle, cid]).returncode
        return _run_in_process(runc_root, bundle, cid, stdin)
    finally:
        if mounted:
            umount(rootfs)
        shutil.rmtree(bundle, ignore_errors=True)
        setup.down(net)


def _net_up(meta: Meta, state: str, ns: str, cid: str, net: Net, spec: dict, setup: Setup,
            cni: CNI) -> None:
    peer, pid = None, 0
    if net.mode.startswith("container:"):
        other = net.mode.split(":", 1)[1]
        _record(meta, ns, other)
        pid = task_pid(state, ns, other)
        if not pid:
            raise PyctrError(f"--net {net.mode}: container {other} has no running task")
        peer = Setup(cni, state, ns, other)
    setup.up(net, spec.get("hostname") or cid, spec, peer, pid)


def task_pid(state: str, ns: str, cid: str) -> int:
    """The pid of container cid's running task (foreground: pyrunc's state; detached: its
    shim), 0 if none."""
    pid = _foreground_pid(state, ns, cid)
    if pid > 0:
        return pid
    if os.path.exists(os.path.join(state, ns, cid, "address")):
        from pyctr import tasks

        try:
            st = tasks.state(state, ns, cid)
        except PyctrError:
            return 0
        return st["pid"] if st["status"] in ("RUNNING", "PAUSED") else 0
    return 0


def _detached(snaps: Snapshotter, state: str, ns: str, cid: str, spec: dict, key: str,
              bundle: str) -> int:
    """Under our shim: the bundle stays (config.json, the shim's address, the log), the shim
    mounts the rootfs from the snapshot's mounts and unmounts it at Delete. With a terminal
    (-t), the shim keeps the pty and copies what the container writes to the log."""
    from pyctr import tasks

    started = False
    try:
        with open(os.path.join(bundle, "config.json"), "w") as f:
            json.dump(spec, f)
        tasks.create_and_start(bundle, ns, cid, state, snaps.mounts(key),
                               terminal=bool(spec["process"].get("terminal")))
        started = True
    finally:
        if not started:
            shutil.rmtree(bundle, ignore_errors=True)
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


def remove(meta: Meta, snaps: Snapshotter, state: str, ns: str, cid: str, cni: CNI,
           missing_ok: bool = False) -> None:
    """The container record and its snapshot (the container must have no task), and what a
    dead pyctr may have left of its network."""
    clear_stale(state, ns, cid)
    if has_task(state, ns, cid):
        raise PyctrError(f"container {cid}: has a task (pyctr tasks delete {cid} first)")
    Setup(cni, state, ns, cid).down()
    with meta.tx() as c:
        r = c.execute("SELECT snapshot, snapshotter FROM containers WHERE namespace=? AND id=?",
                      (ns, cid)).fetchone()
        if r is None:
            if missing_ok:
                return
            raise PyctrError(f"container {cid}: not found")
        c.execute("DELETE FROM containers WHERE namespace=? AND id=?", (ns, cid))
    snaps = snaps.of(r[1])
    if snaps.exists(r[0]):
        snaps.remove(r[0])


def network_down(meta: Meta, state: str, ns: str, cid: str, cni: CNI) -> None:
    """Take container cid's network down (its task is gone), by what its record says."""
    r = meta.rows("SELECT net FROM containers WHERE namespace=? AND id=?", ns, cid)
    Setup(cni, state, ns, cid).down(Net.from_json(r[0]["net"]) if r else None)


def sweep_networks(meta: Meta, state: str, cni: CNI) -> int:
    """What a pyctr that died left: pyrunc's state of a foreground task that is gone, and a
    pinned namespace, /etc files or a CNI attachment of a container (any namespace) with no
    task: detached, unpinned, removed. Returns how many containers' networks went."""
    def entries(base: str) -> list[tuple[str, str]]:
        if not os.path.isdir(base):
            return []
        return [(n, c) for n in os.listdir(base) for c in os.listdir(os.path.join(base, n))]

    for ns, cid in entries(os.path.join(state, "runc")):
        clear_stale(state, ns, cid)
    found = set(entries(os.path.join(state, "netns"))) | set(entries(os.path.join(state, "net")))
    for a in cni.attachments():
        parts = (a.get("netns") or "").rsplit("/", 2)
        if len(parts) == 3 and parts[0] == os.path.join(state, "netns"):
            found.add((parts[1], parts[2]))
    gone = [(ns, cid) for ns, cid in sorted(found) if not has_task(state, ns, cid)]
    for ns, cid in gone:
        network_down(meta, state, ns, cid, cni)
    return len(gone)
