"""Images: names, import of OCI layout and `docker save` archives, platform selection, unpack.

An image is a name pointing at a descriptor (a manifest, or an index / manifest list) in the
content store, as in containerd. Import reads and validates every index, manifest and config
an archive references before it stores anything, stores the blobs verified against their
digests and sizes, and records the names in one transaction: a bad archive is one error and
leaves no image row (blobs it added are removed again).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import platform as _platform
import tarfile
from collections.abc import Callable

from pyctr import content
from pyctr.errors import PyctrError
from pyctr.meta import Meta, now

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
INDEXES = (OCI_INDEX, DOCKER_LIST)
MANIFESTS = (OCI_MANIFEST, DOCKER_MANIFEST)

_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le",
         "s390x": "s390x", "riscv64": "riscv64", "i686": "386"}


def host_platform() -> str:
    return "linux/" + _ARCH.get(_platform.machine(), _platform.machine())


def pick_platform(index: dict, want: str, what: str) -> dict:
    """The descriptor in an index (or manifest list) for platform want: os/arch[/variant]."""
    for d in index.get("manifests") or []:
        p = d.get("platform") or {}
        plat = f"{p.get('os', '')}/{p.get('architecture', '')}"
        if plat == want or (plat + "/" + p.get("variant", "")).rstrip("/") == want:
            return d
    raise PyctrError(f"{what}: no manifest for platform {want}")


def normalize(name: str) -> str:
    """A short name as docker and nerdctl read it: busybox -> docker.io/library/busybox:latest."""
    if not name or any(c.isspace() for c in name):
        raise PyctrError(f"image name {name!r}: not a valid reference")
    if "@" in name:
        return name
    first, _, rest = name.partition("/")
    if not rest:
        name = "docker.io/library/" + name
    elif "." not in first and ":" not in first and first != "localhost":
        name = "docker.io/" + name
    if ":" not in name.rsplit("/", 1)[1]:
        name += ":latest"
    return name


def validate_doc(kind: str, doc: object, what: str) -> None:
    if not isinstance(doc, dict):
        raise PyctrError(f"{what}: not a JSON object")
    from pyctr import imageschema

    try:
        imageschema.validate(kind, doc)
    except imageschema.ImageInvalid as e:
        raise PyctrError(f"{what}: {e}") from None


class Images:
    def __init__(self, meta: Meta, store: content.Store, namespace: str) -> None:
        self.meta = meta
        self.store = store
        self.ns = namespace

    # -- names --

    def get(self, name: str) -> dict:
        r = self.meta.rows("SELECT * FROM images WHERE namespace=? AND name=?", self.ns,
                           normalize(name))
        if not r:
            raise PyctrError(f"image {normalize(name)}: not found (pyctr images ls lists them)")
        return dict(r[0])

    def list(self) -> list[dict]:
        return [dict(r) for r in self.meta.rows(
            "SELECT * FROM images WHERE namespace=? ORDER BY name", self.ns)]

    def tag(self, src: str, dst: str) -> None:
        img = self.get(src)
        self.set_name(normalize(dst), img["digest"], img["media_type"], img["size"])

    def remove(self, name: str) -> None:
        n = normalize(name)
        with self.meta.tx() as c:
            if c.execute("SELECT 1 FROM containers WHERE namespace=? AND image=?",
                         (self.ns, n)).fetchone():
                raise PyctrError(f"image {n}: a container uses it (pyctr containers rm first)")
            if not c.execute("DELETE FROM images WHERE namespace=? AND name=?",
                             (self.ns, n)).rowcount:
                raise PyctrError(f"image {n}: not found")

    def set_name(self, name: str, digest: str, media_type: str, size: int) -> None:
        with self.meta.tx() as c:
            c.execute("INSERT OR IGNORE INTO namespaces VALUES (?,?)", (self.ns, now()))
            c.execute(
                "INSERT INTO images VALUES (?,?,?,?,?,?,?) ON CONFLICT(namespace, name) DO "
                "UPDATE SET digest=excluded.digest, media_type=excluded.media_type, "
                "size=excluded.size, updated=excluded.updated",
                (self.ns, name, digest, media_type, size, now(), now()))

    # -- reading --

    def json(self, digest: str) -> dict:
        try:
            return json.loads(self.store.read(digest))
        except ValueError:
            raise PyctrError(f"content {digest}: not JSON") from None

    def manifest(self, img: dict, platform: str | None = None) -> tuple[str, dict]:
        """The (digest, manifest) for platform (default the host's) under an image's target."""
        want = platform or host_platform()
        digest, mt = img["digest"], img["media_type"]
        for _ in range(8):  # (nested indexes)
            if mt in MANIFESTS:
                return digest, self.json(digest)
            if mt not in INDEXES:
                raise PyctrError(f"image {img['name']}: unsupported media type {mt}")
            found = pick_platform(self.json(digest), want, f"image {img['name']}")
            digest, mt = found["digest"], found.get("mediaType", OCI_MANIFEST)
        raise PyctrError(f"image {img['name']}: indexes nested too deep")

    def config(self, manifest: dict) -> dict:
        return self.json(manifest["config"]["digest"])

    # -- import --

    def import_archive(self, path: str, base_name: str = "", lease: str = "") -> list[str]:
        """Import an OCI layout or `docker save` archive; returns the image names made."""
        return self.storing(lambda: self._import_archive(path, base_name), lease)

    def storing(self, store: Callable[[], list[str]], lease: str = "") -> list[str]:
        """Run store (a pull or an import, returning the image names it made) under the gc
        lock (leases.py); with lease (which must exist: checked before anything is stored),
        every blob the images reach is also put under it."""
        from pyctr.leases import Leases, gc_lock

        leases = Leases(self.meta, self.ns)
        if lease:
            leases.require(lease)
        with gc_lock(self.store.root):
            names = store()
            if lease:
                blobs: set[str] = set()
                for n in names:
                    img = self.get(n)
                    referenced(self, img["digest"], img["media_type"], blobs, [])
                leases.add(lease, "content", blobs)
            return names

    def _import_archive(self, path: str, base_name: str) -> list[str]:
        try:
            t = tarfile.open(path, "r:*")
        except (OSError, tarfile.TarError) as e:
            raise PyctrError(f"{path}: not a tar archive ({e})") from None
        with t:
            names = {_member_name(m.name): m for m in t.getmembers()}
            if "index.json" in names:
                return self._import_oci(t, names, base_name)
            if "manifest.json" in names:
                return self._import_docker(t, names)
        raise PyctrError(f"{path}: neither an OCI layout (index.json) nor a docker save "
                         "archive (manifest.json)")

    def _read(self, t: tarfile.TarFile, names: dict, name: str, what: str) -> bytes:
        m = names.get(name)
        if m is None or not m.isreg():
            raise PyctrError(f"{what}: {name} is missing from the archive")
        f = t.extractfile(m)
        assert f is not None
        return f.read()

    def _import_oci(self, t: tarfile.TarFile, names: dict, base_name: str) -> list[str]:
        index = _loads(self._read(t, names, "index.json", "index.json"), "index.json")
        validate_doc("index", index, "index.json")
        blobs: dict[str, int] = {}  # every digest the images need, with its size
        images: list[tuple[str, dict]] = []

        def blob_path(d: str) -> str:
            return "blobs/" + content.check_digest(d).replace(":", "/")

        def walk(desc: dict, where: str) -> None:
            d, mt = desc["digest"], desc.get("mediaType", "")
            blobs[d] = desc["size"]
            raw = self._read(t, names, blob_path(d), where)
            check_blob(raw, d, desc["size"], where)
            doc = _loads(raw, where)
            mt = mt or doc.get("mediaType", "")
            if mt in INDEXES:
                validate_doc("index", doc, where)
                for i, m in enumerate(doc.get("manifests") or []):
                    if m.get("mediaType", "") in INDEXES + MANIFESTS:
                        walk(m, f"{where}.manifests[{i}]")
            elif mt in MANIFESTS:
                validate_doc("manifest", doc, where)
                cfg = doc["config"]
                blobs[cfg["digest"]] = cfg["size"]
                craw = self._read(t, names, blob_path(cfg["digest"]), where + ".config")
                check_blob(craw, cfg["digest"], cfg["size"], where + ".config")
                validate_doc("config", _loads(craw, where + ".config"), where + ".config")
                for i, layer in enumerate(doc.get("layers") or []):
                    if blob_path(layer["digest"]) not in names:
                        raise PyctrError(f"{where}.layers[{i}]: {layer['digest']} is missing "
                                         "from the archive")
                    blobs[layer["digest"]] = layer["size"]
            else:
                raise PyctrError(f"{where}: unsupported media type {mt!r}")

        for i, desc in enumerate(index.get("manifests") or []):
            ann = desc.get("annotations") or {}
            name = ann.get("io.containerd.image.name") or ""
            ref = ann.get("org.opencontainers.image.ref.name") or ""
            if not name and ref:
                name = ref if ("/" in ref or ":" in ref) else (
                    f"{base_name}:{ref}" if base_name else "")
            if not name and base_name:
                name = base_name
            if not name:
                raise PyctrError(f"index.json manifests[{i}]: no image name (annotation "
                                 "io.containerd.image.name or org.opencontainers.image.ref."
                                 "name); give one with --base-name")
            walk(desc, f"index.json manifests[{i}]")
            images.append((normalize(name), desc))
        return self._store_and_name(t, names, blobs, images, blob_path)

    def _import_docker(self, t: tarfile.TarFile, names: dict) -> list[str]:
        entries = _loads(self._read(t, names, "manifest.json", "manifest.json"), "manifest.json")
        if not isinstance(entries, list):
            raise PyctrError("manifest.json: not a list of images")
        made: list[tuple[str, dict]] = []
        added: list[str] = []
        try:
            for i, e in enumerate(entries):
                where = f"manifest.json[{i}]"
                craw = self._read(t, names, _member_name(e.get("Config", "")), where + ".Config")
                validate_doc("config", _loads(craw, where + ".Config"), where + ".Config")
                cd = self._put(craw, added)
                layers = []
                for j, lp in enumerate(e.get("Layers") or []):
                    m = names.get(_member_name(lp))
                    if m is None:
                        raise PyctrError(f"{where}.Layers[{j}]: {lp} is missing")
                    f = t.extractfile(m)
                    d = self.store.write(content.chunks_of(f), what=f"{where}.Layers[{j}]",
                                         added=added)
                    layers.append({"mediaType": DOCKER_LAYER, "size": m.size, "digest": d})
                man = {"schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
                       "config": {"mediaType": DOCKER_CONFIG, "size": len(craw), "digest": cd},
                       "layers": layers}
                raw = json.dumps(man, separators=(",", ":")).encode()
                md = self._put(raw, added)
                desc = {"mediaType": DOCKER_MANIFEST, "digest": md, "size": len(raw)}
                for tag in e.get("RepoTags") or []:
                    made.append((normalize(tag), desc))
            if not made:
                raise PyctrError("manifest.json: no RepoTags: nothing to name the images by")
            for n, desc in made:
                self.set_name(n, desc["digest"], desc["mediaType"], desc["size"])
        except BaseException:
            self.forget_blobs(added)
            raise
        return [n for n, _ in made]

    def _put(self, raw: bytes, added: list[str]) -> str:
        d = "sha256:" + hashlib.sha256(raw).hexdigest()
        if not self.store.has(d):
            self.store.put(raw, d)
            added.append(d)
        return d

    def forget_blobs(self, added: list[str]) -> None:
        for d in added:
            try:
                self.store.remove(d)
            except PyctrError:
                pass

    def _store_and_name(self, t: tarfile.TarFile, names: dict, blobs: dict[str, int],
                        images: list[tuple[str, dict]], blob_path: object) -> list[str]:
        added: list[str] = []
        try:
            for d, size in blobs.items():
                if self.store.has(d):
                    continue
                m = names[blob_path(d)]  # type: ignore[operator]
                f = t.extractfile(m)
                self.store.write(content.chunks_of(f), d, size, what=f"blob {d}")
                added.append(d)
            for n, desc in images:
                self.set_name(n, desc["digest"], desc.get("mediaType", OCI_MANIFEST), desc["size"])
        except BaseException:
            self.forget_blobs(added)
            raise
        return [n for n, _ in images]


def _member_name(n: str) -> str:
    while n.startswith("./"):
        n = n[2:]
    return n.lstrip("/")


def _loads(raw: bytes, what: str) -> object:
    try:
        return json.loads(raw)
    except ValueError as e:
        raise PyctrError(f"{what}: not valid JSON ({e})") from None


def check_blob(raw: bytes, digest: str, size: int, what: str) -> None:
    if len(raw) != size:
        raise PyctrError(f"{what}: {len(raw)} bytes, its descriptor says {size}")
    got = "sha256:" + hashlib.sha256(raw).hexdigest()
    if got != digest:
        raise PyctrError(f"{what}: content is {got}, its descriptor says {digest}")



def referenced(images: Images, digest: str, media_type: str, out: set[str],
               manifests: list[dict] | None = None) -> None:
    """Every blob an image target reaches (indexes, manifests, configs, layers) into out, and
    the stored manifests themselves into manifests; blobs not in the store are skipped (an
    index may list platforms never imported)."""
    if digest in out:
        return
    out.add(digest)
    if not images.store.has(digest):
        return
    if media_type in INDEXES:
        for m in images.json(digest).get("manifests") or []:
            referenced(images, m["digest"], m.get("mediaType", OCI_MANIFEST), out, manifests)
    elif media_type in MANIFESTS:
        man = images.json(digest)
        if manifests is not None:
            manifests.append(man)
        out.add(man["config"]["digest"])
        for layer in man.get("layers") or []:
            out.add(layer["digest"])


def export_archive(images: Images, names: list[str], path: str) -> None:
    """An OCI layout archive of the named images (every blob they reach that is stored),
    each named by io.containerd.image.name and org.opencontainers.image.ref.name, as ctr
    and podman read them. Written to a temp file and renamed: never a partial archive."""
    entries, blobs = [], set()
    for n in names:
        img = images.get(n)
        referenced(images, img["digest"], img["media_type"], blobs)
        entries.append({"mediaType": img["media_type"], "digest": img["digest"],
                        "size": img["size"],
                        "annotations": {"io.containerd.image.name": img["name"],
                                        "org.opencontainers.image.ref.name": img["name"]}})
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX,
                        "manifests": entries}).encode()
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with tarfile.open(tmp, "w") as t:
            def add(name: str, data: bytes) -> None:
                ti = tarfile.TarInfo(name)
                ti.size = len(data)
                t.addfile(ti, io.BytesIO(data))

            add("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
            add("index.json", index)
            for d in sorted(blobs):
                if images.store.has(d):
                    t.add(images.store.path(d), arcname="blobs/sha256/" + d.split(":", 1)[1])
        os.rename(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
