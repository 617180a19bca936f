"""The front door: parse runc's command line, run the command, map errors to exit codes.

Parsing uses the flag table in flags.py directly: importing click costs ~65 ms, more than a whole
`runc state`, and every container operation starts this program. click (cli_click.py, built from
the same table) takes over whenever there is help to show or a usage error to explain, so both
paths accept exactly the same flags.
"""

from __future__ import annotations

import os
import sys

from pyrunc.errors import RuntimeErr, UsageError, oserror_text

# (min, max) positional arguments per command; None = unbounded.
NARGS: dict[str, tuple[int, int | None]] = {
    "checkpoint": (1, 1),
    "create": (1, 1),
    "delete": (1, 1),
    "events": (1, 1),
    "exec": (1, None),
    "features": (0, 0),
    "kill": (1, 2),
    "list": (0, 0),
    "pause": (1, 1),
    "ps": (1, None),
    "restore": (1, 1),
    "resume": (1, 1),
    "run": (1, 1),
    "spec": (0, 0),
    "start": (1, 1),
    "state": (1, 1),
    "update": (1, 1),
}


# runc's urfave/cli moves a command's flags in front of its arguments (`runc delete ID -f`
# works), except where the arguments are a command line of their own.
NO_REORDER = ("exec", "ps")


def reorder(flags: tuple, args: list[str]) -> list[str]:
    """urfave/cli v1's reorderArgs: known flags (and the value after each) go first."""
    names = {n.lstrip("-") for f in flags for n in f[0]}

    def is_flag(a: str) -> bool:
        return a not in ("-", "--") and a.startswith("-") and a.lstrip("-").split("=")[0] in names

    moved: list[str] = []
    rest: list[str] = []
    may_be_value = False
    for k, a in enumerate(args):
        if may_be_value and not is_flag(a):
            may_be_value = False
            moved.append(a)
        elif a == "--":
            rest = ["--", *rest, *args[k + 1 :]]
            break
        elif is_flag(a):
            moved.append(a)
            may_be_value = "=" not in a
        else:
            rest.append(a)
    return moved + rest


class Fallback(Exception):
    """The fast parser hands this argv to click (help, or a usage error to explain)."""


class VersionAsked(Exception):
    """--version among the global flags: answered without click (~40 ms to import)."""


def _key(name: str) -> str:
    return name.lstrip("-").replace("-", "_")


def _index(flags: tuple) -> dict[str, tuple[str, str]]:
    idx = {}
    for names, kind, _default, _help in flags:
        key = _key(names[0])
        for n in names:
            idx[n.lstrip("-")] = (key, kind)
    return idx


def _defaults(flags: tuple) -> dict:
    out = {}
    for names, kind, default, _help in flags:
        out[_key(names[0])] = False if kind == "bool" else [] if kind == "list" else default
    return out


def _parse_flags(argv: list[str], i: int, flags: tuple, stop_at_positional: bool) -> tuple:
    """Go flag-package semantics: `-x`/`--x`, `--x=v` or `--x v`; stop at the first positional."""
    idx = _index(flags)
    opts = _defaults(flags)
    n = len(argv)
    while i < n:
        a = argv[i]
        if a == "--":
            return opts, i + 1
        if len(a) < 2 or a[0] != "-":
            if stop_at_positional:
                return opts, i
            raise Fallback
        name, eq, val = a.lstrip("-").partition("=")
        if name in ("h", "help") or name not in idx:
            raise Fallback
        key, kind = idx[name]
        i += 1
        if kind == "bool":
            if eq:
                if val not in ("true", "false", "1", "0", "t", "f", "TRUE", "FALSE"):
                    raise Fallback
                opts[key] = val in ("true", "1", "t", "TRUE")
            else:
                opts[key] = True
            continue
        if not eq:
            if i >= n:
                raise Fallback
            val = argv[i]
            if val.startswith("-") and val != "-" and not val[1:].isdigit():
                raise Fallback  # "-b --keep": a flag where a value should be; let click say so
            i += 1
        if kind == "int":
            try:
                opts[key] = int(val)
            except ValueError:
                raise Fallback from None
        elif kind == "list":
            opts[key].append(val)
        else:
            opts[key] = val
    return opts, i


def parse(argv: list[str]) -> tuple[dict, str, dict, list[str]]:
    from pyrunc.flags import COMMANDS, GLOBAL_FLAGS

    g, i = _parse_flags(argv, 0, GLOBAL_FLAGS + ((("--version", "-v"), "bool", None, ""),), True)
    if g.pop("version"):
        raise VersionAsked
    if i >= len(argv) or argv[i] not in COMMANDS:
        raise Fallback
    cmd = argv[i]
    rest = argv[i + 1 :]
    if cmd not in NO_REORDER:
        rest = reorder(COMMANDS[cmd][3], rest)
    opts, j = _parse_flags(rest, 0, COMMANDS[cmd][3], True)
    args = rest[j:]
    if cmd not in NO_REORDER and any(a.startswith("-") and a != "-" for a in args):
        raise Fallback  # an unknown flag: click explains it
    lo, hi = NARGS[cmd]
    if len(args) < lo or (hi is not None and len(args) > hi):
        raise Fallback
    return g, cmd, opts, args


def run_command(g: dict, cmd: str, opts: dict, args: list[str]) -> int:
    from pyrunc import log

    try:
        log.setup(g["log"], g["log_format"], g["debug"])
    except log.LogOpenError:
        return 1
    if g.get("root"):
        # against the caller's directory, as runc: create and run chdir to the bundle later
        g["root"] = os.path.abspath(g["root"])
    try:
        if g.get("root"):
            from pyrunc.rootless import prepare_root

            prepare_root(g["root"])
        if g["log_format"] not in ("text", "json"):
            raise UsageError(f"invalid log-format: {g['log_format']}")
        from pyrunc import commands

        handler = getattr(commands, "cmd_" + cmd)
        return handler(g, opts, args) or 0
    except RuntimeErr as e:
        if g["debug"]:
            import traceback

            traceback.print_exc()
        log.error(str(e))
        return e.exit_code
    except OSError as e:
        if g["debug"]:
            import traceback

            traceback.print_exc()
        log.error(oserror_text(e))
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # noqa: BLE001 - a bug must still end in one line, not a traceback
        if g["debug"]:
            import traceback

            traceback.print_exc()
        log.error(f"internal error ({type(e).__name__}): {e} (rerun with --debug for details)")
        return 1


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    try:
        g, cmd, opts, args = parse(argv)
    except Fallback:
        from pyrunc.cli_click import run_click

        return run_click(argv)
    except VersionAsked:
        from pyrunc import version_text

        sys.stdout.write(version_text())
        return 0
    rc = run_command(g, cmd, opts, args)
    try:
        sys.stdout.flush()
    except OSError:
        pass
    return rc


def entry() -> None:
    """Console-script entry point: skip interpreter teardown (runc exits as soon as it is done)."""
    rc = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:
        pass
    os._exit(rc)
