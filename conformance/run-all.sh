#!/bin/bash
# Every conformance suite, for pyrunc and runc side by side, then conformance/RESULTS.md.
# ~20 minutes here (more the first time: runc's suite is fetched and built); not part of CI (.ci/run runs the fast tests only).
# usage: conformance/run-all.sh   (as root)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
"$here/run-spec.sh"
RUNTIME=$(command -v runc || echo /usr/sbin/runc) "$here/run-spec.sh"
"$here/run-containerd.sh"
"$here/run-clients.sh"
"$here/run-runc-bats.sh"
"$here/run-runc-bats-rootless.sh"
python3 "$here/report.py"
