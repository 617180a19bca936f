"""Writing OCI image layout archives: what `images import` reads and `ctr images import`,
podman and umoci read too. Used for busybox:local, and by the tests and benchmarks to make
images offline (one definition of how a manifest and an index are put together).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"


class Image:
    """One image of an archive: its name, its config's `config` object (Cmd, Env, ...), and
    its layers as uncompressed tar bytes (gzipped into the archive)."""

    def __init__(self, name: str, config: dict, layers: list[bytes], arch: str,
                 ref: str = "") -> None:
        self.name, self.config, self.layers, self.arch = name, config, layers, arch
        self.ref = ref or name.rsplit(":", 1)[-1]


def _compress(raw: bytes, how: str, level: int) -> tuple[bytes, str]:
    if how == "gzip":
        return gzip.compress(raw, compresslevel=level, mtime=0), OCI_LAYER_GZIP
    if how == "zstd":
        import zstandard

        return zstandard.ZstdCompressor(level=3).compress(raw), OCI_LAYER_ZSTD
    if how == "none":
        return raw, OCI_LAYER
    raise ValueError(f"compression {how!r}: gzip, zstd or none")


def write(path: str, images: list[Image], level: int = 6, compress: str = "gzip",
          corrupt_last_layer: bool = False) -> str:
    """Write the archive to path; returns path. Layers are compressed with `compress`
    (gzip, zstd or none). corrupt_last_layer (tests only) flips one bit of the last layer
    blob after its digest is taken."""
    blobs: dict[str, bytes] = {}
    gz: dict[bytes, tuple[str, int, str]] = {}

    def blob(b: bytes) -> tuple[str, int]:
        d = "sha256:" + hashlib.sha256(b).hexdigest()
        blobs[d] = b
        return d, len(b)

    entries = []
    last = ""
    for img in images:
        descs, diff_ids = [], []
        for raw in img.layers:
            diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
            if raw not in gz:
                data, mt = _compress(raw, compress, level)
                gz[raw] = (*blob(data), mt)
            d, n, mt = gz[raw]
            last = d
            descs.append({"mediaType": mt, "digest": d, "size": n})
        cd, cs = blob(json.dumps({
            "created": "1970-01-01T00:00:00Z", "architecture": img.arch, "os": "linux",
            "config": img.config, "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }).encode())
        md, ms = blob(json.dumps({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": cd, "size": cs},
            "layers": descs}).encode())
        entries.append({"mediaType": OCI_MANIFEST, "digest": md, "size": ms,
                        "platform": {"architecture": img.arch, "os": "linux"},
                        "annotations": {"io.containerd.image.name": img.name,
                                        "org.opencontainers.image.ref.name": img.ref}})
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}
    with tarfile.open(path, "w") as t:
        def add(name: str, data: bytes) -> None:
            ti = tarfile.TarInfo(name)
            ti.size, ti.mode = len(data), 0o644
            t.addfile(ti, io.BytesIO(data))

        add("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        add("index.json", json.dumps(index).encode())
        for d, data in blobs.items():
            if corrupt_last_layer and d == last:
                data = data[:-1] + bytes([data[-1] ^ 1])
            add("blobs/sha256/" + d.split(":", 1)[1], data)
    return path
