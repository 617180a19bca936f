#!/bin/bash
# containerd 1.6 (Debian's package, a private instance) driven with ctr: the stock runc v2 shim
# with runc, then the same shim with BinaryName=pyrunc. Writes
# conformance/results/containerd-{runc,pyrunc}.txt ("PASS/FAIL name: detail" lines).
# Our own shim (io.containerd.pyrunc.v2) joins this list when it exists (a later issue).
# usage: conformance/run-containerd.sh   (as root; env PYRUNC as for run-runc-bats.sh)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/.."
[ -n "${PYRUNC:-}" ] || [ -x .venv/bin/pyrunc ] || ./scripts/setup.sh
pyrunc=${PYRUNC:-$PWD/.venv/bin/pyrunc}
command -v containerd >/dev/null || { apt-get update -qq && apt-get install -y -qq containerd; }
mkdir -p "$here/results"
"$here/harness/containerd.sh" runc >"$here/results/containerd-runc.txt" 2>&1 || true
"$here/harness/containerd.sh" "runc:$pyrunc" >"$here/results/containerd-pyrunc.txt" 2>&1 || true
tail -n1 "$here/results/containerd-runc.txt" "$here/results/containerd-pyrunc.txt"
