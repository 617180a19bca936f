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

Push sends each blob the registry lacks in resumable chunks, or has the registry mount it from
another repository the blob is known to be in (upload.py); pull and push record those
repositories as containerd does, in the blob's distribution-source label (labels.py).
Progress goes through progress.py (bars on a terminal, plain lines otherwise).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor

from pyctr import labels
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
from pyctr.progress import Progress, counted

ACCEPT = ", ".join([OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST])
RETRIES = 4
CHUNK_SIZE = 16 << 20  # push's PATCH size: a broken connection costs at most this much


class RegistryError(PyctrError):
    """An error of one registry, with its host, reason and hint apart (so that login can say
    `<host>: login failed: <reason>` of the same failures a pull reports)."""

    def __init__(self, host: str, why: str, hint: str = "") -> None:
        super().__init__(f"{host}: {why}{': ' + hint if hint else ''}")
        self.host, self.why = host, why


class Unreachable(RegistryError):
    """The connection failed or broke, after the retries the request was allowed."""


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
        q: dict[str, object] = {"service": params.get("service", "")}
        if scope:
            q["scope"] = scope.split()  # (a mount asks for two: one scope parameter each)
        r = self.http.get(params["realm"], params=q,  # type: ignore[arg-type]
                          auth=self.creds if self.creds else None)
        if r.status_code in (401, 403):
            raise RegistryError(self.host, "authentication failed (token service said "
                                f"{r.status_code})", "check --user or pyctr login")
        r.raise_for_status()
        body = r.json()
        return body.get("token") or body.get("access_token") or ""

    def request(self, method: str, path: str, scope: str, *, stream: bool = False,
                headers: dict[str, str] | None = None, content: object = None,
                retry: bool = True) -> object:
        """One request with auth (answering one 401 challenge) and, when retry is set (the
        body can be sent again), retries with backoff on a broken connection or a 5xx. A
        callable content is called for each sending (a streamed body cannot be sent twice)."""
        url = path if path.startswith("http") else self.base + path
        delay, challenged = 0.2, False
        attempts = RETRIES if retry else 1
        attempt = 0
        while True:
            h = dict(headers or {})
            if scope in self.auth:
                h["Authorization"] = self.auth[scope]
            try:
                body = content() if callable(content) else content
                req = self.http.build_request(method, url, headers=h,
                                              content=body)  # type: ignore[arg-type]
                r = self.http.send(req, stream=stream)
            except self.httpx.TransportError as e:
                attempt += 1
                if attempt >= attempts:
                    raise Unreachable(self.host, str(e) or type(e).__name__) from None
                time.sleep(delay)
                delay *= 2
                continue
            if r.status_code == 401:
                r.close()
                if challenged:
                    raise RegistryError(self.host, "authentication failed (401)",
                                        "check --user or pyctr login")
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
                raise RegistryError(self.host, "credentials required (--user or pyctr login)")
            token = base64.b64encode(":".join(self.creds).encode()).decode()
            self.auth[scope] = f"Basic {token}"
        elif scheme == "bearer" and "realm" in params:
            self.auth[scope] = f"Bearer {self._token(params, scope)}"
        else:
            raise RegistryError(self.host, f"unsupported authentication {chal!r}")


def ok(r: object, what: str) -> object:
    """r, unless its status is an error: then one line with the registry's error codes."""
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
         progress: Progress | None = None, lease: str = "") -> str:
    """Pull ref into the store and name it; returns the image name. Every blob of the image
    gets ref's repository in its distribution-source label (for later mounts). Under the gc
    lock, and under lease if given (Images.storing)."""
    return images.storing(lambda: [_pull(images, ref, plain_http=plain_http, ca=ca, user=user,
                                         platform=platform, jobs=jobs, progress=progress)],
                          lease)[0]


def _pull(images: Images, ref: str, *, plain_http: bool, ca: str, user: str,
          platform: str | None, jobs: int, progress: Progress | None) -> str:
    name = normalize(ref)
    host, repo, ver = split_ref(name)
    c = Client(host, plain_http=plain_http, ca=ca, user=user)
    p = _Pull(images, c, name, repo, progress or Progress())
    try:
        target, man = p.manifests(ver, platform or host_platform())
        p.layers(man, jobs)
        p.store_fetched()
        blobs = [*p.fetched, *(ly["digest"] for ly in man.get("layers") or [])]
        labels.add_source(images.meta, images.ns, blobs, _label_host(name), repo)
        images.set_name(name, target["digest"], target["mediaType"], target["size"])
        return name
    except BaseException:
        images.forget_blobs(p.added)
        labels.forget(images.meta, p.added)
        raise
    finally:
        c.close()


class _Pull:
    """One pull's steps and what they fetched (manifests and config, kept in memory until
    all of the layers are in) and added (what a failure takes back)."""

    def __init__(self, images: Images, c: Client, name: str, repo: str,
                 progress: Progress) -> None:
        self.images, self.c, self.name, self.repo = images, c, name, repo
        self.scope = f"repository:{repo}:pull"
        self.progress = progress
        self.added: list[str] = []
        self.fetched: dict[str, bytes] = {}

    def manifests(self, ver: str, want: str) -> tuple[dict, dict]:
        """The image's target descriptor and its manifest for platform want (validated), and
        the config, all fetched."""
        name, repo, scope = self.name, self.repo, self.scope
        r = ok(self.c.request("GET", f"{repo}/manifests/{ver}", scope,
                              headers={"Accept": ACCEPT}), f"{name}: manifest")
        raw = r.content  # type: ignore[attr-defined]
        mt = r.headers.get("content-type", "").split(";")[0]  # type: ignore[attr-defined]
        top = "sha256:" + hashlib.sha256(raw).hexdigest()
        if ver.startswith("sha256:") and ver != top:
            raise PyctrError(f"{name}: manifest is {top}, not the digest asked for")
        doc = json.loads(raw)
        mt = doc.get("mediaType") or mt
        self.fetched[top] = raw
        man = doc
        if mt in INDEXES:
            validate_doc("index", doc, f"{name}: index")
            pick = pick_platform(doc, want, name)
            r2 = ok(self.c.request("GET", f"{repo}/manifests/{pick['digest']}", scope,
                                   headers={"Accept": ACCEPT}), f"{name}: manifest")
            mraw = r2.content  # type: ignore[attr-defined]
            check_blob(mraw, pick["digest"], pick["size"], f"{name}: manifest")
            man = json.loads(mraw)
            self.fetched[pick["digest"]] = mraw
        elif mt not in MANIFESTS:
            raise PyctrError(f"{name}: unsupported media type {mt!r}")
        validate_doc("manifest", man, f"{name}: manifest")
        cfg = man["config"]
        craw = ok(self.c.request("GET", f"{repo}/blobs/{cfg['digest']}", scope),
                  f"{name}: config").content  # type: ignore[attr-defined]
        check_blob(craw, cfg["digest"], cfg["size"], f"{name}: config")
        validate_doc("config", json.loads(craw), f"{name}: config")
        self.fetched[cfg["digest"]] = craw
        return {"digest": top, "mediaType": mt, "size": len(raw)}, man

    def layers(self, man: dict, jobs: int) -> None:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            for f in [pool.submit(self.layer, ly) for ly in man.get("layers") or []]:
                f.result()

    def layer(self, layer: dict) -> None:
        """One layer streamed into the store, again from its start when the connection breaks
        (RETRIES times)."""
        d, size = layer["digest"], layer["size"]
        store = self.images.store
        if store.has(d):
            return
        task = self.progress.task(d, size, "pull")
        for attempt in range(RETRIES):
            try:
                task.seek(0)
                # identity: the digest is of the blob's bytes, so no transfer coding;
                # then the raw stream is the body, as read (no re-chunking copies)
                r = ok(self.c.request("GET", f"{self.repo}/blobs/{d}", self.scope,
                                      stream=True, headers={"Accept-Encoding": "identity"}),
                       f"{self.name}: layer {d}")
                try:
                    store.write(counted(r.iter_raw(), task), d, size,  # type: ignore
                                what=f"layer {d}", added=self.added)
                finally:
                    r.close()  # type: ignore[attr-defined]
                task.finish("done")
                return
            except (self.c.httpx.TransportError, self.c.httpx.StreamError) as e:
                if attempt == RETRIES - 1:
                    raise PyctrError(f"{self.name}: layer {d}: {e}") from None
                time.sleep(0.2 * 2 ** attempt)

    def store_fetched(self) -> None:
        for d, data in self.fetched.items():
            if not self.images.store.has(d):
                self.images.store.put(data, d)
                self.added.append(d)


def _label_host(name: str) -> str:
    """The registry host of a normalize()d name as the source label names it (docker.io, as
    containerd, not the API host registry-1.docker.io)."""
    return name.split("/", 1)[0]


def push(images: Images, local: str, ref: str, *, plain_http: bool = False, ca: str = "",
         user: str = "", chunk_size: int = CHUNK_SIZE, progress: Progress | None = None
         ) -> str:
    """Push local image to ref: every blob the registry lacks (mounted from another
    repository of the registry that has it, as the source labels say, else uploaded in
    chunk_size chunks, 0 for one PUT), then the manifest(s); then ref's repository joins
    every pushed blob's source label."""
    from pyctr.upload import Upload

    img = images.get(local)
    name = normalize(ref)
    host, repo, ver = split_ref(name)
    scope = f"repository:{repo}:pull,push"
    c = Client(host, plain_http=plain_http, ca=ca, user=user)
    up = Upload(c, repo, scope, chunk_size, RETRIES, name)
    progress = progress or Progress()
    pushed: list[str] = []
    try:
        def put_blob(d: str) -> None:
            pushed.append(d)
            h = c.request("HEAD", f"{repo}/blobs/{d}", scope)
            if h.status_code == 200:  # type: ignore[attr-defined]
                return
            others = [r for r in labels.sources(images.meta, images.ns, d, _label_host(name))
                      if r != repo]
            task = progress.task(d, images.store.size(d), "push")
            task.finish(up.blob(d, images.store.path(d), task, others[0] if others else ""))

        def push_manifest(d: str, mt: str, tag: str) -> None:
            man = images.json(d)
            for b in [man["config"]["digest"]] + [ly["digest"] for ly in man["layers"]]:
                put_blob(b)
            ok(c.request("PUT", f"{repo}/manifests/{tag}", scope,
                         headers={"Content-Type": mt}, content=images.store.read(d)),
               f"{name}: manifest")
            pushed.append(d)

        if img["media_type"] in INDEXES:
            for m in images.json(img["digest"]).get("manifests") or []:
                if images.store.has(m["digest"]):
                    push_manifest(m["digest"], m.get("mediaType", OCI_MANIFEST), m["digest"])
            ok(c.request("PUT", f"{repo}/manifests/{ver}", scope,
                         headers={"Content-Type": img["media_type"]},
                         content=images.store.read(img["digest"])), f"{name}: index")
            pushed.append(img["digest"])
        else:
            push_manifest(img["digest"], img["media_type"], ver)
        labels.add_source(images.meta, images.ns, pushed, _label_host(name), repo)
        return name
    finally:
        c.close()


def check_login(host: str, user: str, password: str, *, plain_http: bool = False,
                ca: str = "") -> None:
    """GET /v2/ with the credentials, answering the registry's challenge (Basic, or a Bearer
    token fetched with them), before login stores anything: a wrong password is found now,
    not at the next push, and is never written down."""
    api = "registry-1.docker.io" if host in ("docker.io", "index.docker.io") else host
    try:
        c = Client(api, plain_http=plain_http, ca=ca, user=f"{user}:{password}")
    except OSError as e:  # (a --ca that cannot be read)
        raise PyctrError(f"{host}: login failed: --ca {ca}: {e.strerror or e}") from None
    try:
        ok(c.request("GET", "", ""), "GET /v2/")
    except RegistryError as e:
        raise PyctrError(f"{host}: login failed: {e.why}") from None
    except PyctrError as e:
        raise PyctrError(f"{host}: login failed: {e}") from None
    finally:
        c.close()
