#!/bin/bash
# Every benchmark, side by side (pyrunc, runc, crun): bench/results/bench.json and bench.png.
# usage: bench/run.sh [bench.py options]   (as root; see bench/bench.py -h)
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/pyrunc ] || ./scripts/setup.sh
need=(); command -v crun >/dev/null || need+=(crun); command -v containerd >/dev/null || need+=(containerd); [ -x /usr/bin/time ] || need+=(time)
[ ${#need[@]} -eq 0 ] || { apt-get update -qq && apt-get install -y -qq "${need[@]}"; }
.venv/bin/python -c 'import matplotlib' 2>/dev/null || .venv/bin/pip install -q matplotlib
exec .venv/bin/python bench/bench.py "$@"
