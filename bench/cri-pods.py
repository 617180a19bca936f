#!/usr/bin/env python3
"""Pods through containerd's CRI plugin: our shim (handler `pyrunc`) vs containerd's runc shim
(handler `runc`), in one private containerd (tests/integration/cri/env.py), driven as kubelet
drives it.

N pods of 2 containers each per handler, the handlers alternating pod by pod so neither
inherits a warmer host. Pod start latency: RunPodSandbox, then CreateContainer+StartContainer
of both containers (median and p95). With all pods running: the total VmRSS of each handler's
shims (one shim per pod for both: the CRI plugin groups a pod's containers by its sandbox id).
Then StopPodSandbox+RemovePodSandbox per pod (median).

usage: bench/cri-pods.py [-n PODS] [--out DIR]   (as root; needs containerd, the CNI plugins
       and grpcio: `pip install '.[test]'`)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))

from cri.client import container_config, pod_config  # noqa: E402
from cri.env import Containerd  # noqa: E402
from cri.image import BUSYBOX  # noqa: E402

HANDLERS = ("pyrunc", "runc")


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def shim_handler(pid: int) -> str:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        argv = f.read()
    return "pyrunc" if b"containerd-shim-pyrunc-v2" in argv else "runc"


def p95(v: list[float]) -> float:
    s = sorted(v)
    return s[min(len(s) - 1, int(round(0.95 * (len(s) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=20, help="pods per handler (default 20)")
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    a = ap.parse_args()
    shim_dir = os.path.join(REPO, ".venv", "bin")
    base = tempfile.mkdtemp(prefix="cri-bench-")
    logs = os.path.join(base, "logs")
    ctrd = Containerd(os.path.join(base, "ctrd"), shim_dir)
    start: dict[str, list[float]] = {h: [] for h in HANDLERS}
    stop: dict[str, list[float]] = {h: [] for h in HANDLERS}
    pods: list[tuple[str, str]] = []
    try:
        cri = ctrd.start()
        for i in range(a.n):
            for h in HANDLERS:
                name = f"{h}-{i}"
                cfg = pod_config(name, uid=name, namespace="bench",
                                 log_directory=os.path.join(logs, name),
                                 cgroup_parent=f"/pyrunc-cri-bench/{name}")
                t0 = time.perf_counter()
                pid = cri.run_pod_sandbox(cfg, h).pod_sandbox_id
                for c in ("a", "b"):
                    cid = cri.create_container(
                        pid, container_config(c, BUSYBOX, ["sleep", "3600"]), cfg
                    ).container_id
                    cri.start_container(cid)
                start[h].append((time.perf_counter() - t0) * 1000)
                pods.append((h, pid))
        shims = ctrd.shims()
        rss = {h: 0 for h in HANDLERS}
        count = {h: 0 for h in HANDLERS}
        for s in shims:
            h = shim_handler(s)
            rss[h] += rss_kb(s)
            count[h] += 1
        for h, pid in pods:
            t0 = time.perf_counter()
            cri.stop_pod_sandbox(pid)
            cri.remove_pod_sandbox(pid)
            stop[h].append((time.perf_counter() - t0) * 1000)
        left = ctrd.shims()
        result = {
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "pods_per_handler": a.n,
            "containers_per_pod": 2,
            "pod_start_ms": {h: {"median": round(statistics.median(v), 1),
                                 "p95": round(p95(v), 1)} for h, v in start.items()},
            "pod_stop_remove_ms_median": {h: round(statistics.median(v), 1)
                                          for h, v in stop.items()},
            "shims_running": count,
            "total_shim_rss_mib": {h: round(v / 1024, 1) for h, v in rss.items()},
            "shims_left_after_remove": len(left),
        }
        result["ratios_pyrunc_to_runc"] = {
            "start_median": round(result["pod_start_ms"]["pyrunc"]["median"]
                                  / result["pod_start_ms"]["runc"]["median"], 2),
            "start_p95": round(result["pod_start_ms"]["pyrunc"]["p95"]
                               / result["pod_start_ms"]["runc"]["p95"], 2),
            "total_shim_rss": round(rss["pyrunc"] / rss["runc"], 2) if rss["runc"] else None,
        }
        print(json.dumps(result, indent=1))
        os.makedirs(a.out, exist_ok=True)
        with open(os.path.join(a.out, "cri-pods.json"), "w") as f:
            json.dump(result, f, indent=1)
    finally:
        ctrd.cleanup()
        # the pods' cgroup parents are ours (named above); the runtimes removed what was below
        for hier in os.listdir("/sys/fs/cgroup"):
            top = f"/sys/fs/cgroup/{hier}/pyrunc-cri-bench"
            for d in [f"{top}/{h}-{i}" for h in HANDLERS for i in range(a.n)] + [top]:
                try:
                    os.rmdir(d)
                except OSError:
                    pass
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
