"""One function per subcommand: turn parsed flags into library calls and print runc's output.

Each handler imports what only it needs, so `state` never pays for `run`'s modules.
"""

from __future__ import annotations

import os
import sys

from pyrunc.errors import RuntimeErr

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyrunc.container import Created


def _out(text: str) -> None:
    sys.stdout.write(text)


def _no_systemd(g: dict) -> None:
    if g["systemd_cgroup"]:
        if not os.path.isdir("/run/systemd/system"):
            # runc's words, and why: the driver talks to a running systemd over D-Bus
            raise RuntimeErr(
                "systemd cgroup flag passed, but systemd support for managing cgroups is not "
                "available (systemd is not running on this host: no /run/systemd/system)"
            )
        raise RuntimeErr("--systemd-cgroup: the systemd cgroup driver is not implemented yet")


def _create(g: dict, o: dict, cid: str, detach: bool) -> Created:
    """create and run share every create flag."""
    _no_systemd(g)
    from pyrunc import container, rootless

    return container.create(
        g["root"],
        cid,
        o["bundle"],
        console_socket=o["console_socket"],
        pid_file=o["pid_file"],
        no_pivot=o["no_pivot"],
        no_new_keyring=o["no_new_keyring"],
        preserve_fds=o["preserve_fds"],
        detach=detach,
        debug=g["debug"],
        rootless_cgroups=rootless.cgroups(g["rootless"]),
    )


def cmd_create(g: dict, o: dict, a: list[str]) -> int:
    _create(g, o, a[0], detach=True)
    return 0


def cmd_start(g: dict, o: dict, a: list[str]) -> int:
    from pyrunc import container

    container.start(g["root"], a[0])
    return 0


def cmd_run(g: dict, o: dict, a: list[str]) -> int:
    _no_systemd(g)
    from pyrunc import container

    detach = o["detach"]
    fwd = None
    if not detach:
        from pyrunc import foreground

        fwd = foreground.Forwarder()  # before the container exists: no signal is lost
        if not o["no_subreaper"]:
            from pyrunc.linux import sys as S

            S.prctl(S.PR_SET_CHILD_SUBREAPER, 1)
    c = _create(g, o, a[0], detach)
    try:
        container.start(g["root"], a[0], c.st)
    except BaseException:
        container.delete(g["root"], a[0], force=True)
        if fwd is not None and c.console_master >= 0:
            # what the init said before it stopped (a failing startContainer hook's error)
            # is in the pty: pass it on before the error of our own. After the delete no
            # slave is left open, so the drain ends at EIO rather than on a guess.
            foreground.drain(c.console_master)
        raise
    if fwd is None:
        return 0
    rc = fwd.wait(c.st["pid"], c.console_master)
    if not o["keep"]:
        container.delete(g["root"], a[0], force=True)
    return rc


def cmd_state(g: dict, o: dict, a: list[str]) -> int:
    # the state module alone: `state` is the most frequent call and needs no cgroup code
    from pyrunc import state as S
    from pyrunc.fastjson import dumps_indent

    _out(dumps_indent(S.oci_state(g["root"], S.load(g["root"], a[0]))) + "\n")
    return 0


def cmd_kill(g: dict, o: dict, a: list[str]) -> int:
    from pyrunc import container
    from pyrunc import state as S

    S.load(g["root"], a[0])  # "container does not exist" comes before a bad signal
    sig = container.parse_signal(a[1] if len(a) > 1 else "SIGTERM")
    container.kill(g["root"], a[0], sig, o["all"])
    return 0


def cmd_delete(g: dict, o: dict, a: list[str]) -> int:
    from pyrunc import container

    container.delete(g["root"], a[0], o["force"])
    return 0


def cmd_list(g: dict, o: dict, a: list[str]) -> int:
    from pyrunc import container

    items = container.list_all(g["root"])
    fmt = o["format"]
    if o["quiet"]:
        _out("".join(s["id"] + "\n" for s in items))
        return 0
    if fmt == "json":
        from pyrunc.fastjson import dumps

        for s in items:
            s["owner"] = _owner(g["root"], s["id"])  # as in the table (runc fills both)
        _out((dumps(items) if items else "null") + "\n")
        return 0
    if fmt != "table":
        raise RuntimeErr(f"invalid format option: {fmt}")
    rows = [["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]]
    for s in items:
        rows.append(
            [
                s["id"],
                str(s["pid"]),
                s["status"],
                s["bundle"],
                s["created"],
                _owner(g["root"], s["id"]),
            ]
        )
    _out(_tabwrite(rows))
    return 0


def _owner(root: str, cid: str) -> str:
    try:
        uid = os.stat(os.path.join(root, cid)).st_uid
    except OSError:
        return ""
    if uid == 0:
        return "root"
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"#{uid}"


def _tabwrite(rows: list[list[str]], minwidth: int = 12, padding: int = 3) -> str:
    """Go's text/tabwriter as runc configures it (minwidth 12, padding 3, last column bare)."""
    ncols = len(rows[0])
    widths = [max(minwidth, max(len(r[i]) for r in rows) + padding) for i in range(ncols - 1)]
    return "".join(
        "".join(c.ljust(w) for c, w in zip(r[:-1], widths, strict=True)) + r[-1] + "\n"
        for r in rows
    )


def cmd_spec(g: dict, o: dict, a: list[str]) -> int:
    from pyrunc.specgen import spec_json

    bundle = o["bundle"] or "."
    path = os.path.join(bundle, "config.json")
    if os.path.exists(path):
        raise RuntimeErr("File config.json exists. Remove it first")
    if o["bundle"] and not os.path.isdir(bundle):
        raise RuntimeErr(f"bundle {bundle!r}: no such directory")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    try:
        os.write(fd, spec_json(o["rootless"]).encode())
    finally:
        os.close(fd)
    return 0


def cmd_features(g: dict, o: dict, a: list[str]) -> int:
    from pyrunc.fastjson import dumps_indent
    from pyrunc.features import features

    _out(dumps_indent(features(), "    ") + "\n")
    return 0


def cmd_pause(g: dict, o: dict, a: list[str]) -> int:
    from pyrunc import container

    container.pause(g["root"], a[0], True)
    return 0


def cmd_resume(g: dict, o: dict, a: list[str]) -> int:
    from pyrunc import container

    container.pause(g["root"], a[0], False)
    return 0


def cmd_exec(g: dict, o: dict, a: list[str]) -> int:
    from pyrunc import execproc

    try:
        return execproc.run(g, o, a)
    except RuntimeErr as e:
        e.exit_code = 255  # runc exec's status for its own failures (vs the process's own)
        raise
    except OSError as e:
        from pyrunc.errors import oserror_text

        err = RuntimeErr(oserror_text(e))
        err.exit_code = 255
        raise err from None


def _not_yet(name: str) -> int:
    raise RuntimeErr(f"{name} is not implemented yet in pyrunc")


def _combined_output(argv: list[str]) -> tuple[int, str]:
    """(exit status, stdout+stderr) of a program, as runc's CombinedOutput: posix_spawn and a
    pipe rather than the subprocess module (~9 ms to import, more than the rest of `ps`)."""
    r, w = os.pipe()
    try:
        pid = os.posix_spawnp(argv[0], argv, os.environ, file_actions=[
            (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
            (os.POSIX_SPAWN_DUP2, w, 1),
            (os.POSIX_SPAWN_DUP2, w, 2),
        ])
    except OSError as e:
        os.close(r)
        raise RuntimeErr(f"{argv[0]}: {e.strerror}") from None
    finally:
        os.close(w)
    chunks = []
    with os.fdopen(r, "rb") as f:
        while chunk := f.read(65536):
            chunks.append(chunk)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), b"".join(chunks).decode(errors="replace")


def cmd_ps(g: dict, o: dict, a: list[str]) -> int:
    """runc's ps: the container's pids (from its cgroup) as JSON, or the host's `ps` output
    (default `-ef`) filtered to those pids."""
    from pyrunc import state as S

    st = S.load(g["root"], a[0])
    pids = S.members(st)
    if o["format"] == "json":
        from pyrunc.fastjson import dumps

        _out((dumps(pids) if pids else "null") + "\n")  # Go's nil slice, as runc prints
        return 0
    if o["format"] != "table":
        raise RuntimeErr(f"invalid format option: {o['format']}")
    rc, text = _combined_output(["ps", *(a[1:] or ["-ef"])])
    if rc != 0:
        raise RuntimeErr(f"ps: {text.strip()}")
    lines = text.splitlines()
    header = lines[0].split() if lines else []
    if "PID" not in header:
        raise RuntimeErr("couldn't find PID field in ps output")
    col = header.index("PID")
    wanted = set(pids)
    out = [lines[0]]
    for line in lines[1:]:
        fields = line.split()
        if len(fields) > col and fields[col].isdigit() and int(fields[col]) in wanted:
            out.append(line)
    _out("\n".join(out) + "\n")
    return 0


def cmd_events(g: dict, o: dict, a: list[str]) -> int:
    from pyrunc import events

    return events.run(g["root"], a[0], o["interval"], o["stats"])


def cmd_update(g: dict, o: dict, a: list[str]) -> int:
    from pyrunc import update

    update.update(g["root"], a[0], o)
    return 0


def cmd_checkpoint(g: dict, o: dict, a: list[str]) -> int:
    return _not_yet("checkpoint")


def cmd_restore(g: dict, o: dict, a: list[str]) -> int:
    return _not_yet("restore")
