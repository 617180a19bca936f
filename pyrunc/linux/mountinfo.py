"""/proc/self/mountinfo, parsed once per call into the fields callers use."""

from __future__ import annotations


class Mount:
    __slots__ = ("id", "root", "mountpoint", "optional", "fstype", "super_options")

    def __init__(self, line: str) -> None:
        left, _, right = line.partition(" - ")
        fields = left.split(" ")
        self.id = int(fields[0])
        self.root = fields[3]
        self.mountpoint = fields[4].replace("\\040", " ")
        self.optional = fields[6:]  # "shared:N", "master:N", ...
        fstype, _src, sopts = (right.split(" ") + ["", ""])[:3]
        self.fstype = fstype
        self.super_options = sopts


def mounts() -> list[Mount]:
    with open("/proc/self/mountinfo", "rb") as f:
        return [Mount(line) for line in f.read().decode().splitlines() if line]
