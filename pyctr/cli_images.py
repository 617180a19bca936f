"""pyctr images ... and login: the content of images, in and out (registries, archives)."""

from __future__ import annotations

import json
import os
import sys

import click

from pyctr.cli import Ctx, cli, list_opts, listing, parse_size, when
from pyctr.errors import PyctrError

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

    chunk = parse_size(chunk_size, "--chunk-size", zero=True) or 0
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
@list_opts
@click.pass_obj
def images_ls(c: Ctx, quiet: bool, fmt: str) -> None:
    _, _, imgs, _ = c.open()
    rows = [{"name": r["name"], "type": r["media_type"], "digest": r["digest"],
             "size": r["size"], "created": when(r["created"])} for r in imgs.list()]
    listing(rows, ["name", "type", "digest"], quiet, fmt, "name")


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
