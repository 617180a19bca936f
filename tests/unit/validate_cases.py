"""Shared by the validator's tests: a config that touches most of the schema, and the one-line
message the validator gives for a document."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from pyrunc.errors import ConfigError
from pyrunc.specgen import default_spec
from pyrunc.validate import validate


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
