"""The plan-time checks of process.scheduler, ioPriority, execCPUAffinity and
linux.memoryPolicy (pyrunc.linux.sched, pyrunc.linux.mempolicy): runc's rules, one-line errors
naming the field, and the values handed to the syscalls."""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys

import pytest

import pyrunc.validate as v
from pyrunc.errors import ConfigError
from pyrunc.linux import mempolicy, sched


def _err(fn, *args) -> str:  # noqa: ANN001
    with pytest.raises(ConfigError) as info:
        fn(*args)
    msg = str(info.value)
    assert "\n" not in msg
    return msg


# --- CPU / node lists: runc's configs.ToCPUSet table


@pytest.mark.parametrize(
    ("text", "ids"),
    [
        ("", ()),
        ("0", (0,)),
        ("1", (1,)),
        ("0-1", (0, 1)),
        ("0,1", (0, 1)),
        (",0,1,", (0, 1)),
        ("0-3", (0, 1, 2, 3)),
        ("0,1,2-3", (0, 1, 2, 3)),
        ("4-7", (4, 5, 6, 7)),
        ("1, 2, 1-2", (1, 2)),
        ("    , 1   , 3  ,  5-7,    ", (1, 3, 5, 6, 7)),
        ("0-3,32-33", (0, 1, 2, 3, 32, 33)),
        ("127-129, 1", (1, 127, 128, 129)),
        ("1023", (1023,)),
        ("4096-4098", (4096, 4097, 4098)),
        ("0,65536", (0, 65536)),
        ("65536", (65536,)),
    ],
)
def test_cpu_list(text: str, ids: tuple) -> None:
    assert sched.cpu_list(text, "x") == ids


@pytest.mark.parametrize(
    "text", ["-", "1-", "-3", ",", " ", "54-53", "1 - 2", "65537", "0-65537", "1.5", "٣"]
)
def test_cpu_list_refused(text: str) -> None:
    msg = _err(sched.cpu_list, text, "config.json: process.execCPUAffinity.final")
    assert msg.startswith("config.json: process.execCPUAffinity.final: invalid list")


def test_show_list_round_trips() -> None:
    for ids in [(0,), (0, 1), (0, 2), (0, 1, 2, 5, 7, 8), (3, 4, 5, 9)]:
        shown = sched.show_list(ids)
        assert sched.cpu_list(shown, "x") == ids
    assert sched.show_list((0, 1, 2, 5, 7, 8)) == "0-2,5,7-8"


def test_affinity() -> None:
    assert sched.affinity({"initial": "0-1", "final": "1"}) == ((0, 1), (1,))
    assert sched.affinity({"initial": "", "final": "3"}) == ((), (3,))
    assert sched.affinity({}) == ((), ())
    assert _err(sched.affinity, {"initial": "2-1"}).startswith(
        "config.json: process.execCPUAffinity.initial: invalid list '2-1'"
    )
    assert _err(sched.affinity, {"final": "x"}, "process.json: ").startswith(
        "process.json: execCPUAffinity.final: invalid list 'x'"
    )


def test_mask() -> None:
    assert sched.mask({0}) == "0x1"
    assert sched.mask({1}) == "0x2"
    assert sched.mask({0, 1, 4}) == "0x13"


# --- process.scheduler


@pytest.mark.parametrize(
    ("spec", "attr"),
    [
        ({"policy": "SCHED_OTHER"}, (0, 0, 0, 0, 0, 0, 0)),
        ({"policy": "SCHED_BATCH", "nice": -20}, (3, 0, -20, 0, 0, 0, 0)),
        ({"policy": "SCHED_IDLE", "nice": 40}, (5, 0, 40, 0, 0, 0, 0)),  # runc: OTHER/BATCH
        ({"policy": "SCHED_FIFO", "priority": 99}, (1, 0, 0, 99, 0, 0, 0)),
        (
            {"policy": "SCHED_RR", "priority": 1, "flags": ["SCHED_FLAG_RESET_ON_FORK",
                                                            "SCHED_FLAG_UTIL_CLAMP_MAX"]},
            (2, 0x41, 0, 1, 0, 0, 0),
        ),
        (
            {"policy": "SCHED_DEADLINE", "runtime": 1024, "deadline": 2048, "period": 4096,
             "flags": ["SCHED_FLAG_RECLAIM", "SCHED_FLAG_DL_OVERRUN"]},
            (6, 0x06, 0, 0, 1024, 2048, 4096),
        ),
        ({"policy": "SCHED_DEADLINE", "runtime": 5000, "deadline": 5000}, (6, 0, 0, 0, 5000,
                                                                          5000, 0)),
        ({"policy": "SCHED_ISO"}, (4, 0, 0, 0, 0, 0, 0)),  # the kernel refuses it, not we
        (
            {"policy": "SCHED_OTHER", "flags": ["SCHED_FLAG_KEEP_POLICY",
                                                "SCHED_FLAG_KEEP_PARAMS",
                                                "SCHED_FLAG_UTIL_CLAMP_MIN"]},
            (0, 0x38, 0, 0, 0, 0, 0),
        ),
    ],
)
def test_scheduler_attr(spec: dict, attr: tuple) -> None:
    assert sched.scheduler(spec) == attr


@pytest.mark.parametrize(
    ("spec", "msg"),
    [
        ({"policy": "SCHED_OTHER", "nice": 20},
         "config.json: process.scheduler.nice: 20 is out of range -20..19 for SCHED_OTHER"),
        ({"policy": "SCHED_BATCH", "nice": -21},
         "config.json: process.scheduler.nice: -21 is out of range -20..19 for SCHED_BATCH"),
        ({"policy": "SCHED_OTHER", "priority": 1},
         "config.json: process.scheduler.priority: can only be specified for SCHED_FIFO or "
         "SCHED_RR, not SCHED_OTHER"),
        ({"policy": "SCHED_DEADLINE", "priority": -1, "runtime": 2000, "deadline": 2000},
         "config.json: process.scheduler.priority: can only be specified for SCHED_FIFO or "
         "SCHED_RR, not SCHED_DEADLINE"),
        ({"policy": "SCHED_FIFO"},
         "config.json: process.scheduler.priority: 0 is out of range 1..99 for SCHED_FIFO"),
        ({"policy": "SCHED_RR", "priority": -3},
         "config.json: process.scheduler.priority: -3 is out of range 1..99 for SCHED_RR"),
        ({"policy": "SCHED_IDLE", "deadline": 5},
         "config.json: process.scheduler.deadline: can only be specified for SCHED_DEADLINE, "
         "not SCHED_IDLE"),
        ({"policy": "SCHED_FIFO", "priority": 5, "period": 5},
         "config.json: process.scheduler.period: can only be specified for SCHED_DEADLINE, "
         "not SCHED_FIFO"),
        ({"policy": "SCHED_DEADLINE", "runtime": 2000},
         "config.json: process.scheduler.deadline: required (non-zero) for SCHED_DEADLINE"),
        ({"policy": "SCHED_DEADLINE", "runtime": 100, "deadline": 2000},
         "config.json: process.scheduler.runtime: 100 is below the kernel's minimum of 1024 ns"),
        ({"policy": "SCHED_DEADLINE", "runtime": 3000, "deadline": 2000},
         "config.json: process.scheduler.runtime: 3000 is greater than deadline 2000"),
        ({"policy": "SCHED_DEADLINE", "runtime": 2000, "deadline": 3000, "period": 2500},
         "config.json: process.scheduler.period: 2500 is less than deadline 3000"),
        ({"policy": "SCHED_DEADLINE", "runtime": 2000, "deadline": 1 << 63},
         "config.json: process.scheduler: deadline and period must be below 2^63 ns"),
    ],
)
def test_scheduler_refused(spec: dict, msg: str) -> None:
    assert _err(sched.scheduler, spec) == msg


def test_scheduler_where_for_process_json() -> None:
    assert _err(sched.scheduler, {"policy": "SCHED_FIFO"}, "process.json: ").startswith(
        "process.json: scheduler.priority: 0 is out of range"
    )


# --- process.ioPriority


@pytest.mark.parametrize(
    ("spec", "value"),
    [
        ({"class": "IOPRIO_CLASS_RT", "priority": 0}, 1 << 13),
        ({"class": "IOPRIO_CLASS_BE", "priority": 7}, 2 << 13 | 7),
        ({"class": "IOPRIO_CLASS_BE"}, 2 << 13),
        ({"class": "IOPRIO_CLASS_IDLE"}, 3 << 13),
    ],
)
def test_ioprio(spec: dict, value: int) -> None:
    assert sched.ioprio(spec) == value


@pytest.mark.parametrize("prio", [-1, 8, 2**31 - 1])
def test_ioprio_refused(prio: int) -> None:
    assert _err(sched.ioprio, {"class": "IOPRIO_CLASS_BE", "priority": prio}) == (
        f"config.json: process.ioPriority.priority: {prio} is out of range 0..7"
    )


def test_check_process() -> None:
    sched.check_process({"args": ["x"]})
    sched.check_process({"scheduler": {"policy": "SCHED_IDLE"},
                         "ioPriority": {"class": "IOPRIO_CLASS_IDLE"},
                         "execCPUAffinity": {"final": "0"}}, "process.json: ")
    assert _err(sched.check_process, {"ioPriority": {"class": "IOPRIO_CLASS_RT",
                                                     "priority": 9}}, "process.json: ") == (
        "process.json: ioPriority.priority: 9 is out of range 0..7"
    )


# --- linux.memoryPolicy


@pytest.fixture
def four_nodes(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    path = tmp_path / "possible"
    path.write_text("0-3\n")
    monkeypatch.setattr(mempolicy, "POSSIBLE", str(path))


@pytest.mark.parametrize(
    ("spec", "policy"),
    [
        ({"mode": "MPOL_DEFAULT", "nodes": ""}, (0, ())),
        ({"mode": "MPOL_LOCAL", "nodes": ""}, (4, ())),
        ({"mode": "MPOL_PREFERRED", "nodes": ""}, (1, ())),  # empty: local allocation
        ({"mode": "MPOL_PREFERRED", "nodes": "2"}, (1, (2,))),
        ({"mode": "MPOL_BIND", "nodes": "0-1,3"}, (2, (0, 1, 3))),
        ({"mode": "MPOL_INTERLEAVE", "nodes": "0-3", "flags": ["MPOL_F_STATIC_NODES"]},
         (3 | 1 << 15, (0, 1, 2, 3))),
        ({"mode": "MPOL_PREFERRED_MANY", "nodes": "1,2"}, (5, (1, 2))),
        ({"mode": "MPOL_WEIGHTED_INTERLEAVE", "nodes": "0,3"}, (6, (0, 3))),
        ({"mode": "MPOL_BIND", "nodes": "0", "flags": ["MPOL_F_NUMA_BALANCING"]},
         (2 | 1 << 13, (0,))),
        # relative nodes index the cpuset's: any number will do
        ({"mode": "MPOL_BIND", "nodes": "7", "flags": ["MPOL_F_RELATIVE_NODES"]},
         (2 | 1 << 14, (7,))),
    ],
)
def test_memory_policy(four_nodes: None, spec: dict, policy: tuple) -> None:
    assert mempolicy.check(spec) == policy


@pytest.mark.parametrize(
    ("spec", "msg"),
    [
        ({"mode": "MPOL_DEFAULT", "nodes": "0"},
         "config.json: linux.memoryPolicy.nodes: MPOL_DEFAULT takes no nodes, got '0'"),
        ({"mode": "MPOL_LOCAL", "nodes": "1-2"},
         "config.json: linux.memoryPolicy.nodes: MPOL_LOCAL takes no nodes, got '1-2'"),
        ({"mode": "MPOL_BIND", "nodes": ""},
         "config.json: linux.memoryPolicy.nodes: MPOL_BIND needs at least one node"),
        ({"mode": "MPOL_WEIGHTED_INTERLEAVE"},
         "config.json: linux.memoryPolicy.nodes: MPOL_WEIGHTED_INTERLEAVE needs at least one "
         "node"),
        ({"mode": "MPOL_BIND", "nodes": "0",
          "flags": ["MPOL_F_RELATIVE_NODES", "MPOL_F_STATIC_NODES"]},
         "config.json: linux.memoryPolicy.flags: MPOL_F_STATIC_NODES and MPOL_F_RELATIVE_NODES "
         "exclude each other"),
        ({"mode": "MPOL_LOCAL", "nodes": "", "flags": ["MPOL_F_STATIC_NODES"]},
         "config.json: linux.memoryPolicy.flags: MPOL_LOCAL takes no node flags"),
        ({"mode": "MPOL_BIND", "nodes": "4"},
         "config.json: linux.memoryPolicy.nodes: node 4 does not exist on this host "
         "(its nodes: 0-3)"),
        ({"mode": "MPOL_INTERLEAVE", "nodes": "2-5,9", "flags": ["MPOL_F_STATIC_NODES"]},
         "config.json: linux.memoryPolicy.nodes: nodes 4-5,9 do not exist on this host "
         "(its nodes: 0-3)"),
        ({"mode": "MPOL_BIND", "nodes": "1-0"},
         "config.json: linux.memoryPolicy.nodes: invalid list '1-0': range '1-0' is backwards"),
    ],
)
def test_memory_policy_refused(four_nodes: None, spec: dict, msg: str) -> None:
    assert _err(mempolicy.check, spec) == msg


def test_memory_policy_without_numa(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    """No node directory (a kernel without NUMA): the kernel's ENOSYS will say it."""
    monkeypatch.setattr(mempolicy, "POSSIBLE", str(tmp_path / "none"))
    assert mempolicy.check({"mode": "MPOL_BIND", "nodes": "5"}) == (2, (5,))


def test_features_lists_what_mempolicy_knows() -> None:
    from pyrunc.features import features

    f = features()["linux"]
    assert f["memoryPolicy"]["modes"] == sorted(mempolicy.MODES)
    assert f["memoryPolicy"]["flags"] == sorted(mempolicy.FLAGS)
    assert len(mempolicy.MODES) == 7 and len(mempolicy.FLAGS) == 3
    assert not {"scheduler", "ioPriority", "execCPUAffinity"} & set(f)  # runc 1.3 neither


# --- the validator's "^[...]*$" patterns, without re


@pytest.mark.parametrize(
    "pattern", ["^[0-9, -]*$", "^[a-z]*$", "^[-a]*$", "^[a-]*$", "^[x]*$", "^[0-9a-f_]*$"]
)
def test_class_star_agrees_with_re(pattern: str) -> None:
    assert v._class_star(pattern) is not None
    ours = v._matcher(pattern)
    theirs = re.compile(pattern).search
    rng = random.Random(pattern)
    alphabet = "0123456789,- abfxz_\n\t.é"
    samples = ["", "\n", "0\n", "0\n\n", "0-1,3", " 1 - 2 ", "a-", "-"]
    samples += ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 8)))
                for _ in range(2000)]
    for s in samples:
        assert ours(s) == (theirs(s) is not None), (pattern, s)


@pytest.mark.parametrize("pattern", ["^[a-b-c]*$", "^[^a]*$", "^[a\\]]*$", "^[z-a]*$", "^[]*$",
                                     "^[0-9]+$", "[0-9]*$"])
def test_class_star_leaves_the_rest_to_re(pattern: str) -> None:
    assert v._class_star(pattern) is None


def test_exec_cpu_affinity_needs_no_re() -> None:
    """A config with execCPUAffinity is validated without importing re (~6 ms)."""
    code = (
        "import sys; before = set(sys.modules); from pyrunc.validate import validate; "
        "from pyrunc.specgen import default_spec; s = default_spec(); "
        "s['process']['execCPUAffinity'] = {'initial': '0-1', 'final': '1'}; "
        "s['linux']['memoryPolicy'] = {'mode': 'MPOL_BIND', 'nodes': '0'}; validate(s); "
        "print('re' in sys.modules and 're' not in before)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=os.path.dirname(os.path.dirname(__file__)))
    assert out.stdout.strip() == "False"
