#!/bin/bash
# The main job: a real container from a locally made busybox image (no network): pyctr makes
# busybox:local from the host's busybox-static on first use, unpacks it into an overlay
# snapshot and runs it through the pyrunc library (pyctr's default root /var/lib/pyctr).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
pyctr run --rm busybox:local demo sh -c \
	'echo "hello from pid $$ in $(hostname)"; id; head -3 /proc/self/cgroup; ls /'
