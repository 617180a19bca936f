"""`pyctr gc`: remove what nothing references any more.

References, in every namespace: each image reaches its blobs (index -> manifests -> config and
layers); each image whose config is stored reaches the snapshots of its layer chains; each
container holds its active snapshot and, through parents, the chain below it. Blobs, committed
snapshots and leftover ingest files outside that set go; nothing inside it is touched.
"""

from __future__ import annotations

import os

from pyctr.content import Store
from pyctr.images import Images, referenced
from pyctr.meta import Meta
from pyctr.snapshots import Snapshotter, chain_ids


def collect(meta: Meta, store: Store, snaps: Snapshotter) -> tuple[list[str], list[str], int]:
    """Remove the unreferenced; returns (blobs removed, snapshots removed, ingest files)."""
    blobs: set[str] = set()
    keep_snaps: set[str] = set()
    for r in meta.rows("SELECT * FROM images"):
        imgs = Images(meta, store, r["namespace"])
        manifests: list[dict] = []
        referenced(imgs, r["digest"], r["media_type"], blobs, manifests)
        for man in manifests:
            cfg = man["config"]["digest"]
            if store.has(cfg):
                diff_ids = (imgs.json(cfg).get("rootfs") or {}).get("diff_ids") or []
                keep_snaps |= set(chain_ids(diff_ids))
    for r in meta.rows("SELECT snapshot FROM containers"):
        k = r["snapshot"]
        while k is not None and k not in keep_snaps:
            keep_snaps.add(k)
            s = snaps.get(k)
            k = s["parent"] if s else None
    gone_snaps = []
    changed = True
    while changed:  # leaves first: a snapshot with children cannot go before them
        changed = False
        for s in snaps.list():
            if not _removable(s, keep_snaps):
                continue
            if any(o["parent"] == s["key"] for o in snaps.list()):
                continue
            snaps.remove(s["key"])
            gone_snaps.append(s["key"])
            changed = True
    gone_blobs = []
    for d, _ in store.list():
        if d not in blobs:
            store.remove(d)
            gone_blobs.append(d)
    ingest = 0
    for name in os.listdir(store.ingest):
        pid = name.split("-", 1)[0]
        if pid.isdigit() and os.path.exists(f"/proc/{pid}"):
            continue  # a write in progress
        os.unlink(os.path.join(store.ingest, name))
        ingest += 1
    return gone_blobs, gone_snaps, ingest


def _removable(s: dict, keep: set[str]) -> bool:
    if s["key"] in keep:
        return False
    if s["kind"] == "committed":
        return True
    # an unpack's active snapshot outlives it only if that pyctr died mid-layer
    parts = s["key"].split("-")
    return parts[0] == "extract" and parts[1].isdigit() and not os.path.exists(
        f"/proc/{parts[1]}")
