"""pyrunc.validate: the fast schema interpreter's messages (one line, naming the first bad spot
in document order), the schemas it reads, and the keywords it interprets; each checked against
jsonschema as the oracle. Accepted documents are in test_validate_documents.py, the randomised
agreement with jsonschema in test_validate_oracle.py."""

from __future__ import annotations

import json
from typing import Any

import pytest
from validate_cases import full_config, message_for

import oci_schema
import pyrunc.validate as v
from pyrunc.validate import validate, validate_with_jsonschema

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
