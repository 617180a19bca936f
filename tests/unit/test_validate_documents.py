"""pyrunc.validate on the documents it must accept (the spots where the spec is lenient, runc's
own seccomp test data, what real clients send, runtime-spec's example configs) and runtime-spec's
bad examples, each checked against jsonschema too."""

from __future__ import annotations

import glob
import json
import os
from typing import Any

import pytest
from validate_cases import full_config, message_for

from pyrunc.specgen import default_spec
from pyrunc.validate import validate, validate_with_jsonschema

RUNC_TESTDATA = os.path.join(os.path.dirname(__file__), "data", "runc-1.1.5")
CLIENT_CONFIGS = os.path.join(os.path.dirname(__file__), "data", "clients")


def test_default_specs_are_valid() -> None:
    for rootless in (False, True):
        validate(default_spec(rootless))
        assert validate_with_jsonschema(default_spec(rootless)) == []


def test_full_config_is_valid() -> None:
    validate(full_config())
    assert validate_with_jsonschema(full_config()) == []


@pytest.mark.parametrize(
    "mutate",
    [
        lambda s: s.pop("process"),  # runc needs it for create, but the spec does not
        lambda s: s.pop("root"),
        lambda s: s.pop("linux"),
        lambda s: s.__setitem__("annotations", None),
        lambda s: s.__setitem__("solaris", {"milestone": 1}),  # other platforms: ignored
        lambda s: s["linux"]["resources"].__setitem__("CPU", {"Cpus": "0"}),  # Go: case-fold
        lambda s: s["linux"]["resources"].__setitem__("memorySwap", {"limit": 1}),
        lambda s: s["linux"]["resources"].__setitem__("cpu", {}),
        lambda s: s["linux"]["resources"].__setitem__("pids", {}),
        lambda s: s["linux"]["resources"]["devices"].append({"allow": True}),
        lambda s: s["linux"]["resources"]["devices"].append({"access": "rwm"}),
        lambda s: s["mounts"].append({"destination": "/x", "options": ["bind"]}),
        lambda s: s["process"]["capabilities"]["bounding"].append("CAP_NOT_A_CAP"),
        lambda s: s["process"]["rlimits"].append({"type": "RLIMIT_FOO", "hard": 0, "soft": 0}),
        lambda s: s["process"].__setitem__("args", []),
        lambda s: s["process"].__setitem__("oomScoreAdj", -(2**63)),
        lambda s: s["process"].__setitem__("unknownField", {"x": [1, 2]}),
        lambda s: s["linux"]["seccomp"]["architectures"].append("SCMP_ARCH_RISCV64"),
        lambda s: s["linux"]["devices"][0].__setitem__("fileMode", 0o20666),
        lambda s: s["linux"].__setitem__("rootfsPropagation", ""),
        lambda s: s["linux"]["namespaces"].append({"type": "time"}),
        # the lists' meaning (ranges, which modes take nodes) is the runtime's to check
        lambda s: s["process"]["execCPUAffinity"].__setitem__("initial", " 3-1, ,"),
        lambda s: s["process"]["execCPUAffinity"].__setitem__("final", ""),
        lambda s: s["linux"]["memoryPolicy"].__setitem__("nodes", "x"),
        lambda s: s["process"]["scheduler"].__setitem__("priority", -5),
        # runtime-spec 1.3: nodes is OPTIONAL (MPOL_DEFAULT and MPOL_LOCAL take none)
        lambda s: s["linux"]["memoryPolicy"].pop("nodes"),
        # the schemas' content and the closID's meaning are the runtime's (linux/intelrdt.py)
        lambda s: s["linux"]["intelRdt"].__setitem__("memBwSchema", "L3:0=f\n"),
        lambda s: s["linux"]["intelRdt"].__setitem__("closID", "/"),
        lambda s: s["linux"]["intelRdt"].__setitem__("schemata", []),
        lambda s: s["linux"].__setitem__("intelRdt", {}),
    ],
)
def test_lenient_spots_are_valid(mutate: Any) -> None:
    spec = full_config()
    mutate(spec)
    validate(spec)
    assert validate_with_jsonschema(spec) == []


def test_runc_testdata_seccomp_profiles() -> None:
    files = sorted(glob.glob(RUNC_TESTDATA + "/*.json"))
    assert len(files) == 2
    for path in files:
        spec = default_spec()
        with open(path) as f:
            spec["linux"]["seccomp"] = json.load(f)
        validate(spec)
        assert validate_with_jsonschema(spec) == []


@pytest.mark.parametrize(
    "name", sorted(f for f in os.listdir(CLIENT_CONFIGS) if f.endswith(".json"))
)
def test_real_client_configs_are_valid(name: str) -> None:
    """What docker, podman and containerd (CRI and ctr) really give a runtime (data/clients)."""
    with open(os.path.join(CLIENT_CONFIGS, name)) as f:
        spec = json.load(f)
    validate(spec)
    assert validate_with_jsonschema(spec) == []


def test_runtime_spec_example_configs() -> None:
    """runtime-spec v1.3.0's schema/test/config/good and bad documents for Linux (the Linux
    parts: our schema is structural, so its bad hugepage size is left to the runtime)."""
    good = [
        {"ociVersion": "1.0.0", "root": {"path": "rootfs"}},
        {"ociVersion": "1.0.0", "root": {"path": "rootfs"},
         "process": {"cwd": "/", "args": ["sh"], "user": {"uid": 0, "gid": 0}}},
        {"ociVersion": "1.0.0", "root": {"path": "rootfs"},
         "linux": {"netDevices": {"eth0": {"name": "container_eth0"}, "ens4": {}, "ens5": {}}}},
        {"ociVersion": "1.0.0", "root": {"path": "rootfs"},
         "linux": {"resources": {"rdma": {"mlx5_1": {"hcaHandles": 3, "hcaObjects": 10000},
                                          "mlx4_0": {"hcaObjects": 1000}}}}},
        {"ociVersion": "1.3.0", "root": {"path": "rootfs"},
         "linux": {"intelRdt": {"closID": "guaranteed_group",
                                "schemata": ["L3:0=7f0;1=1f", "L2:0=f;1=f;2=f;3=f",
                                             "MB:0=20;1=70"]},
                   "memoryPolicy": {"mode": "MPOL_INTERLEAVE", "nodes": "2-3",
                                    "flags": ["MPOL_F_STATIC_NODES"]}}},
    ]
    for spec in good:
        validate(spec)
        assert validate_with_jsonschema(spec) == []
    bad = [
        ({"ociVersion": "1.0.0", "root": {"path": "rootfs"},
          "linux": {"netDevices": {"eth0": {"name": 23}}}},
         "config.json: linux.netDevices.eth0.name: expected string or null, got integer"),
        ({"ociVersion": "1.0.0", "root": {"path": "rootfs"},
          "linux": {"resources": {"rdma": {"mlx5_1": {"hcaHandles": "not a uint32"}}}}},
         "config.json: linux.resources.rdma.mlx5_1.hcaHandles: expected integer, got string"),
    ]
    for spec, msg in bad:
        assert message_for(spec) == msg
        assert validate_with_jsonschema(spec)
