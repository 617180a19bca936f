"""TTRPC (containerd's lightweight RPC over unix sockets, ttrpc 1.1.1 on the wire) for Python.

Self-contained: it needs only the protobuf package. One selectors-based loop (`Loop`) runs
servers and clients in a single thread; handlers that must wait return a `Future`.

    loop = Loop()
    server = Server(loop)
    server.register("pkg.Service", {"Method": lambda ctx, req: b""})
    server.listen(bound_listening_unix_socket)
    loop.run_forever()

The names below are imported on first use, so that `shim_v2.ttrpc.pbload` (or `codes`) can be
imported before any message class exists.
"""

from __future__ import annotations

__all__ = ["Client", "Context", "Future", "Loop", "Server", "TTRPCError", "codes"]

_WHERE = {
    "Client": "shim_v2.ttrpc.client",
    "Context": "shim_v2.ttrpc.server",
    "Server": "shim_v2.ttrpc.server",
    "Future": "shim_v2.ttrpc.loop",
    "Loop": "shim_v2.ttrpc.loop",
    "TTRPCError": "shim_v2.ttrpc.codes",
}


def __getattr__(name: str) -> object:
    if name == "codes":
        import importlib

        return importlib.import_module("shim_v2.ttrpc.codes")
    mod = _WHERE.get(name)
    if mod is None:
        raise AttributeError(f"module 'shim_v2.ttrpc' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(mod), name)
    globals()[name] = value
    return value
