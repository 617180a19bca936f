"""`pyctr gc`: remove what nothing references any more.

References, in every namespace: each image reaches its blobs (index -> manifests -> config and
layers); each image whose config is stored reaches the snapshots of its layer chains (in every
snapshotter); each container holds its active snapshot and, through parents, the chain below
it; each unexpired lease holds its resources (expired leases go first). Blobs, committed
snapshots and leftover ingest files outside that set go; nothing inside it is touched. All of
it under the gc lock (leases.py), so nothing half-stored by a pull or an import is seen.
"""

from __future__ import annotations

import os

from pyctr import labels, leases
from pyctr.content import Store
from pyctr.images import Images, referenced
from pyctr.meta import Meta
from pyctr.snapshots import KINDS, Snapshotter, chain_ids


def collect(meta: Meta, store: Store, snaps: Snapshotter) -> tuple[list[str], list[str], int]:
    """Remove the unreferenced; returns (blobs removed, snapshots removed as kind/key, ingest
    files removed)."""
    with leases.gc_lock(snaps.root, exclusive=True):
        leases.expire(meta)
        held = leases.held(meta)
        blobs: set[str] = set(held.get("content", set()))
        chains: set[str] = set()
        for r in meta.rows("SELECT * FROM images"):
            imgs = Images(meta, store, r["namespace"])
            manifests: list[dict] = []
            referenced(imgs, r["digest"], r["media_type"], blobs, manifests)
            for man in manifests:
                cfg = man["config"]["digest"]
                if store.has(cfg):
                    diff_ids = (imgs.json(cfg).get("rootfs") or {}).get("diff_ids") or []
                    chains |= set(chain_ids(diff_ids))
        gone_snaps = []
        for kind in KINDS:
            s = snaps.of(kind)
            keep = chains | held.get(f"snapshots/{kind}", set())
            for r in meta.rows("SELECT snapshot FROM containers WHERE snapshotter=?", kind):
                keep.add(r["snapshot"])
            gone_snaps += [f"{kind}/{k}" for k in _sweep(s, keep)]
        gone_blobs = []
        for d, _ in store.list():
            if d not in blobs:
                store.remove(d)
                gone_blobs.append(d)
        labels.forget(meta, gone_blobs)
        ingest = 0
        for name in os.listdir(store.ingest):
            pid = name.split("-", 1)[0]
            if pid.isdigit() and os.path.exists(f"/proc/{pid}"):
                continue  # a write in progress
            os.unlink(os.path.join(store.ingest, name))
            ingest += 1
    return gone_blobs, gone_snaps, ingest


def _sweep(snaps: Snapshotter, keep: set[str]) -> list[str]:
    """Remove the snapshots outside keep and the ancestors of what is kept; leaves first."""
    for k in list(keep):
        s = snaps.get(k)
        while s is not None and s["parent"] is not None and s["parent"] not in keep:
            keep.add(s["parent"])
            s = snaps.get(s["parent"])
    gone = []
    changed = True
    while changed:  # leaves first: a snapshot with children cannot go before them
        changed = False
        every = snaps.list()
        for s in every:
            if not _removable(s, keep) or any(o["parent"] == s["key"] for o in every):
                continue
            snaps.remove(s["key"])
            gone.append(s["key"])
            changed = True
            break
    return gone


def _removable(s: dict, keep: set[str]) -> bool:
    if s["key"] in keep:
        return False
    if s["kind"] == "committed":
        return True
    # an unpack's active snapshot outlives it only if that pyctr died mid-layer
    parts = s["key"].split("-")
    return parts[0] == "extract" and parts[1].isdigit() and not os.path.exists(
        f"/proc/{parts[1]}")
