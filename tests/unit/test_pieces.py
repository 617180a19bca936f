"""Pure logic: JSON codec, signal names, mount options, tabwriter, state helpers."""

from __future__ import annotations

import json

import pytest

from pyrunc import fastjson
from pyrunc import state as S
from pyrunc.commands import _tabwrite
from pyrunc.container import parse_signal
from pyrunc.errors import RuntimeErr
from pyrunc.linux import mounts
from pyrunc.linux import sys as LS


@pytest.mark.parametrize("doc", ['{"a": [1, 2.5, null, true, "x\\u00e9"]}', "[]", '"s"', "0",
                                 '{"nested": {"deep": [[[]]]}}'])
def test_fastjson_matches_json(doc: str) -> None:
    assert fastjson.loads(doc) == json.loads(doc)
    obj = json.loads(doc)
    assert json.loads(fastjson.dumps(obj)) == obj
    assert fastjson.dumps_indent(obj) == json.dumps(obj, indent=2, ensure_ascii=False)


@pytest.mark.parametrize("bad", ["{bad", "[1,", "", "{} x", '{"a": 1,}'])
def test_fastjson_errors(bad: str) -> None:
    with pytest.raises(ValueError):
        fastjson.loads(bad)


@pytest.mark.parametrize(("raw", "num"), [("KILL", 9), ("SIGKILL", 9), ("9", 9), ("term", 15),
                                          ("SIGUSR1", 10), ("RTMIN+2", 36), ("WINCH", 28),
                                          ("", 15), ("+9", 9)])
def test_signals(raw: str, num: int) -> None:
    assert parse_signal(raw) == num


def test_unknown_signal() -> None:
    with pytest.raises(RuntimeErr, match='^unknown signal "NOPE"$'):  # runc's %q
        parse_signal("NOPE")


def test_mount_options() -> None:
    o = mounts.parse_options(["rbind", "ro", "nosuid", "rprivate", "mode=755", "size=1k"])
    assert o.flags == LS.MS_BIND | LS.MS_REC | LS.MS_RDONLY | LS.MS_NOSUID
    assert o.propagation == [LS.MS_PRIVATE | LS.MS_REC]
    assert o.data == ["mode=755", "size=1k"]
    o = mounts.parse_options(["ro", "rw", "rro", "rnosuid", "rsuid", "rnoatime"])
    assert o.flags & LS.MS_RDONLY == 0
    assert o.rec_set == LS.MOUNT_ATTR_RDONLY | LS.MOUNT_ATTR_NOATIME
    assert o.rec_clr & LS.MOUNT_ATTR_NOSUID and o.rec_clr & LS.MOUNT_ATTR__ATIME


def test_tabwriter_like_go() -> None:
    out = _tabwrite([["ID", "PID", "STATUS"], ["a-long-container-id", "1", "running"]])
    assert out.splitlines() == ["ID                    PID         STATUS",
                                "a-long-container-id   1           running"]


@pytest.mark.parametrize("cid", ["", ".", "..", "a/b", "a b", "é", "a\n"])
def test_bad_ids(cid: str) -> None:
    with pytest.raises(RuntimeErr, match="invalid container id"):
        S.valid_id(cid)


def test_rfc3339nano() -> None:
    assert S.rfc3339nano(1_700_000_000_123_456_789) == "2023-11-14T22:13:20.123456789Z"
    assert S.rfc3339nano(1_700_000_000_000_000_000) == "2023-11-14T22:13:20Z"
    assert S.rfc3339nano(1_700_000_000_100_000_000) == "2023-11-14T22:13:20.1Z"


def test_status_of_dead_pid_is_stopped(tmp_path: object) -> None:
    st = {"id": "x", "pid": 2**22 + 12345, "start_time": 1}
    assert S.status(str(tmp_path), st) == "stopped"
