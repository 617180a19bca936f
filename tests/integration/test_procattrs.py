"""runtime-spec 1.2/1.3 process attributes, read back from inside the container.

process.scheduler (sched_setattr), process.ioPriority (ioprio_set), process.execCPUAffinity
(exec only: `initial` until the cgroup join, then `final`) and linux.memoryPolicy
(set_mempolicy), for run and for exec; each bad value refused with one line naming the field,
and nothing left behind.

The readings: /proc/<pid>/stat fields 18-19 (priority, nice), 40-41 (rt_priority, policy) and
/proc/<pid>/sched; busybox `ionice -p`; Cpus_allowed_list in /proc/<pid>/status;
/proc/<pid>/numa_maps, whose every mapping names the task's policy ("bind:0", "prefer:0").
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from harness import Bundle, Runtime, running, unique_id, userns_bundle

pytestmark = pytest.mark.integration

# the shell's own stat (not a forked reader's): fields 18 19 40 41
STAT = "cut -d' ' -f18,19,40,41 /proc/$$/stat"
NUMA = "head -n1 /proc/$$/numa_maps"
RT_CGROUP = os.path.exists("/sys/fs/cgroup/cpu/cpu.rt_runtime_us")  # v1 with RT group sched


def _numa_policy(line: str) -> str:
    """The policy field of numa_maps' first line, the shell's own text mapping
    ("00400000 prefer (many):0 file=/bin/sh ...")."""
    return line.split(" ", 1)[1].split(" file=")[0]


def _cpus() -> list[int]:
    return sorted(os.sched_getaffinity(0))


def _rt_budget(bundle: Bundle) -> None:
    """With RT group scheduling a task in a cgroup without cpu.rt_runtime_us cannot be
    SCHED_FIFO/RR even as root: give the container's cgroup a little."""
    if RT_CGROUP:
        cpu = bundle.linux.setdefault("resources", {}).setdefault("cpu", {})
        cpu.update({"realtimeRuntime": 10000, "realtimePeriod": 1000000})


def _cgroup_dirs(cid: str) -> list[str]:
    return [d for d, _s, _f in os.walk("/sys/fs/cgroup") if os.path.basename(d) == cid]


def _assert_nothing_left(rt: Runtime, cid: str) -> None:
    assert not (rt.root / cid).exists()
    assert rt.cmd("state", cid).rc == 1
    assert _cgroup_dirs(cid) == []


def _refused(rt: Runtime, bundle: Bundle, *expect: str) -> str:
    """`run` fails with exit 1 and one line containing every `expect`, leaving nothing."""
    cid = unique_id()
    r = rt.run(cid, bundle)
    assert r.rc == 1, r
    assert "Traceback" not in r.err, r.err
    lines = r.err.strip().splitlines()
    assert len(lines) == 1, r.err
    msg = _msg(lines[0])
    for e in expect:
        assert e in msg, (e, msg)
    _assert_nothing_left(rt, cid)
    return msg


def _msg(line: str) -> str:
    """The message of a logrus text line (time=... level=error msg="...")."""
    _, sep, rest = line.partition(" msg=")
    if not sep:
        return line
    if rest.startswith('"'):
        return rest[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return rest


def _exec_process(rt: Runtime, cid: str, tmp: Path, proc: dict, *flags: str):  # noqa: ANN202
    proc = {"terminal": False, "cwd": "/", "env": ["PATH=/bin:/usr/bin"], **proc}
    path = tmp / f"process-{unique_id()}.json"
    path.write_text(json.dumps(proc))
    return rt.cmd(*flags, "exec", "--process", str(path), cid)


# --- process.scheduler


@pytest.mark.parametrize(
    ("sched", "want"),
    [
        ({"policy": "SCHED_OTHER", "nice": 5}, {"nice": "5", "policy": "0"}),
        ({"policy": "SCHED_BATCH", "nice": 7}, {"nice": "7", "policy": "3"}),
        ({"policy": "SCHED_BATCH", "nice": -4}, {"nice": "-4", "policy": "3"}),
        ({"policy": "SCHED_IDLE"}, {"policy": "5"}),
    ],
    ids=["other-nice", "batch-nice", "batch-negative-nice", "idle"],
)
def test_scheduler_fair_policies(
    rt: Runtime, bundle: Bundle, sched: dict, want: dict[str, str]
) -> None:
    """Policy and nice of the container's process, as sched_setattr set them in the init."""
    bundle.process["scheduler"] = sched
    r = rt.run_sh(bundle, f"{STAT}; grep -E '^policy' /proc/$$/sched")
    assert r.rc == 0, r
    prio, nice, rt_prio, policy = r.out.splitlines()[0].split()
    assert policy == want["policy"]
    assert rt_prio == "0"
    if "nice" in want:
        assert nice == want["nice"]
        assert int(prio) == 20 + int(want["nice"])
    assert r.out.splitlines()[1].split()[-1] == want["policy"]


@pytest.mark.parametrize("policy", ["SCHED_FIFO", "SCHED_RR"])
def test_scheduler_realtime(rt: Runtime, bundle: Bundle, policy: str) -> None:
    """A realtime policy with its priority (given the cgroup an RT budget where the kernel
    has RT group scheduling)."""
    _rt_budget(bundle)
    bundle.process["scheduler"] = {"policy": policy, "priority": 10}
    r = rt.run_sh(bundle, f"{STAT}; grep -E '^prio ' /proc/$$/sched")
    assert r.rc == 0, r
    prio, _nice, rt_prio, pol = r.out.splitlines()[0].split()
    assert pol == {"SCHED_FIFO": "1", "SCHED_RR": "2"}[policy]
    assert rt_prio == "10"
    assert prio == "-11"  # -1 - rt_priority
    assert r.out.splitlines()[1].split()[-1] == "89"  # MAX_RT_PRIO-1 - rt_priority


def test_scheduler_reset_on_fork(rt: Runtime, bundle: Bundle) -> None:
    """SCHED_FLAG_RESET_ON_FORK reaches the kernel: the shell is SCHED_RR, what it forks is
    SCHED_OTHER again."""
    _rt_budget(bundle)
    bundle.process["scheduler"] = {
        "policy": "SCHED_RR",
        "priority": 3,
        "flags": ["SCHED_FLAG_RESET_ON_FORK"],
    }
    r = rt.run_sh(bundle, f"{STAT}; cut -d' ' -f41 /proc/self/stat; true")  # (forked)
    assert r.rc == 0, r
    lines = r.out.splitlines()
    assert lines[0].split()[2:] == ["3", "2"]
    assert lines[1] == "0"


def test_scheduler_deadline(rt: Runtime, bundle: Bundle) -> None:
    """SCHED_DEADLINE with runtime/deadline/period. A deadline task cannot fork, so the
    container's process is grep itself."""
    bundle.process["scheduler"] = {
        "policy": "SCHED_DEADLINE",
        "runtime": 1000000,
        "deadline": 10000000,
        "period": 10000000,
    }
    bundle.args("grep", "-E", "^(policy|prio) ", "/proc/self/sched")
    r = rt.run(unique_id(), bundle)
    if r.rc != 0 and "sched_setattr(SCHED_DEADLINE)" in r.err:
        pytest.skip(f"this host refuses SCHED_DEADLINE: {r.err.strip()}")
    assert r.rc == 0, r
    vals = [ln.split()[-1] for ln in r.out.splitlines()]
    assert vals == ["6", "-1"], r.out


def test_scheduler_refused_by_the_kernel(rt: Runtime, bundle: Bundle) -> None:
    """A policy the kernel refuses is one line through the init's error pipe, and nothing is
    left: SCHED_ISO (reserved, never implemented), and SCHED_FIFO in a cgroup without an RT
    budget where RT group scheduling is on."""
    bundle.process["scheduler"] = {"policy": "SCHED_ISO"}
    _refused(rt, bundle, "process.scheduler", "sched_setattr(SCHED_ISO)", "Invalid argument")
    if RT_CGROUP:
        bundle.process["scheduler"] = {"policy": "SCHED_FIFO", "priority": 5}
        bundle.linux.get("resources", {}).pop("cpu", None)
        _refused(
            rt, bundle, "process.scheduler", "sched_setattr(SCHED_FIFO)", "not permitted"
        )


def test_scheduler_fifo_in_a_user_namespace(
    rt: Runtime, bundle: Bundle, short_tmp: Path
) -> None:
    """Root of a user namespace lacks CAP_SYS_NICE where it counts (the initial user
    namespace): SCHED_FIFO is EPERM, reported as one line."""
    bundle = userns_bundle(bundle, short_tmp)
    _rt_budget(bundle)
    bundle.process["scheduler"] = {"policy": "SCHED_FIFO", "priority": 5}
    _refused(rt, bundle, "process.scheduler", "sched_setattr(SCHED_FIFO)", "not permitted")


# --- process.ioPriority


@pytest.mark.parametrize(
    ("io", "want"),
    [
        ({"class": "IOPRIO_CLASS_BE", "priority": 3}, "best-effort: prio 3"),
        ({"class": "IOPRIO_CLASS_BE"}, "best-effort: prio 0"),
        ({"class": "IOPRIO_CLASS_RT", "priority": 2}, "realtime: prio 2"),
        ({"class": "IOPRIO_CLASS_IDLE"}, "idle"),
    ],
    ids=["be-3", "be-default", "rt-2", "idle"],
)
def test_io_priority(rt: Runtime, bundle: Bundle, io: dict, want: str) -> None:
    bundle.process["ioPriority"] = io
    r = rt.run_sh(bundle, "ionice -p $$")
    assert r.rc == 0, r
    assert r.out.strip() == want


# --- linux.memoryPolicy


@pytest.mark.parametrize(
    ("policy", "want"),
    [
        ({"mode": "MPOL_BIND", "nodes": "0"}, "bind:0"),
        ({"mode": "MPOL_PREFERRED", "nodes": "0"}, "prefer:0"),
        ({"mode": "MPOL_INTERLEAVE", "nodes": "0"}, "interleave:0"),
        ({"mode": "MPOL_PREFERRED_MANY", "nodes": "0"}, "prefer (many):0"),
        ({"mode": "MPOL_WEIGHTED_INTERLEAVE", "nodes": "0"}, "weighted interleave:0"),
        ({"mode": "MPOL_LOCAL", "nodes": ""}, "local"),
        ({"mode": "MPOL_DEFAULT", "nodes": ""}, "default"),
        ({"mode": "MPOL_BIND", "nodes": "0", "flags": ["MPOL_F_STATIC_NODES"]}, "bind=static:0"),
        (
            {"mode": "MPOL_BIND", "nodes": "0", "flags": ["MPOL_F_RELATIVE_NODES"]},
            "bind=relative:0",
        ),
    ],
    ids=["bind", "preferred", "interleave", "preferred-many", "weighted-interleave", "local",
         "default", "static", "relative"],
)
def test_memory_policy(rt: Runtime, bundle: Bundle, policy: dict, want: str) -> None:
    """numa_maps names the policy of the task on every mapping without one of its own."""
    bundle.linux["memoryPolicy"] = policy
    r = rt.run_sh(bundle, f"{NUMA}; grep Mems_allowed_list /proc/$$/status")
    if r.rc != 0 and "set_mempolicy" in r.err and "Invalid argument" in r.err:
        pytest.skip(f"this kernel does not know {policy['mode']}: {r.err.strip()}")
    assert r.rc == 0, r
    lines = r.out.splitlines()
    assert _numa_policy(lines[0]) == want, r.out
    assert lines[1].split() == ["Mems_allowed_list:", "0"]


def test_memory_policy_refusals(rt: Runtime, bundle: Bundle) -> None:
    """A node this host does not have is refused before anything exists (one line naming the
    field); a combination only the kernel refuses comes back through the init's error pipe."""
    missing = max(int(n) for n in Path("/sys/devices/system/node/possible").read_text()
                  .strip().replace("-", ",").split(",")) + 1
    bundle.linux["memoryPolicy"] = {"mode": "MPOL_BIND", "nodes": str(missing)}
    _refused(rt, bundle, "config.json: linux.memoryPolicy.nodes", f"node {missing} does not exist")
    bundle.linux["memoryPolicy"] = {"mode": "MPOL_PREFERRED", "nodes": f"0,{missing}-{missing + 2}"}
    _refused(rt, bundle, "linux.memoryPolicy.nodes", f"nodes {missing}-{missing + 2} do not")
    # MPOL_F_NUMA_BALANCING is for MPOL_BIND (and, on newer kernels, MPOL_PREFERRED_MANY)
    bundle.linux["memoryPolicy"] = {
        "mode": "MPOL_INTERLEAVE", "nodes": "0", "flags": ["MPOL_F_NUMA_BALANCING"]
    }
    _refused(rt, bundle, "linux.memoryPolicy: set_mempolicy(MPOL_INTERLEAVE", "Invalid argument")


# --- process.execCPUAffinity


@pytest.fixture
def two_cpus() -> list[int]:
    cpus = _cpus()
    if len(cpus) < 2:
        pytest.skip("needs two CPUs")
    return cpus[:2]


def test_exec_cpu_affinity_from_process_json(
    rt: Runtime, bundle: Bundle, tmp_path: Path, two_cpus: list[int]
) -> None:
    """exec --process: started on `initial` (runc's nsexec debug line says where), then on
    `final` once in the container's cgroup; the init is untouched."""
    a, b = two_cpus
    cid = running(rt, bundle)
    grep = ["/bin/grep", "Cpus_allowed_list", "/proc/self/status"]
    for initial, final in [(str(b), str(a)), (str(a), str(b)), (f"{a},{b}", str(b)),
                           (f"{a}-{b}", f"{a}-{b}")]:
        r = _exec_process(rt, cid, tmp_path,
                          {"execCPUAffinity": {"initial": initial, "final": final},
                           "args": grep}, "--debug")
        assert r.rc == 0, r
        assert r.out.split() == ["Cpus_allowed_list:", final], (initial, final, r.out)
        mask = hex(sum(1 << int(c) for c in initial.replace("-", ",").split(",")))
        debug = r.err.splitlines()
        assert any("nsexec" in ln and f": affinity: {mask}" in ln for ln in debug), r.err
    r = rt.cmd("exec", cid, "grep", "Cpus_allowed_list", "/proc/1/status")
    assert r.out.split()[1] == f"{a}-{b}"


def test_exec_cpu_affinity_initial_only(
    rt: Runtime, bundle: Bundle, tmp_path: Path, two_cpus: list[int]
) -> None:
    """Without `final` the process ends on the container's default, the CPUs of its cgroup
    (the spec), not on `initial`."""
    a, b = two_cpus
    cid = running(rt, bundle)
    r = _exec_process(rt, cid, tmp_path, {"execCPUAffinity": {"initial": str(b)},
                                          "args": ["/bin/grep", "Cpus_allowed_list",
                                                   "/proc/self/status"]}, "--debug")
    assert r.rc == 0, r
    assert r.out.split()[1] == f"{a}-{b}"
    assert f": affinity: {hex(1 << b)}" in r.err


def test_exec_cpu_affinity_from_config(
    rt: Runtime, bundle: Bundle, two_cpus: list[int]
) -> None:
    """config.json's execCPUAffinity is for the processes exec starts (runc's "initial and
    final set from config.json"), not for the container's init (the spec: not applicable)."""
    a, b = two_cpus
    bundle.process["execCPUAffinity"] = {"initial": str(a), "final": str(b)}
    cid = running(rt, bundle)
    r = rt.cmd("exec", cid, "sh", "-c",
               "grep Cpus_allowed_list /proc/self/status; grep Cpus_allowed_list /proc/1/status")
    assert r.rc == 0, r
    assert r.out.split() == ["Cpus_allowed_list:", str(b), "Cpus_allowed_list:", f"{a}-{b}"]


def test_run_ignores_exec_cpu_affinity(rt: Runtime, bundle: Bundle, two_cpus: list[int]) -> None:
    """`run`: the container's process is the init, which execCPUAffinity does not apply to."""
    a, b = two_cpus
    bundle.process["execCPUAffinity"] = {"initial": str(a), "final": str(b)}
    r = rt.run_sh(bundle, "grep Cpus_allowed_list /proc/self/status")
    assert r.rc == 0, r
    assert r.out.split() == ["Cpus_allowed_list:", f"{a}-{b}"]


def test_exec_cpu_affinity_refused(
    rt: Runtime, bundle: Bundle, tmp_path: Path, two_cpus: list[int]
) -> None:
    """A list with no usable CPU: `initial` fails before the fork, `final` in the child (one
    line each, exit 255, no process left in the container); a malformed list names the field
    of process.json."""
    cid = running(rt, bundle)
    absent = str(max(_cpus()) + 64)
    cases = [
        ({"initial": absent}, "process.execCPUAffinity.initial: sched_setaffinity"),
        ({"final": absent}, "process.execCPUAffinity.final: sched_setaffinity"),
        ({"initial": "3-1"}, "process.json: execCPUAffinity.initial: invalid list"),
        ({"final": "1 - 2"}, "process.json: execCPUAffinity.final: invalid list"),
        ({"final": "a"}, "process.json: execCPUAffinity.final"),
    ]
    for aff, expect in cases:
        r = _exec_process(rt, cid, tmp_path, {"execCPUAffinity": aff, "args": ["/bin/true"]})
        assert r.rc == 255, (aff, r)
        lines = r.err.strip().splitlines()
        assert len(lines) == 1 and expect in lines[0], (aff, r.err)
    assert json.loads(rt.cmd("ps", "-f", "json", cid).out) == [rt.state(cid)["pid"]]


# --- exec gets the attributes too


def test_exec_scheduler_io_priority_memory_policy(
    rt: Runtime, bundle: Bundle, tmp_path: Path
) -> None:
    """A process exec starts gets process.json's scheduler and ioPriority, the container's
    memory policy; without --process, the container's own process settings."""
    bundle.process["scheduler"] = {"policy": "SCHED_BATCH", "nice": 3}
    bundle.process["ioPriority"] = {"class": "IOPRIO_CLASS_BE", "priority": 6}
    bundle.linux["memoryPolicy"] = {"mode": "MPOL_PREFERRED", "nodes": "0"}
    cid = running(rt, bundle)
    script = f"{STAT}; ionice -p $$; {NUMA}"
    r = rt.cmd("exec", cid, "sh", "-c", script)
    assert r.rc == 0, r
    lines = r.out.splitlines()
    assert lines[0].split()[1::2] == ["3", "3"]  # nice 3, SCHED_BATCH
    assert lines[1] == "best-effort: prio 6"
    assert _numa_policy(lines[2]) == "prefer:0"
    r = _exec_process(rt, cid, tmp_path, {
        "scheduler": {"policy": "SCHED_IDLE"},
        "ioPriority": {"class": "IOPRIO_CLASS_IDLE"},
        "args": ["sh", "-c", script],
    })
    assert r.rc == 0, r
    lines = r.out.splitlines()
    assert lines[0].split()[3] == "5"
    assert lines[1] == "idle"
    assert _numa_policy(lines[2]) == "prefer:0"


def test_sealed_runtime_applies_them_too(rt: Runtime, bundle: Bundle, two_cpus: list[int]) -> None:
    """A container whose processes may hold CAP_SYS_PTRACE gets its init, and each exec'd
    process, from a sealed re-executed interpreter (init/sealed.py), which has to load what
    these attributes need before it joins the container's mount namespace."""
    a, b = two_cpus
    caps = bundle.process["capabilities"]
    for k in ("bounding", "effective", "permitted"):
        caps.setdefault(k, []).append("CAP_SYS_PTRACE")
    bundle.process["scheduler"] = {"policy": "SCHED_BATCH", "nice": 2}
    bundle.process["ioPriority"] = {"class": "IOPRIO_CLASS_BE", "priority": 1}
    bundle.process["execCPUAffinity"] = {"initial": str(a), "final": str(b)}
    bundle.linux["memoryPolicy"] = {"mode": "MPOL_BIND", "nodes": "0"}
    script = f"{STAT}; ionice -p $$; {NUMA}; grep Cpus_allowed_list /proc/$$/status"
    r = rt.run_sh(bundle, script)
    assert r.rc == 0, r
    lines = r.out.splitlines()
    assert lines[0].split()[1::2] == ["2", "3"]
    assert lines[1] == "best-effort: prio 1"
    assert _numa_policy(lines[2]) == "bind:0"
    assert lines[3].split()[1] == f"{a}-{b}"
    cid = running(rt, bundle)
    r = rt.cmd("exec", cid, "sh", "-c", script)
    assert r.rc == 0, r
    lines = r.out.splitlines()
    assert lines[0].split()[1::2] == ["2", "3"]
    assert lines[1] == "best-effort: prio 1"
    assert _numa_policy(lines[2]) == "bind:0"
    assert lines[3].split()[1] == str(b)


def test_exec_refuses_bad_scheduler_in_process_json(
    rt: Runtime, bundle: Bundle, tmp_path: Path
) -> None:
    cid = running(rt, bundle)
    r = _exec_process(rt, cid, tmp_path, {"scheduler": {"policy": "SCHED_OTHER", "priority": 3},
                                          "args": ["/bin/true"]})
    assert r.rc == 255, r
    assert r.err.strip().splitlines() == [r.err.strip()], r.err
    assert "process.json: scheduler.priority: can only be specified for SCHED_FIFO or " \
        "SCHED_RR, not SCHED_OTHER" in r.err, r.err
    r = _exec_process(rt, cid, tmp_path, {"scheduler": {"policy": "SCHED_FOO"},
                                          "args": ["/bin/true"]})
    assert r.rc == 255 and "process.json: scheduler.policy" in r.err, r


# --- bad values in config.json


BAD = [
    ("process", "scheduler", {"policy": "SCHED_FOO"}, "config.json: process.scheduler.policy"),
    ("process", "scheduler", {"nice": 3}, 'config.json: process.scheduler: missing required '
     'property "policy"'),
    ("process", "scheduler", {"policy": "SCHED_OTHER", "nice": 20},
     "config.json: process.scheduler.nice: 20 is out of range -20..19 for SCHED_OTHER"),
    ("process", "scheduler", {"policy": "SCHED_BATCH", "priority": 5},
     "config.json: process.scheduler.priority: can only be specified for SCHED_FIFO or "
     "SCHED_RR, not SCHED_BATCH"),
    ("process", "scheduler", {"policy": "SCHED_RR", "priority": 100},
     "config.json: process.scheduler.priority: 100 is out of range 1..99 for SCHED_RR"),
    ("process", "scheduler", {"policy": "SCHED_FIFO"},
     "config.json: process.scheduler.priority: 0 is out of range 1..99 for SCHED_FIFO"),
    ("process", "scheduler", {"policy": "SCHED_OTHER", "runtime": 10},
     "config.json: process.scheduler.runtime: can only be specified for SCHED_DEADLINE"),
    ("process", "scheduler", {"policy": "SCHED_DEADLINE", "runtime": 2000, "deadline": 1000},
     "config.json: process.scheduler.runtime: 2000 is greater than deadline 1000"),
    ("process", "scheduler", {"policy": "SCHED_OTHER", "flags": ["SCHED_FLAG_BOGUS"]},
     "config.json: process.scheduler.flags[0]"),
    ("process", "scheduler", {"policy": "SCHED_OTHER", "nice": "1"},
     "config.json: process.scheduler.nice: expected integer, got string"),
    ("process", "ioPriority", {"class": "IOPRIO_CLASS_BE", "priority": 8},
     "config.json: process.ioPriority.priority: 8 is out of range 0..7"),
    ("process", "ioPriority", {"class": "IOPRIO_CLASS_NONE"},
     "config.json: process.ioPriority.class"),
    ("process", "ioPriority", {"priority": 1},
     'config.json: process.ioPriority: missing required property "class"'),
    ("process", "execCPUAffinity", {"initial": "0-x"},
     "config.json: process.execCPUAffinity.initial"),
    ("process", "execCPUAffinity", {"final": "2-1"},
     "config.json: process.execCPUAffinity.final: invalid list '2-1'"),
    ("process", "execCPUAffinity", {"final": ","},
     "config.json: process.execCPUAffinity.final: invalid list ',': no numbers in it"),
    ("process", "execCPUAffinity", {"initial": "70000"},
     "config.json: process.execCPUAffinity.initial: invalid list '70000': values larger than"),
    ("linux", "memoryPolicy", {"mode": "MPOL_FOO", "nodes": "0"},
     "config.json: linux.memoryPolicy.mode"),
    # runtime-spec 1.3: nodes is OPTIONAL in the schema; the modes that need some say so
    ("linux", "memoryPolicy", {"mode": "MPOL_BIND"},
     "config.json: linux.memoryPolicy.nodes: MPOL_BIND needs at least one node"),
    ("linux", "memoryPolicy", {"mode": "MPOL_BIND", "nodes": ""},
     "config.json: linux.memoryPolicy.nodes: MPOL_BIND needs at least one node"),
    ("linux", "memoryPolicy", {"mode": "MPOL_DEFAULT", "nodes": "0"},
     "config.json: linux.memoryPolicy.nodes: MPOL_DEFAULT takes no nodes"),
    ("linux", "memoryPolicy", {"mode": "MPOL_BIND", "nodes": "0-"},
     "config.json: linux.memoryPolicy.nodes: invalid list '0-'"),
    ("linux", "memoryPolicy", {"mode": "MPOL_BIND", "nodes": "0",
                               "flags": ["MPOL_F_STATIC_NODES", "MPOL_F_RELATIVE_NODES"]},
     "config.json: linux.memoryPolicy.flags: MPOL_F_STATIC_NODES and MPOL_F_RELATIVE_NODES"),
    ("linux", "memoryPolicy", {"mode": "MPOL_BIND", "nodes": "0", "flags": ["MPOL_F_NONE"]},
     "config.json: linux.memoryPolicy.flags[0]"),
]


@pytest.mark.parametrize("case", BAD, ids=[f"{c[1]}-{i}" for i, c in enumerate(BAD)])
def test_bad_values_refused(rt: Runtime, bundle: Bundle, case: tuple) -> None:
    """Each bad value: exit 1, one line naming the field, no state dir, cgroup or process."""
    section, key, value, expect = case
    bundle.config[section][key] = value
    _refused(rt, bundle, expect)


def test_create_refusal_leaves_nothing(rt: Runtime, bundle: Bundle) -> None:
    """`create` (the shims' path) too, for a refusal from the kernel after the fork."""
    bundle.process["scheduler"] = {"policy": "SCHED_ISO"}
    cid = unique_id()
    r = rt.create(cid, bundle)
    assert r.rc == 1, r
    assert len(r.err.strip().splitlines()) == 1 and "sched_setattr(SCHED_ISO)" in r.err
    _assert_nothing_left(rt, cid)


# --- features


def test_features_memory_policy(rt: Runtime) -> None:
    """runc's shape (runc 1.4, runtime-spec 1.3): the modes and flags it recognises, sorted;
    with 1.3's other Linux fields, ociVersionMax is 1.3.0 (see test_features.py)."""
    f = json.loads(rt.cmd("features").out)
    assert f["linux"]["memoryPolicy"] == {
        "modes": ["MPOL_BIND", "MPOL_DEFAULT", "MPOL_INTERLEAVE", "MPOL_LOCAL",
                  "MPOL_PREFERRED", "MPOL_PREFERRED_MANY", "MPOL_WEIGHTED_INTERLEAVE"],
        "flags": ["MPOL_F_NUMA_BALANCING", "MPOL_F_RELATIVE_NODES", "MPOL_F_STATIC_NODES"],
    }
    assert f["ociVersionMax"] == "1.3.0"
