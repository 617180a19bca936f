#!/bin/sh
# v2only.sh RUNTIME ARGS... -- run one runtime command as on a cgroup v2-only host.
# This host is cgroup v1 with a cgroup2 tree at /sys/fs/cgroup/unified. In a private mount
# namespace the v1 mounts under /sys/fs/cgroup are removed and the cgroup2 hierarchy is mounted
# there instead, so the runtime takes its v2 code path against the real kernel: membership,
# cgroup.freeze, cgroup.* files and eBPF device programs work; no resource controller can be
# enabled (they are all bound to v1 hierarchies), so limits that need one fail.
exec unshare --mount --propagation private sh -c '
	umount -R /sys/fs/cgroup || exit 125
	mount -t cgroup2 cgroup2 /sys/fs/cgroup || exit 125
	exec "$0" "$@"' "$@"
