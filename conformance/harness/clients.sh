#!/bin/bash
# clients.sh - podman and docker driving one OCI runtime, each in private namespaces.
#
# Everything runs inside `unshare --mount --net --pid --fork --mount-proc` with tini as the
# namespace's PID 1: when the run ends, the kernel ends every process it started (daemons,
# conmon, shims, containers). Inside, /run is a fresh tmpfs, /etc and /var/lib are overlays
# whose upper dirs live under the run's state dir (so client defaults such as
# /etc/docker/key.json or /var/lib/containers/cache never reach the host), /sys/fs/cgroup is a
# private tmpfs with the host's hierarchies bound in (podman mkdirs unmounted controllers
# there), cgroup mounts outside /sys/fs/cgroup are dropped from view, lo is the only
# interface (no host interface or firewall is touched: --network none everywhere, dockerd
# with --bridge none --iptables=false), and podman and dockerd get private roots, run roots,
# sockets and config files under /var/tmp/clients-harness/<run-id>. Container cgroups go
# below /sys/fs/cgroup/<ctrl>/clients-<run-id>-{podman,docker}; they are thawed and removed
# at the end.
#
# Usage: clients.sh [options] RUNTIME
#
# RUNTIME   runc (/usr/sbin/runc: podman --runtime PATH, docker's built-in default runc)
#           pyrunc (this checkout's .venv/bin/pyrunc, or $PYRUNC)
#           /path/to/NAME (any runc-compatible binary; docker gets --add-runtime NAME=PATH)
#
# Options
#   --clients LIST   podman,docker (default both)
#   --only LIST      comma-separated scenarios (default all; names in the SCENARIOS line below)
#   --skip LIST      scenarios to leave out
#   --timeout S      bound on each client call (default 60)
#   --total S        bound on the whole run (default 1200); past it everything is killed
#   --failures DIR   for each failing scenario, write DIR/<client>-<scenario>/: transcript.log
#                    (every client call with its output), then rerun the scenario once with a
#                    capture wrapper in front of the runtime (same basename, so the clients
#                    treat it alike) that saves each config.json given to `create` and each
#                    process.json given to `exec`, plus the runtime's argv (argv.log)
#   --keep           keep the state dir (/var/tmp/clients-harness/<run-id>) afterwards
#   --exec CMD       after the scenarios of each client, run `bash -c CMD` inside (CLIENT,
#                    CLI, RUNARGS, IMG, BASE exported); `--only none --exec bash` = a shell
#   -v, --verbose    show every client call and its output on stderr
#   -h, --help
#
# Output: one line per check, "CLIENT SCENARIO PASS|FAIL|SKIP detail [seconds]"; the last
# line is "N passed, M failed, K skipped". Exit status 0 iff M == 0.

set -u
SELF=$(readlink -f "$0")
HERE=$(dirname "$SELF")
HARNESS_ROOT=/var/tmp/clients-harness
SCENARIOS="run exitcode stdin tty exec tmpfs tmpfs-imagedir read-only cap-drop-all cap-add-drop
seccomp-default seccomp-unconfined seccomp-i386 user-groups memory pids-limit cpu pause stop-timeout
healthcheck restart oom userns init env-workdir-hostname rm kill-signal wait top logs cp device
privileged volume ns-share pod update ulimit sysctl no-new-privileges exec-opts shm-size
oom-score-adj"
# (exec also reports exec-tty; top also reports ps; exec-opts also reports exec-stdin)

usage() { sed -n '2,/^# line is/{s/^# \{0,1\}//;p}' "$SELF"; }

RT_SPEC=""
CLIENTS="podman,docker"
ONLY=""
SKIP=""
TMO=60
TOTAL=1200
FAILDIR=""
KEEP=0
EXEC_CMD=""
VERBOSE=0
ORIG_ARGS=("$@")
while [ $# -gt 0 ]; do
    case "$1" in
        --clients) CLIENTS="$2"; shift 2 ;;
        --only) ONLY="$2"; shift 2 ;;
        --skip) SKIP="$2"; shift 2 ;;
        --timeout) TMO="$2"; shift 2 ;;
        --total) TOTAL="$2"; shift 2 ;;
        --failures) FAILDIR="$2"; shift 2 ;;
        --keep) KEEP=1; shift ;;
        --exec) EXEC_CMD="$2"; shift 2 ;;
        -v|--verbose) VERBOSE=1; shift ;;
        -h|--help) usage; exit 0 ;;
        -*) echo "unknown option $1" >&2; usage >&2; exit 2 ;;
        *) RT_SPEC="$1"; shift ;;
    esac
done
case "$RT_SPEC" in
    ""|runc) RT_PATH=$(command -v runc || echo /usr/sbin/runc) ;;
    pyrunc) RT_PATH=${PYRUNC:-$(cd "$HERE/../.." && pwd)/.venv/bin/pyrunc} ;;
    /*) RT_PATH=$RT_SPEC ;;
    *) echo "bad RUNTIME '$RT_SPEC'" >&2; exit 2 ;;
esac
RT_NAME=$(basename "$RT_PATH")
[ -x "$RT_PATH" ] || { echo "runtime $RT_PATH is not executable" >&2; exit 2; }

# ================================================================= outer side
if [ -z "${CLIENTS_HARNESS_BASE:-}" ]; then
    [ "$(id -u)" = 0 ] || { echo "must run as root" >&2; exit 2; }
    for t in unshare tini ip script jq busybox; do
        command -v "$t" >/dev/null || { echo "missing $t (conformance/run-clients.sh installs it)" >&2; exit 2; }
    done
    RUN_ID="$(date +%Y%m%d-%H%M%S)-$$"
    BASE="$HARNESS_ROOT/$RUN_ID"
    CG="clients-$RUN_ID"
    mkdir -p "$BASE"
    # thaw and empty our cgroups (a frozen task cannot die, which would hold up the end of
    # the PID namespace), then remove them
    reap_cgroups() {
        local d f pid
        for d in /sys/fs/cgroup/*/"$CG"-*; do
            [ -d "$d" ] || continue
            while read -r f; do
                grep -q THAWED "$f" 2>/dev/null || echo THAWED >"$f" 2>/dev/null
            done < <(find "$d" -name freezer.state 2>/dev/null)
            if [ "${1:-}" = kill ]; then
                while read -r f; do
                    while read -r pid; do [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null; done <"$f"
                done < <(find "$d" -name cgroup.procs 2>/dev/null)
            fi
        done
    }
    outer_cleanup() {
        local d
        reap_cgroups kill
        sleep 0.3
        for d in /sys/fs/cgroup/*/"$CG"-*; do
            [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
        done
        if [ "$KEEP" = 1 ]; then echo "harness: state kept in $BASE" >&2
        else rm -rf --one-file-system "$BASE"; rmdir "$HARNESS_ROOT" 2>/dev/null; fi
        true
    }
    trap outer_cleanup EXIT
    exec 3<&0
    CLIENTS_HARNESS_BASE="$BASE" CLIENTS_HARNESS_CG="$CG" CLIENTS_HARNESS_RUNID="$RUN_ID" \
        unshare --mount --net --pid --fork --mount-proc --propagation private --kill-child=SIGKILL \
        -- tini -- /bin/bash "$SELF" "${ORIG_ARGS[@]}" <&3 3<&- &
    INNER=$!
    trap 'kill -KILL "$INNER" 2>/dev/null' INT TERM HUP
    start=$SECONDS; killed=0
    while kill -0 "$INNER" 2>/dev/null; do
        if [ $((SECONDS - start)) -gt "$TOTAL" ] && [ "$killed" = 0 ]; then
            echo "harness: whole run over ${TOTAL}s, killing it" >&2
            echo "harness timeout FAIL killed after ${TOTAL}s"
            kill -KILL "$INNER" 2>/dev/null; killed=1
        fi
        [ "$killed" = 1 ] && reap_cgroups
        sleep 1
    done
    wait "$INNER"; rc=$?
    [ "$killed" = 1 ] && rc=1
    exit $rc
fi

# ================================================================= inner side
# (PID 1 is tini; we are its child, in private mount, net and PID namespaces)
BASE=$CLIENTS_HARNESS_BASE
CG=$CLIENTS_HARNESS_CG
RUN_ID=$CLIENTS_HARNESS_RUNID
PASSED=0; FAILED=0; SKIPPED=0
IMG_TAR="$BASE/busybox-rootfs.tar"
CAPTURE=0            # 1 while a failing scenario is rerun through the capture wrapper
CUR_FAILS=0
TRANSCRIPT=/dev/null
DOCKER_BIN=${DOCKER_BIN:-/usr/bin/docker}   # Debian's client (the one next to its dockerd)
export PATH=/usr/local/sbin:/usr/sbin:/sbin:/usr/local/bin:/usr/bin:/bin

mount -t tmpfs -o mode=0755,size=512m clients-run /run || { echo "cannot mount private /run" >&2; exit 1; }
mkdir -p /run/lock
for d in etc var/lib; do
    u="$BASE/overlay/${d//\//-}"
    mkdir -p "$u/upper" "$u/work"
    mount -t overlay "clients-$RUN_ID" -o "lowerdir=/$d,upperdir=$u/upper,workdir=$u/work" "/$d" ||
        { echo "cannot overlay /$d" >&2; exit 1; }
done
# /sys/fs/cgroup (cgroup v1) is a tmpfs of mount points, and podman's cgroupfs manager mkdirs
# every controller it knows (hugetlb, net_cls, perf_event, ...) there, mounted or not: give the
# namespace its own tmpfs with the host's hierarchies bound in, so such dirs stay private
# (cgroup mounts elsewhere, e.g. left over in some test's rootfs, are dropped from our view too:
# runtimes take the first cgroup mount of a controller in mountinfo)
awk '$9 ~ /^cgroup2?$/ && $5 !~ "^/sys/fs/cgroup(/|$)" {print $5}' /proc/self/mountinfo | sort -r |
    while read -r m; do umount -l "$(printf '%b' "$m")" 2>/dev/null; done
if [ "$(stat -f -c %T /sys/fs/cgroup)" = tmpfs ]; then
    hold="$BASE/cgroup-host"; mkdir -p "$hold"
    mount --rbind /sys/fs/cgroup "$hold" && umount -l /sys/fs/cgroup &&
        mount -t tmpfs -o mode=0755 clients-cgroup /sys/fs/cgroup || { echo "cannot make a private /sys/fs/cgroup" >&2; exit 1; }
    for d in "$hold"/*; do
        n=${d##*/}
        if [ -L "$d" ]; then cp -P "$d" "/sys/fs/cgroup/$n"
        elif mountpoint -q "$d"; then mkdir "/sys/fs/cgroup/$n" && mount --bind "$d" "/sys/fs/cgroup/$n"; fi
    done
    umount -l "$hold"
fi
ip link set lo up
# dockerd --userns-remap nobody:nogroup reads these (written into the /etc overlay, not the
# host's; docker refuses to remap root onto itself)
echo "nobody:100000:65536" >/etc/subuid
echo "nobody:100000:65536" >/etc/subgid   # docker looks both up by the user name
mkdir -p "$BASE/home" "$BASE/tmp" "$BASE/transcripts" "$BASE/capture" "$BASE/cwd"
cd "$BASE/cwd" || exit 1   # conmon writes its "oom" marker into its working directory
export SHELL=/bin/bash HOME="$BASE/home" TMPDIR="$BASE/tmp" XDG_RUNTIME_DIR=/run/user-0 XDG_CONFIG_HOME="$BASE/home/.config"
mkdir -p "$XDG_RUNTIME_DIR"; chmod 700 "$XDG_RUNTIME_DIR"

vlog() { [ "$VERBOSE" = 1 ] && printf '%s\n' "$@" | sed 's/^/    | /' >&2; true; }
oneline() { printf '%s' "$1" | tr -d '\r' | tr '\n' '|' | cut -c1-300; }
want() {
    local n=$1
    if [ -n "$ONLY" ]; then case ",$ONLY," in *",$n,"*) ;; *) return 1 ;; esac; fi
    case ",$SKIP," in *",$n,"*) return 1 ;; esac
    return 0
}

# res CLIENT SCENARIO PASS|FAIL|SKIP DETAIL
SC_T0=0
res() {
    local t
    t=$(awk -v a="$SC_T0" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.1f", b-a}')
    printf '%s %s %s %s\n' "$1" "$2" "$3" "$4" >>"$TRANSCRIPT"
    if [ "$CAPTURE" = 1 ]; then return; fi
    case "$3" in
        PASS) PASSED=$((PASSED+1)) ;;
        FAIL) FAILED=$((FAILED+1)); CUR_FAILS=$((CUR_FAILS+1)) ;;
        SKIP) SKIPPED=$((SKIPPED+1)) ;;
    esac
    printf '%s %s %s %s [%ss]\n' "$1" "$2" "$3" "$(oneline "$4")" "$t"
}

# client calls: CL (raw, bounded), CC (captures OUT and RC), R (run with the per-client args)
OUT=""; RC=0
CL() { timeout -k 5 "$TMO" "${CLI[@]}" "$@"; }
CC() {
    OUT=$(CL "$@" 2>&1 </dev/null); RC=$?
    printf '$ %s\n%s\n[rc=%s]\n' "$(printf '%q ' "${CLI[@]}" "$@")" "$OUT" "$RC" >>"$TRANSCRIPT"
    vlog "\$ $CLIENT $*" "$OUT" "rc=$RC"
}
R() { CC run "${RUNARGS[@]}" "$@"; }
RD() { local n=$1; shift; R -d --name "$n" "$@"; }
# pipe/pty variants record their own transcript lines
note() { printf '%s\n' "$@" >>"$TRANSCRIPT"; vlog "$@"; }
insp() { CL inspect -f "$2" "$1" 2>/dev/null </dev/null; }
cli_line() { printf '%q ' "${CLI[@]}" "$@"; }
tcli_line() { printf 'timeout -k 2 20 '; cli_line "$@"; }
wait_for() {  # wait_for SECONDS CMD... : poll CMD every 0.2s
    local n=$(( $1 * 5 )) i=0; shift
    while [ $i -lt $n ]; do "$@" && return 0; sleep 0.2; i=$((i+1)); done
    return 1
}
rm_all() {
    local ids
    ids=$(CL ps -aq 2>/dev/null </dev/null)
    [ -z "$ids" ] && return
    CL unpause $ids >/dev/null 2>&1 </dev/null
    if [ "$CLIENT" = podman ]; then CL rm -f -t 0 $ids >/dev/null 2>&1 </dev/null
    else CL rm -f $ids >/dev/null 2>&1 </dev/null; fi
}
# cgroup v1 file of a container process, as seen from inside the container
cg_file_check() {  # cg_file_check SC FILE EXPECTED RUNARGS...
    local sc=$1 f=$2 want=$3; shift 3
    R --rm "$@" "$IMG" cat "$f"
    if [ "$RC" = 0 ] && [ "$(printf '%s' "$OUT" | tr -d '\r')" = "$want" ]; then
        res "$CLIENT" "$sc" PASS "$f=$want inside"
    else res "$CLIENT" "$sc" FAIL "want $f=$want: rc=$RC $OUT"; fi
}
script_run() {  # script_run CMDLINE -> OUT, RC: CMDLINE under script(1), so on a pty
    OUT=$(timeout -k 5 $((TMO + 5)) script -qefc "$1" /dev/null </dev/null 2>&1); RC=$?
    OUT=$(printf '%s' "$OUT" | tr -d '\r')
    note "\$ script -qefc '$1'" "$OUT" "[rc=$RC]"
}

# ---------------------------------------------------------------- image (offline)
build_rootfs() {
    local r="$BASE/image-rootfs"
    mkdir -p "$r"/{bin,sbin,usr/bin,usr/sbin,etc,dev,proc,sys,tmp,root,var/tmp,run,home,data} || return 1
    chmod 1777 "$r/tmp" "$r/var/tmp"; chmod 700 "$r/root"
    cp "$(command -v busybox)" "$r/bin/busybox" || return 1
    busybox --list-full | perl -ne 'BEGIN { $r = shift @ARGV } chomp; next unless m{/}; $l = "$r/$_";
        next if -e $l || -l $l; symlink("/bin/busybox", $l) or die "$l: $!\n"' "$r" || return 1
    [ -e "$r/bin/sh" ] || ln -s /bin/busybox "$r/bin/sh"
    printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'daemon:x:1:1:daemon:/usr/sbin:/bin/false' \
        'nobody:x:65534:65534:nobody:/nonexistent:/bin/false' >"$r/etc/passwd"
    printf '%s\n' 'root:x:0:' 'daemon:x:1:' 'nogroup:x:65534:' >"$r/etc/group"
    echo img-data >"$r/data/file.txt"
    gcc -static -O2 -o "$r/bin/sysprobe" "$HERE/sysprobe.c" || return 1
    # the same probe for the i386 ABI (needs gcc-multilib; its scenario skips without it)
    gcc -m32 -static -O2 -o "$r/bin/sysprobe32" "$HERE/sysprobe.c" 2>/dev/null && "$r/bin/sysprobe32" getuid >/dev/null 2>&1 &&
        touch "$BASE/have-sysprobe32"
    tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$r" -cf "$IMG_TAR" . || return 1
    rm -rf "$r"
}
IMPORT_CHANGES=(--change 'CMD ["sh"]' --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin')

# ---------------------------------------------------------------- capture wrapper
# Same basename as the runtime (podman decides e.g. --log-format json support by it).
make_capture_wrapper() {
    local w="$BASE/capture/$RT_NAME"
    cat >"$w" <<EOF
#!/bin/sh
# clients.sh capture wrapper: record the call, keep config.json / process.json, exec the runtime
dest=\$(cat "$BASE/capture-target" 2>/dev/null)
if [ -n "\$dest" ] && mkdir -p "\$dest"; then
    ts=\$(date +%s.%N)
    printf '%s %s\n' "\$ts" "\$*" >>"\$dest/argv.log"
    sub=""; bundle=""; proc=""; prev=""
    for a in "\$@"; do
        case "\$prev" in --bundle|-b) bundle=\$a ;; --process|-p) proc=\$a ;; esac
        case "\$a" in
            --bundle=*) bundle=\${a#--bundle=} ;;
            --process=*) proc=\${a#--process=} ;;
            create|run|exec|start|kill|delete|pause|resume|update|ps|state) [ -z "\$sub" ] && sub=\$a ;;
        esac
        prev=\$a
    done
    case "\$sub" in
        create|run) cp "\${bundle:-.}/config.json" "\$dest/\$ts-\$sub-config.json" 2>/dev/null ;;
        exec) [ -n "\$proc" ] && cp "\$proc" "\$dest/\$ts-exec-process.json" 2>/dev/null ;;
    esac
fi
exec "$RT_PATH" "\$@"
EOF
    chmod +x "$w"
    CAPTURE_PATH=$w
}

# ================================================================= scenarios
# Each takes no argument; CLIENT, CLI, RUNARGS, IMG are set. Containers are named k-<sc>.

sc_run() {
    R --rm "$IMG" sh -c 'echo hello; echo to-stderr >&2'
    if [ "$RC" = 0 ] && printf '%s\n' "$OUT" | grep -qx hello && printf '%s\n' "$OUT" | grep -qx to-stderr; then
        res "$CLIENT" run PASS "stdout+stderr relayed, rc 0"
    else res "$CLIENT" run FAIL "rc=$RC $OUT"; fi
}

sc_exitcode() {
    R --rm "$IMG" sh -c 'exit 7'
    if [ "$RC" = 7 ]; then res "$CLIENT" exitcode PASS "exit 7 propagated"
    else res "$CLIENT" exitcode FAIL "want rc 7, got $RC: $OUT"; fi
}

sc_stdin() {
    OUT=$(printf 'hi\nthere\n' | CL run -i --rm "${RUNARGS[@]}" "$IMG" sh -c 'cat; echo EOF-SEEN' 2>&1); RC=$?
    note "\$ printf 'hi\\nthere\\n' | $(cli_line run -i --rm "${RUNARGS[@]}" "$IMG") sh -c 'cat; echo EOF-SEEN'" "$OUT" "[rc=$RC]"
    if [ "$RC" = 0 ] && [ "$OUT" = "$(printf 'hi\nthere\nEOF-SEEN')" ]; then
        res "$CLIENT" stdin PASS "piped stdin relayed, EOF seen"
    else res "$CLIENT" stdin FAIL "rc=$RC $OUT"; fi
}

sc_tty() {
    script_run "$(cli_line run -t --rm "${RUNARGS[@]}" "$IMG") sh -c 'tty; [ -t 0 ] && [ -t 1 ] && echo ISATTY-\$((6*7)); exit 3'"
    if [ "$RC" = 3 ] && printf '%s\n' "$OUT" | grep -q '^/dev/pts/[0-9]' && printf '%s\n' "$OUT" | grep -q ISATTY-42; then
        res "$CLIENT" tty PASS "$(printf '%s\n' "$OUT" | grep -m1 '^/dev/pts'), stdin+stdout are ttys, exit 3"
    else res "$CLIENT" tty FAIL "want /dev/pts/N, ISATTY-42, rc 3: rc=$RC $OUT"; fi
}

sc_exec() {
    RD k-exec "$IMG" sleep 1000
    if [ "$RC" != 0 ]; then
        res "$CLIENT" exec FAIL "run -d: rc=$RC $OUT"; res "$CLIENT" exec-tty FAIL "run -d failed"; return
    fi
    CC exec k-exec sh -c 'echo exec-out; echo exec-err >&2; exit 3'
    if [ "$RC" = 3 ] && printf '%s\n' "$OUT" | grep -qx exec-out && printf '%s\n' "$OUT" | grep -qx exec-err; then
        res "$CLIENT" exec PASS "stdout+stderr relayed, exit 3"
    else res "$CLIENT" exec FAIL "want exec-out/exec-err, rc 3: rc=$RC $OUT"; fi
    script_run "$(cli_line exec -t k-exec) sh -c 'tty; [ -t 1 ] && echo ISATTY-\$((6*7)); exit 4'"
    if [ "$RC" = 4 ] && printf '%s\n' "$OUT" | grep -q '^/dev/pts/[0-9]' && printf '%s\n' "$OUT" | grep -q ISATTY-42; then
        res "$CLIENT" exec-tty PASS "$(printf '%s\n' "$OUT" | grep -m1 '^/dev/pts'), exit 4"
    else res "$CLIENT" exec-tty FAIL "want /dev/pts/N, ISATTY-42, rc 4: rc=$RC $OUT"; fi
}

sc_tmpfs() {
    R --rm --tmpfs /scratch "$IMG" sh -c 'grep " /scratch " /proc/mounts; echo x >/scratch/f && cat /scratch/f'
    if [ "$RC" = 0 ] && printf '%s\n' "$OUT" | grep -q '^tmpfs /scratch tmpfs' && printf '%s\n' "$OUT" | grep -qx x; then
        res "$CLIENT" tmpfs PASS "$(printf '%s\n' "$OUT" | grep -m1 ' /scratch ' | cut -d' ' -f1-4), writable"
    else res "$CLIENT" tmpfs FAIL "rc=$RC $OUT"; fi
}

sc_tmpfs-imagedir() {   # a tmpfs over /data, which has /data/file.txt in the image
    R --rm --tmpfs /data "$IMG" sh -c 'grep " /data " /proc/mounts; ls /data; cat /data/file.txt 2>/dev/null; true'
    local mnt; mnt=$(printf '%s\n' "$OUT" | grep -m1 '^tmpfs /data tmpfs')
    if [ "$CLIENT" = podman ]; then   # podman adds tmpcopyup: the image's files are copied in
        if [ "$RC" = 0 ] && [ -n "$mnt" ] && printf '%s\n' "$OUT" | grep -qx img-data; then
            res "$CLIENT" tmpfs-imagedir PASS "tmpfs over /data with the image's file.txt copied up (tmpcopyup)"
        else res "$CLIENT" tmpfs-imagedir FAIL "want tmpfs on /data holding file.txt (tmpcopyup): rc=$RC $OUT"; fi
    else                               # docker has no tmpcopyup: the tmpfs hides the image's files
        if [ "$RC" = 0 ] && [ -n "$mnt" ] && ! printf '%s\n' "$OUT" | grep -q 'img-data\|file.txt'; then
            res "$CLIENT" tmpfs-imagedir PASS "empty tmpfs over /data (docker does not copy up)"
        else res "$CLIENT" tmpfs-imagedir FAIL "want an empty tmpfs on /data: rc=$RC $OUT"; fi
    fi
}

sc_read-only() {
    local extra=()
    [ "$CLIENT" = docker ] && extra=(--tmpfs /tmp)   # podman's --read-only-tmpfs default does it
    R --rm --read-only "${extra[@]}" "$IMG" sh -c 'touch /rootfile 2>&1; touch /tmp/f && echo tmp-writable; grep " / " /proc/mounts'
    if [ "$RC" = 0 ] && printf '%s\n' "$OUT" | grep -qi 'read-only file system' && printf '%s\n' "$OUT" | grep -qx tmp-writable; then
        res "$CLIENT" read-only PASS "/ read-only, /tmp writable"
    else res "$CLIENT" read-only FAIL "rc=$RC $OUT"; fi
}

capeff_of() { printf '%s\n' "$1" | awk '/^CapEff:/{print $2}'; }
has_cap() { (( (16#$1 >> $2) & 1 )); }   # has_cap HEX BIT
sc_cap-drop-all() {
    R --rm --cap-drop all "$IMG" sh -c 'grep ^Cap /proc/self/status; touch /tmp/f; chown 1 /tmp/f 2>&1 || echo chown-denied; sysprobe personality'
    local eff; eff=$(capeff_of "$OUT")
    if [ "$RC" = 0 ] && [ "$eff" = 0000000000000000 ] && printf '%s\n' "$OUT" | grep -qx chown-denied &&
       printf '%s\n' "$OUT" | grep -q '^personality=E'; then
        res "$CLIENT" cap-drop-all PASS "CapEff=$eff, chown denied, seccomp $(printf '%s\n' "$OUT" | grep '^personality=')"
    else res "$CLIENT" cap-drop-all FAIL "want CapEff=0, chown and personality(ADDR_NO_RANDOMIZE) denied: rc=$RC $OUT"; fi
}

# the default profiles deny personality(ADDR_NO_RANDOMIZE) (argument condition) and, docker's,
# unshare(CLONE_NEWUSER) without CAP_SYS_ADMIN; podman's allows the latter
seccomp_bad() {   # seccomp_bad OUT -> the ways the default profile is not in force
    local o=$1 bad=""
    printf '%s\n' "$o" | grep -q '^Seccomp:[[:space:]]*2' || bad="$bad no-filter"
    printf '%s\n' "$o" | grep -q '^personality=E' || bad="$bad personality-allowed"
    if [ "$CLIENT" = docker ]; then printf '%s\n' "$o" | grep -q '^userns=E' || bad="$bad unshare-allowed"; fi
    echo "$bad"
}
seccomp_desc() { printf '%s\n' "$1" | grep -E '^(personality|userns)=' | tr '\n' ' '; }
sc_cap-add-drop() {   # with the client's default seccomp profile
    R --rm --cap-add NET_ADMIN --cap-drop CHOWN "$IMG" sh -c 'grep ^Cap /proc/self/status; grep ^Seccomp: /proc/self/status; touch /tmp/f; chown 1 /tmp/f 2>&1 || echo chown-denied; ip link set lo up && echo netadmin-ok; sysprobe personality userns'
    local eff bad; eff=$(capeff_of "$OUT")
    bad=$(seccomp_bad "$OUT")
    [ "$RC" = 0 ] || bad="$bad rc=$RC"
    [ -n "$eff" ] && has_cap "$eff" 12 || bad="$bad no-CAP_NET_ADMIN"
    [ -n "$eff" ] && ! has_cap "$eff" 0 || bad="$bad CAP_CHOWN-present"
    printf '%s\n' "$OUT" | grep -qx chown-denied || bad="$bad chown-allowed"
    printf '%s\n' "$OUT" | grep -qx netadmin-ok || bad="$bad ip-link-failed"
    if [ -z "$bad" ]; then res "$CLIENT" cap-add-drop PASS "CapEff=$eff: NET_ADMIN works, chown denied; $(seccomp_desc "$OUT")"
    else res "$CLIENT" cap-add-drop FAIL "$bad: $OUT"; fi
}

sc_seccomp-default() {
    R --rm "$IMG" sh -c 'grep ^Seccomp: /proc/self/status; sysprobe personality userns'
    local bad; bad=$(seccomp_bad "$OUT")
    [ "$RC" = 0 ] || bad="$bad rc=$RC"
    if [ -z "$bad" ]; then res "$CLIENT" seccomp-default PASS "Seccomp: 2; $(seccomp_desc "$OUT")"
    else res "$CLIENT" seccomp-default FAIL "$bad: $OUT"; fi
}

sc_seccomp-unconfined() {
    R --rm --security-opt seccomp=unconfined "$IMG" sh -c 'grep ^Seccomp: /proc/self/status; sysprobe personality userns'
    if [ "$RC" = 0 ] && printf '%s\n' "$OUT" | grep -q '^Seccomp:[[:space:]]*0' && printf '%s\n' "$OUT" | grep -qx personality=ok &&
       printf '%s\n' "$OUT" | grep -qx userns=ok; then
        res "$CLIENT" seccomp-unconfined PASS "Seccomp: 0; $(seccomp_desc "$OUT")"
    else res "$CLIENT" seccomp-unconfined FAIL "want Seccomp: 0, personality and unshare allowed: rc=$RC $OUT"; fi
}

sc_seccomp-i386() {   # the profiles list SCMP_ARCH_X86: a 32-bit binary's plain calls work
    if [ ! -e "$BASE/have-sysprobe32" ]; then
        res "$CLIENT" seccomp-i386 SKIP "no i386 probe (gcc -m32 needs gcc-multilib, and the kernel IA32 emulation)"; return
    fi
    R --rm "$IMG" sh -c 'grep ^Seccomp: /proc/self/status; sysprobe32 getuid socket mmap stat'
    if [ "$RC" = 0 ] && printf '%s\n' "$OUT" | grep -q '^Seccomp:[[:space:]]*2' &&
       [ "$(printf '%s\n' "$OUT" | grep -c '^[a-z]*=ok$')" = 4 ]; then
        res "$CLIENT" seccomp-i386 PASS "i386 getuid32, socket, mmap2, stat64 allowed by the default profile"
    else res "$CLIENT" seccomp-i386 FAIL "want getuid/socket/mmap/stat=ok from an i386 binary under the default profile: rc=$RC $OUT"; fi
}

sc_user-groups() {
    R --rm --user 1000:1000 --group-add 2000 --group-add 3000 "$IMG" sh -c 'echo "u=$(id -u) g=$(id -g) G=$(id -G)"; touch /root/x 2>&1 || echo root-denied'
    local line; line=$(printf '%s\n' "$OUT" | grep -m1 '^u=')
    if [ "$RC" = 0 ] && case "$line" in "u=1000 g=1000 G="*) true ;; *) false ;; esac &&
       printf '%s' "${line#*G=}" | tr ' ' '\n' | grep -qx 2000 && printf '%s' "${line#*G=}" | tr ' ' '\n' | grep -qx 3000 &&
       printf '%s\n' "$OUT" | grep -qx root-denied; then
        res "$CLIENT" user-groups PASS "$line, /root not writable"
    else res "$CLIENT" user-groups FAIL "want u=1000 g=1000 G including 2000 3000: rc=$RC $OUT"; fi
}

sc_memory() { cg_file_check memory /sys/fs/cgroup/memory/memory.limit_in_bytes 67108864 --memory 64m; }
sc_pids-limit() { cg_file_check pids-limit /sys/fs/cgroup/pids/pids.max 50 --pids-limit 50; }
sc_cpu() {
    R --rm --cpus 0.5 --cpu-shares 512 "$IMG" sh -c 'cd /sys/fs/cgroup/cpu && echo "$(cat cpu.cfs_quota_us) $(cat cpu.cfs_period_us) $(cat cpu.shares)"'
    if [ "$RC" = 0 ] && [ "$(printf '%s' "$OUT" | tr -d '\r')" = "50000 100000 512" ]; then
        res "$CLIENT" cpu PASS "cfs_quota 50000 / period 100000, shares 512"
    else res "$CLIENT" cpu FAIL "want '50000 100000 512': rc=$RC $OUT"; fi
}

sc_pause() {
    local pid c1 c2 c3 st
    # (written then renamed: a freeze between the truncate and the write would leave it empty)
    RD k-pause "$IMG" sh -c 'i=0; while :; do i=$((i+1)); echo $i >/tmp/c.new; mv /tmp/c.new /tmp/c; sleep 0.1; done'
    [ "$RC" = 0 ] || { res "$CLIENT" pause FAIL "run -d: rc=$RC $OUT"; return; }
    pid=$(insp k-pause '{{.State.Pid}}')
    sleep 0.5
    CC pause k-pause
    [ "$RC" = 0 ] || { res "$CLIENT" pause FAIL "pause: rc=$RC $OUT"; return; }
    st=$(insp k-pause '{{.State.Status}}')
    sleep 0.3; c1=$(cat "/proc/$pid/root/tmp/c" 2>/dev/null); sleep 1; c2=$(cat "/proc/$pid/root/tmp/c" 2>/dev/null)
    note "paused: status=$st counter $c1 -> $c2 over 1s"
    CC unpause k-pause
    [ "$RC" = 0 ] || { res "$CLIENT" pause FAIL "unpause: rc=$RC $OUT (status while paused: $st, counter $c1 -> $c2)"; return; }
    sleep 0.8; c3=$(cat "/proc/$pid/root/tmp/c" 2>/dev/null)
    note "unpaused: status=$(insp k-pause '{{.State.Status}}') counter $c3"
    if [ "$st" = paused ] && [ -n "$c1" ] && [ "$c1" = "$c2" ] && [ -n "$c3" ] && [ "$c3" -gt "$c2" ]; then
        res "$CLIENT" pause PASS "status paused, counter frozen at $c1 for 1s, ran on to $c3 after unpause"
    else res "$CLIENT" pause FAIL "status while paused '$st', counter $c1 -> $c2 (paused 1s) -> $c3 (unpaused)"; fi
}

sc_stop-timeout() {   # the container ignores SIGTERM (sh as PID 1 has no TERM handler)
    local t0 t1 dt code
    RD k-stop "$IMG" sh -c 'trap "" TERM; while :; do sleep 1; done'
    [ "$RC" = 0 ] || { res "$CLIENT" stop-timeout FAIL "run -d: rc=$RC $OUT"; return; }
    sleep 0.3
    t0=$EPOCHREALTIME; CC stop -t 1 k-stop; t1=$EPOCHREALTIME
    dt=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}')
    code=$(insp k-stop '{{.State.ExitCode}}')
    if [ "$RC" = 0 ] && awk -v d="$dt" 'BEGIN{exit !(d < 6)}' && [ "$code" = 137 ]; then
        res "$CLIENT" stop-timeout PASS "stop -t 1 took ${dt}s, exit code 137 (SIGKILL)"
    else res "$CLIENT" stop-timeout FAIL "stop rc=$RC after ${dt}s, exit code '$code': $OUT"; fi
}

sc_healthcheck() {
    local st1 st2
    if [ "$CLIENT" = podman ]; then   # no systemd here for the timer: run the check by hand
        RD k-health --health-cmd 'test -e /tmp/ok' --health-interval disable --health-retries 1 "$IMG" sleep 1000
        [ "$RC" = 0 ] || { res "$CLIENT" healthcheck FAIL "run -d: rc=$RC $OUT"; return; }
        CC healthcheck run k-health; local r1=$RC o1=$OUT
        st1=$(insp k-health '{{.State.Health.Status}}')
        CC exec k-health touch /tmp/ok
        CC healthcheck run k-health; local r2=$RC
        st2=$(insp k-health '{{.State.Health.Status}}')
        if [ "$r1" = 1 ] && [ "$st1" = unhealthy ] && [ "$r2" = 0 ] && [ "$st2" = healthy ]; then
            res "$CLIENT" healthcheck PASS "healthcheck run: unhealthy (rc 1), then healthy (rc 0)"
        else res "$CLIENT" healthcheck FAIL "first run rc=$r1 status '$st1' ($o1), after touch rc=$r2 status '$st2': $OUT"; fi
    else
        RD k-health --health-cmd 'test -e /tmp/ok' --health-interval 1s --health-retries 1 --health-timeout 5s "$IMG" sleep 1000
        [ "$RC" = 0 ] || { res "$CLIENT" healthcheck FAIL "run -d: rc=$RC $OUT"; return; }
        wait_for 15 bash -c "[ \"\$($(tcli_line inspect -f '{{.State.Health.Status}}' k-health) 2>/dev/null)\" = unhealthy ]"
        st1=$(insp k-health '{{.State.Health.Status}}')
        CC exec k-health touch /tmp/ok
        wait_for 15 bash -c "[ \"\$($(tcli_line inspect -f '{{.State.Health.Status}}' k-health) 2>/dev/null)\" = healthy ]"
        st2=$(insp k-health '{{.State.Health.Status}}')
        note "health: $st1 -> $st2; $(insp k-health '{{json .State.Health.Log}}' | cut -c1-600)"
        if [ "$st1" = unhealthy ] && [ "$st2" = healthy ]; then
            res "$CLIENT" healthcheck PASS "health status unhealthy, then healthy after the file appears"
        else res "$CLIENT" healthcheck FAIL "status '$st1' then '$st2'; last log: $(insp k-health '{{json .State.Health.Log}}' | cut -c1-300)"; fi
    fi
}

sc_restart() {
    local n st
    RD k-restart --restart on-failure:2 "$IMG" sh -c 'exit 3'
    [ "$RC" = 0 ] || { res "$CLIENT" restart FAIL "run -d: rc=$RC $OUT"; return; }
    wait_for 25 bash -c "[ \"\$($(tcli_line inspect -f '{{.RestartCount}} {{.State.Status}}' k-restart) 2>/dev/null)\" = '2 exited' ]"
    n=$(insp k-restart '{{.RestartCount}}'); st=$(insp k-restart '{{.State.Status}} {{.State.ExitCode}}')
    if [ "$n" = 2 ] && [ "$st" = "exited 3" ]; then
        res "$CLIENT" restart PASS "on-failure:2: restarted twice, then exited 3"
    else res "$CLIENT" restart FAIL "want RestartCount 2 and 'exited 3', got '$n' '$st'"; fi
}

sc_oom() {
    local oom code marker=""
    rm -f "$BASE/cwd/oom"
    R --name k-oom --memory 32m "$IMG" sh -c 'x=$(head -c 200000000 /dev/zero | tr "\0" a); echo survived ${#x}'
    oom=$(insp k-oom '{{.State.OOMKilled}}'); code=$(insp k-oom '{{.State.ExitCode}}')
    # podman 4.3 reads OOMKilled from an "oom" file in the bundle dir, but conmon 2.1.6 (cgroup
    # v1) writes it into its working directory (ours): accept that file as the OOM report
    [ "$CLIENT" = podman ] && [ -e "$BASE/cwd/oom" ] && marker=" (conmon's oom file)"
    if [ "$RC" = 137 ] && [ "$code" = 137 ] && { [ "$oom" = true ] || [ -n "$marker" ]; }; then
        res "$CLIENT" oom PASS "exit 137, OOMKilled=$oom$marker"
    else res "$CLIENT" oom FAIL "want rc 137 and OOMKilled=true: rc=$RC OOMKilled=$oom ExitCode=$code $(printf '%s' "$OUT" | head -c 200)"; fi
}

userns_check() {   # run a container in a user namespace mapping 0 -> 100000 (65536 ids)
    R --rm "$@" "$IMG" sh -c 'cat /proc/self/uid_map /proc/self/gid_map; echo "id=$(id -u) file=$(stat -c %u /data/file.txt)"; touch /data/new && echo write-ok'
    if [ "$RC" = 0 ] && [ "$(printf '%s\n' "$OUT" | awk 'NR<=2{print $1,$2,$3}' | sort -u)" = "0 100000 65536" ] &&
       printf '%s\n' "$OUT" | grep -qx 'id=0 file=0' && printf '%s\n' "$OUT" | grep -qx write-ok; then
        res "$CLIENT" userns PASS "uid/gid map 0 100000 65536, root inside owns the image files"
    else res "$CLIENT" userns FAIL "want uid_map 0 100000 65536: rc=$RC $OUT"; fi
}
sc_userns() {
    if [ "$CLIENT" = podman ]; then userns_check --uidmap 0:100000:65536 --gidmap 0:100000:65536
    else DOCKER_USERNS_PENDING=1; fi   # needs a dockerd with --userns-remap: run after the others
}

sc_init() {
    R --rm --init "$IMG" sh -c 'echo "comm1=$(cat /proc/1/comm) me=$$"'
    local line; line=$(printf '%s\n' "$OUT" | grep -m1 '^comm1=')
    case "$line" in
        comm1=catatonit*|comm1=podman-init*|comm1=docker-init*|comm1=tini*)
            if [ "$RC" = 0 ] && [ "${line##*me=}" != 1 ]; then res "$CLIENT" init PASS "PID 1 is ${line%% *}, the command runs as pid ${line##*me=}"
            else res "$CLIENT" init FAIL "rc=$RC $OUT"; fi ;;
        *) res "$CLIENT" init FAIL "want an init as PID 1: rc=$RC $OUT" ;;
    esac
}

sc_env-workdir-hostname() {
    R --rm -e FOO=bar -w /tmp --hostname myhost "$IMG" sh -c 'echo "$FOO $(pwd) $(hostname)"'
    if [ "$RC" = 0 ] && [ "$(printf '%s' "$OUT" | tr -d '\r')" = "bar /tmp myhost" ]; then
        res "$CLIENT" env-workdir-hostname PASS "FOO=bar, cwd /tmp, hostname myhost"
    else res "$CLIENT" env-workdir-hostname FAIL "want 'bar /tmp myhost': rc=$RC $OUT"; fi
}

sc_rm() {
    R --rm --name k-rm "$IMG" true
    local r=$RC o=$OUT
    if [ "$r" = 0 ] && wait_for 5 bash -c "! $(tcli_line ps -a --format '{{.Names}}') | grep -qx k-rm"; then
        res "$CLIENT" rm PASS "--rm container gone after exit"
    else res "$CLIENT" rm FAIL "rc=$r $o; ps -a: $(CL ps -a --format '{{.Names}} {{.Status}}' 2>&1 </dev/null | tr '\n' '|')"; fi
}

sc_kill-signal() {
    RD k-kill "$IMG" sh -c 'trap "echo got-usr1; exit 9" USR1; echo ready; while :; do sleep 0.2; done'
    [ "$RC" = 0 ] || { res "$CLIENT" kill-signal FAIL "run -d: rc=$RC $OUT"; return; }
    wait_for 10 bash -c "$(tcli_line logs k-kill) 2>&1 | grep -q ready"
    CC kill -s USR1 k-kill
    local kr=$RC ko=$OUT
    CC wait k-kill
    local code; code=$(printf '%s' "$OUT" | tr -d '\r' | tail -n1)
    local logs; logs=$(CL logs k-kill 2>&1 </dev/null)
    if [ "$kr" = 0 ] && [ "$code" = 9 ] && printf '%s\n' "$logs" | grep -qx got-usr1; then
        res "$CLIENT" kill-signal PASS "SIGUSR1 delivered to the trap, exit 9"
    else res "$CLIENT" kill-signal FAIL "kill rc=$kr ($ko), wait '$code', logs: $logs"; fi
}

sc_wait() {
    RD k-wait "$IMG" sh -c 'sleep 1; exit 5'
    [ "$RC" = 0 ] || { res "$CLIENT" wait FAIL "run -d: rc=$RC $OUT"; return; }
    CC wait k-wait
    if [ "$RC" = 0 ] && [ "$(printf '%s' "$OUT" | tr -d '\r' | tail -n1)" = 5 ]; then res "$CLIENT" wait PASS "wait printed 5"
    else res "$CLIENT" wait FAIL "want 5: rc=$RC $OUT"; fi
}

sc_top() {
    RD k-top "$IMG" sh -c 'sleep 1000 & sleep 1001'
    [ "$RC" = 0 ] || { res "$CLIENT" top FAIL "run -d: rc=$RC $OUT"; res "$CLIENT" ps FAIL "run -d failed"; return; }
    sleep 0.5
    CC top k-top
    if [ "$RC" = 0 ] && printf '%s\n' "$OUT" | grep -q 'sleep 1000' && printf '%s\n' "$OUT" | grep -q 'sleep 1001'; then
        res "$CLIENT" top PASS "top lists both processes"
    else res "$CLIENT" top FAIL "want sleep 1000 and sleep 1001: rc=$RC $OUT"; fi
    CC ps --filter name=k-top --format '{{.Names}} {{.Status}}'
    if [ "$RC" = 0 ] && printf '%s\n' "$OUT" | grep -q '^k-top Up'; then res "$CLIENT" ps PASS "$(printf '%s' "$OUT" | head -1)"
    else res "$CLIENT" ps FAIL "want 'k-top Up': rc=$RC $OUT"; fi
}

sc_logs() {
    RD k-logs "$IMG" sh -c 'echo out-line; echo err-line >&2'
    [ "$RC" = 0 ] || { res "$CLIENT" logs FAIL "run -d: rc=$RC $OUT"; return; }
    CC wait k-logs
    CC logs k-logs
    if [ "$RC" = 0 ] && printf '%s\n' "$OUT" | grep -qx out-line && printf '%s\n' "$OUT" | grep -qx err-line; then
        res "$CLIENT" logs PASS "stdout and stderr lines in logs"
    else res "$CLIENT" logs FAIL "rc=$RC $OUT"; fi
}

sc_cp() {
    RD k-cp "$IMG" sleep 1000
    [ "$RC" = 0 ] || { res "$CLIENT" cp FAIL "run -d: rc=$RC $OUT"; return; }
    echo payload-in >"$BASE/cpin"; rm -f "$BASE/cpout"
    CC cp "$BASE/cpin" k-cp:/tmp/cpin; local r1=$RC o1=$OUT
    CC exec k-cp cat /tmp/cpin; local r2=$RC o2=$OUT
    CC cp k-cp:/data/file.txt "$BASE/cpout"; local r3=$RC o3=$OUT
    if [ "$r1" = 0 ] && [ "$r2" = 0 ] && [ "$o2" = payload-in ] && [ "$r3" = 0 ] && [ "$(cat "$BASE/cpout" 2>/dev/null)" = img-data ]; then
        res "$CLIENT" cp PASS "file copied in (read back by exec) and out"
    else res "$CLIENT" cp FAIL "cp in rc=$r1 ($o1); exec cat rc=$r2 ($o2); cp out rc=$r3 ($o3) file '$(cat "$BASE/cpout" 2>/dev/null)'"; fi
}

sc_device() {
    R --rm --device /dev/null:/dev/mynull "$IMG" sh -c 'ls -l /dev/mynull; echo x >/dev/mynull && echo write-ok'
    if [ "$RC" = 0 ] && printf '%s\n' "$OUT" | grep -q '^c.* 1, *3 .*/dev/mynull' && printf '%s\n' "$OUT" | grep -qx write-ok; then
        res "$CLIENT" device PASS "/dev/mynull is char 1,3 and writable"
    else res "$CLIENT" device FAIL "want char device 1,3 at /dev/mynull: rc=$RC $OUT"; fi
}

# ---------------------------------------------------------------- beyond the brief's list
sc_privileged() {
    local bnd full
    bnd=$(awk '/^CapBnd:/{print $2}' /proc/self/status)
    full=$(printf '%016x' $(( (1 << ($(cat /proc/sys/kernel/cap_last_cap) + 1)) - 1 )))
    if [ "$CLIENT" = docker ] && [ "$bnd" != "$full" ]; then   # docker asks for every capability
        local b missing=""
        for ((b = 0; b <= $(cat /proc/sys/kernel/cap_last_cap); b++)); do has_cap "$bnd" "$b" || missing="$missing $b"; done
        case "$missing " in *" 24 "*) missing="$missing (24 is CAP_SYS_RESOURCE)" ;; esac
        res "$CLIENT" privileged SKIP "this host's bounding set $bnd lacks capability number(s)$missing: docker --privileged asks for every capability, and any runtime fails (runc: unable to apply caps)"
        return
    fi
    R --rm --privileged "$IMG" sh -c 'grep -E "^(CapEff|Seccomp):" /proc/self/status; mkdir -p /tmp/m && mount -t tmpfs none /tmp/m && echo mount-ok; echo "devs=$(ls /dev | wc -l)"'
    local eff n; eff=$(capeff_of "$OUT"); n=$(printf '%s\n' "$OUT" | sed -n 's/^devs=//p')
    if [ "$RC" = 0 ] && [ "$eff" = "$bnd" ] && printf '%s\n' "$OUT" | grep -q '^Seccomp:[[:space:]]*0' &&
       printf '%s\n' "$OUT" | grep -qx mount-ok && [ "${n:-0}" -gt 30 ]; then
        res "$CLIENT" privileged PASS "CapEff=$eff (the host's bounding set), no seccomp, mount works, $n entries in /dev"
    else res "$CLIENT" privileged FAIL "want CapEff=$bnd, Seccomp 0, mount ok, host /dev: rc=$RC $OUT"; fi
}

sc_volume() {
    rm -rf "$BASE/vol"; mkdir -p "$BASE/vol"; echo from-host >"$BASE/vol/h"
    R --rm -v "$BASE/vol:/vol" -v "$BASE/vol:/vro:ro" -v k-named:/nv "$IMG" sh -c 'cat /vol/h; echo from-ctr >/vol/c; touch /vro/x 2>/dev/null || echo ro-denied; echo n >/nv/n && echo named-ok'
    if [ "$RC" = 0 ] && printf '%s\n' "$OUT" | grep -qx from-host && [ "$(cat "$BASE/vol/c" 2>/dev/null)" = from-ctr ] &&
       printf '%s\n' "$OUT" | grep -qx ro-denied && printf '%s\n' "$OUT" | grep -qx named-ok; then
        res "$CLIENT" volume PASS "bind rw (both ways), bind :ro, named volume"
    else res "$CLIENT" volume FAIL "rc=$RC $OUT; host sees c='$(cat "$BASE/vol/c" 2>/dev/null)'"; fi
    CL volume rm -f k-named >/dev/null 2>&1 </dev/null
}

sc_ns-share() {   # a second container joins the first's pid, ipc and net namespaces
    local donor=()
    [ "$CLIENT" = docker ] && donor=(--ipc shareable)   # docker's default ipc mode is private
    RD k-nsa "${donor[@]}" "$IMG" sleep 1000
    [ "$RC" = 0 ] || { res "$CLIENT" ns-share FAIL "run -d: rc=$RC $OUT"; return; }
    local args=(--pid container:k-nsa --ipc container:k-nsa)
    # (--network container:X replaces our --network none)
    local saved=("${RUNARGS[@]}"); RUNARGS=("${RUNARGS[@]/#none/container:k-nsa}")
    R --rm "${args[@]}" "$IMG" sh -c 'for n in pid ipc net; do [ "$(readlink /proc/self/ns/$n)" = "$(readlink /proc/1/ns/$n)" ] && echo same-$n; done; ps -o pid,args | grep -q "[s]leep 1000" && echo sees-sleep'
    RUNARGS=("${saved[@]}")
    if [ "$RC" = 0 ] && [ "$(printf '%s\n' "$OUT" | grep -c '^same-')" = 3 ] && printf '%s\n' "$OUT" | grep -qx sees-sleep; then
        res "$CLIENT" ns-share PASS "pid, ipc and net namespaces shared with k-nsa (its sleep is visible)"
    else res "$CLIENT" ns-share FAIL "want same-pid/ipc/net and sees-sleep: rc=$RC $OUT"; fi
}

sc_pod() {
    if [ "$CLIENT" != podman ]; then res "$CLIENT" pod SKIP "docker has no pods"; return; fi
    CC pod create --name k-pod --network none --share pid,ipc,uts,net
    [ "$RC" = 0 ] || { res "$CLIENT" pod FAIL "pod create: rc=$RC $OUT"; return; }
    R -d --pod k-pod --name k-pod-a "$IMG" sleep 1000
    local r1=$RC o1=$OUT
    R --rm --pod k-pod "$IMG" sh -c 'ps -o pid,args; hostname'
    if [ "$r1" = 0 ] && [ "$RC" = 0 ] && printf '%s\n' "$OUT" | grep -q 'sleep 1000' && printf '%s\n' "$OUT" | grep -q 'catatonit'; then
        res "$CLIENT" pod PASS "infra (catatonit) + 2 containers share pid/ipc/uts/net"
    else res "$CLIENT" pod FAIL "run in pod: rc=$r1 ($o1); second: rc=$RC $OUT"; fi
    CL pod rm -f -t 0 k-pod >/dev/null 2>&1 </dev/null
}

sc_update() {
    RD k-upd --memory 64m "$IMG" sleep 1000
    [ "$RC" = 0 ] || { res "$CLIENT" update FAIL "run -d: rc=$RC $OUT"; return; }
    CC update --memory 128m --memory-swap 256m --cpu-shares 256 k-upd
    local ur=$RC uo=$OUT
    CC exec k-upd sh -c 'cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/cpu/cpu.shares'
    if [ "$ur" = 0 ] && [ "$RC" = 0 ] && [ "$(printf '%s' "$OUT" | tr '\n' ' ')" = "134217728 256" ]; then
        res "$CLIENT" update PASS "memory 64m -> 128m and cpu.shares 256 on the running container"
    else res "$CLIENT" update FAIL "update rc=$ur ($uo); inside: rc=$RC $OUT"; fi
}

sc_ulimit() {   # (both given: with nofile alone podman adds nproc=1048576, over this host's hard limit)
    R --rm --ulimit nofile=1024:2048 --ulimit nproc=1000:2000 "$IMG" sh -c 'echo "$(ulimit -Sn) $(ulimit -Hn) $(ulimit -Su) $(ulimit -Hu)"'
    if [ "$RC" = 0 ] && [ "$OUT" = "1024 2048 1000 2000" ]; then res "$CLIENT" ulimit PASS "RLIMIT_NOFILE 1024/2048, RLIMIT_NPROC 1000/2000"
    else res "$CLIENT" ulimit FAIL "want '1024 2048 1000 2000': rc=$RC $OUT"; fi
}

sc_sysctl() {
    R --rm --sysctl kernel.msgmax=4096 "$IMG" cat /proc/sys/kernel/msgmax
    if [ "$RC" = 0 ] && [ "$OUT" = 4096 ]; then res "$CLIENT" sysctl PASS "kernel.msgmax=4096 in the container's ipc namespace"
    else res "$CLIENT" sysctl FAIL "want 4096: rc=$RC $OUT"; fi
}

sc_no-new-privileges() {
    R --rm --security-opt no-new-privileges "$IMG" sh -c 'grep ^NoNewPrivs: /proc/self/status'
    if [ "$RC" = 0 ] && printf '%s\n' "$OUT" | grep -q '^NoNewPrivs:[[:space:]]*1'; then res "$CLIENT" no-new-privileges PASS "NoNewPrivs: 1"
    else res "$CLIENT" no-new-privileges FAIL "want NoNewPrivs: 1: rc=$RC $OUT"; fi
}

sc_exec-opts() {
    RD k-exo "$IMG" sleep 1000
    if [ "$RC" != 0 ]; then
        res "$CLIENT" exec-opts FAIL "run -d: rc=$RC $OUT"; res "$CLIENT" exec-stdin FAIL "run -d failed"; return
    fi
    CC exec --user 1000:1000 -e XV=42 -w /tmp k-exo sh -c 'echo "$(id -u):$(id -g) $XV $(pwd)"'
    if [ "$RC" = 0 ] && [ "$OUT" = "1000:1000 42 /tmp" ]; then res "$CLIENT" exec-opts PASS "exec --user 1000:1000 -e XV=42 -w /tmp"
    else res "$CLIENT" exec-opts FAIL "want '1000:1000 42 /tmp': rc=$RC $OUT"; fi
    OUT=$(printf 'in1\nin2\n' | CL exec -i k-exo sh -c 'cat; echo EOF-SEEN' 2>&1); RC=$?
    note "\$ printf 'in1\\nin2\\n' | $(cli_line exec -i k-exo) sh -c 'cat; echo EOF-SEEN'" "$OUT" "[rc=$RC]"
    if [ "$RC" = 0 ] && [ "$OUT" = "$(printf 'in1\nin2\nEOF-SEEN')" ]; then res "$CLIENT" exec-stdin PASS "exec -i: piped stdin relayed, EOF seen"
    else res "$CLIENT" exec-stdin FAIL "rc=$RC $OUT"; fi
}

sc_shm-size() {
    R --rm --shm-size 16m "$IMG" sh -c 'df -k /dev/shm | tail -n1'
    if [ "$RC" = 0 ] && [ "$(printf '%s' "$OUT" | awk '{print $2}')" = 16384 ]; then res "$CLIENT" shm-size PASS "/dev/shm is 16384 KiB"
    else res "$CLIENT" shm-size FAIL "want a 16384 KiB /dev/shm: rc=$RC $OUT"; fi
}

sc_oom-score-adj() {
    R --rm --oom-score-adj 500 "$IMG" cat /proc/self/oom_score_adj
    if [ "$RC" = 0 ] && [ "$OUT" = 500 ]; then res "$CLIENT" oom-score-adj PASS "oom_score_adj 500"
    else res "$CLIENT" oom-score-adj FAIL "want 500: rc=$RC $OUT"; fi
}

# ---------------------------------------------------------------- per-scenario driver
run_scenario() {   # run_scenario SC
    local sc=$1 dest
    TRANSCRIPT="$BASE/transcripts/$CLIENT-$sc.log"; : >"$TRANSCRIPT"
    CUR_FAILS=0; SC_T0=$EPOCHREALTIME
    "sc_$sc"
    rm_all
    if [ "$CUR_FAILS" -gt 0 ] && [ -n "$FAILDIR" ]; then
        dest="$FAILDIR/$CLIENT-$sc"
        rm -rf "$dest"; mkdir -p "$dest"
        cp "$TRANSCRIPT" "$dest/transcript.log"
        # rerun once with the capture wrapper in front of the runtime
        echo "$dest/capture" >"$BASE/capture-target"
        TRANSCRIPT="$dest/capture-rerun.log"; : >"$TRANSCRIPT"
        local saved_cli=("${CLI[@]}") saved_run=("${RUNARGS[@]}")
        CAPTURE=1
        if [ "$CLIENT" = podman ]; then CLI=("${CLI[@]/#--runtime=*/--runtime=$CAPTURE_PATH}")
        else RUNARGS=("${RUNARGS[@]/#--runtime=*/--runtime=$RT_NAME-capture}"); fi
        SC_T0=$EPOCHREALTIME
        "sc_$sc"
        rm_all
        CAPTURE=0; CLI=("${saved_cli[@]}"); RUNARGS=("${saved_run[@]}")
        : >"$BASE/capture-target"
        echo "harness: $CLIENT $sc failed; transcript and captured configs in $dest" >&2
    fi
    TRANSCRIPT=/dev/null
}

run_client_scenarios() {
    local sc
    for sc in $SCENARIOS; do want "$sc" && run_scenario "$sc"; done
    if [ -n "$EXEC_CMD" ]; then
        CLIENT=$CLIENT CLI="${CLI[*]}" RUNARGS="${RUNARGS[*]}" IMG=$IMG BASE=$BASE bash -c "$EXEC_CMD"
    fi
}

# ================================================================= podman
PODMAN_STATE=/run/clients-podman
podman_main() {
    local pr="$BASE/podman" sd catatonit
    CLIENT=podman
    SC_T0=$EPOCHREALTIME
    mkdir -p "$pr" "$PODMAN_STATE"
    catatonit=$(command -v catatonit || echo /usr/libexec/podman/catatonit)
    cat >"$pr/containers.conf" <<EOF
[containers]
netns = "none"
log_driver = "k8s-file"
init_path = "$catatonit"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$pr/events.log"
# podman gives --log-format=json --log=FILE only to the runtimes named here; runc is one,
# and pyrunc is treated like it
runtime_supports_json = ["crun", "runc", "kata", "runsc", "youki", "krun", "$RT_NAME"]
[network]
network_config_dir = "$pr/networks"
EOF
    for sd in overlay vfs; do
        printf '[storage]\ndriver = "%s"\ngraphroot = "%s"\nrunroot = "%s"\n' \
            "$sd" "$pr/root-$sd" "$PODMAN_STATE/$sd" >"$pr/storage.conf"
        export CONTAINERS_CONF="$pr/containers.conf" CONTAINERS_STORAGE_CONF="$pr/storage.conf" \
            CONTAINERS_REGISTRIES_CONF="$pr/registries.conf"
        : >"$pr/registries.conf"
        CLI=(podman --root "$pr/root-$sd" --runroot "$PODMAN_STATE/$sd" --storage-driver "$sd"
             --cgroup-manager cgroupfs --tmpdir "$PODMAN_STATE/libpod-tmp" --events-backend file
             --network-config-dir "$pr/networks" --volumepath "$pr/volumes" "--runtime=$RT_PATH")
        RUNARGS=(--network none "--cgroup-parent=/$CG-podman")
        IMG=localhost/busybox:latest
        TRANSCRIPT="$BASE/transcripts/podman-setup.log"
        CC import "${IMPORT_CHANGES[@]}" "$IMG_TAR" "$IMG"
        if [ "$RC" = 0 ]; then
            R --rm "$IMG" true
            [ "$RC" = 0 ] && break
            [ "$RT_NAME" != runc ] && [ "$sd" = overlay ] && {   # decide the driver with runc only
                CLI=("${CLI[@]/#--runtime=*/--runtime=$(command -v runc)}"); R --rm "$IMG" true
                CLI=("${CLI[@]/#--runtime=*/--runtime=$RT_PATH}"); [ "$RC" = 0 ] && break; }
        fi
        echo "harness: podman with storage driver $sd failed (rc=$RC: $(oneline "$OUT")), trying the next" >&2
        sd=""
    done
    TRANSCRIPT=/dev/null
    [ -n "$sd" ] || { res podman setup FAIL "podman cannot import/run the image: $OUT"; return; }
    echo "harness: podman $(podman --version | awk '{print $3}'), storage $sd, runtime $RT_PATH, conmon $(conmon --version | awk 'NR==1{print $3}')" >&2
    make_capture_wrapper
    run_client_scenarios
    rm_all
}

# ================================================================= docker
DOCKERD_PID=""
start_dockerd() {   # start_dockerd TAG [extra dockerd args]
    local tag=$1; shift
    local dr="$BASE/docker-$tag" er="/run/clients-docker-$tag" i rtargs=()
    mkdir -p "$dr" "$er"
    echo '{}' >"$dr/daemon.json"
    [ "$RT_NAME" = runc ] && [ "$RT_PATH" = "$(command -v runc)" ] || rtargs=(--add-runtime "$RT_NAME=$RT_PATH")
    rtargs+=(--add-runtime "$RT_NAME-capture=$BASE/capture/$RT_NAME")
    dockerd --config-file "$dr/daemon.json" --data-root "$dr/data" --exec-root "$er" \
        -H "unix://$dr/docker.sock" --pidfile "$dr/dockerd.pid" \
        --bridge none --iptables=false --ip6tables=false --ip-masq=false --ipv6=false \
        --storage-driver "${DOCKER_STORAGE:-overlay2}" --exec-opt native.cgroupdriver=cgroupfs \
        --cgroup-parent "/$CG-docker" --userland-proxy=false "${rtargs[@]}" "$@" \
        >"$dr/dockerd.log" 2>&1 &
    DOCKERD_PID=$!
    CLI=("$DOCKER_BIN" -H "unix://$dr/docker.sock")
    export DOCKER_CONFIG="$BASE/docker-client"
    for i in $(seq 150); do
        CL version >/dev/null 2>&1 </dev/null && return 0
        kill -0 "$DOCKERD_PID" 2>/dev/null || break
        sleep 0.2
    done
    echo "harness: dockerd ($tag) did not start; last log lines:" >&2
    tail -n 20 "$dr/dockerd.log" >&2
    return 1
}
stop_dockerd() {
    [ -n "$DOCKERD_PID" ] || return
    rm_all
    kill -TERM "$DOCKERD_PID" 2>/dev/null
    for _ in $(seq 75); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$DOCKERD_PID" 2>/dev/null
    wait "$DOCKERD_PID" 2>/dev/null
    DOCKERD_PID=""
}
docker_import() {
    TRANSCRIPT="$BASE/transcripts/docker-setup.log"
    OUT=$(timeout -k 5 "$TMO" "${CLI[@]}" import -c 'CMD ["sh"]' \
          -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' "$IMG_TAR" "$IMG" 2>&1); RC=$?
    note "\$ docker import ... $IMG" "$OUT" "[rc=$RC]"
    TRANSCRIPT=/dev/null
    [ "$RC" = 0 ]
}
docker_main() {
    CLIENT=docker
    SC_T0=$EPOCHREALTIME
    IMG=busybox:latest
    make_capture_wrapper
    RUNARGS=(--network none "--runtime=$RT_NAME")
    DOCKER_USERNS_PENDING=0
    start_dockerd main || { res docker setup FAIL "dockerd did not start"; return; }
    echo "harness: dockerd $(dockerd --version | awk '{print $3}' | tr -d ,), runtime $RT_NAME=$RT_PATH" >&2
    docker_import || { res docker setup FAIL "docker import: $OUT"; stop_dockerd; return; }
    run_client_scenarios
    stop_dockerd
    if [ "$DOCKER_USERNS_PENDING" = 1 ]; then   # second daemon, remapping root to 100000 (nobody's range)
        SC_T0=$EPOCHREALTIME
        if start_dockerd userns --userns-remap nobody:nogroup && docker_import; then
            TRANSCRIPT="$BASE/transcripts/docker-userns.log"
            CUR_FAILS=0
            userns_check
            if [ "$CUR_FAILS" -gt 0 ] && [ -n "$FAILDIR" ]; then
                mkdir -p "$FAILDIR/docker-userns"; cp "$TRANSCRIPT" "$FAILDIR/docker-userns/transcript.log"
                echo "$FAILDIR/docker-userns/capture" >"$BASE/capture-target"
                CAPTURE=1; RUNARGS=(--network none "--runtime=$RT_NAME-capture"); TRANSCRIPT="$FAILDIR/docker-userns/capture-rerun.log"
                userns_check; CAPTURE=0; RUNARGS=(--network none "--runtime=$RT_NAME"); : >"$BASE/capture-target"
            fi
            TRANSCRIPT=/dev/null
        else res docker userns FAIL "dockerd --userns-remap nobody:nogroup did not start or import failed: $OUT"; fi
        stop_dockerd
    fi
}

# ================================================================= main
inner_exit() {
    trap - EXIT INT TERM HUP
    [ -n "$DOCKERD_PID" ] && kill -KILL "$DOCKERD_PID" 2>/dev/null
    # thaw anything left paused so that the PID namespace can end
    for f in $(find /sys/fs/cgroup/freezer/"$CG"-* -name freezer.state 2>/dev/null); do
        echo THAWED >"$f" 2>/dev/null
    done
}
trap inner_exit EXIT
trap 'echo "harness: interrupted" >&2; echo "harness interrupted FAIL signal"; echo "$PASSED passed, $((FAILED+1)) failed, $SKIPPED skipped"; exit 130' INT TERM HUP

echo "harness: run $RUN_ID, runtime $RT_NAME ($RT_PATH), state $BASE, cgroups /$CG-*" >&2
echo "harness: $("$RT_PATH" --version 2>&1 | head -n1)$(git -C "$(dirname "$RT_PATH")" rev-parse --short HEAD 2>/dev/null | sed 's/^/ (checkout at /;s/$/)/')" >&2
build_rootfs || { echo "harness setup FAIL cannot build the busybox rootfs"; echo "0 passed, 1 failed, 0 skipped"; exit 1; }
[ -n "$FAILDIR" ] && mkdir -p "$FAILDIR"
T_START=$EPOCHREALTIME
for c in ${CLIENTS//,/ }; do
    t0=$EPOCHREALTIME
    case "$c" in
        podman) podman_main ;;
        docker) docker_main ;;
        *) echo "unknown client $c" >&2 ;;
    esac
    echo "harness: $c done in $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.0f", b-a}')s" >&2
done
echo "harness: total $(awk -v a="$T_START" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.0f", b-a}')s" >&2
echo "$PASSED passed, $FAILED failed, $SKIPPED skipped"
[ "$FAILED" = 0 ]
