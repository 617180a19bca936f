#!/bin/bash
# Run inside conformance/harness/containerd.sh --exec (CTR, CTRD_IMG, CTRD_RUNTIME_ARGS set):
# 50 containers in one shim group (io.containerd.runc.v2.group), the shim's VmRSS printed
# after the 1st, 10th and 50th ("containers=N rss_kb=K"), then everything removed.
set -u
rss() { awk '/VmRSS/{print $2}' "/proc/$1/status"; }
shim_of() { awk '/^PPid/{print $2}' "/proc/$1/status"; }
pid_of() { $CTR task ls | awk -v id="$1" '$1==id{print $2}'; }
shim=""
for i in $(seq 50); do
	# shellcheck disable=SC2086
	$CTR run $CTRD_RUNTIME_ARGS --annotation io.containerd.runc.v2.group=bench -d \
		"$CTRD_IMG" "grp$i" sleep 1000 >/dev/null || { echo "run $i failed"; exit 1; }
	p=$(pid_of "grp$i")
	s=$(shim_of "$p")
	# runc's init is re-parented to the shim; pyrunc's in-process init is the shim's child
	[ -z "$shim" ] && shim=$s
	[ "$s" = "$shim" ] || { echo "grp$i is in another shim ($s, not $shim)"; exit 1; }
	case $i in 1 | 10 | 50) echo "containers=$i rss_kb=$(rss "$shim")" ;; esac
done
for i in $(seq 50); do $CTR task kill -s KILL "grp$i" >/dev/null 2>&1; done
sleep 1
for i in $(seq 50); do
	$CTR task rm "grp$i" >/dev/null 2>&1
	$CTR c rm "grp$i" >/dev/null 2>&1
done
exit 0
