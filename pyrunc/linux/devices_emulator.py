"""The cgroup v1 devices controller, emulated (runc 1.1.5's devices emulator, rule for rule).

Why emulate: writing a config's rules to devices.allow/deny one by one passes through states
the config never asked for (a deny-all first, then the allows), and a running container that
uses /dev/null at that moment gets EPERM. Knowing the current state (devices.list) and the
target, only the difference is written. The same reduced rule list feeds the cgroup v2 eBPF
program, so v1 and v2 agree on what a config means, including refusing to "punch a hole" in a
wildcard rule, which v1 would silently ignore.

A rule is a tuple (type, major, minor, perms, allow): type 'a', 'b' or 'c'; major/minor an int,
-1 for "*"; perms a string over "rwm"; allow a bool. Rules this module produces always spell
perms in runc's order r, w, m.
"""

from __future__ import annotations

from pyrunc.errors import ConfigError, RuntimeErr

TYPE_CHECKING = False
if TYPE_CHECKING:
    Meta = tuple[str, int, int]
    Rule = tuple[str, int, int, str, bool]

WILDCARD = -1
_TYPES = ("a", "b", "c")  # runc's Type.CanCgroup: 'p' (fifo) is a node type, not a cgroup one
_BITS = {"r": 1, "w": 2, "m": 4}
_U32_MAX = 0xFFFFFFFF


def _to_set(perms: str) -> int:
    """runc's Permissions.toSet. A letter other than r, w or m is skipped, not refused: runc
    1.1.5 never validates a config's access string beyond "not empty" (specconv), and its own
    update.bats denies "c 1:11 rwa" expecting it to mean "rw". Only devices.list lines, which
    come from the kernel, are held to the strict form (see _parse_line)."""
    bits = 0
    for ch in perms:
        bits |= _BITS.get(ch, 0)
    return bits


def _from_set(bits: int) -> str:
    """runc's fromSet: the canonical spelling, so equal sets compare equal as strings."""
    return ("r" if bits & 1 else "") + ("w" if bits & 2 else "") + ("m" if bits & 4 else "")


def _ordered(rules: dict[Meta, str]) -> list[Meta]:
    """runc's orderedEntries: (major, minor, type), so the same state always writes the same
    rules in the same order (wildcards, being -1, first)."""
    return sorted(rules, key=lambda m: (m[1], m[2], m[0]))


class Emulator:
    """A devices cgroup: a default (allow-all "blacklist" or deny-all "whitelist") plus the
    exceptions to it, keyed by (type, major, minor), each a non-empty canonical perms string."""

    __slots__ = ("default_allow", "rules")

    def __init__(self, default_allow: bool = False, rules: dict[Meta, str] | None = None) -> None:
        # runc's zero Emulator is a whitelist: the mode a container's cgroup must end up in
        self.default_allow: bool = default_allow
        self.rules: dict[Meta, str] = dict(rules) if rules else {}

    def __eq__(self, other: object) -> bool:
        """runc's final check is reflect.DeepEqual on the two emulators."""
        if not isinstance(other, Emulator):
            return NotImplemented
        return self.default_allow == other.default_allow and self.rules == other.rules

    def __repr__(self) -> str:
        return f"Emulator(default_allow={self.default_allow!r}, rules={self.rules!r})"

    def is_blacklist(self) -> bool:
        return self.default_allow

    def apply(self, rule: Rule) -> None:
        """One write to devices.allow (allow=True) or devices.deny, as cgroup v1 would take it,
        except that a deny which v1 would silently ignore (a hole in a wildcard) is an error."""
        kind, major, minor, perms, allow = rule
        if kind not in _TYPES:
            raise ConfigError(
                f"linux.resources.devices: cannot add rule {cgroup_string(rule)!r} with "
                f"non-cgroup type {kind!r}"
            )
        if kind == "a":
            # "a" is every device with every access whatever its numbers and perms say: it
            # resets the cgroup to allow-all (allow) or deny-all (deny)
            self.default_allow = bool(allow)
            self.rules = {}
            return
        meta = (kind, major, minor)
        if bool(allow) == self.default_allow:
            what = (
                "unable to remove 'deny' exception"
                if allow
                else "unable to remove 'allow' exception"
            )
            self._rm(meta, perms, what)
        else:
            self._add(meta, perms)

    def _add(self, meta: Meta, perms: str) -> None:
        """Merge into the exception for exactly this meta; overlapping wildcard exceptions stay
        separate, as the kernel keeps them."""
        bits = _to_set(perms) | _to_set(self.rules.get(meta, ""))
        # runc stores an empty entry when perms named none of r, w, m (its v1 final check
        # then fails); the kernel never lists one, so it is not kept here
        if bits:
            self.rules[meta] = _from_set(bits)

    def _rm(self, meta: Meta, perms: str, what: str) -> None:
        """Subtract from the exception for exactly this meta. v1 ignores a removal that only a
        wider wildcard exception covers, so such a rule would not do what the config says:
        refuse it (runc's choice; splitting the wildcard would need 2^32 exceptions)."""
        kind, major, minor = meta
        want = _to_set(perms)
        for partial in (
            (kind, WILDCARD, minor),
            (kind, major, WILDCARD),
            (kind, WILDCARD, WILDCARD),
        ):
            if partial == meta:
                continue
            have = self.rules.get(partial, "")
            if _to_set(have) & want:
                raise ConfigError(
                    f"linux.resources.devices: {what}: requested rule "
                    f"{cgroup_string((*meta, _from_set(want), False))!r} not supported by "
                    "devices cgroupv1 (cannot punch hole in existing wildcard rule "
                    f"{cgroup_string((*partial, have, False))!r})"
                )
        # removing an exception that does not exist is a no-op, as in the kernel
        left = _to_set(self.rules.get(meta, "")) & ~want
        if left:
            self.rules[meta] = _from_set(left)
        else:
            self.rules.pop(meta, None)

    def rule_list(self) -> list[Rule]:
        """The exceptions as rules (allow rules of a whitelist, deny rules of a blacklist), in
        runc's order: what the v2 eBPF program is built from."""
        allow = not self.default_allow
        return [(*m, self.rules[m], allow) for m in _ordered(self.rules)]

    def transition(self, target: Emulator) -> list[Rule]:
        """The fewest rules that move a cgroup in this state to `target` (runc's Transition):
        a disruptive "a" rule only when needed, then the dropped perms, then the gained ones.

        A blacklist source always starts over: devices.list shows "a *:* rwm" for any
        blacklist, hiding its deny rules, so there is nothing to diff against."""
        out: list[Rule] = []
        old = self.rules
        if self.default_allow or self.default_allow != target.default_allow:
            out.append(("a", WILDCARD, WILDCARD, "rwm", target.default_allow))
            old = {}
        for m in _ordered(old):
            dropped = _to_set(old[m]) & ~_to_set(target.rules.get(m, ""))
            if dropped:
                out.append((*m, _from_set(dropped), target.default_allow))
        for m in _ordered(target.rules):
            gained = _to_set(target.rules[m]) & ~_to_set(old.get(m, ""))
            if gained:
                out.append((*m, _from_set(gained), not target.default_allow))
        return out


def build(rules: list[Rule]) -> Emulator:
    """The state a config's rules describe (runc's buildEmulator): starting from a whitelist,
    so a config without a deny-all still cannot reach devices it does not list."""
    emu = Emulator(default_allow=False)
    for r in rules:
        emu.apply(r)
    return emu


def _number(field: str, what: str) -> int:
    """strconv.ParseUint(field, 10, 32): ASCII digits only (no sign), at most 2^32-1."""
    if field == "*":
        return WILDCARD
    if not (field.isascii() and field.isdigit()) or int(field) > _U32_MAX:
        raise ValueError(f"invalid {what} number: {field!r}")
    return int(field)


def _parse_line(line: str) -> Rule | None:
    """runc's parseLine; None for an "a" line, which in devices.list means allow-all.

    Fields are split at runs of ' ' and ':' (Go's FieldsFunc), so this is exactly as lenient
    as runc about spacing, and as strict about everything else."""
    fields = [f for f in line.replace(":", " ").split(" ") if f]
    if len(fields) != 4:
        raise ValueError(f"malformed devices.list rule {line}")
    kind, major, minor, perms = fields
    if kind == "a":
        # runc does not look at the rest of the line either
        return None
    if kind not in ("b", "c"):
        raise ValueError(f"unknown device type {kind!r}")
    ma, mi = _number(major, "major"), _number(minor, "minor")
    # the kernel writes perms canonically, so anything else (unknown or repeated letters, another
    # order, nothing) means this is not a devices.list
    if not perms or perms != _from_set(_to_set(perms)):
        raise ValueError(f"parse access mode: contained unknown modes or is empty: {perms!r}")
    return (kind, ma, mi, perms, True)


def from_list(text: str) -> Emulator:
    """The current state from a cgroup v1 devices.list (runc's EmulatorFromList).

    Every line is an allow rule; "a *:* rwm" means a blacklist whose deny rules the kernel does
    not list, so such a cgroup is only ever known as "allow all". Errors are RuntimeErr: the
    text comes from the kernel, not from the config."""
    emu = Emulator(default_allow=False)
    lines = text.split("\n")
    if lines[-1] == "":  # bufio.Scanner: a final newline does not start another line
        lines.pop()
    for line in lines:
        line = line.removesuffix("\r")  # bufio.ScanLines drops a trailing CR too
        try:
            rule = _parse_line(line)
        except ValueError as e:
            raise RuntimeErr(f"devices.list: error parsing line {line!r}: {e}") from None
        try:
            emu.apply(rule if rule is not None else ("a", WILDCARD, WILDCARD, "rwm", True))
        except ConfigError as e:
            raise RuntimeErr(f"devices.list: error adding rule {line!r}: {e}") from None
    return emu


def cgroup_string(rule: Rule) -> str:
    """The line written to devices.allow/deny (runc's Rule.CgroupString)."""
    kind, major, minor, perms = rule[0], rule[1], rule[2], rule[3]
    ma = "*" if major == WILDCARD else str(major)
    mi = "*" if minor == WILDCARD else str(minor)
    return f"{kind} {ma}:{mi} {perms}"


def rules_from_spec(spec_rules: list[dict]) -> list[Rule]:
    """OCI linux.resources.devices as runc 1.1.5's specconv reads it: type defaults to "a",
    major/minor to "*", access must not be empty (checked before the type, as runc does) and
    is otherwise passed on as written (the emulator ignores letters other than r, w, m)."""
    out: list[Rule] = []
    for i, d in enumerate(spec_rules):
        kind = d.get("type") or "a"
        major = d.get("major")
        minor = d.get("minor")
        access = d.get("access") or ""
        if not access:
            raise ConfigError(
                f"linux.resources.devices[{i}].access: device access at {i} field cannot be empty"
            )
        if kind not in _TYPES:
            raise ConfigError(
                f"linux.resources.devices[{i}].type: invalid cgroup device type {kind!r}"
            )
        out.append(
            (
                kind,
                WILDCARD if major is None else major,
                WILDCARD if minor is None else minor,
                access,
                bool(d.get("allow")),
            )
        )
    return out


# Always allowed, after the config's rules (runc's AllowedDevices): mknod of anything, the
# default device nodes, ptys and tun.
ALLOWED_DEVICES = (
    ("c", -1, -1, "m", True),
    ("b", -1, -1, "m", True),
    ("c", 1, 3, "rwm", True),
    ("c", 1, 8, "rwm", True),
    ("c", 1, 7, "rwm", True),
    ("c", 5, 0, "rwm", True),
    ("c", 1, 5, "rwm", True),
    ("c", 1, 9, "rwm", True),
    ("c", 136, -1, "rwm", True),
    ("c", 5, 2, "rwm", True),
    ("c", 10, 200, "rwm", True),
)


def device_rules(spec_rules: list[dict]) -> list[tuple]:
    """The config's rules, then runc's always-allowed set (linux.devices nodes get no rule of
    their own: the config says what the container may use)."""
    return rules_from_spec(spec_rules) + list(ALLOWED_DEVICES)
