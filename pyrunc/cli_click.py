"""click, built from the same flag table as the fast parser: help, version and usage errors.

Help is rendered in runc's (urfave/cli) layout -- NAME, USAGE, DESCRIPTION, OPTIONS -- because
scripts and runc's own test-suite read it.
"""

from __future__ import annotations

import sys

import click

from pyrunc import version_text
from pyrunc.cli import NARGS, NO_REORDER, run_command
from pyrunc.flags import COMMANDS, GLOBAL_FLAGS

PROG = "pyrunc"

ABOUT = """pyrunc is a command line client for running applications packaged according to
the Open Container Initiative (OCI) format and is a compliant implementation of the
Open Container Initiative specification.

pyrunc integrates well with existing process supervisors to provide a production
container runtime environment for applications. It can be used with your
existing process monitoring tools and the container will be spawned as a
direct child of the process supervisor.

Containers are configured using bundles. A bundle for a container is a directory
that includes a specification file named "config.json" and a root filesystem.
The root filesystem contains the contents of the container.

To start a new instance of a container:

    # pyrunc run [ -b bundle ] <container-id>

Where "<container-id>" is your name for the instance of the container that you
are starting. The name you provide for the container instance must be unique on
your host. Providing the bundle directory using "-b" is optional. The default
value for "bundle" is the current directory."""


def _flag_lines(flags: tuple) -> list[str]:
    cols = []
    for names, kind, default, help_ in flags:
        if help_ is None:  # hidden
            continue
        v = " value" if kind != "bool" else ""
        left = ", ".join(n + v for n in names)
        if default not in (None, "", False) or (kind == "int" and default is not None):
            d = f'"{default}"' if isinstance(default, str) else default
            help_ = f"{help_} (default: {d})"
        cols.append((left, help_))
    width = max((len(left) for left, _ in cols), default=0)
    return [f"   {left.ljust(width)}  {h}" for left, h in cols]


def command_help(name: str) -> str:
    short, usage, text, flags, epilog = COMMANDS[name]
    out = ["NAME:", f"   {PROG} {name} - {short}", "", "USAGE:", f"   {PROG} {name} {usage}", ""]
    if text:
        out += [text, ""]
    if flags:
        out += ["OPTIONS:"] + _flag_lines(flags)
    if epilog:
        out += ["", epilog.replace("runc ", "pyrunc ")]
    return "\n".join(out) + "\n"


def main_help() -> str:
    width = max(len(n) for n in COMMANDS) + 2
    cmds = [f"   {n.ljust(width)}{c[0]}" for n, c in COMMANDS.items()]
    cmds.append(f"   {'help, h'.ljust(width)}Shows a list of commands or help for one command")
    extra = (
        (("--help", "-h"), "bool", None, "show help"),
        (("--version", "-v"), "bool", None, "print the version"),
    )
    return (
        "\n".join(
            [
                "NAME:",
                f"   {PROG} - Open Container Initiative runtime",
                "",
                ABOUT,
                "",
                "USAGE:",
                f"   {PROG} [global options] command [command options] [arguments...]",
                "",
                "VERSION:",
                "   " + version_text().rstrip(),
                "",
                "COMMANDS:",
                *cmds,
                "",
                "GLOBAL OPTIONS:",
                *_flag_lines(GLOBAL_FLAGS + extra),
            ]
        )
        + "\n"
    )


class _Cmd(click.Command):
    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        formatter.write(command_help(self.name or ""))


class _Group(click.Group):
    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        formatter.write(main_help())


def _option(names: tuple, kind: str, default: object, help_: str | None) -> click.Option:
    decls = [n if n.startswith("--") or len(n) == 2 else "-" + n for n in names]
    key = names[0].lstrip("-").replace("-", "_")
    if help_ is None:
        return click.Option([*decls, key], default=default, hidden=True)
    if kind == "bool":
        return click.Option([*decls, key], is_flag=True, default=False, help=help_)
    if kind == "list":
        return click.Option([*decls, key], multiple=True, help=help_)
    if kind == "int":
        return click.Option([*decls, key], type=int, default=default, help=help_)
    return click.Option([*decls, key], default=default, help=help_)


def build() -> click.Group:
    def group_cb(**g: object) -> None:
        click.get_current_context().obj = g

    grp = _Group(
        PROG,
        params=[_option(*f) for f in GLOBAL_FLAGS],
        callback=group_cb,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    grp.params.append(
        click.Option(
            ["-v", "--version"],
            is_flag=True,
            expose_value=False,
            is_eager=True,
            callback=_print_version,
            help="print the version",
        )
    )
    for name, (short, _usage, _text, flags, _epilog) in COMMANDS.items():
        grp.add_command(_make(name, short, flags))
    return grp


def _print_version(ctx: click.Context, _p: object, value: bool) -> None:
    if value:
        click.echo(version_text(), nl=False)
        ctx.exit(0)


def _make(name: str, short: str, flags: tuple) -> click.Command:
    lo, hi = NARGS[name]

    def cb(args: tuple, **opts: object) -> None:
        if len(args) < lo or (hi is not None and len(args) > hi):
            click.echo("Incorrect Usage.\n\n" + command_help(name), nl=False)
            want = "exactly" if lo == hi else "at least" if hi is None else "at most"
            n = lo if want != "at most" else hi
            raise click.UsageError(f'{PROG}: "{name}" requires {want} {n} argument(s)')
        g = dict(click.get_current_context().parent.obj)  # type: ignore[union-attr]
        for k, v in opts.items():
            if isinstance(v, tuple):
                opts[k] = list(v)
        click.get_current_context().exit(run_command(g, name, opts, list(args)))

    return _Cmd(
        name,
        params=[_option(*f) for f in flags] + [click.Argument(["args"], nargs=-1)],
        callback=cb,
        help=short,
        context_settings={
            "help_option_names": ["-h", "--help"],
            "ignore_unknown_options": False,
            "allow_interspersed_args": name not in NO_REORDER,
        },
    )


def _after_global_flags(argv: list[str]) -> list[str] | None:
    """The words from the command on, past the global flags (and the values of those that
    take one); None when there is no command."""
    takes_value = {n for names, kind, _d, _h in GLOBAL_FLAGS if kind != "bool" for n in names}
    known = {n for names, *_ in GLOBAL_FLAGS for n in names} | {"-h", "--help"}
    i = 0
    while i < len(argv):
        a = argv[i]
        name = a.split("=", 1)[0]
        if not a.startswith("-") or a == "-" or name not in known:
            return argv[i:]  # a command, or a flag click must explain
        if name in takes_value and "=" not in a:
            i += 1
        i += 1
    return None


def run_click(argv: list[str]) -> int:
    from pyrunc import log

    words = _after_global_flags(argv)
    if words is None:  # no command at all: runc shows its help and exits 0
        sys.stdout.write(main_help())
        return 0
    if words and words[0] in ("help", "h"):
        topic = words[1] if len(words) > 1 else ""
        if topic in COMMANDS:
            sys.stdout.write(command_help(topic))
            return 0
        if topic in ("help", "h"):
            sys.stdout.write(main_help())
            return 0
        if topic:
            log.error(f"No help topic for '{topic}'")
            return 3
        sys.stdout.write(main_help())
        return 0
    grp = build()
    try:
        rv = grp.main(argv, prog_name=PROG, standalone_mode=False)
        return rv if isinstance(rv, int) else 0
    except click.exceptions.Exit as e:
        return e.exit_code
    except click.UsageError as e:
        msg = e.format_message()
        if "No such command" in msg:
            name = msg.split("'")[1] if "'" in msg else msg
            log.error(f"No help topic for '{name}'")
            return 3
        log.error(msg)
        return 1
    except click.Abort:
        return 130
