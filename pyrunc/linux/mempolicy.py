"""linux.memoryPolicy (runtime-spec 1.3): the container's NUMA memory policy, set_mempolicy(2).

Checked by the parent before any fork (`check`, runc's rules plus nodes this host cannot have);
set by the init (and by every process `exec` starts) before its execve (`apply`), after it has
joined its cgroups, whose cpuset decides which nodes the kernel allows. Imported only for a
config that has one.
"""

from __future__ import annotations

import os

from pyrunc.errors import ConfigError, RuntimeErr
from pyrunc.linux import sys as S
from pyrunc.linux.sched import cpu_list, show_list

# include/uapi/linux/mempolicy.h
MODES = {
    "MPOL_DEFAULT": 0,
    "MPOL_PREFERRED": 1,
    "MPOL_BIND": 2,
    "MPOL_INTERLEAVE": 3,
    "MPOL_LOCAL": 4,
    "MPOL_PREFERRED_MANY": 5,  # Linux 5.15
    "MPOL_WEIGHTED_INTERLEAVE": 6,  # Linux 6.9
}
FLAGS = {
    "MPOL_F_NUMA_BALANCING": 1 << 13,
    "MPOL_F_RELATIVE_NODES": 1 << 14,
    "MPOL_F_STATIC_NODES": 1 << 15,
}
_NO_NODES = ("MPOL_DEFAULT", "MPOL_LOCAL")
_NEED_NODES = ("MPOL_BIND", "MPOL_INTERLEAVE", "MPOL_WEIGHTED_INTERLEAVE", "MPOL_PREFERRED_MANY")
POSSIBLE = "/sys/devices/system/node/possible"


def check(mp: dict, where: str = "config.json: linux.memoryPolicy") -> tuple[int, tuple]:
    """linux.memoryPolicy -> (mode | flags, node ids) for set_mempolicy."""
    mode = mp["mode"]  # the schema requires it and limits it to the known names
    nodes = cpu_list(mp.get("nodes") or "", where + ".nodes")
    flags = 0
    names = mp.get("flags") or []
    for f in names:
        flags |= FLAGS[f]  # names checked by the schema
    if mode in _NO_NODES and nodes:
        raise ConfigError(f"{where}.nodes: {mode} takes no nodes, got {mp['nodes']!r}")
    if mode in _NEED_NODES and not nodes:
        raise ConfigError(f"{where}.nodes: {mode} needs at least one node")
    if "MPOL_F_STATIC_NODES" in names and "MPOL_F_RELATIVE_NODES" in names:
        raise ConfigError(
            f"{where}.flags: MPOL_F_STATIC_NODES and MPOL_F_RELATIVE_NODES exclude each other"
        )
    node_flags = FLAGS["MPOL_F_STATIC_NODES"] | FLAGS["MPOL_F_RELATIVE_NODES"]
    if mode == "MPOL_LOCAL" and flags & node_flags:  # the kernel's rule, said before the fork
        raise ConfigError(f"{where}.flags: MPOL_LOCAL takes no node flags")
    if nodes and "MPOL_F_RELATIVE_NODES" not in names:
        # relative nodes are indices into the cpuset's nodes; the rest are node ids, and one
        # this machine cannot have is an error in the config, not a policy to defer
        possible = _possible()
        if possible is not None:
            missing = [n for n in nodes if n not in possible]
            if missing:
                what = "node {} does" if len(missing) == 1 else "nodes {} do"
                raise ConfigError(
                    f"{where}.nodes: {what.format(show_list(tuple(missing)))} not exist on this "
                    f"host (its nodes: {show_list(tuple(sorted(possible)))})"
                )
    return MODES[mode] | flags, nodes


def _possible() -> set[int] | None:
    try:
        with open(POSSIBLE, "rb") as f:
            text = f.read().decode().strip()
    except OSError:
        return None  # no NUMA in this kernel: set_mempolicy will say so
    return set(cpu_list(text, POSSIBLE))


def apply(policy: tuple[int, tuple], mp: dict) -> None:
    mode, nodes = policy
    try:
        S.set_mempolicy(mode, nodes)
    except OSError as e:
        hint = ""
        if e.errno == 22:
            hint = (
                " (a node outside the cpuset's mems, a mode or flag this kernel does not know, "
                "or MPOL_F_NUMA_BALANCING with a mode other than MPOL_BIND)"
            )
        elif e.errno == 38:
            hint = " (this kernel has no NUMA support)"
        raise RuntimeErr(
            f"linux.memoryPolicy: set_mempolicy({mp.get('mode')}, nodes {mp.get('nodes')!r}): "
            f"{os.strerror(e.errno)}{hint}"
        ) from None
