"""Message classes from a serialized FileDescriptorSet, straight through protobuf's upb
extension, or through the generated *_pb2 modules where that is not possible.

Why: importing generated modules runs protobuf's Python builder, descriptor_pool and
python_message machinery (~38 ms and several MB here for the shim's protos); asking the upb
extension for the same classes costs ~20 ms, most of it the extension's own import. Every
container that does not join a live shim pays this on its critical path. The generated
modules stay the reference (tests check both paths give identical bytes) and the fallback
when `google._upb` is absent or refuses (another protobuf backend, a future API change).
"""

from __future__ import annotations

import importlib
import os
import sys
import types


def _files(buf: bytes) -> list[bytes]:
    """The FileDescriptorProtos of a FileDescriptorSet (field 1, length-delimited)."""
    out, i = [], 0
    while i < len(buf):
        if buf[i] != 0x0A:
            raise ValueError("not a FileDescriptorSet")
        i += 1
        n = shift = 0
        while True:
            b = buf[i]
            i += 1
            n |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        out.append(buf[i : i + n])
        i += n
    return out


def _name(fd: bytes) -> str:
    """FileDescriptorProto.name (field 1), which protoc writes first."""
    if fd[:1] != b"\x0a" or fd[1] >= 0x80:
        raise ValueError("unexpected FileDescriptorProto layout")
    return fd[2 : 2 + fd[1]].decode()


WKT = "google.protobuf.internal.well_known_types"


def without_wkt_helpers() -> bool:
    """For the whole process, before any message class exists: well-known types (Timestamp,
    Any, ...) come without protobuf's Python helpers (FromNanoseconds, Pack, ...), and the
    helpers' module is never imported. It pulls in datetime, calendar, re and typing: ~10 ms
    and ~1.8 MB here. upb reads that module's WKTBASES (the mixins, by full name) the first
    time it makes any message class; this puts an empty one there. Too late once protobuf has
    loaded the real module: then nothing changes and this returns False."""
    if WKT in sys.modules:
        return False
    stub = types.ModuleType(WKT, "pbload: well-known types without helpers")
    stub.WKTBASES = {}  # type: ignore[attr-defined]
    sys.modules[WKT] = stub
    return True


class Messages:
    """`m["pkg.Name"]` or `m.Name` (the last component, when unique) gives the class."""

    def __init__(self, descriptor_set: str, modules: list[str]) -> None:
        self._by_full: dict[str, type] = {}
        self._set = descriptor_set
        self._modules = modules
        self.fast = False
        try:
            self._load_fast()
            self.fast = True
        except Exception:  # noqa: BLE001 -- any trouble: the generated modules instead
            self._by_full.clear()
            self._load_generated()

    def _load_fast(self) -> None:
        if os.environ.get("PYRUNC_PB_GENERATED"):
            raise RuntimeError("generated modules asked for")
        from google._upb import _message  # type: ignore[import-not-found]
        from google.protobuf import message as _pm

        pool = _message.default_pool
        with open(self._set, "rb") as f:
            files = _files(f.read())
        todo = []
        for fd in files:
            name = _name(fd)
            try:
                pool.FindFileByName(name)
            except KeyError:
                todo.append(fd)
                continue
            if not name.startswith("google/protobuf/"):
                # our generated module got there first: stay with that path (one process
                # cannot hold a file twice)
                raise RuntimeError(f"{name} is already loaded")
        for fd in todo:
            pool.AddSerializedFile(fd)
        self._pool, self._meta, self._base = pool, _message.MessageMeta, _pm.Message

    def _load_generated(self) -> None:
        for name in self._modules:
            mod = importlib.import_module(name)
            for d in mod.DESCRIPTOR.message_types_by_name.values():
                self._by_full[d.full_name] = getattr(mod, d.name)

    def __getitem__(self, full_name: str) -> type:
        cls = self._by_full.get(full_name)
        if cls is None:
            if not self.fast:
                raise KeyError(full_name)
            d = self._pool.FindMessageTypeByName(full_name)
            cls = self._meta(d.name, (self._base,), {"DESCRIPTOR": d})
            self._by_full[full_name] = cls
        return cls
