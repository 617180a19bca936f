"""process.rlimits: RLIMIT_* names to resource numbers (set with prlimit semantics)."""

from __future__ import annotations

import resource

from pyrunc.errors import ConfigError, RuntimeErr

NUMBERS = {
    "RLIMIT_CPU": 0,
    "RLIMIT_FSIZE": 1,
    "RLIMIT_DATA": 2,
    "RLIMIT_STACK": 3,
    "RLIMIT_CORE": 4,
    "RLIMIT_RSS": 5,
    "RLIMIT_NPROC": 6,
    "RLIMIT_NOFILE": 7,
    "RLIMIT_MEMLOCK": 8,
    "RLIMIT_AS": 9,
    "RLIMIT_LOCKS": 10,
    "RLIMIT_SIGPENDING": 11,
    "RLIMIT_MSGQUEUE": 12,
    "RLIMIT_NICE": 13,
    "RLIMIT_RTPRIO": 14,
    "RLIMIT_RTTIME": 15,
}
_INF = 0xFFFFFFFFFFFFFFFF


def check(rlimits: list[dict]) -> None:
    for i, r in enumerate(rlimits):
        if r["type"] not in NUMBERS:
            raise ConfigError(
                f"config.json: process.rlimits[{i}].type: unknown rlimit {r['type']!r}"
            )


def apply(rlimits: list[dict]) -> None:
    for r in rlimits:
        soft, hard = r["soft"], r["hard"]
        soft = resource.RLIM_INFINITY if soft >= _INF else soft
        hard = resource.RLIM_INFINITY if hard >= _INF else hard
        try:
            resource.prlimit(0, NUMBERS[r["type"]], (soft, hard))
        except (OSError, ValueError) as e:
            # (EPERM: raising a hard limit takes CAP_SYS_RESOURCE in the host's user
            # namespace, which a rootless runtime does not have)
            why = getattr(e, "strerror", None) or str(e)
            raise RuntimeErr(
                f"process.rlimits: error setting rlimit type {r['type']} (soft {r['soft']}, "
                f"hard {r['hard']}): {why}"
            ) from None
