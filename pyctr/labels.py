"""Content labels (meta table content_labels), as containerd keeps them per namespace.

The one pyctr writes is containerd's distribution source:
`containerd.io/distribution.source.<registry host>` = the repositories of that registry the
blob is known to be in, comma-separated. A pull records the repository it pulled from, a push
the one it pushed to; a later push of the same blob to another repository of that registry
asks it to mount the blob from one of those (no bytes sent) instead of uploading it.
"""

from __future__ import annotations

from collections.abc import Iterable

from pyctr.meta import Meta

SOURCE = "containerd.io/distribution.source."


def add_source(meta: Meta, ns: str, digests: Iterable[str], host: str, repo: str) -> None:
    """Merge repo into each blob's source label for host, all in one transaction."""
    key = SOURCE + host
    with meta.tx() as c:
        for d in sorted(set(digests)):
            row = c.execute("SELECT value FROM content_labels WHERE namespace=? AND digest=? "
                            "AND key=?", (ns, d, key)).fetchone()
            repos = [r for r in (row[0].split(",") if row else []) if r]
            if repo in repos:
                continue
            c.execute("INSERT INTO content_labels VALUES (?,?,?,?) ON CONFLICT(namespace, "
                      "digest, key) DO UPDATE SET value=excluded.value",
                      (ns, d, key, ",".join([*repos, repo])))


def sources(meta: Meta, ns: str, digest: str, host: str) -> list[str]:
    """The repositories of host the blob is known to be in."""
    rows = meta.rows("SELECT value FROM content_labels WHERE namespace=? AND digest=? AND "
                     "key=?", ns, digest, SOURCE + host)
    return [r for r in rows[0]["value"].split(",") if r] if rows else []


def of_namespace(meta: Meta, ns: str) -> dict[str, dict[str, str]]:
    """digest -> {key: value} for every labelled blob of the namespace."""
    out: dict[str, dict[str, str]] = {}
    for r in meta.rows("SELECT digest, key, value FROM content_labels WHERE namespace=? "
                       "ORDER BY digest, key", ns):
        out.setdefault(r["digest"], {})[r["key"]] = r["value"]
    return out


def forget(meta: Meta, digests: Iterable[str]) -> None:
    """Drop every label of blobs taken out of the store (a failed pull's)."""
    ds = list(digests)
    if not ds:
        return
    with meta.tx() as c:
        for d in ds:
            c.execute("DELETE FROM content_labels WHERE digest=?", (d,))
