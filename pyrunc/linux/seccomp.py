"""linux.seccomp: the filter built with libseccomp's own Python bindings, as runc builds it.

The filter is compiled in the runtime before the fork, so a bad profile fails `create` with a
clear error before anything exists; the forked child only loads it (after no_new_privs, or
before dropping CAP_SYS_ADMIN when the process has no no_new_privs, as runc orders it).

The bindings are Debian's python3-seccomp (a compiled module, ~0.4 ms to import; the ctypes
alternative on PyPI imports in ~19 ms, which every Docker/containerd container would pay). It
is built for the system interpreter, which is also the venv's, so it is looked up in that
interpreter's dist-packages when the venv does not have it.
"""

from __future__ import annotations

import os
import sys

from pyrunc.errors import ConfigError, RuntimeErr
from pyrunc.linux import seccomp_enosys  # now: the init child may have pivoted away from it

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import ModuleType

EPERM = 1
_OPS = {
    "SCMP_CMP_NE": "NE",
    "SCMP_CMP_LT": "LT",
    "SCMP_CMP_LE": "LE",
    "SCMP_CMP_EQ": "EQ",
    "SCMP_CMP_GE": "GE",
    "SCMP_CMP_GT": "GT",
    "SCMP_CMP_MASKED_EQ": "MASKED_EQ",
}
_FLAGS = {"SECCOMP_FILTER_FLAG_LOG": "CTL_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW": "CTL_SSB"}
# passed to seccomp(2) by seccomp_enosys (we load the filter ourselves, so libseccomp 2.5's
# lack of it does not matter; the kernel has it since 5.19)
_RAW_FLAGS = ("SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",)


def lib() -> ModuleType:
    try:
        import seccomp
    except ImportError:
        dist = os.path.join(sys.base_prefix, "lib", "python3", "dist-packages")
        if dist not in sys.path:
            sys.path.append(dist)
        try:
            import seccomp
        except ImportError:
            raise RuntimeErr(
                "linux.seccomp: libseccomp's Python bindings are not installed "
                "(apt-get install python3-seccomp)"
            ) from None
    return seccomp


_NO_ERRNO = {
    "SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_TRAP",
    "SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY",
}


def _action(
    L: ModuleType, name: object, errno_ret: object, where: str, errno_where: str
) -> object:
    if errno_ret is not None and name in _NO_ERRNO:
        # the spec: an errno on an action that cannot return one is an error (runc 1.1
        # silently drops it)
        raise ConfigError(f"{errno_where}: {name} does not return an errno")
    if name in ("SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD"):
        return L.KILL
    if name == "SCMP_ACT_KILL_PROCESS":
        return L.KILL_PROCESS
    if name == "SCMP_ACT_ERRNO":
        return L.ERRNO(EPERM if errno_ret is None else errno_ret)
    if name == "SCMP_ACT_TRACE":
        return L.TRACE(EPERM if errno_ret is None else errno_ret)
    if name == "SCMP_ACT_TRAP":
        return L.TRAP
    if name == "SCMP_ACT_ALLOW":
        return L.ALLOW
    if name == "SCMP_ACT_LOG":
        return L.LOG
    if name == "SCMP_ACT_NOTIFY":
        return L.NOTIFY
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


def build(spec: dict) -> object:
    """A libseccomp SyscallFilter for the spec's linux.seccomp, ready to load()."""
    L = lib()
    default = _action(
        L,
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
        f = L.SyscallFilter(default)
    except Exception as e:  # the bindings raise plain RuntimeError/ValueError
        raise RuntimeErr(f"linux.seccomp: error creating filter: {e}") from None
    f.set_attr(L.Attr.CTL_NNP, 0)  # no_new_privs is process.noNewPrivileges' business
    for i, arch in enumerate(spec.get("architectures") or []):
        a = getattr(L.Arch, str(arch).removeprefix("SCMP_ARCH_"), None)
        if a is None or not str(arch).startswith("SCMP_ARCH_"):
            raise ConfigError(f"linux.seccomp.architectures[{i}]: unknown architecture {arch!r}")
        if f.exist_arch(a):
            continue  # the native one is always there (libseccomp-golang ignores EEXIST too)
        try:
            f.add_arch(a)
        except Exception as e:
            raise RuntimeErr(f"linux.seccomp: error adding architecture {arch}: {e}") from None
    for i, flag in enumerate(spec.get("flags") or []):
        if flag in _RAW_FLAGS:
            continue
        if flag not in _FLAGS:
            raise ConfigError(f"linux.seccomp.flags[{i}]: unknown flag {flag!r}")
        f.set_attr(getattr(L.Attr, _FLAGS[flag]), 1)
    for i, call in enumerate(spec.get("syscalls") or []):
        _add(L, f, call, default, f"linux.seccomp.syscalls[{i}]")
    return f


def _add(L: ModuleType, f: object, call: dict, default: object, where: str) -> None:
    action = _action(
        L, call.get("action"), call.get("errnoRet"), where + ".action", where + ".errnoRet"
    )
    names = call.get("names") or ([call["name"]] if call.get("name") else [])
    if not names:
        raise ConfigError(f"{where}.names: empty string is not a valid syscall")
    if call.get("action") == "SCMP_ACT_NOTIFY" and "write" in names:
        # the init reports to the runtime with write(2): a notify on it would hang us
        raise ConfigError(f"{where}: SCMP_ACT_NOTIFY cannot be used for the write syscall")
    if action == default:
        return  # redundant (libseccomp refuses it); runc skips it silently
    conds = []
    counts: dict[int, int] = {}
    for j, arg in enumerate(call.get("args") or []):
        op = _OPS.get(arg.get("op"))
        if op is None:
            raise ConfigError(f"{where}.args[{j}].op: invalid operator {arg.get('op')!r}")
        idx = arg.get("index", 0)
        if not 0 <= idx < 6:
            raise ConfigError(f"{where}.args[{j}].index: {idx} is not in 0..5")
        counts[idx] = counts.get(idx, 0) + 1
        conds.append(L.Arg(idx, getattr(L, op), arg.get("value", 0), arg.get("valueTwo", 0)))
    for name in names:
        try:
            nr = L.resolve_syscall(L.Arch.NATIVE, name)
        except (ValueError, RuntimeError):
            nr = -1
        if nr < 0:  # not a syscall this libseccomp knows (a newer profile): skip, as runc
            from pyrunc import log

            log.debug(f"unknown seccomp syscall {name!r} ignored")
            continue
        try:
            if conds and max(counts.values()) > 1:
                # two conditions on one argument can't be ANDed by libseccomp: one rule each
                # (runc's fallback, which ORs them)
                for c in conds:
                    f.add_rule(action, name, c)
            else:
                f.add_rule(action, name, *conds)
        except Exception as e:
            raise RuntimeErr(f"{where}: error adding rule for syscall {name}: {e}") from None


def load(f: object, spec: dict) -> int:
    """Load build(spec)'s filter into this process, with runc's -ENOSYS stub in front (see
    seccomp_enosys: libseccomp's own load cannot prepend it). Returns the notify fd when a rule
    uses SCMP_ACT_NOTIFY, else -1."""
    try:
        return seccomp_enosys.load(spec, f)
    except Exception as e:
        raise RuntimeErr(f"error loading seccomp filter into kernel: {e}") from None
