"""From an image to committed snapshots: each layer applied once per chain, verified.

Each layer is applied to a new active snapshot over the previous chain (Snapshotter.writable:
with overlayfs, mounted at a private temp mountpoint, so the kernel records deletions as
overlay whiteouts; with native, the parent's copy itself), its
uncompressed stream hashed on the way and compared with the config's diff ID, and only then
committed under its chain ID. A failed or refused layer leaves no snapshot behind.
"""

from __future__ import annotations

import hashlib
import os

from pyctr.errors import PyctrError
from pyctr.images import Images
from pyctr.leases import gc_lock
from pyctr.snapshots import Snapshotter, chain_ids
from pyctr.unpack import apply_layer, open_stream


class _Hashing:
    """A read-only file that hashes what passes through (the decompressed layer)."""

    def __init__(self, f: object) -> None:
        self.f = f
        self.h = hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        b = self.f.read(n)  # type: ignore[attr-defined]
        self.h.update(b)
        return b

    def drain(self) -> None:
        while self.read(1 << 20):
            pass


def unpack(images: Images, snaps: Snapshotter, img: dict, platform: str | None = None) -> str:
    """Make sure every layer of img is a committed snapshot; returns the top chain ID."""
    _, man = images.manifest(img, platform)
    cfg = images.config(man)
    diff_ids = (cfg.get("rootfs") or {}).get("diff_ids") or []
    layers = man.get("layers") or []
    if len(diff_ids) != len(layers):
        raise PyctrError(f"image {img['name']}: {len(layers)} layers but {len(diff_ids)} "
                         "diff IDs in its config")
    if not layers:
        raise PyctrError(f"image {img['name']}: no layers")
    chains = chain_ids(diff_ids)
    parent: str | None = None
    with gc_lock(snaps.root):
        for layer, diff_id, chain in zip(layers, diff_ids, chains, strict=True):
            if not snaps.exists(chain):
                _apply(images, snaps, layer, diff_id, chain, parent)
            parent = chain
    return chains[-1]


def _apply(images: Images, snaps: Snapshotter, layer: dict, diff_id: str, chain: str,
           parent: str | None) -> None:
    key = f"extract-{os.getpid()}-{os.urandom(4).hex()}"
    snaps.prepare(key, parent)
    try:
        with snaps.writable(key) as target, \
                open(images.store.path(layer["digest"]), "rb") as raw:
            hashing = _Hashing(open_stream(raw, layer.get("mediaType", "")))
            apply_layer(target, hashing)
            hashing.drain()  # (tar's end-of-archive padding is part of the diff)
        got = "sha256:" + hashing.h.hexdigest()
        if got != diff_id:
            raise PyctrError(f"layer {layer['digest']}: uncompressed content is {got}, the "
                             f"image config says {diff_id}")
        try:
            snaps.commit(key, chain)
        except PyctrError:
            if not snaps.exists(chain):
                raise
            snaps.remove(key)  # another pyctr unpacked the same layer meanwhile: use theirs
    except BaseException:
        try:
            snaps.remove(key)
        except PyctrError:
            pass
        raise
