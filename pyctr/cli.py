"""pyctr's command line (click), shaped like ctr's: `pyctr [-n NS] images import FILE`, ...

Every error a user can cause is one line (`pyctr: ...`) and exit status 1; --debug shows the
traceback. Listings print a table, names only with -q, or JSON with --format json.
"""

from __future__ import annotations

import json
import os
import sys
import time

import click

from pyctr.errors import PyctrError


class Ctx:
    def __init__(self, root: str, state: str, namespace: str, snapshotter: str,
                 cni_conf_dir: str = "", cni_path: str = "") -> None:
        self.root, self.state, self.ns = root, state, namespace
        self.snapshotter = snapshotter
        self.cni_conf_dir, self.cni_path = cni_conf_dir, cni_path
        self._meta = None

    def cni(self) -> object:
        from pyctr.cni import CNI

        return CNI(self.cni_conf_dir, self.cni_path, os.path.join(self.root, "cni"))

    def open(self) -> tuple:
        from pyctr.content import Store
        from pyctr.images import Images
        from pyctr.meta import Meta
        from pyctr.snapshots import Snapshotter, default_kind

        if self._meta is None:
            self._meta = Meta(self.root)
        store = Store(self.root)
        kind = self.snapshotter or default_kind(self.root)
        return (self._meta, store, Images(self._meta, store, self.ns),
                Snapshotter(self.root, self._meta, kind))


def _listing(rows: list[dict], cols: list[str], quiet: bool, fmt: str, key: str) -> None:
    if quiet:
        for r in rows:
            click.echo(r[key])
    elif fmt == "json":
        click.echo(json.dumps(rows, indent=1))
    else:
        widths = [max([len(c)] + [len(str(r.get(c, ""))) for r in rows]) for c in cols]
        click.echo("  ".join(c.upper().ljust(w) for c, w in zip(cols, widths, strict=True)))
        for r in rows:
            click.echo("  ".join(str(r.get(c, "")).ljust(w)
                                 for c, w in zip(cols, widths, strict=True)))


def _list_opts(f: object) -> object:
    f = click.option("-q", "--quiet", is_flag=True, help="names only")(f)  # type: ignore
    return click.option("--format", "fmt", type=click.Choice(["table", "json"]),
                        default="table")(f)


def _when(ns: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ns / 1e9))


@click.group()
@click.option("-n", "--namespace", envvar="PYCTR_NAMESPACE", default="default",
              show_default=True, help="namespace (env PYCTR_NAMESPACE)")
@click.option("--root", default="/var/lib/pyctr", show_default=True, help="images, content")
@click.option("--state", default="/run/pyctr", show_default=True, help="running containers")
@click.option("--snapshotter", envvar="PYCTR_SNAPSHOTTER", default="",
              help="overlayfs or native (env PYCTR_SNAPSHOTTER; default: overlayfs where "
              "it works)")
@click.option("--cni-conf-dir", envvar="PYCTR_CNI_CONF_DIR", default="/etc/cni/net.d",
              show_default=True, help="CNI network configs (env PYCTR_CNI_CONF_DIR)")
@click.option("--cni-path", envvar="PYCTR_CNI_PATH", default="/usr/lib/cni:/opt/cni/bin",
              show_default=True, help="CNI plugin directories (env PYCTR_CNI_PATH)")
@click.option("--debug", is_flag=True, help="tracebacks for errors")
@click.pass_context
def cli(ctx: click.Context, namespace: str, root: str, state: str, snapshotter: str,
        cni_conf_dir: str, cni_path: str, debug: bool) -> None:
    if not namespace or "/" in namespace or namespace.startswith("."):
        raise PyctrError(f"namespace {namespace!r}: not a valid name")
    if snapshotter not in ("", "overlayfs", "native"):
        raise PyctrError(f"--snapshotter {snapshotter!r}: overlayfs or native")
    ctx.obj = Ctx(os.path.abspath(root), os.path.abspath(state), namespace, snapshotter,
                  os.path.abspath(cni_conf_dir), cni_path)


# -- images --

@cli.group()
def images() -> None:
    """Images: pull, push, import, export, list, tag, inspect, remove, unpack."""


@images.command("import")
@click.argument("archive")
@click.option("--base-name", default="", help="name for index entries that carry none")
@click.option("--lease", default="", help="also keep its content under this lease")
@click.pass_obj
def images_import(c: Ctx, archive: str, base_name: str, lease: str) -> None:
    """Import an OCI layout or `docker save` archive."""
    _, _, imgs, _ = c.open()
    for n in imgs.import_archive(archive, base_name, lease):
        click.echo(n)


@images.command("build-busybox")
@click.pass_obj
def images_build_busybox(c: Ctx) -> None:
    """Make busybox:local from this host's busybox-static (offline)."""
    click.echo(ensure_busybox(c, force=True))


def ensure_busybox(c: Ctx, force: bool = False) -> str:
    from pyctr import busybox
    from pyctr.images import host_platform

    _, _, imgs, _ = c.open()
    if not force:
        try:
            return imgs.get(busybox.NAME)["name"]
        except PyctrError:
            pass
    tmp = os.path.join(c.root, "busybox-local.tar")
    busybox.oci_archive(tmp, [(busybox.NAME, ["sh"])], host_platform().split("/")[1])
    try:
        return imgs.import_archive(tmp)[0]
    finally:
        os.unlink(tmp)


@images.command("export")
@click.argument("out")
@click.argument("names", nargs=-1, required=True)
@click.pass_obj
def images_export(c: Ctx, out: str, names: tuple[str, ...]) -> None:
    """Write the named images to OUT, an OCI layout archive (ctr's argument order)."""
    from pyctr.images import export_archive

    _, _, imgs, _ = c.open()
    export_archive(imgs, list(names), out)


def _registry_opts(f: object) -> object:
    f = click.option("--plain-http", is_flag=True, help="HTTP, not HTTPS (loopback)")(f)  # type: ignore
    f = click.option("--ca", default="", help="CA bundle to verify the registry with")(f)
    return click.option("--user", "-u", default="", help="USER:PASSWORD (else pyctr login's)")(f)


def _progress(msg: str) -> None:
    click.echo(msg, err=True)


@images.command("pull")
@click.argument("ref")
@click.option("--platform", default=None, help="os/arch (default: this host's)")
@click.option("--lease", default="", help="also keep its content under this lease")
@_registry_opts
@click.pass_obj
def images_pull(c: Ctx, ref: str, platform: str | None, plain_http: bool, ca: str,
                user: str, lease: str) -> None:
    """Pull REF from its registry (Distribution API v2)."""
    from pyctr.progress import for_stderr
    from pyctr.registry import pull

    _, _, imgs, _ = c.open()
    with for_stderr(_progress) as bars:
        name = pull(imgs, ref, plain_http=plain_http, ca=ca, user=user, platform=platform,
                    progress=bars, lease=lease)
    click.echo(name)


@images.command("push")
@click.argument("ref")
@click.argument("local", required=False)
@click.option("--chunk-size", default="16m", show_default=True,
              help="bytes per PATCH of a resumable upload, e.g. 5m (0: one PUT a blob)")
@_registry_opts
@click.pass_obj
def images_push(c: Ctx, ref: str, local: str | None, chunk_size: str, plain_http: bool,
                ca: str, user: str) -> None:
    """Push LOCAL (default: REF) to REF."""
    from pyctr.progress import for_stderr
    from pyctr.registry import push

    chunk = _parse_size(chunk_size, "--chunk-size", zero=True) or 0
    _, _, imgs, _ = c.open()
    with for_stderr(_progress) as bars:
        name = push(imgs, local or ref, ref, plain_http=plain_http, ca=ca, user=user,
                    chunk_size=chunk, progress=bars)
    click.echo(name)


@cli.command()
@click.argument("host")
@click.option("--username", "-u", required=True)
@click.option("--password-stdin", is_flag=True, help="read the password from stdin")
@click.option("--password", "-p", default="")
@click.option("--plain-http", is_flag=True, help="HTTP, not HTTPS (loopback)")
@click.option("--ca", default="", help="CA bundle to verify the registry with")
def login(host: str, username: str, password_stdin: bool, password: str, plain_http: bool,
          ca: str) -> None:
    """Check credentials for HOST against the registry, then store them in
    ~/.docker/config.json (as docker login does); refused ones are not stored."""
    from pyctr.registry import check_login
    from pyctr.registry import login as do_login

    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    if not password:
        raise PyctrError("login: a password is required (--password-stdin or -p)")
    check_login(host, username, password, plain_http=plain_http, ca=ca)
    do_login(host, username, password)
    click.echo(f"Login Succeeded ({host})")


@images.command("unpack")
@click.argument("name")
@click.option("--platform", default=None, help="os/arch (default: this host's)")
@click.pass_obj
def images_unpack(c: Ctx, name: str, platform: str | None) -> None:
    """Unpack NAME's layers into snapshots (run does it on first use); prints the top one."""
    from pyctr.extract import unpack

    _, _, imgs, snaps = c.open()
    click.echo(unpack(imgs, snaps, imgs.get(name), platform))


@images.command("ls")
@_list_opts
@click.pass_obj
def images_ls(c: Ctx, quiet: bool, fmt: str) -> None:
    _, _, imgs, _ = c.open()
    rows = [{"name": r["name"], "type": r["media_type"], "digest": r["digest"],
             "size": r["size"], "created": _when(r["created"])} for r in imgs.list()]
    _listing(rows, ["name", "type", "digest"], quiet, fmt, "name")


@images.command("tag")
@click.argument("source")
@click.argument("target")
@click.pass_obj
def images_tag(c: Ctx, source: str, target: str) -> None:
    _, _, imgs, _ = c.open()
    imgs.tag(source, target)


@images.command("rm")
@click.argument("names", nargs=-1, required=True)
@click.pass_obj
def images_rm(c: Ctx, names: tuple[str, ...]) -> None:
    _, _, imgs, _ = c.open()
    for n in names:
        imgs.remove(n)
        click.echo(n)


@images.command("inspect")
@click.argument("name")
@click.pass_obj
def images_inspect(c: Ctx, name: str) -> None:
    """The image's record, its manifest for this platform and its config, as JSON."""
    _, _, imgs, _ = c.open()
    img = imgs.get(name)
    md, man = imgs.manifest(img)
    click.echo(json.dumps({"name": img["name"], "target": {
        "digest": img["digest"], "mediaType": img["media_type"], "size": img["size"]},
        "manifest_digest": md, "manifest": man, "config": imgs.config(man)}, indent=1))


# -- content, snapshots, namespaces --

@cli.group()
def content() -> None:
    """The content store's blobs."""


@content.command("ls")
@_list_opts
@click.pass_obj
def content_ls(c: Ctx, quiet: bool, fmt: str) -> None:
    """The blobs, with the namespace's labels of each (where a pull or push found them)."""
    from pyctr.labels import of_namespace

    meta, store, _, _ = c.open()
    lab = of_namespace(meta, c.ns) if not quiet else {}
    rows = [{"digest": d, "size": s, "labels": lab.get(d, {})} for d, s in store.list()]
    if fmt != "json":
        for r in rows:
            r["labels"] = ",".join(f"{k}={v}" for k, v in r["labels"].items())
    _listing(rows, ["digest", "size", "labels"], quiet, fmt, "digest")


@content.command("get")
@click.argument("digest")
@click.pass_obj
def content_get(c: Ctx, digest: str) -> None:
    """Write the blob DIGEST to stdout."""
    from pyctr.content import CHUNK

    _, store, _, _ = c.open()
    try:
        f = open(store.path(digest), "rb")  # noqa: SIM115 - streamed below
    except FileNotFoundError:
        raise PyctrError(f"content {digest}: not found") from None
    with f:
        out = sys.stdout.buffer
        while chunk := f.read(CHUNK):
            out.write(chunk)


@content.command("rm")
@click.argument("digests", nargs=-1, required=True)
@click.pass_obj
def content_rm(c: Ctx, digests: tuple[str, ...]) -> None:
    """Remove blobs no image references (gc removes all such blobs)."""
    from pyctr import labels
    from pyctr.images import Images, referenced

    meta, store, _, _ = c.open()
    used: set[str] = set()
    for r in meta.rows("SELECT * FROM images"):
        referenced(Images(meta, store, r["namespace"]), r["digest"], r["media_type"], used)
    for d in digests:
        if d in used:
            raise PyctrError(f"content {d}: an image references it (pyctr images rm first)")
        store.remove(d)
        labels.forget(meta, [d])
        click.echo(d)


@cli.group()
def snapshots() -> None:
    """Snapshots of the current --snapshotter (one per layer chain, one per container)."""


@snapshots.command("ls")
@_list_opts
@click.pass_obj
def snapshots_ls(c: Ctx, quiet: bool, fmt: str) -> None:
    _, _, _, snaps = c.open()
    rows = [{"key": s["key"], "parent": s["parent"] or "", "kind": s["kind"],
             "snapshotter": s["snapshotter"], "dir": s["dir"]} for s in snaps.list()]
    _listing(rows, ["key", "parent", "kind"], quiet, fmt, "key")


@snapshots.command("mounts")
@click.argument("target")
@click.argument("key")
@click.pass_obj
def snapshots_mounts(c: Ctx, target: str, key: str) -> None:
    """Print the mount command that shows snapshot KEY at TARGET (read-only for a committed
    one), as ctr's `snapshots mounts` does."""
    _, _, _, snaps = c.open()
    click.echo(snaps.mount_command(key, target))


@snapshots.command("info")
@click.argument("key")
@click.pass_obj
def snapshots_info(c: Ctx, key: str) -> None:
    _, _, _, snaps = c.open()
    s = snaps.get(key)
    if s is None:
        raise PyctrError(f"snapshot {key}: no such snapshot")
    click.echo(json.dumps({"key": s["key"], "parent": s["parent"], "kind": s["kind"],
                           "created": _when(s["created"])}, indent=1))


@snapshots.command("rm")
@click.argument("keys", nargs=-1, required=True)
@click.pass_obj
def snapshots_rm(c: Ctx, keys: tuple[str, ...]) -> None:
    meta, _, _, snaps = c.open()
    for k in keys:
        if meta.rows("SELECT 1 FROM containers WHERE snapshot=?", k):
            raise PyctrError(f"snapshot {k}: a container uses it (pyctr containers rm first)")
        snaps.remove(k)
        click.echo(k)


@cli.group()
def namespaces() -> None:
    """Namespaces."""


@namespaces.command("create")
@click.argument("name")
@click.pass_obj
def namespaces_create(c: Ctx, name: str) -> None:
    from pyctr.meta import now

    if not name or "/" in name or name.startswith("."):
        raise PyctrError(f"namespace {name!r}: not a valid name")
    meta, _, _, _ = c.open()
    with meta.tx() as t:
        if t.execute("SELECT 1 FROM namespaces WHERE name=?", (name,)).fetchone():
            raise PyctrError(f"namespace {name}: already exists")
        t.execute("INSERT INTO namespaces VALUES (?,?)", (name, now()))
    click.echo(name)


@namespaces.command("rm")
@click.argument("names", nargs=-1, required=True)
@click.pass_obj
def namespaces_rm(c: Ctx, names: tuple[str, ...]) -> None:
    """Remove empty namespaces (no images, containers or leases), as containerd does."""
    meta, _, _, _ = c.open()
    for n in names:
        with meta.tx() as t:
            for table in ("images", "containers", "leases"):
                if t.execute(f"SELECT 1 FROM {table} WHERE namespace=?", (n,)).fetchone():
                    raise PyctrError(f"namespace {n}: not empty ({table} in it)")
            if not t.execute("DELETE FROM namespaces WHERE name=?", (n,)).rowcount:
                raise PyctrError(f"namespace {n}: not found")
        click.echo(n)


@namespaces.command("ls")
@_list_opts
@click.pass_obj
def namespaces_ls(c: Ctx, quiet: bool, fmt: str) -> None:
    meta, _, _, _ = c.open()
    rows = [{"name": r["name"]} for r in meta.rows("SELECT name FROM namespaces ORDER BY name")]
    _listing(rows, ["name"], quiet, fmt, "name")


@cli.command()
@click.pass_obj
def gc(c: Ctx) -> None:
    """Remove what no image, container or lease references (and orphaned networks)."""
    from pyctr.gc import collect
    from pyctr.run import sweep_networks

    meta, store, _, snaps = c.open()
    nets = sweep_networks(meta, c.state, c.cni())  # type: ignore[arg-type]
    blobs, gone, ingest = collect(meta, store, snaps)
    click.echo(f"removed {len(blobs)} blobs, {len(gone)} snapshots, {ingest} partial writes, "
               f"{nets} orphaned networks")


@cli.group()
def network() -> None:
    """CNI networks (the configs in --cni-conf-dir): run --net NAME attaches to one."""


@network.command("create")
@click.argument("name")
@click.option("--subnet", default="", help="CIDR (default: the next free 10.4.x.0/24)")
@click.option("--gateway", default="", help="(default: the subnet's first address)")
@click.option("--bridge", default="", help="the Linux bridge's name")
@click.pass_obj
def network_create(c: Ctx, name: str, subnet: str, gateway: str, bridge: str) -> None:
    """A bridge network (bridge + host-local, portmap, firewall, tuning), as nerdctl's."""
    from pyctr import networks

    cni = c.cni()
    networks.create(c.cni_conf_dir, os.path.join(c.root, "cni", "networks"), name, subnet,
                    gateway, bridge, validate=cni.validate)  # type: ignore[attr-defined]
    click.echo(name)


@network.command("check")
@click.argument("cid", metavar="ID")
@click.pass_obj
def network_check(c: Ctx, cid: str) -> None:
    """CNI CHECK of every network container ID's task is attached to."""
    from pyctr.networks import Setup

    cni = c.cni()
    s = Setup(cni, c.state, c.ns, cid)  # type: ignore[arg-type]
    found = [a for a in cni.attachments()  # type: ignore[attr-defined]
             if a["containerId"] == cid and a["ifName"] != "lo"]
    if not found:
        raise PyctrError(f"container {cid}: attached to no CNI network")
    for a in found:
        cni.check(a["networkName"], cid, s.pin, a["ifName"])  # type: ignore[attr-defined]
        click.echo(f"{a['networkName']}: ok")


@network.command("ls")
@_list_opts
@click.pass_obj
def network_ls(c: Ctx, quiet: bool, fmt: str) -> None:
    """Every network in --cni-conf-dir (pyctr's and others')."""
    from pyctr import networks
    from pyctr.cni import load_dir

    rows = [networks.summary(n) for n in load_dir(c.cni_conf_dir).values()]
    _listing(sorted(rows, key=lambda r: r["name"]), ["name", "subnet", "plugins", "file"],
             quiet, fmt, "name")


@network.command("inspect")
@click.argument("name")
@click.pass_obj
def network_inspect(c: Ctx, name: str) -> None:
    """The conflist, and the containers attached to it (address by container)."""
    from pyctr.cni import addresses

    cni = c.cni()
    net = dict(cni.network(name))  # type: ignore[attr-defined]
    net["containers"] = {a["containerId"]: addresses(a.get("result") or {})
                         for a in cni.attachments()  # type: ignore[attr-defined]
                         if a["networkName"] == name}
    click.echo(json.dumps(net, indent=1))


@network.command("rm")
@click.argument("names", nargs=-1, required=True)
@click.pass_obj
def network_rm(c: Ctx, names: tuple[str, ...]) -> None:
    """Remove networks pyctr made that no container is attached to."""
    from pyctr import networks

    meta, _, _, _ = c.open()
    for n in names:
        users = [f"{r['namespace']}/{r['id']}" for r in meta.rows(
            "SELECT namespace, id, net FROM containers WHERE net IS NOT NULL")
            if json.loads(r["net"])["mode"] == n]
        networks.remove(c.cni_conf_dir, n, users)
        click.echo(n)


@cli.group()
def leases() -> None:
    """Leases: content gc keeps while they exist (images pull|import --lease ID)."""


@leases.command("create")
@click.option("--id", "lid", default="", help="its name (default: made up)")
@click.option("--expires", default="", help="gc drops it after this long: 30m, 24h, 1h30m")
@click.pass_obj
def leases_create(c: Ctx, lid: str, expires: str) -> None:
    from pyctr.leases import Leases, parse_duration

    meta, _, _, _ = c.open()
    click.echo(Leases(meta, c.ns).create(lid, parse_duration(expires) if expires else None))


@leases.command("ls")
@_list_opts
@click.pass_obj
def leases_ls(c: Ctx, quiet: bool, fmt: str) -> None:
    from pyctr.leases import Leases

    meta, _, _, _ = c.open()
    rows = [{**r, "created": _when(r["created"]),
             "expires": _when(r["expires"]) if r["expires"] else ""}
            for r in Leases(meta, c.ns).list()]
    _listing(rows, ["id", "created", "expires", "resources"], quiet, fmt, "id")


@leases.command("rm")
@click.argument("ids", nargs=-1, required=True)
@click.pass_obj
def leases_rm(c: Ctx, ids: tuple[str, ...]) -> None:
    from pyctr.leases import Leases

    meta, _, _, _ = c.open()
    for i in ids:
        Leases(meta, c.ns).remove(i)
        click.echo(i)


# -- containers --

@cli.group()
def containers() -> None:
    """Containers: records with a snapshot and a spec (create, or a run without --rm)."""


@containers.command("ls")
@_list_opts
@click.pass_obj
def containers_ls(c: Ctx, quiet: bool, fmt: str) -> None:
    meta, _, _, _ = c.open()
    rows = [{"id": r["id"], "image": r["image"], "runtime": r["runtime"],
             "created": _when(r["created"])}
            for r in meta.rows("SELECT * FROM containers WHERE namespace=? ORDER BY id", c.ns)]
    _listing(rows, ["id", "image", "runtime"], quiet, fmt, "id")


@containers.command("info")
@click.argument("cid", metavar="ID")
@click.pass_obj
def containers_info(c: Ctx, cid: str) -> None:
    meta, _, _, _ = c.open()
    r = meta.rows("SELECT * FROM containers WHERE namespace=? AND id=?", c.ns, cid)
    if not r:
        raise PyctrError(f"container {cid}: not found")
    click.echo(json.dumps({"id": r[0]["id"], "image": r[0]["image"], "snapshot":
                           r[0]["snapshot"], "snapshotter": r[0]["snapshotter"],
                           "runtime": r[0]["runtime"], "created": _when(r[0]["created"]),
                           "spec": json.loads(r[0]["spec"] or "null")}, indent=1))


@containers.command("rm")
@click.argument("ids", nargs=-1, required=True)
@click.pass_obj
def containers_rm(c: Ctx, ids: tuple[str, ...]) -> None:
    from pyctr.run import remove

    meta, _, _, snaps = c.open()
    for i in ids:
        remove(meta, snaps, c.state, c.ns, i, c.cni())  # type: ignore[arg-type]
        click.echo(i)


@cli.group()
def tasks() -> None:
    """Tasks: start a container's; reach detached ones (run -d) through their shim."""


@tasks.command("ls")
@_list_opts
@click.pass_obj
def tasks_ls(c: Ctx, quiet: bool, fmt: str) -> None:
    from pyctr import tasks as T

    meta, _, _, _ = c.open()
    rows = []
    for r in meta.rows("SELECT id FROM containers WHERE namespace=? ORDER BY id", c.ns):
        if os.path.exists(os.path.join(c.state, c.ns, r["id"], "address")):
            try:
                rows.append(T.state(c.state, c.ns, r["id"]))
            except PyctrError:
                rows.append({"id": r["id"], "pid": 0, "status": "UNKNOWN", "exit_status": 0})
    _listing(rows, ["id", "pid", "status"], quiet, fmt, "id")


@tasks.command("kill")
@click.argument("cid", metavar="ID")
@click.option("-s", "--signal", "sig", default="SIGTERM", show_default=True)
@click.option("-a", "--all", "all_", is_flag=True, help="every process of the container")
@click.pass_obj
def tasks_kill(c: Ctx, cid: str, sig: str, all_: bool) -> None:
    from pyctr import tasks as T
    from pyrunc.container import parse_signal

    T.kill(c.state, c.ns, cid, parse_signal(sig), all_)


@tasks.command("ps")
@click.argument("cid", metavar="ID")
@click.pass_obj
def tasks_ps(c: Ctx, cid: str) -> None:
    from pyctr import tasks as T

    click.echo("PID")
    for p in T.pids(c.state, c.ns, cid):
        click.echo(p)


@tasks.command("pause")
@click.argument("cid", metavar="ID")
@click.pass_obj
def tasks_pause(c: Ctx, cid: str) -> None:
    from pyctr import tasks as T

    T.pause(c.state, c.ns, cid, True)


@tasks.command("resume")
@click.argument("cid", metavar="ID")
@click.pass_obj
def tasks_resume(c: Ctx, cid: str) -> None:
    from pyctr import tasks as T

    T.pause(c.state, c.ns, cid, False)


@tasks.command("exec", context_settings={"allow_interspersed_args": False})
@click.option("--exec-id", required=True, help="a name for this process (ctr's flag)")
@click.option("--env", "-e", multiple=True, help="NAME=VALUE (repeatable)")
@click.option("--cwd", default="")
@click.argument("cid", metavar="ID")
@click.argument("args", nargs=-1, required=True)
@click.pass_obj
def tasks_exec(c: Ctx, exec_id: str, env: tuple[str, ...], cwd: str, cid: str,
               args: tuple[str, ...]) -> None:
    """Run ARGS in the running task; its output and exit status are pyctr's."""
    from pyctr import tasks as T

    status, out, err = T.exec_(c.state, c.ns, cid, exec_id, list(args), list(env), cwd)
    sys.stdout.buffer.write(out)
    sys.stdout.flush()
    sys.stderr.buffer.write(err)
    sys.stderr.flush()
    sys.exit(status)


@tasks.command("logs")
@click.argument("cid", metavar="ID")
@click.pass_obj
def tasks_logs(c: Ctx, cid: str) -> None:
    """What the task wrote (stdout and stderr), kept after it exits until tasks delete."""
    try:
        with open(os.path.join(c.state, c.ns, cid, "log"), "rb") as f:
            sys.stdout.buffer.write(f.read())
    except FileNotFoundError:
        raise PyctrError(f"task {cid}: no log (not started with run -d, or deleted)") from None


@tasks.command("delete")
@click.argument("cid", metavar="ID")
@click.option("-f", "--force", is_flag=True, help="kill it first if it is running")
@click.pass_obj
def tasks_delete(c: Ctx, cid: str, force: bool) -> None:
    """Delete the task (the shim exits); prints its exit status. The container record stays
    (containers rm)."""
    import shutil

    from pyctr import tasks as T
    from pyctr.run import network_down

    status = T.delete(c.state, c.ns, cid, force)
    shutil.rmtree(os.path.join(c.state, c.ns, cid), ignore_errors=True)
    meta, _, _, _ = c.open()
    network_down(meta, c.state, c.ns, cid, c.cni())  # type: ignore[arg-type]
    click.echo(f"{cid} exit status {status}")


def _size(v: str | None) -> int | None:
    return None if v is None else _parse_size(v, "--memory")


def _parse_size(v: str, flag: str, zero: bool = False) -> int:
    """A size such as 64k, 5m or 1g (or bytes); 0 only where zero means something."""
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    s = v.strip().lower().rstrip("b")
    mult = units.get(s[-1:], 1)
    num = s[:-1] if s[-1:] in units else s
    if not num.isdigit() or (int(num) == 0 and not zero):
        raise PyctrError(f"{flag} {v!r}: a size such as 64m or 1g")
    return int(num) * mult


def _container_opts(f: object) -> object:
    """The options `run` and `containers create` share (ctr's)."""
    for opt in reversed([
        click.option("--env", "-e", multiple=True, help="NAME=VALUE (repeatable)"),
        click.option("--workdir", "-w", default=""),
        click.option("--user", "-u", default="", help="uid[:gid] or name[:group] (image's "
                     "files)"),
        click.option("-t", "--tty", is_flag=True, help="a terminal for the container"),
        click.option("--read-only", is_flag=True, help="read-only rootfs"),
        click.option("--mount", multiple=True,
                     help="type=bind,src=/host,dst=/ctr,options=rbind:ro (repeatable)"),
        click.option("--memory", default=None, help="limit, e.g. 64m"),
        click.option("--cpus", type=float, default=None),
        click.option("--pids-limit", type=int, default=None),
        click.option("--runtime", default="", help="a runc-compatible binary instead of the "
                     "library"),
        click.option("--platform", default=None, help="os/arch (default: this host's)"),
        click.option("--net", "--network", "net", default="none", show_default=True,
                     help="none, host, bridge, a CNI network's name, or container:ID"),
        click.option("-p", "--publish", multiple=True,
                     help="[HOSTIP:]HOSTPORT:CTRPORT[/tcp|udp] (repeatable; a CNI network)"),
        click.option("--dns", multiple=True, help="a nameserver for /etc/resolv.conf"),
        click.option("--hostname", default="", help="(default: the container's ID)"),
        click.option("--add-host", multiple=True, help="NAME:IP in /etc/hosts (repeatable)"),
        click.option("--security-opt", multiple=True,
                     help="seccomp=unconfined, or seccomp=PROFILE.json (default: "
                     "containerd's profile)"),
        click.argument("image"),
        click.argument("cid", metavar="ID"),
        click.argument("args", nargs=-1),
    ]):
        f = opt(f)  # type: ignore[operator]
    return f


def _image_ready(c: Ctx, image: str, kw: dict) -> None:
    from pyctr import busybox
    from pyctr.images import normalize

    if normalize(image) == busybox.NAME:
        ensure_busybox(c)  # the README's main job works on a fresh machine
    kw["memory"] = _size(kw.get("memory"))


@cli.command(context_settings={"allow_interspersed_args": False})
@click.option("--rm", is_flag=True, help="remove the container when it exits")
@click.option("-d", "--detach", is_flag=True, help="under containerd-shim-pyrunc-v2; prints ID")
@click.option("-i", "--interactive", is_flag=True, help="pass our stdin (else /dev/null)")
@_container_opts
@click.pass_obj
def run(c: Ctx, image: str, cid: str, args: tuple[str, ...], **kw: object) -> None:
    """Run IMAGE as container ID (containers create + tasks start); in the foreground its
    exit status is pyctr's."""
    from pyctr.run import Options
    from pyctr.run import run as do_run

    _image_ready(c, image, kw)
    meta, _, imgs, snaps = c.open()
    rc = do_run(meta, imgs, snaps, c.state, c.ns, image, cid, list(args), Options(**kw),
                c.cni())  # type: ignore[arg-type]
    sys.stdout.flush()
    sys.exit(rc)


@containers.command("create", context_settings={"allow_interspersed_args": False})
@_container_opts
@click.pass_obj
def containers_create(c: Ctx, image: str, cid: str, args: tuple[str, ...], **kw: object
                      ) -> None:
    """A container from IMAGE (its snapshot and spec); `tasks start ID` runs it."""
    from pyctr.run import Options, create

    _image_ready(c, image, kw)
    meta, _, imgs, snaps = c.open()
    create(meta, imgs, snaps, c.state, c.ns, image, cid, list(args), Options(**kw),
           c.cni())  # type: ignore[arg-type]


@tasks.command("start")
@click.argument("cid", metavar="ID")
@click.option("-d", "--detach", is_flag=True, help="under containerd-shim-pyrunc-v2")
@click.option("-i", "--interactive", is_flag=True, help="pass our stdin (else /dev/null)")
@click.pass_obj
def tasks_start(c: Ctx, cid: str, detach: bool, interactive: bool) -> None:
    """Start container ID's task (made by containers create, or kept by a run without --rm);
    in the foreground its exit status is pyctr's."""
    from pyctr.run import start

    if detach and interactive:
        raise PyctrError("-i with -d: not supported (pyctr has no attach to give stdin later)")
    meta, _, _, snaps = c.open()
    rc = start(meta, snaps, c.state, c.ns, cid, detach=detach, stdin=interactive,
               cni=c.cni())  # type: ignore[arg-type]
    sys.stdout.flush()
    sys.exit(rc)


def main() -> None:
    debug = "--debug" in sys.argv[1:]
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except click.exceptions.Abort:
        sys.exit(130)
    except PyctrError as e:
        if debug:
            raise
        print(f"pyctr: {e}", file=sys.stderr)
        sys.exit(1)
    except OSError as e:
        if debug:
            raise
        where = f": {e.filename}" if e.filename else ""
        print(f"pyctr: {e.strerror or e}{where}", file=sys.stderr)
        sys.exit(1)
    except Exception as e:  # noqa: BLE001 - a bug still ends in one line (--debug: traceback)
        if debug:
            raise
        from pyrunc.errors import RuntimeErr

        if isinstance(e, RuntimeErr):  # the runtime's own one-line errors
            print(f"pyctr: {e}", file=sys.stderr)
            sys.exit(1)
        print(f"pyctr: internal error ({type(e).__name__}): {e} (rerun with --debug)",
              file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
