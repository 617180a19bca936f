"""JSON without importing the json package.

`json.decoder` imports `re`, which costs ~5 ms at start-up: more than the rest of `pyrunc state`.
The C accelerator `_json` does the real work in both directions; this module only wires it up.
Output matches Go's encoding/json for the values the runtime writes (no HTML escaping is needed:
runc's state and list output carry no '<', '>' or '&' in practice, and jq reads either form).
"""

from __future__ import annotations

import _json

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class _Ctx:
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int

    @staticmethod
    def parse_constant(name: str) -> float:
        return {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}[name]


_ctx = _Ctx()
_scan = _json.make_scanner(_ctx)
_WS = " \t\n\r"


class JSONError(ValueError):
    pass


def loads(s: str | bytes) -> Any:
    if isinstance(s, bytes | bytearray):
        s = s.decode("utf-8-sig" if s[:3] == b"\xef\xbb\xbf" else "utf-8")
    n = len(s)
    i = 0
    while i < n and s[i] in _WS:
        i += 1
    try:
        obj, end = _scan(s, i)
    except RecursionError:
        raise JSONError("invalid JSON: nested too deeply") from None
    except (StopIteration, ValueError, SystemError):
        # Rare path: let the json package (and its import cost) produce the precise message.
        import json

        try:
            json.loads(s)
        except json.JSONDecodeError as e:
            raise JSONError(f"invalid JSON: {e}") from None
        raise JSONError("invalid JSON") from None
    while end < n and s[end] in _WS:
        end += 1
    if end != n:
        raise JSONError(f"invalid JSON: extra data: line 1 column {end + 1} (char {end})")
    return obj


def load_document(path: str, flag: str) -> dict:
    """A JSON object from a file named on the command line ("-" = stdin); errors name the flag
    and the file (--process, --resources)."""
    from pyrunc.errors import ConfigError

    try:
        if path == "-":
            import sys

            data = sys.stdin.buffer.read()
        else:
            with open(path, "rb") as f:
                data = f.read()
        doc = loads(data)
    except OSError as e:
        raise ConfigError(f"{flag} {path}: {e.strerror}") from None
    except ValueError as e:
        raise ConfigError(f"{flag} {path}: {e}") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{flag} {path}: expected a JSON object")
    return doc


def _default(o: Any) -> Any:
    raise TypeError(f"not JSON serializable: {type(o).__name__}")


_compact = _json.make_encoder(
    None, _default, _json.encode_basestring, None, ":", ",", False, False, True
)


def dumps(obj: Any) -> str:
    """Compact form, as Go's json.Marshal."""
    return "".join(_compact(obj, 0))


def dumps_indent(obj: Any, indent: str = "  ", _level: int = 0) -> str:
    """Indented form, as Go's json.MarshalIndent(v, "", "  ")."""
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        pad = "\n" + indent * (_level + 1)
        items = [
            pad + _json.encode_basestring(str(k)) + ": " + dumps_indent(v, indent, _level + 1)
            for k, v in obj.items()
        ]
        return "{" + ",".join(items) + "\n" + indent * _level + "}"
    if isinstance(obj, list | tuple):
        if not obj:
            return "[]"
        pad = "\n" + indent * (_level + 1)
        items = [pad + dumps_indent(v, indent, _level + 1) for v in obj]
        return "[" + ",".join(items) + "\n" + indent * _level + "]"
    return dumps(obj)
