#!/bin/bash
# runc 1.1.5's own bats integration tests against pyrunc and runc, side by side.
# usage: conformance/run-runc-bats.sh [FILE.bats ...]   (default: the core issue's 22 files)
# Needs ../shared/harness (this project's checkout layout) and root.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
harness=${HARNESS:-$here/../../shared/harness}
pyrunc=${PYRUNC:-$(command -v pyrunc || echo "$here/../.venv/bin/pyrunc")}
files=("$@")
if [ ${#files[@]} -eq 0 ]; then
	for f in create start start_detached start_hello state delete kill list spec run root cwd \
		umask dev mask mounts hooks no_pivot tty help version debug; do files+=("$f.bats"); done
fi
out=${OUT:-/var/tmp/pyrunc-conformance}
mkdir -p "$out"
"$harness/runc-bats.sh" "$(command -v runc)" "$out/runc.tap" "${files[@]}"
"$harness/runc-bats.sh" "$pyrunc" "$out/pyrunc.tap" "${files[@]}"
"$harness/runc-bats-compare.sh" "$out/runc.tsv" "$out/pyrunc.tsv"
