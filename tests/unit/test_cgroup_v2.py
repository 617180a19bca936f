"""cgroup v2 resource writing: runc's conversions and file formats.

This host's controllers are all bound to cgroup v1, so the v2 limit files cannot be written
for real here (the v2-only integration tests cover what the kernel does allow: membership,
freezing, cgroup.* unified keys and the eBPF device program). These tests pin the logic:
values, units and the order of the writes, recorded at the one write boundary.
"""

from __future__ import annotations

import pytest

from pyrunc.errors import ConfigError, RuntimeErr
from pyrunc.linux import cgroup_v2


@pytest.mark.parametrize(
    ("shares", "weight"),
    [(0, 0), (2, 1), (1024, 39), (262144, 10000), (512, 20), (100, 4)],
)
def test_cpu_shares_to_weight(shares: int, weight: int) -> None:
    assert cgroup_v2.cpu_shares_to_weight(shares) == weight


@pytest.mark.parametrize(("w", "io"), [(0, 0), (10, 1), (1000, 10000), (500, 4950), (100, 910)])
def test_blkio_weight_to_io_weight(w: int, io: int) -> None:
    assert cgroup_v2.blkio_weight_to_io_weight(w) == io


@pytest.mark.parametrize(
    ("swap", "mem", "out"),
    [(0, 0, 0), (0, -1, -1), (-1, 100, -1), (300, 100, 200), (100, 100, 0), (-1, -1, -1)],
)
def test_swap_conversion(swap: int, mem: int, out: int) -> None:
    assert cgroup_v2.swap_to_v2(swap, mem) == out


@pytest.mark.parametrize(
    ("swap", "mem", "msg"),
    [(100, 0, "without memory limit"), (100, -1, "without memory limit"), (50, 100, ">=")],
)
def test_swap_conversion_errors(swap: int, mem: int, msg: str) -> None:
    with pytest.raises(ConfigError, match=msg):
        cgroup_v2.swap_to_v2(swap, mem)


class Recorder:
    """The cgroup directory as the kernel would take it: every write, in order."""

    def __init__(self, present: set[str] | None = None) -> None:
        self.writes: list[tuple[str, str]] = []
        self.present = present

    def __call__(self, path: str, data: str | bytes) -> None:
        name = path.rsplit("/", 1)[1]
        if self.present is not None and name not in self.present:
            raise FileNotFoundError(2, "No such file or directory")
        self.writes.append((name, data if isinstance(data, str) else data.decode()))


@pytest.fixture
def rec(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    r = Recorder()
    monkeypatch.setattr(cgroup_v2, "write_file", r)
    # the device program is tested on the real kernel in test_bpf_devices.py
    monkeypatch.setattr(cgroup_v2, "_devices", lambda path, rules: None)
    return r


def test_full_resources_in_runc_order(rec: Recorder, tmp_path: object) -> None:
    res = {
        "pids": {"limit": 99},
        "memory": {"limit": 1 << 30, "swap": 2 << 30, "reservation": 1 << 29},
        "blockIO": {
            "weight": 500,
            "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1000}],
            "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 50}],
        },
        "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"},
        "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}],
        "rdma": {"mlx5_1": {"hcaHandles": 3, "hcaObjects": 10000}},
        "unified": {"memory.high": "max", "cgroup.max.depth": "4"},
    }
    cgroup_v2.apply(str(tmp_path), res)
    assert rec.writes == [
        ("pids.max", "99"),
        ("memory.swap.max", str(1 << 30)),
        ("memory.max", str(1 << 30)),
        ("memory.low", str(1 << 29)),
        ("io.weight", "4950"),
        ("io.max", "8:0 rbps=1000"),
        ("io.max", "8:0 wiops=50"),
        ("cpu.weight", "39"),
        ("cpu.max", "50000 100000"),
        ("cpuset.cpus", "0"),
        ("cpuset.mems", "0"),
        ("hugetlb.2MB.max", "4194304"),
        ("rdma.max", "mlx5_1 hca_handle=3 hca_object=10000"),
        ("memory.high", "max"),
        ("cgroup.max.depth", "4"),
    ]


@pytest.mark.parametrize(
    ("cpu", "expect"),
    [
        ({"quota": -1}, "max 100000"),
        ({"period": 50000}, "max 50000"),
        ({"quota": 20000}, "20000 100000"),
    ],
)
def test_cpu_max(rec: Recorder, tmp_path: object, cpu: dict, expect: str) -> None:
    cgroup_v2.apply(str(tmp_path), {"cpu": cpu})
    assert rec.writes == [("cpu.max", expect)]


def test_memory_unlimited_and_equal_swap(rec: Recorder, tmp_path: object) -> None:
    cgroup_v2.apply(str(tmp_path), {"memory": {"limit": -1}})
    assert rec.writes == [("memory.swap.max", "max"), ("memory.max", "max")]
    rec.writes.clear()
    cgroup_v2.apply(str(tmp_path), {"memory": {"limit": 100, "swap": 100}})
    assert rec.writes == [("memory.swap.max", "0"), ("memory.max", "100")]


def test_unified_key_must_be_a_file_name(rec: Recorder, tmp_path: object) -> None:
    with pytest.raises(ConfigError, match="no slashes"):
        cgroup_v2.apply(str(tmp_path), {"unified": {"../memory.max": "1"}})
    with pytest.raises(ConfigError, match="CONTROLLER.PARAMETER"):
        cgroup_v2.apply(str(tmp_path), {"unified": {"memorymax": "1"}})


def test_missing_controller_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    monkeypatch.setattr(cgroup_v2, "write_file", Recorder(present=set()))
    monkeypatch.setattr(cgroup_v2, "_devices", lambda path, rules: None)
    with pytest.raises(RuntimeErr, match="the pids controller is not enabled"):
        cgroup_v2.apply(str(tmp_path), {"pids": {"limit": 5}})


def test_realtime_refused(rec: Recorder, tmp_path: object) -> None:
    with pytest.raises(ConfigError, match="realtime"):
        cgroup_v2.apply(str(tmp_path), {"cpu": {"realtimeRuntime": 1000}})
