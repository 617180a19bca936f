"""The content store: blobs by digest under <root>/content/blobs/sha256/<hex>.

Every write streams into a temp file in <root>/content/ingest, is checked against the
expected digest and size, and is renamed into place only then: a blob in blobs/ is always
whole and correct, a crash leaves at most a temp file (removed by gc), and two writers of the
same blob both succeed (rename is atomic and the content identical).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable

from pyctr.errors import PyctrError

DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$")
CHUNK = 1 << 20


def check_digest(d: str, what: str = "digest") -> str:
    if not isinstance(d, str) or not DIGEST.match(d):
        raise PyctrError(f"{what}: {d!r} is not a sha256 digest (sha256:<64 hex digits>)")
    return d


class Store:
    def __init__(self, root: str) -> None:
        self.root = root
        self.blobs = os.path.join(root, "content", "blobs", "sha256")
        self.ingest = os.path.join(root, "content", "ingest")
        os.makedirs(self.blobs, 0o700, exist_ok=True)
        os.makedirs(self.ingest, 0o700, exist_ok=True)

    def path(self, digest: str) -> str:
        return os.path.join(self.blobs, check_digest(digest).split(":", 1)[1])

    def has(self, digest: str) -> bool:
        return os.path.exists(self.path(digest))

    def size(self, digest: str) -> int:
        return os.stat(self.path(digest)).st_size

    def read(self, digest: str) -> bytes:
        try:
            with open(self.path(digest), "rb") as f:
                return f.read()
        except FileNotFoundError:
            raise PyctrError(f"content {digest}: not found") from None

    def write(self, chunks: Iterable[bytes], digest: str | None = None,
              size: int | None = None, what: str = "blob", added: list[str] | None = None
              ) -> str:
        """Store a stream; returns its digest. With digest/size given, a mismatch stores
        nothing and is one error naming `what`. A blob this write added (not one already
        there) is appended to added: what a failed caller takes back (a list, not state on
        the store, as parallel writers share it)."""
        if digest is not None:
            check_digest(digest, f"{what} digest")
            if self.has(digest):
                return digest
        h = hashlib.sha256()
        n = 0
        tmp = os.path.join(self.ingest, f"{os.getpid()}-{os.urandom(6).hex()}")
        try:
            with open(tmp, "wb") as f:
                for c in chunks:
                    h.update(c)
                    n += len(c)
                    if size is not None and n > size:
                        raise PyctrError(f"{what}: more than the {size} bytes its descriptor says")
                    f.write(c)
                f.flush()
                os.fsync(f.fileno())
            got = "sha256:" + h.hexdigest()
            if size is not None and n != size:
                raise PyctrError(f"{what}: {n} bytes, its descriptor says {size}")
            if digest is not None and got != digest:
                raise PyctrError(f"{what}: content is {got}, its descriptor says {digest}")
            new = not os.path.exists(self.path(got))
            os.rename(tmp, self.path(got))
            tmp = ""
            if new and added is not None:
                added.append(got)
            return got
        finally:
            if tmp:
                try:
                    os.unlink(tmp)
                except FileNotFoundError:
                    pass

    def put(self, data: bytes, digest: str | None = None, what: str = "blob") -> str:
        return self.write([data], digest, len(data) if digest else None, what)

    def list(self) -> list[tuple[str, int]]:
        out = []
        for name in sorted(os.listdir(self.blobs)):
            out.append(("sha256:" + name, os.stat(os.path.join(self.blobs, name)).st_size))
        return out

    def remove(self, digest: str) -> None:
        try:
            os.unlink(self.path(digest))
        except FileNotFoundError:
            raise PyctrError(f"content {digest}: not found") from None


def chunks_of(f: object, limit: int | None = None) -> Iterable[bytes]:
    """A file object as chunks (at most limit bytes)."""
    left = limit
    while True:
        want = CHUNK if left is None else min(CHUNK, left)
        if want == 0:
            return
        b = f.read(want)  # type: ignore[attr-defined]
        if not b:
            return
        if left is not None:
            left -= len(b)
        yield b
