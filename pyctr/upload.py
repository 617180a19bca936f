"""One blob's upload for push: mounted from another repository, or sent in resumable chunks.

The OCI distribution spec's chunked push: POST opens a session (its Location), PATCHes send
the blob in order (Content-Range start-end, inclusive), each answer gives the Location to use
next (docker-registry's carries the session's state, so it changes every time), and a PUT
?digest= closes it. Chunks make a broken connection cost one chunk, not the blob: when a
PATCH fails (the connection breaks, a 5xx, a 416) the registry is asked where it is (GET of
the Location: 204 with `Range: 0-N`, N the last byte it holds) and the upload goes on from
N+1, read from the store at that offset; what the registry holds is never sent again. A
session the registry no longer knows (404) is started again from 0.

docker-registry 2.8, which the tests run, shapes this:
- it ignores Content-Range on a PATCH and appends (no 416): an offset that is not the one the
  registry holds would corrupt the blob, so the offset always comes from the registry's Range;
- a PATCH broken half-way leaves part of the chunk in the session while the Location's state
  still says the offset before it: the next request with that Location finds them differing
  and cancels the session (404 BLOB_UPLOAD_INVALID), so such a break starts a new session;
- `Range: 0-0` is its answer both for 0 bytes and for 1 (it never says 0 bytes any other
  way): read as 0 bytes from a status GET, where the 2.8 state check above makes it exact.

With chunk size 0 the blob goes in one PUT (the monolithic upload); a broken one starts a new
session, as the spec has no resume for it. A mount (POST ?mount=&from=) answers 201 when the
registry linked the blob (nothing is sent), or 202 with an ordinary session when it could not.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from urllib.parse import urljoin

from pyctr import content
from pyctr.errors import PyctrError
from pyctr.progress import Task, counted
from pyctr.registry import Client, Unreachable, ok

OCTETS = "application/octet-stream"


class _Broken(Exception):
    """A request of the upload failed in a way the registry may recover from."""


class Upload:
    """Uploads blobs to one repository through client c, each given up after `retries`
    failures (what = the image, for messages)."""

    def __init__(self, c: Client, repo: str, scope: str, chunk: int, retries: int,
                 what: str) -> None:
        self.c, self.repo, self.scope = c, repo, scope
        self.chunk, self.retries, self.what = chunk, retries, what

    def blob(self, digest: str, path: str, task: Task, mount_from: str = "") -> str:
        """Put the blob at path (stored as digest) in the repository; returns what was done
        (`pushed` or `mounted from <repo>`) for the progress line."""
        loc = self._open(digest, mount_from)
        if loc is None:
            return f"mounted from {mount_from}"
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            self._send(loc, f, size, digest, task)
        return "pushed"

    # -- the session --

    def _open(self, digest: str, mount_from: str = "") -> str | None:
        """POST: a new session's Location, or None when the registry mounted the blob."""
        path, scope = f"{self.repo}/blobs/uploads/", self.scope
        if mount_from:
            path += f"?mount={digest}&from={mount_from}"
            scope += f" repository:{mount_from}:pull"
        r = self._ok(self.c.request("POST", path, scope), "upload")
        if r.status_code == 201:  # type: ignore[attr-defined]
            return None
        return self._location(r)

    def _location(self, r: object) -> str:
        loc = r.headers.get("location")  # type: ignore[attr-defined]
        if not loc:
            raise PyctrError(f"{self.what}: upload: the registry gave no Location")
        return urljoin(self.c.base, loc)

    def _status(self, loc: str) -> tuple[str, int] | None:
        """Where the session is (its Location, the bytes it holds), or None when it is gone."""
        r = self.c.request("GET", loc, self.scope)
        code = r.status_code  # type: ignore[attr-defined]
        if code == 404:
            return None
        self._ok(r, "upload status")
        end = _range_end(r)
        if end is None:
            return None  # (no Range: nothing to resume from)
        return self._location(r), (end + 1 if end > 0 else 0)

    # -- sending --

    def _send(self, loc: str, f: object, size: int, digest: str, task: Task) -> None:
        """Chunks from offset 0 (or the whole blob) and the closing PUT, going on from where
        the registry is after a break, until `retries` failures."""
        offset, failures, delay = 0, 0, 0.2
        while True:
            try:
                if self.chunk:
                    while offset < size:
                        n = min(self.chunk, size - offset)
                        loc, offset = self._patch(loc, f, offset, n, task)
                    self._finish(loc, digest, b"")
                else:
                    self._finish(loc, digest, _Body(f, 0, size, task))
                return
            except _Broken as e:
                failures += 1
                if failures >= self.retries:
                    raise PyctrError(f"{self.what}: blob {digest}: {e} ({failures} times)"
                                     ) from None
                time.sleep(delay)
                delay *= 2
            loc, offset = self._recover(loc, digest, size)
            task.seek(offset)
            if not loc:
                return  # (the closing PUT had gone through)

    def _recover(self, loc: str, digest: str, size: int) -> tuple[str, int]:
        """After a break: the session's Location and offset, a new session's at 0, or ("",
        size) when the blob turns out to be in the repository already."""
        st = self._status(loc) if self.chunk else None
        if st is not None and st[1] <= size:
            return st
        h = self.c.request("HEAD", f"{self.repo}/blobs/{digest}", self.scope)
        if h.status_code == 200:  # type: ignore[attr-defined]
            return "", size
        new = self._open(digest)
        assert new is not None
        return new, 0

    def _patch(self, loc: str, f: object, offset: int, n: int, task: Task) -> tuple[str, int]:
        """One chunk: bytes offset..offset+n-1; returns the next Location and offset."""
        r = self._try("PATCH", loc, {"Content-Type": OCTETS,
                                     "Content-Range": f"{offset}-{offset + n - 1}",
                                     "Content-Length": str(n)}, _Body(f, offset, n, task))
        self._ok(r, "upload")
        end = _range_end(r)
        if end is not None and end + 1 != offset + n:
            raise _Broken(f"the registry holds {end + 1} bytes, {offset + n} were sent")
        return self._location(r), offset + n

    def _finish(self, loc: str, digest: str, body: object) -> None:
        """The closing PUT ?digest= (with the whole blob when monolithic)."""
        sep = "&" if "?" in loc else "?"
        size = len(body) if isinstance(body, bytes) else body.size  # type: ignore[attr-defined]
        self._ok(self._try("PUT", f"{loc}{sep}digest={digest}",
                           {"Content-Type": OCTETS, "Content-Length": str(size)}, body),
                 "upload")

    def _try(self, method: str, url: str, headers: dict[str, str], body: object) -> object:
        """One request whose failure the loop above can recover from: a broken connection,
        a 5xx, a 416 or a 404 (the session is gone) is _Broken; any other answer is
        returned."""
        try:
            r = self.c.request(method, url, self.scope, headers=headers, content=body,
                               retry=False)
        except Unreachable as e:
            raise _Broken(e.why) from None
        code = r.status_code  # type: ignore[attr-defined]
        if code >= 500 or code in (404, 416):
            raise _Broken(f"{method} answered {code}")
        return r

    def _ok(self, r: object, what: str) -> object:
        return ok(r, f"{self.what}: {what}")


class _Body:
    """A body maker for request(): each call reads bytes offset..offset+n-1 of f afresh (an
    auth challenge answered sends the request again)."""

    def __init__(self, f: object, offset: int, n: int, task: Task) -> None:
        self.f, self.offset, self.size, self.task = f, offset, n, task

    def __call__(self) -> Iterator[bytes]:
        self.f.seek(self.offset)  # type: ignore[attr-defined]
        return counted(content.chunks_of(self.f, self.size), self.task)


def _range_end(r: object) -> int | None:
    """N of a `Range: 0-N` answer (also `bytes=0-N`), None when there is none."""
    v = r.headers.get("range", "")  # type: ignore[attr-defined]
    start, _, end = v.removeprefix("bytes=").partition("-")
    if start.strip() != "0" or not end.strip().isdigit():
        return None
    return int(end)
