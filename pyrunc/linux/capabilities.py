"""Capabilities: the five sets of process.capabilities, applied in the order the kernel needs.

Bounding set first (needs CAP_SETPCAP), then the uid change with keep-caps, then capset, then
ambient (which must be a subset of permitted and inheritable).
"""

from __future__ import annotations

from pyrunc.linux import sys as S

NAMES = (
    "CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP "
    "LINUX_IMMUTABLE NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER "
    "SYS_MODULE SYS_RAWIO SYS_CHROOT SYS_PTRACE SYS_PACCT SYS_ADMIN SYS_BOOT SYS_NICE "
    "SYS_RESOURCE SYS_TIME SYS_TTY_CONFIG MKNOD LEASE AUDIT_WRITE AUDIT_CONTROL SETFCAP "
    "MAC_OVERRIDE MAC_ADMIN SYSLOG WAKE_ALARM BLOCK_SUSPEND AUDIT_READ PERFMON BPF "
    "CHECKPOINT_RESTORE"
).split()
NUMBERS = {"CAP_" + n: i for i, n in enumerate(NAMES)}


def last_cap() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap", "rb") as f:
            return int(f.read())
    except OSError:
        return len(NAMES) - 1


def mask(names: list[str] | None, last: int, unknown: list[str]) -> int:
    m = 0
    for n in names or ():
        i = NUMBERS.get(n.upper() if n.upper().startswith("CAP_") else "CAP_" + n.upper())
        if i is None or i > last:
            unknown.append(n)
            continue
        m |= 1 << i
    return m


class CapSets:
    __slots__ = ("bounding", "effective", "permitted", "inheritable", "ambient", "unknown")

    def __init__(self, caps: dict | None) -> None:
        caps = caps or {}
        last = last_cap()
        self.unknown: list[str] = []
        self.bounding = mask(caps.get("bounding"), last, self.unknown)
        self.effective = mask(caps.get("effective"), last, self.unknown)
        self.permitted = mask(caps.get("permitted"), last, self.unknown)
        self.inheritable = mask(caps.get("inheritable"), last, self.unknown)
        self.ambient = mask(caps.get("ambient"), last, self.unknown)


def drop_bounding(keep: int) -> None:
    for i in range(last_cap() + 1):
        if not keep & (1 << i):
            S.prctl(S.PR_CAPBSET_DROP, i)


def apply(c: CapSets) -> None:
    S.capset(c.effective, c.permitted, c.inheritable)
    S.prctl(S.PR_CAP_AMBIENT, S.PR_CAP_AMBIENT_CLEAR_ALL)
    for i in range(last_cap() + 1):
        if c.ambient & (1 << i):
            try:
                S.prctl(S.PR_CAP_AMBIENT, S.PR_CAP_AMBIENT_RAISE, i)
            except OSError:
                pass  # runc ignores ambient caps the kernel refuses (not in permitted/inheritable)
