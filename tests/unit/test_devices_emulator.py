"""The devices emulator against runc 1.1.5's devices_emulator_test.go, case for case.

runc's tables are written for one base mode and run in both: an "other" rule allows in a
whitelist and denies in a blacklist. The transition cases are whitelist expectations; from a
blacklist source runc expects a disruptive "a" rule and then every target exception, and every
transition is applied back to the source, which must then equal the target.
"""

from __future__ import annotations

import random

import pytest

from pyrunc.errors import ConfigError, RuntimeErr
from pyrunc.linux import devices_emulator as E
from pyrunc.linux.devices_emulator import Emulator

W = E.WILDCARD
MODES = pytest.mark.parametrize("base_allow", [False, True], ids=["whitelist", "blacklist"])


# --- TestDeviceEmulatorLoad ---------------------------------------------------------------------

COMPLICATED = """c *:* m
b *:* m
c 1:3 rwm
c 1:5 rwm
c 1:7 rwm
c 1:8 rwm
c 1:9 rwm
c 5:0 rwm
c 5:2 rwm
c 136:* rwm
c 10:200 rwm"""

LOAD_OK = [
    ("BlacklistMode", "a *:* rwm", Emulator(True)),
    ("WhitelistBasic", "c 4:2 rw", Emulator(False, {("c", 4, 2): "rw"})),
    ("WhitelistWildcard", "b 0:* m", Emulator(False, {("b", 0, W): "m"})),
    (
        "WhitelistDuplicate",
        "c *:* rwm\nc 1:1 r",
        # to match the kernel, redundant rules are kept
        Emulator(False, {("c", W, W): "rwm", ("c", 1, 1): "r"}),
    ),
    (
        "WhitelistComplicated",
        COMPLICATED,
        Emulator(
            False,
            {
                ("c", W, W): "m",
                ("b", W, W): "m",
                ("c", 1, 3): "rwm",
                ("c", 1, 5): "rwm",
                ("c", 1, 7): "rwm",
                ("c", 1, 8): "rwm",
                ("c", 1, 9): "rwm",
                ("c", 5, 0): "rwm",
                ("c", 5, 2): "rwm",
                ("c", 136, W): "rwm",
                ("c", 10, 200): "rwm",
            },
        ),
    ),
    # beyond runc's table: bufio.Scanner and FieldsFunc leniency, reproduced
    ("Empty", "", Emulator(False)),
    ("TrailingNewline", "c 4:2 rw\n", Emulator(False, {("c", 4, 2): "rw"})),
    ("CRLF", "c 4:2 rw\r\nb 8:0 r\r\n", Emulator(False, {("c", 4, 2): "rw", ("b", 8, 0): "r"})),
    ("ExtraSpaces", "c  4:2   rw", Emulator(False, {("c", 4, 2): "rw"})),
    ("SpaceForColon", "c 4 2 rw", Emulator(False, {("c", 4, 2): "rw"})),
    ("LeadingZeros", "c 004:02 rw", Emulator(False, {("c", 4, 2): "rw"})),
    ("MaxNumber", "c 4294967295:0 r", Emulator(False, {("c", 4294967295, 0): "r"})),
    ("MergedDuplicate", "c 1:3 r\nc 1:3 wm", Emulator(False, {("c", 1, 3): "rwm"})),
    ("AllowAllLineUnchecked", "a 1:2 x", Emulator(True)),  # runc returns before the numbers
    ("AllowAllResets", "c 1:3 rwm\na *:* rwm", Emulator(True)),
    ("AllowInBlacklist", "a *:* rwm\nc 1:3 rwm", Emulator(True)),
]

LOAD_BAD = [
    ("InvalidFieldNumber", "b 1:0", "malformed"),
    ("InvalidDeviceType", "p *:* rwm", "unknown device type"),
    ("InvalidMajorNumber1", "p -1:3 rwm", "unknown device type"),
    ("InvalidMajorNumber2", "c foo:27 rwm", "invalid major number"),
    ("InvalidMinorNumber1", "b 1:-4 rwm", "invalid minor number"),
    ("InvalidMinorNumber2", "b 1:foo rwm", "invalid minor number"),
    ("InvalidPermissions", "b 1:7 rwk", "unknown modes"),
    # beyond runc's table
    ("TooManyFields", "c 1:3 rwm x", "malformed"),
    ("BlankLineInside", "c 1:3 rwm\n\nc 1:5 rwm", "malformed"),
    ("OnlyNewline", "\n", "malformed"),
    ("BlankLastLine", "c 1:3 rwm\n ", "malformed"),
    ("TabSeparated", "c\t1:3\trwm", "malformed"),
    ("MajorOverflow", "c 4294967296:0 r", "invalid major number"),
    ("MajorSign", "c +1:0 r", "invalid major number"),
    ("UnicodeDigit", "c \u00b2:0 r", "invalid major number"),
    ("PermsOrder", "c 1:3 wr", "unknown modes"),
    ("PermsRepeated", "c 1:3 rr", "unknown modes"),
    ("UppercaseType", "C 1:3 r", "unknown device type"),
]


@pytest.mark.parametrize(("name", "text", "want"), LOAD_OK, ids=[c[0] for c in LOAD_OK])
def test_from_list(name: str, text: str, want: Emulator) -> None:
    assert E.from_list(text) == want


@pytest.mark.parametrize(("name", "text", "msg"), LOAD_BAD, ids=[c[0] for c in LOAD_BAD])
def test_from_list_rejects(name: str, text: str, msg: str) -> None:
    with pytest.raises(RuntimeErr, match=msg) as exc:
        E.from_list(text)
    assert not isinstance(exc.value, ConfigError)  # the kernel's text, not the config
    assert exc.value.args[0].startswith("devices.list: error parsing line ")
    assert "\n" not in exc.value.args[0]


# --- testDeviceEmulatorApply ------------------------------------------------------------------

# (name, rule as (type, major, minor, perms, other), base rules, expected rules or None for an
# error); other=True means the rule's allow is the opposite of the base mode (an exception).
APPLY = [
    (
        "SwitchToOtherMode",
        ("a", W, W, "rwm", True),
        {("c", W, W): "rwm", ("c", 1, 1): "r"},
        "switch",
    ),
    ("SwitchToSameModeNoop", ("a", W, W, "rwm", False), {}, {}),
    ("SwitchToSameMode", ("a", W, W, "rwm", False), {("c", W, W): "rwm", ("c", 1, 1): "r"}, {}),
    (
        "RuleAdditionBasic",
        ("c", 42, 1337, "rm", True),
        {("c", 2, 1): "rwm", ("b", 1, 5): "r"},
        {("c", 2, 1): "rwm", ("b", 1, 5): "r", ("c", 42, 1337): "rm"},
    ),
    (
        "RuleAdditionBasicDuplicate",
        ("c", 42, 1337, "rm", True),
        {("c", 42, W): "rwm"},
        # to match the kernel, redundant rules are kept
        {("c", 42, W): "rwm", ("c", 42, 1337): "rm"},
    ),
    (
        "RuleAdditionBasicDuplicateNoop",
        ("c", 42, 1337, "rm", True),
        {("c", 42, 1337): "rm"},
        {("c", 42, 1337): "rm"},
    ),
    (
        "RuleAdditionMerge",
        ("b", 5, 12, "rm", True),
        {("c", 2, 1): "rwm", ("b", 5, 12): "rw"},
        {("c", 2, 1): "rwm", ("b", 5, 12): "rwm"},
    ),
    (
        "RuleAdditionMergeWildcard",
        ("b", 5, W, "rm", True),
        {("c", 2, 1): "rwm", ("b", 5, W): "rw"},
        {("c", 2, 1): "rwm", ("b", 5, W): "rwm"},
    ),
    (
        "RuleAdditionMergeNoop",
        ("b", 5, 12, "r", True),
        {("c", 2, 1): "rwm", ("b", 5, 12): "rw"},
        {("c", 2, 1): "rwm", ("b", 5, 12): "rw"},
    ),
    (
        "RuleRemovalBasic",
        ("c", 42, 1337, "rm", False),
        {("c", 42, 1337): "rm", ("b", 1, 5): "r"},
        {("b", 1, 5): "r"},
    ),
    (
        "RuleRemovalNonexistent",
        ("c", 4, 1, "rw", False),
        {("b", 1, 5): "r"},
        {("b", 1, 5): "r"},
    ),
    (
        "RuleRemovalFull",
        ("c", 42, 1337, "rw", False),
        {("c", 42, 1337): "w", ("b", 1, 5): "r"},
        {("b", 1, 5): "r"},
    ),
    (
        "RuleRemovalPartial",
        ("c", 42, 1337, "r", False),
        {("c", 42, 1337): "rm", ("b", 1, 5): "r"},
        {("c", 42, 1337): "m", ("b", 1, 5): "r"},
    ),
    (
        "RuleRemovalWildcardPunchoutImpossible",
        ("c", 42, 1337, "r", False),
        {("c", 42, W): "rm", ("c", 42, 1337): "r"},
        None,
    ),
    (
        "RuleRemovalWildcardPunchoutPossible",
        ("c", 42, 1337, "r", False),
        {("c", 42, W): "wm", ("c", 42, 1337): "r"},
        {("c", 42, W): "wm"},
    ),
    # beyond runc's table: the other two wildcard shapes, and removing a wildcard itself
    (
        "PunchoutMajorWildcard",
        ("c", 42, 1337, "w", False),
        {("c", W, 1337): "w"},
        None,
    ),
    (
        "PunchoutFullWildcard",
        ("b", 8, 0, "rm", False),
        {("b", W, W): "m"},
        None,
    ),
    (
        "WildcardRemovalIsNoHole",
        ("c", W, W, "r", False),
        {("c", W, W): "rwm"},
        {("c", W, W): "wm"},
    ),
    (
        "OtherTypeWildcardIsNoHole",
        ("c", 8, 0, "r", False),
        {("b", W, W): "rwm", ("c", 8, 0): "rw"},
        {("b", W, W): "rwm", ("c", 8, 0): "w"},
    ),
    ("UnknownLettersIgnoredAdd", ("c", 1, 11, "rwa", True), {}, {("c", 1, 11): "rw"}),
    ("NonCanonicalOrderAdd", ("c", 1, 11, "mwr", True), {}, {("c", 1, 11): "rwm"}),
    (
        "UnknownLettersIgnoredRemove",
        ("c", 1, 11, "rwa", False),
        {("c", 1, 11): "rwm"},
        {("c", 1, 11): "m"},
    ),
    ("NoKnownLetterAddIsNoop", ("c", 1, 11, "xa", True), {}, {}),
    (
        "NoKnownLetterRemoveIsNoop",
        ("c", 1, 11, "x", False),
        {("c", W, W): "rwm", ("c", 1, 11): "r"},
        {("c", W, W): "rwm", ("c", 1, 11): "r"},
    ),
]


@MODES
@pytest.mark.parametrize(("name", "rule", "base", "want"), APPLY, ids=[c[0] for c in APPLY])
def test_apply(name: str, rule: tuple, base: dict, want: object, base_allow: bool) -> None:
    kind, major, minor, perms, other = rule
    emu = Emulator(base_allow, base)
    r = (kind, major, minor, perms, other != base_allow)
    if want is None:
        with pytest.raises(ConfigError, match="cannot punch hole in existing wildcard rule"):
            emu.apply(r)
        return
    emu.apply(r)
    if want == "switch":
        assert emu == Emulator(not base_allow)
    else:
        assert emu == Emulator(base_allow, want)
    # every kept exception is non-empty and canonical, so dict equality is set equality
    assert all(p and p == E._from_set(E._to_set(p)) for p in emu.rules.values())


@pytest.mark.parametrize("kind", ["p", "u", "", "A", "ab"])
def test_apply_rejects_non_cgroup_type(kind: str) -> None:
    with pytest.raises(ConfigError, match="non-cgroup type") as exc:
        E.build([(kind, 1, 3, "rwm", True)])
    assert "\n" not in exc.value.args[0]


def test_punch_hole_message_names_both_rules() -> None:
    with pytest.raises(ConfigError) as exc:
        E.build([("c", 42, W, "rm", True), ("c", 42, 1337, "r", False)])
    msg = exc.value.args[0]
    assert "unable to remove 'allow' exception" in msg
    assert "'c 42:1337 r'" in msg and "'c 42:* rm'" in msg
    assert "\n" not in msg


def test_a_rule_ignores_numbers_and_perms() -> None:
    emu = E.build([("c", 1, 3, "rwm", True), ("a", 5, 7, "x", True)])
    assert emu == Emulator(True)


# --- testDeviceEmulatorTransition -------------------------------------------------------------

# (name, source rules, target rules, target mode flipped, whitelist-mode expected rules as
# (type, major, minor, perms, other)); other=True: allow is the opposite of the source mode.
TRANSITIONS = [
    ("Noop", {("c", 42, W): "wm"}, {("c", 42, W): "wm"}, False, []),
    (
        "SwitchToOtherMode",
        {("c", 1, 2): "rwm"},
        {("b", 42, W): "wm"},
        True,
        [("a", W, W, "rwm", True), ("b", 42, W, "wm", False)],
    ),
    (
        "RuleAddition",
        {("c", 1, 2): "rwm"},
        {("c", 1, 2): "rwm", ("b", 42, 1337): "rwm"},
        False,
        [("b", 42, 1337, "rwm", True)],
    ),
    (
        "RuleRemoval",
        {("c", 1, 2): "rwm", ("b", 42, 1337): "rwm"},
        {("c", 1, 2): "rwm"},
        False,
        [("b", 42, 1337, "rwm", False)],
    ),
    (
        "RuleMultipleAdditionRemoval",
        {("c", 1, 2): "rwm", ("b", 3, 9): "rw"},
        {("c", 1, 2): "rwm"},
        False,
        [("b", 3, 9, "rw", False)],
    ),
    (
        "RulePartialAddition",
        {("c", 1, 2): "r"},
        {("c", 1, 2): "rwm"},
        False,
        [("c", 1, 2, "wm", True)],
    ),
    (
        "RulePartialRemoval",
        {("c", 1, 2): "rw"},
        {("c", 1, 2): "w"},
        False,
        [("c", 1, 2, "r", False)],
    ),
    (
        "RulePartialBoth",
        {("c", 1, 2): "rw"},
        {("c", 1, 2): "rm"},
        False,
        [("c", 1, 2, "w", False), ("c", 1, 2, "m", True)],
    ),
    # beyond runc's table: order (major, minor, type, wildcards first), dropped before gained
    (
        "SortedOutput",
        {},
        {
            ("c", 10, 200): "rwm",
            ("b", 8, 0): "rwm",
            ("b", 1, 5): "r",
            ("c", 1, 3): "rwm",
            ("c", W, W): "m",
            ("b", W, W): "m",
            ("c", 1, W): "w",
        },
        False,
        [
            ("b", W, W, "m", True),
            ("c", W, W, "m", True),
            ("c", 1, W, "w", True),
            ("c", 1, 3, "rwm", True),
            ("b", 1, 5, "r", True),
            ("b", 8, 0, "rwm", True),
            ("c", 10, 200, "rwm", True),
        ],
    ),
    (
        "DroppedBeforeGained",
        {("c", 9, 9): "r", ("c", 1, 1): "rwm"},
        {("c", 9, 9): "rw", ("b", 0, 0): "m"},
        False,
        [("c", 1, 1, "rwm", False), ("b", 0, 0, "m", True), ("c", 9, 9, "w", True)],
    ),
    ("EmptyToEmpty", {}, {}, False, []),
]


@MODES
@pytest.mark.parametrize(
    ("name", "src", "dst", "flip", "want"), TRANSITIONS, ids=[c[0] for c in TRANSITIONS]
)
def test_transition(
    name: str, src: dict, dst: dict, flip: bool, want: list, base_allow: bool
) -> None:
    source = Emulator(base_allow, src)
    target = Emulator(base_allow != flip, dst)
    if base_allow and not flip:
        # a blacklist cannot be diffed: start over, then every exception of the target
        expected = [("a", W, W, "rwm", target.default_allow), *target.rule_list()]
    else:
        expected = [(k, ma, mi, p, other != base_allow) for k, ma, mi, p, other in want]
    rules = source.transition(target)
    assert rules == expected
    for r in rules:
        source.apply(r)
    assert source == target


def test_transition_from_blacklist_to_blacklist_with_denies() -> None:
    source = Emulator(True, {("c", 1, 3): "rwm"})
    target = Emulator(True, {("c", 1, 5): "w", ("b", W, W): "m"})
    assert source.transition(target) == [
        ("a", W, W, "rwm", True),
        ("b", W, W, "m", False),
        ("c", 1, 5, "w", False),
    ]


def test_transition_does_not_touch_its_operands() -> None:
    source, target = Emulator(False, {("c", 1, 3): "rw"}), Emulator(False, {("c", 1, 3): "m"})
    source.transition(target)
    assert source == Emulator(False, {("c", 1, 3): "rw"})
    assert target == Emulator(False, {("c", 1, 3): "m"})


def _kernel_write(state: Emulator, rule: tuple) -> None:
    """What cgroup v1 does with one write (security/device_cgroup.c): "a" resets the default;
    an exception is merged into, or subtracted from, the entry with exactly its type and
    numbers. Unlike Emulator.apply it does not refuse holes in wildcards; it ignores them."""
    kind, major, minor, perms, allow = rule
    if kind == "a":
        state.default_allow, state.rules = allow, {}
        return
    meta = (kind, major, minor)
    have = E._to_set(state.rules.get(meta, ""))
    bits = have | E._to_set(perms) if allow != state.default_allow else have & ~E._to_set(perms)
    if bits:
        state.rules[meta] = E._from_set(bits)
    else:
        state.rules.pop(meta, None)


def _rand_emulator(rng: random.Random) -> Emulator:
    """A state some config can reach: a random mode and exceptions, wildcards included."""
    while True:
        rules: list[tuple] = [("a", W, W, "rwm", rng.random() < 0.3)]
        for _ in range(rng.randrange(8)):
            perms = "".join(c for c in "rwm" if rng.random() < 0.6) or "r"
            kind, ma, mi = rng.choice("bc"), rng.choice([1, 5, W]), rng.choice([0, 3, W])
            rules.append((kind, ma, mi, perms, rng.random() < 0.7))
        try:
            return E.build(rules)
        except ConfigError:  # a hole in a wildcard: draw again
            continue


def test_random_transitions_reach_their_target() -> None:
    """From any state, the kernel ends up in the target after the transition's writes (the
    point of runc's apply-back check, over states its table does not list, both modes)."""
    rng = random.Random(7)
    for _ in range(1000):
        source, target = _rand_emulator(rng), _rand_emulator(rng)
        kernel = Emulator(source.default_allow, source.rules)
        for r in source.transition(target):
            _kernel_write(kernel, r)
        assert kernel == target


def test_random_transitions_apply_back_without_wildcard_overlap() -> None:
    """runc's own apply-back check (Emulator.apply) holds whenever no exact exception sits
    under a wildcard one of the same type."""
    rng = random.Random(11)
    checked = 0
    for _ in range(1000):
        source, target = _rand_emulator(rng), _rand_emulator(rng)
        if any(m[1] == W or m[2] == W for m in (*source.rules, *target.rules)):
            continue
        for r in source.transition(target):
            source.apply(r)
        assert source == target
        checked += 1
    assert checked > 50


def test_transition_may_deny_under_a_wildcard() -> None:
    """Faithful to runc: dropping an exact exception that a kept wildcard also covers is one
    deny, which the kernel applies to the exact entry (so the target is reached) but which
    Emulator.apply, being stricter than the kernel, refuses as a hole."""
    source = Emulator(False, {("b", W, W): "rw", ("b", 5, 3): "rw"})
    target = Emulator(False, {("b", W, W): "rw"})
    rules = source.transition(target)
    assert rules == [("b", 5, 3, "rw", False)]
    kernel = Emulator(False, source.rules)
    _kernel_write(kernel, rules[0])
    assert kernel == target
    with pytest.raises(ConfigError, match="cannot punch hole"):
        source.apply(rules[0])


# --- rule_list, build, cgroup_string, rules_from_spec -----------------------------------------


def test_rule_list_order_and_allow() -> None:
    white = Emulator(False, {("c", 5, 0): "rwm", ("b", W, W): "m", ("c", 1, W): "r"})
    assert white.rule_list() == [
        ("b", W, W, "m", True),
        ("c", 1, W, "r", True),
        ("c", 5, 0, "rwm", True),
    ]
    assert Emulator(True, {("b", 8, 0): "w"}).rule_list() == [("b", 8, 0, "w", False)]
    assert Emulator(True).rule_list() == []


def test_build_starts_as_whitelist() -> None:
    assert E.build([]) == Emulator(False)
    assert not E.build([("c", 1, 3, "r", True)]).is_blacklist()
    emu = E.build(
        [
            ("a", W, W, "rwm", False),
            ("c", 1, 3, "r", True),
            ("c", 1, 3, "w", True),
            ("c", 1, 5, "rwm", True),
            ("c", 1, 5, "wm", False),
        ]
    )
    assert emu.rule_list() == [("c", 1, 3, "rw", True), ("c", 1, 5, "r", True)]
    assert E.build([("a", W, W, "rwm", True), ("b", 8, 0, "w", False)]).is_blacklist()


def test_build_update_bats_rwa() -> None:
    """runc's update.bats "minimal transition rules": deny all, deny "c 1:11 rwa", then
    runc's default allows. The "a" letter is ignored, the deny of an absent exception is a
    no-op, and the transition from the resulting devices.list is empty."""
    rules = E.rules_from_spec(
        [
            {"allow": False, "access": "rwm"},
            {"allow": False, "type": "c", "major": 1, "minor": 11, "access": "rwa"},
            {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
        ]
    )
    target = E.build(rules)
    assert target == Emulator(False, {("c", 1, 3): "rwm"})
    assert E.from_list("c 1:3 rwm\n").transition(target) == []


@pytest.mark.parametrize(
    ("rule", "line"),
    [
        (("a", W, W, "rwm", True), "a *:* rwm"),
        (("c", 1, 3, "rwm", True), "c 1:3 rwm"),
        (("c", 136, W, "rw", False), "c 136:* rw"),
        (("b", W, 0, "m", True), "b *:0 m"),
    ],
)
def test_cgroup_string(rule: tuple, line: str) -> None:
    assert E.cgroup_string(rule) == line


def test_transition_lines_parse_back() -> None:
    """What is written to devices.allow is what devices.list would show for it."""
    target = E.build([("c", 136, W, "rwm", True), ("b", 8, 0, "mr", True)])
    text = "".join(E.cgroup_string(r) + "\n" for r in Emulator(False).transition(target))
    assert E.from_list(text) == target


SPEC_OK = [
    ({"allow": False, "access": "rwm"}, ("a", W, W, "rwm", False)),
    ({"allow": True, "type": "c", "major": 1, "access": "r"}, ("c", 1, W, "r", True)),
    ({"allow": True, "type": "b", "minor": 0, "access": "m"}, ("b", W, 0, "m", True)),
    ({"allow": True, "type": "", "major": None, "access": "w"}, ("a", W, W, "w", True)),
    ({"type": "c", "major": 1, "minor": 11, "access": "rwa"}, ("c", 1, 11, "rwa", False)),
]


@pytest.mark.parametrize(("entry", "rule"), SPEC_OK)
def test_rules_from_spec(entry: dict, rule: tuple) -> None:
    assert E.rules_from_spec([entry]) == [rule]


@pytest.mark.parametrize(
    ("entries", "msg"),
    [
        ([{"allow": True, "type": "c"}], r"devices\[0\]\.access: device access at 0 field cannot"),
        (
            [{"allow": True, "access": "r"}, {"allow": True, "access": ""}],
            r"devices\[1\]\.access: .*cannot be empty",
        ),
        ([{"allow": True, "type": "p", "access": "r"}], r"devices\[0\]\.type: invalid cgroup"),
        # runc checks access before the type
        ([{"allow": True, "type": "p"}], r"devices\[0\]\.access"),
    ],
)
def test_rules_from_spec_rejects(entries: list, msg: str) -> None:
    with pytest.raises(ConfigError, match=msg):
        E.rules_from_spec(entries)


def test_module_imports_nothing_heavy() -> None:
    """The hot path (tests/integration/test_hotpath.py) forbids these; checked here cheaply."""
    import ast
    from pathlib import Path

    tree = ast.parse(Path(E.__file__).read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    assert names <= {"__future__", "pyrunc"}, names
