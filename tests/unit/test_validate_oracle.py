"""pyrunc.validate against jsonschema on randomly mutated configs: the interpreter exists only to
avoid jsonschema's import cost, so it must accept and reject exactly what jsonschema does, and its
one-line message must point at a spot jsonschema also complains about."""

from __future__ import annotations

import copy
import random
from typing import Any

import pytest
from validate_cases import full_config

import pyrunc.validate as v
from pyrunc.errors import ConfigError
from pyrunc.specgen import default_spec
from pyrunc.validate import validate, validate_with_jsonschema

# --- property-style agreement with jsonschema


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, x in node.items():
            out += _paths(x, prefix + (k,))
    elif isinstance(node, list):
        for i, x in enumerate(node):
            out += _paths(x, prefix + (i,))
    return out


_ODD_VALUES: list[Any] = [
    "",
    "x",
    "/abs",
    "pid",
    "c",
    "LINUX",
    "SCMP_ACT_ALLOW",
    0,
    1,
    -1,
    4294967295,
    4294967296,
    2**63 - 1,
    2**63,
    -(2**63) - 1,
    2**64,
    1.0,
    0.5,
    True,
    False,
    None,
    [],
    ["a"],
    [1],
    {},
    {"type": "pid"},
    {"path": "x"},
]


def _similar(x: Any, rng: random.Random) -> Any:
    """A value of the same JSON type, so that many mutants stay valid (or fail on a bound)."""
    if type(x) is bool:
        return not x
    if type(x) is int:
        return rng.choice((0, 1, x + 1, x * 2, -x, 2**32 - 1, 2**32))
    if type(x) is str:
        return rng.choice(("", "/", x + "x", x.upper(), "SCMP_ACT_LOG", "user"))
    if type(x) is list:
        return rng.sample(x, rng.randint(0, len(x)))
    if type(x) is dict:
        return {k: x[k] for k in rng.sample(list(x), rng.randint(0, len(x)))}
    return x


def _mutate(spec: dict[str, Any], rng: random.Random) -> None:
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        paths = _paths(spec)
        path = rng.choice(paths[1:])
        parent = spec
        for seg in path[:-1]:
            parent = parent[seg]
        last = path[-1]
        op = rng.random()
        if op < 0.2 and isinstance(parent, dict):
            del parent[last]
        elif op < 0.3 and isinstance(parent, dict):
            parent[rng.choice(("zz", "type", "path", "uid", "names"))] = rng.choice(_ODD_VALUES)
        elif op < 0.55:
            parent[last] = _similar(parent[last], rng)
        else:
            parent[last] = copy.deepcopy(rng.choice(_ODD_VALUES))


def _our_path(spec: Any) -> str | None:
    root = v.load_schema("config")
    try:
        v._check(spec, root, root)
    except v._Fail as e:
        return v.format_path(e.rpath[::-1])
    return None


def _oracle_paths(spec: Any) -> set[str]:
    from jsonschema import validators

    root = v.load_schema("config")
    base = validators.validator_for(root)
    checker = base.TYPE_CHECKER.redefine("integer", lambda _c, x: type(x) is int)
    cls = validators.extend(base, type_checker=checker)
    return {v.format_path(list(err.absolute_path)) for err in cls(root).iter_errors(spec)}


def test_agrees_with_jsonschema_on_mutated_configs() -> None:
    rng = random.Random(20240601)
    n_invalid = 0
    for i in range(250):
        spec = full_config() if i % 2 else default_spec(rootless=bool(i % 3))
        _mutate(spec, rng)
        ours = _our_path(spec)
        oracle = _oracle_paths(spec)
        assert bool(validate_with_jsonschema(spec)) == bool(oracle)
        if ours is None:
            assert not oracle, f"we accept, jsonschema rejects at {oracle}: {spec}"
            validate(spec)
            continue
        n_invalid += 1
        # Our (first) error must sit at one of the spots jsonschema complains about.
        assert ours in oracle, (ours, oracle, spec)
        with pytest.raises(ConfigError):
            validate(spec)
    # The generator must actually exercise both outcomes.
    assert 50 < n_invalid < 200, n_invalid
