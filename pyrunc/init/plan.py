"""What the parent decided and the child carries out: built before fork, read after it.

Everything that can fail on bad input is computed here, in the parent, so that config errors are
reported before any process, mount or namespace exists.
"""

from __future__ import annotations

import os

from pyrunc.linux import capabilities, namespaces, rlimits, sysctl
from pyrunc.state import hook_state


def _idmapped(m: dict) -> bool:
    """(linux/idmapped.py's test, here so that configs without one never import it)"""
    return bool(m.get("uidMappings") or m.get("gidMappings")) or any(
        o in ("idmap", "ridmap") for o in m.get("options") or [])


class Plan:
    __slots__ = (
        "cid",
        "bundle",
        "rootfs",
        "config",
        "process",
        "new_ns",
        "join",
        "join_fds",
        "uid_maps",
        "gid_maps",
        "in_userns",
        "rootless",
        "new_cgroupns",
        "cgroup_paths",
        "fifo_fd",
        "console_fd",
        "preserve_fds",
        "no_pivot",
        "no_new_keyring",
        "caps",
        "env",
        "is_exec",
        "debug",
        "hooks",
        "listen_fds",
        "cgroup_joined",
        "bind_fds",
        "seccomp",
        "notify_sock",
        "report",
        "sealed",
        "lsm_fds",
        "oom_score_adj",
        "own_mntns",
        "chroot_pid",
        "stdio",
        "idmapped",
        "sched_attr",
        "ioprio",
        "cpus_initial",
        "cpus_final",
        "mempolicy",
    )

    def __init__(self, cid: str, bundle: str, rootfs: str, config: dict) -> None:
        self.cid = cid
        self.bundle = bundle
        self.rootfs = rootfs
        self.config = config
        self.process: dict = config.get("process") or {}
        lx = config.get("linux") or {}
        self.new_ns, self.join = namespaces.parse(lx.get("namespaces") or [])
        self.join_fds: list[tuple[str, int]] = []
        self.uid_maps: list[dict] = lx.get("uidMappings") or []
        self.gid_maps: list[dict] = lx.get("gidMappings") or []
        self.in_userns = bool(self.new_ns & namespaces.FLAGS["user"]) or "user" in self.join
        # no root: everything privileged happens in the container's user namespace (rootless.py)
        self.rootless = os.geteuid() != 0
        if self.rootless:
            from pyrunc import rootless

            rootless.check(config)
        # without one (the spec: inherited from the runtime) the container shares our mount
        # table: no pivot_root, a chroot into the rootfs as runc does
        self.own_mntns = bool(self.new_ns & namespaces.FLAGS["mount"]) or "mount" in self.join
        self.chroot_pid = 0  # exec into such a container: chroot to /proc/<pid>/root
        self.new_cgroupns = bool(self.new_ns & namespaces.FLAGS["cgroup"])
        self.cgroup_paths: dict[str, str] = {}
        self.fifo_fd = -1
        self.console_fd = -1
        # fds the init gets as 0/1/2 instead of ours (a caller that is not a terminal-bound
        # CLI: the shim passes the container's FIFOs or pipes); None: inherit ours
        self.stdio: tuple[int, int, int] | None = None
        self.preserve_fds = 0
        self.listen_fds = 0
        self.no_pivot = False
        self.no_new_keyring = False
        self.is_exec = False
        self.cgroup_joined = False
        self.bind_fds: dict[int, int] = {}  # mount index -> O_PATH fd (see open_bind_sources)
        self.debug = False
        self.hooks: dict = config.get("hooks") or {}
        self.caps = capabilities.CapSets(self.process.get("capabilities"))
        self.env: list[str] = list(self.process.get("env") or [])
        _check_env(self.env)
        if self.process.get("apparmorProfile") or self.process.get("selinuxLabel"):
            from pyrunc.linux import lsm

            lsm.check(self.process, lx)
        self.seccomp: object = None
        self.notify_sock = -1  # our end, in the child, of the notify fd hand-off socketpair
        self.report: tuple[int, int] = (-1, -1)  # the child's (read, write) pipe to us
        self.lsm_fds: list[tuple[int, str, str]] = []  # lsm.open_attrs', in the child
        self.sealed = False  # re-execute from a sealed interpreter before joining (sealed.py)
        # the container's, for exec too (runc): written before any namespace is joined
        self.oom_score_adj: int | None = self.process.get("oomScoreAdj")
        if lx.get("seccomp"):
            # compiled here, before any fork: a bad profile fails with nothing to undo
            from pyrunc.linux import seccomp

            self.seccomp = seccomp.build(lx["seccomp"])
            seccomp.check_listener(lx["seccomp"])
        if lx.get("intelRdt") is not None:
            from pyrunc.linux import intelrdt

            intelrdt.check()
        self.idmapped = [i for i, m in enumerate(config.get("mounts") or []) if _idmapped(m)]
        if self.idmapped:
            from pyrunc.linux import idmapped

            idmapped.check(config.get("mounts") or [], self.in_userns)
        rlimits.check(self.process.get("rlimits") or [])
        # runtime-spec 1.2/1.3 process attributes, checked and turned into syscall arguments
        # here; the child makes the calls (child._proc_attrs)
        self.sched_attr: tuple | None = None
        self.ioprio: int | None = None
        self.cpus_initial: tuple = ()  # execCPUAffinity: exec only (the spec: not the init)
        self.cpus_final: tuple = ()
        self.mempolicy: tuple | None = None
        proc = self.process
        if (
            proc.get("scheduler") is not None
            or proc.get("ioPriority") is not None
            or proc.get("execCPUAffinity") is not None
        ):
            from pyrunc.linux import sched

            if proc.get("scheduler") is not None:
                self.sched_attr = sched.scheduler(proc["scheduler"])
            if proc.get("ioPriority") is not None:
                self.ioprio = sched.ioprio(proc["ioPriority"])
            if proc.get("execCPUAffinity") is not None:
                self.cpus_initial, self.cpus_final = sched.affinity(proc["execCPUAffinity"])
        if lx.get("memoryPolicy") is not None:
            from pyrunc.linux import mempolicy

            self.mempolicy = mempolicy.check(lx["memoryPolicy"])
        ns_types = {ns.get("type") for ns in lx.get("namespaces") or []}
        sysctl.check(lx.get("sysctl") or {}, ns_types, self.join)
        if self.new_ns & namespaces.FLAGS["user"] and not (self.uid_maps and self.gid_maps):
            from pyrunc.errors import ConfigError

            raise ConfigError(
                "config.json: linux.uidMappings: user namespaces enabled, but no "
                "uid/gid mappings found"
            )

    def open_bind_sources(self) -> None:
        """In a user namespace, open bind sources now, as the host's root (runc does too);
        idmapped mounts are made here in any case (linux/idmapped.py)."""
        cfg_mounts = self.config.get("mounts") or []
        idm = self.idmapped
        if (not self.in_userns and not idm) or self.rootless:
            # (without root they are opened by the init, in its user namespace: we have no
            # more right to them than it has, and open_tree needs CAP_SYS_ADMIN)
            return
        from pyrunc.linux import idmapped, mounts

        users: dict[str, int] = {}
        try:
            for i, m in enumerate(cfg_mounts):
                if i in idm:
                    self.bind_fds[i] = idmapped.open_source(m, self.uid_maps, self.gid_maps,
                                                            users)
                elif self.in_userns and mounts.is_bind(m) and m.get("type") != "cgroup":
                    self.bind_fds[i] = mounts.open_bind_source(m)
        finally:
            for fd in users.values():
                os.close(fd)

    def direct_fork(self) -> bool:
        """Whether the runtime can fork the init directly: a new PID namespace is created (or
        joined) by the runtime for its next child only, but a new user or time namespace must
        be made by an intermediate process so that it owns what comes after it. A sealed
        re-exec must happen before the PID namespace is entered, so it goes that way too."""
        if self.sealed or self.new_ns & (namespaces.FLAGS["user"] | namespaces.FLAGS["time"]):
            return False
        if "user" in self.join or "time" in self.join:
            return False
        if self.new_ns & namespaces.FLAGS["pid"] or "pid" in self.join:
            # stepping back into our own PID namespace after the fork takes CAP_SYS_ADMIN in
            # the user namespace that owns it: not ours when we run inside one (rootless
            # podman runs us as root of its own), so an intermediate process unshares instead
            from pyrunc.linux.idmap import running_in_userns

            return not running_in_userns()
        return True

    def hook_state(self, status: str) -> dict:
        """The state hooks run by the init itself receive (its pid is ours)."""
        return hook_state(
            {
                "ociVersion": self.config.get("ociVersion", ""),
                "id": self.cid,
                "pid": os.getpid(),
                "bundle": self.bundle,
                "annotations": self.config.get("annotations"),
            },
            status,
        )


def _check_env(env: list[str]) -> None:
    """runc's checks (populateProcessEnvironment), made here before any fork so that a bad
    variable fails create or exec with nothing to undo, in runc's words."""
    for pair in env:
        name, eq, val = pair.partition("=")
        if not eq:
            why = "invalid environment variable"
        elif not name:
            why = "environment variable name can't be empty"
        elif "\0" in name:
            why = "environment variable name can't contain null(\\x00)"
        elif "\0" in val:
            why = "environment variable value can't contain null(\\x00)"
        else:
            continue
        from pyrunc.errors import ConfigError
        from pyrunc.fastjson import dumps

        raise ConfigError(f"{why}: {dumps(pair)}")
