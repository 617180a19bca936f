"""Hostile config.json files through the real binary: a clear error, never a traceback, and a
clean host (no state dir, cgroup, mount or process left) whatever the input.

Hypothesis mutates a valid busybox config: wrong types, huge and negative numbers, NUL bytes,
absurd and escaping paths, unknown namespaces, deep nesting, missing keys. Each example is one
`pyrunc run`; FUZZ_EXAMPLES sets how many (default 1000, about half a minute).
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
from pathlib import Path

import pytest
from harness import Bundle, pyrunc_binary, unique_id

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

pytestmark = pytest.mark.integration

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "1000"))

HOSTILE_STRINGS = st.sampled_from(
    [
        "",
        "\x00",
        "a\x00b",
        "/" + "x" * 5000,
        "../../../../../../etc",
        "/proc/self/fd/3",
        "/proc/1/root",
        "//..//..//",
        "\udcff",
        "SCMP_ACT_NOPE",
        "🙂",
        "-1",
        "rbind,ro",
    ]
)
HOSTILE_NUMBERS = st.sampled_from(
    [-1, -(2**63), 2**63, 2**64, 2**64 + 1, 10**30, 0, 1.5, float("inf"), 4294967295]
)
LEAF = st.one_of(
    HOSTILE_STRINGS,
    HOSTILE_NUMBERS,
    st.booleans(),
    st.none(),
    st.text(max_size=20),
    st.integers(),
)
VALUE = st.recursive(
    LEAF,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
# deep nesting is spliced into the JSON text (Python's own encoder would recurse too deep)
DEEP = st.integers(min_value=50, max_value=5000).map(lambda n: f"__DEEP_{n}__")

# places where hostility matters most, plus "anywhere" (a random key path of the config)
TARGETS = [
    ("ociVersion",),
    ("process",),
    ("process", "args"),
    ("process", "cwd"),
    ("process", "env"),
    ("process", "user"),
    ("process", "user", "uid"),
    ("process", "user", "additionalGids"),
    ("process", "rlimits"),
    ("process", "capabilities", "bounding"),
    ("process", "oomScoreAdj"),
    ("process", "scheduler"),
    ("process", "scheduler", "policy"),
    ("process", "ioPriority"),
    ("process", "execCPUAffinity"),
    ("process", "execCPUAffinity", "final"),
    ("root",),
    ("root", "path"),
    ("mounts",),
    ("hostname",),
    ("hooks",),
    ("linux",),
    ("linux", "namespaces"),
    ("linux", "uidMappings"),
    ("linux", "resources"),
    ("linux", "resources", "memory"),
    ("linux", "resources", "devices"),
    ("linux", "cgroupsPath"),
    ("linux", "seccomp"),
    ("linux", "sysctl"),
    ("linux", "maskedPaths"),
    ("linux", "devices"),
    ("linux", "memoryPolicy"),
    ("linux", "memoryPolicy", "nodes"),
]

MOUNT = st.fixed_dictionaries(
    {"destination": HOSTILE_STRINGS, "type": st.sampled_from(["bind", "tmpfs", "proc", "x"])},
    optional={"source": HOSTILE_STRINGS, "options": st.lists(HOSTILE_STRINGS, max_size=3)},
)
NAMESPACE = st.fixed_dictionaries(
    {"type": st.sampled_from(["pid", "net", "bogus", "", "user", "time"])},
    optional={"path": HOSTILE_STRINGS},
)


def _set(cfg: dict, path: tuple, value: object) -> None:
    cur: object = cfg
    for k in path[:-1]:
        if not isinstance(cur, dict):
            return
        cur = cur.setdefault(k, {})
    if isinstance(cur, dict):
        cur[path[-1]] = value


@st.composite
def hostile_config(draw: st.DrawFn, base: dict) -> dict:
    cfg = copy.deepcopy(base)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        kind = draw(st.sampled_from(["value", "deep", "mount", "ns", "drop"]))
        if kind == "mount":
            if isinstance(cfg.get("mounts", []), list):
                cfg.setdefault("mounts", []).append(draw(MOUNT))
        elif kind == "ns":
            lx = cfg.get("linux", {})
            if isinstance(lx, dict) and isinstance(lx.get("namespaces", []), list):
                cfg.setdefault("linux", {}).setdefault("namespaces", []).append(draw(NAMESPACE))
        elif kind == "drop":
            key = draw(st.sampled_from(["process", "root", "ociVersion", "linux", "mounts"]))
            cfg.pop(key, None)
        else:
            target = draw(st.sampled_from(TARGETS))
            _set(cfg, target, draw(DEEP if kind == "deep" else VALUE))
    return cfg


def _cgroup_dirs(cid: str) -> list[str]:
    out = []
    for d, _subdirs, _files in os.walk("/sys/fs/cgroup"):
        if os.path.basename(d) == cid:
            out.append(d)
    return out


@pytest.fixture(scope="module")
def fuzz_bundle(base_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    dest = tmp_path_factory.mktemp("fuzz") / "bundle"
    dest.mkdir()
    # a private rootfs: hostile mount destinations get created in it
    subprocess.run(["cp", "-a", str(base_bundle / "rootfs"), str(dest / "rootfs")], check=True)
    cfg = json.loads((base_bundle / "config.json").read_text())
    cfg["root"]["path"] = str(dest / "rootfs")
    cfg["process"]["args"] = ["true"]
    cfg["process"]["terminal"] = False
    return Bundle(dest, cfg)


def test_hostile_configs_fail_cleanly(fuzz_bundle: Bundle, tmp_path: Path) -> None:
    root = tmp_path / "root"
    seen = {"runs": 0, "errors": 0}
    mounts_before = Path("/proc/self/mountinfo").read_text().count("\n")
    base = fuzz_bundle.config

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    @given(hostile_config(base))
    def one(cfg: dict) -> None:
        text = json.dumps(cfg)
        while "\"__DEEP_" in text:
            a = text.index("\"__DEEP_")
            b = text.index("__\"", a + 8)
            n = int(text[a + 8 : b])
            text = text[:a] + "[" * n + "]" * n + text[b + 3 :]
        (fuzz_bundle.path / "config.json").write_text(text)
        cid = unique_id("fz")
        p = subprocess.run(
            [pyrunc_binary(), "--root", str(root), "run", "-b", str(fuzz_bundle.path), cid],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=30,
        )
        seen["runs"] += 1
        if p.returncode != 0:
            seen["errors"] += 1
            lines = [ln for ln in p.stderr.splitlines() if "level=error" in ln]
            assert "Traceback" not in p.stderr, (text[:500], p.stderr)
            assert "internal error" not in p.stderr, (text[:500], p.stderr)
            assert len(lines) == 1, (text[:500], p.stderr)
        # the host is clean either way
        assert not (root / cid).exists(), text[:500]
        assert _cgroup_dirs(cid) == [], text[:500]

    one()
    assert seen["runs"] >= EXAMPLES // 2
    mounts_after = Path("/proc/self/mountinfo").read_text().count("\n")
    assert mounts_after == mounts_before
    print(f"\nfuzz: {seen['runs']} hostile configs run, {seen['errors']} refused")
