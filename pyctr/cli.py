"""pyctr's command line (click), shaped like ctr's: `pyctr [-n NS] images import FILE`, ...

This module holds the root group, its options (Ctx), what every command shares (listings,
sizes) and the error handling; the commands are in cli_images (images, login), cli_store
(content, snapshots, namespaces, network, leases, gc) and cli_containers (run, containers,
tasks).

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


def listing(rows: list[dict], cols: list[str], quiet: bool, fmt: str, key: str) -> None:
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


def list_opts(f: object) -> object:
    f = click.option("-q", "--quiet", is_flag=True, help="names only")(f)  # type: ignore
    return click.option("--format", "fmt", type=click.Choice(["table", "json"]),
                        default="table")(f)


def when(ns: int) -> str:
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


def parse_size(v: str, flag: str, zero: bool = False) -> int:
    """A size such as 64k, 5m or 1g (or bytes); 0 only where zero means something."""
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    s = v.strip().lower().rstrip("b")
    mult = units.get(s[-1:], 1)
    num = s[:-1] if s[-1:] in units else s
    if not num.isdigit() or (int(num) == 0 and not zero):
        raise PyctrError(f"{flag} {v!r}: a size such as 64m or 1g")
    return int(num) * mult


# the command groups, each in a module of its own, register on `cli` as they are imported
from pyctr import cli_containers, cli_images, cli_store  # noqa: E402, F401


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


if __name__ == "__main__":  # (python -m pyctr.cli: the groups registered on pyctr.cli's cli)
    from pyctr.cli import main as _main

    _main()
