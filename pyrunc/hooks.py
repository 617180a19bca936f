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


def run_list(hooks: list[dict], state: dict, kind: str) -> None:
    for i, h in enumerate(hooks):
        run_one(h, state, f"{kind}[{i}]")


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
        raise RuntimeErr(f"error running {where} hook {path}: {e.strerror}") from None
    try:
        out, err = p.communicate(data, timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        raise RuntimeErr(f"error running {where} hook {path}: timeout after {timeout}s") from None
    except BrokenPipeError:
        out, err = p.communicate()
    if p.returncode != 0:
        raise RuntimeErr(
            f"error running {where} hook {path}: exit status {p.returncode}, "
            f"stdout: {out.decode(errors='replace').strip()}, "
            f"stderr: {err.decode(errors='replace').strip()}"
        )
