"""OCI hooks: run each with the state JSON on stdin, its own args/env, and an optional timeout.

subprocess is imported only when a hook exists: it costs ~10 ms and most containers have none.
"""

from __future__ import annotations

from pyrunc import fastjson
from pyrunc.errors import RuntimeErr


def preload() -> None:
    """Import what running a hook needs while the runtime's files are still reachable (the
    init runs startContainer hooks after pivot_root)."""
    import subprocess  # noqa: F401


def run_list(hooks: list[dict], state: dict, kind: str, keep_going: bool = False) -> None:
    """Run in order; the first failure raises, or with keep_going (poststop: the spec wants a
    warning and the rest still run) is logged as a warning."""
    for i, h in enumerate(hooks):
        try:
            run_one(h, state, f"{kind}[{i}]")
        except RuntimeErr as e:
            if not keep_going:
                raise
            from pyrunc import log

            log.warn(str(e))


def run_one(hook: dict, state: dict, where: str) -> None:
    import subprocess

    path = hook["path"]
    args = hook.get("args") or [path]
    env = dict(e.partition("=")[::2] for e in hook.get("env") or [])
    timeout = hook.get("timeout")
    data = fastjson.dumps(state).encode()
    try:
        p = subprocess.Popen(
            args,
            executable=path,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            close_fds=True,
        )
    except OSError as e:
        raise _failed(where, path, e.strerror or str(e)) from None
    try:
        out, err = p.communicate(data, timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        raise _failed(where, path, f"timeout after {timeout}s") from None
    except BrokenPipeError:
        out, err = p.communicate()
    if p.returncode < 0:  # Go's exec says "signal: bad system call"
        import signal

        desc = signal.strsignal(-p.returncode) or f"signal {-p.returncode}"
        raise _failed(where, path, f"signal: {desc[0].lower()}{desc[1:]}", out, err)
    if p.returncode != 0:
        raise _failed(where, path, f"exit status {p.returncode}", out, err)


def _failed(where: str, path: str, why: str, out: bytes = b"", err: bytes = b"") -> RuntimeErr:
    """runc's wording ("error running hook: exit status 1, stdout: ..., stderr: ...", which
    tools match on), prefixed with which hook it was."""
    return RuntimeErr(
        f"{where} hook {path}: error running hook: {why}, "
        f"stdout: {out.decode(errors='replace').strip()}, "
        f"stderr: {err.decode(errors='replace').strip()}"
    )
