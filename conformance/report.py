#!/usr/bin/env python3
"""conformance/RESULTS.md from what the runners left in conformance/results/.

Reads runc-bats-{runc,pyrunc}.tsv (run-runc-bats.sh), runc-bats-rootless-{runc,pyrunc}.tsv
(run-runc-bats-rootless.sh), containerd-*.txt
(run-containerd.sh), clients-{runc,pyrunc}.txt (run-clients.sh) and spec-{pyrunc,runc}.json
(run-spec.sh); a suite whose files are missing is reported as not run. Stdlib only, so it runs
with any python3.

usage: conformance/report.py [--out conformance/RESULTS.md]
"""

from __future__ import annotations

import argparse
import collections
import csv
import json
import os
import re
import subprocess
import time

HERE = os.path.dirname(os.path.abspath(__file__))
RES = os.path.join(HERE, "results")
RUNTIMES = ("pyrunc", "runc")


def first_line(*cmd: str) -> str:
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return "not installed"
    return (p.stdout or p.stderr).strip().split("\n")[0] or "?"


def mtime(path: str) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(os.path.getmtime(path)))


def _bats_rows(prefix: str) -> dict[str, dict[tuple[str, str], str]] | None:
    """{runtime: {(file, test): result}} from results/PREFIX-RUNTIME.tsv; None if one is
    missing."""
    paths = {r: os.path.join(RES, f"{prefix}-{r}.tsv") for r in RUNTIMES}
    if not all(os.path.exists(p) for p in paths.values()):
        return None
    rows: dict[str, dict[tuple[str, str], str]] = {}
    for r, p in paths.items():
        with open(p, newline="") as f:
            reader = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
            rows[r] = {(x["file"], x["test"]): x["result"] for x in reader}
    return rows


def bats_section() -> list[str]:
    rows = _bats_rows("runc-bats")
    if rows is None:
        title = "## runc's bats integration suite"
        return [title, "", "not run (conformance/run-runc-bats.sh)", ""]
    files = list(dict.fromkeys(k[0] for k in rows["runc"]))
    count = {r: collections.defaultdict(collections.Counter) for r in RUNTIMES}
    for r in RUNTIMES:
        for (f, _t), res in rows[r].items():
            count[r][f][res] += 1
    both = collections.Counter()
    lines = [
        "## runc's bats integration suite",
        "",
        "runc 1.1.5's tests/integration (Debian's source package), run "
        f"{mtime(os.path.join(RES, 'runc-bats-pyrunc.tsv'))} "
        "with `conformance/run-runc-bats.sh`; TAP and TSV in `results/`.",
        "",
        "| file | runc pass / fail / skip | pyrunc pass / fail / skip | pyrunc passes of runc's |",
        "|---|---|---|---|",
    ]
    for f in files:
        rc, pc = count["runc"][f], count["pyrunc"][f]
        base = [k for k, v in rows["runc"].items() if k[0] == f and v == "pass"]
        got = sum(1 for k in base if rows["pyrunc"].get(k) == "pass")
        both["base"] += len(base)
        both["got"] += got
        lines.append(
            f"| {f} | {rc['pass']} / {rc['fail']} / {rc['skip']} | "
            f"{pc['pass']} / {pc['fail']} / {pc['skip']} | {got} / {len(base)} |"
        )
    tot = {r: collections.Counter() for r in RUNTIMES}
    for r in RUNTIMES:
        for c in count[r].values():
            tot[r].update(c)
    rt, pt = tot["runc"], tot["pyrunc"]
    pct = 100 * both["got"] / both["base"] if both["base"] else 0
    lines.append(
        f"| **total** | **{rt['pass']} / {rt['fail']} / {rt['skip']}** | "
        f"**{pt['pass']} / {pt['fail']} / {pt['skip']}** | **{both['got']} / {both['base']} "
        f"({pct:.1f}%)** |"
    )
    runc, py = rows["runc"], rows["pyrunc"]
    lost = sorted(k for k, v in runc.items() if v == "pass" and py.get(k) != "pass")
    gained = sorted(k for k, v in py.items() if v == "pass" and runc.get(k) != "pass")
    lines.append("")
    if lost:
        lines.append("runc passes, pyrunc does not:")
        lines += [f"- {f}: {t} ({rows['pyrunc'].get((f, t), 'missing')})" for f, t in lost]
    if gained:
        lines.append("")
        lines.append("pyrunc passes, runc does not:")
        lines += [f"- {f}: {t} (runc: {rows['runc'].get((f, t), 'missing')})" for f, t in gained]
    lines.append("")
    return lines


def rootless_bats_section() -> list[str]:
    title = "## runc's bats integration suite, rootless"
    rows = _bats_rows("runc-bats-rootless")
    if rows is None:
        return [title, "", "not run (conformance/run-runc-bats-rootless.sh)", ""]

    def fset(file: str) -> str:  # "[idmap+cgroup] exec.bats" -> "idmap+cgroup"
        return file[1:file.index("]")] if file.startswith("[") else "?"

    sets = list(dict.fromkeys(fset(k[0]) for k in rows["runc"]))
    count = {r: collections.defaultdict(collections.Counter) for r in RUNTIMES}
    for r in RUNTIMES:
        for (f, _t), res in rows[r].items():
            count[r][fset(f)][res] += 1
    lines = [
        title,
        "",
        f"The same suite run as an unprivileged user the way runc's `tests/rootless.sh` does, "
        f"once per feature set (`ROOTLESS_FEATURES`: none, cgroup, idmap, idmap+cgroup), run "
        f"{mtime(os.path.join(RES, 'runc-bats-rootless-pyrunc.tsv'))} with "
        "`conformance/run-runc-bats-rootless.sh`; TAP and TSV "
        "in `results/runc-bats-rootless-*`, tests named `[SET] file.bats: test`.",
        "",
        "| feature set | runc pass / fail / skip | pyrunc pass / fail / skip "
        "| pyrunc passes of runc's |",
        "|---|---|---|---|",
    ]
    base_tot = got_tot = 0
    tot = {r: collections.Counter() for r in RUNTIMES}
    for s in sets:
        rc, pc = count["runc"][s], count["pyrunc"][s]
        tot["runc"].update(rc)
        tot["pyrunc"].update(pc)
        base = [k for k, v in rows["runc"].items() if fset(k[0]) == s and v == "pass"]
        got = sum(1 for k in base if rows["pyrunc"].get(k) == "pass")
        base_tot += len(base)
        got_tot += got
        lines.append(f"| {s} | {rc['pass']} / {rc['fail']} / {rc['skip']} | "
                     f"{pc['pass']} / {pc['fail']} / {pc['skip']} | {got} / {len(base)} |")
    rt, pt = tot["runc"], tot["pyrunc"]
    pct = 100 * got_tot / base_tot if base_tot else 0
    lines.append(f"| **total** | **{rt['pass']} / {rt['fail']} / {rt['skip']}** | "
                 f"**{pt['pass']} / {pt['fail']} / {pt['skip']}** | "
                 f"**{got_tot} / {base_tot} ({pct:.1f}%)** |")
    runc, py = rows["runc"], rows["pyrunc"]
    lost = [k for k, v in runc.items() if v == "pass" and py.get(k) != "pass"]
    gained = [k for k, v in py.items() if v == "pass" and runc.get(k) != "pass"]
    both = [k for k, v in runc.items() if v == "fail" and py.get(k) == "fail"]
    limit = 40
    lines.append("")
    if lost:
        lines.append("runc passes, pyrunc does not:")
        lines += [f"- {f}: {t} ({py.get((f, t), 'missing')})" for f, t in lost[:limit]]
        if len(lost) > limit:
            lines.append(f"- ... {len(lost) - limit} more in "
                         "`results/runc-bats-rootless-compare.txt`")
        lines.append("")
    if gained:
        lines.append("pyrunc passes, runc does not:")
        lines += [f"- {f}: {t} (runc: {runc.get((f, t), 'missing')})" for f, t in gained]
        lines.append("")
    if both:
        lines.append("Both fail:")
        lines += [f"- {f}: {t}" for f, t in both]
        lines.append("")
    return lines


def containerd_section() -> list[str]:
    lines = ["## containerd 1.6 with ctr", ""]
    found = False
    rows = []
    for r, label in (
        ("runc", "runc v2 shim + runc"),
        ("pyrunc", "runc v2 shim + pyrunc (BinaryName)"),
        ("pyrunc-shim", "containerd-shim-pyrunc-v2, pyrunc in-process"),
        ("pyrunc-shim-runc", "containerd-shim-pyrunc-v2 + runc (BinaryName, no CRI check)"),
    ):
        p = os.path.join(RES, f"containerd-{r}.txt")
        if not os.path.exists(p):
            continue
        found = True
        with open(p) as f:
            text = f.read().splitlines()
        checks = [ln for ln in text if ln.startswith(("PASS ", "FAIL "))]
        npass = sum(1 for ln in checks if ln.startswith("PASS "))
        fails = [ln[5:] for ln in checks if ln.startswith("FAIL ")]
        rows.append(f"| {label} | {npass} / {len(checks)} | {'; '.join(fails) or '-'} |")
        stamp = mtime(p)
    if not found:
        return lines + ["not run (conformance/run-containerd.sh)", ""]
    lines += [
        f"A private containerd ({first_line('containerd', '--version')}), run {stamp} with "
        "`conformance/run-containerd.sh`: containerd's runc shim, then our own shim "
        "(`io.containerd.pyrunc.v2`).",
        "",
        "| runtime | checks passed | failed |",
        "|---|---|---|",
        *rows,
        "",
    ]
    return lines


CLIENT_LINE = re.compile(r"^(podman|docker) (\S+) (PASS|FAIL|SKIP) ?(.*)$")


def read_clients(path: str) -> tuple[dict[tuple[str, str], tuple[str, str]], dict[str, str]]:
    """(client, scenario) -> (result, detail); and "harness:" facts (versions, times)."""
    rows: dict[tuple[str, str], tuple[str, str]] = {}
    facts: dict[str, str] = {}
    with open(path) as f:
        for ln in f.read().splitlines():
            m = CLIENT_LINE.match(ln)
            if m:
                rows[(m[1], m[2])] = (m[3], m[4])
            elif ln.startswith("harness: podman ") and ", storage " in ln:
                facts["podman"] = re.sub(r", runtime [^,]*", "", ln[len("harness: "):])
            elif ln.startswith("harness: dockerd "):
                facts["docker"] = re.sub(r", runtime [^,]*", "", ln[len("harness: "):])
            elif ln.startswith("harness: total "):
                facts["total"] = ln.split()[-1]
    return rows, facts


def clients_section() -> list[str]:
    lines = ["## podman and docker", ""]
    paths = {r: os.path.join(RES, f"clients-{r}.txt") for r in RUNTIMES}
    if not all(os.path.exists(p) for p in paths.values()):
        return lines + ["not run (conformance/run-clients.sh)", ""]
    data = {r: read_clients(p) for r, p in paths.items()}
    rows = {r: d[0] for r, d in data.items()}
    keys = list(dict.fromkeys(list(rows["runc"]) + list(rows["pyrunc"])))
    scen = list(dict.fromkeys(k[1] for k in keys))
    clients = [c for c in ("podman", "docker") if any(k[0] == c for k in keys)]
    facts = data["pyrunc"][1]

    def cell(r: str, c: str, sc: str) -> str:
        res = rows[r].get((c, sc), ("-", ""))[0]
        return {"PASS": "pass", "FAIL": "**FAIL**", "SKIP": "skip"}.get(res, res)

    lines += [
        f"Real clients driving each runtime, run {mtime(paths['pyrunc'])} with "
        "`conformance/run-clients.sh` (`harness/clients.sh`): "
        f"{facts.get('podman', 'podman')}; {facts.get('docker', 'dockerd')} with its own "
        "containerd. Each run is in private mount, net and PID namespaces with private state, "
        "network `none`, busybox image imported offline. Time for both clients: "
        f"runc {data['runc'][1].get('total', '?')}, pyrunc {facts.get('total', '?')}. "
        "Details per check in `results/clients-{runc,pyrunc}.txt`.",
        "",
        "| scenario | " + " | ".join(f"{c} runc | {c} pyrunc" for c in clients) + " |",
        "|---|" + "---|---|" * len(clients),
    ]
    for sc in scen:
        lines.append(f"| {sc} | " + " | ".join(
            f"{cell('runc', c, sc)} | {cell('pyrunc', c, sc)}" for c in clients) + " |")
    tot = []
    for c in clients:
        for r in ("runc", "pyrunc"):
            cnt = collections.Counter(v[0] for k, v in rows[r].items() if k[0] == c)
            tot.append(f"**{cnt['PASS']} / {cnt['FAIL']} / {cnt['SKIP']}**")
    lines.append("| **pass / fail / skip** | " + " | ".join(tot) + " |")
    lines.append("")
    lost = [k for k in keys if rows["runc"].get(k, ("",))[0] == "PASS"
            and rows["pyrunc"].get(k, ("",))[0] != "PASS"]
    gained = [k for k in keys if rows["pyrunc"].get(k, ("",))[0] == "PASS"
              and rows["runc"].get(k, ("",))[0] != "PASS"]
    if lost:
        lines.append("runc passes, pyrunc does not:")
        lines += [f"- {c} {sc}: {rows['pyrunc'].get((c, sc), ('missing', ''))[1]}"[:400]
                  for c, sc in lost]
        lines.append("")
    if gained:
        lines.append("pyrunc passes, runc does not:")
        lines += [f"- {c} {sc}: runc: {rows['runc'].get((c, sc), ('missing', ''))[1]}"[:400]
                  for c, sc in gained]
        lines.append("")
    both_fail = [k for k in keys if rows["runc"].get(k, ("",))[0] == "FAIL"
                 and rows["pyrunc"].get(k, ("",))[0] == "FAIL"]
    if both_fail:
        lines.append("Both fail:")
        lines += [f"- {c} {sc}: {rows['runc'][(c, sc)][1]}"[:400] for c, sc in both_fail]
        lines.append("")
    skipped = [k for k in keys if rows["runc"].get(k, ("",))[0] == "SKIP"]
    if skipped:
        lines.append("Skipped (the reason each gives):")
        lines += [f"- {c} {sc}: {rows['runc'][(c, sc)][1]}"[:400] for c, sc in skipped]
        lines.append("")
    return lines


def spec_section() -> list[str]:
    data = {}
    for r in RUNTIMES:
        p = os.path.join(RES, f"spec-{r}.json")
        if os.path.exists(p):
            with open(p) as f:
                data[r] = json.load(f)
    lines = ["## OCI runtime-spec conformance (this project's tests)", ""]
    if "pyrunc" not in data:
        return lines + ["not run (conformance/run-spec.sh)", ""]
    lines += [
        f"`tests/integration/spec/`: one test per MUST of the runtime spec this machine can "
        f"exercise, each naming its section; run {mtime(os.path.join(RES, 'spec-pyrunc.json'))} "
        "with `conformance/run-spec.sh` (and `RUNTIME=runc conformance/run-spec.sh`).",
        "",
        "| spec section | tests | pyrunc pass / fail / skip | runc pass / fail / skip |",
        "|---|---|---|---|",
    ]
    per: dict[str, dict[str, collections.Counter]] = {}
    for r, items in data.items():
        for it in items:
            sec = it.get("section", "?").split("#")[0]
            per.setdefault(sec, {}).setdefault(r, collections.Counter())[it["outcome"]] += 1
    tot = {r: collections.Counter() for r in data}
    for sec in sorted(per):
        cells = []
        for r in RUNTIMES:
            c = per[sec].get(r)
            if c is None:
                cells.append("not run")
                continue
            tot[r].update(c)
            cells.append(f"{c['passed']} / {c['failed'] + c['xfailed']} / {c['skipped']}")
        n = sum(per[sec]["pyrunc"].values())
        lines.append(f"| {sec} | {n} | {cells[0]} | {cells[1]} |")
    cells = [
        f"**{tot[r]['passed']} / {tot[r]['failed'] + tot[r]['xfailed']} / {tot[r]['skipped']}**"
        if r in tot else "not run"
        for r in RUNTIMES
    ]
    lines.append(f"| **total** | **{len(data['pyrunc'])}** | {cells[0]} | {cells[1]} |")
    lines.append("")
    for r in RUNTIMES:
        bad = [it for it in data.get(r, []) if it["outcome"] in ("failed", "xfailed")]
        if bad:
            lines.append(f"{r} fails:")
            lines += [f"- `{it['test'].split('::')[-1]}` ({it['section']}): "
                      f"{it.get('reason') or it.get('requirement', '')}"[:300] for it in bad]
            lines.append("")
    skipped = [it for it in data["pyrunc"] if it["outcome"] == "skipped"]
    if skipped:
        lines.append("Skipped here (the reason each test gives):")
        lines += [f"- `{it['test'].split('::')[-1]}`: {it.get('reason', '')}"[:300]
                  for it in skipped]
        lines.append("")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(HERE, "RESULTS.md"))
    a = ap.parse_args()
    pyrunc = os.path.join(HERE, "..", ".venv", "bin", "pyrunc")
    head = [
        "# Conformance results",
        "",
        "Generated by `conformance/report.py` from the files in `conformance/results/` "
        "(`conformance/run-all.sh` reruns everything, ~20 minutes, as root).",
        "",
        f"- report written: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        f"- kernel: {os.uname().release} ({os.uname().machine}); cgroups: "
        + ("v2 only" if not os.path.exists("/sys/fs/cgroup/unified") and os.path.exists(
            "/sys/fs/cgroup/cgroup.controllers")
           else "v1 hybrid (cgroup2 at /sys/fs/cgroup/unified)"),
        f"- pyrunc: {first_line(pyrunc, '--version') if os.path.exists(pyrunc) else '?'}",
        f"- runc: {first_line('runc', '--version')}",
        f"- crun: {first_line('crun', '--version')}",
        f"- containerd: {first_line('containerd', '--version')}",
        f"- bats: {first_line('bats', '--version')}",
        f"- podman: {first_line('podman', '--version')}; conmon: "
        f"{first_line('conmon', '--version')}",
        f"- docker: {first_line('/usr/bin/docker', '--version')}",
        "",
    ]
    body = (spec_section() + bats_section() + rootless_bats_section() + containerd_section()
            + clients_section())
    with open(a.out, "w") as f:
        f.write("\n".join(head + body).rstrip() + "\n")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
