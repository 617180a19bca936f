"""TTRPC's envelope messages (ttrpc.proto), loaded the fast way (pbload)."""

from __future__ import annotations

import os

from shim_v2.ttrpc.pbload import Messages

M = Messages(
    os.path.join(os.path.dirname(__file__), "ttrpc.pb"), ["shim_v2.ttrpc.ttrpc_pb2"]
)
Request = M["ttrpc.Request"]
Response = M["ttrpc.Response"]
Status = M["ttrpc.Status"]
KeyValue = M["ttrpc.KeyValue"]
