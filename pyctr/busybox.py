"""busybox:local, the image of the README's main job, made offline from the host's
busybox-static: one layer (the binary, a symlink per applet, /etc/passwd and /etc/group,
root-owned, mtime 0, so the same host always makes the same digests).
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile

from pyctr.errors import PyctrError

NAME = "docker.io/library/busybox:local"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def find_busybox() -> str:
    for p in ("/bin/busybox", "/usr/bin/busybox", shutil.which("busybox") or ""):
        if p and os.path.exists(p):
            return p
    raise PyctrError("busybox:local: no busybox on this host (apt-get install busybox-static)")


def layer() -> bytes:
    """The uncompressed layer tar."""
    busybox = find_busybox()
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
            b"root:x:0:0:root:/root:/bin/sh\n"
            b"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
        add("etc/group", tarfile.REGTYPE, 0o644, b"root:x:0:\nnogroup:x:65534:\n")
    return buf.getvalue()


def oci_archive(path: str, images: list[tuple[str, list[str]]], arch: str) -> str:
    """An OCI layout archive of the busybox layer under each (name, Cmd); returns path."""
    from pyctr import layout

    raw = layer()
    return layout.write(path, [layout.Image(name, {"Env": [PATH_ENV], "Cmd": cmd,
                                                   "WorkingDir": "/"}, [raw], arch)
                               for name, cmd in images])
