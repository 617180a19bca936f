"""What keeps content from `gc` besides images and containers: leases, and the gc lock.

A lease (containerd's concept) is a named set of resources, content digests or snapshots,
that gc keeps while the lease exists, optionally until it expires: `pyctr leases create`,
then `images pull --lease ID` or `images import --lease ID` put everything the image reaches
under it, so `images rm` then `gc` leaves that content in the store until `leases rm`.

The gc lock closes the window leases alone would leave: a pull or import writes blobs before
the image that references them is named. Every such operation (pull, import, unpack, run)
holds <root>/gc.lock shared; gc takes it exclusive, so it never runs while something is half
stored, and nothing starts storing while it deletes.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager

from pyctr.errors import PyctrError
from pyctr.meta import Meta, now


@contextmanager
def gc_lock(root: str, exclusive: bool = False) -> Iterator[None]:
    os.makedirs(root, 0o700, exist_ok=True)
    fd = os.open(os.path.join(root, "gc.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)  # (releases the lock)


def parse_duration(text: str) -> int:
    """containerd's --expires: 30s, 10m, 24h, 1h30m -> nanoseconds."""
    units = {"s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}
    total, num = 0, ""
    for ch in text.strip():
        if ch.isdigit():
            num += ch
        elif ch in units and num:
            total, num = total + int(num) * units[ch], ""
        else:
            num = "x"
            break
    if num or total <= 0:
        raise PyctrError(f"--expires {text!r}: a duration such as 30m, 24h or 1h30m")
    return total


class Leases:
    def __init__(self, meta: Meta, namespace: str) -> None:
        self.meta = meta
        self.ns = namespace

    def create(self, lid: str = "", expires_in: int | None = None) -> str:
        import re

        lid = lid or f"pyctr-{os.urandom(6).hex()}"
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}", lid):
            raise PyctrError(f"lease {lid!r}: use letters, digits, '_', '.', ':', '-'")
        with self.meta.tx() as c:
            if c.execute("SELECT 1 FROM leases WHERE namespace=? AND id=?",
                         (self.ns, lid)).fetchone():
                raise PyctrError(f"lease {lid}: already exists")
            c.execute("INSERT OR IGNORE INTO namespaces VALUES (?,?)", (self.ns, now()))
            c.execute("INSERT INTO leases VALUES (?,?,?,?)",
                      (self.ns, lid, now(), now() + expires_in if expires_in else None))
        return lid

    def list(self) -> list[dict]:
        out = []
        for r in self.meta.rows("SELECT * FROM leases WHERE namespace=? ORDER BY id", self.ns):
            n = self.meta.rows("SELECT COUNT(*) FROM lease_resources WHERE namespace=? AND "
                               "lease=?", self.ns, r["id"])[0][0]
            out.append({"id": r["id"], "created": r["created"], "expires": r["expires"],
                        "resources": n})
        return out

    def remove(self, lid: str) -> None:
        with self.meta.tx() as c:
            if not c.execute("DELETE FROM leases WHERE namespace=? AND id=?",
                             (self.ns, lid)).rowcount:
                raise PyctrError(f"lease {lid}: not found")

    def require(self, lid: str) -> None:
        """Before an operation that will add to lease lid: it must exist (so a typo fails
        before anything is stored, not after)."""
        if not self.meta.rows("SELECT 1 FROM leases WHERE namespace=? AND id=?", self.ns, lid):
            raise PyctrError(f"lease {lid}: not found (pyctr leases create --id {lid})")

    def add(self, lid: str, kind: str, rids: list[str] | set[str]) -> None:
        """Put resources (kind 'content', or 'snapshots/<snapshotter>') under lease lid."""
        with self.meta.tx() as c:
            if not c.execute("SELECT 1 FROM leases WHERE namespace=? AND id=?",
                             (self.ns, lid)).fetchone():
                raise PyctrError(f"lease {lid}: not found (pyctr leases create --id {lid})")
            for rid in rids:
                c.execute("INSERT OR IGNORE INTO lease_resources VALUES (?,?,?,?)",
                          (self.ns, lid, kind, rid))


def expire(meta: Meta) -> list[str]:
    """Drop every expired lease (all namespaces); returns 'namespace/id' of each."""
    with meta.tx() as c:
        gone = [f"{r[0]}/{r[1]}" for r in c.execute(
            "SELECT namespace, id FROM leases WHERE expires IS NOT NULL AND expires <= ?",
            (now(),)).fetchall()]
        c.execute("DELETE FROM leases WHERE expires IS NOT NULL AND expires <= ?", (now(),))
    return gone


def held(meta: Meta) -> dict[str, set[str]]:
    """kind -> resource ids under some lease (all namespaces)."""
    out: dict[str, set[str]] = {}
    for r in meta.rows("SELECT kind, rid FROM lease_resources"):
        out.setdefault(r["kind"], set()).add(r["rid"])
    return out
