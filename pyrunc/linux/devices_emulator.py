"""The cgroup v1 devices controller, emulated (runc's devices emulator, rule for rule).

Why emulate: writing a config's rules to devices.allow/deny one by one passes through states
the config never asked for (runc writes "a" deny first, then allows), and a running container
that uses /dev/null at that moment gets EPERM. Knowing the current state (devices.list) and the
target, only the difference is written. The same reduced rule list feeds the cgroup v2 eBPF
program, so v1 and v2 agree on what a config means (including refusing to "punch a hole" in a
wildcard rule, which v1 would silently ignore).

A rule is a tuple (type, major, minor, perms, allow): type 'a', 'b' or 'c'; major/minor -1 for
"*"; perms a string over "rwm".
"""

from __future__ import annotations

from pyrunc.errors import ConfigError, RuntimeErr

WILDCARD = -1
_BITS = {"r": 1, "w": 2, "m": 4}


def _set(perms: str) -> int:
    """runc's Permissions.toSet: letters other than r, w, m are ignored (so "rwa" is "rw")."""
    out = 0
    for ch in perms:
        out |= _BITS.get(ch, 0)
    return out


def _str(bits: int) -> str:
    return ("r" if bits & 1 else "") + ("w" if bits & 2 else "") + ("m" if bits & 4 else "")


class Emulator:
    __slots__ = ("default_allow", "rules")

    def __init__(self, default_allow: bool = False) -> None:
        self.default_allow = default_allow
        self.rules: dict[tuple[str, int, int], str] = {}

    def is_blacklist(self) -> bool:
        return self.default_allow

    def apply(self, rule: tuple) -> None:
        t, major, minor, perms, allow = rule
        if t not in ("a", "b", "c"):
            raise ConfigError(
                f"linux.resources.devices: cannot add rule with non-cgroup type {t!r}"
            )
        if t == "a":  # "a" is every device with every access, whatever else the rule says
            self.default_allow = bool(allow)
            self.rules = {}
            return
        meta = (t, major, minor)
        if bool(allow) == self.default_allow:
            self._rm(meta, perms)
        else:
            self._add(meta, perms)

    def _add(self, meta: tuple[str, int, int], perms: str) -> None:
        self.rules[meta] = _str(_set(perms) | _set(self.rules.get(meta, "")))

    def _rm(self, meta: tuple[str, int, int], perms: str) -> None:
        t, major, minor = meta
        want = _set(perms)
        for partial in ((t, WILDCARD, minor), (t, major, WILDCARD), (t, WILDCARD, WILDCARD)):
            if partial == meta:
                continue
            if _set(self.rules.get(partial, "")) & want:
                raise ConfigError(
                    f"linux.resources.devices: rule {cgroup_string((*meta, perms, False))!r} "
                    "is not supported by devices cgroup v1 (cannot punch hole in existing "
                    f"wildcard rule {cgroup_string((*partial, self.rules[partial], False))!r})"
                )
        left = _set(self.rules.get(meta, "")) & ~want
        if left:
            self.rules[meta] = _str(left)
        else:
            self.rules.pop(meta, None)

    def rule_list(self) -> list[tuple]:
        """The rules sorted by (major, minor, type) as runc sorts them: the exceptions to the
        default, i.e. allow rules of a whitelist or deny rules of a blacklist."""
        metas = sorted(self.rules, key=lambda m: (m[1], m[2], m[0]))
        return [(*m, self.rules[m], not self.default_allow) for m in metas]

    def transition(self, target: Emulator) -> list[tuple]:
        """The fewest rules that move a cgroup in this state to `target` (runc's Transition).

        A blacklist source always starts over with a disruptive "a" rule: devices.list cannot
        show a blacklist's deny rules, so they cannot be diffed."""
        out: list[tuple] = []
        old = self.rules
        if self.default_allow or self.default_allow != target.default_allow:
            out.append(("a", WILDCARD, WILDCARD, "rwm", target.default_allow))
            old = {}
        for m in sorted(old, key=lambda m: (m[1], m[2], m[0])):
            dropped = _set(old[m]) & ~_set(target.rules.get(m, ""))
            if dropped:
                out.append((*m, _str(dropped), target.default_allow))
        for m in sorted(target.rules, key=lambda m: (m[1], m[2], m[0])):
            gained = _set(target.rules[m]) & ~_set(old.get(m, ""))
            if gained:
                out.append((*m, _str(gained), not target.default_allow))
        return out


def build(rules: list[tuple]) -> Emulator:
    """The state a fresh whitelist reaches after `rules` (runc's buildEmulator)."""
    emu = Emulator(default_allow=False)
    for r in rules:
        emu.apply(r)
    return emu


def _num(s: str, line: str) -> int:
    if s == "*":
        return WILDCARD
    if not s.isdigit():
        raise RuntimeErr(f"devices.list: invalid line {line!r}")
    return int(s)


def from_list(text: str) -> Emulator:
    """The current state from a cgroup v1 devices.list: "a *:* rwm" means allow-all (a
    blacklist whose deny rules the kernel does not list); anything else is a whitelist."""
    emu = Emulator(default_allow=False)
    for line in text.splitlines():
        if not line.strip():
            continue
        parts = line.split(" ")
        if len(parts) != 3 or parts[0] not in ("a", "b", "c") or ":" not in parts[1]:
            raise RuntimeErr(f"devices.list: invalid line {line!r}")
        perms = parts[2]
        if not perms or any(ch not in "rwm" for ch in perms):
            raise RuntimeErr(f"devices.list: invalid permissions in {line!r}")
        ma, _, mi = parts[1].partition(":")
        major, minor = _num(ma, line), _num(mi, line)
        if parts[0] == "a":  # only ever "a *:* rwm": the cgroup allows everything
            emu.default_allow = True
            emu.rules = {}
            continue
        if emu.default_allow:  # as runc's addLine: an allow in blacklist mode removes a deny
            emu._rm((parts[0], major, minor), perms)
            continue
        emu._add((parts[0], major, minor), perms)
    return emu


def cgroup_string(rule: tuple) -> str:
    t, major, minor, perms = rule[0], rule[1], rule[2], rule[3]
    ma = "*" if major == WILDCARD else str(major)
    mi = "*" if minor == WILDCARD else str(minor)
    return f"{t} {ma}:{mi} {perms}"


def rules_from_spec(spec_rules: list[dict]) -> list[tuple]:
    """OCI linux.resources.devices -> rules, with runc's defaults (type "a", wildcard numbers)
    and its error for an empty access string."""
    out = []
    for i, d in enumerate(spec_rules):
        t = d.get("type") or "a"
        if t not in ("a", "b", "c"):
            raise ConfigError(f"linux.resources.devices[{i}].type: invalid cgroup device {t!r}")
        access = d.get("access") or ""
        if not access:
            raise ConfigError(f"linux.resources.devices[{i}].access: cannot be empty")
        major = d.get("major")
        minor = d.get("minor")
        out.append(
            (
                t,
                WILDCARD if major is None else major,
                WILDCARD if minor is None else minor,
                access,
                bool(d.get("allow")),
            )
        )
    return out
