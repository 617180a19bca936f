"""linux.seccomp: the filter built with libseccomp, as runc builds it.

The filter is compiled in the runtime before the fork, so a bad profile fails `create` with a
clear error before anything exists; the forked child only loads it (after no_new_privs, or
before dropping CAP_SYS_ADMIN when the process has no no_new_privs, as runc orders it).

libseccomp is called through our own cffi binding (pyrunc/linux/libseccomp.py, ABI mode), so a
plain `pip install` of pyrunc works on any CPython: Debian's python3-seccomp is built for the
system interpreter only, and the ctypes bindings on PyPI import in ~19 ms, which every
Docker/containerd container would pay.
"""

from __future__ import annotations

from pyrunc import log
from pyrunc.errors import ConfigError, RuntimeErr
from pyrunc.linux import libseccomp as SC
from pyrunc.linux import seccomp_enosys  # now: the init child may have pivoted away from it

EPERM = 1
EEXIST = 17
_OPS = {
    "SCMP_CMP_NE": SC.CMP_NE,
    "SCMP_CMP_LT": SC.CMP_LT,
    "SCMP_CMP_LE": SC.CMP_LE,
    "SCMP_CMP_EQ": SC.CMP_EQ,
    "SCMP_CMP_GE": SC.CMP_GE,
    "SCMP_CMP_GT": SC.CMP_GT,
    "SCMP_CMP_MASKED_EQ": SC.CMP_MASKED_EQ,
}
_FLAGS = {
    "SECCOMP_FILTER_FLAG_LOG": SC.ATTR_CTL_LOG,
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": SC.ATTR_CTL_SSB,
}
# passed to seccomp(2) by seccomp_enosys (we load the filter ourselves, so libseccomp 2.5's
# lack of it does not matter; the kernel has it since 5.19)
_RAW_FLAGS = ("SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",)
# taken and ignored, as runc does: the filter is loaded while the process has one thread
_IGNORED_FLAGS = ("SECCOMP_FILTER_FLAG_TSYNC",)
# every flag the spec's config may name that pyrunc takes, in runc's order (runc 1.3's
# KnownFlags are the first three; runc 1.4.1 added WAIT_KILLABLE_RECV)
KNOWN_FLAGS = (
    "SECCOMP_FILTER_FLAG_TSYNC",
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
    "SECCOMP_FILTER_FLAG_LOG",
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
)


def lib() -> object:
    """libseccomp, opened (once): a host without it fails seccomp containers with one line."""
    try:
        return SC.lib()
    except SC.NotInstalled as e:
        raise RuntimeErr(
            f"linux.seccomp: libseccomp is not installed ({e}); apt-get install libseccomp2"
        ) from None


_NO_ERRNO = {
    "SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_TRAP",
    "SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY",
}
_ACTIONS = {
    "SCMP_ACT_KILL": SC.ACT_KILL,
    "SCMP_ACT_KILL_THREAD": SC.ACT_KILL_THREAD,
    "SCMP_ACT_KILL_PROCESS": SC.ACT_KILL_PROCESS,
    "SCMP_ACT_TRAP": SC.ACT_TRAP,
    "SCMP_ACT_ALLOW": SC.ACT_ALLOW,
    "SCMP_ACT_LOG": SC.ACT_LOG,
    "SCMP_ACT_NOTIFY": SC.ACT_NOTIFY,
}


def _action(name: object, errno_ret: int | None, where: str, errno_where: str) -> int:
    if errno_ret is not None and name in _NO_ERRNO:
        # the spec: an errno on an action that cannot return one is an error (runc 1.1
        # silently drops it)
        raise ConfigError(f"{errno_where}: {name} does not return an errno")
    if name == "SCMP_ACT_ERRNO":
        return SC.act_errno(EPERM if errno_ret is None else errno_ret)
    if name == "SCMP_ACT_TRACE":
        return SC.act_trace(EPERM if errno_ret is None else errno_ret)
    if isinstance(name, str) and name in _ACTIONS:
        return _ACTIONS[name]
    raise ConfigError(f"{where}: invalid action {name!r}")


def uses_notify(spec: dict) -> bool:
    """Any rule with SCMP_ACT_NOTIFY (runc counts one even if all its syscalls are unknown)."""
    return any(
        isinstance(c, dict) and c.get("action") == "SCMP_ACT_NOTIFY"
        for c in spec.get("syscalls") or []
    )


def check_listener(spec: dict) -> None:
    """A profile that notifies needs an agent to notify: checked for containers (build() alone
    may make a listener filter for a caller that keeps the fd itself)."""
    if uses_notify(spec) and not spec.get("listenerPath"):
        raise ConfigError(
            "linux.seccomp.listenerPath: SCMP_ACT_NOTIFY needs a listener path "
            "(the seccomp agent's unix socket)"
        )


def build(spec: dict) -> SC.Filter:
    """A libseccomp filter for the spec's linux.seccomp, ready to load()."""
    lib()
    default = _action(
        spec.get("defaultAction"),
        spec.get("defaultErrnoRet"),
        "linux.seccomp.defaultAction",
        "linux.seccomp.defaultErrnoRet",
    )
    if spec.get("defaultAction") == "SCMP_ACT_NOTIFY":
        raise ConfigError(
            "linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be used as default action"
        )
    try:
        f = SC.Filter(default)
        f.set_attr(SC.ATTR_CTL_NNP, 0)  # no_new_privs is process.noNewPrivileges' business
    except OSError as e:
        raise RuntimeErr(f"linux.seccomp: error creating filter: {e.strerror}") from None
    for i, arch in enumerate(spec.get("architectures") or []):
        a = SC.ARCH.get(str(arch).removeprefix("SCMP_ARCH_"))
        if a is None or not str(arch).startswith("SCMP_ARCH_"):
            raise ConfigError(f"linux.seccomp.architectures[{i}]: unknown architecture {arch!r}")
        try:
            if f.exist_arch(a):
                continue  # the native one is always there (libseccomp-golang ignores EEXIST too)
            f.add_arch(a)
        except OSError as e:
            raise RuntimeErr(
                f"linux.seccomp: error adding architecture {arch}: {e.strerror}"
            ) from None
    for i, flag in enumerate(spec.get("flags") or []):
        if flag in _RAW_FLAGS or flag in _IGNORED_FLAGS:
            continue
        if flag not in _FLAGS:
            raise ConfigError(f"linux.seccomp.flags[{i}]: unknown flag {flag!r}")
        try:
            f.set_attr(_FLAGS[flag], 1)
        except OSError as e:
            raise RuntimeErr(f"linux.seccomp.flags[{i}]: {flag}: {e.strerror}") from None
    seen: set[tuple] = set()
    for i, call in enumerate(spec.get("syscalls") or []):
        _add(f, call, default, f"linux.seccomp.syscalls[{i}]", seen)
    return f


def supported_flags() -> list[str]:
    """The KNOWN_FLAGS this host's kernel and libseccomp can apply (runc's SupportedFlags, for
    `features`): LOG and SPEC_ALLOW set on a scratch filter as build() sets them (libseccomp
    refuses what the kernel lacks), WAIT_KILLABLE_RECV probed with seccomp(2) itself (which
    takes it only with NEW_LISTENER), TSYNC always (ignored)."""
    from pyrunc.linux import sys as LS

    lib()
    out = []
    for flag in KNOWN_FLAGS:
        if flag in _FLAGS:
            try:
                SC.Filter(SC.ACT_ALLOW).set_attr(_FLAGS[flag], 1)
            except OSError:
                continue
        elif flag in _RAW_FLAGS:
            raw = LS.SECCOMP_FILTER_FLAG_NEW_LISTENER | LS.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
            if not LS.seccomp_flags_known(raw):
                continue
        out.append(flag)
    return out


def _add(f: SC.Filter, call: dict, default: int, where: str, seen: set[tuple]) -> None:
    action = _action(
        call.get("action"), call.get("errnoRet"), where + ".action", where + ".errnoRet"
    )
    names = call.get("names") or ([call["name"]] if call.get("name") else [])
    if not names:
        raise ConfigError(f"{where}.names: empty string is not a valid syscall")
    if call.get("action") == "SCMP_ACT_NOTIFY" and "write" in names:
        # the init reports to the runtime with write(2): a notify on it would hang us
        raise ConfigError(f"{where}: SCMP_ACT_NOTIFY cannot be used for the write syscall")
    if action == default:
        return  # redundant (libseccomp refuses it); runc skips it silently
    conds: list[tuple[int, int, int, int]] = []
    counts: dict[int, int] = {}
    for j, arg in enumerate(call.get("args") or []):
        op = _OPS.get(arg.get("op"))
        if op is None:
            raise ConfigError(f"{where}.args[{j}].op: invalid operator {arg.get('op')!r}")
        idx = arg.get("index", 0)
        if not 0 <= idx < 6:
            raise ConfigError(f"{where}.args[{j}].index: {idx} is not in 0..5")
        counts[idx] = counts.get(idx, 0) + 1
        conds.append((idx, op, arg.get("value", 0), arg.get("valueTwo", 0)))
    if conds and max(counts.values()) > 1:
        # two conditions on one argument can't be ANDed by libseccomp: one rule each
        # (runc's fallback, which ORs them)
        rules = [(c,) for c in conds]
    else:
        rules = [tuple(conds)]
    for name in names:
        # any other negative number is a pseudo-syscall, one the native arch lacks but another
        # may have (socketcall, ipc: x86). runc adds those rules and so must we: without
        # podman's socketcall ALLOW, the x86 filter got its socket rules rewritten into
        # socketcall ones that collided there (EEXIST)
        nr = SC.resolve_syscall(SC.ARCH_NATIVE, name)
        if nr == SC.NR_SCMP_ERROR:  # not a syscall this libseccomp knows (a newer profile)
            log.debug(f"unknown seccomp syscall {name!r} ignored")
            continue
        for rule in rules:
            key = (nr, action, rule)
            if key in seen:
                # the same rule again (podman 4.3's profiles have one): libseccomp would add
                # nothing either, as for any rule an earlier one covers
                log.debug(f"{where}: duplicate seccomp rule for syscall {name} skipped")
                continue
            seen.add(key)
            try:
                f.add_rule(action, nr, rule)
            except OSError as e:
                why = e.strerror
                if e.errno == EEXIST:
                    why = (
                        "an earlier rule gives another action for arguments this one also "
                        f"matches ({why})"
                    )
                raise RuntimeErr(f"{where}: error adding rule for syscall {name}: {why}") from None
            except (OverflowError, TypeError) as e:  # an argument value out of uint64 range
                raise RuntimeErr(f"{where}: error adding rule for syscall {name}: {e}") from None


def load(f: SC.Filter, spec: dict) -> int:
    """Load build(spec)'s filter into this process, with runc's -ENOSYS stub in front (see
    seccomp_enosys: libseccomp's own load cannot prepend it). Returns the notify fd when a rule
    uses SCMP_ACT_NOTIFY, else -1."""
    try:
        return seccomp_enosys.load(spec, f)
    except Exception as e:
        raise RuntimeErr(f"error loading seccomp filter into kernel: {e}") from None
