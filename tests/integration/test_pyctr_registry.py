"""pyctr against a real registry on loopback (Debian's docker-registry, started by the
tests: tests/integration/registry_env.py): push, pull and run through TLS with htpasswd auth,
skopeo both ways, a registry that breaks mid-pull, chunked and resumed pushes, cross-repository
mounts, login, progress bars, HTTP/2, leases on pull.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import test_pyctr
from test_pyctr import Pyctr

pytestmark = pytest.mark.integration
ctr = test_pyctr.ctr  # (the fixture)


# -- a real registry on loopback (tests/integration/registry_env.py) --

@pytest.fixture
def registry(tmp_path: Path) -> object:
    if not shutil.which("docker-registry") or not shutil.which("htpasswd"):
        pytest.skip("docker-registry / htpasswd (apache2-utils) are not installed")
    from registry_env import Registry

    r = Registry(str(tmp_path / "registry")).start()
    yield r
    r.cleanup()


def test_push_pull_run_through_a_tls_registry_with_auth(ctr: Pyctr, registry: object,
                                                        tmp_path: Path) -> None:
    from registry_env import PASSWORD, USER

    host, ca = registry.host, registry.ca  # type: ignore[attr-defined]
    ctr("images", "build-busybox", check=True)
    ref = f"{host}/test/bb:1"
    p = ctr("images", "push", "--ca", ca, "-u", f"{USER}:{PASSWORD}", ref, "busybox:local")
    assert p.returncode == 0 and p.stdout.strip() == ref, p
    # a fresh root pulls it and runs it
    other = Pyctr(tmp_path / "other")
    p = other("images", "pull", "--ca", ca, "-u", f"{USER}:{PASSWORD}", ref)
    assert p.returncode == 0 and p.stdout.strip() == ref, p
    ours = json.loads(ctr("images", "inspect", "busybox:local", check=True).stdout)
    theirs = json.loads(other("images", "inspect", ref, check=True).stdout)
    assert ours["target"]["digest"] == theirs["target"]["digest"]
    p = other("run", "--rm", ref, "pulled", "echo", "pulled-and-ran")
    assert p.stdout == "pulled-and-ran\n", p
    # wrong password: one line, nothing stored
    third = Pyctr(tmp_path / "third")
    p = third("images", "pull", "--ca", ca, "-u", f"{USER}:wrong", ref)
    assert p.returncode == 1 and len(p.stderr.splitlines()) == 1, p
    assert "authentication failed" in p.stderr
    assert third.blobs() == set()
    # no CA: TLS verification fails, one line
    p = third("images", "pull", "-u", f"{USER}:{PASSWORD}", ref)
    assert p.returncode == 1 and "certificate" in p.stderr.lower(), p
    assert len(p.stderr.splitlines()) == 1


def test_skopeo_interop_both_ways(ctr: Pyctr, registry: object, tmp_path: Path) -> None:
    if not shutil.which("skopeo"):
        pytest.skip("skopeo is not installed")
    from registry_env import PASSWORD, USER

    from pyctr.busybox import NAME, oci_archive

    host, ca = registry.host, registry.ca  # type: ignore[attr-defined]
    certs = tmp_path / "certs"
    certs.mkdir()
    shutil.copy(ca, certs / "ca.crt")
    creds = f"{USER}:{PASSWORD}"
    # what pyctr pushes, skopeo pulls (to an OCI layout) with the same manifest digest
    ctr("images", "build-busybox", check=True)
    ctr("images", "push", "--ca", ca, "-u", creds, f"{host}/test/ours:1", "busybox:local",
        check=True)
    subprocess.run(["skopeo", "copy", "--quiet", "--src-cert-dir", str(certs), "--src-creds",
                    creds, f"docker://{host}/test/ours:1", f"oci:{tmp_path / 'sk'}:ours"],
                   check=True, capture_output=True)
    sk = json.loads((tmp_path / "sk" / "index.json").read_text())["manifests"][0]["digest"]
    ours = json.loads(ctr("images", "inspect", "busybox:local", check=True).stdout)
    assert sk == ours["target"]["digest"]
    # what skopeo pushes, pyctr pulls and runs
    arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True,
                          check=True).stdout.strip()
    arc = oci_archive(str(tmp_path / "src.tar"), [(NAME, ["sh"])], arch)
    subprocess.run(["skopeo", "copy", "--quiet", "--dest-cert-dir", str(certs), "--dest-creds",
                    creds, f"oci-archive:{arc}", f"docker://{host}/test/theirs:1"],
                   check=True, capture_output=True)
    other = Pyctr(tmp_path / "other")
    other("images", "pull", "--ca", ca, "-u", creds, f"{host}/test/theirs:1", check=True)
    p = other("run", "--rm", f"{host}/test/theirs:1", "sk", "echo", "from-skopeo")
    assert p.stdout == "from-skopeo\n", p


class _CuttingProxy:
    """An HTTP proxy in front of a plain registry that logs every request and breaks some.

    cuts: blob downloads to break (-1: every one): the headers and half of the body, then the
    connection closes (what a registry dying mid-pull does).
    cut_patch: break the cut_patch-th PATCH (1-based; 0: none) half-way through its body:
    the proxy reads half of it, then closes the connection. With forward_half the registry
    gets that half too (its session then holds a partial chunk); without, nothing of it (a
    front end that buffers request bodies, as nginx does).

    The Host header goes through as the client sent it, so the Locations the registry builds
    point at the proxy. seen: (method, path, Content-Range, status) of every request, in the
    order they were answered (status 0: cut)."""

    def __init__(self, upstream: str, cuts: int = 0, cut_patch: int = 0,
                 forward_half: bool = False) -> None:
        import http.server
        import threading

        proxy = self
        self.cuts, self.cut_done = cuts, 0
        self.cut_patch, self.forward_half = cut_patch, forward_half
        self.patches = 0
        self.seen: list[tuple[str, str, str, int]] = []
        self.lock = threading.Lock()

        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a: object) -> None:
                pass

            def _forward(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                crange = self.headers.get("Content-Range", "")
                if self.command == "PATCH" and proxy._cut_this_patch():
                    half = self.rfile.read(n // 2)
                    if proxy.forward_half:
                        proxy._send_partial(self, half, n, upstream)
                    proxy.seen.append((self.command, self.path, crange, 0))
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                body = self.rfile.read(n) if n else None
                status, headers, data = proxy._upstream(self, body, upstream)
                proxy.seen.append((self.command, self.path, crange, status))
                self.send_response(status)
                for k, v in headers:
                    if k.lower() not in ("transfer-encoding", "connection"):
                        self.send_header(k, v)
                self.end_headers()
                if proxy._cut_this_download(self, data):
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self.wfile.write(data)

            do_GET = do_HEAD = do_POST = do_PATCH = do_PUT = do_DELETE = _forward  # noqa: N815

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _cut_this_patch(self) -> bool:
        with self.lock:
            self.patches += 1
            return self.patches == self.cut_patch

    def _cut_this_download(self, h: object, data: bytes) -> bool:
        with self.lock:
            cut = (h.command == "GET" and "/blobs/sha256:" in h.path  # type: ignore
                   and len(data) > 4096 and (self.cuts < 0 or self.cut_done < self.cuts))
            self.cut_done += cut
            return cut

    @staticmethod
    def _upstream(h: object, body: bytes | None, upstream: str) -> tuple[int, list, bytes]:
        import http.client

        conn = http.client.HTTPConnection(upstream, timeout=30)
        try:
            conn.request(h.command, h.path, body=body,  # type: ignore[attr-defined]
                         headers=dict(h.headers.items()))  # type: ignore[attr-defined]
            r = conn.getresponse()
            return r.status, r.getheaders(), r.read()
        finally:
            conn.close()

    @staticmethod
    def _send_partial(h: object, half: bytes, n: int, upstream: str) -> None:
        """The request with the first half of its body, then the connection closes."""
        import socket
        import time

        host, port = upstream.rsplit(":", 1)
        with socket.create_connection((host, int(port))) as s:
            head = f"{h.command} {h.path} HTTP/1.1\r\n" + "".join(  # type: ignore
                f"{k}: {v}\r\n" for k, v in h.headers.items()) + "\r\n"  # type: ignore
            s.sendall(head.encode() + half)
            time.sleep(0.3)  # (the registry has written what came before it sees the close)

    def requests(self, method: str, part: str = "") -> list[tuple[str, str, str, int]]:
        return [r for r in self.seen if r[0] == method and part in r[1]]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_registry_dying_mid_pull_leaves_nothing_and_a_retry_completes(
        ctr: Pyctr, tmp_path: Path) -> None:
    if not shutil.which("docker-registry"):
        pytest.skip("docker-registry is not installed")
    from registry_env import Registry

    reg = Registry(str(tmp_path / "plain"), tls_auth=False).start()
    try:
        ctr("images", "build-busybox", check=True)
        ctr("images", "push", "--plain-http", f"{reg.host}/test/bb:1", "busybox:local",
            check=True)
        other = Pyctr(tmp_path / "other")
        always = _CuttingProxy(reg.host, cuts=-1)
        try:
            p = other("images", "pull", "--plain-http", f"{always.host}/test/bb:1")
        finally:
            always.close()
        assert p.returncode == 1 and len(p.stderr.splitlines()) == 1, p
        assert other.blobs() == set()
        assert other("images", "ls", "-q", check=True).stdout == ""
        assert os.listdir(other.root / "content" / "ingest") == []  # no partial download
        once = _CuttingProxy(reg.host, cuts=1)
        try:
            p = other("images", "pull", "--plain-http", f"{once.host}/test/bb:1")
        finally:
            once.close()
        assert p.returncode == 0 and once.cut_done == 1, p
        r = other("run", "--rm", f"{once.host}/test/bb:1", "x", "echo", "complete")
        assert r.stdout == "complete\n", r
    finally:
        reg.cleanup()


# -- push: chunks, resume, mounts; login; progress --

@pytest.fixture
def plain_registry(tmp_path: Path) -> object:
    """A registry without TLS or auth, for a logging (and cutting) proxy to sit in front of."""
    if not shutil.which("docker-registry"):
        pytest.skip("docker-registry is not installed")
    from registry_env import Registry

    r = Registry(str(tmp_path / "plain"), tls_auth=False).start()
    yield r
    r.cleanup()


def _layer(ctr: Pyctr, name: str = "busybox:local") -> dict:
    """The image's (one) layer descriptor."""
    return json.loads(ctr("images", "inspect", name, check=True).stdout)["manifest"]["layers"][0]


def _sessions(seen: list[tuple[str, str, str, int]]) -> dict[str, dict]:
    """Upload sessions the proxy saw, by UUID: their PATCHes (Content-Range, status), status
    GETs, and the digest their closing PUT named."""
    from urllib.parse import parse_qs, urlsplit

    out: dict[str, dict] = {}
    for method, path, crange, status in seen:
        if "/blobs/uploads/" not in path:
            continue
        u = urlsplit(path)
        uuid = u.path.split("/blobs/uploads/")[1]
        if not uuid:
            continue
        s = out.setdefault(uuid, {"patches": [], "gets": [], "digest": ""})
        if method == "PATCH":
            s["patches"].append((crange, status))
        elif method == "GET":
            s["gets"].append(status)
        elif method == "PUT":
            s["digest"] = parse_qs(u.query)["digest"][0]
    return out


def _ranges(patches: list[tuple[str, int]]) -> list[tuple[int, int]]:
    return [tuple(int(x) for x in cr.split("-")) for cr, st in patches if st == 202]


def _pulls_back(tmp_path: Path, ref: str, digest: str) -> None:
    """A fresh root pulls ref (plain HTTP), gets the image digest, and runs it."""
    other = Pyctr(tmp_path / f"back-{abs(hash(ref))}")
    other("images", "pull", "--plain-http", ref, check=True)
    got = json.loads(other("images", "inspect", ref, check=True).stdout)["target"]["digest"]
    assert got == digest
    p = other("run", "--rm", ref, "back", "echo", "pulled-back")
    assert p.stdout == "pulled-back\n", p


def test_chunked_push_patches_in_order_and_reads_back(ctr: Pyctr, plain_registry: object,
                                                      tmp_path: Path) -> None:
    """--chunk-size 64k sends a 1 MB layer as PATCHes of 64 KiB, in order, then one PUT
    ?digest=; skopeo and a fresh pyctr read the same image back. --chunk-size 0: one PUT."""
    reg = plain_registry.host  # type: ignore[attr-defined]
    ctr("images", "build-busybox", check=True)
    layer = _layer(ctr)
    mine = json.loads(ctr("images", "inspect", "busybox:local", check=True).stdout)
    proxy = _CuttingProxy(reg)
    try:
        p = ctr("images", "push", "--plain-http", "--chunk-size", "64k",
                f"{proxy.host}/test/chunked:1", "busybox:local")
        assert p.returncode == 0, p
        assert f"{layer['digest'][:19]}: pushed ({layer['size']} bytes)" in p.stderr, p
        sessions = _sessions(proxy.seen)
        (up,) = [s for s in sessions.values() if s["digest"] == layer["digest"]]
        ranges = _ranges(up["patches"])
        assert len(ranges) == -(-layer["size"] // 65536) > 1, up
        assert ranges[0][0] == 0 and ranges[-1][1] == layer["size"] - 1
        assert all(b - a + 1 <= 65536 for a, b in ranges)
        assert all(r2[0] == r1[1] + 1 for r1, r2 in zip(ranges, ranges[1:], strict=False))
        # --chunk-size 0, from another root (no labels: no mount): one PUT with the bytes
        mono = Pyctr(tmp_path / "mono")
        mono("images", "build-busybox", check=True)
        mark = len(proxy.seen)
        mono("images", "push", "--plain-http", "--chunk-size", "0",
             f"{proxy.host}/test/mono:1", "busybox:local", check=True)
        later = proxy.seen[mark:]
        assert not [r for r in later if r[0] == "PATCH"], later
        assert [r for r in later if r[0] == "PUT" and f"digest={layer['digest']}" in r[1]
                and r[3] == 201], later
    finally:
        proxy.close()
    if shutil.which("skopeo"):
        sk = tmp_path / "sk"
        subprocess.run(["skopeo", "copy", "--quiet", "--src-tls-verify=false",
                        f"docker://{reg}/test/chunked:1", f"oci:{sk}:x"],
                       check=True, capture_output=True)
        got = json.loads((sk / "index.json").read_text())["manifests"][0]["digest"]
        assert got == mine["target"]["digest"]
    _pulls_back(tmp_path, f"{reg}/test/chunked:1", mine["target"]["digest"])
    _pulls_back(tmp_path, f"{reg}/test/mono:1", mine["target"]["digest"])


def _push_cut_once(ctr: Pyctr, reg: str, ref: str, **cut: bool
                   ) -> tuple[_CuttingProxy, list]:
    """busybox:local pushed in 64k chunks through a proxy that breaks the third PATCH: the
    push must succeed; returns the proxy and what it saw after the one cut PATCH."""
    proxy = _CuttingProxy(reg, cut_patch=3, **cut)
    try:
        p = ctr("images", "push", "--plain-http", "--chunk-size", "64k", f"{proxy.host}/{ref}",
                "busybox:local")
    finally:
        proxy.close()
    assert p.returncode == 0, p
    broken = [i for i, r in enumerate(proxy.seen) if r[0] == "PATCH" and r[3] == 0]
    assert len(broken) == 1, proxy.seen
    return proxy, proxy.seen[broken[0] + 1:]


def test_a_broken_patch_resumes_where_the_registry_is(ctr: Pyctr, plain_registry: object,
                                                      tmp_path: Path) -> None:
    """The connection breaks half-way through the layer's second PATCH (nothing of it reaches
    the registry): pyctr asks the registry where the upload is (GET, 204, Range: 0-65535) and
    goes on with 65536-... in the same session: no byte is sent twice."""
    reg = plain_registry.host  # type: ignore[attr-defined]
    ctr("images", "build-busybox", check=True)
    layer = _layer(ctr)
    # 1: the config's PATCH; 2, 3: the layer's first two
    proxy, after = _push_cut_once(ctr, reg, "test/resumed:1")
    assert after[0][0] == "GET" and "/blobs/uploads/" in after[0][1] and after[0][3] == 204
    assert after[1][0] == "PATCH" and after[1][2].startswith("65536-"), after[:2]
    assert not [r for r in after if r[0] == "POST"], after  # resumed, not restarted
    (up,) = [s for s in _sessions(proxy.seen).values() if s["digest"] == layer["digest"]]
    ranges = _ranges(up["patches"])
    assert sum(b - a + 1 for a, b in ranges) == layer["size"]  # each byte once
    mine = json.loads(ctr("images", "inspect", "busybox:local", check=True).stdout)
    _pulls_back(tmp_path, f"{reg}/test/resumed:1", mine["target"]["digest"])


def test_a_session_the_registry_dropped_starts_again(ctr: Pyctr, plain_registry: object,
                                                     tmp_path: Path) -> None:
    """Half of a PATCH reaches docker-registry 2.8 before the break: its session then holds
    more than its state says, and the status GET finds it gone (404). pyctr opens a new
    session and sends the blob from 0; the image reads back whole."""
    reg = plain_registry.host  # type: ignore[attr-defined]
    ctr("images", "build-busybox", check=True)
    _, after = _push_cut_once(ctr, reg, "test/restarted:1", forward_half=True)
    assert [(r[0], r[3]) for r in after[:4]] == [("GET", 404), ("HEAD", 404), ("POST", 202),
                                                 ("PATCH", 202)], after[:4]
    assert after[3][2] == "0-65535"
    mine = json.loads(ctr("images", "inspect", "busybox:local", check=True).stdout)
    _pulls_back(tmp_path, f"{reg}/test/restarted:1", mine["target"]["digest"])


def test_push_mounts_from_the_repository_it_was_pulled_from(ctr: Pyctr, plain_registry: object,
                                                            tmp_path: Path) -> None:
    """Pulled from a/img, pushed to b/img of the same registry: every blob is mounted (POST
    ?mount=&from=a/img, 201), no byte uploaded. When a/img no longer has the layer, the
    registry answers the mount with an upload session (202), which pyctr uses."""
    import urllib.request

    reg = plain_registry.host  # type: ignore[attr-defined]
    proxy = _CuttingProxy(reg)
    try:
        ctr("images", "build-busybox", check=True)
        layer = _layer(ctr)
        a, b, c = (f"{proxy.host}/{r}/img:1" for r in ("a", "b", "c"))
        ctr("images", "push", "--plain-http", a, "busybox:local", check=True)
        other = Pyctr(tmp_path / "other")
        other("images", "pull", "--plain-http", a, check=True)
        labels = {r["digest"]: r["labels"] for r in json.loads(
            other("content", "ls", "--format", "json", check=True).stdout)}
        key = f"containerd.io/distribution.source.{proxy.host}"
        assert len(labels) == 3 and all(v == {key: "a/img"} for v in labels.values()), labels
        mark = len(proxy.seen)
        p = other("images", "push", "--plain-http", b, a)
        assert p.returncode == 0 and "mounted from a/img" in p.stderr, p
        later = proxy.seen[mark:]
        mounts = [r for r in later if r[0] == "POST"]
        assert len(mounts) == 2 and all("mount=sha256:" in r[1] and "from=a/img" in r[1]
                                        for r in mounts), mounts
        assert all(r[3] == 201 for r in mounts), mounts
        assert not [r for r in later if r[0] in ("PATCH", "PUT") and "/blobs/" in r[1]], later
        labels = {r["digest"]: r["labels"] for r in json.loads(
            other("content", "ls", "--format", "json", check=True).stdout)}
        assert all(v == {key: "a/img,b/img"} for v in labels.values()), labels
        # a/img loses the layer: the mount gets a 202 session, and the layer is uploaded
        req = urllib.request.Request(f"http://{reg}/v2/a/img/blobs/{layer['digest']}",
                                     method="DELETE")
        assert urllib.request.urlopen(req).status == 202
        mark = len(proxy.seen)
        p = other("images", "push", "--plain-http", c, a)
        assert p.returncode == 0, p
        later = proxy.seen[mark:]
        (lm,) = [r for r in later if r[0] == "POST" and layer["digest"] in r[1]]
        assert lm[3] == 202, later
        assert [r for r in later if r[0] == "PATCH" and r[3] == 202], later
    finally:
        proxy.close()
    mine = json.loads(ctr("images", "inspect", "busybox:local", check=True).stdout)
    _pulls_back(tmp_path, f"{reg}/b/img:1", mine["target"]["digest"])
    _pulls_back(tmp_path, f"{reg}/c/img:1", mine["target"]["digest"])


def test_login_checks_the_credentials_before_storing_them(ctr: Pyctr, registry: object,
                                                          tmp_path: Path) -> None:
    from registry_env import PASSWORD, USER

    host, ca = registry.host, registry.ca  # type: ignore[attr-defined]
    home = tmp_path / "home"
    cfg = home / ".docker" / "config.json"
    cfg.parent.mkdir(parents=True)
    cfg.write_text('{"auths": {"elsewhere.example": {"auth": "eDp5"}}}')
    before = cfg.read_bytes()

    def login(password: str, *flags: str) -> subprocess.CompletedProcess:
        return subprocess.run([ctr.bin, "login", *flags, "-u", USER, "--password-stdin",
                               host], input=password + "\n", capture_output=True, text=True,
                              timeout=60, env={**os.environ, "HOME": str(home)})

    p = login("wrong", "--ca", ca)
    assert p.returncode == 1 and p.stderr.startswith(f"pyctr: {host}: login failed: "), p
    assert len(p.stderr.splitlines()) == 1 and "Traceback" not in p.stderr
    assert cfg.read_bytes() == before
    p = login(PASSWORD)  # no --ca: the certificate is not trusted
    assert p.returncode == 1 and "login failed" in p.stderr and "certificate" in p.stderr, p
    assert cfg.read_bytes() == before
    p = login(PASSWORD, "--ca", ca)
    assert p.returncode == 0 and host in p.stdout, p
    auths = json.loads(cfg.read_text())["auths"]
    assert auths["elsewhere.example"] == {"auth": "eDp5"}
    assert base64.b64decode(auths[host]["auth"]).decode() == f"{USER}:{PASSWORD}"
    # and a push with no --user uses them
    ctr("images", "build-busybox", check=True)
    p = subprocess.run([ctr.bin, "--root", str(ctr.root), "images", "push", "--ca", ca,
                        f"{host}/test/stored:1", "busybox:local"], capture_output=True,
                       text=True, timeout=60, env={**os.environ, "HOME": str(home)})
    assert p.returncode == 0, p


def test_tls_registry_speaks_http2(registry: object) -> None:
    """Over TLS the client offers HTTP/2 (ALPN) and docker-registry takes it; plain HTTP stays
    HTTP/1.1 (no h2c)."""
    from registry_env import PASSWORD, USER

    from pyctr.registry import Client

    c = Client(registry.host, ca=registry.ca,  # type: ignore[attr-defined]
               user=f"{USER}:{PASSWORD}")
    try:
        r = c.request("GET", "", "")
        assert r.status_code == 200 and r.http_version == "HTTP/2", r  # type: ignore
    finally:
        c.close()


def test_pull_under_a_lease_survives_images_rm_and_gc(ctr: Pyctr, plain_registry: object,
                                                      tmp_path: Path) -> None:
    """images pull --lease: the content stays through images rm + gc until the lease goes;
    gc then takes the blobs and their source labels."""
    ctr("images", "build-busybox", check=True)
    ref = f"{plain_registry.host}/lease/bb:1"  # type: ignore[attr-defined]
    ctr("images", "push", "--plain-http", ref, "busybox:local", check=True)
    other = Pyctr(tmp_path / "other")
    other("leases", "create", "--id", "pin", check=True)
    other("images", "pull", "--plain-http", "--lease", "pin", ref, check=True)
    held = other.blobs()
    assert len(held) == 3  # manifest, config, layer

    def labelled() -> int:
        db = sqlite3.connect(other.root / "meta.db")
        try:
            return db.execute("SELECT COUNT(*) FROM content_labels").fetchone()[0]
        finally:
            db.close()

    assert labelled() == 3
    other("images", "rm", ref, check=True)
    other("gc", check=True)
    assert other.blobs() == held and labelled() == 3
    other("leases", "rm", "pin", check=True)
    assert "removed 3 blobs" in other("gc", check=True).stdout
    assert other.blobs() == set() and labelled() == 0
    p = other("images", "pull", "--plain-http", "--lease", "nope", ref)
    assert p.returncode == 1 and "lease nope: not found" in p.stderr, p
    assert other.blobs() == set()  # (refused before anything was fetched)


def test_progress_bars_on_a_terminal_plain_lines_and_no_rich_otherwise(
        ctr: Pyctr, plain_registry: object, tmp_path: Path) -> None:
    """On a tty (script(1)) pull and push draw rich bars to 100%; with stderr a pipe they
    print the plain lines, and rich is never imported."""
    if not shutil.which("script"):
        pytest.skip("script(1) is not installed")
    reg = plain_registry.host  # type: ignore[attr-defined]
    ctr("images", "build-busybox", check=True)
    layer = _layer(ctr)
    ref = f"{reg}/test/bars:1"
    ctr("images", "push", "--plain-http", ref, "busybox:local", check=True)
    env = {**os.environ, "TERM": "xterm", "LANG": "C.UTF-8", "COLUMNS": "120"}

    def on_tty(root: Path, *args: str) -> subprocess.CompletedProcess:
        cmd = " ".join([ctr.bin, "--root", str(root), "--state", str(root / "state"), *args])
        return subprocess.run(["script", "-qec", cmd, "/dev/null"], capture_output=True,
                              text=True, timeout=60, stdin=subprocess.DEVNULL, env=env)

    p = on_tty(tmp_path / "tty", "images", "pull", "--plain-http", ref)
    assert p.returncode == 0 and ref in p.stdout, p
    assert "━" in p.stdout and "100%" in p.stdout and layer["digest"][7:19] in p.stdout, p
    p = on_tty(ctr.root, "images", "push", "--plain-http", "--chunk-size", "64k",
               f"{reg}/test/bars2:1", "busybox:local")
    assert p.returncode == 0 and "━" in p.stdout and "100%" in p.stdout, p
    # not a tty: the plain lines, and no rich among the imports
    py = os.path.join(os.path.dirname(ctr.bin), "python3")
    other = tmp_path / "plain"
    p = subprocess.run([py if os.path.exists(py) else sys.executable, "-X", "importtime", "-c",
                        "import sys; from pyctr.cli import main; sys.argv[0] = 'pyctr'; main()",
                        "--root", str(other), "images", "pull", "--plain-http", ref],
                       capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
                       cwd=tmp_path)  # (not the checkout: the installed package)
    assert p.returncode == 0 and p.stdout.strip() == ref, p
    lines = p.stderr.splitlines()
    assert f"{layer['digest'][:19]}: done ({layer['size']} bytes)" in lines, lines
    imported = [ln.rsplit("|", 1)[1].strip() for ln in lines if ln.startswith("import time:")]
    assert "pyctr.registry" in imported and "httpx" in imported, imported
    assert not [m for m in imported if m == "rich" or m.startswith("rich.")], imported
