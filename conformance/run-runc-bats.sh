#!/bin/bash
# runc 1.1.5's own bats integration suite (Debian's source package: fetched with apt-get
# source, helpers built with Debian's Go packages, images made offline from busybox) against
# runc and pyrunc, side by side. Writes conformance/results/runc-bats-{runc,pyrunc}.{tap,tsv}.
# usage: conformance/run-runc-bats.sh [FILE.bats ...]   (default: every file; as root)
#   env PYRUNC (default .venv/bin/pyrunc), RUNC (default runc on PATH), OUT (raw output dir)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/.."
[ -n "${PYRUNC:-}" ] || [ -x .venv/bin/pyrunc ] || ./scripts/setup.sh
pyrunc=${PYRUNC:-$PWD/.venv/bin/pyrunc}
runc=${RUNC:-$(command -v runc || echo /usr/sbin/runc)}
out=${OUT:-/var/tmp/pyrunc-conformance}
mkdir -p "$out" "$here/results"
"$here/harness/runc-bats.sh" "$runc" "$out/runc.tap" "$@" || true
"$here/harness/runc-bats.sh" -n "$pyrunc" "$out/pyrunc.tap" "$@" || true
for r in runc pyrunc; do
	cp "$out/$r.tap" "$here/results/runc-bats-$r.tap"
	cp "$out/$r.tsv" "$here/results/runc-bats-$r.tsv"
done
"$here/harness/runc-bats-compare.sh" "$here/results/runc-bats-runc.tsv" \
	"$here/results/runc-bats-pyrunc.tsv" | tee "$here/results/runc-bats-compare.txt"
