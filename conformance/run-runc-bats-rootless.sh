#!/bin/bash
# runc 1.1.5's own bats integration suite run as an unprivileged user, the way runc's
# tests/rootless.sh runs it, against runc and pyrunc: for each feature set of rootless.sh's
# powerset of {idmap, cgroup} (none, cgroup, idmap, idmap+cgroup) it sets up what rootless.sh
# sets up, then runs the files as user `rootless` with ROOTLESS_FEATURES set
# (harness/runc-bats.sh -u rootless: same watchdog, per-command timeout and cleanup as the
# root run).
#
# usage: conformance/run-runc-bats-rootless.sh [FILE.bats ...]     (as root)
#   env RUNC      runc binary (default /usr/sbin/runc)
#       PYRUNC    pyrunc binary, executable by user rootless (default: a venv at PYRUNC_VENV,
#                 /var/tmp/pyrunc-rootless-venv, built from git revision PYRUNC_REF, default
#                 HEAD of this tree; rebuilt when the revision changes). PYRUNC=/work/main/.venv/bin/pyrunc
#                 tests what is installed in a tree's .venv instead (uncommitted work included)
#       RUNTIMES  which runtimes, in order (default "runc pyrunc")
#       FEATURES  feature sets: "all" (default) or some of none, cgroup, idmap, idmap+cgroup
#                 (space or comma separated)
#       OUT       raw output (default /var/tmp/pyrunc-conformance/rootless): OUT/RUNTIME/SET.{tap,tsv,d/}
#       RUNC_BATS_TIMEOUT, RUNC_BATS_CMD_TIMEOUT: per-file / per-command timeouts (600 s, 120 s)
# e.g. FEATURES=idmap RUNTIMES=pyrunc conformance/run-runc-bats-rootless.sh exec.bats
#
# A run of every file and every feature set writes conformance/results/runc-bats-rootless-RUNTIME.{tap,tsv}
# (tests named "[SET] file.bats: test"), and, once both exist, runc-bats-rootless-compare.txt
# (harness/runc-bats-compare.sh, runc the baseline). A partial run leaves results/ alone: its
# TAP/TSV and a comparison with the runc baseline's matching rows (when there is one) are in OUT.
#
# What rootless.sh does, and what this does instead on a shared machine:
#   - user rootless: created here if missing (home, own group) and kept; it must be dedicated to
#     this harness (runc-bats.sh -u refuses to start if it runs anything, and kills by pid what
#     it runs, or what runs in user namespaces it owns, after each file);
#   - idmap: rootless.sh writes rootless:100000:65536 / rootless:200000:65536 into
#     /etc/sub{u,g}id and exports ROOTLESS_{UID,GID}MAP_{START,LENGTH}, AUX_UID and an AUX_DIR
#     owned by the mapped AUX_UID; so does this. Without idmap, rootless.sh moves /etc/subuid,
#     /etc/subgid and /usr/bin/new{u,g}idmap away; this only drops the rootless lines and gives
#     the tests a PATH on which newuidmap/newgidmap do not exist (runc finds them with
#     exec.LookPath; a PATH directory holding them is replaced by a directory of symlinks to
#     everything else in it). Both files are put back as they were at the end;
#   - cgroup: the same delegation as rootless.sh (the v1 controllers of /proc/self/cgroup get
#     /sys/fs/cgroup/CTRL/runc-cgroups-integration-test, group rootless, g+rwx; on a cgroup v2
#     host the v2 dir too); removed after each set. On this hybrid host rootless.sh delegates
#     nothing in /sys/fs/cgroup/unified, nor does this (runc ignores a failure to join it);
#   - sudo -HE -u rootless PATH=$PATH bats -t: runuser-free setpriv with rootless's uid, gid and
#     groups, HOME/USER/LOGNAME set, the environment kept; PATH is the standard one
#     (root's may hold directories rootless cannot read); XDG_RUNTIME_DIR is a private
#     /run/user/UID made here and removed at the end (the tests pass --root, so runc's default
#     rootless root $XDG_RUNTIME_DIR/runc is not used).
# One run at a time (the lock of harness/runc-bats.sh, held for the whole run).
set -uo pipefail
PROG=$(basename "$0")
die() { echo "$PROG: error: $*" >&2; exit 2; }
log() { echo "[$PROG $(date +%H:%M:%S)] $*" >&2; }

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
harness=$here/harness/runc-bats.sh
[ "$(id -u)" = 0 ] || die "must run as root (it sets up the user, sub[ug]id and cgroups)"

RL_USER=rootless
WORK=${RUNC_BATS_WORKDIR:-/var/tmp/runc-bats-work}
OUT=${OUT:-/var/tmp/pyrunc-conformance/rootless}
RUNTIMES=${RUNTIMES:-runc pyrunc}
PYRUNC_VENV=${PYRUNC_VENV:-/var/tmp/pyrunc-rootless-venv}
PYRUNC_REF=${PYRUNC_REF:-HEAD}
TEST_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
CG_PATH=/runc-cgroups-integration-test
FILES=("$@")

# feature sets, in rootless.sh's order (its powerset "{,idmap+}{,cgroup+}" sorted by bash)
ALL_SETS=(none cgroup idmap idmap+cgroup)
SETS=()
want=${FEATURES:-all}
want=${want//,/ }
for s in $want; do
	case $s in
	all) SETS=("${ALL_SETS[@]}") ;;
	none | "") ;;
	cgroup+idmap) want+=" idmap+cgroup" ;;
	idmap | cgroup | idmap+cgroup) ;;
	*) die "unknown feature set '$s' (none, cgroup, idmap, idmap+cgroup, all)" ;;
	esac
done
if [ ${#SETS[@]} -eq 0 ]; then
	for s in "${ALL_SETS[@]}"; do
		[[ " $want " == *" $s "* ]] && SETS+=("$s")
	done
fi
[ ${#SETS[@]} -gt 0 ] || die "no feature set selected (FEATURES='${FEATURES:-}')"
FULL=0
[ ${#FILES[@]} -eq 0 ] && [ ${#SETS[@]} -eq ${#ALL_SETS[@]} ] && FULL=1

# ---------------------------------------------------------------------------------------------
# state to put back
# ---------------------------------------------------------------------------------------------
STATE=""
XDG_MADE=""
AUX_MADE=""
CHILD=""
V2_SAVED=()
mounts_before=$(grep -c . /proc/self/mountinfo)

# sub_lock FILE / sub_unlock FILE: the lock shadow's tools (useradd, usermod, userdel) take
# before they rewrite FILE: FILE.lock, a hard link to a file holding the locker's pid
sub_lock() {
	local f=$1 pid _
	printf '%s' $$ >"$f.$$"
	for _ in $(seq 100); do
		if ln "$f.$$" "$f.lock" 2>/dev/null; then
			rm -f "$f.$$"
			return 0
		fi
		pid=$(cat "$f.lock" 2>/dev/null)
		if [[ "$pid" =~ ^[0-9]+$ ]] && ! kill -0 "$pid" 2>/dev/null; then
			rm -f "$f.lock" # stale
			continue
		fi
		sleep 0.1
	done
	rm -f "$f.$$"
	log "WARNING: $f.lock held by pid ${pid:-?} for 10 s: writing $f without it"
	return 1
}
sub_unlock() { rm -f "$1.lock"; }

# Only user rootless's lines are ever touched: others (another user's, written by useradd or
# by another test meanwhile) are left as they are at the time of each write.
# write_sub FILE: FILE's other lines as they are now, then stdin's lines (FILE is locked)
write_sub() {
	local f=$1 t
	t=$(mktemp "$f.runc-bats.XXXXXX")
	{
		[ -e "$f" ] && grep -v "^$RL_USER:" "$f"
		cat
	} >"$t"
	if [ -e "$f" ]; then
		chmod --reference="$f" "$t"
		chown --reference="$f" "$t"
	else
		chmod 0644 "$t"
	fi
	mv -f "$t" "$f"
}

# set_sub FILE [LINE]: user rootless's lines in FILE are LINE only (none without), as
# rootless.sh writes them
set_sub() {
	local f=$1 line=${2:-} b locked=0
	b="$STATE/$(basename "$f")"
	sub_lock "$f" && locked=1
	if [ ! -e "$b.saved" ]; then
		if [ -e "$f" ]; then cp -p "$f" "$b.orig"; else rm -f "$b.orig"; fi
		touch "$b.saved"
	fi
	if [ -n "$line" ]; then echo "$line"; fi | write_sub "$f"
	if [ -n "$line" ]; then echo "$line"; fi >"$b.want"
	[ $locked = 1 ] && sub_unlock "$f"
	return 0
}

# sub_changed: the files whose rootless lines are no longer what set_sub wrote (another process
# rewrote them during a run: the idmap results are then not to be trusted)
sub_changed() {
	local f b
	for f in /etc/subuid /etc/subgid; do
		b="$STATE/$(basename "$f")"
		[ -e "$b.want" ] || continue
		[ "$(grep -s "^$RL_USER:" "$f")" = "$(cat "$b.want")" ] || echo "$f"
	done
}

# restore_sub FILE: user rootless's lines as they were before the run; byte for byte the file
# it was if its other lines did not change meanwhile
restore_sub() {
	local f=$1 b t locked=0
	b="$STATE/$(basename "$f")"
	[ -e "$b.saved" ] || return 0
	sub_lock "$f" && locked=1
	if [ ! -e "$b.orig" ]; then
		if ! grep -qsv "^$RL_USER:" "$f"; then
			rm -f "$f"
		else
			write_sub "$f" </dev/null
		fi
	elif [ "$(grep -sv "^$RL_USER:" "$f")" = "$(grep -v "^$RL_USER:" "$b.orig")" ]; then
		t=$(mktemp "$f.runc-bats.XXXXXX")
		cp -p "$b.orig" "$t" && mv -f "$t" "$f"
	else
		log "$f: other users' lines changed during the run (kept); $RL_USER's put back"
		grep "^$RL_USER:" "$b.orig" | write_sub "$f"
	fi
	[ $locked = 1 ] && sub_unlock "$f"
	rm -f "$b.saved" "$b.want" "$b.orig"
}

# ---------------------------------------------------------------------------------------------
# features (rootless.sh's enable_*/disable_* hooks)
# ---------------------------------------------------------------------------------------------
# PATH without newuidmap/newgidmap: each PATH dir that holds one is replaced by a dir of
# symlinks to everything else in it
NOIDMAP_PATH=""
make_noidmap_path() {
	local shadow="$STATE/path-noidmap" d real n=0 e p=()
	mkdir -p "$shadow"
	chmod 0755 "$STATE" "$shadow"
	local IFS=:
	for d in $TEST_PATH; do
		if [ -e "$d/newuidmap" ] || [ -e "$d/newgidmap" ]; then
			real=$(realpath "$d")
			n=$((n + 1))
			mkdir -p "$shadow/$n"
			for e in "$real"/* "$real"/.[!.]*; do
				[ -e "$e" ] || [ -L "$e" ] || continue
				case ${e##*/} in newuidmap | newgidmap) continue ;; esac
				ln -s "$e" "$shadow/$n/${e##*/}"
			done
			p+=("$shadow/$n")
		else
			p+=("$d")
		fi
	done
	NOIDMAP_PATH="${p[*]}"
}

enable_idmap() {
	export ROOTLESS_UIDMAP_START=100000 ROOTLESS_UIDMAP_LENGTH=65536
	export ROOTLESS_GIDMAP_START=200000 ROOTLESS_GIDMAP_LENGTH=65536
	set_sub /etc/subuid "$RL_USER:$ROOTLESS_UIDMAP_START:$ROOTLESS_UIDMAP_LENGTH"
	set_sub /etc/subgid "$RL_USER:$ROOTLESS_GIDMAP_START:$ROOTLESS_GIDMAP_LENGTH"
	export PATH=$TEST_PATH
	# cwd.bats: a dir owned by AUX_UID inside the container (1000 is the containerID of
	# runc_rootless_idmap's uid mapping), which rootless itself cannot read
	export AUX_UID=1024
	AUX_DIR=$(mktemp -d /tmp/runc-bats-aux.XXXXXX)
	AUX_MADE=$AUX_DIR
	chown "$((ROOTLESS_UIDMAP_START - 1000 + AUX_UID))" "$AUX_DIR"
	export AUX_DIR
}

disable_idmap() {
	unset ROOTLESS_UIDMAP_START ROOTLESS_UIDMAP_LENGTH ROOTLESS_GIDMAP_START ROOTLESS_GIDMAP_LENGTH
	unset AUX_UID AUX_DIR
	set_sub /etc/subuid
	set_sub /etc/subgid
	[ -n "$NOIDMAP_PATH" ] || make_noidmap_path
	export PATH=$NOIDMAP_PATH
}

cleanup_idmap() {
	if [ -n "$AUX_MADE" ]; then
		rmdir "$AUX_MADE" 2>/dev/null || rm -rf --one-file-system "$AUX_MADE"
		AUX_MADE=""
	fi
	unset AUX_UID AUX_DIR
}

# the v1 controllers (and name= hierarchies) this script is in, split as rootless.sh does
mapfile -t ALL_CGROUPS < <(cut -d: -f2 </proc/self/cgroup | sed -E '{s/^name=//;s/,/\n/;/^$/D}')

enable_cgroup() {
	local cg d f
	for cg in "${ALL_CGROUPS[@]}"; do
		d=/sys/fs/cgroup/$cg$CG_PATH
		mkdir -p "$d" || continue
		chown root:"$RL_USER" "$d" "$d/cgroup.procs" "$d/tasks"
		chmod g+rwx "$d" "$d/cgroup.procs" "$d/tasks"
		if [ "$cg" = cpuset ]; then
			chown "$RL_USER:$RL_USER" "$d/cpuset.cpus" "$d/cpuset.mems"
		fi
		if [ "$cg" = cpu ]; then
			for f in cpu.rt_period_us cpu.rt_runtime_us; do
				[ -e "$d/$f" ] && chown "$RL_USER:$RL_USER" "$d/$f"
			done
		fi
	done
	# cgroup v2 (not this hybrid host): rootless.sh also opens the root's cgroup.procs to the
	# group; its owner and mode are put back by disable_cgroup
	if [ -e /sys/fs/cgroup/cgroup.controllers ]; then
		local ctrls=()
		read -ra ctrls </sys/fs/cgroup/cgroup.controllers
		for f in "${ctrls[@]}"; do
			echo "+$f" >/sys/fs/cgroup/cgroup.subtree_control 2>/dev/null
		done
		d=/sys/fs/cgroup$CG_PATH
		mkdir -p "$d"
		V2_SAVED=("$(stat -c '%u:%g %a' /sys/fs/cgroup/cgroup.procs)")
		chown root:"$RL_USER" "$d" "$d/cgroup.subtree_control" "$d/cgroup.procs" /sys/fs/cgroup/cgroup.procs
		chmod g+rwx "$d"
		chmod g+rw "$d/cgroup.subtree_control" "$d/cgroup.procs" /sys/fs/cgroup/cgroup.procs
	fi
	return 0
}

disable_cgroup() {
	local cg d
	for cg in "${ALL_CGROUPS[@]}" ""; do
		d=/sys/fs/cgroup/$cg$CG_PATH
		d=${d//\/\//\/}
		[ -d "$d" ] || continue
		# (the test cgroups below it are empty once the harness killed what was left)
		find "$d" -depth -type d -exec rmdir {} + 2>/dev/null ||
			log "WARNING: could not remove $d: $(find "$d" -type d | head -3 | tr '\n' ' ')"
	done
	if [ ${#V2_SAVED[@]} -gt 0 ]; then
		chown "${V2_SAVED[0]% *}" /sys/fs/cgroup/cgroup.procs
		chmod "${V2_SAVED[0]#* }" /sys/fs/cgroup/cgroup.procs
		V2_SAVED=()
	fi
	return 0
}

# what the tests rely on, checked by the harness after each file (RUNC_BATS_ENV_CHECK): on a
# shared machine another process may rewrite /etc/sub[ug]id or remove the delegated cgroups
# shellcheck disable=SC2016 # (the $ in the printf formats are the generated script's)
make_env_check() { # make_env_check SET
	local chk="$STATE/envcheck.sh" f b cg d want
	{
		echo '#!/bin/bash'
		echo "# generated by $PROG for [$1]: prints what is no longer as set up"
		for f in /etc/subuid /etc/subgid; do
			b="$STATE/$(basename "$f").want"
			want=$(cat "$b" 2>/dev/null)
			printf 'h=$(grep -s %q %q)\n' "^$RL_USER:" "$f"
			printf '[ "$h" = %q ] || echo "%s: %s lines now ${h:-none}, not %s;"\n' \
				"$want" "$f" "$RL_USER" "${want:-none}"
		done
		if [[ $1 == *cgroup* ]]; then
			for cg in "${ALL_CGROUPS[@]}"; do
				d=/sys/fs/cgroup/$cg$CG_PATH
				printf '[ "$(stat -c %%G %q 2>/dev/null)" = %q ] || echo "%s: removed or no longer delegated;"\n' "$d" "$RL_USER" "$d"
			done
		fi
	} >"$chk"
	chmod 0700 "$chk"
	export RUNC_BATS_ENV_CHECK
	RUNC_BATS_ENV_CHECK=$(printf 'bash %q' "$chk")
}

# ---------------------------------------------------------------------------------------------
cleanup() {
	trap '' INT TERM HUP
	if [ -n "$CHILD" ] && kill -0 "$CHILD" 2>/dev/null; then
		log "stopping the harness (pid $CHILD); it cleans up after itself"
		kill -TERM "$CHILD" 2>/dev/null
		wait "$CHILD" 2>/dev/null
	fi
	CHILD=""
	cleanup_idmap
	disable_cgroup
	if [ -n "$STATE" ]; then
		restore_sub /etc/subuid
		restore_sub /etc/subgid
		rm -rf "$STATE"
	fi
	if [ -n "$XDG_MADE" ]; then
		rm -rf --one-file-system "$XDG_MADE"
		XDG_MADE=""
	fi
}
on_signal() {
	log "interrupted"
	cleanup
	trap - EXIT
	exit 130
}

check_clean() { # after the run: what a rootless run could have left on the machine
	local uid left=() p
	uid=$(id -u "$RL_USER")
	# (zombies: killed, waiting for pid 1, which reaps them lazily here)
	for _ in $(seq 15); do
		p=$(ps -e -o pid=,uid=,stat= | awk -v u="$uid" '$2 == u {printf "%s%s ", $1, ($3 ~ /^Z/ ? "(zombie)" : "")}')
		[ -z "$p" ] && break
		sleep 1
	done
	[ -n "$p" ] && left+=("processes of $RL_USER: $p")
	for p in /sys/fs/cgroup/*"$CG_PATH" /sys/fs/cgroup"$CG_PATH"; do
		[ -e "$p" ] && left+=("cgroup $p")
	done
	grep -q "^$RL_USER:" /etc/subuid /etc/subgid 2>/dev/null && [ -z "$RL_SUB_BEFORE" ] &&
		left+=("$RL_USER lines in /etc/sub[ug]id")
	[ "$(grep -c . /proc/self/mountinfo)" = "$mounts_before" ] ||
		left+=("mounts: $mounts_before before, $(grep -c . /proc/self/mountinfo) after")
	[ -e "/run/user/$uid" ] && [ -z "$XDG_EXISTED" ] && left+=("/run/user/$uid")
	if [ ${#left[@]} -eq 0 ]; then
		log "machine clean: no $RL_USER process, no $CG_PATH cgroup, /etc/sub[ug]id as before, $mounts_before mounts as before"
	else
		log "WARNING: left behind: $(printf '%s; ' "${left[@]}")"
	fi
}

# ---------------------------------------------------------------------------------------------
# pyrunc: a venv the rootless user can run, built from a git revision of this tree
# ---------------------------------------------------------------------------------------------
pyrunc_venv() {
	local rev src
	rev=$(git -C "$top" rev-parse --verify "$PYRUNC_REF^{commit}") || die "no git revision $PYRUNC_REF in $top"
	if [ -x "$PYRUNC_VENV/bin/pyrunc" ] && [ "$(cat "$PYRUNC_VENV/.pyrunc-rev" 2>/dev/null)" = "$rev" ]; then
		return 0
	fi
	log "building $PYRUNC_VENV from $PYRUNC_REF ($rev)"
	src=$(mktemp -d /var/tmp/pyrunc-src.XXXXXX)
	git -C "$top" archive "$rev" | tar -x -C "$src" || die "git archive $rev failed"
	[ -x "$PYRUNC_VENV/bin/python" ] || /usr/bin/python3 -m venv "$PYRUNC_VENV" || die "python3 -m venv failed"
	# --force-reinstall --no-deps: the same version number from another revision; then
	# the dependencies (pip checks them, installs what is missing)
	local plog=$PYRUNC_VENV/.pip.log
	if ! "$PYRUNC_VENV/bin/pip" install -q --disable-pip-version-check --force-reinstall --no-deps "$src" >"$plog" 2>&1 ||
		! "$PYRUNC_VENV/bin/pip" install -q --disable-pip-version-check "$src" >>"$plog" 2>&1; then
		rm -rf "$src"
		cat "$plog" >&2
		die "pip install of pyrunc into $PYRUNC_VENV failed"
	fi
	rm -rf "$src"
	# as scripts/setup.sh: no setuptools .pth imported at every interpreter start
	if compgen -G "$PYRUNC_VENV/lib/python3*/site-packages/distutils-precedence.pth" >/dev/null; then
		"$PYRUNC_VENV/bin/pip" uninstall -y -q --disable-pip-version-check setuptools >>"$plog" 2>&1
	fi
	chmod -R a+rX "$PYRUNC_VENV"
	echo "$rev" >"$PYRUNC_VENV/.pyrunc-rev"
}

# ---------------------------------------------------------------------------------------------
# aggregate the per-set results of one runtime: [SET] before each test's file name
# ---------------------------------------------------------------------------------------------
aggregate() { # aggregate RUNTIME_NAME DIR OUTPREFIX
	local rt=$1 dir=$2 out=$3 s n=0 tot_p=0 tot_f=0 tot_s=0 sum=() p f k wall
	{
		printf 'file\ttest\tresult\tnote\n'
		for s in "${SETS[@]}"; do
			[ -f "$dir/$s.tsv" ] || continue
			awk -F'\t' -v OFS='\t' -v s="$s" 'FNR > 1 { $1 = "[" s "] " $1; print }' "$dir/$s.tsv"
		done
	} >"$out.tsv"
	for s in "${SETS[@]}"; do
		[ -f "$dir/$s.tap" ] || continue
		read -r p f k < <(awk -F'\t' 'FNR > 1 { c[$3]++ } END { print c["pass"] + 0, c["fail"] + 0, c["skip"] + 0 }' "$dir/$s.tsv")
		wall=$(sed -n 's/^# total wall time: //p' "$dir/$s.tap")
		sum+=("$(printf '[%s] %d passed, %d failed, %d skipped  %s' "$s" "$p" "$f" "$k" "${wall:-?}")")
		tot_p=$((tot_p + p)) tot_f=$((tot_f + f)) tot_s=$((tot_s + k))
		n=$((n + p + f + k))
	done
	{
		echo "# runc 1.1.5's integration suite run rootless, as runc's tests/rootless.sh does (conformance/run-runc-bats-rootless.sh)"
		echo "# runtime: ${RT_BIN[$rt]}${RT_DESC[$rt]:-}; feature sets: ${SETS[*]}; per-set raw output: $dir/"
		echo "1..$n"
		n=0
		for s in "${SETS[@]}"; do
			[ -f "$dir/$s.tap" ] || continue
			echo "# ==== [$s] ROOTLESS_FEATURES='$(feat_env "$s")' ===="
			awk -v s="$s" -v n="$n" -v nfile="$dir/.n" '
				/^1\.\.[0-9]+$/ { next }
				/^[0-9]+ passed, / { print "# [" s "] " $0; next }
				/^ok [0-9]+ / { sub(/^ok [0-9]+ /, "ok " (++n) " [" s "] "); print; next }
				/^not ok [0-9]+ / { sub(/^not ok [0-9]+ /, "not ok " (++n) " [" s "] "); print; next }
				{ print }
				END { print n > nfile }' "$dir/$s.tap"
			n=$(cat "$dir/.n")
			rm -f "$dir/.n"
		done
		echo "# ==== per feature set ===="
		printf '# %s\n' "${sum[@]}"
		echo "$tot_p passed, $tot_f failed, $tot_s skipped"
	} >"$out.tap"
	log "$rt: $(printf '%s; ' "${sum[@]}")total $tot_p passed, $tot_f failed, $tot_s skipped"
}

feat_env() { # ROOTLESS_FEATURES as rootless.sh exports it: "", "cgroup+", "idmap+", "idmap+cgroup+"
	case $1 in none) echo "" ;; *) echo "$1+" ;; esac
}

# ---------------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------------
"$harness" -p -w "$WORK" >/dev/null || die "could not prepare the suite (harness/runc-bats.sh -p)"

# one run at a time (also of the venv build; runc-bats.sh's lock; the harness runs below know it is held)
exec 8>"$WORK/.run.lock"
if ! flock -n 8; then
	log "waiting for another runc-bats run to finish (lock $WORK/.run.lock)"
	flock 8 || die "cannot lock $WORK/.run.lock"
fi
export RUNC_BATS_LOCK_HELD=1

declare -A RT_BIN RT_DESC
for rt in $RUNTIMES; do
	case $rt in
	runc) RT_BIN[$rt]=${RUNC:-/usr/sbin/runc} ;;
	pyrunc)
		if [ -n "${PYRUNC:-}" ]; then
			RT_BIN[$rt]=$PYRUNC
		else
			pyrunc_venv
			RT_BIN[$rt]=$PYRUNC_VENV/bin/pyrunc
			RT_DESC[$rt]=" (built from $PYRUNC_REF = $(cat "$PYRUNC_VENV/.pyrunc-rev"))"
		fi
		;;
	*) die "unknown runtime '$rt' in RUNTIMES (runc, pyrunc)" ;;
	esac
done

if ! id "$RL_USER" >/dev/null 2>&1; then
	log "creating user $RL_USER"
	useradd -m -U -s /bin/bash "$RL_USER" || die "useradd $RL_USER failed"
fi
RL_UID=$(id -u "$RL_USER")
RL_SUB_BEFORE=$(grep -hs "^$RL_USER:" /etc/subuid /etc/subgid)

trap cleanup EXIT
trap on_signal INT TERM HUP
STATE=$(mktemp -d "$WORK/rootless.XXXXXX")

XDG_EXISTED=""
if [ -e "/run/user/$RL_UID" ]; then
	XDG_EXISTED=1
	XDG_RUNTIME_DIR=$(mktemp -d "/tmp/runc-bats-xdg.XXXXXX")
else
	mkdir -p /run/user
	XDG_RUNTIME_DIR=/run/user/$RL_UID
	mkdir -m 0700 "$XDG_RUNTIME_DIR"
fi
XDG_MADE=$XDG_RUNTIME_DIR
chown "$RL_UID:$(id -g "$RL_USER")" "$XDG_RUNTIME_DIR"
chmod 0700 "$XDG_RUNTIME_DIR"
export XDG_RUNTIME_DIR

t_start=$(date +%s)
for rt in $RUNTIMES; do
	dir=$OUT/$rt
	rm -rf "$dir"
	mkdir -p "$dir"
	t0=$(date +%s)
	for s in "${SETS[@]}"; do
		case $s in *idmap*) enable_idmap ;; *) disable_idmap ;; esac
		case $s in *cgroup*) enable_cgroup ;; *) disable_cgroup ;; esac
		make_env_check "$s"
		export ROOTLESS_FEATURES
		ROOTLESS_FEATURES=$(feat_env "$s")
		log "$rt [$s]: ROOTLESS_FEATURES='$ROOTLESS_FEATURES', newuidmap: $(command -v newuidmap || echo none on PATH)"
		"$harness" -n -w "$WORK" -u "$RL_USER" "${RT_BIN[$rt]}" "$dir/$s.tap" "${FILES[@]}" 8>&- &
		CHILD=$!
		wait "$CHILD"
		CHILD=""
		changed=$(sub_changed | tr '\n' ' ')
		if [ -n "$changed" ]; then
			log "WARNING: $RL_USER's lines in $changed were changed by another process during $rt [$s]: its results are not to be trusted"
			echo "env=WARNING: $RL_USER's lines in ${changed}were changed by another process during this run: results not to be trusted" >>"$dir/$s.d/.run.meta"
			"$harness" -R "$dir/$s.tap" >/dev/null
		fi
		cleanup_idmap
		disable_cgroup
	done
	export PATH=$TEST_PATH
	aggregate "$rt" "$dir" "$dir/all"
	log "$rt: $(($(date +%s) - t0))s"
done
cleanup
trap - EXIT INT TERM HUP
check_clean

# results: full runs into conformance/results/, comparison with runc
mkdir -p "$here/results"
for rt in $RUNTIMES; do
	if [ $FULL = 1 ]; then
		cp "$OUT/$rt/all.tap" "$here/results/runc-bats-rootless-$rt.tap"
		cp "$OUT/$rt/all.tsv" "$here/results/runc-bats-rootless-$rt.tsv"
	fi
done
base=$here/results/runc-bats-rootless-runc.tsv
[[ " $RUNTIMES " == *" runc "* ]] && base=$OUT/runc/all.tsv
if [[ " $RUNTIMES " == *" pyrunc "* ]] && [ -f "$base" ]; then
	if [ $FULL = 1 ] && [ -f "$here/results/runc-bats-rootless-runc.tsv" ]; then
		"$here/harness/runc-bats-compare.sh" "$here/results/runc-bats-rootless-runc.tsv" \
			"$here/results/runc-bats-rootless-pyrunc.tsv" | tee "$here/results/runc-bats-rootless-compare.txt"
	else
		# only the baseline's rows for the files and sets that ran
		awk -F'\t' 'NR == FNR { if (FNR > 1) ran[$1] = 1; next } FNR == 1 || ($1 in ran)' \
			"$OUT/pyrunc/all.tsv" "$base" >"$OUT/runc-baseline.tsv"
		"$here/harness/runc-bats-compare.sh" "$OUT/runc-baseline.tsv" "$OUT/pyrunc/all.tsv" |
			tee "$OUT/compare.txt"
	fi
fi
log "total $(($(date +%s) - t_start))s; results: $( [ $FULL = 1 ] && echo "$here/results/runc-bats-rootless-*" || echo "$OUT/*/all.{tap,tsv}")"
