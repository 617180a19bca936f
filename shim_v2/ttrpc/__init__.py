"""TTRPC (containerd's lightweight RPC over unix sockets, ttrpc 1.1.1 on the wire) for Python.

Self-contained: it needs only the protobuf package. One selectors-based loop (`Loop`) runs
servers and clients in a single thread; handlers that must wait return a `Future`.

    loop = Loop()
    server = Server(loop)
    server.register("pkg.Service", {"Method": lambda ctx, req: b""})
    server.listen(bound_listening_unix_socket)
    loop.run_forever()
"""

from shim_v2.ttrpc.client import Client
from shim_v2.ttrpc.codes import TTRPCError
from shim_v2.ttrpc.loop import Future, Loop
from shim_v2.ttrpc.server import Context, Server

__all__ = ["Client", "Context", "Future", "Loop", "Server", "TTRPCError"]
