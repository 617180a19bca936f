"""An image's config -> the container's config.json, as containerd's default spec builds it.

The base is runc's `spec` (pyrunc.specgen), changed where containerd's default differs: its
capability set, a writable root, no terminal unless asked, containerd's default seccomp
profile (seccomp_default.py), the image's Entrypoint+Cmd, Env, WorkingDir and User. A user
given by name is looked up in the image's own /etc/passwd and /etc/group, opened beneath the
rootfs (never through a symlink out of it).
"""

from __future__ import annotations

import os

from pyctr.errors import PyctrError
from pyrunc.linux import sys as S
from pyrunc.specgen import default_spec

# containerd 1.6's oci.defaultUnixCaps (pkg/oci/spec.go)
CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
        "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
        "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"]


def parse_mount(text: str) -> dict:
    """ctr's --mount: type=bind,src=/host,dst=/ctr,options=rbind:ro (type defaults to bind
    with rbind; src/source, dst/destination/target)."""
    kv: dict[str, str] = {}
    for part in text.split(","):
        k, sep, v = part.partition("=")
        if not sep or not k:
            raise PyctrError(f"--mount {text!r}: {part!r} is not key=value")
        kv[k.strip()] = v
    dst = kv.get("dst") or kv.get("destination") or kv.get("target") or ""
    if not dst.startswith("/"):
        raise PyctrError(f"--mount {text!r}: dst must be an absolute path in the container")
    kind = kv.get("type", "bind")
    src = kv.get("src") or kv.get("source") or ""
    opts = [o for o in kv.get("options", "").split(":") if o]
    if kind == "bind":
        if not src or not os.path.exists(src):
            raise PyctrError(f"--mount {text!r}: src {src!r} does not exist")
        src = os.path.abspath(src)
        if "bind" not in opts and "rbind" not in opts:
            opts.insert(0, "rbind")
    for k in kv:
        if k not in ("type", "src", "source", "dst", "destination", "target", "options"):
            raise PyctrError(f"--mount {text!r}: unknown key {k!r}")
    return {"destination": dst, "type": kind, "source": src or kind, "options": opts}


def build(image_config: dict, cid: str, rootfs: str, args: list[str], *, env: list[str],
          workdir: str, user: str, terminal: bool, read_only: bool, memory: int | None,
          cpus: float | None, pids_limit: int | None, cgroups_path: str,
          mounts: list[str] | None = None, seccomp: str = "") -> dict:
    ic = image_config.get("config") or {}
    spec = default_spec()
    p = spec["process"]
    entry = list(ic.get("Entrypoint") or [])
    cmd = args or list(ic.get("Cmd") or [])
    p["args"] = entry + cmd
    if not p["args"]:
        raise PyctrError("no command: the image has neither Entrypoint nor Cmd, give one")
    p["terminal"] = terminal
    p["env"] = _env(list(ic.get("Env") or []) + env, terminal)
    p["cwd"] = workdir or ic.get("WorkingDir") or "/"
    if not p["cwd"].startswith("/"):
        raise PyctrError(f"--workdir {p['cwd']!r}: must be an absolute path")
    p["user"] = resolve_user(rootfs, user or ic.get("User") or "")
    for k in ("bounding", "effective", "permitted"):
        p["capabilities"][k] = list(CAPS)
    p["capabilities"].pop("ambient", None)
    p["noNewPrivileges"] = False
    spec["root"] = {"path": rootfs, "readonly": read_only}
    spec["hostname"] = cid
    res = spec["linux"]["resources"]
    if memory is not None:
        res["memory"] = {"limit": memory}
    if cpus is not None:
        if cpus <= 0:
            raise PyctrError(f"--cpus {cpus}: must be more than 0")
        res["cpu"] = {"quota": int(cpus * 100000), "period": 100000}
    if pids_limit is not None:
        res["pids"] = {"limit": pids_limit}
    spec["linux"]["cgroupsPath"] = cgroups_path
    spec["mounts"] += [parse_mount(m) for m in mounts or []]
    spec["linux"]["seccomp"] = _seccomp(seccomp, p["capabilities"]["bounding"])
    if spec["linux"]["seccomp"] is None:
        del spec["linux"]["seccomp"]
    return spec


def _seccomp(opt: str, bounding: list[str]) -> dict | None:
    """"" (containerd's default profile), "unconfined" (none) or a profile file's path, as
    nerdctl's --security-opt seccomp=..."""
    if opt == "unconfined":
        return None
    if not opt:
        from pyctr.seccomp_default import profile

        return profile(bounding)
    import json

    try:
        with open(opt) as f:
            prof = json.load(f)
    except OSError as e:
        raise PyctrError(f"--security-opt seccomp={opt}: {e.strerror}") from None
    except ValueError as e:
        raise PyctrError(f"--security-opt seccomp={opt}: not JSON ({e})") from None
    if not isinstance(prof, dict) or "defaultAction" not in prof:
        raise PyctrError(f"--security-opt seccomp={opt}: not a seccomp profile (no "
                         "defaultAction)")
    return prof


def _env(pairs: list[str], terminal: bool) -> list[str]:
    """Later wins, keeping first-seen order; PATH by default; TERM only with a terminal."""
    out: dict[str, str] = {}
    for kv in pairs:
        k, sep, v = kv.partition("=")
        if not k or not sep:
            raise PyctrError(f"environment {kv!r}: not NAME=VALUE")
        out[k] = v
    out.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    if terminal:
        out.setdefault("TERM", "xterm")
    return [f"{k}={v}" for k, v in out.items()]


def resolve_user(rootfs: str, user: str) -> dict:
    """"uid[:gid]" or "name[:group]" (names from the image's files) -> the spec's user."""
    if not user:
        return {"uid": 0, "gid": 0}
    name, _, group = user.partition(":")
    passwd = _read_in(rootfs, "etc/passwd")
    if name.isdigit():
        uid = int(name)
        gid = next((int(f[3]) for f in passwd if len(f) > 3 and f[2] == name), 0)
    else:
        row = next((f for f in passwd if len(f) > 3 and f[0] == name), None)
        if row is None:
            raise PyctrError(f"user {name!r}: not in the image's /etc/passwd")
        uid, gid = int(row[2]), int(row[3])
    if group:
        if group.isdigit():
            gid = int(group)
        else:
            grow = next((f for f in _read_in(rootfs, "etc/group") if len(f) > 2
                         and f[0] == group), None)
            if grow is None:
                raise PyctrError(f"group {group!r}: not in the image's /etc/group")
            gid = int(grow[2])
    return {"uid": uid, "gid": gid}


def _read_in(rootfs: str, rel: str) -> list[list[str]]:
    root = os.open(rootfs, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fd = S.openat2(root, rel, os.O_RDONLY | os.O_CLOEXEC,
                       S.RESOLVE_IN_ROOT | S.RESOLVE_NO_MAGICLINKS)
    except OSError:
        return []
    finally:
        os.close(root)
    with os.fdopen(fd, "rb") as f:
        text = f.read(1 << 20).decode(errors="replace")
    return [ln.split(":") for ln in text.splitlines() if ln and not ln.startswith("#")]
