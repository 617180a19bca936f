#!/bin/sh
# Regenerate the committed *_pb2.py next to each .proto under shim_v2/ (pip install '.[proto]':
# grpcio-tools; the generated code needs only the protobuf package at run time). Protos are
# named from the repository root (shim_v2/proto/x.proto), so the generated imports are
# package imports.
# usage: shim_v2/generate-protos.sh [PYTHON]   (default: the repo's .venv)
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
py=${1:-$root/.venv/bin/python}
cd "$root"
"$py" -m grpc_tools.protoc -I. --python_out=. shim_v2/ttrpc/*.proto shim_v2/proto/*.proto
# the same, as FileDescriptorSets (with their imports) for shim_v2/ttrpc/pbload.py's fast path
"$py" -m grpc_tools.protoc -I. --include_imports \
	--descriptor_set_out=shim_v2/ttrpc/ttrpc.pb shim_v2/ttrpc/*.proto
"$py" -m grpc_tools.protoc -I. --include_imports \
	--descriptor_set_out=shim_v2/proto/containerd.pb shim_v2/proto/*.proto
