#!/bin/bash
# The main job: a real container from a locally generated busybox bundle (no network).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
work=$(mktemp -d /tmp/pyrunc-demo.XXXXXX)
trap 'pyrunc --root "$work/state" delete -f demo >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
tools/make-busybox-bundle.sh "$work/bundle" pyrunc >/dev/null
cd "$work/bundle"
jq '.process.args = ["sh", "-c", "echo \"hello from pid $$ in $(hostname)\"; id; cat /proc/self/cgroup | head -3; ls /"]' \
	config.json >config.new && mv config.new config.json
pyrunc --root "$work/state" run demo
