"""The fast argv parser and click (built from the same flag table) must agree on every input."""

from __future__ import annotations

import random
import warnings

import click
import pytest

import pyrunc
from pyrunc import cli
from pyrunc.cli_click import build, command_help, main_help
from pyrunc.flags import COMMANDS, GLOBAL_FLAGS


def _click_parse(argv: list[str]) -> tuple[dict, str, dict, list[str]] | None:
    """Parse with click only (no command run); None if click rejects the argv."""
    grp = build()
    try:
        gctx = grp.make_context("pyrunc", list(argv), resilient_parsing=False)
    except (click.UsageError, click.exceptions.Exit):
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        rest = list(gctx.protected_args) + list(gctx.args)
    if not rest or rest[0] not in COMMANDS:
        return None
    cmd = grp.commands[rest[0]]
    try:
        cctx = cmd.make_context(rest[0], rest[1:], parent=gctx)
    except (click.UsageError, click.exceptions.Exit):
        return None
    opts = dict(cctx.params)
    args = list(opts.pop("args"))
    opts = {k: list(v) if isinstance(v, tuple) else v for k, v in opts.items()}
    lo, hi = cli.NARGS[rest[0]]
    if len(args) < lo or (hi is not None and len(args) > hi):
        return None
    return dict(gctx.params), rest[0], opts, args


def _fast(argv: list[str]) -> tuple | None:
    try:
        return cli.parse(argv)
    except cli.Fallback:
        return None


def test_examples_parse_the_same() -> None:
    cases = [
        ["state", "x"],
        ["--root", "/tmp/r", "run", "-d", "-b", "/b", "--pid-file", "p", "id"],
        ["--root=/r", "--log", "l", "--log-format", "json", "--debug", "create", "c"],
        ["kill", "-a", "c", "KILL"],
        ["delete", "--force", "c"],
        ["list", "-f", "json", "-q"],
        ["exec", "-e", "A=1", "--env", "B=2", "-t", "c", "sh", "-c", "ls -l"],
        ["run", "--preserve-fds", "3", "c"],
        ["spec", "--rootless", "-b", "/x"],
        ["delete", "c", "--force"],  # urfave/cli moves flags before arguments
        ["update", "c", "--memory-swap", "-1", "--pids-limit", "10"],
    ]
    for argv in cases:
        fast = _fast(argv)
        assert fast is not None, argv
        assert fast == _click_parse(argv), argv


def test_random_argv_agree() -> None:
    """Both parsers accept the same argv and produce the same values (or both defer)."""
    rng = random.Random(1234)
    words = ["-b", "--bundle", "/b", "-d", "--detach", "x", "y", "--force", "-f", "--pid-file",
             "--root", "/r", "-a", "KILL", "--debug", "--log", "json", "--preserve-fds", "2",
             "--nope", "-q", "--format", "--", "-e", "A=b", "--keep", "--rootless"]
    agreed = 0
    for _ in range(1500):
        cmd = rng.choice(list(COMMANDS))
        argv = [rng.choice(words) for _ in range(rng.randint(0, 2))] + [cmd]
        argv += [rng.choice(words) for _ in range(rng.randint(0, 5))]
        fast = _fast(argv)
        if fast is None:
            continue  # deferred to click: it gives the error or the help
        assert fast == _click_parse(argv), argv
        agreed += 1
    assert agreed > 40


def test_reorder_like_urfave() -> None:
    flags = COMMANDS["update"][3]
    assert cli.reorder(flags, ["c", "--memory", "50M", "--memory-swap", "-1"]) == [
        "--memory", "50M", "--memory-swap", "-1", "c"]
    assert cli.reorder(COMMANDS["delete"][3], ["c", "-f"]) == ["-f", "c"]
    assert cli.reorder(flags, ["c", "--", "--memory"]) == ["--", "c", "--memory"]
    g, cmd, o, a = cli.parse(["exec", "c", "ls", "-l"])  # exec's arguments are a command line
    assert a == ["c", "ls", "-l"]


def test_defaults_match_runc() -> None:
    g, cmd, o, a = cli.parse(["run", "c"])
    assert g["root"] == "/run/pyrunc" and g["log_format"] == "text" and not g["debug"]
    assert o == {"bundle": "", "console_socket": "", "detach": False, "keep": False,
                 "pid_file": "", "no_subreaper": False, "no_pivot": False,
                 "no_new_keyring": False, "preserve_fds": 0}


@pytest.mark.parametrize("argv", [["-h"], ["state", "-h"], ["bogus"],
                                  ["state"], ["state", "a", "b"], ["run", "--nope", "x"]])
def test_help_and_errors_fall_back_to_click(argv: list[str]) -> None:
    with pytest.raises(cli.Fallback):
        cli.parse(argv)


@pytest.mark.parametrize("argv", [["--version"], ["-v"], ["--root", "/x", "--version"]])
def test_version_is_answered_without_click(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Tools call `--version` to probe the runtime: no 40 ms of click for it."""
    assert cli.main(argv) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first == f"pyrunc version {pyrunc.__version__}"


def test_help_layout_is_runcs() -> None:
    lines = command_help("list").splitlines()
    assert lines[0] == "NAME:" and lines[1].startswith("   pyrunc list - ")
    assert "OPTIONS:" in lines
    top = main_help().splitlines()
    assert top[1] == "   pyrunc - Open Container Initiative runtime"
    assert any(line.startswith("   --root value") for line in top)


HIDDEN = {("update", "--kernel-memory"), ("update", "--kernel-memory-tcp")}  # as in runc


def test_every_flag_has_help() -> None:
    for name, (short, _usage, _text, flags, _epi) in COMMANDS.items():
        assert short, name
        for names, kind, _default, help_ in flags:
            assert kind in ("bool", "str", "int", "list"), (name, names)
            assert bool(help_) != ((name, names[0]) in HIDDEN), (name, names)
    assert {f[0][0] for f in GLOBAL_FLAGS} >= {"--root", "--log", "--log-format", "--debug"}


@pytest.mark.parametrize(
    "argv",
    [[], ["--debug"], ["--root", "/tmp/x", "help"], ["--log-format=json", "h"]],
)
def test_no_command_or_help_after_global_flags_shows_help(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """As runc: no command, or `help` after global flags, prints the help on stdout, exit 0."""
    from pyrunc.cli_click import run_click

    assert run_click(argv) == 0
    assert "USAGE:" in capsys.readouterr().out


def test_help_topic_after_global_flags(capsys: pytest.CaptureFixture[str]) -> None:
    from pyrunc.cli_click import run_click

    assert run_click(["--root", "/tmp/x", "help", "create"]) == 0
    assert "create" in capsys.readouterr().out
