#!/bin/sh
# Regenerate the committed *_pb2.py next to each .proto under shim_v2/ (pip install '.[proto]':
# grpcio-tools; the generated code needs only the protobuf package at run time).
# usage: shim_v2/generate-protos.sh [PYTHON]   (default: the repo's .venv)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
py=${1:-$here/../.venv/bin/python}
for d in "$here"/*/; do
	ls "$d"*.proto >/dev/null 2>&1 || continue
	(cd "$d" && "$py" -m grpc_tools.protoc -I. --python_out=. ./*.proto)
done
