#!/bin/bash
# containerd 1.6 (Debian's package, a private instance) driven with ctr: the stock runc v2 shim
# with runc, the same shim with BinaryName=pyrunc, then our own shim (io.containerd.pyrunc.v2)
# with pyrunc in-process and with BinaryName=runc. Writes conformance/results/containerd-
# {runc,pyrunc,pyrunc-shim,pyrunc-shim-runc}.txt ("PASS/FAIL name: detail" lines).
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
bindir=$(dirname "$pyrunc")  # containerd-shim-pyrunc-v2 is installed beside pyrunc
"$here/harness/containerd.sh" --path "$bindir" shim:pyrunc \
	>"$here/results/containerd-pyrunc-shim.txt" 2>&1 || true
opts=$(mktemp --suffix=.toml)
printf 'BinaryName = "%s"\n' "$(command -v runc)" >"$opts"
"$here/harness/containerd.sh" --no-cri --run-arg "--runtime-config-path=$opts" --path "$bindir" \
	shim:pyrunc >"$here/results/containerd-pyrunc-shim-runc.txt" 2>&1 || true
rm -f "$opts"
tail -n1 "$here"/results/containerd-*.txt
