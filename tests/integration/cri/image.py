"""The images the CRI tests need, made offline from busybox-static: an OCI archive holding
`busybox` and the pod sandbox ("pause") image under the name the CRI config's sandbox_image
gives, so containerd's CRI plugin never pulls anything.

Both manifests share one layer; the pause image differs only in its command (a process that
sleeps until it is killed, which is all a sandbox's pause container does).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile

BUSYBOX = "docker.io/library/busybox:cri"
PAUSE = "registry.k8s.io/pause:3.6"  # what the test config's sandbox_image names

_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _layer() -> bytes:
    """busybox with one symlink per applet, /etc/passwd and /etc/group, root-owned, mtime 0."""
    busybox = shutil.which("busybox") or "/bin/busybox"
    applets = subprocess.run([busybox, "--list-full"], capture_output=True, text=True,
                             check=True).stdout.split()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:

        def add(name: str, kind: bytes, mode: int, data: bytes = b"", link: str = "") -> None:
            ti = tarfile.TarInfo(name)
            ti.type, ti.mode, ti.mtime, ti.uid, ti.gid = kind, mode, 0, 0, 0
            ti.linkname = link
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data) if data else None)

        for d in ("bin", "sbin", "usr", "usr/bin", "usr/sbin", "etc", "dev", "proc", "sys",
                  "root", "run", "home", "var"):
            add(d, tarfile.DIRTYPE, 0o700 if d == "root" else 0o755)
        for d in ("tmp", "var/tmp"):
            add(d, tarfile.DIRTYPE, 0o1777)
        with open(busybox, "rb") as f:
            add("bin/busybox", tarfile.REGTYPE, 0o755, f.read())
        seen = {"bin/busybox"}
        for a in applets:
            a = a.lstrip("/")
            if "/" in a and a not in seen:
                seen.add(a)
                add(a, tarfile.SYMTYPE, 0o777, link="/bin/busybox")
        if "bin/sh" not in seen:
            add("bin/sh", tarfile.SYMTYPE, 0o777, link="/bin/busybox")
        add("etc/passwd", tarfile.REGTYPE, 0o644,
            b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
        add("etc/group", tarfile.REGTYPE, 0o644, b"root:x:0:\nnogroup:x:65534:\n")
    return buf.getvalue()


def build(path: str) -> str:
    """Write the OCI archive to path (a .tar for `ctr images import`); returns path."""
    layout = path + ".d"
    blobs = os.path.join(layout, "blobs", "sha256")
    os.makedirs(blobs, exist_ok=True)

    def blob(data: bytes) -> tuple[str, int]:
        d = hashlib.sha256(data).hexdigest()
        with open(os.path.join(blobs, d), "wb") as f:
            f.write(data)
        return "sha256:" + d, len(data)

    raw = _layer()
    diff_id = "sha256:" + hashlib.sha256(raw).hexdigest()
    layer, lsize = blob(gzip.compress(raw, mtime=0))
    arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True,
                          check=True).stdout.strip()
    manifests = []
    for name, cmd in ((BUSYBOX, ["sh"]), (PAUSE, ["sleep", "2147483647"])):
        cfg = {
            "created": "1970-01-01T00:00:00Z", "architecture": arch, "os": "linux",
            "config": {"Env": [_PATH], "Cmd": cmd, "WorkingDir": "/"},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        }
        cd, cs = blob(json.dumps(cfg).encode())
        man = {
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd,
                       "size": cs},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                        "digest": layer, "size": lsize}],
        }
        md, ms = blob(json.dumps(man).encode())
        manifests.append({
            "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": ms,
            "platform": {"architecture": arch, "os": "linux"},
            "annotations": {"io.containerd.image.name": name,
                            "org.opencontainers.image.ref.name": name.rsplit(":", 1)[1]},
        })
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
             "manifests": manifests}
    with open(os.path.join(layout, "index.json"), "w") as f:
        json.dump(index, f)
    with open(os.path.join(layout, "oci-layout"), "w") as f:
        f.write('{"imageLayoutVersion":"1.0.0"}')
    with tarfile.open(path, "w") as t:
        for n in ("oci-layout", "index.json", "blobs"):
            t.add(os.path.join(layout, n), arcname=n)
    shutil.rmtree(layout)
    return path
