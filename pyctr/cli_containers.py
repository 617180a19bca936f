"""pyctr run, containers and tasks: containers from images, and their tasks."""

from __future__ import annotations

import json
import os
import sys

import click

from pyctr.cli import Ctx, cli, list_opts, listing, parse_size, when
from pyctr.cli_images import ensure_busybox
from pyctr.errors import PyctrError

# -- containers --

@cli.group()
def containers() -> None:
    """Containers: records with a snapshot and a spec (create, or a run without --rm)."""


@containers.command("ls")
@list_opts
@click.pass_obj
def containers_ls(c: Ctx, quiet: bool, fmt: str) -> None:
    meta, _, _, _ = c.open()
    rows = [{"id": r["id"], "image": r["image"], "runtime": r["runtime"],
             "created": when(r["created"])}
            for r in meta.rows("SELECT * FROM containers WHERE namespace=? ORDER BY id", c.ns)]
    listing(rows, ["id", "image", "runtime"], quiet, fmt, "id")


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
                           "runtime": r[0]["runtime"], "created": when(r[0]["created"]),
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
@list_opts
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
    listing(rows, ["id", "pid", "status"], quiet, fmt, "id")


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
    return None if v is None else parse_size(v, "--memory")


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
