"""Validate OCI image documents (manifest, index, config, oci-layout, descriptor) against the
upstream image-spec v1.1.1 JSON Schemas in `oci_schema/image/` (copied verbatim; see its README).

Import and pull read every index, manifest and config from outside (a tarball, a registry). We
check them before we trust their shape, so a broken document is reported as one line that names
the spot, e.g. `manifest: layers[0].digest: 'sha256:zz' does not match sha256:<64 lowercase hex
digits> (sha512: 128)`. We do not wait for a KeyError deep in the unpacker.

jsonschema is slow to import (~90 ms with referencing) and this module is imported on the
import/pull paths only. jsonschema is therefore imported inside the functions, never at module
level, and each validator is built once on first use and then cached.

On top of the verbatim schemas there are four checks of our own. Each one enforces only what
the spec's prose, upstream's later schema, or containerd already requires:

* `mediaType`, where a manifest or an index carries one, must name that kind of document. It
  may be the OCI type or the Docker schema 2 equivalent (see _MEDIA_TYPES). A manifest must not
  carry an index's `manifests`, and an index must not carry a manifest's `config`/`layers`.
* A digest with a registered algorithm (sha256, sha512) must have the right encoded form (see
  _DIGEST_PATTERN). This applies to descriptors and to the config's `rootfs.diff_ids`.
* A descriptor's `size` must not be negative (see _OVERLAY).
* The config's `created` (and `history[].created`) must be an RFC 3339 date-time. The schema
  says `"format": "date-time"`, but jsonschema asserts formats only when asked, and only when an
  optional package is installed. We check this one format ourselves so the result does not
  depend on what else is installed. containerd decodes `created` into a Go time.Time and would
  fail on a bad value as well.
"""

from __future__ import annotations

import os

import oci_schema

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# kind -> schema file in oci_schema/image/ (also the file whose `id` the validator starts from)
KINDS: dict[str, str] = {
    "manifest": "image-manifest-schema.json",
    "index": "image-index-schema.json",
    "config": "config-schema.json",
    "layout": "image-layout-schema.json",
    "descriptor": "content-descriptor.json",
}

SCHEMA_DIR = os.path.join(os.path.dirname(os.path.abspath(oci_schema.__file__)), "image")

# Every `$ref` in the upstream files is relative, so it resolves to a URI under this prefix. The
# URI's last segment names the local file (as in upstream's Go validator, schema/schema.go).
_URI_PREFIX = "https://opencontainers.org/schema/"
# Files that only hold definitions for the others (no `id`, no kind of their own).
_SHARED = ("defs.json", "defs-descriptor.json")

# Docker media types. The v1.1.x schemas restrict `mediaType` only in syntax (the RFC 6838
# pattern in defs-descriptor.json), never to the OCI values. So Docker schema 2 manifests,
# manifest lists, their config (application/vnd.docker.container.image.v1+json) and layers
# (application/vnd.docker.image.rootfs.diff.tar.gzip) pass the verbatim schemas unchanged.
# Mapping Docker types to OCI ones first would change nothing. (Older image-spec drafts did
# pin some values, which is why the question comes up.)
#
# The one place we do restrict media types is our own check of a document's top-level
# `mediaType` against its kind. The spec says a manifest's `mediaType`, when present, MUST be
# the OCI manifest type, and an index's the OCI index type. We also accept the Docker schema 2
# equivalent, as containerd does: its `images.validateMediaType` treats the Docker and OCI types
# alike and refuses only a document that is of the other kind (a manifest with `manifests` or an
# index mediaType, an index with `config`/`layers` or a manifest mediaType).
_MEDIA_TYPES: dict[str, tuple[str, ...]] = {
    "manifest": (
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ),
    "index": (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    ),
}
# Top-level fields that only the other kind has (containerd's images.validateMediaType).
_FOREIGN_FIELDS: dict[str, tuple[str, ...]] = {
    "manifest": ("manifests",),
    "index": ("config", "layers"),
}
_OTHER = {"manifest": "index", "index": "manifest"}
_A = {"manifest": "a manifest", "index": "an index"}

# The schema's digest pattern checks only the general `algorithm:encoded` form, so
# 'sha256:zz' passes it. The spec's registered algorithms fix the encoded part (descriptor.md,
# "Registered algorithms"): sha256 is 64 and sha512 is 128 lowercase hex digits. containerd
# (its content store runs go-digest's Validate) refuses anything else for these two. Other
# algorithms keep only the schema's general form: the first alternative (not sha256/sha512) lets
# them through here and leaves them to the schema.
_DIGEST_PATTERN = r"^(?!sha256:|sha512:)|^sha256:[a-f0-9]{64}$|^sha512:[a-f0-9]{128}$"
_DIGEST_RULE = "sha256:<64 lowercase hex digits> (sha512: 128)"

# Checks layered over each kind's upstream schema (combined with `allOf`, so jsonschema picks the
# best error among both). Upstream v1.1.x types a descriptor's `size` as int64, so -1 passes.
# Upstream has since made it non-negative (opencontainers/image-spec#1285, after v1.1.1), because
# an unknown size defeats size limits on fetches. We apply that rule now.
_SIZE = {"properties": {"size": {"minimum": 0}, "digest": {"pattern": _DIGEST_PATTERN}}}
_OVERLAY: dict[str, dict[str, Any]] = {
    "descriptor": _SIZE,
    "manifest": {
        "properties": {
            "mediaType": {"enum": list(_MEDIA_TYPES["manifest"])},
            "config": _SIZE,
            "subject": _SIZE,
            "layers": {"items": _SIZE},
        }
    },
    "index": {
        "properties": {
            "mediaType": {"enum": list(_MEDIA_TYPES["index"])},
            "subject": _SIZE,
            "manifests": {"items": _SIZE},
        }
    },
    "config": {
        "properties": {
            "rootfs": {"properties": {"diff_ids": {"items": {"pattern": _DIGEST_PATTERN}}}},
        }
    },
    "layout": {},
}


class ImageInvalid(ValueError):
    """An image document does not conform. The message is one line: `KIND: PATH: PROBLEM`."""


_validators: dict[tuple[str, bool], Any] = {}
_schemas: dict[str, dict[str, Any]] = {}


def validate(kind: str, doc: dict[str, Any]) -> None:
    """Raise ImageInvalid naming the first (most relevant) problem of `doc` as a `kind` document.

    `kind` is one of KINDS. An unknown kind is a bug in the caller, so it raises a plain ValueError
    rather than ImageInvalid. `doc` is never modified.
    """
    error = first_error(kind, doc)
    if error is not None:
        raise ImageInvalid(error)


def first_error(kind: str, doc: object, *, use_referencing: bool | None = None) -> str | None:
    """The message `validate` would raise, or None if `doc` is valid.

    `use_referencing=False` forces the RefResolver path that jsonschema < 4.18 needs. The default
    is `referencing` when it is installed. (Tests use it to check that both paths agree.)
    """
    if kind not in KINDS:
        raise ValueError(f"unknown image document kind {kind!r} (one of {', '.join(KINDS)})")
    if use_referencing is None and _fast_accepts(kind, doc):
        return _foreign_field(kind, doc)
    from jsonschema.exceptions import best_match

    if use_referencing is None:
        use_referencing = _have_referencing()
    validator = _validator(kind, use_referencing)
    err = best_match(validator.iter_errors(doc))
    if err is not None:
        return _format(kind, err)
    return _foreign_field(kind, doc)


def _foreign_field(kind: str, doc: object) -> str | None:
    if isinstance(doc, dict):
        for field in _FOREIGN_FIELDS.get(kind, ()):
            if field in doc:
                other = _A[_OTHER[kind]]
                return f"{kind}: {field}: not a field of {_A[kind]} but of {other} (is it {other}?)"
    return None


# -- the fast path: most documents are valid, and jsonschema costs ~95 ms to import (most of a
# pull of a small image). _fast_accepts interprets the same schemas (upstream allOf overlay)
# and answers True only when it is sure the document is valid; any keyword it does not know,
# and any failure, sends the document to jsonschema, which decides and words the error. So it
# may be stricter than jsonschema, never looser (tests/unit/test_image_schema.py checks both
# on every case).

class _Unsure(Exception):
    pass


_KNOWN = frozenset({"id", "$schema", "description", "title", "definitions", "$ref", "type",
                    "enum", "pattern", "required", "properties", "additionalProperties",
                    "patternProperties", "items", "minItems", "maxItems", "minimum", "maximum",
                    "minLength", "maxLength", "allOf", "anyOf", "oneOf", "format"})


def _fast_accepts(kind: str, doc: object) -> bool:
    upstream = _load(KINDS[kind])
    try:
        return _ok(doc, upstream, KINDS[kind]) and _ok(doc, _OVERLAY[kind], KINDS[kind])
    except (_Unsure, KeyError, ValueError, TypeError, RecursionError):
        return False


def _deref(ref: str, here: str) -> tuple[dict[str, Any], str]:
    uri, _, frag = ref.partition("#")
    name = here
    if uri:
        name = _local_name(_URI_PREFIX + "image/" + uri) or _local_name(_URI_PREFIX + uri) or ""
        if not name:
            raise _Unsure(ref)
    node: Any = _load(name)
    for part in [p for p in frag.split("/") if p]:
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node, name


_TYPES: dict[str, Any] = {
    "object": lambda x: isinstance(x, dict), "array": lambda x: isinstance(x, list),
    "string": lambda x: isinstance(x, str), "boolean": lambda x: isinstance(x, bool),
    "null": lambda x: x is None,
    "integer": lambda x: isinstance(x, int) and not isinstance(x, bool),
    "number": lambda x: isinstance(x, int | float) and not isinstance(x, bool),
}


def _ok(x: Any, sch: Any, here: str) -> bool:
    import re

    if sch is True or sch == {}:
        return True
    if not isinstance(sch, dict) or not _KNOWN.issuperset(sch):
        raise _Unsure(sch)
    if "$ref" in sch:
        target, where = _deref(sch["$ref"], here)
        return _ok(x, target, where)  # (draft 4: $ref ignores its siblings)
    t = sch.get("type")
    if t is not None and not any(_TYPES[one](x) for one in ([t] if isinstance(t, str) else t)):
        return False
    if "enum" in sch and not any(type(x) is type(e) and x == e for e in sch["enum"]):
        return False
    if isinstance(x, str):
        if "pattern" in sch and not re.search(sch["pattern"], x):
            return False
        if len(x) < sch.get("minLength", 0) or len(x) > sch.get("maxLength", len(x)):
            return False
        if sch.get("format") == "date-time" and not _is_datetime(x):
            return False
    if isinstance(x, int | float) and not isinstance(x, bool):
        if ("minimum" in sch and x < sch["minimum"]) or ("maximum" in sch and x > sch["maximum"]):
            return False
    if isinstance(x, list):
        if len(x) < sch.get("minItems", 0) or len(x) > sch.get("maxItems", len(x)):
            return False
        if "items" in sch:
            if not isinstance(sch["items"], dict):
                raise _Unsure("items")
            if not all(_ok(v, sch["items"], here) for v in x):
                return False
    if isinstance(x, dict):
        if any(r not in x for r in sch.get("required", ())):
            return False
        props, pats = sch.get("properties", {}), sch.get("patternProperties", {})
        extra = sch.get("additionalProperties", True)
        for k, v in x.items():
            seen = False
            if k in props:
                seen = True
                if not _ok(v, props[k], here):
                    return False
            for pat, sub in pats.items():
                if re.search(pat, k):
                    seen = True
                    if not _ok(v, sub, here):
                        return False
            if not seen and extra is not True:
                if extra is False or not _ok(v, extra, here):
                    return False
    if "allOf" in sch and not all(_ok(x, s, here) for s in sch["allOf"]):
        return False
    if "anyOf" in sch and not any(_ok(x, s, here) for s in sch["anyOf"]):
        return False
    if "oneOf" in sch and sum(1 for s in sch["oneOf"] if _ok(x, s, here)) != 1:
        return False
    return True


def _have_referencing() -> bool:
    try:
        import referencing  # noqa: F401
    except ImportError:
        return False
    return True


def _load(name: str) -> dict[str, Any]:
    """One schema file from oci_schema/image/, parsed once."""
    import json

    if name not in _schemas:
        with open(os.path.join(SCHEMA_DIR, name), encoding="utf-8") as f:
            _schemas[name] = json.load(f)
    return _schemas[name]


def _local_name(uri: str) -> str | None:
    """The file that `uri` stands for, or None if we do not ship it.

    A top-level schema is known by its `id` (`.../schema/image/manifest`). Anything else is
    `https://opencontainers.org/schema/.../NAME.json`, which stands for file NAME.json.
    """
    uri = uri.split("#", 1)[0]
    if not uri.startswith(_URI_PREFIX):
        return None
    for name in KINDS.values():
        if _load(name).get("id") == uri:
            return name
    last = uri.rsplit("/", 1)[-1]
    return last if last in KINDS.values() or last in _SHARED else None


def _validator(kind: str, use_referencing: bool) -> Any:
    """Build (once) the Draft 4 validator for `kind`: upstream schema `allOf` our overlay."""
    key = (kind, use_referencing)
    if key in _validators:
        return _validators[key]

    from jsonschema import Draft4Validator, FormatChecker

    upstream = _load(KINDS[kind])
    schema = {"allOf": [{"$ref": upstream["id"]}, _OVERLAY[kind]]}
    checker = FormatChecker(formats=())
    checker.checks("date-time")(_is_datetime)
    if use_referencing:
        validator = Draft4Validator(schema, registry=_registry(), format_checker=checker)
    else:
        import warnings

        with warnings.catch_warnings():  # RefResolver is deprecated where referencing exists
            warnings.simplefilter("ignore", DeprecationWarning)
            resolver = _ref_resolver(schema)
            validator = Draft4Validator(schema, resolver=resolver, format_checker=checker)
    _validators[key] = validator
    return validator


def _registry() -> Any:
    """A referencing.Registry that serves our files for every URI they are reached by.

    The lookup goes by file name (see _local_name) rather than by a list of URIs. Draft-04
    sub-schema `id`s move the base URI around (the index's manifest descriptors resolve against
    `.../schema/image/manifestDescriptor`, content-descriptor.json against `.../schema/`), and
    matching on the file name covers every such base. Unknown URIs raise NoSuchResource. No URI
    is ever fetched over the network.
    """
    from referencing import Registry, Resource
    from referencing.exceptions import NoSuchResource
    from referencing.jsonschema import DRAFT4

    def retrieve(uri: str) -> Any:
        name = _local_name(uri)
        if name is None:
            raise NoSuchResource(ref=uri)
        # defs.json and defs-descriptor.json declare no $schema; they are draft-04 like the rest.
        return Resource.from_contents(_load(name), default_specification=DRAFT4)

    return Registry(retrieve=retrieve)


def _ref_resolver(schema: dict[str, Any]) -> Any:
    """RefResolver fallback for jsonschema < 4.18 (no `referencing`). It is deprecated in newer
    versions, so it runs only when `referencing` is missing, or when a test forces it."""
    from jsonschema import RefResolver

    class LocalResolver(RefResolver):
        def resolve_remote(self, uri: str) -> Any:
            name = _local_name(uri)
            if name is None:
                raise LookupError(f"{uri}: not one of the OCI image schemas (no network lookups)")
            return _load(name)

    return LocalResolver("", schema)


def _is_datetime(value: object) -> bool:
    """An RFC 3339 date-time (section 5.6), e.g. `2024-01-02T03:04:05.123456789Z`."""
    import datetime
    import re

    if not isinstance(value, str):
        return True  # format applies to strings only; the type is the schema's business
    pattern = r"\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)"
    if not re.fullmatch(pattern, value):
        return False
    # Go keeps nanoseconds, fromisoformat at most microseconds: range-check the rest only.
    value = re.sub(r"(\.\d{6})\d+", r"\1", value.upper()).replace("Z", "+00:00")
    try:
        datetime.datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _format(kind: str, err: Any) -> str:
    """`KIND: PATH: PROBLEM` on one line, where PATH is the JSON path of the offending value.

    For a missing required property, PATH is the path of that property, not of its parent.
    """
    path: list[str | int] = list(err.absolute_path)
    if err.validator == "required" and isinstance(err.instance, dict):
        missing = [p for p in err.validator_value if p not in err.instance]
        if missing:
            return f"{kind}: {_format_path([*path, missing[0]])}: required property is missing"
    msg = err.message
    if err.validator == "pattern" and err.validator_value == _DIGEST_PATTERN:
        msg = f"{_short(err.instance)} does not match {_DIGEST_RULE}"
    # jsonschema's messages start with the repr of the instance, which for an object or a long
    # string can swamp the line. Shorten it to keep the message one readable line.
    shown = repr(err.instance)
    if len(shown) > 80 and msg.startswith(shown):
        msg = _short(err.instance) + msg[len(shown) :]
    msg = " ".join(msg.split())
    if len(msg) > 300:
        msg = msg[:297] + "..."
    return f"{kind}: {_format_path(path)}: {msg}" if path else f"{kind}: {msg}"


def _short(x: object) -> str:
    if isinstance(x, dict):
        return "an object"
    if isinstance(x, list):
        return f"an array of {len(x)}"
    if isinstance(x, str):  # cut long strings, but show a sha512 digest (135) whole
        return repr(x[:140] + "...") if len(x) > 140 else repr(x)
    return repr(x)[:60]


def _format_path(path: list[str | int]) -> str:
    """`layers[0].digest`, in the form pyrunc.validate uses for config.json."""
    from pyrunc.validate import format_path

    return format_path(path)
