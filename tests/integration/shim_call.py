"""One Task call to a running shim, from inside conformance/harness/containerd.sh --exec
(containerd 1.6's ctr has no `update`): python shim_call.py STATE_DIR NS ID Update JSON.

Finds the shim's address in the bundle (<state>/io.containerd.runtime.v2.task/<ns>/<id>/address)
and sends UpdateTaskRequest{resources=Any(LinuxResources JSON)} with shim_v2's TTRPC client.
"""

from __future__ import annotations

import os
import sys

from shim_v2.messages import Any_, T
from shim_v2.ttrpc import Client, Loop, TTRPCError


def main() -> int:
    state, ns, cid, method, arg = sys.argv[1:6]
    bundle = os.path.join(state, "io.containerd.runtime.v2.task", ns, cid)
    with open(os.path.join(bundle, "address")) as f:
        addr = f.read().strip()
    loop = Loop()
    c = Client.connect(loop, addr)
    if method != "Update":
        raise SystemExit(f"unsupported method {method}")
    res = Any_(type_url="types.containerd.io/opencontainers/runtime-spec/1/LinuxResources",
               value=arg.encode())
    try:
        c.call_sync("containerd.task.v2.Task", "Update",
                    T.UpdateTaskRequest(id=cid, resources=res).SerializeToString())
    except TTRPCError as e:
        print(f"error: {e}")
        return 1
    print("updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
