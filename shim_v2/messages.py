"""containerd's messages the shim speaks (shim_v2/proto/*.proto), loaded the fast way
(shim_v2.ttrpc.pbload): `T.CreateTaskRequest`, `ev.TaskExit`, `metrics.Metrics`, ..."""

from __future__ import annotations

import os

from shim_v2.ttrpc.pbload import Messages

_DIR = os.path.join(os.path.dirname(__file__), "proto")
M = Messages(
    os.path.join(_DIR, "containerd.pb"),
    [
        f"shim_v2.proto.{n}_pb2"
        for n in (
            "types", "task", "events", "runc_options", "metrics", "metrics_v2", "runtimeoptions"
        )
    ]
    + ["google.protobuf.any_pb2", "google.protobuf.timestamp_pb2"],
)


class _Package:
    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, short: str) -> type:
        cls = M[f"{self._name}.{short}"]
        setattr(self, short, cls)
        return cls


T = _Package("containerd.task.v2")
ev = _Package("containerd.events")
types = _Package("containerd.types")
runc = _Package("containerd.runc.v1")
runtimeoptions = _Package("runtimeoptions.v1")
metrics = _Package("io.containerd.cgroups.v1")
metrics_v2 = _Package("io.containerd.cgroups.v2")
Any_ = M["google.protobuf.Any"]
Timestamp = M["google.protobuf.Timestamp"]


def timestamp(ns: int) -> object:
    """A Timestamp from nanoseconds since the epoch, set field by field (the classes pbload
    makes carry no well-known-type helpers such as FromNanoseconds)."""
    secs, nanos = divmod(ns, 1_000_000_000)
    return Timestamp(seconds=secs, nanos=nanos)

# containerd.v1.types.Status
UNKNOWN, CREATED, RUNNING, STOPPED, PAUSED, PAUSING = range(6)
