"""Networking costs: what a bridge network adds to a container's start, pyctr beside podman,
and TCP throughput over a container's veth beside loopback.

Everything runs in a network and mount namespace this script makes (it re-runs itself under
`unshare --net --mount` with its own /run): the bridges, veths and iptables rules it causes,
and all the traffic, are there, never on the host's interfaces or firewall.

- start: `pyctr run --rm busybox true` with --net none and --net bridge, and `podman run --rm`
  with --network none and bridge (netavark; runc), alternating, medians: the difference is
  what the network costs each.
- throughput: for a fixed time (default 3 s) a client in the benchmark's namespace streams to
  busybox `nc -l` inside a pyctr container on the bridge (the veth and the bridge), and to the
  same busybox `nc -l` on 127.0.0.1 in the benchmark's namespace (loopback).

Writes bench/results/network.json (as root; `-n` runs, `--seconds` per throughput run).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.path.join(os.path.dirname(HERE), ".venv", "bin")
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "integration"))


def say(msg: str) -> None:
    print(f"[network-bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def timed(cmd: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return (time.perf_counter() - t) * 1000


def stream(host: str, port: int, seconds: float) -> float:
    """MB/s sent to host:port for `seconds` (the receiver discards)."""
    buf = b"\0" * (256 << 10)
    for _ in range(50):
        try:
            s = socket.create_connection((host, port), timeout=5)
            break
        except OSError:
            time.sleep(0.1)
    else:
        raise RuntimeError(f"nothing listens on {host}:{port}")
    sent, t0 = 0, time.perf_counter()
    with s:
        while time.perf_counter() - t0 < seconds:
            sent += s.send(buf)
    return sent / (time.perf_counter() - t0) / 1e6


def inside(a: argparse.Namespace) -> dict:
    from pyctr.busybox import NAME, oci_archive

    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", "/run"], check=True)
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    tmp = tempfile.mkdtemp(prefix="netbench-", dir="/var/tmp")
    try:
        arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True,
                              check=True).stdout.strip()
        img = oci_archive(os.path.join(tmp, "bb.tar"), [(NAME, ["sh"])], arch)
        p = [os.path.join(BIN, "pyctr"), "--root", os.path.join(tmp, "pyctr"), "--state",
             os.path.join(tmp, "pyctr-state"), "--cni-conf-dir", os.path.join(tmp, "cni")]
        subprocess.run([*p, "images", "import", img], check=True, stdout=subprocess.DEVNULL)
        for net in ("none", "bridge"):  # (warm: unpacked; the bridge made)
            subprocess.run([*p, "run", "--rm", "--net", net, NAME, "warm", "true"], check=True)
        prun = tempfile.mkdtemp(prefix="pm-")  # podman wants a short runroot
        pm = ["podman", "--root", os.path.join(tmp, "pm"), "--runroot", prun,
              "--cgroup-manager", "cgroupfs", "--events-backend", "file", "--storage-driver",
              "overlay"]
        subprocess.run([*pm, "load", "-q", "-i", img], check=True, stdout=subprocess.DEVNULL)

        def pm_run(net: str) -> list[str]:
            return [*pm, "run", "--rm", "--network", net, "--runtime", "runc", "--ulimit",
                    "nofile=1024:1024", "--ulimit", "nproc=1000:2000", NAME, "true"]

        say("podman warm-up (bridge)")
        subprocess.run(pm_run("bridge"), check=True, stdout=subprocess.DEVNULL, timeout=120)
        say("start latency")
        ms: dict[str, list[float]] = {k: [] for k in ("pyctr none", "pyctr bridge",
                                                      "podman none", "podman bridge")}
        try:
            for i in range(a.n):
                for k in (list(ms) if i % 2 == 0 else list(reversed(ms))):
                    tool, net = k.split()
                    if tool == "pyctr":
                        ms[k].append(timed([*p, "run", "--rm", "--net", net, NAME, f"r{i}",
                                            "true"]))
                    else:
                        ms[k].append(timed(pm_run(net)))
        finally:
            subprocess.run([*pm, "rmi", "-a", "-f"], capture_output=True)
            subprocess.run([*pm, "system", "reset", "-f"], capture_output=True)
            shutil.rmtree(prun, ignore_errors=True)
        start = {k: round(statistics.median(v), 1) for k, v in ms.items()}
        say("throughput")
        # throughput: busybox nc -l in a container on the bridge, and on loopback here
        subprocess.run([*p, "run", "-d", "--net", "bridge", NAME, "sink", "sh", "-c",
                        "while :; do nc -l -p 5001 >/dev/null; done"], check=True,
                       stdout=subprocess.DEVNULL)
        mbs: dict[str, list[float]] = {"veth (bridge)": [], "loopback": []}
        # (its own process group, killed whole: an nc left holding our stdout would keep the
        # parent waiting for EOF)
        lo = subprocess.Popen(["sh", "-c", "while :; do busybox nc -l -p 5002 >/dev/null; done"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
        try:
            ip = json.loads(subprocess.run([*p, "network", "inspect", "bridge"], check=True,
                                           capture_output=True, text=True).stdout
                            )["containers"]["sink"][0]
            for i in range(a.runs):
                for k in (list(mbs) if i % 2 == 0 else list(reversed(mbs))):
                    host, port = (ip, 5001) if k.startswith("veth") else ("127.0.0.1", 5002)
                    mbs[k].append(stream(host, port, a.seconds))
                    time.sleep(0.2)
        finally:
            os.killpg(lo.pid, 9)
            lo.wait()
            subprocess.run([*p, "tasks", "delete", "-f", "sink"], capture_output=True)
            subprocess.run([*p, "containers", "rm", "sink"], capture_output=True)
        return {"start_median_ms": start,
                "bridge_adds_ms": {"pyctr": round(start["pyctr bridge"] - start["pyctr none"], 1),
                                   "podman": round(start["podman bridge"] -
                                                   start["podman none"], 1)},
                "throughput_mb_s": {k: round(statistics.median(v), 1) for k, v in mbs.items()}}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=10, help="start runs per variant")
    ap.add_argument("--runs", type=int, default=3, help="throughput runs per path")
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    ap.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.inside:
        print(json.dumps(inside(a)))
        return
    args = [sys.executable, os.path.abspath(__file__), "--inside", "-n", str(a.n), "--runs",
            str(a.runs), "--seconds", str(a.seconds)]
    r = subprocess.run(["unshare", "--net", "--mount", "--propagation", "private", *args],
                       capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"benchmark failed: {r.stderr[-3000:]}")
    result = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "runs": a.n,
              **json.loads(r.stdout.strip().splitlines()[-1])}
    t = result["throughput_mb_s"]
    result["ratios"] = {"veth_to_loopback": round(t["veth (bridge)"] / t["loopback"], 2)}
    print(json.dumps(result, indent=1))
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "network.json"), "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
