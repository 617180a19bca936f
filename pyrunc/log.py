"""runc-compatible logging: logrus text or JSON lines, to --log or stderr.

containerd's runc shim reads the last `"level":"error"` line of `--log` to report why a runtime
call failed, so the format matters as much as the message.
"""

from __future__ import annotations

import os
import time

_fd = 2
_json = False
_debug = False
_to_file = False


class LogOpenError(Exception):
    """--log cannot be opened: already reported."""


def setup(path: str, fmt: str, debug: bool) -> None:
    global _fd, _json, _debug, _to_file
    _json = fmt == "json"
    _debug = debug
    if path:
        try:
            _fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as e:
            # said on stderr (in the format asked for), as runc does; the caller exits 1
            why = (e.strerror or str(e)).lower()
            _emit("error", f"open {path}: {why}")
            raise LogOpenError from None
        _to_file = True


def _quote(s: str) -> str:
    if s and all(c.isalnum() or c in "-._/@^+" for c in s):
        return s
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _emit(level: str, msg: str) -> None:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    if _json:
        from pyrunc.fastjson import dumps

        line = dumps({"level": level, "msg": msg, "time": now})
    else:
        line = f'time="{now}" level={level} msg={_quote(msg)}'
    try:
        os.write(_fd, (line + "\n").encode())
    except OSError:
        pass


def debug(msg: str) -> None:
    if _debug:
        _emit("debug", msg)


def warn(msg: str) -> None:
    _emit("warning", msg)


def error(msg: str) -> None:
    """Report a fatal error as runc does: the log line, plus the bare message on stderr when the
    log goes to a file (callers watching stderr still see why)."""
    _emit("error", msg)
    if _to_file:
        try:
            os.write(2, (msg + "\n").encode())
        except OSError:
            pass


def debug_enabled() -> bool:
    return _debug
