"""containerd-shim-pyrunc-v2 under a real containerd 1.6 (Debian's package), driven by ctr.

conformance/harness/containerd.sh starts a private containerd (its own root, state, gRPC and
TTRPC sockets, in a private mount namespace whose /run is a fresh tmpfs), imports a busybox
image made offline, and runs every scenario with `--runtime io.containerd.pyrunc.v2`, the
shim found on containerd's PATH: echo, lifecycle (ls, ps, exec, exec exit status, kill,
delete, container delete), exit codes, tty (a pts, ResizePty), memory limit and OOM kill,
pause/resume and exec after resume, metrics, stdin relay and close, file:// and binary:// log
URIs, and the events containerd saw (create, start, exit, delete, exec-added, exec-started,
paused, resumed, oom).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from harness import pyrunc_binary

pytestmark = pytest.mark.integration

HARNESS = Path(__file__).resolve().parents[2] / "conformance" / "harness" / "containerd.sh"


@pytest.mark.parametrize("binary", ["", "runc", "crun"])
def test_every_containerd_scenario_through_our_shim(binary: str, tmp_path: Path) -> None:
    """In-process pyrunc (the default), and `BinaryName` runc and crun behind our shim: ctr
    sends runtimeoptions.v1.Options naming a TOML file (--runtime-config-path), as the CRI
    plugin does for a runtime that is not runc's."""
    if not shutil.which("containerd") or not shutil.which("ctr"):
        pytest.skip("containerd 1.6 is not installed (scripts/test.sh installs it)")
    bindir = os.path.dirname(pyrunc_binary())
    shim = os.path.join(bindir, "containerd-shim-pyrunc-v2")
    assert os.access(shim, os.X_OK), shim
    args = [str(HARNESS), "--path", bindir]
    if binary:
        path = shutil.which(binary)
        if not path:
            pytest.skip(f"{binary} is not installed")
        toml = tmp_path / "options.toml"
        toml.write_text(f'BinaryName = "{path}"\n')
        args += ["--run-arg", f"--runtime-config-path={toml}"]
        if binary == "crun":
            args.append("--no-unified")  # crun 1.8 refuses this hybrid host otherwise
        # and the container really runs under that binary: its state is in the binary's
        # --root, none in pyrunc's
        check = (
            f"$CTR run --runtime io.containerd.pyrunc.v2 --runtime-config-path={toml} -d "
            "$CTRD_IMG bin-check sleep 100 && "
            f"{path} --root /run/containerd/runc/$CTRD_NS state bin-check | grep -q running && "
            "! ls /run/containerd/pyrunc/$CTRD_NS/bin-check 2>/dev/null; rc=$?; "
            "$CTR task kill -s KILL bin-check; sleep 0.5; $CTR task rm bin-check; "
            "$CTR c rm bin-check; exit $rc"
        )
        args += ["--exec", check]
    p = subprocess.run(args + ["shim:pyrunc"], capture_output=True, text=True, timeout=900)
    out = p.stdout + p.stderr
    fails = [line for line in out.splitlines() if line.startswith("FAIL")]
    passes = [line for line in out.splitlines() if line.startswith("PASS")]
    assert not fails, out
    assert p.returncode == 0, out
    assert len(passes) >= 22, out
    if binary:
        assert any(line.startswith("PASS exec") for line in passes), out
    for name in ("echo", "lifecycle/exec", "tty", "memory/oom", "stdin", "loguri/binary",
                 "events", "metrics/json"):
        assert any(line.startswith(f"PASS {name}") for line in passes), (name, out)


def _harness_exec(script: str) -> str:
    if not shutil.which("containerd") or not shutil.which("ctr"):
        pytest.skip("containerd 1.6 is not installed (scripts/test.sh installs it)")
    bindir = os.path.dirname(pyrunc_binary())
    p = subprocess.run(
        [str(HARNESS), "--only", "none", "--no-cri", "--path", bindir, "--exec", script,
         "shim:pyrunc"],
        capture_output=True, text=True, timeout=900,
    )
    out = p.stdout + p.stderr
    assert p.returncode == 0 and "PASS exec" in out, out
    return out


# `alive PID`: the process exists and is not a zombie
_ALIVE = (
    "alive() { s=$(awk '{print $3}' /proc/$1/stat 2>/dev/null); "
    '[ -n "$s" ] && [ "$s" != Z ]; }; '
)


def test_sigkilled_shim_is_cleaned_up_by_delete() -> None:
    """A shim killed with SIGKILL while its container runs: containerd sees the connection
    drop and runs `containerd-shim-pyrunc-v2 delete`, which must leave no process, state
    dir, cgroup or rootfs mount behind, and the container can be removed."""
    _harness_exec(
        "set -u; " + _ALIVE
        + "$CTR run --runtime io.containerd.pyrunc.v2 -d $CTRD_IMG crash1 sleep 1000 || exit 1; "
        "pid=$($CTR task ls | awk '$1==\"crash1\"{print $2}'); "
        "shim=$(awk '/^PPid/{print $2}' /proc/$pid/status); "
        "grep -q containerd-shim-pyrunc-v2 /proc/$shim/cmdline || { echo not-our-shim; exit 1; }; "
        "kill -9 $shim; "
        "for i in $(seq 100); do alive $pid || break; sleep 0.1; done; "
        "alive $pid && { echo init-alive; exit 1; }; "
        "sleep 0.5; "
        "[ -e /run/containerd/pyrunc/$CTRD_NS/crash1 ] && { echo state-left; exit 1; }; "
        "ls -d /sys/fs/cgroup/*/$CTRD_NS/crash1 2>/dev/null | grep -q . && "
        "{ echo cgroup-left; exit 1; }; "
        "grep -q 'crash1/rootfs' /proc/self/mountinfo && { echo mount-left; exit 1; }; "
        "$CTR task rm crash1 >/dev/null 2>&1; $CTR c rm crash1 || exit 1; "
        "echo cleaned"
    )


def test_many_containers_at_once_leave_nothing() -> None:
    """100 containers started concurrently through one containerd and our shims, then all
    deleted: no process, state dir, cgroup, mount or shim socket is left."""
    _harness_exec(
        "set -u; "
        "for i in $(seq 100); do "
        "  $CTR run --runtime io.containerd.pyrunc.v2 -d $CTRD_IMG many$i sleep 1000 "
        "  >/dev/null 2>&1 & "
        "done; wait; "
        "n=$($CTR task ls | grep -c RUNNING); [ \"$n\" -eq 100 ] || { echo running=$n; exit 1; }; "
        "for i in $(seq 100); do ( $CTR task kill -s KILL many$i; "
        "  for j in $(seq 50); do $CTR task ls | grep -q \"^many$i .*STOPPED\" && break; "
        "  sleep 0.1; done; $CTR task rm many$i; $CTR c rm many$i ) >/dev/null 2>&1 & done; "
        "wait; sleep 1; "
        "[ \"$($CTR c ls -q | grep -c many)\" -eq 0 ] || { echo containers-left; exit 1; }; "
        "ls /run/containerd/pyrunc/$CTRD_NS | grep -q many && { echo state-left; exit 1; }; "
        "ls -d /sys/fs/cgroup/*/$CTRD_NS/many* 2>/dev/null | grep -q . && "
        "{ echo cgroup-left; exit 1; }; "
        "grep -q '/many[0-9]*/rootfs' /proc/self/mountinfo && { echo mount-left; exit 1; }; "
        # (v[2]: the pattern must not match this very script's command line)
        "pgrep -af 'containerd-shim-pyrunc-v[2] .*-id many' && { echo shim-left; exit 1; }; "
        "ls /run/containerd/s | wc -l | grep -qx 0 || { echo socket-left; ls /run/containerd/s; "
        "exit 1; }; echo clean"
    )


def test_a_group_shares_one_shim() -> None:
    """Containers with one io.containerd.runc.v2.group annotation (the CRI plugin's
    sandbox-id works the same way) are served by one shim process: 50 of them, each init a
    child of the same shim (bench/shim-group.sh exits non-zero otherwise), then removed."""
    out = _harness_exec(str(Path(__file__).resolve().parents[2] / "bench" / "shim-group.sh"))
    assert "containers=50 rss_kb=" in out, out


def test_update_reaches_the_cgroup() -> None:
    """Update (the CRI plugin's UpdateContainerResources; ctr 1.6 has no command for it): a
    LinuxResources JSON through our shim changes the container's memory and pids limits, as
    the kernel shows them in its cgroups."""
    here = Path(__file__).resolve().parent
    py = os.path.join(os.path.dirname(pyrunc_binary()), "python3")
    call = f"{py} {here / 'shim_call.py'} $CTRD_BASE/state $CTRD_NS upd"
    doc = '{"memory":{"limit":50331648},"pids":{"limit":77}}'
    _harness_exec(
        "set -u; "
        "$CTR run $CTRD_RUNTIME_ARGS -d $CTRD_IMG upd sleep 1000 || exit 1; "
        f"{call} Update '{doc}' || exit 1; "
        "m=$(cat /sys/fs/cgroup/memory/$CTRD_NS/upd/memory.limit_in_bytes); "
        "p=$(cat /sys/fs/cgroup/pids/$CTRD_NS/upd/pids.max); "
        "$CTR task kill -s KILL upd; sleep 0.5; $CTR task rm upd; $CTR c rm upd; "
        "echo memory=$m pids=$p; [ \"$m\" = 50331648 ] && [ \"$p\" = 77 ]"
    )


def test_containerd_restart_finds_the_shim_again() -> None:
    """containerd killed and started again: it reconnects to our shim through the bundle's
    `address` file, `ctr task ls` still shows the task running, and exec, kill and delete
    work through the new connection."""
    bindir = os.path.dirname(pyrunc_binary())
    _harness_exec(
        "set -u; "
        "$CTR run $CTRD_RUNTIME_ARGS -d $CTRD_IMG rs1 sleep 1000 || exit 1; "
        # (conf[i]g: the pattern must not match this script's own command line)
        "old=$(pgrep -f \"containerd --config $CTRD_BASE/conf[i]g.toml\"); "
        "[ -n \"$old\" ] || { echo no-containerd; exit 1; }; "
        "kill -9 $old; sleep 0.5; "
        f"( cd $CTRD_BASE/state && PATH={bindir}:$PATH exec containerd --config "
        "$CTRD_BASE/config.toml >>$CTRD_BASE/restarted.log 2>&1 ) & new=$!; "
        "for i in $(seq 100); do $CTR version >/dev/null 2>&1 && break; sleep 0.1; done; "
        "rc=0; "
        "$CTR task ls | grep -E '^rs1 .*RUNNING' || { echo not-listed; rc=1; }; "
        "out=$($CTR task exec --exec-id e1 rs1 echo after-restart) ; "
        "[ \"$out\" = after-restart ] || { echo exec-failed:$out; rc=1; }; "
        "$CTR task kill -s KILL rs1; "
        "for i in $(seq 50); do $CTR task ls | grep -q '^rs1 .*STOPPED' && break; sleep 0.1; done; "
        "$CTR task rm rs1 || rc=1; $CTR c rm rs1 || rc=1; "
        "kill -TERM $new; wait $new; exit $rc"
    )


def test_a_group_outlives_its_first_container() -> None:
    """The shim starts in the first container's bundle, which containerd removes with that
    container: the group's shim must go on serving (a new container, exec, delete)."""
    _harness_exec(
        "set -u; a='--annotation io.containerd.runc.v2.group=keep'; "
        "$CTR run $CTRD_RUNTIME_ARGS $a -d $CTRD_IMG k1 sleep 1000 || exit 1; "
        "$CTR run $CTRD_RUNTIME_ARGS $a -d $CTRD_IMG k2 sleep 1000 || exit 1; "
        "$CTR task kill -s KILL k1; sleep 0.5; $CTR task rm k1 && $CTR c rm k1 || exit 1; "
        "$CTR run $CTRD_RUNTIME_ARGS $a -d $CTRD_IMG k3 sleep 1000 || { echo k3; exit 1; }; "
        "out=$($CTR task exec --exec-id e k3 echo still-serving); rc=0; "
        "[ \"$out\" = still-serving ] || { echo exec:$out; rc=1; }; "
        "p2=$($CTR task ls | awk '$1==\"k2\"{print $2}'); "
        "p3=$($CTR task ls | awk '$1==\"k3\"{print $2}'); "
        "[ \"$(awk '/^PPid/{print $2}' /proc/$p2/status)\" = "
        "\"$(awk '/^PPid/{print $2}' /proc/$p3/status)\" ] || { echo other-shim; rc=1; }; "
        "for c in k2 k3; do $CTR task kill -s KILL $c; done; sleep 0.5; "
        "for c in k2 k3; do $CTR task rm $c; $CTR c rm $c; done; exit $rc"
    )


def test_kill_all_reaches_every_process() -> None:
    """Kill with all=true (ctr task kill --all): every process of the container gets the
    signal, not just the init (here an exec'd sleeper and the init's background child)."""
    _harness_exec(
        "set -u; " + _ALIVE
        + "$CTR run $CTRD_RUNTIME_ARGS -d $CTRD_IMG ka sh -c 'sleep 1000 & exec sleep 1001' "
        "|| exit 1; $CTR task exec -d --exec-id x ka sleep 1002 || exit 1; sleep 0.3; "
        "pids=$($CTR task ps ka | awk 'NR>1{print $1}'); n=$(echo $pids | wc -w); "
        "[ $n -eq 3 ] || { echo procs=$n; exit 1; }; "
        "$CTR task kill --all -s KILL ka || exit 1; "
        "for i in $(seq 50); do left=0; for p in $pids; do alive $p && left=1; done; "
        "[ $left = 0 ] && break; sleep 0.1; done; "
        "$CTR task rm ka; $CTR c rm ka; [ $left = 0 ] || { echo survivors; exit 1; }"
    )


def test_exec_with_a_terminal() -> None:
    """ctr task exec -t (under script(1) for a controlling terminal): the exec'd process gets
    a pts of its own through our shim's console handling, and its exit status comes back."""
    _harness_exec(
        "set -u; $CTR run $CTRD_RUNTIME_ARGS -d $CTRD_IMG et sleep 100 || exit 1; "
        "out=$(script -qefc \"$CTR task exec -t --exec-id t1 et sh -c 'tty; exit 4'\" "
        "/dev/null 2>&1); rc=$?; echo \"out=$out rc=$rc\"; "
        "$CTR task kill -s KILL et; sleep 0.5; $CTR task rm et; $CTR c rm et; "
        "echo \"$out\" | grep -q /dev/pts/ && [ $rc = 4 ]"
    )
