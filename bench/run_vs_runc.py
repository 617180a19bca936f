#!/usr/bin/env python3
"""Side-by-side latency of pyrunc and runc (and crun where it runs) on one bundle.

crun runs through ../shared/harness/crun-hybrid.sh on this host (unshare + sh + umount add
~2-3 ms to each of its figures).

Runs alternate (pyrunc, runc, pyrunc, ...) so that machine noise hits both alike; prints the
median of each and the pyrunc/runc ratio. A benchmark, not a test: it asserts nothing.

usage: bench/run_vs_runc.py [-n RUNS] [--pyrunc PATH] [--runc PATH] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def make_bundle(tmp: str, runtime: str) -> str:
    bundle = os.path.join(tmp, "bundle")
    subprocess.run(
        [os.path.join(HERE, "..", "tools", "make-busybox-bundle.sh"), bundle, runtime], check=True
    )
    path = os.path.join(bundle, "config.json")
    with open(path) as f:
        cfg = json.load(f)
    cfg["process"]["args"] = ["/bin/true"]
    cfg["process"]["terminal"] = False
    with open(path, "w") as f:
        json.dump(cfg, f)
    return bundle


def make_sleeper(tmp: str, bundle: str) -> str:
    """A second bundle on the same rootfs whose init stays up, for exec."""
    out = os.path.join(tmp, "sleeper")
    os.mkdir(out)
    with open(os.path.join(bundle, "config.json")) as f:
        cfg = json.load(f)
    cfg["process"]["args"] = ["sleep", "3600"]
    cfg["root"]["path"] = os.path.join(bundle, "rootfs")
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfg, f)
    return out


def timed(cmd: list[str]) -> float:
    # stderr goes to a file, not a pipe: a created container's init keeps the caller's stdio
    # open until it exits, so reading a pipe to EOF would wait for the container.
    with tempfile.TemporaryFile() as err:
        t = time.perf_counter()
        r = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
        dt = time.perf_counter() - t
        if r.returncode != 0:
            err.seek(0)
            sys.exit(f"{' '.join(cmd)} failed ({r.returncode}): {err.read().decode().strip()}")
    return dt * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=30)
    ap.add_argument("--pyrunc", default=shutil.which("pyrunc") or "pyrunc")
    ap.add_argument("--runc", default=shutil.which("runc") or "/usr/sbin/runc")
    ap.add_argument("--crun", default=os.path.join(HERE, "..", "..", "shared", "harness",
                                                   "crun-hybrid.sh"),
                    help="crun, or a wrapper (crun 1.8 refuses this cgroup-hybrid host unless "
                    "run where /sys/fs/cgroup/unified is unmounted); '' to skip")
    ap.add_argument("--json")
    a = ap.parse_args()
    runtimes = {"pyrunc": a.pyrunc, "runc": a.runc}
    if a.crun and os.access(a.crun, os.X_OK) and shutil.which("crun"):
        runtimes["crun"] = a.crun
    tmp = tempfile.mkdtemp(prefix="pyrunc-bench-")
    try:
        bundle = make_bundle(tmp, a.pyrunc)
        roots = {n: os.path.join(tmp, "root-" + n) for n in runtimes}
        res: dict[str, dict[str, list[float]]] = {
            "run": {},
            "state": {},
            "exec": {},
            "create+start+delete": {},
        }
        for n in runtimes:
            for k in res:
                res[k][n] = []
        versions = {n: subprocess.run([rt, "--version"], capture_output=True, text=True,
                                      stdin=subprocess.DEVNULL).stdout.split("\n")[0]
                    for n, rt in runtimes.items()}
        for i in range(a.n):
            for n, rt in runtimes.items():
                cid = f"bench-{n}-{os.getpid()}-{i}"
                res["run"][n].append(timed([rt, "--root", roots[n], "run", "-b", bundle, cid]))
        # state: one long-lived container each
        for n, rt in runtimes.items():
            timed([rt, "--root", roots[n], "create", "-b", bundle, f"st-{n}"])
        for _ in range(a.n):
            for n, rt in runtimes.items():
                res["state"][n].append(timed([rt, "--root", roots[n], "state", f"st-{n}"]))
        for n, rt in runtimes.items():
            subprocess.run([rt, "--root", roots[n], "delete", "-f", f"st-{n}"], check=True)
        # exec: /bin/true in one long-running container each
        sleeper = make_sleeper(tmp, bundle)
        for n, rt in runtimes.items():
            timed([rt, "--root", roots[n], "run", "-d", "-b", sleeper, f"ex-{n}"])
        for _ in range(a.n):
            for n, rt in runtimes.items():
                res["exec"][n].append(timed([rt, "--root", roots[n], "exec", f"ex-{n}", "true"]))
        for n, rt in runtimes.items():
            subprocess.run([rt, "--root", roots[n], "delete", "-f", f"ex-{n}"], check=True)
        for i in range(a.n):
            for n, rt in runtimes.items():
                cid = f"cyc-{n}-{os.getpid()}-{i}"
                t = timed([rt, "--root", roots[n], "create", "-b", bundle, cid])
                t += timed([rt, "--root", roots[n], "start", cid])
                while True:  # /bin/true exits at once; wait for it so delete needs no force
                    out = subprocess.run(
                        [rt, "--root", roots[n], "state", cid],
                        capture_output=True,
                        text=True,
                        stdin=subprocess.DEVNULL,
                    ).stdout
                    if '"stopped"' in out:
                        break
                t += timed([rt, "--root", roots[n], "delete", cid])
                res["create+start+delete"][n].append(t)
        summary: dict[str, dict[str, float]] = {}
        names = list(runtimes)
        head = "".join(f"{n + ' ms':>11}" for n in names)
        crun_col = "  crun/runc" if "crun" in names else ""
        print(f"{'benchmark':22}{head}  pyrunc/runc{crun_col}   (medians of {a.n} runs)")
        for k, v in res.items():
            med = {n: statistics.median(v[n]) for n in names}
            summary[k] = {f"{n}_ms": round(m, 2) for n, m in med.items()}
            summary[k]["ratio_pyrunc_runc"] = round(med["pyrunc"] / med["runc"], 3)
            line = f"{k:22}" + "".join(f"{med[n]:11.2f}" for n in names)
            line += f"  {med['pyrunc'] / med['runc']:11.3f}"
            if "crun" in med:
                summary[k]["ratio_crun_runc"] = round(med["crun"] / med["runc"], 3)
                line += f"  {med['crun'] / med['runc']:9.3f}"
            print(line)
        if a.json:
            with open(a.json, "w") as f:
                json.dump({"runs": a.n, "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                           "kernel": os.uname().release, "versions": versions,
                           "summary": summary, "raw": res}, f, indent=1)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
