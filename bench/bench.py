#!/usr/bin/env python3
"""Every benchmark, pyrunc beside runc (and crun), in one run: JSON plus a PNG chart.

A benchmark, not a test: it asserts nothing but that the commands succeed. Every latency is
measured twice (see latency()): cold, with an idle gap before each command and the runtimes
shuffled each round, and warm, each runtime's runs back to back; each figure is a median,
printed with its ratio to runc. Churn alternates whole batches; RSS takes the largest of 3.

crun 1.8 refuses this cgroup-hybrid host (cgroup2 at /sys/fs/cgroup/unified next to the v1
controllers), so by default the whole benchmark re-runs itself in a private mount namespace
with that cgroup2 mount detached: all three runtimes then see the same plain cgroup v1, and no
wrapper's cost lands on crun's figures. --host-ns measures in the host's namespace (no crun).

usage: bench/bench.py [-n RUNS] [--churn N] [--pyrunc PATH] [--runc PATH] [--crun PATH]
                      [--containerd N] [--host-ns] [--out DIR]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
INNER = "PYRUNC_BENCH_INNER"
HARNESS = os.path.join(REPO, "conformance", "harness", "containerd.sh")  # private containerd


def make_bundle(
    tmp: str, runtime: str, name: str, args: list[str], caps: list[str] | None = None
) -> str:
    """A busybox bundle; every bundle after the first shares the first one's rootfs."""
    bundle = os.path.join(tmp, name)
    first = os.path.join(tmp, "true")
    if name == "true":
        script = os.path.join(REPO, "tools", "make-busybox-bundle.sh")
        subprocess.run([script, bundle, runtime], check=True, stdout=subprocess.DEVNULL)
        src = os.path.join(bundle, "config.json")
    else:
        os.mkdir(bundle)
        src = os.path.join(first, "config.json")
    with open(src) as f:
        cfg = json.load(f)
    cfg["process"]["args"] = args
    cfg["process"]["terminal"] = False
    for k in ("bounding", "effective", "permitted"):
        cfg["process"]["capabilities"][k] += caps or []
    cfg["root"]["path"] = os.path.join(first, "rootfs")
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(cfg, f)
    return bundle


class Runner:
    """Runs one runtime's commands with its own --root, timing them."""

    def __init__(self, name: str, binary: str, root: str) -> None:
        self.name = name
        self.binary = binary
        self.root = root

    def cmd(self, *args: str) -> float:
        """Milliseconds; a failing command ends the benchmark with its error."""
        # stdio to a file, not a pipe: a created container's init keeps the caller's stdio
        with tempfile.TemporaryFile() as err:
            t = time.perf_counter()
            p = subprocess.run(
                [self.binary, "--root", self.root, *args],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
            dt = (time.perf_counter() - t) * 1000
            if p.returncode != 0:
                err.seek(0)
                sys.exit(f"{self.name} {' '.join(args)}: exit {p.returncode}: "
                         f"{err.read().decode().strip()}")
        return dt

    def quiet(self, *args: str) -> str:
        return subprocess.run(
            [self.binary, "--root", self.root, *args],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
        ).stdout

    def wait_stopped(self, cid: str) -> None:
        for _ in range(2000):
            if '"stopped"' in self.quiet("state", cid):
                return
            time.sleep(0.002)
        sys.exit(f"{self.name}: {cid} did not stop")


COLD_GAP = 0.15  # s of idle before each cold command: past the kernel's ~15 ms warm window


def latency(runners: list[Runner], bundles: dict[str, str], n: int, cold: bool) -> dict:
    """Medians (ms) of the single-command latencies, cold or warm.

    Cold: an idle gap (COLD_GAP) before every timed command and the runtimes in a shuffled
    order each round, so no command inherits the warm state another left: a migration between
    cgroups within the last ~15 ms lets the next one skip an RCU grace period (5-45 ms) that
    an idle host's first migration waits for. Warm: each runtime's rounds back to back, no gap
    (what a busy host and a tight loop see).
    """
    ms: dict[str, dict[str, list[float]]] = {}
    rng = random.Random(0)
    gap = COLD_GAP if cold else 0.0

    def rounds() -> Iterator[tuple[int, Runner]]:
        if cold:
            for i in range(n):
                order = list(runners)
                rng.shuffle(order)
                for r in order:
                    yield i, r
        else:
            for r in runners:
                for i in range(n):
                    yield i, r

    def t(r: Runner, *args: str) -> float:
        if gap:
            time.sleep(gap)
        return r.cmd(*args)

    def rec(bench: str, r: Runner, ms_: float) -> None:
        ms.setdefault(bench, {}).setdefault(r.name, []).append(ms_)

    def execs(bench: str, bundle: str, cid: str) -> None:
        for r in runners:
            r.cmd("run", "-d", "-b", bundles[bundle], cid)
        for _i, r in rounds():
            rec(bench, r, t(r, "exec", cid, "true"))
        for r in runners:
            r.cmd("delete", "-f", cid)

    tag = f"{os.getpid()}-{'c' if cold else 'w'}"
    for i, r in rounds():
        rec("run /bin/true", r, t(r, "run", "-b", bundles["true"], f"r-{tag}-{i}"))
    for i, r in rounds():
        cid = f"c-{tag}-{i}"
        ms_ = t(r, "create", "-b", bundles["true"], cid) + t(r, "start", cid)
        r.wait_stopped(cid)  # /bin/true exits at once: delete then needs no force
        rec("create+start+delete", r, ms_ + t(r, "delete", cid))
    for i, r in rounds():
        cid = f"k-{tag}-{i}"
        r.cmd("run", "-d", "-b", bundles["sleep"], cid)
        rec("state", r, t(r, "state", cid))
        rec("kill", r, t(r, "kill", cid, "KILL"))
        r.wait_stopped(cid)
        rec("delete", r, t(r, "delete", cid))
    execs("exec true", "sleep", f"x-{tag}")
    # a container whose processes may hold CAP_SYS_PTRACE in the host's user namespace:
    # pyrunc's joining process re-executes from a sealed interpreter copy (sealed.py)
    execs("exec true (CAP_SYS_PTRACE)", "sleep-ptrace", f"xp-{tag}")
    return {
        bench: {name: round(statistics.median(v), 2) for name, v in per.items()}
        for bench, per in ms.items()
    }


def peak_rss(runners: list[Runner], bundles: dict[str, str]) -> dict[str, dict[str, float]]:
    """Peak RSS (MiB) of the runtime process and the processes it waits for, per command: the
    largest of 3 runs of GNU time's %M. Not os.wait4 on our own child: a child forked from
    this Python process starts with its parent's high-water mark, which survives execve."""
    res: dict[str, dict[str, float]] = {}
    pid = os.getpid()
    for r in runners:
        def m(bench: str, *args: str, r: Runner = r) -> None:
            kib = 0
            for _ in range(3):
                p = subprocess.run(
                    ["/usr/bin/time", "-f", "%M", r.binary, "--root", r.root, *args],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    text=True,
                )
                kib = max(kib, int(p.stderr.strip().splitlines()[-1]))
            res.setdefault(bench, {})[r.name] = round(kib / 1024, 1)

        m("run /bin/true", "run", "-b", bundles["true"], f"m-{pid}")
        r.cmd("run", "-d", "-b", bundles["sleep"], f"mx-{pid}")
        m("state", "state", f"mx-{pid}")
        m("exec true", "exec", f"mx-{pid}", "true")
        r.cmd("delete", "-f", f"mx-{pid}")
    return res


def churn(runners: list[Runner], bundle: str, count: int) -> dict:
    """Containers per second: `run /bin/true` × count, with 1, 2 and 4 at a time."""
    res: dict[str, dict[str, float]] = {}
    for conc in (1, 2, 4):
        for r in runners:
            ids = [f"ch{conc}-{os.getpid()}-{i}" for i in range(count)]
            t = time.perf_counter()
            with concurrent.futures.ThreadPoolExecutor(conc) as ex:
                list(ex.map(lambda cid, r=r: r.cmd("run", "-b", bundle, cid), ids))
            res.setdefault(f"concurrency {conc}", {})[r.name] = round(
                count / (time.perf_counter() - t), 1
            )
    return res


def containerd(runs: int, pyrunc: str) -> dict:
    """`ctr run --rm` latency and the shim's RSS with one container, through containerd 1.6:
    its runc shim driving runc, the same shim driving pyrunc (BinaryName), and our own shim
    (containerd-shim-pyrunc-v2, pyrunc in-process): the harness's --bench."""
    bindir = os.path.dirname(pyrunc)
    out: dict = {}
    for name, spec in (
        ("runc", ["runc"]),
        ("pyrunc", [f"runc:{pyrunc}"]),
        ("pyrunc-shim", ["--path", bindir, "shim:pyrunc"]),
    ):
        p = subprocess.run(
            [HARNESS, "--only", "echo", "--no-cri", "--bench", str(runs), *spec],
            capture_output=True,
            text=True,
        )
        text = p.stdout + p.stderr
        med = re.search(r"BENCH ctr run --rm.*median ([\d.]+)s", text)
        rss = re.search(r"VmRSS[^\d]*([\d.]+)\s*(kB|KiB|MiB|MB)", text)
        if p.returncode != 0 or not med:
            out[name] = {"error": text.strip().splitlines()[-1:] or ["no output"]}
            continue
        out[name] = {"ctr_run_rm_ms": round(float(med.group(1)) * 1000, 1)}
        if rss:
            kib = float(rss.group(1)) * (1024 if rss.group(2) in ("MiB", "MB") else 1)
            out[name]["shim_rss_mib"] = round(kib / 1024, 1)
    return out


def shim_latency(pyrunc: str, runs: int) -> dict:
    """`ctr run --rm IMAGE ID true`, containerd's runc shim and ours alternating run by run in
    one containerd (bench/shim-latency.sh): medians in ms."""
    p = subprocess.run(
        [HARNESS, "--only", "none", "--no-cri", "--path", os.path.dirname(pyrunc),
         "--exec", os.path.join(HERE, "shim-latency.sh"), "shim:pyrunc"],
        capture_output=True, text=True, env=dict(os.environ, SHIM_BENCH_N=str(runs)),
    )
    got: dict[str, list[float]] = {}
    for name, us in re.findall(r"^(runc|pyrunc-shim) ms=(\d+)e-3$", p.stdout + p.stderr, re.M):
        got.setdefault(name, []).append(int(us) / 1000)
    if p.returncode != 0 or len(got) != 2:
        return {"error": (p.stdout + p.stderr).strip().splitlines()[-1:]}
    return {n: round(statistics.median(v), 1) for n, v in got.items()}


def shim_groups(pyrunc: str) -> dict:
    """RSS of one shim holding 1, 10 and 50 containers of one group (bench/shim-group.sh in
    the harness), containerd's runc shim and ours."""
    group = os.path.join(HERE, "shim-group.sh")
    out: dict = {}
    for name, spec in (("runc", ["runc"]),
                       ("pyrunc-shim", ["--path", os.path.dirname(pyrunc), "shim:pyrunc"])):
        p = subprocess.run(
            [HARNESS, "--only", "none", "--no-cri", "--exec", group, *spec],
            capture_output=True, text=True,
        )
        text = p.stdout + p.stderr
        got = {int(n): round(int(k) / 1024, 1)
               for n, k in re.findall(r"containers=(\d+) rss_kb=(\d+)", text)}
        out[name] = got if p.returncode == 0 and len(got) == 3 else {
            "error": text.strip().splitlines()[-1:]}
    return out


def versions(runners: list[Runner]) -> dict[str, str]:
    v = {}
    for r in runners:
        first = subprocess.run([r.binary, "--version"], capture_output=True, text=True).stdout
        v[r.name] = first.split("\n")[0]
    return v


def ratios(table: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    out = {}
    for bench, per in table.items():
        if "runc" in per and per["runc"]:
            out[bench] = {f"{n}/runc": round(x / per["runc"], 3) for n, x in per.items()
                          if n != "runc"}
    return out


def print_table(title: str, table: dict[str, dict[str, float]], unit: str) -> None:
    names = sorted({n for per in table.values() for n in per}, key=["pyrunc", "runc",
                                                                     "crun"].index)
    print(f"\n{title}")
    print(f"{'':24}" + "".join(f"{n + ' ' + unit:>14}" for n in names) + "   ratios to runc")
    for bench, per in table.items():
        line = f"{bench:24}" + "".join(f"{per.get(n, float('nan')):14.2f}" for n in names)
        rat = "  ".join(f"{n} {per[n] / per['runc']:.2f}x" for n in names
                        if n != "runc" and n in per and per.get("runc"))
        print(line + "   " + rat)


def chart(result: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"pyrunc": "#3776ab", "runc": "#7f7f7f", "crun": "#e08a1e",
              "pyrunc-shim": "#2ca02c"}
    panels = [
        ("cold latency (ms, median, idle host; lower is better)", result["latency_ms"]["cold"]),
        ("warm latency (ms, median, back to back; lower is better)",
         result["latency_ms"]["warm"]),
        ("churn: containers/s (higher is better)", result["churn_per_s"]),
        ("peak RSS of the runtime process (MiB)", result["peak_rss_mib"]),
    ]
    if result.get("containerd"):
        c = result["containerd"]
        lat = {n: v["ctr_run_rm_ms"] for n, v in c.items() if "ctr_run_rm_ms" in v}
        shim = {n: v["shim_rss_mib"] for n, v in c.items() if "shim_rss_mib" in v}
        if lat:
            panels.append(("containerd 1.6: ctr run --rm (ms) / shim RSS (MiB)",
                           {"ctr run --rm ms": lat, **({"shim RSS MiB": shim} if shim else {})}))
    fig, axes = plt.subplots(len(panels), 1, figsize=(10, 3.2 * len(panels)))
    for ax, (title, table) in zip(axes, panels, strict=True):
        benches = list(table)
        names = [n for n in colors if any(n in table[b] for b in benches)]
        width = 0.8 / len(names)
        for j, n in enumerate(names):
            xs = [i + (j - (len(names) - 1) / 2) * width for i in range(len(benches))]
            ys = [table[b].get(n, 0) for b in benches]
            bars = ax.bar(xs, ys, width, label=n, color=colors[n])
            for b, bench in zip(bars, benches, strict=True):
                base = table[bench].get("runc")
                if n != "runc" and base and table[bench].get(n):
                    ax.annotate(f"{table[bench][n] / base:.2f}x", (b.get_x() + b.get_width() / 2,
                                b.get_height()), ha="center", va="bottom", fontsize=7)
        ax.set_xticks(range(len(benches)))
        ax.set_xticklabels(benches, fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=8)
    fig.suptitle(f"pyrunc vs runc vs crun -- {result['date']}, kernel {result['kernel']} "
                 f"(ratios to runc above the bars)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def private_ns(argv: list[str]) -> int:
    """Re-run ourselves where /sys/fs/cgroup/unified is not mounted (see the module doc)."""
    script = (
        'if [ "$(stat -f -c %T /sys/fs/cgroup/unified 2>/dev/null)" = cgroup2fs ]; then '
        "umount -l /sys/fs/cgroup/unified || exit 125; fi; exec \"$@\""
    )
    env = dict(os.environ, **{INNER: "1"})
    return subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh",
         sys.executable, *argv],
        env=env,
    ).returncode


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=20, help="runs per latency figure (default 20)")
    ap.add_argument("--churn", type=int, default=40, help="containers per churn figure")
    ap.add_argument("--pyrunc", default=os.path.join(REPO, ".venv", "bin", "pyrunc"))
    ap.add_argument("--runc", default=shutil.which("runc") or "/usr/sbin/runc")
    ap.add_argument("--crun", default=shutil.which("crun") or "", help="'' to leave it out")
    ap.add_argument("--containerd", type=int, default=20, metavar="N",
                    help="ctr run --rm runs through containerd (0: skip)")
    ap.add_argument("--host-ns", action="store_true", help="stay in the host's mount ns")
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    a = ap.parse_args()
    if not a.host_ns and not os.environ.get(INNER):
        sys.exit(private_ns([os.path.abspath(__file__), *sys.argv[1:]]))
    names = {"pyrunc": a.pyrunc, "runc": a.runc}
    if a.crun and not a.host_ns:
        names["crun"] = a.crun
    tmp = tempfile.mkdtemp(prefix="pyrunc-bench-")
    try:
        runners = [Runner(n, b, os.path.join(tmp, "root-" + n)) for n, b in names.items()]
        bundles = {
            "true": make_bundle(tmp, a.pyrunc, "true", ["/bin/true"]),
            "sleep": make_bundle(tmp, a.pyrunc, "sleep", ["sleep", "3600"]),
            "sleep-ptrace": make_bundle(tmp, a.pyrunc, "sleep-ptrace", ["sleep", "3600"],
                                        caps=["CAP_SYS_PTRACE"]),
        }
        result: dict = {
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "kernel": os.uname().release,
            "cpus": os.cpu_count(),
            "runs": a.n,
            "churn_containers": a.churn,
            "mount_ns": "host" if a.host_ns else "private, /sys/fs/cgroup/unified detached",
            "versions": versions(runners),
        }
        result["cold_gap_ms"] = COLD_GAP * 1000
        result["latency_ms"] = {
            "cold": latency(runners, bundles, a.n, cold=True),
            "warm": latency(runners, bundles, a.n, cold=False),
        }
        result["peak_rss_mib"] = peak_rss(runners, bundles)
        result["churn_per_s"] = churn(runners, bundles["true"], a.churn)
        if a.containerd:
            result["containerd"] = containerd(a.containerd, a.pyrunc)
            result["shim_rss_mib_by_group_size"] = shim_groups(a.pyrunc)
            result["ctr_run_rm_alternating_ms"] = shim_latency(a.pyrunc, a.containerd)
        result["image"] = "not measured yet: pyctr (unpack, pull) is a later issue"
        result["ratios_to_runc"] = {
            "latency cold": ratios(result["latency_ms"]["cold"]),
            "latency warm": ratios(result["latency_ms"]["warm"]),
            "churn": ratios(result["churn_per_s"]),
            "peak_rss": ratios(result["peak_rss_mib"]),
        }
        print_table(f"cold latency, medians of {a.n} runs, {COLD_GAP * 1000:.0f} ms idle before "
                    "each, runtimes shuffled", result["latency_ms"]["cold"], "ms")
        print_table(f"warm latency, medians of {a.n} back-to-back runs per runtime",
                    result["latency_ms"]["warm"], "ms")
        print_table(f"churn: {a.churn} x run /bin/true", result["churn_per_s"], "/s")
        print_table("peak RSS of the runtime process", result["peak_rss_mib"], "MiB")
        if a.containerd:
            print("\ncontainerd:", json.dumps(result["containerd"]))
            print("shim RSS (MiB) with 1/10/50 containers in one group:",
                  json.dumps(result["shim_rss_mib_by_group_size"]))
            print("ctr run --rm, runc shim and ours alternating (median ms):",
                  json.dumps(result["ctr_run_rm_alternating_ms"]))
        os.makedirs(a.out, exist_ok=True)
        with open(os.path.join(a.out, "bench.json"), "w") as f:
            json.dump(result, f, indent=1)
        try:
            chart(result, os.path.join(a.out, "bench.png"))
        except ImportError:
            print("matplotlib is not installed: no chart (bench/run.sh installs it)",
                  file=sys.stderr)
        print(f"\nwrote {a.out}/bench.json and bench.png")
    finally:
        for r in runners:
            for cid in os.listdir(r.root) if os.path.isdir(r.root) else []:
                subprocess.run([r.binary, "--root", r.root, "delete", "-f", cid],
                               capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
