"""The Distribution API v2 (OCI distribution spec) client: pull and push, on httpx.

Auth follows the registry's WWW-Authenticate challenge: Basic with the user's credentials, or
Bearer with a token fetched from the challenge's realm (with the credentials, if any, for the
scope asked). Credentials come from --user or ~/.docker/config.json (`pyctr login` writes
it). TLS uses the system trust store, or --ca; --plain-http speaks HTTP (loopback registries).

Every blob is streamed into the content store and verified against its digest and size
(content.py); manifests and configs are validated (imageschema) before anything is stored;
blobs are fetched in parallel, each retried with backoff when the connection breaks (a partial
download is a temp file, removed); the image name is recorded only when all of it is in. A
pull that fails takes back the blobs it added.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor

from pyctr import content
from pyctr.errors import PyctrError
from pyctr.images import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    INDEXES,
    MANIFESTS,
    OCI_INDEX,
    OCI_MANIFEST,
    Images,
    check_blob,
    host_platform,
    normalize,
    pick_platform,
    validate_doc,
)

ACCEPT = ", ".join([OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST])
RETRIES = 4


def split_ref(ref: str) -> tuple[str, str, str]:
    """normalize()d ref -> (registry host, repository, tag or digest)."""
    ref = normalize(ref)
    host, _, rest = ref.partition("/")
    if "@" in rest:
        repo, _, ver = rest.partition("@")
    else:
        repo, _, ver = rest.rpartition(":")
    if host == "docker.io":
        host = "registry-1.docker.io"
    return host, repo, ver


def docker_config_path() -> str:
    return os.path.join(os.path.expanduser("~"), ".docker", "config.json")


def stored_credentials(host: str) -> tuple[str, str] | None:
    try:
        with open(docker_config_path()) as f:
            auths = json.load(f).get("auths") or {}
    except (OSError, ValueError):
        return None
    for key in (host, f"https://{host}", f"http://{host}"):
        a = auths.get(key)
        if a and a.get("auth"):
            user, _, pw = base64.b64decode(a["auth"]).decode().partition(":")
            return user, pw
    return None


def login(host: str, user: str, password: str) -> None:
    """Store credentials as docker does (base64 user:password under auths[host])."""
    path = docker_config_path()
    try:
        with open(path) as f:
            cfg = json.load(f)
    except (OSError, ValueError):
        cfg = {}
    cfg.setdefault("auths", {})[host] = {
        "auth": base64.b64encode(f"{user}:{password}".encode()).decode()}
    os.makedirs(os.path.dirname(path), 0o700, exist_ok=True)
    tmp = path + ".tmp"
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        json.dump(cfg, f, indent=1)
    os.rename(tmp, path)


def _challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, rest = header.partition(" ")
    params: dict[str, str] = {}
    for part in _split_params(rest):
        k, _, v = part.partition("=")
        params[k.strip().lower()] = v.strip().strip('"')
    return scheme.lower(), params


def _split_params(s: str) -> list[str]:
    out, cur, quoted = [], "", False
    for ch in s:
        if ch == '"':
            quoted = not quoted
        if ch == "," and not quoted:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur)
    return out


class Client:
    def __init__(self, host: str, *, plain_http: bool = False, ca: str = "",
                 user: str = "", timeout: float = 60) -> None:
        import sys

        # httpx's package __init__ imports its own command line (click, rich, pygments)
        # when those are installed, as they are here: ~15 ms of a small pull. A None in
        # sys.modules makes that import fail, which httpx handles (it is optional).
        sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
        import httpx

        self.httpx = httpx
        self.host = host
        self.base = f"{'http' if plain_http else 'https'}://{host}/v2/"
        if user:
            u, _, p = user.partition(":")
            self.creds: tuple[str, str] | None = (u, p)
        else:
            self.creds = stored_credentials(host)
        h2 = False
        if plain_http:
            verify: object = False  # (no TLS: loading a trust store would cost ~30 ms)
        else:
            import ssl

            # the system trust store (OpenSSL's default paths: Debian's /etc/ssl/certs), or
            # --ca; not certifi's bundle, whose parsing alone is ~30 ms per command
            verify = ssl.create_default_context(cafile=ca or None)
            try:
                import h2 as _h2  # noqa: F401  (HTTP/2 where the registry offers it)

                h2 = True
            except ImportError:
                pass
        self.http = httpx.Client(verify=verify, timeout=timeout, http2=h2,  # type: ignore
                                 follow_redirects=True)
        self.auth: dict[str, str] = {}  # scope -> Authorization header

    def close(self) -> None:
        self.http.close()

    def _token(self, params: dict[str, str], scope: str) -> str:
        q = {"service": params.get("service", "")}
        if scope:
            q["scope"] = scope
        r = self.http.get(params["realm"], params=q,
                          auth=self.creds if self.creds else None)
        if r.status_code in (401, 403):
            raise PyctrError(f"{self.host}: authentication failed (token service said "
                             f"{r.status_code}); check --user or pyctr login")
        r.raise_for_status()
        body = r.json()
        return body.get("token") or body.get("access_token") or ""

    def request(self, method: str, path: str, scope: str, *, stream: bool = False,
                headers: dict[str, str] | None = None, content: object = None,
                retry: bool = True) -> object:
        """One request with auth (answering one 401 challenge) and, when retry is set (the
        body can be sent again), retries with backoff on a broken connection or a 5xx."""
        url = path if path.startswith("http") else self.base + path
        delay, challenged = 0.2, False
        attempts = RETRIES if retry else 1
        attempt = 0
        while True:
            h = dict(headers or {})
            if scope in self.auth:
                h["Authorization"] = self.auth[scope]
            try:
                req = self.http.build_request(method, url, headers=h,
                                              content=content)  # type: ignore[arg-type]
                r = self.http.send(req, stream=stream)
            except self.httpx.TransportError as e:
                attempt += 1
                if attempt >= attempts:
                    raise PyctrError(f"{self.host}: {e}") from None
                time.sleep(delay)
                delay *= 2
                continue
            if r.status_code == 401:
                r.close()
                if challenged:
                    raise PyctrError(f"{self.host}: authentication failed (401): check "
                                     "--user or pyctr login")
                challenged = True
                self._answer(r.headers.get("www-authenticate", ""), scope)
                continue
            if r.status_code >= 500 and attempt + 1 < attempts:
                r.close()
                attempt += 1
                time.sleep(delay)
                delay *= 2
                continue
            return r

    def _answer(self, chal: str, scope: str) -> None:
        scheme, params = _challenge(chal)
        if scheme == "basic":
            if not self.creds:
                raise PyctrError(f"{self.host}: credentials required (--user or pyctr login)")
            token = base64.b64encode(":".join(self.creds).encode()).decode()
            self.auth[scope] = f"Basic {token}"
        elif scheme == "bearer" and "realm" in params:
            self.auth[scope] = f"Bearer {self._token(params, scope)}"
        else:
            raise PyctrError(f"{self.host}: unsupported authentication {chal!r}")


def _ok(r: object, what: str) -> object:
    code = r.status_code  # type: ignore[attr-defined]
    if code >= 400:
        try:
            errs = r.json().get("errors") or []  # type: ignore[attr-defined]
            msg = "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errs)
        except Exception:  # noqa: BLE001 - any body: the status says enough
            msg = ""
        raise PyctrError(f"{what}: HTTP {code}{': ' + msg if msg else ''}")
    return r


def pull(images: Images, ref: str, *, plain_http: bool = False, ca: str = "",
         user: str = "", platform: str | None = None, jobs: int = 4,
         progress: object = None) -> str:
    """Pull ref into the store and name it; returns the image name."""
    name = normalize(ref)
    host, repo, ver = split_ref(name)
    scope = f"repository:{repo}:pull"
    c = Client(host, plain_http=plain_http, ca=ca, user=user)
    added: list[str] = []
    fetched: dict[str, bytes] = {}
    try:
        r = _ok(c.request("GET", f"{repo}/manifests/{ver}", scope,
                          headers={"Accept": ACCEPT}), f"{name}: manifest")
        raw = r.content  # type: ignore[attr-defined]
        mt = r.headers.get("content-type", "").split(";")[0]  # type: ignore[attr-defined]
        top = "sha256:" + hashlib.sha256(raw).hexdigest()
        if ver.startswith("sha256:") and ver != top:
            raise PyctrError(f"{name}: manifest is {top}, not the digest asked for")
        doc = json.loads(raw)
        mt = doc.get("mediaType") or mt
        fetched[top] = raw
        target = {"digest": top, "mediaType": mt, "size": len(raw)}
        want = platform or host_platform()
        man_digest, man = top, doc
        if mt in INDEXES:
            validate_doc("index", doc, f"{name}: index")
            pick = pick_platform(doc, want, name)
            r2 = _ok(c.request("GET", f"{repo}/manifests/{pick['digest']}", scope,
                               headers={"Accept": ACCEPT}), f"{name}: manifest")
            mraw = r2.content  # type: ignore[attr-defined]
            check_blob(mraw, pick["digest"], pick["size"], f"{name}: manifest")
            man_digest, man = pick["digest"], json.loads(mraw)
            fetched[man_digest] = mraw
        elif mt not in MANIFESTS:
            raise PyctrError(f"{name}: unsupported media type {mt!r}")
        validate_doc("manifest", man, f"{name}: manifest")
        cfg = man["config"]
        craw = _ok(c.request("GET", f"{repo}/blobs/{cfg['digest']}", scope),
                   f"{name}: config").content  # type: ignore[attr-defined]
        check_blob(craw, cfg["digest"], cfg["size"], f"{name}: config")
        validate_doc("config", json.loads(craw), f"{name}: config")
        fetched[cfg["digest"]] = craw

        def get_layer(layer: dict) -> None:
            d, size = layer["digest"], layer["size"]
            if images.store.has(d):
                return
            for attempt in range(RETRIES):
                try:
                    # identity: the digest is of the blob's bytes, so no transfer coding;
                    # then the raw stream is the body, as read (no re-chunking copies)
                    r3 = _ok(c.request("GET", f"{repo}/blobs/{d}", scope, stream=True,
                                       headers={"Accept-Encoding": "identity"}),
                             f"{name}: layer {d}")
                    try:
                        images.store.write(r3.iter_raw(), d, size,  # type: ignore
                                           what=f"layer {d}")
                        if images.store.last_new:
                            added.append(d)
                    finally:
                        r3.close()  # type: ignore[attr-defined]
                    if progress:
                        progress(f"{d[:19]}: done ({size} bytes)")  # type: ignore[operator]
                    return
                except (c.httpx.TransportError, c.httpx.StreamError) as e:
                    if attempt == RETRIES - 1:
                        raise PyctrError(f"{name}: layer {d}: {e}") from None
                    time.sleep(0.2 * 2 ** attempt)

        with ThreadPoolExecutor(max_workers=jobs) as pool:
            for f in [pool.submit(get_layer, ly) for ly in man.get("layers") or []]:
                f.result()
        for d, data in fetched.items():
            if not images.store.has(d):
                images.store.put(data, d)
                added.append(d)
        images.set_name(name, target["digest"], target["mediaType"], target["size"])
        return name
    except BaseException:
        images.forget_blobs(added)
        raise
    finally:
        c.close()


def push(images: Images, local: str, ref: str, *, plain_http: bool = False, ca: str = "",
         user: str = "", progress: object = None) -> str:
    """Push local image to ref (every blob the registry lacks, then the manifest(s))."""
    img = images.get(local)
    name = normalize(ref)
    host, repo, ver = split_ref(name)
    scope = f"repository:{repo}:pull,push"
    c = Client(host, plain_http=plain_http, ca=ca, user=user)
    try:
        def put_blob(d: str) -> None:
            h = c.request("HEAD", f"{repo}/blobs/{d}", scope)
            if h.status_code == 200:  # type: ignore[attr-defined]
                return
            r = _ok(c.request("POST", f"{repo}/blobs/uploads/", scope), f"{name}: upload")
            loc = r.headers["location"]  # type: ignore[attr-defined]
            if not loc.startswith("http"):
                loc = f"{'http' if plain_http else 'https'}://{host}{loc}"
            sep = "&" if "?" in loc else "?"
            size = images.store.size(d)
            with open(images.store.path(d), "rb") as f:
                # streamed from the store; a broken upload starts over with a new session
                _ok(c.request("PUT", f"{loc}{sep}digest={d}", scope, retry=False,
                              headers={"Content-Type": "application/octet-stream",
                                       "Content-Length": str(size)},
                              content=content.chunks_of(f)), f"{name}: blob {d}")
            if progress:
                progress(f"{d[:19]}: pushed ({size} bytes)")  # type: ignore[operator]

        def push_manifest(d: str, mt: str, tag: str) -> None:
            man = images.json(d)
            for b in [man["config"]["digest"]] + [ly["digest"] for ly in man["layers"]]:
                put_blob(b)
            _ok(c.request("PUT", f"{repo}/manifests/{tag}", scope,
                          headers={"Content-Type": mt}, content=images.store.read(d)),
                f"{name}: manifest")

        if img["media_type"] in INDEXES:
            for m in images.json(img["digest"]).get("manifests") or []:
                if images.store.has(m["digest"]):
                    push_manifest(m["digest"], m.get("mediaType", OCI_MANIFEST), m["digest"])
            _ok(c.request("PUT", f"{repo}/manifests/{ver}", scope,
                          headers={"Content-Type": img["media_type"]},
                          content=images.store.read(img["digest"])), f"{name}: index")
        else:
            push_manifest(img["digest"], img["media_type"], ver)
        return name
    finally:
        c.close()
