#!/bin/sh
# Regenerate api_pb2.py (beside this script) from api.proto with grpcio-tools
# (`pip install '.[proto]'`). No *_pb2_grpc.py: client.py builds the service stubs from the
# descriptor. api_pb2 checks at import that protobuf >= 7.35.1 (the protoc inside grpcio-tools
# 1.85.1) is installed.
# usage: tests/integration/cri/generate.sh [PYTHON]   (default: the repo's .venv)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
py=${1:-$root/.venv/bin/python}
cd "$here"
"$py" -m grpc_tools.protoc -I . --python_out=. api.proto
