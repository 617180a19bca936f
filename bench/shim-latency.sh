#!/bin/bash
# Run inside conformance/harness/containerd.sh --exec (with --path holding our shim):
# `ctr run --rm IMAGE ID true` alternating between containerd's runc shim (+ runc) and
# containerd-shim-pyrunc-v2, N rounds (default 20, env SHIM_BENCH_N), one containerd.
# Prints "runc ms=..." and "pyrunc-shim ms=..." per run.
set -u
n=${SHIM_BENCH_N:-20}
for i in $(seq "$n"); do
	for rt in runc pyrunc-shim; do
		case $rt in
		runc) r=io.containerd.runc.v2 ;;
		*) r=io.containerd.pyrunc.v2 ;;
		esac
		t0=$(date +%s%N)
		$CTR run --runtime "$r" --rm "$CTRD_IMG" "lat-$rt-$i" true >/dev/null || {
			echo "$rt run $i failed"
			exit 1
		}
		t1=$(date +%s%N)
		echo "$rt ms=$(((t1 - t0) / 1000))e-3"
	done
done
