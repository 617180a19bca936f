#!/usr/bin/env python3
"""pyctr beside the Go tools, in one run: JSON in bench/results/pyctr.json.

- unpack: a generated multi-layer image (>= 100 MB uncompressed, gzip layers, files deleted
  and re-added across layers) into overlay snapshots (`pyctr images unpack`) vs `umoci unpack`
  of the same OCI layout; each run on a fresh root, medians of N, alternating.
- run: `pyctr run --rm IMAGE true` vs `podman run --rm` (its own storage, runc: crun refuses
  this cgroup-hybrid host) and `ctr run --rm` (a private containerd 1.6, runc shim), on the
  same busybox image, alternating, medians of N.

- pull: the same image from a plain registry on loopback (Debian's docker-registry):
  `pyctr images pull` into a fresh root vs `skopeo copy` to an OCI layout, no unpack.
usage: bench/pyctr-bench.py [-n RUNS] [--mb MB] [--out DIR]   (as root)
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
BIN = os.path.join(REPO, ".venv", "bin")


def gen_image(path: str, mb: int, layers: int = 4) -> str:
    """An OCI layout archive: busybox's layer, then `layers` layers of mb/layers MB each of
    half-compressible files (each layer deletes a few of the previous one's and re-adds them)."""
    from pyctr import layout
    from pyctr.busybox import layer

    rnd = random.Random(7)
    raws = [layer()]
    per = mb * (1 << 20) // layers
    for i in range(layers):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
            d = tarfile.TarInfo(f"data{i}")
            d.type, d.mode = tarfile.DIRTYPE, 0o755
            t.addfile(d)
            if i:
                for j in range(5):
                    w = tarfile.TarInfo(f"data{i - 1}/.wh.f{j}")
                    t.addfile(w, io.BytesIO(b""))
            n, size = 0, 0
            while size < per:
                chunk = rnd.randbytes(32 << 10) + bytes(32 << 10)  # half random, half zeros
                ti = tarfile.TarInfo(f"data{i}/f{n}")
                ti.size, ti.mode, ti.mtime = len(chunk), 0o644, 1000
                t.addfile(ti, io.BytesIO(chunk))
                n, size = n + 1, size + len(chunk)
        raws.append(buf.getvalue())
    arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True,
                          check=True).stdout.strip()
    layout.write(path, [layout.Image("bench/big:1", {"Cmd": ["sh"]}, raws, arch, ref="big")],
                 level=1)
    return path


def timed(cmd: list[str], **kw: object) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kw)
    return (time.perf_counter() - t) * 1000


def bench_unpack(tmp: str, runs: int, mb: int) -> dict:
    arc = gen_image(os.path.join(tmp, "big.tar"), mb)
    layout = os.path.join(tmp, "layout")
    with tarfile.open(arc) as t:
        t.extractall(layout)  # (our own archive)
    ms: dict[str, list[float]] = {"pyctr": [], "umoci": []}
    for i in range(runs):
        for tool in ("pyctr", "umoci") if i % 2 == 0 else ("umoci", "pyctr"):
            d = os.path.join(tmp, f"{tool}-{i}")
            if tool == "pyctr":
                p = [os.path.join(BIN, "pyctr"), "--root", d, "--state", d + "-state"]
                subprocess.run([*p, "images", "import", arc], check=True,
                               stdout=subprocess.DEVNULL)
                ms[tool].append(timed([*p, "images", "unpack", "bench/big:1"]))
            else:
                ms[tool].append(timed(["umoci", "unpack", "--image", f"{layout}:big", d]))
            shutil.rmtree(d, ignore_errors=True)
            shutil.rmtree(d + "-state", ignore_errors=True)
    raw_mb = sum(os.path.getsize(os.path.join(layout, "blobs", "sha256", b))
                 for b in os.listdir(os.path.join(layout, "blobs", "sha256"))) / (1 << 20)
    return {"image_uncompressed_mb": mb, "image_compressed_mb": round(raw_mb, 1),
            "median_ms": {k: round(statistics.median(v), 1) for k, v in ms.items()}}


def bench_pull(tmp: str, runs: int, arc: str) -> dict:
    """The generated image from a plain registry on loopback: `pyctr images pull` (into a
    fresh root: content store, verified) vs `skopeo copy` to an OCI layout; no unpack."""
    from registry_env import Registry

    reg = Registry(os.path.join(tmp, "registry"), tls_auth=False).start()
    ms: dict[str, list[float]] = {"pyctr": [], "skopeo": []}
    try:
        ref = f"{reg.host}/bench/big:1"
        subprocess.run(["skopeo", "copy", "--quiet", "--dest-tls-verify=false",
                        f"oci-archive:{arc}", f"docker://{ref}"], check=True)
        for i in range(runs):
            for tool in ("pyctr", "skopeo") if i % 2 == 0 else ("skopeo", "pyctr"):
                d = os.path.join(tmp, f"pull-{tool}-{i}")
                if tool == "pyctr":
                    ms[tool].append(timed([os.path.join(BIN, "pyctr"), "--root", d, "--state",
                                           d + "-s", "images", "pull", "--plain-http", ref]))
                else:
                    ms[tool].append(timed(["skopeo", "copy", "--quiet", "--src-tls-verify=false",
                                           f"docker://{ref}", f"oci:{d}:big"]))
                shutil.rmtree(d, ignore_errors=True)
                shutil.rmtree(d + "-s", ignore_errors=True)
    finally:
        reg.cleanup()
    return {"median_ms": {k: round(statistics.median(v), 1) for k, v in ms.items()}}


def bench_run(tmp: str, runs: int) -> dict:
    from cri.env import Containerd

    from pyctr.busybox import NAME, oci_archive

    arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True,
                          check=True).stdout.strip()
    img = oci_archive(os.path.join(tmp, "bb.tar"), [(NAME, ["sh"])], arch)
    p = [os.path.join(BIN, "pyctr"), "--root", os.path.join(tmp, "pyctr"), "--state",
         os.path.join(tmp, "pyctr-state")]
    subprocess.run([*p, "images", "import", img], check=True, stdout=subprocess.DEVNULL)
    subprocess.run([*p, "run", "--rm", NAME, "warm", "true"], check=True)
    prun = tempfile.mkdtemp(prefix="pm-")  # podman wants a short runroot
    pm = ["podman", "--root", os.path.join(tmp, "pm"), "--runroot", prun, "--cgroup-manager",
          "cgroupfs", "--events-backend", "file", "--storage-driver", "overlay"]
    subprocess.run([*pm, "load", "-q", "-i", img], check=True, stdout=subprocess.DEVNULL)
    pm_run = [*pm, "run", "--rm", "--network", "none", "--runtime", "runc", "--ulimit",
              "nofile=1024:1024", "--ulimit", "nproc=1000:2000", NAME, "true"]
    ctrd = Containerd(os.path.join(tmp, "ctrd"), BIN)
    ms: dict[str, list[float]] = {"pyctr": [], "podman": [], "ctr": []}
    try:
        ctrd.start()
        ctrd.ctr("images", "import", img)
        ns = [f"--mount=/proc/{ctrd.pid}/ns/mnt", f"--net=/proc/{ctrd.pid}/ns/net"]
        ctr = ["nsenter", *ns, "ctr", "-a", ctrd.sock, "-n", "k8s.io", "run", "--rm", NAME]
        for i in range(runs):
            order = ["pyctr", "podman", "ctr"]
            random.Random(i).shuffle(order)
            for tool in order:
                if tool == "pyctr":
                    ms[tool].append(timed([*p, "run", "--rm", NAME, f"r{i}", "true"]))
                elif tool == "podman":
                    ms[tool].append(timed(pm_run))
                else:
                    ms[tool].append(timed([*ctr, f"c{i}", "true"]))
    finally:
        ctrd.cleanup()
        subprocess.run([*pm, "rmi", "-a", "-f"], capture_output=True)
        subprocess.run([*pm, "system", "reset", "-f"], capture_output=True)
        shutil.rmtree(prun, ignore_errors=True)
    return {"median_ms": {k: round(statistics.median(v), 1) for k, v in ms.items()}}


def chart(result: dict, path: str) -> None:
    """Three panels, pyctr beside each Go tool, the ratio over pyctr's bar."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("unpack 120 MB, 5 layers into snapshots (ms)", result["unpack"]["median_ms"]),
              ("pull from a loopback registry (ms)", result["pull"]["median_ms"]),
              ("run --rm busybox true (ms)", result["run_rm_true"]["median_ms"])]
    colors = {"pyctr": "#3776ab", "umoci": "#7f7f7f", "skopeo": "#7f7f7f",
              "podman": "#a05a2c", "ctr": "#2ca02c"}
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    for ax, (title, ms) in zip(axes, panels, strict=True):
        names = list(ms)
        bars = ax.bar(names, [ms[n] for n in names], color=[colors[n] for n in names])
        others = [n for n in names if n != "pyctr"]
        label = "\n".join(f"{ms['pyctr'] / ms[o]:.2f}x {o}" for o in others)
        ax.annotate(label, (bars[0].get_x() + bars[0].get_width() / 2, bars[0].get_height()),
                    ha="center", va="bottom", fontsize=8)
        ax.set_title(title, fontsize=9)
    fig.suptitle(f"pyctr vs the Go tools, medians ({result['date']}; lower is better)",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=10)
    ap.add_argument("--mb", type=int, default=120, help="uncompressed image size (MB)")
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="pyctr-bench-", dir="/var/tmp")
    try:
        result = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "runs": a.n,
                  "unpack": bench_unpack(tmp, max(3, a.n // 2), a.mb),
                  "pull": bench_pull(tmp, max(3, a.n // 2), os.path.join(tmp, "big.tar")),
                  "run_rm_true": bench_run(tmp, a.n)}
        u, r = result["unpack"]["median_ms"], result["run_rm_true"]["median_ms"]
        pl = result["pull"]["median_ms"]
        result["ratios"] = {"unpack_pyctr_to_umoci": round(u["pyctr"] / u["umoci"], 2),
                            "pull_pyctr_to_skopeo": round(pl["pyctr"] / pl["skopeo"], 2),
                            "run_pyctr_to_podman": round(r["pyctr"] / r["podman"], 2),
                            "run_pyctr_to_ctr": round(r["pyctr"] / r["ctr"], 2)}
        print(json.dumps(result, indent=1))
        os.makedirs(a.out, exist_ok=True)
        with open(os.path.join(a.out, "pyctr.json"), "w") as f:
            json.dump(result, f, indent=1)
        try:
            chart(result, os.path.join(a.out, "pyctr.png"))
        except ImportError:
            print("matplotlib is not installed: no chart", file=sys.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
