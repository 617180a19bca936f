"""pyctr content, snapshots, namespaces, network, leases and gc: what the store and the
host hold for containers."""

from __future__ import annotations

import json
import os
import sys

import click

from pyctr.cli import Ctx, cli, list_opts, listing, when
from pyctr.errors import PyctrError

# -- content, snapshots, namespaces --

@cli.group()
def content() -> None:
    """The content store's blobs."""


@content.command("ls")
@list_opts
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
    listing(rows, ["digest", "size", "labels"], quiet, fmt, "digest")


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
@list_opts
@click.pass_obj
def snapshots_ls(c: Ctx, quiet: bool, fmt: str) -> None:
    _, _, _, snaps = c.open()
    rows = [{"key": s["key"], "parent": s["parent"] or "", "kind": s["kind"],
             "snapshotter": s["snapshotter"], "dir": s["dir"]} for s in snaps.list()]
    listing(rows, ["key", "parent", "kind"], quiet, fmt, "key")


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
                           "created": when(s["created"])}, indent=1))


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
@list_opts
@click.pass_obj
def namespaces_ls(c: Ctx, quiet: bool, fmt: str) -> None:
    meta, _, _, _ = c.open()
    rows = [{"name": r["name"]} for r in meta.rows("SELECT name FROM namespaces ORDER BY name")]
    listing(rows, ["name"], quiet, fmt, "name")


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
@list_opts
@click.pass_obj
def network_ls(c: Ctx, quiet: bool, fmt: str) -> None:
    """Every network in --cni-conf-dir (pyctr's and others')."""
    from pyctr import networks
    from pyctr.cni import load_dir

    rows = [networks.summary(n) for n in load_dir(c.cni_conf_dir).values()]
    listing(sorted(rows, key=lambda r: r["name"]), ["name", "subnet", "plugins", "file"],
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
@list_opts
@click.pass_obj
def leases_ls(c: Ctx, quiet: bool, fmt: str) -> None:
    from pyctr.leases import Leases

    meta, _, _, _ = c.open()
    rows = [{**r, "created": when(r["created"]),
             "expires": when(r["expires"]) if r["expires"] else ""}
            for r in Leases(meta, c.ns).list()]
    listing(rows, ["id", "created", "expires", "resources"], quiet, fmt, "id")


@leases.command("rm")
@click.argument("ids", nargs=-1, required=True)
@click.pass_obj
def leases_rm(c: Ctx, ids: tuple[str, ...]) -> None:
    from pyctr.leases import Leases

    meta, _, _, _ = c.open()
    for i in ids:
        Leases(meta, c.ns).remove(i)
        click.echo(i)
