"""pyrunc.validate: the fast schema interpreter, checked against jsonschema as the oracle.

The interpreter exists only to avoid jsonschema's import cost, so the property that matters is
that it accepts and rejects exactly what jsonschema does for our schemas, and that its one-line
message points at a spot jsonschema also complains about.
"""

from __future__ import annotations

import copy
import glob
import json
import os
import random
from typing import Any

import pytest

import oci_schema
import pyrunc.validate as v
from pyrunc.errors import ConfigError
from pyrunc.specgen import default_spec
from pyrunc.validate import validate, validate_with_jsonschema

RUNC_TESTDATA = os.path.join(os.path.dirname(__file__), "data", "runc-1.1.5")
CLIENT_CONFIGS = os.path.join(os.path.dirname(__file__), "data", "clients")


def full_config() -> dict[str, Any]:
    """A config touching most of the schema, so mutations reach most of it."""
    spec = default_spec()
    spec["process"].update(
        {
            "consoleSize": {"height": 24, "width": 80},
            "apparmorProfile": "unconfined",
            "oomScoreAdj": 100,
            "selinuxLabel": "",
            "ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 4},
            "scheduler": {"policy": "SCHED_OTHER", "nice": 5, "flags": ["SCHED_FLAG_RECLAIM"]},
            "execCPUAffinity": {"initial": "0-1", "final": "1"},
        }
    )
    spec["process"]["user"].update({"umask": 0o22, "additionalGids": [5, 10]})
    spec["process"]["capabilities"]["inheritable"] = ["CAP_KILL"]
    spec["domainname"] = "example.org"
    spec["mounts"].append(
        {
            "destination": "/data",
            "source": "/srv",
            "options": ["rbind"],
            "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
        }
    )
    hook = {"path": "/bin/true", "args": ["true"], "env": ["A=b"], "timeout": 5}
    spec["hooks"] = {
        k: [copy.deepcopy(hook)]
        for k in (
            "prestart",
            "createRuntime",
            "createContainer",
            "startContainer",
            "poststart",
            "poststop",
        )
    }
    spec["annotations"] = {"org.example.key": "value"}
    linux = spec["linux"]
    linux["namespaces"].append({"type": "cgroup", "path": "/proc/1/ns/cgroup"})
    linux["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    linux["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    linux["timeOffsets"] = {"monotonic": {"secs": -3600, "nanosecs": 0}}
    linux["devices"] = [
        {"type": "c", "path": "/dev/fuse", "major": 10, "minor": 229, "fileMode": 0o666},
        {"type": "b", "path": "/dev/sda", "major": 8, "minor": 0, "uid": 0, "gid": 6},
    ]
    linux["cgroupsPath"] = "/pyrunc/test"
    linux["resources"].update(
        {
            "memory": {"limit": 33554432, "swap": -1, "swappiness": 60},
            "cpu": {"shares": 1024, "quota": -1, "period": 100000, "cpus": "0-1"},
            "pids": {"limit": 100},
            "blockIO": {
                "weight": 500,
                "weightDevice": [{"major": 8, "minor": 0, "weight": 300}],
                "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
            },
            "hugepageLimits": [{"pageSize": "2MB", "limit": 0}],
            "network": {"classID": 1, "priorities": [{"name": "eth0", "priority": 5}]},
            "rdma": {"mlx5_1": {"hcaHandles": 3, "hcaObjects": 10000}},
            "unified": {"memory.high": "max"},
        }
    )
    linux["rootfsPropagation"] = "rprivate"
    linux["seccomp"] = {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "architectures": ["SCMP_ARCH_X86_64"],
        "flags": ["SECCOMP_FILTER_FLAG_LOG"],
        "syscalls": [
            {
                "names": ["personality"],
                "action": "SCMP_ACT_ALLOW",
                "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}],
            },
            {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
        ],
    }
    linux["sysctl"] = {"net.ipv4.ip_forward": "1"}
    linux["mountLabel"] = ""
    linux["intelRdt"] = {"closID": "guaranteed", "l3CacheSchema": "L3:0=7f",
                         "memBwSchema": "MB:0=20", "schemata": ["L2:0=ff", "L3CODE:0=f"],
                         "enableMonitoring": True}
    linux["personality"] = {"domain": "LINUX32", "flags": []}
    linux["netDevices"] = {"eth1": {"name": "ctr_eth1"}, "eth2": {}, "eth3": None,
                           "eth4": {"name": None}}
    linux["memoryPolicy"] = {"mode": "MPOL_BIND", "nodes": "0-1", "flags": ["MPOL_F_STATIC_NODES"]}
    return spec


def message_for(spec: object, schema: str = "config") -> str:
    with pytest.raises(ConfigError) as info:
        validate(spec, schema)
    msg = str(info.value)
    assert "\n" not in msg
    return msg


def test_default_specs_are_valid() -> None:
    for rootless in (False, True):
        validate(default_spec(rootless))
        assert validate_with_jsonschema(default_spec(rootless)) == []


def test_full_config_is_valid() -> None:
    validate(full_config())
    assert validate_with_jsonschema(full_config()) == []


SCHEMAS = ["config", "state", "features"]


@pytest.mark.parametrize("name", SCHEMAS)
def test_schema_files_are_valid_json_schema(name: str) -> None:
    from jsonschema import validators

    with open(oci_schema.schema_path(name)) as f:
        schema = json.load(f)
    validators.validator_for(schema).check_schema(schema)


def _subschemas(schema: Any) -> Any:
    if not isinstance(schema, dict):
        return
    yield schema
    for key in ("properties", "$defs", "definitions"):
        for sub in schema.get(key, {}).values():
            yield from _subschemas(sub)
    for key in ("items", "additionalProperties"):
        if key in schema:
            yield from _subschemas(schema[key])
    for key in ("allOf", "anyOf", "oneOf"):
        for sub in schema.get(key, []):
            yield from _subschemas(sub)


@pytest.mark.parametrize("name", SCHEMAS)
def test_schemas_use_only_supported_keywords(name: str) -> None:
    """A keyword the interpreter does not know would be silently ignored: forbid it."""
    used = set()
    for sub in _subschemas(v.load_schema(name)):
        used.update(sub)
    assert used <= v.SUPPORTED_KEYWORDS, used - v.SUPPORTED_KEYWORDS


def test_schema_path_layout() -> None:
    assert oci_schema.schema_path("config").endswith("oci_schema/config-schema.json")
    assert oci_schema.schema_path("config") == oci_schema.schema_path("config-schema.json")


# (mutation, exact message). Each mutation edits a copy of full_config().
EXACT_CASES: list[tuple[str, Any, str]] = [
    (
        "args not array",
        lambda s: s["process"].__setitem__("args", "sh"),
        "config.json: process.args: expected array, got string",
    ),
    (
        "bad namespace",
        lambda s: s["linux"]["namespaces"][2].__setitem__("type", "foo"),
        'config.json: linux.namespaces[2].type: "foo" is not one of pid, network, mount, '
        "ipc, uts, user, cgroup, time",
    ),
    (
        "uid too big",
        lambda s: s["process"]["user"].__setitem__("uid", 4294967296),
        "config.json: process.user.uid: 4294967296 is greater than the maximum 4294967295",
    ),
    (
        "root without path",
        lambda s: s["root"].pop("path"),
        'config.json: root: missing required property "path"',
    ),
    (
        "no ociVersion",
        lambda s: s.pop("ociVersion"),
        'config.json: missing required property "ociVersion"',
    ),
    (
        "relative cwd",
        lambda s: s["process"].__setitem__("cwd", "tmp"),
        'config.json: process.cwd: "tmp" does not match "^/"',
    ),
    (
        "empty cwd",
        lambda s: s["process"].__setitem__("cwd", ""),
        'config.json: process.cwd: "" does not match "^/"',
    ),
    (
        "uid fraction",
        lambda s: s["process"]["user"].__setitem__("uid", 1.0),
        "config.json: process.user.uid: expected integer, got number 1.0",
    ),
    (
        "gid boolean",
        lambda s: s["process"]["user"].__setitem__("gid", True),
        "config.json: process.user.gid: expected integer, got boolean",
    ),
    (
        "negative hostID",
        lambda s: s["linux"]["uidMappings"][0].__setitem__("hostID", -1),
        "config.json: linux.uidMappings[0].hostID: -1 is less than the minimum 0",
    ),
    (
        "annotation value not string",
        lambda s: s["annotations"].__setitem__("org.example.n", 1),
        'config.json: annotations["org.example.n"]: expected string, got integer',
    ),
    (
        "device type",
        lambda s: s["linux"]["devices"][1].__setitem__("type", "x"),
        'config.json: linux.devices[1].type: "x" is not one of c, b, u, p',
    ),
    (
        "process not object",
        lambda s: s.__setitem__("process", []),
        "config.json: process: expected object, got array",
    ),
    (
        "user missing gid",
        lambda s: s["process"]["user"].pop("gid"),
        'config.json: process.user: missing required property "gid"',
    ),
    (
        "process missing user",
        lambda s: s["process"].pop("user"),
        'config.json: process: missing required property "user"',
    ),
    (
        "hook timeout zero",
        lambda s: s["hooks"]["poststop"][0].__setitem__("timeout", 0),
        "config.json: hooks.poststop[0].timeout: 0 is less than the minimum 1",
    ),
    (
        "hook without path",
        lambda s: s["hooks"]["createRuntime"][0].pop("path"),
        'config.json: hooks.createRuntime[0]: missing required property "path"',
    ),
    (
        "rlimit soft negative",
        lambda s: s["process"]["rlimits"][0].__setitem__("soft", -1),
        "config.json: process.rlimits[0].soft: -1 is less than the minimum 0",
    ),
    (
        "rlimit hard above uint64",
        lambda s: s["process"]["rlimits"][0].__setitem__("hard", 2**64),
        "config.json: process.rlimits[0].hard: 18446744073709551616 is greater than the "
        "maximum 18446744073709551615",
    ),
    (
        "int64 below range",
        lambda s: s["linux"]["resources"]["memory"].__setitem__("limit", -(2**63) - 1),
        "config.json: linux.resources.memory.limit: -9223372036854775809 is less than the "
        "minimum -9223372036854775808",
    ),
    (
        "capability not string",
        lambda s: s["process"]["capabilities"]["ambient"].append(7),
        "config.json: process.capabilities.ambient[3]: expected string, got integer",
    ),
    (
        "mount without destination",
        lambda s: s["mounts"][3].pop("destination"),
        'config.json: mounts[3]: missing required property "destination"',
    ),
    (
        "mount idmap size",
        lambda s: s["mounts"][7]["uidMappings"][0].__setitem__("size", "1"),
        "config.json: mounts[7].uidMappings[0].size: expected integer, got string",
    ),
    (
        "personality domain",
        lambda s: s["linux"]["personality"].__setitem__("domain", "LINUX64"),
        'config.json: linux.personality.domain: "LINUX64" is not one of LINUX, LINUX32',
    ),
    (
        "seccomp action",
        lambda s: s["linux"]["seccomp"]["syscalls"][1].__setitem__("action", "ALLOW"),
        'config.json: linux.seccomp.syscalls[1].action: "ALLOW" is not one of SCMP_ACT_KILL, '
        "SCMP_ACT_KILL_PROCESS, SCMP_ACT_KILL_THREAD, SCMP_ACT_TRAP, SCMP_ACT_ERRNO, "
        "SCMP_ACT_TRACE, SCMP_ACT_ALLOW, SCMP_ACT_LOG, SCMP_ACT_NOTIFY",
    ),
    (
        "seccomp empty names",
        lambda s: s["linux"]["seccomp"]["syscalls"][0].__setitem__("names", []),
        "config.json: linux.seccomp.syscalls[0].names: expected at least 1 item, got 0",
    ),
    (
        "seccomp arg without op",
        lambda s: s["linux"]["seccomp"]["syscalls"][0]["args"][0].pop("op"),
        'config.json: linux.seccomp.syscalls[0].args[0]: missing required property "op"',
    ),
    (
        "sysctl value",
        lambda s: s["linux"]["sysctl"].__setitem__("kernel.shmmax", 1),
        'config.json: linux.sysctl["kernel.shmmax"]: expected string, got integer',
    ),
    (
        "rootfsPropagation",
        lambda s: s["linux"].__setitem__("rootfsPropagation", "bogus"),
        'config.json: linux.rootfsPropagation: "bogus" is not one of "", private, rprivate, '
        "shared, rshared, slave, rslave, unbindable, runbindable",
    ),
    (
        "enum on non-scalar",
        lambda s: s["linux"]["namespaces"][0].__setitem__("type", {"a": 1}),
        "config.json: linux.namespaces[0].type: expected one of pid, network, mount, ipc, "
        "uts, user, cgroup, time, got object",
    ),
    (
        "consoleSize incomplete",
        lambda s: s["process"]["consoleSize"].pop("width"),
        'config.json: process.consoleSize: missing required property "width"',
    ),
    (
        "rdma entry",
        lambda s: s["linux"]["resources"]["rdma"]["mlx5_1"].__setitem__("hcaHandles", -3),
        "config.json: linux.resources.rdma.mlx5_1.hcaHandles: -3 is less than the minimum 0",
    ),
    (
        "time offset",
        lambda s: s["linux"]["timeOffsets"]["monotonic"].__setitem__("nanosecs", "0"),
        "config.json: linux.timeOffsets.monotonic.nanosecs: expected integer, got string",
    ),
    (
        "blkio weight",
        lambda s: s["linux"]["resources"]["blockIO"].__setitem__("weight", 70000),
        "config.json: linux.resources.blockIO.weight: 70000 is greater than the maximum 65535",
    ),
    (
        "annotations array",
        lambda s: s.__setitem__("annotations", ["a"]),
        "config.json: annotations: expected object or null, got array",
    ),
    (
        "netDevices name",
        lambda s: s["linux"]["netDevices"]["eth1"].__setitem__("name", 1),
        "config.json: linux.netDevices.eth1.name: expected string or null, got integer",
    ),
    (
        "netDevices entry",
        lambda s: s["linux"]["netDevices"].__setitem__("eth0.100", "ctr0"),
        'config.json: linux.netDevices["eth0.100"]: expected object or null, got string',
    ),
    (
        "netDevices not object",
        lambda s: s["linux"].__setitem__("netDevices", ["eth0"]),
        "config.json: linux.netDevices: expected object, got array",
    ),
    (
        "scheduler policy",
        lambda s: s["process"]["scheduler"].__setitem__("policy", "SCHED_FOO"),
        'config.json: process.scheduler.policy: "SCHED_FOO" is not one of SCHED_OTHER, '
        "SCHED_FIFO, SCHED_RR, SCHED_BATCH, SCHED_ISO, SCHED_IDLE, SCHED_DEADLINE",
    ),
    (
        "ioPriority without class",
        lambda s: s["process"]["ioPriority"].pop("class"),
        'config.json: process.ioPriority: missing required property "class"',
    ),
    (
        "execCPUAffinity letters",
        lambda s: s["process"]["execCPUAffinity"].__setitem__("final", "0-x"),
        'config.json: process.execCPUAffinity.final: "0-x" does not match "^[0-9, -]*$"',
    ),
    (
        "execCPUAffinity number",
        lambda s: s["process"]["execCPUAffinity"].__setitem__("initial", 1),
        "config.json: process.execCPUAffinity.initial: expected string, got integer",
    ),
    (
        "memoryPolicy mode",
        lambda s: s["linux"]["memoryPolicy"].__setitem__("mode", "MPOL_ALL"),
        'config.json: linux.memoryPolicy.mode: "MPOL_ALL" is not one of MPOL_DEFAULT, '
        "MPOL_BIND, MPOL_INTERLEAVE, MPOL_WEIGHTED_INTERLEAVE, MPOL_PREFERRED, "
        "MPOL_PREFERRED_MANY, MPOL_LOCAL",
    ),
    (
        "memoryPolicy without mode",
        lambda s: s["linux"]["memoryPolicy"].pop("mode"),
        'config.json: linux.memoryPolicy: missing required property "mode"',
    ),
    (
        "intelRdt schemata not array",
        lambda s: s["linux"]["intelRdt"].__setitem__("schemata", "L3:0=f"),
        "config.json: linux.intelRdt.schemata: expected array, got string",
    ),
    (
        "intelRdt schemata line",
        lambda s: s["linux"]["intelRdt"]["schemata"].append(3),
        "config.json: linux.intelRdt.schemata[2]: expected string, got integer",
    ),
    (
        "intelRdt enableMonitoring",
        lambda s: s["linux"]["intelRdt"].__setitem__("enableMonitoring", "true"),
        "config.json: linux.intelRdt.enableMonitoring: expected boolean, got string",
    ),
    (
        "intelRdt closID",
        lambda s: s["linux"]["intelRdt"].__setitem__("closID", None),
        "config.json: linux.intelRdt.closID: expected string, got null",
    ),
    (
        "intelRdt enableCMT (runtime-spec 1.1 to 1.2.1)",
        lambda s: s["linux"]["intelRdt"].__setitem__("enableCMT", 1),
        "config.json: linux.intelRdt.enableCMT: expected boolean, got integer",
    ),
    (
        "mount gidMappings",
        lambda s: s["mounts"][7].__setitem__("gidMappings", [{"containerID": 0, "hostID": 0}]),
        'config.json: mounts[7].gidMappings[0]: missing required property "size"',
    ),
    (
        "ioPriority class",
        lambda s: s["process"]["ioPriority"].__setitem__("class", "IOPRIO_CLASS_NONE"),
        'config.json: process.ioPriority.class: "IOPRIO_CLASS_NONE" is not one of '
        "IOPRIO_CLASS_RT, IOPRIO_CLASS_BE, IOPRIO_CLASS_IDLE",
    ),
    (
        "scheduler flag",
        lambda s: s["process"]["scheduler"]["flags"].append("SCHED_FLAG_FAST"),
        'config.json: process.scheduler.flags[1]: "SCHED_FLAG_FAST" is not one of '
        "SCHED_FLAG_RESET_ON_FORK, SCHED_FLAG_RECLAIM, SCHED_FLAG_DL_OVERRUN, "
        "SCHED_FLAG_KEEP_POLICY, SCHED_FLAG_KEEP_PARAMS, SCHED_FLAG_UTIL_CLAMP_MIN, "
        "SCHED_FLAG_UTIL_CLAMP_MAX",
    ),
    (
        "scheduler runtime negative",
        lambda s: s["process"]["scheduler"].__setitem__("runtime", -1),
        "config.json: process.scheduler.runtime: -1 is less than the minimum 0",
    ),
    (
        "memoryPolicy flag",
        lambda s: s["linux"]["memoryPolicy"]["flags"].append("MPOL_F_LAZY"),
        'config.json: linux.memoryPolicy.flags[1]: "MPOL_F_LAZY" is not one of '
        "MPOL_F_NUMA_BALANCING, MPOL_F_RELATIVE_NODES, MPOL_F_STATIC_NODES",
    ),
    (
        "long string is cut",
        lambda s: s["linux"]["namespaces"][0].__setitem__("type", "x" * 100),
        'config.json: linux.namespaces[0].type: "' + "x" * 56 + "... is not one of pid, "
        "network, mount, ipc, uts, user, cgroup, time",
    ),
]


@pytest.mark.parametrize("case", EXACT_CASES, ids=[c[0] for c in EXACT_CASES])
def test_bad_config_message(case: tuple[str, Any, str]) -> None:
    _, mutate, expected = case
    spec = full_config()
    mutate(spec)
    assert message_for(spec) == expected
    assert validate_with_jsonschema(spec), "the oracle must reject it too"


def test_top_level_not_object() -> None:
    assert message_for([]) == "config.json: expected object, got array"
    assert message_for(None) == "config.json: expected object, got null"


def test_first_error_in_document_order() -> None:
    spec = full_config()
    spec["process"]["args"] = "x"  # process comes before linux in the document
    spec["linux"]["namespaces"][0]["type"] = "bogus"
    assert "process.args" in message_for(spec)
    spec = {"linux": spec.pop("linux"), **spec}
    assert "linux.namespaces[0].type" in message_for(spec)


def test_depth_first_within_array() -> None:
    spec = full_config()
    spec["mounts"][1]["options"] = [1]
    spec["mounts"][4].pop("destination")
    assert message_for(spec).startswith("config.json: mounts[1].options[0]:")


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


def test_regex_not_imported_for_default_spec() -> None:
    """`re` costs ~6 ms to import; anchored-literal patterns must not need it."""
    import subprocess
    import sys

    # modules already loaded at start-up (site, an editable install's import hook) don't count
    code = (
        "import sys; before = set(sys.modules); from pyrunc.validate import validate; "
        "from pyrunc.specgen import default_spec; "
        "validate(default_spec()); validate(default_spec(True)); "
        "print(sorted(m for m in ('re', 'json', 'typing', 'jsonschema') "
        "if m in sys.modules and m not in before))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


# --- the interpreter on schemas of our own, for keywords the OCI schemas use little or not at all


@pytest.fixture
def with_schema(monkeypatch: pytest.MonkeyPatch) -> Any:
    def install(schema: dict[str, Any]) -> str:
        monkeypatch.setitem(v._schemas, "t", schema)
        return "t"

    return install


def test_combinators_and_misc_keywords(with_schema: Any) -> None:
    name = with_schema(
        {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "a": {"anyOf": [{"type": "string"}, {"type": "integer", "minimum": 5}]},
                "b": {"oneOf": [{"type": "integer"}, {"type": "number", "minimum": 0}]},
                "c": {"allOf": [{"$ref": "#/definitions/short"}, {"pattern": "^[a-z]+$"}]},
                "d": {"const": True},
                "e": {"type": "array", "maxItems": 1},
                "f": {"exclusiveMinimum": 0, "exclusiveMaximum": 10},
                "g": {"enum": [1, "x", None]},
            },
            "definitions": {"short": {"type": "string", "minLength": 1, "maxLength": 3}},
        }
    )
    good = {"a": "s", "b": -1, "c": "ab", "d": True, "e": [0], "f": 5, "g": None}
    validate(good, name)
    assert validate_with_jsonschema(good, name) == []
    cases = {
        "a": (2, "t.json: a: 2 is less than the minimum 5"),
        "b": (3, "t.json: b: matches 2 of the alternatives, expected exactly one"),
        "c": ("abcd", 't.json: c: "abcd" is longer than the maximum length 3'),
        "d": (1, "t.json: d: expected true, got 1"),
        "e": ([1, 2], "t.json: e: expected at most 1 item, got 2"),
        "f": (10, "t.json: f: 10 is not less than 10"),
        "g": (True, "t.json: g: true is not one of 1, x, null"),
    }
    for key, (value, expected) in cases.items():
        doc = dict(good, **{key: value})
        assert message_for(doc, name) == expected
        assert validate_with_jsonschema(doc, name)
    c_bad = dict(good, c="A1")
    assert message_for(c_bad, name) == 't.json: c: "A1" does not match "^[a-z]+$"'
    c_empty = dict(good, c="")
    assert message_for(c_empty, name) == 't.json: c: "" is shorter than the minimum length 1'
    extra = dict(good, zz=1)
    assert message_for(extra, name) == 't.json: zz: unexpected property "zz"'


def test_state_schema() -> None:
    state = {
        "ociVersion": "1.0.2-dev",
        "id": "c1",
        "pid": 1234,
        "status": "paused",
        "bundle": "/run/bundle",
        "rootfs": "/run/bundle/rootfs",
        "created": "2024-01-01T00:00:00.000000000Z",
        "owner": "",
    }
    validate(state, "state")
    assert validate_with_jsonschema(state, "state") == []
    bad = dict(state, status="exploded")
    assert message_for(bad, "state") == (
        'state.json: status: "exploded" is not one of creating, created, running, stopped, paused'
    )
    assert message_for({k: x for k, x in state.items() if k != "id"}, "state") == (
        'state.json: missing required property "id"'
    )


# --- property-style agreement with jsonschema


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, x in node.items():
            out += _paths(x, prefix + (k,))
    elif isinstance(node, list):
        for i, x in enumerate(node):
            out += _paths(x, prefix + (i,))
    return out


_ODD_VALUES: list[Any] = [
    "",
    "x",
    "/abs",
    "pid",
    "c",
    "LINUX",
    "SCMP_ACT_ALLOW",
    0,
    1,
    -1,
    4294967295,
    4294967296,
    2**63 - 1,
    2**63,
    -(2**63) - 1,
    2**64,
    1.0,
    0.5,
    True,
    False,
    None,
    [],
    ["a"],
    [1],
    {},
    {"type": "pid"},
    {"path": "x"},
]


def _similar(x: Any, rng: random.Random) -> Any:
    """A value of the same JSON type, so that many mutants stay valid (or fail on a bound)."""
    if type(x) is bool:
        return not x
    if type(x) is int:
        return rng.choice((0, 1, x + 1, x * 2, -x, 2**32 - 1, 2**32))
    if type(x) is str:
        return rng.choice(("", "/", x + "x", x.upper(), "SCMP_ACT_LOG", "user"))
    if type(x) is list:
        return rng.sample(x, rng.randint(0, len(x)))
    if type(x) is dict:
        return {k: x[k] for k in rng.sample(list(x), rng.randint(0, len(x)))}
    return x


def _mutate(spec: dict[str, Any], rng: random.Random) -> None:
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        paths = _paths(spec)
        path = rng.choice(paths[1:])
        parent = spec
        for seg in path[:-1]:
            parent = parent[seg]
        last = path[-1]
        op = rng.random()
        if op < 0.2 and isinstance(parent, dict):
            del parent[last]
        elif op < 0.3 and isinstance(parent, dict):
            parent[rng.choice(("zz", "type", "path", "uid", "names"))] = rng.choice(_ODD_VALUES)
        elif op < 0.55:
            parent[last] = _similar(parent[last], rng)
        else:
            parent[last] = copy.deepcopy(rng.choice(_ODD_VALUES))


def _our_path(spec: Any) -> str | None:
    root = v.load_schema("config")
    try:
        v._check(spec, root, root)
    except v._Fail as e:
        return v.format_path(e.rpath[::-1])
    return None


def _oracle_paths(spec: Any) -> set[str]:
    from jsonschema import validators

    root = v.load_schema("config")
    base = validators.validator_for(root)
    checker = base.TYPE_CHECKER.redefine("integer", lambda _c, x: type(x) is int)
    cls = validators.extend(base, type_checker=checker)
    return {v.format_path(list(err.absolute_path)) for err in cls(root).iter_errors(spec)}


def test_agrees_with_jsonschema_on_mutated_configs() -> None:
    rng = random.Random(20240601)
    n_invalid = 0
    for i in range(250):
        spec = full_config() if i % 2 else default_spec(rootless=bool(i % 3))
        _mutate(spec, rng)
        ours = _our_path(spec)
        oracle = _oracle_paths(spec)
        assert bool(validate_with_jsonschema(spec)) == bool(oracle)
        if ours is None:
            assert not oracle, f"we accept, jsonschema rejects at {oracle}: {spec}"
            validate(spec)
            continue
        n_invalid += 1
        # Our (first) error must sit at one of the spots jsonschema complains about.
        assert ours in oracle, (ours, oracle, spec)
        with pytest.raises(ConfigError):
            validate(spec)
    # The generator must actually exercise both outcomes.
    assert 50 < n_invalid < 200, n_invalid
