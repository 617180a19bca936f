#!/bin/bash
# The OCI runtime-spec conformance tests (tests/integration/spec) against one runtime, as a report.
# usage: conformance/run-spec.sh [PYTEST ARGS...]            -> conformance/results/spec-pyrunc.json
#        RUNTIME=/usr/sbin/runc conformance/run-spec.sh      -> conformance/results/spec-runc.json
# The runtime is $RUNTIME, else $PYRUNC, else .venv/bin/pyrunc. Needs root (real containers).
# Exits 0 when the tests ran, whatever they found; non-zero only if pytest itself failed
# (interrupted, internal or usage error, nothing collected).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/pytest ] || ./scripts/setup.sh
PYRUNC=${PYRUNC:-$PWD/.venv/bin/pyrunc}
runtime=${RUNTIME:-$PYRUNC}
name=$(basename "$runtime")
mkdir -p conformance/results
out=conformance/results/spec-$name.json
rc=0
PYRUNC=$runtime SPEC_JSON=$out .venv/bin/pytest -q -p no:cacheprovider -rfEx \
	tests/integration/spec "$@" || rc=$?
if [ "$rc" -ge 2 ]; then
	echo "run-spec: pytest failed to run (exit $rc)" >&2
	exit "$rc"
fi
.venv/bin/python - "$out" "$runtime" <<'PY'
import collections, json, sys
records = json.load(open(sys.argv[1]))
counts = collections.Counter(r["outcome"] for r in records)
print(f"{sys.argv[2]}: {len(records)} requirements checked: "
      + ", ".join(f"{counts[k]} {k}" for k in ("passed", "failed", "skipped")))
for r in records:
    if r["outcome"] == "failed":
        print(f"  FAILED {r['section']}: {r['test'].split('::')[-1]}: {r['reason']}")
print(f"report: {sys.argv[1]}")
PY
