"""Building the container's filesystem view, in the order runc uses (runs inside the new mount ns).

prepare(): propagation, the rootfs bind, config mounts in order, /dev. Then (after the
createRuntime / createContainer hooks) finish(): pivot_root or MS_MOVE+chroot, masked and
read-only paths, read-only /dev and root.
"""

from __future__ import annotations

import os
import stat

from pyrunc.errors import RuntimeErr
from pyrunc.linux import cgroups, devices, mountinfo, mounts
from pyrunc.linux import sys as S
from pyrunc.linux.idmap import running_in_userns

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable


def _propagation(plan: object) -> int:
    p = plan.config.get("linux", {}).get("rootfsPropagation")  # type: ignore[attr-defined]
    if not p:
        return S.MS_SLAVE | S.MS_REC
    if p not in mounts.PROPAGATION:
        raise RuntimeErr(f"linux.rootfsPropagation: invalid value {p!r}")
    return mounts.PROPAGATION[p]


def prepare(plan, wait_cgroup: Callable[[], None]) -> int:  # noqa: ANN001
    """Mount everything below the rootfs; returns an O_PATH fd of the rootfs.

    With a new cgroup namespace, wait_cgroup() is called before the first cgroup mount: the
    namespace (and so the view of the container's cgroup) exists only once the parent has moved
    us into the cgroup."""
    rootfs = plan.rootfs
    if plan.own_mntns:
        S.mount(None, "/", None, _propagation(plan))
        _parent_mount_private(rootfs)
    # the rootfs must be a mount point for pivot_root; a bind onto itself makes it one. In the
    # runtime's own mount namespace it also holds every mount of the container, so that
    # `delete` detaches them all with it (container.detach_rootfs)
    S.mount(rootfs, rootfs, None, S.MS_BIND | S.MS_REC)
    rootfd = os.open(rootfs, S.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    has_dev = False
    label = ""
    mount_label = plan.config.get("linux", {}).get("mountLabel")
    if mount_label:  # mount_at's existing label_data: context="..." where SELinux runs
        from pyrunc.linux import lsm

        label = lsm.mount_data("", mount_label)
    for i, m in enumerate(plan.config.get("mounts") or []):
        dest = m["destination"]
        if not dest.startswith("/"):
            dest = "/" + dest  # runc 1.1 resolves relative destinations from the rootfs
            m = dict(m, destination=dest)
        if os.path.normpath(dest) == "/dev" and m.get("type") != "bind":
            has_dev = True
        if m.get("type") in ("cgroup", "cgroup2") and plan.new_cgroupns:
            wait_cgroup()  # the namespace's root is the cgroup we are in when it is made
        if m.get("type") == "cgroup":
            _mount_cgroup(plan, rootfd, m)
            continue
        if m.get("type") == "sysfs" and plan.in_userns and not _netns_of_own(plan):
            m = _sysfs_as_bind(m)
        mounts.mount_at(rootfd, m, label_data=label, src_fd=plan.bind_fds.get(i, -1))
    # no mknod in a user namespace, ours or the one we were started in (rootless podman's):
    # device nodes are bind mounts of the host's (runc)
    bind = plan.in_userns or running_in_userns()
    if has_dev:
        for dev in devices.all_devices(plan.config.get("linux", {}).get("devices") or []):
            if os.path.normpath(dev["path"]) != "/dev/ptmx":  # (setup_ptmx's, as runc)
                devices.create(rootfd, dev, bind)
        devices.symlinks(rootfd)
        devices.setup_ptmx(rootfd)
    else:
        for dev in plan.config.get("linux", {}).get("devices") or []:
            devices.create(rootfd, dev, bind)
    return rootfd


def _netns_of_own(plan) -> bool:  # noqa: ANN001
    """Whether the container has a network namespace of its own (new or joined), which a
    sysfs mount in its user namespace needs."""
    from pyrunc.linux import namespaces

    return bool(plan.new_ns & namespaces.FLAGS["network"]) or "network" in plan.join


def _sysfs_as_bind(m: dict) -> dict:
    """A user namespace cannot mount sysfs for the host's network namespace (EPERM): bind the
    host's /sys instead, with the same restrictions, as crun does and as `spec --rootless`
    writes it."""
    keep = [o for o in m.get("options") or [] if o in ("ro", "nosuid", "noexec", "nodev")]
    return dict(m, type="bind", source="/sys", options=["rbind", *keep])


def _parent_mount_private(rootfs: str) -> None:
    """pivot_root refuses a new root whose parent mount is shared, and our bind of the rootfs
    must not propagate back to the host: make that one mount a slave. runc makes it private,
    which also cuts the rootfs off from the host's events, so rootfsPropagation "slave" (only
    "/" is made a slave) would see no host mount below the rootfs, against the spec."""
    best, shared = "", False
    for m in mountinfo.mounts():
        mnt = m.mountpoint
        if (rootfs + "/").startswith(mnt.rstrip("/") + "/") and len(mnt) >= len(best):
            best, shared = mnt, any(o.startswith("shared:") for o in m.optional)
    if best and shared:
        S.mount(None, best, None, S.MS_SLAVE)


def _mount_cgroup(plan, rootfd: int, m: dict) -> None:  # noqa: ANN001
    """cgroup v1: a tmpfs with one bind mount per hierarchy of the container's own cgroup
    (or a fresh cgroupfs per hierarchy inside a cgroup namespace), read-only if asked."""
    o = mounts.parse_options(m.get("options") or [])
    ro = o.flags & S.MS_RDONLY
    base = m["destination"].rstrip("/")
    if cgroups.is_v2_only():
        if plan.in_userns and not plan.new_cgroupns:
            # cgroup2 cannot be mounted from a user namespace for a cgroup namespace it does
            # not own (EPERM): the host's tree is bound instead, as runc does (mountCgroupV2)
            opts = [o for o in m.get("options") or [] if o not in ("rbind", "bind")]
            mounts.mount_at(
                rootfd,
                {"destination": base, "type": "bind", "source": "/sys/fs/cgroup",
                 "options": ["bind", *opts]},
            )
            return
        mounts.mount_at(
            rootfd,
            {
                "destination": base,
                "type": "cgroup2",
                "source": "cgroup",
                "options": m.get("options") or [],
            },
        )
        return
    mounts.mount_at(
        rootfd,
        {
            "destination": base,
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["nosuid", "nodev", "noexec", "mode=755"],
        },
    )
    flags = o.flags & (S.MS_NOSUID | S.MS_NODEV | S.MS_NOEXEC | S.MS_RELATIME | S.MS_RDONLY)
    paths = plan.cgroup_paths
    if not plan.new_cgroupns and (plan.rootless or running_in_userns()):
        # a hierarchy it could not have a cgroup of its own in (rootless cgroups skipped it):
        # the one it runs in, as runc shows (real root has the container's in every one)
        paths = dict(cgroups.paths_of(os.getpid()), **paths)
    for key, path in paths.items():
        if key == cgroups.UNIFIED:
            name, fstype, data = "unified", "cgroup2", None
        else:
            name = key.split(",")[0] if key.startswith("name=") else key
            name = name.removeprefix("name=")
            fstype, data = "cgroup", key
        fd = mounts.mkdir_all_in_root(rootfd, f"{base}/{name}")
        try:
            if plan.new_cgroupns:
                S.mount("cgroup", mounts.fd_path(fd), fstype, flags, data)
            else:
                S.mount(path, mounts.fd_path(fd), None, S.MS_BIND | S.MS_REC)
        finally:
            os.close(fd)
        if not plan.new_cgroupns:
            fd = mounts.open_in_root(rootfd, f"{base}/{name}")
            try:
                mounts.remount(mounts.fd_path(fd), flags)
            finally:
                os.close(fd)
    if ro:
        fd = mounts.open_in_root(rootfd, base)
        try:
            mounts.remount(mounts.fd_path(fd), flags | S.MS_RDONLY)
        finally:
            os.close(fd)


def enter(plan, rootfd: int) -> None:  # noqa: ANN001
    """Make the rootfs '/' (pivot_root, or MS_MOVE + chroot with --no-pivot; a plain chroot in
    the runtime's mount namespace, where pivot_root or MS_MOVE would change the host's root
    and --no-pivot's hiding of procfs would unmount the host's /proc)."""
    if not plan.own_mntns:
        os.fchdir(rootfd)
        S.chroot(".")
        os.chdir("/")
        return
    if plan.no_pivot:
        _hide_host_procfs(plan.rootfs)
        os.fchdir(rootfd)
        S.mount(plan.rootfs, "/", None, S.MS_MOVE)
        S.chroot(".")
        os.chdir("/")
    else:
        _pivot(rootfd)
    if plan.config.get("linux", {}).get("rootfsPropagation"):
        # applied to '/' only now: before pivot_root it would reach the host's mounts
        S.mount(None, "/", None, _propagation(plan))


def _pivot(rootfd: int) -> None:
    oldroot = os.open("/", os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fchdir(rootfd)
        S.pivot_root(".", ".")
        # the old root is now stacked under "."; detach it without a put_old directory
        os.fchdir(oldroot)
        S.mount(None, ".", None, S.MS_SLAVE | S.MS_REC)
        S.umount2(".", S.MNT_DETACH)
    finally:
        os.close(oldroot)
    os.chdir("/")


def _hide_host_procfs(rootfs: str) -> None:
    """--no-pivot leaves the host's mounts reachable below the chroot; the kernel allows a new
    procfs/sysfs mount when a full one is visible, so detach (or cover) every full proc and sysfs
    mount outside the rootfs first, as runc does."""
    for m in mountinfo.mounts():
        mnt = m.mountpoint
        if m.root != "/" or m.fstype not in ("proc", "sysfs") or mnt.startswith(rootfs):
            continue
        try:
            S.mount(None, mnt, None, S.MS_SLAVE | S.MS_REC)
        except FileNotFoundError:
            continue
        try:
            S.umount2(mnt, S.MNT_DETACH)
        except OSError:
            S.mount("tmpfs", mnt, "tmpfs", 0, None)


def finish(plan) -> None:  # noqa: ANN001
    """After '/' is the rootfs: masked and read-only paths, read-only /dev and root."""
    lx = plan.config.get("linux", {})
    rootfd = os.open("/", S.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    null = -1
    try:
        for p in lx.get("readonlyPaths") or []:
            _readonly(rootfd, p)
        for p in lx.get("maskedPaths") or []:
            if null < 0:
                null = _null_device(rootfd)
            _mask(rootfd, p, null)
        for m in plan.config.get("mounts") or []:
            if os.path.normpath("/" + m["destination"].lstrip("/")) == "/dev" and "ro" in (
                m.get("options") or []
            ):
                mounts.remount("/dev", _flags_of(m) | S.MS_RDONLY)
    finally:
        os.close(rootfd)
        if null >= 0:
            os.close(null)
    if plan.config.get("root", {}).get("readonly"):
        mounts.remount("/", S.MS_RDONLY)


def _flags_of(m: dict) -> int:
    o = mounts.parse_options(m.get("options") or [])
    return o.flags & ~(S.MS_BIND | S.MS_REC | S.MS_REMOUNT)


def _readonly(rootfd: int, path: str) -> None:
    try:
        fd = mounts.open_in_root(rootfd, path)
    except (FileNotFoundError, NotADirectoryError):
        return
    try:
        p = mounts.fd_path(fd)
        S.mount(p, p, None, S.MS_BIND | S.MS_REC)
    finally:
        os.close(fd)
    fd = mounts.open_in_root(rootfd, path)
    try:
        # read-only, keeping the nosuid/nodev/noexec the mount already has (as runc): adding
        # them would make e.g. a read-only /usr or /bin noexec, which the spec does not ask
        p = mounts.fd_path(fd)
        keep = mounts.statvfs_flags(p) & (S.MS_NOSUID | S.MS_NODEV | S.MS_NOEXEC)
        mounts.remount(p, S.MS_RDONLY | keep)
    finally:
        os.close(fd)


def _null_device(rootfd: int) -> int:
    """The container's /dev/null, checked to be the null device (char 1:3), as an O_PATH fd.

    CVE-2025-31133 class: /dev/null can come from the image (no /dev tmpfs) or be a symlink;
    masking with "whatever /dev/null is" would bind e.g. /proc/sys/kernel/core_pattern over a
    masked path and hand the container a writable host-global file."""
    try:
        fd = mounts.open_in_root(rootfd, "dev/null")
    except OSError as e:
        raise RuntimeErr(
            f"linux.maskedPaths: cannot open /dev/null to mask with: {e.strerror}"
        ) from None
    st = os.fstat(fd)
    if not stat.S_ISCHR(st.st_mode) or st.st_rdev != os.makedev(1, 3):
        os.close(fd)
        raise RuntimeErr(
            "linux.maskedPaths: the container's /dev/null is not the null device (char 1:3) "
            "-- refusing to mask with it (possible attack)"
        )
    return fd


def _mask(rootfd: int, path: str, null: int) -> None:
    try:
        fd = mounts.open_in_root(rootfd, path)
    except (FileNotFoundError, NotADirectoryError):
        return
    try:
        p = mounts.fd_path(fd)
        if os.path.isdir(p):
            S.mount("tmpfs", p, "tmpfs", S.MS_RDONLY, None)
        else:
            S.mount(mounts.fd_path(null), p, None, S.MS_BIND)
    finally:
        os.close(fd)
