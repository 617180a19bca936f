"""pyctr.imageschema: OCI image documents against the verbatim image-spec v1.1.1 schemas.

What matters to import/pull: good OCI and Docker documents pass, and a broken one is refused with
one line naming the JSON path of the problem. Both ways of resolving the schemas' cross-file
$refs (referencing.Registry, and the RefResolver fallback for old jsonschema) must agree.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import subprocess
import sys
from typing import Any

import pytest

from pyctr import imageschema
from pyctr.imageschema import ImageInvalid, validate

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
D3 = "sha256:" + "3" * 64

OCI_MANIFEST = {
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": 1470, "digest": D1},
    "layers": [
        {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "size": 2479, "digest": D2},
        {"mediaType": "application/vnd.oci.image.layer.v1.tar+zstd", "size": 0, "digest": D3},
    ],
    "annotations": {"org.opencontainers.image.created": "2024-01-02T03:04:05Z"},
}

OCI_INDEX = {
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.index.v1+json",
    "manifests": [
        {
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "size": 7143,
            "digest": D1,
            "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"},
            "annotations": {"org.opencontainers.image.ref.name": "latest"},
        },
        {
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "size": 7682,
            "digest": D2,
            "platform": {"architecture": "amd64", "os": "linux"},
        },
    ],
}

OCI_CONFIG = {
    "created": "2024-01-02T03:04:05.123456789Z",
    "architecture": "amd64",
    "os": "linux",
    "config": {
        "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
        "Cmd": ["sh"],
        "Entrypoint": None,
        "ExposedPorts": {"80/tcp": {}},
        "Labels": {"org.example": "yes"},
        "WorkingDir": "/",
    },
    "rootfs": {"type": "layers", "diff_ids": [D2, D3]},
    "history": [{"created": "2024-01-02T03:04:05+01:00", "created_by": "ADD rootfs.tar /"}],
}

OCI_LAYOUT = {"imageLayoutVersion": "1.0.0"}

OCI_DESCRIPTOR = {
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "size": 7143,
    "digest": D1,
    "annotations": {"org.opencontainers.image.ref.name": "v1"},
}

# As `docker push` (schema 2) writes them: Docker media types throughout, and a config with
# Docker's own extra fields and nulls.
DOCKER_MANIFEST = {
    "schemaVersion": 2,
    "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
    "config": {
        "mediaType": "application/vnd.docker.container.image.v1+json",
        "size": 1457,
        "digest": D1,
    },
    "layers": [
        {
            "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
            "size": 2220094,
            "digest": D2,
        }
    ],
}

DOCKER_MANIFEST_LIST = {
    "schemaVersion": 2,
    "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
    "manifests": [
        {
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "size": 528,
            "digest": D1,
            "platform": {"architecture": "amd64", "os": "linux"},
        },
        {
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "size": 528,
            "digest": D2,
            "platform": {"architecture": "arm", "os": "linux", "variant": "v7"},
        },
    ],
}

DOCKER_CONFIG = {
    "architecture": "amd64",
    "config": {
        "Hostname": "",
        "User": "",
        "AttachStdin": False,
        "Env": ["PATH=/bin"],
        "Cmd": ["sh"],
        "Image": D3,
        "Volumes": None,
        "WorkingDir": "",
        "Entrypoint": None,
        "OnBuild": None,
        "Labels": None,
    },
    "container": "2f5c3b5e0e3a",
    "container_config": {"Cmd": ["/bin/sh", "-c", "#(nop) ", 'CMD ["sh"]']},
    "created": "2023-05-19T20:19:24.343434343Z",
    "docker_version": "20.10.23",
    "history": [{"created": "2023-05-19T20:19:24Z", "created_by": "/bin/sh", "empty_layer": True}],
    "os": "linux",
    "rootfs": {"type": "layers", "diff_ids": [D2]},
}

VALID = [
    ("manifest", OCI_MANIFEST),
    ("index", OCI_INDEX),
    ("config", OCI_CONFIG),
    ("layout", OCI_LAYOUT),
    ("descriptor", OCI_DESCRIPTOR),
    ("manifest", DOCKER_MANIFEST),
    ("index", DOCKER_MANIFEST_LIST),
    ("config", DOCKER_CONFIG),
]
VALID_IDS = ["oci-manifest", "oci-index", "oci-config", "layout", "descriptor"] + [
    "docker-manifest",
    "docker-manifest-list",
    "docker-config",
]


def mutated(doc: dict[str, Any], change: Any) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    change(out)
    return out


def _set(path: list[str | int], value: Any) -> Any:
    def change(doc: Any) -> None:
        for seg in path[:-1]:
            doc = doc[seg]
        doc[path[-1]] = value

    return change


def _del(path: list[str | int]) -> Any:
    def change(doc: Any) -> None:
        for seg in path[:-1]:
            doc = doc[seg]
        del doc[path[-1]]

    return change


# (id, kind, document, expected message: kind, JSON path and the gist of the problem)
INVALID = [
    (
        "bad-digest",
        "manifest",
        mutated(OCI_MANIFEST, _set(["layers", 0, "digest"], "sha256:zz")),
        r"manifest: layers\[0\]\.digest: 'sha256:zz' does not match sha256:<64 lowercase hex",
    ),
    (
        "docker-bad-digest",
        "manifest",
        mutated(DOCKER_MANIFEST, _set(["config", "digest"], "sha256:" + "A" * 64)),
        r"manifest: config\.digest: 'sha256:A+' does not match sha256:",
    ),
    (
        "digest-without-algorithm",  # the upstream pattern itself
        "manifest",
        mutated(OCI_MANIFEST, _set(["layers", 1, "digest"], "deadbeef")),
        r"manifest: layers\[1\]\.digest: 'deadbeef' does not match '\^\[a-z0-9\]",
    ),
    (
        "missing-layers",
        "manifest",
        mutated(OCI_MANIFEST, _del(["layers"])),
        r"manifest: layers: required property is missing",
    ),
    (
        "docker-missing-layers",
        "manifest",
        mutated(DOCKER_MANIFEST, _del(["layers"])),
        r"manifest: layers: required property is missing",
    ),
    (
        "schema-version-1",
        "manifest",
        mutated(OCI_MANIFEST, _set(["schemaVersion"], 1)),
        r"manifest: schemaVersion: 1 is less than the minimum of 2",
    ),
    (
        "docker-list-schema-version-1",
        "index",
        mutated(DOCKER_MANIFEST_LIST, _set(["schemaVersion"], 1)),
        r"index: schemaVersion: 1 is less than the minimum of 2",
    ),
    (
        "rootfs-type",  # the schema's enum: ["layers"]
        "config",
        mutated(OCI_CONFIG, _set(["rootfs", "type"], "tarball")),
        r"config: rootfs\.type: 'tarball' is not one of \['layers'\]",
    ),
    (
        "negative-size",
        "descriptor",
        mutated(OCI_DESCRIPTOR, _set(["size"], -1)),
        r"descriptor: size: -1 is less than the minimum of 0",
    ),
    (
        "negative-layer-size",
        "manifest",
        mutated(DOCKER_MANIFEST, _set(["layers", 0, "size"], -2220094)),
        r"manifest: layers\[0\]\.size: -2220094 is less than the minimum of 0",
    ),
    (
        "negative-index-entry-size",
        "index",
        mutated(OCI_INDEX, _set(["manifests", 1, "size"], -1)),
        r"index: manifests\[1\]\.size: -1 is less than the minimum of 0",
    ),
    (
        "size-not-integer",
        "descriptor",
        mutated(OCI_DESCRIPTOR, _set(["size"], "7143")),
        r"descriptor: size: '7143' is not of type 'integer'",
    ),
    (
        "platform-without-os",
        "index",
        mutated(OCI_INDEX, _del(["manifests", 0, "platform", "os"])),
        r"index: manifests\[0\]\.platform\.os: required property is missing",
    ),
    (
        "annotation-not-string",
        "manifest",
        mutated(OCI_MANIFEST, _set(["annotations", "org.opencontainers.image.created"], 1)),
        r'manifest: annotations\["org\.opencontainers\.image\.created"\]: 1 is not of type',
    ),
    (
        "media-type-syntax",
        "manifest",
        mutated(OCI_MANIFEST, _set(["layers", 0, "mediaType"], "tar.gz")),
        r"manifest: layers\[0\]\.mediaType: 'tar\.gz' does not match",
    ),
    (
        "manifest-with-index-media-type",
        "manifest",
        mutated(OCI_MANIFEST, _set(["mediaType"], "application/vnd.oci.image.index.v1+json")),
        r"manifest: mediaType: 'application/vnd\.oci\.image\.index\.v1\+json' is not one of",
    ),
    (
        "list-with-manifest-media-type",
        "index",
        mutated(
            DOCKER_MANIFEST_LIST,
            _set(["mediaType"], "application/vnd.docker.distribution.manifest.v2+json"),
        ),
        r"index: mediaType: 'application/vnd\.docker\.distribution\.manifest\.v2\+json' is not",
    ),
    (
        "index-with-layers",
        "index",
        mutated(OCI_INDEX, _set(["layers"], [])),
        r"index: layers: not a field of an index but of a manifest",
    ),
    (
        "manifest-with-manifests",
        "manifest",
        mutated(OCI_MANIFEST, _set(["manifests"], [])),
        r"manifest: manifests: not a field of a manifest but of an index",
    ),
    (
        "diff-id",
        "config",
        mutated(OCI_CONFIG, _set(["rootfs", "diff_ids", 1], "sha256:abc")),
        r"config: rootfs\.diff_ids\[1\]: 'sha256:abc' does not match sha256:",
    ),
    (
        "created-not-a-date",
        "config",
        mutated(DOCKER_CONFIG, _set(["created"], "yesterday")),
        r"config: created: 'yesterday' is not a 'date-time'",
    ),
    (
        "env-not-array",
        "config",
        mutated(OCI_CONFIG, _set(["config", "Env"], "PATH=/bin")),
        r"config: config\.Env: 'PATH=/bin' is not of type 'array'",
    ),
    (
        "layout-version",
        "layout",
        {"imageLayoutVersion": "2.0.0"},
        r"layout: imageLayoutVersion: '2\.0\.0' is not one of \['1\.0\.0'\]",
    ),
    (
        "not-an-object",
        "manifest",
        ["schemaVersion", 2],
        r"manifest: \['schemaVersion', 2\] is not of type 'object'",
    ),
]


@pytest.mark.parametrize("kind, doc", VALID, ids=VALID_IDS)
def test_valid_documents_pass(kind: str, doc: dict[str, Any]) -> None:
    before = copy.deepcopy(doc)
    validate(kind, doc)
    assert doc == before  # never modified


@pytest.mark.parametrize(
    "kind, doc, expected", [c[1:] for c in INVALID], ids=[c[0] for c in INVALID]
)
def test_invalid_documents_fail_with_one_line_naming_the_field(
    kind: str, doc: Any, expected: str
) -> None:
    with pytest.raises(ImageInvalid) as info:
        validate(kind, doc)
    msg = str(info.value)
    assert "\n" not in msg and len(msg) < 400, msg
    assert re.match(expected, msg), msg
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    "kind, doc",
    VALID + [(c[1], c[2]) for c in INVALID],
    ids=VALID_IDS + [c[0] for c in INVALID],
)
def test_ref_resolver_fallback_agrees_with_referencing(kind: str, doc: Any) -> None:
    """jsonschema < 4.18 has no `referencing`; its RefResolver path must give the same answers."""
    with_registry = imageschema.first_error(kind, doc, use_referencing=True)
    with_resolver = imageschema.first_error(kind, doc, use_referencing=False)
    assert with_registry == with_resolver


def test_upstream_schemas_do_not_restrict_media_type_values() -> None:
    """Docker documents pass the verbatim schemas as they are; no mapping to OCI types is needed.

    If a future upstream release pins OCI values, this fails and the module's Docker handling
    needs revisiting.
    """
    from jsonschema import Draft4Validator

    overlay = imageschema._OVERLAY
    try:
        imageschema._OVERLAY = {k: {} for k in overlay}
        imageschema._validators.clear()
        for kind, doc in VALID:
            assert imageschema.first_error(kind, doc) is None
            validator = imageschema._validator(kind, True)
            assert isinstance(validator, Draft4Validator)
    finally:
        imageschema._OVERLAY = overlay
        imageschema._validators.clear()


def test_unknown_kind_is_a_plain_value_error() -> None:
    with pytest.raises(ValueError, match="unknown image document kind 'blob'") as info:
        validate("blob", {})
    assert not isinstance(info.value, ImageInvalid)


def test_validators_are_built_once() -> None:
    validate("manifest", OCI_MANIFEST)
    assert imageschema._validator("manifest", True) is imageschema._validator("manifest", True)


def test_only_local_schemas_are_ever_resolved() -> None:
    assert imageschema._local_name("https://opencontainers.org/schema/image/manifest") == (
        "image-manifest-schema.json"
    )
    for uri in (
        "https://opencontainers.org/schema/image/index/content-descriptor.json",
        "https://opencontainers.org/schema/image/defs.json#/definitions/int64",
    ):
        assert imageschema._local_name(uri) in ("content-descriptor.json", "defs.json")
    for uri in (
        "https://example.com/schema/defs.json",
        "https://opencontainers.org/schema/image/evil.json",
        "http://json-schema.org/draft-04/schema",
    ):
        assert imageschema._local_name(uri) is None


def test_importing_the_module_does_not_import_jsonschema() -> None:
    """It sits on the import/pull paths; jsonschema's import cost is paid on first use only."""
    code = (
        "import sys, pyctr.imageschema; "
        "bad = [m for m in ('jsonschema', 'referencing') if m in sys.modules]; "
        "sys.exit(str(bad) if bad else 0)"
    )
    # run from the directory this pyctr came from, so that the child imports the same copy
    where = os.path.dirname(os.path.dirname(os.path.abspath(imageschema.__file__)))
    proc = subprocess.run([sys.executable, "-c", code], cwd=where, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_schema_files_are_the_verbatim_upstream_ones() -> None:
    """The JSON files must hash as the README's table says (upstream v1.1.1, byte for byte)."""
    with open(os.path.join(REPO, "oci_schema", "image", "README.md"), encoding="utf-8") as f:
        table = dict(re.findall(r"^\| `([\w.-]+\.json)` \| `([0-9a-f]{64})` \|", f.read(), re.M))
    assert sorted(table) == sorted(
        list(imageschema.KINDS.values()) + ["defs.json", "defs-descriptor.json"]
    )
    for name, want in table.items():
        with open(os.path.join(imageschema.SCHEMA_DIR, name), "rb") as f:
            assert hashlib.sha256(f.read()).hexdigest() == want, name


@pytest.mark.parametrize("kind, doc", VALID, ids=VALID_IDS)
def test_fast_path_accepts_what_jsonschema_accepts(kind: str, doc: dict[str, Any]) -> None:
    """Valid documents never need jsonschema (its import is most of a small pull)."""
    assert imageschema._fast_accepts(kind, doc)
    assert imageschema.first_error(kind, doc, use_referencing=True) is None


@pytest.mark.parametrize(
    "kind, doc, expected", [c[1:] for c in INVALID], ids=[c[0] for c in INVALID]
)
def test_fast_path_never_accepts_what_jsonschema_refuses(kind: str, doc: Any,
                                                         expected: str) -> None:
    """The fast path may only say "valid" when jsonschema agrees; everything it refuses goes
    to jsonschema for the verdict and the words (the foreign-field cases are ours, after)."""
    schema_error = imageschema.first_error(kind, doc, use_referencing=True)
    if schema_error is not None and "not a field of" not in schema_error:
        assert not imageschema._fast_accepts(kind, doc)


def test_validating_a_valid_document_does_not_import_jsonschema() -> None:
    code = (
        "import sys, json; from pyctr import imageschema; "
        f"imageschema.validate('manifest', json.loads({json.dumps(json.dumps(VALID[0][1]))})); "
        "bad = [m for m in ('jsonschema', 'referencing') if m in sys.modules]; "
        "sys.exit(str(bad) if bad else 0)"
    )
    where = os.path.dirname(os.path.dirname(os.path.abspath(imageschema.__file__)))
    proc = subprocess.run([sys.executable, "-c", code], cwd=where, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
