"""Rootless start cost: `run` of a busybox `true` by an unprivileged user, pyrunc beside runc
(and crun where it runs), from the same `spec --rootless` bundle, alternating, medians and the
peak RSS of each runtime process.

As root this script makes a user of its own (with a subordinate range), a bundle that user
owns and a private mount namespace where the venv is bound onto a path the user can reach;
then re-runs itself as that user (`--inner`) to time the runtimes with nothing in between.
Everything it made is removed at the end. Writes bench/results/rootless.json (`-n` runs).
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
USER = "pyrunc-rlbench"


def say(msg: str) -> None:
    print(f"[rootless-bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def inner(bundle: str, runtimes: dict[str, str], n: int) -> dict:
    """As the user: time `RUNTIME run ID` per runtime, round-robin, with wait4's peak RSS."""
    os.chdir(bundle)
    res: dict[str, dict] = {k: {"ms": [], "maxrss_kb": []} for k in runtimes}
    for i in range(n + 2):  # two warm-ups
        for name, path in runtimes.items():
            t0 = time.perf_counter()
            pid = os.fork()
            if pid == 0:
                devnull = os.open(os.devnull, os.O_RDWR)
                for fd in (0, 1, 2):
                    os.dup2(devnull, fd)
                os.execv(path, [path, "run", f"rlb-{name}-{i}"])
            _, status, ru = os.wait4(pid, 0)
            ms = (time.perf_counter() - t0) * 1000
            if os.waitstatus_to_exitcode(status) != 0:
                res[name]["error"] = f"exit {os.waitstatus_to_exitcode(status)}"
                continue
            if i >= 2:
                res[name]["ms"].append(ms)
                res[name]["maxrss_kb"].append(ru.ru_maxrss)
    return res


def outer(n: int) -> None:
    if os.geteuid() != 0:
        sys.exit("run as root: it makes a user and its subordinate range")
    venv = os.path.join(REPO, ".venv")
    made_user = False
    try:
        pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "--no-create-home", USER], check=True)
        made_user = True
    pw = pwd.getpwnam(USER)
    base = tempfile.mkdtemp(prefix="pyrunc-rlb-", dir="/tmp")
    os.chmod(base, 0o755)
    try:
        bundle = os.path.join(base, "bundle")
        subprocess.run(["sh", os.path.join(REPO, "tools", "make-busybox-bundle.sh"), bundle,
                        os.path.join(venv, "bin", "pyrunc")], check=True, capture_output=True)
        os.unlink(os.path.join(bundle, "config.json"))
        os.chown(bundle, pw.pw_uid, pw.pw_gid)
        xdg = os.path.join(base, "xdg")
        os.mkdir(xdg, 0o700)
        os.chown(xdg, pw.pw_uid, pw.pw_gid)
        os.mkdir(os.path.join(base, "venv"))
        script = os.path.join(base, "bench.py")
        shutil.copy(__file__, script)
        os.chmod(script, 0o644)
        pyrunc = os.path.join(base, "venv", "bin", "pyrunc")
        runtimes = {"pyrunc": pyrunc, "runc": shutil.which("runc") or "/usr/sbin/runc"}
        if shutil.which("crun"):
            runtimes["crun"] = shutil.which("crun") or ""
        as_user = ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--init-groups",
                   "env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", f"HOME={base}",
                   f"USER={USER}", f"XDG_RUNTIME_DIR={xdg}"]
        wrap = ["unshare", "--mount", "--propagation", "private", "--", "sh", "-ec",
                'mount --bind "$1" "$2"; shift 2; exec "$@"', "sh", venv,
                os.path.join(base, "venv")]
        spec = (f"cd {bundle} && {pyrunc} spec --rootless && sed -i "
                "'s/\"terminal\": true/\"terminal\": false/; s/\"sh\"$/\"true\"/' config.json")
        subprocess.run([*wrap, *as_user, "sh", "-c", spec], check=True)
        say(f"{n} runs each of {', '.join(runtimes)} as {USER} (uid {pw.pw_uid})")
        out = subprocess.run([*wrap, *as_user, "/usr/bin/python3", script, "--inner", bundle,
                              json.dumps(runtimes), str(n)], check=True, capture_output=True,
                             text=True)
        res = json.loads(out.stdout)
    finally:
        shutil.rmtree(base, ignore_errors=True)
        if made_user:
            subprocess.run(["userdel", USER], check=False)
    report: dict = {"date": time.strftime("%Y-%m-%d %H:%M"), "runs": n,
                    "kernel": os.uname().release, "results": {}}
    base_ms = statistics.median(res["runc"]["ms"]) if res["runc"]["ms"] else None
    for name, r in res.items():
        if not r["ms"]:
            report["results"][name] = {"error": r.get("error", "no runs")}
            say(f"{name}: failed ({r.get('error')})")
            continue
        med = statistics.median(r["ms"])
        rss = statistics.median(r["maxrss_kb"])
        row = {"median_ms": round(med, 1), "min_ms": round(min(r["ms"]), 1),
               "maxrss_kb": rss}
        if base_ms:
            row["vs_runc"] = round(med / base_ms, 2)
        report["results"][name] = row
        say(f"{name}: median {med:.1f} ms (min {min(r['ms']):.1f}), peak RSS {rss / 1024:.1f} "
            f"MiB" + (f", {med / base_ms:.2f}x runc" if base_ms else ""))
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "rootless.json"), "w") as f:
        json.dump(report, f, indent=1)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--inner":
        print(json.dumps(inner(sys.argv[2], json.loads(sys.argv[3]), int(sys.argv[4]))))
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=30, help="timed runs per runtime")
    outer(ap.parse_args().n)


if __name__ == "__main__":
    main()
