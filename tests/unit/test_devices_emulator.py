"""The devices emulator: runc's transition cases, the apply rules, and devices.list parsing.

The transition table is runc's devices_emulator_test.go (whitelist-mode expectations; in
blacklist mode the source must start over with a disruptive rule). Every transition is also
applied back to the source, which must then equal the target: the rules written to the kernel
really lead where the config asks.
"""

from __future__ import annotations

import random

import pytest

from pyrunc.errors import ConfigError, RuntimeErr
from pyrunc.linux import devices_emulator as E

W = E.WILDCARD


def emu(default_allow: bool, rules: dict) -> E.Emulator:
    e = E.Emulator(default_allow)
    e.rules = dict(rules)
    return e


# (name, source rules, target rules, expected whitelist-mode transition as (meta, perms, gain))
CASES = [
    ("Noop", {("c", 1, 2): "rwm"}, {("c", 1, 2): "rwm"}, []),
    (
        "RuleAddition",
        {("c", 1, 2): "rwm"},
        {("c", 1, 2): "rwm", ("b", 42, 1337): "rwm"},
        [(("b", 42, 1337), "rwm", True)],
    ),
    (
        "RuleRemoval",
        {("c", 1, 2): "rwm", ("b", 42, 1337): "rwm"},
        {("c", 1, 2): "rwm"},
        [(("b", 42, 1337), "rwm", False)],
    ),
    (
        "RuleMultipleAdditionRemoval",
        {("c", 1, 2): "rwm", ("b", 3, 9): "rw"},
        {("c", 1, 2): "rwm"},
        [(("b", 3, 9), "rw", False)],
    ),
    ("RulePartialAddition", {("c", 1, 2): "r"}, {("c", 1, 2): "rwm"}, [(("c", 1, 2), "wm", True)]),
    ("RulePartialRemoval", {("c", 1, 2): "rw"}, {("c", 1, 2): "w"}, [(("c", 1, 2), "r", False)]),
    (
        "RulePartialBoth",
        {("c", 1, 2): "rw"},
        {("c", 1, 2): "rm"},
        [(("c", 1, 2), "w", False), (("c", 1, 2), "m", True)],
    ),
    (
        "SortedOutput",
        {},
        {("c", 10, 200): "rwm", ("c", 1, 3): "rwm", ("b", W, W): "m", ("c", W, W): "m"},
        [
            (("b", W, W), "m", True),
            (("c", W, W), "m", True),
            (("c", 1, 3), "rwm", True),
            (("c", 10, 200), "rwm", True),
        ],
    ),
]


@pytest.mark.parametrize("source_allow", [False, True], ids=["whitelist", "blacklist"])
@pytest.mark.parametrize(("name", "src", "dst", "want"), CASES, ids=[c[0] for c in CASES])
def test_transition(name: str, src: dict, dst: dict, want: list, source_allow: bool) -> None:
    source, target = emu(source_allow, src), emu(source_allow, dst)
    rules = source.transition(target)
    if source_allow:  # a blacklist cannot be diffed: start over, then every exception
        expected = [("a", W, W, "rwm", True), *target.rule_list()]
    else:
        expected = [(*m, p, gain != source_allow) for m, p, gain in want]
    assert rules == expected
    for r in rules:
        source.apply(r)
    assert (source.default_allow, source.rules) == (target.default_allow, target.rules)


def test_mode_switch_is_disruptive() -> None:
    rules = emu(False, {("c", 1, 3): "rwm"}).transition(emu(True, {("c", 1, 5): "w"}))
    assert rules == [("a", W, W, "rwm", True), ("c", 1, 5, "w", False)]


def test_apply_whitelist_merges_and_removes() -> None:
    e = E.build(
        [
            ("a", W, W, "rwm", False),
            ("c", 1, 3, "r", True),
            ("c", 1, 3, "w", True),
            ("c", 1, 5, "rwm", True),
            ("c", 1, 5, "wm", False),
        ]
    )
    assert not e.is_blacklist()
    assert e.rule_list() == [("c", 1, 3, "rw", True), ("c", 1, 5, "r", True)]


def test_unknown_permission_letters_are_ignored_like_runc() -> None:
    """runc's Permissions.toSet skips letters other than r, w, m: "rwa" means "rw" (runc's
    own update.bats relies on this with a deny rule of access "rwa")."""
    e = E.build([("c", 1, 11, "rwa", True)])
    assert e.rules == {("c", 1, 11): "rw"}


def test_cannot_punch_hole_in_wildcard() -> None:
    with pytest.raises(ConfigError, match="cannot punch hole"):
        E.build([("c", W, W, "rwm", True), ("c", 1, 3, "r", False)])
    # the same meta is not a hole: it is a removal
    assert E.build([("c", W, W, "rwm", True), ("c", W, W, "r", False)]).rules == {("c", W, W): "wm"}


def test_allow_all_resets_to_blacklist() -> None:
    e = E.build([("c", 1, 3, "rwm", True), ("a", 5, 5, "r", True)])
    assert e.is_blacklist() and e.rules == {}
    e.apply(("b", 8, 0, "w", False))
    assert e.rule_list() == [("b", 8, 0, "w", False)]


def test_from_list() -> None:
    assert E.from_list("a *:* rwm\n").is_blacklist()
    e = E.from_list("c 1:3 rwm\nc 136:* rw\nb *:* m\nc 1:3 r\n")
    assert not e.is_blacklist()
    assert e.rules == {("c", 1, 3): "rwm", ("c", 136, W): "rw", ("b", W, W): "m"}
    assert E.from_list("").rules == {} and not E.from_list("").is_blacklist()


@pytest.mark.parametrize("line", ["x 1:3 rwm", "c 1:3", "c a:3 rwm", "c 1:3 rwx", "c 1:3 "])
def test_from_list_rejects_garbage(line: str) -> None:
    with pytest.raises(RuntimeErr, match="devices.list"):
        E.from_list(line)


def test_cgroup_string() -> None:
    assert E.cgroup_string(("a", W, W, "rwm", True)) == "a *:* rwm"
    assert E.cgroup_string(("c", 136, W, "rw", False)) == "c 136:* rw"


def test_rules_from_spec() -> None:
    assert E.rules_from_spec(
        [{"allow": False, "access": "rwm"}, {"allow": True, "type": "c", "major": 1, "access": "r"}]
    ) == [("a", W, W, "rwm", False), ("c", 1, W, "r", True)]
    with pytest.raises(ConfigError, match=r"devices\[0\].access: cannot be empty"):
        E.rules_from_spec([{"allow": True, "type": "c"}])
    with pytest.raises(ConfigError, match=r"devices\[0\].type"):
        E.rules_from_spec([{"allow": True, "type": "p", "access": "r"}])


def test_random_transitions_reach_their_target() -> None:
    """Property: from any whitelist state, applying transition(target) yields target."""
    rng = random.Random(7)

    def rand_rules(n: int) -> list[tuple]:
        out = []
        for _ in range(n):
            perms = "".join(c for c in "rwm" if rng.random() < 0.6) or "r"
            out.append(
                (
                    rng.choice("bc"),
                    rng.choice([1, 5, 8]),
                    rng.choice([0, 3]),
                    perms,
                    rng.random() < 0.7,
                )
            )
        return out

    for _ in range(300):
        source, target = E.build(rand_rules(6)), E.build(rand_rules(6))
        for r in source.transition(target):
            source.apply(r)
        assert source.rules == target.rules and source.default_allow == target.default_allow
