#!/bin/bash
# runc-bats-errors.sh RESULTS.tap [RUNTIME] -- why the failed tests of a runc-bats.sh run
# (or a run-runc-bats-rootless.sh aggregate) failed, grouped: for each "not ok" test, the
# first output line of its first runtime call that exited non-zero (the tests log each call
# as "NAME ARGS (status=N):" followed by its output; NAME is the basename of RUNTIME,
# default: the runtime named in the file's header), else the bats assertion that failed.
# Prints the distinct messages, most frequent first, with the tests that gave each.
# Digits, hex ids and the suite's temp paths are masked so that like messages group.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 RESULTS.tap [RUNTIME]" >&2; exit 2; }
name=${2:-}
if [ -z "$name" ]; then
	name=$(sed -n 's/^# runtime: \([^ ;]*\).*/\1/p' "$1" | head -1)
	name=$(basename "${name:-runc}")
fi
awk -v rt="$(basename "$name")" '
function flush() {
	if (test == "") return
	msg = err != "" ? err : (assert != "" ? "(assertion) " assert : "(no message)")
	key = msg
	gsub(/\/[^ :]*bats-run-[^ :]*/, "<tmp>", key)
	gsub(/\/var\/tmp\/runc-bats-work\/run\.[0-9]+[^ :]*/, "<tmp>", key)
	gsub(/time="[^"]*"/, "", key)
	gsub(/[0-9a-f]{12,}/, "<id>", key)
	gsub(/[0-9]+/, "N", key)
	sub(/^ +/, "", key)
	if (!(key in n)) order[++nk] = key
	n[key]++
	tests[key] = tests[key] "\n    " test
	test = ""
}
/^(not )?ok [0-9]+ / { flush() }
/^not ok [0-9]+ / {
	test = $0; sub(/^not ok [0-9]+ /, "", test)
	err = ""; assert = ""; want = 0
	next
}
test != "" && /^#/ {
	line = $0; sub(/^# ?/, "", line)
	if (want && err == "") {
		if (line ~ /^ *$/) next
		err = line; want = 0; next
	}
	if (err == "" && index(line, rt " ") == 1 && line ~ /\(status=[1-9][0-9]*\):$/) { want = 1; next }
	if (assert == "" && line ~ /^  `.*'"'"' failed/) assert = line
}
END {
	flush()
	# most frequent first
	for (i = 1; i <= nk; i++) for (j = i + 1; j <= nk; j++)
		if (n[order[j]] > n[order[i]]) { t = order[i]; order[i] = order[j]; order[j] = t }
	for (i = 1; i <= nk; i++) printf "%3d  %s%s\n\n", n[order[i]], order[i], tests[order[i]]
}' "$1"
