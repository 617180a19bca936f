"""Check config.json (and state.json) against our OCI schemas without importing jsonschema.

`create` and `run` validate every config.json they read, and importing jsonschema costs ~135 ms:
several times the whole budget of a runtime call. This module interprets the small subset of JSON
Schema that oci_schema/*.json use, and reports the first problem as one line that names the JSON
path, so the user sees `config.json: process.args: expected array, got string`, not a traceback.

The real jsonschema library stays the reference: `validate_with_jsonschema` runs it (tests use it
as the oracle for this interpreter; a future `--strict` mode can use it too).

One deliberate difference from plain JSON Schema, applied to both paths: "integer" means a JSON
number written without a fraction or exponent (Python int, never bool). JSON Schema would accept
1.0, but runc's Go decoder refuses it for an integer field, and so do we.

Import cost matters here: no `json`, `typing` or `re` at module level (`re` alone is ~6 ms), and
patterns of the form "^literal" (process.cwd's "^/") are matched without `re` at all.
"""

from __future__ import annotations

from pyrunc.errors import ConfigError
from pyrunc.fastjson import dumps, loads

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

# Keywords the interpreter understands. Everything else that carries meaning would be silently
# ignored, so tests assert that the schema files use nothing outside this set.
SUPPORTED_KEYWORDS = frozenset(
    {
        "$schema", "$id", "$comment", "title", "description", "$defs", "definitions",
        "$ref", "type", "enum", "const", "pattern", "minLength", "maxLength",
        "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minItems", "maxItems",
        "items", "required", "properties", "additionalProperties", "allOf", "anyOf", "oneOf",
    }
)  # fmt: skip

_schemas: dict[str, dict[str, Any]] = {}
_refs: dict[tuple[int, str], dict[str, Any]] = {}
_patterns: dict[str, Callable[[str], bool]] = {}
_REGEX_META = frozenset(".^$*+?{}[]\\|()")

_TYPE_NAMES = {
    dict: "object",
    list: "array",
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    type(None): "null",
}


class _Fail(Exception):
    """Unwinds from the failing node; each frame on the way out adds its path segment.

    Building the path only on failure keeps the (common) valid case free of string work.
    """

    def __init__(self, msg: str, wrong_type: bool = False) -> None:
        self.msg = msg
        self.wrong_type = wrong_type  # ranks anyOf/oneOf branches: such a branch was not meant
        self.rpath: list[str | int] = []  # innermost segment first


def load_schema(name: str) -> dict[str, Any]:
    """Parse `oci_schema/<name>-schema.json` once per process; later calls are a dict lookup."""
    schema = _schemas.get(name)
    if schema is None:
        from oci_schema import schema_path

        with open(schema_path(name), "rb") as f:
            schema = loads(f.read())
        _schemas[name] = schema
    return schema


def validate(instance: object, schema_name: str = "config") -> None:
    """Raise ConfigError naming the first invalid spot (depth-first, in document order)."""
    root = load_schema(schema_name)
    try:
        _check(instance, root, root)
    except _Fail as e:
        raise ConfigError(_message(f"{schema_name}.json", e.rpath[::-1], e.msg)) from None


def validate_with_jsonschema(instance: object, schema_name: str = "config") -> list[str]:
    """All errors according to the jsonschema library, formatted like `validate`'s message.

    Slow to import; never call it on a hot path. "integer" is narrowed the same way as in
    `validate` (no 1.0), so that the two agree on which documents are valid.
    """
    from jsonschema import validators

    root = load_schema(schema_name)
    base = validators.validator_for(root)
    checker = base.TYPE_CHECKER.redefine("integer", lambda _checker, x: type(x) is int)
    cls = validators.extend(base, type_checker=checker)
    return [
        _message(f"{schema_name}.json", list(err.absolute_path), err.message)
        for err in cls(root).iter_errors(instance)
    ]


def _message(doc: str, path: list[str | int], msg: str) -> str:
    if not path:
        return f"{doc}: {msg}"
    return f"{doc}: {format_path(path)}: {msg}"


def format_path(path: list[str | int]) -> str:
    """`linux.namespaces[2].type`; keys that are not identifiers are quoted (`annotations["a.b"]`)
    so that the path stays unambiguous and can be pasted into jq."""
    out: list[str] = []
    for seg in path:
        if type(seg) is int:
            out.append(f"[{seg}]")
        elif seg.isidentifier():
            out.append(f".{seg}" if out else seg)
        else:
            out.append(f"[{dumps(seg)}]")
    return "".join(out)


def _type_name(x: object) -> str:
    return _TYPE_NAMES.get(type(x), type(x).__name__)


def _got(x: object) -> str:
    """For a type mismatch; a fraction where an integer belongs is clearer shown as the value."""
    return f"number {_show(x)}" if type(x) is float else _type_name(x)


def _show(x: object) -> str:
    """A value as it would appear in the JSON file, cut short so the message stays one line."""
    if isinstance(x, dict | list):
        return _type_name(x)
    s = dumps(x)
    return s if len(s) <= 60 else s[:57] + "..."


def _show_choice(x: object) -> str:
    """Enum members are listed bare (`pid, network`) unless that would be ambiguous."""
    if type(x) is str and x and x.isprintable() and "," not in x and " " not in x:
        return x
    return _show(x)


def _has_type(x: object, t: str) -> bool:
    tx = type(x)
    if t == "integer":
        return tx is int
    if t == "number":
        return tx is int or tx is float
    return _TYPE_NAMES.get(tx) == t


def _equal(a: object, b: object) -> bool:
    """JSON equality: true is not 1 (Python says it is), but 1 is 1.0."""
    if type(a) is bool or type(b) is bool:
        return type(a) is type(b) and a == b
    return a == b


def _resolve(root: dict[str, Any], ref: str) -> dict[str, Any]:
    key = (id(root), ref)
    target = _refs.get(key)
    if target is None:
        if not ref.startswith("#"):
            raise ValueError(f"only local $ref is supported, not {ref!r}")
        node: Any = root
        for part in ref[1:].split("/")[1:]:
            node = node[part.replace("~1", "/").replace("~0", "~")]
        target = _refs[key] = node
    return target


def _class_star(pattern: str) -> list[tuple[str, str]] | None:
    """The character ranges of a pattern "^[...]*$" whose class holds only plain characters
    and a-b ranges (execCPUAffinity's "^[0-9, -]*$"); None for any other pattern."""
    if not (pattern.startswith("^[") and pattern.endswith("]*$")):
        return None
    body = pattern[2:-3]
    if not body or any(c in "[]\\^" for c in body):
        return None
    out = []
    i = 0
    while i < len(body):
        if i + 2 < len(body) and body[i + 1] == "-":
            if body[i] > body[i + 2] or (i + 3 < len(body) and body[i + 3] == "-"):
                return None  # re would refuse it, or read it in a way not worth copying
            out.append((body[i], body[i + 2]))
            i += 3
        else:
            out.append((body[i], body[i]))
            i += 1
    return out


def _matcher(pattern: str) -> Callable[[str], bool]:
    m = _patterns.get(pattern)
    if m is None:
        lit = pattern[1:]
        ranges = _class_star(pattern)
        if pattern[:1] == "^" and not any(c in _REGEX_META for c in lit):
            # Same answer as re.search for an anchored literal, without importing re.
            def m(s: str, _lit: str = lit) -> bool:
                return s.startswith(_lit)
        elif ranges is not None:
            # Same answer as re.search, whose "$" also matches before a final newline.
            def m(s: str, _r: list[tuple[str, str]] = ranges) -> bool:
                if s.endswith("\n"):
                    s = s[:-1]
                return all(any(lo <= c <= hi for lo, hi in _r) for c in s)
        else:
            import re

            search = re.compile(pattern).search

            def m(s: str, _search: Callable[..., Any] = search) -> bool:
                return _search(s) is not None

        _patterns[pattern] = m
    return m


def _check(x: Any, schema: dict[str, Any] | bool, root: dict[str, Any]) -> None:
    if schema is True:
        return
    if schema is False:
        raise _Fail("no value is allowed here")

    ref = schema.get("$ref")
    if ref is not None:
        _check(x, _resolve(root, ref), root)

    t = schema.get("type")
    if t is not None:
        if type(t) is str:
            if not _has_type(x, t):
                raise _Fail(f"expected {t}, got {_got(x)}", True)
        elif not any(_has_type(x, one) for one in t):
            raise _Fail(f"expected {' or '.join(t)}, got {_got(x)}", True)

    enum = schema.get("enum")
    if enum is not None:
        ok = (x in enum) if type(x) is str else any(_equal(x, e) for e in enum)
        if not ok:
            choices = ", ".join(_show_choice(e) for e in enum)
            if isinstance(x, dict | list):
                raise _Fail(f"expected one of {choices}, got {_type_name(x)}")
            raise _Fail(f"{_show(x)} is not one of {choices}")
    if "const" in schema and not _equal(x, schema["const"]):
        raise _Fail(f"expected {_show(schema['const'])}, got {_show(x)}")

    tx = type(x)
    if tx is dict:
        _check_object(x, schema, root)
    elif tx is list:
        _check_array(x, schema, root)
    elif tx is str:
        _check_string(x, schema)
    elif tx is int or tx is float:
        _check_number(x, schema)

    for key in ("allOf", "anyOf", "oneOf"):
        subs = schema.get(key)
        if subs is not None:
            _check_combinator(key, x, subs, root)


def _check_object(x: dict[str, Any], schema: dict[str, Any], root: dict[str, Any]) -> None:
    required = schema.get("required")
    if required is not None:
        for name in required:
            if name not in x:
                raise _Fail(f'missing required property "{name}"')
    props = schema.get("properties")
    extra = schema.get("additionalProperties")
    if props is None and extra is None:
        return
    if props is None:
        props = {}
    for key, val in x.items():
        sub = props.get(key, extra)
        if sub is None:
            continue
        if sub is False:
            e = _Fail(f"unexpected property {_show(key)}")
            e.rpath.append(key)
            raise e
        try:
            _check(val, sub, root)
        except _Fail as e:
            e.rpath.append(key)
            raise


def _check_array(x: list[Any], schema: dict[str, Any], root: dict[str, Any]) -> None:
    n = schema.get("minItems")
    if n is not None and len(x) < n:
        raise _Fail(f"expected at least {n} item{'s' if n != 1 else ''}, got {len(x)}")
    n = schema.get("maxItems")
    if n is not None and len(x) > n:
        raise _Fail(f"expected at most {n} item{'s' if n != 1 else ''}, got {len(x)}")
    items = schema.get("items")
    if items is None:
        return
    for i, val in enumerate(x):
        try:
            _check(val, items, root)
        except _Fail as e:
            e.rpath.append(i)
            raise


def _check_string(x: str, schema: dict[str, Any]) -> None:
    pattern = schema.get("pattern")
    if pattern is not None and not _matcher(pattern)(x):
        raise _Fail(f"{_show(x)} does not match {_show(pattern)}")
    n = schema.get("minLength")
    if n is not None and len(x) < n:
        raise _Fail(f"{_show(x)} is shorter than the minimum length {n}")
    n = schema.get("maxLength")
    if n is not None and len(x) > n:
        raise _Fail(f"{_show(x)} is longer than the maximum length {n}")


def _check_number(x: int | float, schema: dict[str, Any]) -> None:
    m = schema.get("minimum")
    if m is not None and x < m:
        raise _Fail(f"{_show(x)} is less than the minimum {m}")
    m = schema.get("maximum")
    if m is not None and x > m:
        raise _Fail(f"{_show(x)} is greater than the maximum {m}")
    m = schema.get("exclusiveMinimum")
    if m is not None and x <= m:
        raise _Fail(f"{_show(x)} is not greater than {m}")
    m = schema.get("exclusiveMaximum")
    if m is not None and x >= m:
        raise _Fail(f"{_show(x)} is not less than {m}")


def _check_combinator(key: str, x: Any, subs: list[Any], root: dict[str, Any]) -> None:
    if key == "allOf":
        for sub in subs:
            _check(x, sub, root)
        return
    fails: list[_Fail] = []
    matched = 0
    for sub in subs:
        try:
            _check(x, sub, root)
        except _Fail as e:
            fails.append(e)
        else:
            matched += 1
            if key == "anyOf":
                return
    if matched == 0:
        # The branch that got deepest into the value, or at least past its type check, is the
        # one the author most likely meant.
        raise max(fails, key=lambda e: (len(e.rpath), not e.wrong_type))
    if key == "oneOf" and matched > 1:
        raise _Fail(f"matches {matched} of the alternatives, expected exactly one")


def validate_process(process: object, doc: str = "process.json") -> None:
    """Check an `exec --process` document against the config schema's `process` definition."""
    root = load_schema("config")
    sub = root["properties"]["process"]
    try:
        _check(process, sub, root)
    except _Fail as e:
        raise ConfigError(_message(doc, e.rpath[::-1], e.msg)) from None
